//! Load test: many phones posting 15-minute batches at once.
//!
//! The service runs as its own process (`vigil-ingest serve` on a fresh
//! SQLite file); the phones run here, in a second process, over loopback.
//! Each phone has its own patient and device token, and posts `rounds`
//! consecutive 15-minute batches (a 1-minute CGM and a 1 Hz heart-rate
//! strap: 15 + 900 readings) as the SDK does: columnar binary, deflated.
//! A bare `GET /healthz` round trip on the same connection pool is the
//! baseline for latency; the floor for throughput is the same rows written
//! straight into the same schema with one prepared rusqlite insert in one
//! transaction (no HTTP, auth, decode, dedupe lookups or per-batch commits).
//!
//! `cargo bench -p vigil-ingest --bench load` runs the full load (200 phones
//! × 4 batches); without `--bench` (as `cargo test --benches` runs it) a
//! small load checks the path. Any non-2xx answer fails the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // A bench fails loudly.

#[path = "common/serve.rs"]
mod serve;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use vigil_ingest::admin;
use vigil_ingest::domain::Role;
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_model::reading::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};
use vigil_model::wire::{self, Batch, BatchId, ContentEncoding};

use serve::Server;

/// One phone: its patient id (as the wire carries it) and device token.
struct Phone {
    patient: String,
    token: String,
}

fn seed(db: &Path, phones: usize) -> Vec<Phone> {
    let store = vigil_ingest::storage::open(db).unwrap();
    let storage = store.blocking();
    (0..phones)
        .map(|i| {
            let patient = admin::add_patient(storage, &format!("load patient {i}")).unwrap();
            let token = admin::add_patient_token(storage, patient, Role::Device).unwrap();
            Phone {
                patient: patient.to_string(),
                token: token.expose().to_owned(),
            }
        })
        .collect()
}

fn reading(
    patient: &str,
    device: &str,
    stream: Stream,
    characteristic: u16,
    seq: u64,
    time: DateTime<Utc>,
    value: f64,
) -> Reading {
    Reading {
        patient: PatientId(patient.to_owned()),
        stream,
        value,
        sensor_time: time,
        receive_time: time,
        sequence: seq,
        quality: Quality::default(),
        provenance: Provenance {
            device: DeviceId(device.to_owned()),
            characteristic,
            raw: Vec::new(),
            session: None,
        },
    }
}

/// One 15-minute batch of round `round`, ending a little before now so no
/// time is in the future: 15 CGM readings (1 min) and 900 heart beats (1 Hz).
fn batch(phone: &Phone, round: u32, rounds: u32) -> Vec<u8> {
    let device = format!("{}-sensor", phone.patient);
    // The wire carries whole microseconds; whole seconds keep it simple.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let start = now - TimeDelta::minutes(15 * i64::from(rounds - round) + 1);
    let mut b = Batch::new(
        BatchId::random(),
        PatientId(phone.patient.clone()),
        DeviceId(device.clone()),
        now,
    );
    let base = u64::from(round) * 900;
    for i in 0..15u64 {
        let t = start + TimeDelta::minutes(i as i64);
        let minute = (base / 60 + i) as f64;
        let glucose = (120.0 + 40.0 * (minute / 90.0).sin()).round();
        b.push_reading(
            &reading(
                &phone.patient,
                &device,
                Stream::Glucose,
                0x2AA7,
                base / 60 + i,
                t,
                glucose,
            ),
            false,
        )
        .unwrap();
    }
    for i in 0..900u64 {
        let t = start + TimeDelta::seconds(i as i64);
        let second = (base + i) as f64;
        let hr = (72.0 + 8.0 * (second / 300.0).sin()).round();
        b.push_reading(
            &reading(
                &phone.patient,
                &device,
                Stream::HeartRate,
                0x2A37,
                base + i,
                t,
                hr,
            ),
            false,
        )
        .unwrap();
    }
    let binary = wire::binary::encode(&b).unwrap();
    wire::compress::compress(&binary, ContentEncoding::Deflate).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

struct Outcome {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    bytes: usize,
}

async fn run_phones(url: &str, phones: Vec<Phone>, rounds: u32) -> (Outcome, Duration) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    // Bodies are built before the clock starts: the phones' CPU is not the
    // service's.
    let work: Vec<(Arc<Phone>, Vec<Vec<u8>>)> = phones
        .into_iter()
        .map(|p| {
            let bodies = (0..rounds).map(|r| batch(&p, r, rounds)).collect();
            (Arc::new(p), bodies)
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (phone, bodies) in work {
        let client = client.clone();
        let endpoint = format!("{url}/v1/batches");
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome {
                latencies: Vec::new(),
                errors: Vec::new(),
                bytes: 0,
            };
            for body in bodies {
                out.bytes += body.len();
                let t = Instant::now();
                let answer = client
                    .post(&endpoint)
                    .bearer_auth(&phone.token)
                    .header("content-type", "application/vnd.vigil.batch+binary; v=1")
                    .header("content-encoding", "deflate")
                    .body(body)
                    .send()
                    .await;
                match answer {
                    Ok(resp) if resp.status().is_success() => {
                        // The acknowledgement is part of the round trip.
                        let _ = resp.bytes().await;
                        out.latencies.push(t.elapsed());
                    }
                    Ok(resp) => {
                        let status = resp.status();
                        let text = resp.text().await.unwrap_or_default();
                        out.errors.push(format!("{status}: {text}"));
                    }
                    Err(e) => out.errors.push(e.to_string()),
                }
            }
            out
        }));
    }
    let mut all = Outcome {
        latencies: Vec::new(),
        errors: Vec::new(),
        bytes: 0,
    };
    for task in tasks {
        let out = task.await.unwrap();
        all.latencies.extend(out.latencies);
        all.errors.extend(out.errors);
        all.bytes += out.bytes;
    }
    (all, started.elapsed())
}

async fn bare_round_trips(url: &str, n: usize) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let resp = client.get(format!("{url}/healthz")).send().await.unwrap();
        assert!(resp.status().is_success());
        let _ = resp.bytes().await;
        out.push(t.elapsed());
    }
    out.sort();
    out
}

/// The raw floor: the same number of readings inserted into the service's
/// own `readings` table (fresh file, same migrations, same pragmas) with one
/// prepared statement in one transaction. Returns readings per second.
fn rusqlite_floor(phones: usize, rounds: u32) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("floor.db");
    let patients: Vec<i64> = {
        let storage = SqliteStorage::open(&path).unwrap();
        (0..phones)
            .map(|i| admin::add_patient(&storage, &format!("floor {i}")).unwrap())
            .collect()
    };
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    let started = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut batch = tx
            .prepare("INSERT INTO batches (batch_key, patient_id, device, received_at, ack) VALUES (?1, ?2, 'd', 0, '')")
            .unwrap();
        let mut insert = tx
            .prepare(
                "INSERT INTO readings (patient_id, device, stream, session, seq, time, value,
                     quality_percent, quality_flagged, characteristic, tolerance, held_back, raw, batch_id)
                 VALUES (?1, 'd', ?2, -1, ?3, ?4, ?5, NULL, 0, ?6, NULL, 0, NULL, ?7)",
            )
            .unwrap();
        for (n, patient) in patients.iter().enumerate() {
            for round in 0..rounds {
                let mut key = [0u8; 16];
                key[..8].copy_from_slice(&(n as u64).to_le_bytes());
                key[8..12].copy_from_slice(&round.to_le_bytes());
                batch.execute(rusqlite::params![&key[..], patient]).unwrap();
                let batch_row = tx.last_insert_rowid();
                let base = i64::from(round) * 900;
                for i in 0..15i64 {
                    insert
                        .execute(rusqlite::params![
                            patient,
                            "glucose",
                            base / 60 + i,
                            (base + i * 60) * 1_000_000,
                            120.0,
                            0x2AA7,
                            batch_row
                        ])
                        .unwrap();
                }
                for i in 0..900i64 {
                    insert
                        .execute(rusqlite::params![
                            patient,
                            "heart_rate",
                            base + i,
                            (base + i) * 1_000_000,
                            72.0,
                            0x2A37,
                            batch_row
                        ])
                        .unwrap();
                }
            }
        }
    }
    tx.commit().unwrap();
    (phones as f64 * f64::from(rounds) * 915.0) / started.elapsed().as_secs_f64()
}

/// The PostgreSQL floor: the same rows `COPY`ed into the service's own
/// `readings` table (fresh database, same migrations), one batch row per
/// batch first. Returns readings per second.
fn copy_floor(url: &str, phones: usize, rounds: u32) -> f64 {
    use std::io::Write;
    let patients: Vec<i64> = {
        let store = vigil_ingest::storage::open(Path::new(url)).unwrap();
        (0..phones)
            .map(|i| admin::add_patient(store.blocking(), &format!("floor {i}")).unwrap())
            .collect()
    };
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let started = Instant::now();
    let mut tx = client.transaction().unwrap();
    let mut batch_rows = Vec::new();
    for (n, patient) in patients.iter().enumerate() {
        for round in 0..rounds {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&(n as u64).to_le_bytes());
            key[8..12].copy_from_slice(&round.to_le_bytes());
            let row: i64 = tx
                .query_one(
                    "INSERT INTO batches (batch_key, patient_id, device, received_at, ack)
                     VALUES ($1, $2, 'd', 0, '') RETURNING id",
                    &[&&key[..], patient],
                )
                .unwrap()
                .get(0);
            batch_rows.push((*patient, round, row));
        }
    }
    let mut w = tx
        .copy_in(
            "COPY readings (patient_id, device, stream, session, seq, time, value,
                 quality_flagged, characteristic, held_back, batch_id) FROM STDIN",
        )
        .unwrap();
    for (patient, round, batch_row) in batch_rows {
        let base = i64::from(round) * 900;
        let mut text = String::with_capacity(915 * 64);
        for i in 0..15i64 {
            text.push_str(&format!(
                "{patient}\td\tglucose\t-1\t{}\t{}\t120\tf\t10919\tf\t{batch_row}\n",
                base / 60 + i,
                (base + i * 60) * 1_000_000
            ));
        }
        for i in 0..900i64 {
            text.push_str(&format!(
                "{patient}\td\theart_rate\t-1\t{}\t{}\t72\tf\t10807\tf\t{batch_row}\n",
                base + i,
                (base + i) * 1_000_000
            ));
        }
        w.write_all(text.as_bytes()).unwrap();
    }
    w.finish().unwrap();
    tx.commit().unwrap();
    (phones as f64 * f64::from(rounds) * 915.0) / started.elapsed().as_secs_f64()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (phones, rounds) = if full { (200, 4) } else { (8, 2) };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("load.db");
    let mut failed = run(
        "SQLite",
        &sqlite,
        phones,
        rounds,
        full,
        "raw rusqlite floor (one transaction)",
        || rusqlite_floor(phones, rounds),
    );
    let pg = vigil_pg_harness::PgServer::start().unwrap_or_else(|e| panic!("{e}"));
    let url = pg.fresh_database().unwrap();
    let floor_url = pg.fresh_database().unwrap();
    failed |= run(
        "PostgreSQL",
        Path::new(&url),
        phones,
        rounds,
        full,
        "raw COPY floor (one transaction)",
        || copy_floor(&floor_url, phones, rounds),
    );
    if failed {
        std::process::exit(1);
    }
}

/// Runs the load against `db` (a SQLite path or a PostgreSQL URL), then
/// `floor`; prints the table; returns whether any request failed.
fn run(
    backend: &str,
    db: &Path,
    phones: usize,
    rounds: u32,
    full: bool,
    floor_name: &str,
    floor: impl FnOnce() -> f64,
) -> bool {
    let seeded = seed(db, phones);
    let server = Server::start(db, &["--rate-per-second", "10000", "--rate-burst", "10000"]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (outcome, wall) = runtime.block_on(run_phones(&server.url, seeded, rounds));
    let bare = runtime.block_on(bare_round_trips(&server.url, if full { 2000 } else { 50 }));
    drop(server);
    let floor = floor();

    let mut lat = outcome.latencies;
    lat.sort();
    let batches = lat.len();
    let readings = batches * 915;
    println!(
        "load: {phones} phones × {rounds} batches of 15 min (15 CGM + 900 HR readings), {backend}, loopback"
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!("| batches acknowledged | {batches} |");
    println!("| errors | {} |", outcome.errors.len());
    println!("| wall time | {:.2} s |", wall.as_secs_f64());
    println!(
        "| batches / s | {:.1} |",
        batches as f64 / wall.as_secs_f64()
    );
    let through_service = readings as f64 / wall.as_secs_f64();
    println!("| readings / s through the service | {through_service:.0} |");
    println!("| readings / s, {floor_name} | {floor:.0} |");
    println!("| service / floor | {:.2} |", through_service / floor);
    println!(
        "| wire bytes / reading | {:.2} |",
        outcome.bytes as f64 / (phones as f64 * f64::from(rounds) * 915.0)
    );
    println!(
        "| batch p50 / p99 / max | {} / {} / {} ms |",
        ms(percentile(&lat, 50.0)),
        ms(percentile(&lat, 99.0)),
        ms(lat.last().copied().unwrap_or_default())
    );
    println!(
        "| bare GET /healthz p50 / p99 | {} / {} ms |",
        ms(percentile(&bare, 50.0)),
        ms(percentile(&bare, 99.0))
    );
    if let Some(first) = outcome.errors.first() {
        eprintln!("{} requests failed; first: {first}", outcome.errors.len());
        return true;
    }
    false
}

//! Throughput of the ingest service against a fair floor.
//!
//! The service runs as its own process (`vigil-ingest serve`, on a fresh
//! SQLite file or a fresh database of a durable PostgreSQL: `fsync`,
//! `synchronous_commit` and `full_page_writes` on); 200 simulated phones
//! in this process, each with its own patient and device token, post their
//! batches at once over loopback, columnar binary and deflated as the SDK
//! sends them. Two shapes of batch:
//!
//! - `sdk`: what the SDK sends at its defaults (`docs/capacity.md`): half
//!   the phones a 1-minute CGM, 33 readings a batch, half a 5-minute one,
//!   7 readings a batch; 40 batches each, in order.
//! - `bulk`: a 1-minute CGM and a 1 Hz heart-rate strap, 915 readings a
//!   15-minute batch, 4 batches each: a wearable's backfill, where
//!   per-request costs are spread over many rows.
//!
//! The floor is the same rows written straight into the service's own
//! schema (same migrations and pragmas) by one client: a prepared rusqlite
//! insert, or PostgreSQL `COPY`. Two floors: every row in one transaction
//! (the fastest load there is), and one transaction per batch (the commit
//! granularity the service must keep, since each batch is acknowledged).
//! Each run times both floors before and after the service, so a machine
//! that speeds up or slows down shows as a spread rather than a bias.
//! Ratios are given by wall time and by CPU time: the service answers 200
//! connections at once where a floor is one connection, so only CPU time
//! compares the work each does. CPU time is the service process's (and
//! PostgreSQL's: the postmaster and its backends) for the service, this
//! process's (and PostgreSQL's) for a floor; the phones' CPU is not
//! counted, and their bodies are built before the clock starts.
//!
//! `cargo bench -p vigil-ingest --bench load` runs 3 runs of each shape on
//! each backend and prints the median and the range of each figure.
//! Environment: `VIGIL_LOAD_RUNS` (default 3), `VIGIL_LOAD_BACKENDS`
//! (`sqlite,postgres`), `VIGIL_LOAD_SHAPES` (`sdk,bulk`). Without `--bench`
//! (as `cargo test --benches` runs it) one small run checks the path. Any
//! non-2xx answer fails the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // A bench fails loudly.

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/serve.rs"]
mod serve;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vigil_ingest::admin;
use vigil_ingest::domain::Role;
use vigil_model::reading::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};
use vigil_model::wire::{self, Batch, BatchId, ContentEncoding};

use serve::Server;

/// Phones posting at once.
const PHONES: usize = 200;

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Sdk,
    Bulk,
}

/// One stream of a phone's batches: `count` readings `step_s` apart.
struct Group {
    stream: Stream,
    characteristic: u16,
    step_s: i64,
    count: i64,
}

impl Shape {
    fn parse(s: &str) -> Shape {
        match s {
            "sdk" => Shape::Sdk,
            "bulk" => Shape::Bulk,
            other => panic!("VIGIL_LOAD_SHAPES: unknown shape {other:?}"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Shape::Sdk => "sdk: 33 (1-minute CGM) or 7 (5-minute CGM) readings a batch",
            Shape::Bulk => {
                "bulk: 915 readings a batch (15 min of 1-minute CGM and 1 Hz heart rate)"
            }
        }
    }

    fn rounds(self, full: bool) -> u32 {
        match (self, full) {
            (Shape::Sdk, true) => 40,
            (Shape::Bulk, true) => 4,
            (_, false) => 2,
        }
    }

    fn groups(self, phone: usize) -> Vec<Group> {
        let cgm = |step_s, count| Group {
            stream: Stream::Glucose,
            characteristic: 0x2AA7,
            step_s,
            count,
        };
        match self {
            Shape::Sdk if phone % 2 == 0 => vec![cgm(60, 33)],
            Shape::Sdk => vec![cgm(300, 7)],
            Shape::Bulk => vec![
                cgm(60, 15),
                Group {
                    stream: Stream::HeartRate,
                    characteristic: 0x2A37,
                    step_s: 1,
                    count: 900,
                },
            ],
        }
    }
}

/// One reading as both sides write it.
struct Row {
    stream: Stream,
    characteristic: u16,
    seq: i64,
    /// Microseconds since the epoch.
    time: i64,
    value: f64,
}

/// The readings of `phone`'s batch `round` of `rounds`, the last ending a
/// minute before `now` (whole seconds, in microseconds).
fn rows(shape: Shape, phone: usize, round: u32, rounds: u32, now: i64) -> Vec<Row> {
    let mut out = Vec::new();
    for g in shape.groups(phone) {
        let start = now - (i64::from(rounds) * g.count * g.step_s + 60) * 1_000_000;
        for i in 0..g.count {
            let seq = i64::from(round) * g.count + i;
            let x = (seq * g.step_s) as f64;
            let value = match g.stream {
                Stream::Glucose => (120.0 + 40.0 * (x / 5400.0).sin()).round(),
                _ => (72.0 + 8.0 * (x / 300.0).sin()).round(),
            };
            out.push(Row {
                stream: g.stream,
                characteristic: g.characteristic,
                seq,
                time: start + seq * g.step_s * 1_000_000,
                value,
            });
        }
    }
    out
}

fn now_micros() -> i64 {
    Utc::now().timestamp() * 1_000_000
}

fn device(patient: impl std::fmt::Display) -> String {
    format!("{patient}-sensor")
}

/// One phone: its patient id (as the wire carries it) and device token.
struct Phone {
    patient: String,
    token: String,
}

/// The wire body of one batch: binary, deflated.
fn body(patient: &str, rows: &[Row]) -> Vec<u8> {
    let at = |t: i64| DateTime::from_timestamp_micros(t).unwrap();
    let device = device(patient);
    let mut b = Batch::new(
        BatchId::random(),
        PatientId(patient.to_owned()),
        DeviceId(device.clone()),
        at(now_micros()),
    );
    for r in rows {
        let reading = Reading {
            patient: PatientId(patient.to_owned()),
            stream: r.stream,
            value: r.value,
            sensor_time: at(r.time),
            receive_time: at(r.time),
            sequence: r.seq as u64,
            quality: Quality::default(),
            provenance: Provenance {
                device: DeviceId(device.clone()),
                characteristic: r.characteristic,
                raw: Vec::new(),
                session: None,
            },
        };
        b.push_reading(&reading, false).unwrap();
    }
    let binary = wire::binary::encode(&b).unwrap();
    wire::compress::compress(&binary, ContentEncoding::Deflate).unwrap()
}

/// Where a run's data goes.
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres {
        server: vigil_pg_harness::PgServer,
        postmaster: u32,
    },
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL (durable)",
        }
    }

    /// A fresh, migrated database: a SQLite path or a PostgreSQL URL.
    fn fresh(&self, label: &str) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        match self {
            Backend::Sqlite(dir) => {
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                dir.path().join(format!("{label}-{n}.db"))
            }
            Backend::Postgres { server, .. } => PathBuf::from(server.fresh_database().unwrap()),
        }
    }

    /// The database server's CPU time so far (zero for SQLite, which runs
    /// in the process that uses it).
    fn server_cpu(&self) -> Duration {
        match self {
            Backend::Sqlite(_) => Duration::ZERO,
            Backend::Postgres { postmaster, .. } => cpu::tree(*postmaster),
        }
    }
}

/// Readings written, and the wall and CPU time it took.
#[derive(Clone, Copy)]
struct Measured {
    readings: usize,
    wall: Duration,
    cpu: Duration,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.readings as f64 / self.wall.as_secs_f64()
    }

    fn per_cpu_second(&self) -> f64 {
        self.readings as f64 / self.cpu.as_secs_f64().max(1e-9)
    }

    fn cpu_us_per_reading(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.readings.max(1) as f64
    }
}

/// Times `write` on this process and the database server.
fn measured(backend: &Backend, readings: usize, write: impl FnOnce()) -> Measured {
    let (cpu0, db0) = (cpu::this_process(), backend.server_cpu());
    let started = Instant::now();
    write();
    let wall = started.elapsed();
    let cpu = cpu::this_process().saturating_sub(cpu0) + backend.server_cpu().saturating_sub(db0);
    Measured {
        readings,
        wall,
        cpu,
    }
}

/// The floor: the same rows written straight into a fresh database by one
/// client, in one transaction or one per batch.
fn floor(backend: &Backend, shape: Shape, phones: usize, rounds: u32, per_batch: bool) -> Measured {
    let db = backend.fresh("floor");
    let store = vigil_ingest::storage::open(&db).unwrap();
    let patients: Vec<i64> = (0..phones)
        .map(|i| admin::add_patient(store.blocking(), &format!("floor {i}")).unwrap())
        .collect();
    drop(store);
    let now = now_micros();
    let batches: Vec<(i64, [u8; 16], Vec<Row>)> = patients
        .iter()
        .enumerate()
        .flat_map(|(n, p)| {
            (0..rounds).map(move |round| {
                let mut key = [0u8; 16];
                key[..8].copy_from_slice(&(n as u64).to_le_bytes());
                key[8..12].copy_from_slice(&round.to_le_bytes());
                (*p, key, rows(shape, n, round, rounds, now))
            })
        })
        .collect();
    let readings = batches.iter().map(|b| b.2.len()).sum();
    match backend {
        Backend::Sqlite(_) => {
            let mut conn = rusqlite::Connection::open(&db).unwrap();
            conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
            measured(backend, readings, || {
                let chunks: Vec<_> = if per_batch {
                    batches.chunks(1).collect()
                } else {
                    vec![&batches[..]]
                };
                for chunk in chunks {
                    let tx = conn.transaction().unwrap();
                    sqlite_rows(&tx, chunk);
                    tx.commit().unwrap();
                }
            })
        }
        Backend::Postgres { .. } => {
            let url = db.to_str().unwrap();
            let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
            measured(backend, readings, || {
                let insert = client
                    .prepare(
                        "INSERT INTO batches (batch_key, patient_id, device, received_at, ack)
                         VALUES ($1, $2, $3, 0, '') RETURNING id",
                    )
                    .unwrap();
                let chunks: Vec<_> = if per_batch {
                    batches.chunks(1).collect()
                } else {
                    vec![&batches[..]]
                };
                for chunk in chunks {
                    let mut tx = client.transaction().unwrap();
                    copy_rows(&mut tx, &insert, chunk);
                    tx.commit().unwrap();
                }
            })
        }
    }
}

/// One batch row per batch, then its readings, with prepared statements.
fn sqlite_rows(tx: &rusqlite::Transaction<'_>, batches: &[(i64, [u8; 16], Vec<Row>)]) {
    let mut batch = tx
        .prepare_cached(
            "INSERT INTO batches (batch_key, patient_id, device, received_at, ack)
             VALUES (?1, ?2, ?3, 0, '')",
        )
        .unwrap();
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO readings (patient_id, device, stream, session, seq, time, value,
                 quality_percent, quality_flagged, characteristic, tolerance, held_back, raw, batch_id)
             VALUES (?1, ?2, ?3, -1, ?4, ?5, ?6, NULL, 0, ?7, NULL, 0, NULL, ?8)",
        )
        .unwrap();
    for (patient, key, rows) in batches {
        let device = device(patient);
        batch
            .execute(rusqlite::params![&key[..], patient, device])
            .unwrap();
        let batch_row = tx.last_insert_rowid();
        for r in rows {
            insert
                .execute(rusqlite::params![
                    patient,
                    device,
                    r.stream.as_str(),
                    r.seq,
                    r.time,
                    r.value,
                    r.characteristic,
                    batch_row
                ])
                .unwrap();
        }
    }
}

/// One batch row per batch, then every reading in one `COPY`.
fn copy_rows(
    tx: &mut postgres::Transaction<'_>,
    insert: &postgres::Statement,
    batches: &[(i64, [u8; 16], Vec<Row>)],
) {
    let mut ids = Vec::with_capacity(batches.len());
    for (patient, key, _) in batches {
        let row: i64 = tx
            .query_one(insert, &[&&key[..], patient, &device(patient)])
            .unwrap()
            .get(0);
        ids.push(row);
    }
    let mut w = tx
        .copy_in(
            "COPY readings (patient_id, device, stream, session, seq, time, value,
                 quality_flagged, characteristic, held_back, batch_id) FROM STDIN",
        )
        .unwrap();
    let mut text = String::new();
    for ((patient, _, rows), batch_row) in batches.iter().zip(ids) {
        let device = device(patient);
        for r in rows {
            use std::fmt::Write as _;
            writeln!(
                text,
                "{patient}\t{device}\t{}\t-1\t{}\t{}\t{}\tf\t{}\tf\t{batch_row}",
                r.stream.as_str(),
                r.seq,
                r.time,
                r.value,
                r.characteristic
            )
            .unwrap();
        }
        if text.len() > 1 << 20 {
            w.write_all(text.as_bytes()).unwrap();
            text.clear();
        }
    }
    w.write_all(text.as_bytes()).unwrap();
    w.finish().unwrap();
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

/// What the phones saw.
struct Outcome {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    bytes: usize,
}

/// The service's side of one run: a fresh database, the service started
/// on it, every phone posting its batches in order, all phones at once.
fn service(
    backend: &Backend,
    runtime: &tokio::runtime::Runtime,
    shape: Shape,
    phones: usize,
    rounds: u32,
) -> (Measured, Outcome) {
    let db = backend.fresh("service");
    let seeded = seed(&db, phones);
    let server = Server::start(
        &db,
        &["--rate-per-second", "10000", "--rate-burst", "10000"],
    );
    let now = now_micros();
    // Bodies are built before the clock starts: the phones' CPU is not the
    // service's.
    let work: Vec<(Arc<Phone>, Vec<Vec<u8>>, usize)> = seeded
        .into_iter()
        .enumerate()
        .map(|(n, p)| {
            let batches: Vec<Vec<Row>> = (0..rounds)
                .map(|r| rows(shape, n, r, rounds, now))
                .collect();
            let readings = batches.iter().map(Vec::len).sum();
            let bodies = batches.iter().map(|b| body(&p.patient, b)).collect();
            (Arc::new(p), bodies, readings)
        })
        .collect();
    let readings = work.iter().map(|w| w.2).sum();
    let (cpu0, db0) = (cpu::process(server.pid()), backend.server_cpu());
    let started = Instant::now();
    let outcome = runtime.block_on(post_all(&server.url, work));
    let wall = started.elapsed();
    let cpu =
        cpu::process(server.pid()).saturating_sub(cpu0) + backend.server_cpu().saturating_sub(db0);
    drop(server);
    (
        Measured {
            readings,
            wall,
            cpu,
        },
        outcome,
    )
}

async fn post_all(url: &str, work: Vec<(Arc<Phone>, Vec<Vec<u8>>, usize)>) -> Outcome {
    // The service allows 128 connections per client address (a NAT of
    // phones): the phones come from four loopback addresses.
    let clients: Vec<reqwest::Client> = (0..4u8)
        .map(|i| {
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                    127,
                    0,
                    0,
                    2 + i,
                )))
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap()
        })
        .collect();
    let mut tasks = Vec::new();
    for (n, (phone, bodies, _)) in work.into_iter().enumerate() {
        let client = clients[n % clients.len()].clone();
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
                    .header("prefer", wire::PREFER_MINIMAL)
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
    all.latencies.sort();
    all
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// One run: both floors before and after the service.
struct Run {
    service: Measured,
    one_tx: [Measured; 2],
    per_batch: [Measured; 2],
    p50: Duration,
    p99: Duration,
    errors: Vec<String>,
    body_bytes_per_reading: f64,
}

impl Run {
    /// The service against the mean of a floor's two timings.
    fn ratio(&self, floor: &[Measured; 2], by: fn(&Measured) -> f64) -> f64 {
        by(&self.service) / ((by(&floor[0]) + by(&floor[1])) / 2.0)
    }
}

fn one_run(backend: &Backend, runtime: &tokio::runtime::Runtime, shape: Shape, full: bool) -> Run {
    let (phones, rounds) = (if full { PHONES } else { 8 }, shape.rounds(full));
    let one_before = floor(backend, shape, phones, rounds, false);
    let batch_before = floor(backend, shape, phones, rounds, true);
    let (service, outcome) = service(backend, runtime, shape, phones, rounds);
    let batch_after = floor(backend, shape, phones, rounds, true);
    let one_after = floor(backend, shape, phones, rounds, false);
    Run {
        p50: percentile(&outcome.latencies, 50.0),
        p99: percentile(&outcome.latencies, 99.0),
        errors: outcome.errors,
        body_bytes_per_reading: outcome.bytes as f64 / service.readings as f64,
        service,
        one_tx: [one_before, one_after],
        per_batch: [batch_before, batch_after],
    }
}

/// Median, lowest and highest.
fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    let fmt = |x: f64| {
        if x.abs() >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.2}")
        }
    };
    format!("{} | {} – {}", fmt(median), fmt(v[0]), fmt(v[v.len() - 1]))
}

fn print(backend: &Backend, shape: Shape, runs: &[Run]) {
    let row = |name: &str, f: &dyn Fn(&Run) -> f64| {
        println!("| {name} | {} |", spread(runs.iter().map(f).collect()));
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let per_s = Measured::per_second;
    let per_cpu = Measured::per_cpu_second;
    println!(
        "\nload: {}, {}, {} runs, {} readings a run",
        backend.name(),
        shape.describe(),
        runs.len(),
        runs[0].service.readings
    );
    println!("| measure | median | range |");
    println!("|---|---:|---|");
    row("readings / s through the service", &|r| {
        r.service.per_second()
    });
    row("readings / s, floor in one transaction, before", &|r| {
        r.one_tx[0].per_second()
    });
    row("readings / s, floor in one transaction, after", &|r| {
        r.one_tx[1].per_second()
    });
    row(
        "readings / s, floor a transaction per batch, before",
        &|r| r.per_batch[0].per_second(),
    );
    row("readings / s, floor a transaction per batch, after", &|r| {
        r.per_batch[1].per_second()
    });
    row("service / one-transaction floor, wall time", &|r| {
        r.ratio(&r.one_tx, per_s)
    });
    row("service / one-transaction floor, CPU time", &|r| {
        r.ratio(&r.one_tx, per_cpu)
    });
    row("service / per-batch floor, wall time", &|r| {
        r.ratio(&r.per_batch, per_s)
    });
    row("service / per-batch floor, CPU time", &|r| {
        r.ratio(&r.per_batch, per_cpu)
    });
    row("CPU µs / reading, service (+ database server)", &|r| {
        r.service.cpu_us_per_reading()
    });
    row(
        "CPU µs / reading, one-transaction floor (+ database server)",
        &|r| (r.one_tx[0].cpu_us_per_reading() + r.one_tx[1].cpu_us_per_reading()) / 2.0,
    );
    row(
        "CPU µs / reading, per-batch floor (+ database server)",
        &|r| (r.per_batch[0].cpu_us_per_reading() + r.per_batch[1].cpu_us_per_reading()) / 2.0,
    );
    row("batch p50 ms (all phones at once)", &|r| ms(r.p50));
    row("batch p99 ms", &|r| ms(r.p99));
    row("errors", &|r| r.errors.len() as f64);
    row("body bytes / reading (headers not counted)", &|r| {
        r.body_bytes_per_reading
    });
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs: usize = std::env::var("VIGIL_LOAD_RUNS")
        .ok()
        .map(|v| v.parse().expect("VIGIL_LOAD_RUNS is a number"))
        .unwrap_or(if full { 3 } else { 1 });
    let backends = std::env::var("VIGIL_LOAD_BACKENDS").unwrap_or("sqlite,postgres".into());
    let shapes: Vec<Shape> = std::env::var("VIGIL_LOAD_SHAPES")
        .unwrap_or("sdk,bulk".into())
        .split(',')
        .map(|s| Shape::parse(s.trim()))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut failed = false;
    for name in backends.split(',').map(str::trim) {
        let backend = match name {
            "sqlite" => Backend::Sqlite(tempfile::tempdir().unwrap()),
            "postgres" => {
                let server =
                    vigil_pg_harness::PgServer::start_durable().unwrap_or_else(|e| panic!("{e}"));
                let postmaster = server.postmaster_pid().unwrap_or_else(|e| panic!("{e}"));
                Backend::Postgres { server, postmaster }
            }
            other => panic!("VIGIL_LOAD_BACKENDS: unknown backend {other:?}"),
        };
        for &shape in &shapes {
            let done: Vec<Run> = (0..runs)
                .map(|_| one_run(&backend, &runtime, shape, full))
                .collect();
            print(&backend, shape, &done);
            for r in &done {
                if let Some(first) = r.errors.first() {
                    eprintln!("{} requests failed; first: {first}", r.errors.len());
                    failed = true;
                }
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}

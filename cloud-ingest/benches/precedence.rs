//! What source precedence costs a reader (issue 15): the resolved read
//! against the raw read of the same stored readings, in the same run.
//!
//! Two patients on one SQLite file:
//! - glucose: 14 days of the phone's 5-minute CGM plus an uploader's copy of
//!   the same values 2 minutes late (2 × 4,032 readings);
//! - heart rate: 6 hours of a chest strap and an oximeter at 1 Hz
//!   (2 × 21,600 readings).
//!
//! For each, two levels: the storage read alone (`Storage::readings` against
//! `resolved::resolve`), and the product path (`GET
//! /v1/patients/{id}/readings` with `resolved=false` against the default,
//! over loopback HTTP, JSON decoded by the client). Raw and resolved
//! alternate run by run so drift hits both; the table gives the median and
//! the spread (min–max) of each and the ratio of the medians.
//!
//! `cargo bench -p vigil-ingest --bench precedence` runs 15 rounds; without
//! `--bench` (as `cargo test --benches` runs it) 2 rounds check the path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // A bench fails loudly.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use vigil_ingest::domain::PatientId;
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_ingest::storage::{NewBatch, NewGroup, NewReading, ReadingQuery, Storage, Store};
use vigil_ingest::{Limits, ServiceState, admin, app, resolved};
use vigil_model::precedence::Quantity;
use vigil_model::reading::Stream;
use vigil_model::wire::{BatchId, PROTOCOL_VERSION};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

fn store(
    s: &dyn Storage,
    patient: PatientId,
    device: &str,
    stream: Stream,
    readings: Vec<(DateTime<Utc>, f64)>,
) {
    for (i, chunk) in readings.chunks(5_000).enumerate() {
        s.store_batch(&NewBatch {
            v: PROTOCOL_VERSION,
            id: BatchId::random(),
            patient,
            device: device.into(),
            received_at: Utc::now(),
            groups: vec![NewGroup {
                stream,
                session: None,
                characteristic: 0x2AA7,
                tolerance: None,
                readings: chunk
                    .iter()
                    .enumerate()
                    .map(|(j, &(time, value))| NewReading {
                        seq: (i * 5_000 + j) as u64,
                        time,
                        value,
                        quality_percent: None,
                        quality_flagged: false,
                        held_back: false,
                        raw: None,
                    })
                    .collect(),
                rejected: Vec::new(),
            }],
        })
        .unwrap();
    }
}

struct Stats {
    median: Duration,
    min: Duration,
    max: Duration,
}

fn stats(mut xs: Vec<Duration>) -> Stats {
    xs.sort();
    Stats {
        median: xs[xs.len() / 2],
        min: xs[0],
        max: xs[xs.len() - 1],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn row(what: &str, rows: (usize, usize), raw: Vec<Duration>, resolved: Vec<Duration>) {
    let (r, v) = (stats(raw), stats(resolved));
    println!(
        "| {what} | {} → {} | {:.1} ({:.1}–{:.1}) | {:.1} ({:.1}–{:.1}) | {:.2} |",
        rows.0,
        rows.1,
        ms(r.median),
        ms(r.min),
        ms(r.max),
        ms(v.median),
        ms(v.min),
        ms(v.max),
        r.median.as_secs_f64() / v.median.as_secs_f64()
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 15 } else { 2 };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStorage::open(&dir.path().join("vigil.db")).unwrap();
    let s: &dyn Storage = &sqlite;
    let glucose = admin::add_patient(s, "Bench Glucose").unwrap();
    let heart = admin::add_patient(s, "Bench Heart").unwrap();
    let g: Vec<_> = (0..14 * 288)
        .map(|i| {
            (
                t0() + TimeDelta::minutes(5 * i),
                120.0 + ((i as f64) / 12.0).sin() * 50.0,
            )
        })
        .collect();
    store(s, glucose, "cgm-1", Stream::Glucose, g.clone());
    let copy = g
        .iter()
        .map(|&(t, v)| (t + TimeDelta::minutes(2), v))
        .collect();
    store(s, glucose, "nightscout", Stream::Glucose, copy);
    let n_hr = 6 * 3600;
    let strap = (0..n_hr)
        .map(|i| (t0() + TimeDelta::seconds(i), 70.0))
        .collect();
    let ox = (0..n_hr)
        .map(|i| {
            (
                t0() + TimeDelta::seconds(i) + TimeDelta::milliseconds(400),
                72.0,
            )
        })
        .collect();
    store(s, heart, "strap-1", Stream::HeartRate, strap);
    store(s, heart, "ox-1", Stream::PulseRate, ox);
    let clinician = admin::add_clinician(s, "dr-bench").unwrap();
    admin::assign(s, "dr-bench", glucose).unwrap();
    admin::assign(s, "dr-bench", heart).unwrap();

    let (from, to) = (t0(), t0() + TimeDelta::days(15));
    println!(
        "| read | rows raw → resolved | raw ms median (min–max) | resolved ms median (min–max) | resolved speed / raw |"
    );
    println!("|---|---|---|---|---|");

    // Component: the storage read and the resolution, no HTTP.
    for (name, patient, quantity) in [
        (
            "storage: 14 d glucose, phone + uploader",
            glucose,
            Quantity::Glucose,
        ),
        (
            "storage: 6 h heart rate, strap + oximeter 1 Hz",
            heart,
            Quantity::HeartRate,
        ),
    ] {
        let (mut raw, mut res) = (Vec::new(), Vec::new());
        let mut rows = (0, 0);
        for _ in 0..rounds {
            let t = Instant::now();
            let mut n = 0;
            for stream in quantity.streams() {
                n += s
                    .readings(&ReadingQuery {
                        patient,
                        stream: Some(*stream),
                        from,
                        to,
                        limit: resolved::MAX_RAW,
                    })
                    .unwrap()
                    .len();
            }
            raw.push(t.elapsed());
            let t = Instant::now();
            let r = resolved::resolve(s, patient, quantity, None, from, to).unwrap();
            res.push(t.elapsed());
            rows = (n, r.series.len());
        }
        row(name, rows, raw, res);
    }

    // Product path: the readings endpoint over loopback HTTP.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let state = ServiceState::new(Store::new(sqlite), Limits::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app(state)).await });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let range = format!(
            "from={}&to={}",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        );
        for (name, patient, stream) in [
            ("HTTP: 14 d glucose, phone + uploader", glucose, "glucose"),
            ("HTTP: 6 h heart rate, strap + oximeter 1 Hz", heart, ""),
        ] {
            let (mut raw, mut res) = (Vec::new(), Vec::new());
            let mut rows = (0, 0);
            for _ in 0..rounds {
                let mut counts = [0usize; 2];
                for (k, flag) in ["false", "true"].into_iter().enumerate() {
                    let t = Instant::now();
                    let v: serde_json::Value = http
                        .get(format!(
                            "http://{addr}/v1/patients/{patient}/readings?stream={stream}&resolved={flag}&{range}"
                        ))
                        .bearer_auth(clinician.expose())
                        .send()
                        .await
                        .unwrap()
                        .error_for_status()
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let took = t.elapsed();
                    counts[k] = v["readings"].as_array().unwrap().len();
                    if k == 0 { raw.push(took) } else { res.push(took) }
                }
                rows = (counts[0], counts[1]);
            }
            row(name, rows, raw, res);
        }
    });
}

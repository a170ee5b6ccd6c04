//! Hostile-client benchmark (issue 13's "done when"), each figure against
//! its own baseline measured in the same run:
//!
//! 1. `/healthz` latency (p50, p99) for a well-behaved client while one
//!    anonymous client holds `slow` connections that trickle header lines
//!    and never finish a request, against the same with no slow client.
//! 2. One tenant's small batch latency (p50, p99) while another tenant's
//!    device posts the largest batches the service accepts back to back,
//!    against the same tenant alone. The other tenant writes in two ways:
//!    a backfill (new minutes every batch: all stored) and replays (the
//!    same minutes under new sequence numbers: refused by the
//!    same-instant rule after the first). The well-behaved tenant posts as
//!    a phone does: 15 new minutes a batch, paced 25 ms apart.
//!
//! The service is `serve_plain` (what `vigil-ingest serve` runs for plain
//! HTTP) over `app(state)` on a fresh SQLite file, then on a fresh
//! database of a throwaway PostgreSQL server with durable settings
//! (`VIGIL_HOSTILE_BACKENDS`, default `sqlite,postgres`), in this process,
//! on loopback; the well-behaved clients connect from 127.0.0.2 and the
//! hostile one from 127.0.0.1.
//!
//! `cargo bench -p vigil-ingest --bench hostile` runs 1,000 slow
//! connections and 200 samples per figure; without `--bench` (as
//! `cargo test --benches` runs it) a small load checks the path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // A bench fails loudly.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::io::AsyncWriteExt;
use vigil_ingest::domain::Role;
use vigil_ingest::serve::{ConnectionLimits, serve_plain};
use vigil_ingest::storage::Store;
use vigil_ingest::storage::postgres::PostgresStorage;
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_ingest::{Limits, ServiceState, admin, app};
use vigil_model::reading::{DeviceId, PatientId, Quality, Stream};
use vigil_model::wire::{
    self, Batch, BatchId, ContentEncoding, Format, StreamReadings, WireReading,
};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut xs: Vec<Duration>) -> (Duration, Duration) {
    xs.sort();
    let (p50, p99) = (percentile(&xs, 0.5), percentile(&xs, 0.99));
    println!(
        "{name:<44} n={:<4} p50 {:>8.2} ms  p99 {:>8.2} ms",
        xs.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    (p50, p99)
}

/// `t` without its nanoseconds (the wire carries microseconds).
fn whole_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

/// A batch of `n` one-minute glucose readings, the first at `t0` with
/// sequence `seq0`.
fn batch(patient: i64, n: usize, seq0: u64, t0: DateTime<Utc>, values_change: bool) -> Vec<u8> {
    let now = whole_micros(Utc::now());
    let t0 = whole_micros(t0);
    let mut b = Batch::new(
        BatchId::random(),
        PatientId(patient.to_string()),
        DeviceId("cgm".into()),
        now,
    );
    let mut g = StreamReadings::new(Stream::Glucose, Some(1), 0x2AA7);
    for i in 0..n {
        g.readings.push(WireReading {
            seq: seq0 + i as u64,
            time: t0 + TimeDelta::minutes(i as i64),
            value: if values_change {
                80.0 + (i % 97) as f64
            } else {
                100.0
            },
            quality: Quality::default(),
            raw: None,
        });
    }
    b.streams.push(g);
    wire::encode_batch(&b, Format::Binary, ContentEncoding::Identity).unwrap()
}

async fn timed_posts(
    c: &reqwest::Client,
    url: &str,
    token: &str,
    patient: i64,
    samples: usize,
    seq0: u64,
    start: DateTime<Utc>,
) -> Vec<Duration> {
    // As a phone sends them: 15 new minutes a batch, in time order from
    // `start` (the sequence is the minute's offset, as a CGM session
    // numbers its readings).
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let body = batch(
            patient,
            15,
            seq0 + (i as u64) * 15,
            start + TimeDelta::minutes(15 * i as i64),
            true,
        );
        let start = Instant::now();
        let r = c
            .post(url)
            .bearer_auth(token)
            .header("content-type", wire::BINARY_CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        out.push(start.elapsed());
        // Paced, so the contended run spans many of the other tenant's
        // batches (200 samples: about 5 s).
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    out
}

async fn healthz(c: &reqwest::Client, url: &str, samples: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let r = c.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        out.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (slow, samples) = if full { (1000, 200) } else { (100, 20) };
    let backends = std::env::var("VIGIL_HOSTILE_BACKENDS").unwrap_or("sqlite,postgres".into());
    for backend in backends.split(',') {
        match backend {
            "sqlite" => {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::new(SqliteStorage::open(&dir.path().join("vigil.db")).unwrap());
                println!("SQLite (a file, as `serve` runs it)");
                run(store, slow, samples, full).await;
            }
            "postgres" => {
                // Durable settings, as a clinic runs it.
                let (pg, store) = tokio::task::spawn_blocking(|| {
                    let pg = vigil_pg_harness::PgServer::start_durable()
                        .unwrap_or_else(|e| panic!("{e}"));
                    let url = pg.fresh_database().unwrap();
                    let store = Store::new(PostgresStorage::connect(&url).unwrap());
                    (pg, store)
                })
                .await
                .unwrap();
                println!("PostgreSQL (durable settings)");
                run(store, slow, samples, full).await;
                tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
            }
            other => panic!("VIGIL_HOSTILE_BACKENDS: unknown backend {other:?}"),
        }
    }
}

/// Both figures against one backend.
async fn run(store: Store, slow: usize, samples: usize, full: bool) {
    // On the blocking pool: PostgreSQL's client must not block a runtime
    // thread.
    let (quiet, loud, quiet_token, loud_token) = store
        .run(|s| {
            let quiet = admin::add_patient(s, "Quiet Tenant")?;
            let loud = admin::add_patient(s, "Loud Tenant")?;
            let quiet_token = admin::add_patient_token(s, quiet, Role::Device)?;
            let loud_token = admin::add_patient_token(s, loud, Role::Device)?;
            Ok((quiet, loud, quiet_token, loud_token))
        })
        .await
        .unwrap();
    // The per-token rate limit off (as in the load bench): the figure is
    // the database writer's contention, not the limiter's.
    let limits = Limits {
        rate: vigil_ingest::rate_limit::RateLimit {
            per_second: 100_000.0,
            burst: 100_000,
        },
        ..Limits::default()
    };
    let state = ServiceState::new(store.clone(), limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_plain(
        listener,
        app(state),
        ConnectionLimits::default(),
        std::future::pending(),
    ));
    let good = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let health = format!("http://{addr}/healthz");
    let batches = format!("http://{addr}/v1/batches");
    println!("hostile-client bench: {slow} slow connections, {samples} samples per figure");

    // 1. /healthz alone, then under `slow` trickling connections.
    let _ = healthz(&good, &health, 5).await;
    let (_, alone_p99) = report("/healthz alone", healthz(&good, &health, samples).await);
    let mut held = Vec::new();
    for _ in 0..slow {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
            held.push(s);
        }
    }
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            for s in &mut held {
                let _ = s.write_all(b"X-Slow: 1\r\n").await;
            }
        }
    });
    let (_, slow_p99) = report(
        &format!("/healthz with {slow} slow connections"),
        healthz(&good, &health, samples).await,
    );
    trickle.abort();
    println!(
        "  p99 difference {:+.2} ms (target: p99 under 50 ms)",
        (slow_p99.as_secs_f64() - alone_p99.as_secs_f64()) * 1e3
    );

    // 2. One tenant's 15-reading batches alone, then while another tenant
    // posts the largest accepted batches back to back, in two ways.
    let quiet_secret = quiet_token.expose().to_owned();
    // The three runs cover consecutive periods that end now.
    let span = TimeDelta::minutes(15 * samples as i64);
    let first = Utc::now() - span * 3 - TimeDelta::minutes(15);
    let (_, quiet_p99) = report(
        "tenant batch (15 readings) alone",
        timed_posts(&good, &batches, &quiet_secret, quiet, samples, 0, first).await,
    );
    let loud_secret = loud_token.expose().to_owned();
    let max = limits.max_readings_per_batch;
    // The other tenant's two ways to write the most: a backfill (every
    // batch `max` new minutes, the ones before the last) and replays (the
    // same `max` minutes again and again under new sequence numbers, so
    // its days grow with every batch).
    let mut next = first + span;
    for (name, replay) in [("backfill", false), ("replays", true)] {
        let loud = Loud {
            url: batches.clone(),
            token: loud_secret.clone(),
            patient: loud,
            max,
            replay,
        };
        let (posted, contended) = loud
            .during(timed_posts(
                &good,
                &batches,
                &quiet_secret,
                quiet,
                samples,
                (next - first).num_minutes() as u64,
                next,
            ))
            .await;
        next += span;
        let (_, contended_p99) = report(
            &format!("tenant batch during another's {name} of {max}"),
            contended,
        );
        println!("  the other tenant had {posted} batches of {max} readings answered meanwhile");
        // The small check (`cargo test --benches`) runs too briefly for it.
        assert!(
            posted >= 2 || !full,
            "the contended run overlapped too few large batches"
        );
        println!(
            "  p99 difference {:+.2} ms (target: at most +100 ms)",
            (contended_p99.as_secs_f64() - quiet_p99.as_secs_f64()) * 1e3
        );
    }
}

/// A tenant posting the largest batches the service accepts, back to back.
struct Loud {
    url: String,
    token: String,
    patient: i64,
    max: usize,
    replay: bool,
}

impl Loud {
    /// Runs `work` while posting; returns how many batches were stored
    /// meanwhile, and `work`'s output.
    async fn during<T>(self, work: impl std::future::Future<Output = T>) -> (usize, T) {
        let posted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = posted.clone();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let task = tokio::spawn(async move {
            let start = Utc::now();
            // Sequences of their own, so no run's readings are already
            // stored from the other's.
            let seq0 = if self.replay { 1u64 << 40 } else { 1 };
            let mut seq = seq0;
            loop {
                let back = if self.replay { 0 } else { seq - seq0 };
                let t0 = start - TimeDelta::minutes((back + self.max as u64) as i64);
                let body = batch(self.patient, self.max, seq, t0, true);
                seq += self.max as u64;
                match client
                    .post(&self.url)
                    .bearer_auth(&self.token)
                    .header("content-type", wire::BINARY_CONTENT_TYPE)
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(r) => panic!("loud batch answered {}", r.status()),
                    Err(_) => break,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let out = work.await;
        task.abort();
        (posted.load(std::sync::atomic::Ordering::Relaxed), out)
    }
}

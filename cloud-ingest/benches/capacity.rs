//! Capacity: how many patients one `vigil-ingest serve` node holds.
//!
//! Half the patients wear a 1-minute CGM, half a 5-minute one. Batches
//! are what streaming reduction leaves of a smooth trace (kept readings
//! with values, about three in four held back as sequence and time;
//! columnar binary, deflated, `Prefer: return=minimal`). Two request mixes
//! (`VIGIL_CAPACITY_MIX`):
//!
//! - `sdk` (the default): what the SDK as shipped sends per patient-day on
//!   average, as `reduction-check` measured it over the simulator's three
//!   profiles (`bench/RESULTS.md`, "Minimal answers, shorter tokens, a
//!   measured steady rule"; `docs/capacity.md`). 5-minute CGM: 40.7
//!   batches, 9.6 alert events, 23.2 heartbeats = 73.5 requests a day;
//!   1-minute: 43.5 + 10.7 + 22.7 = 76.9. A batch carries the day's
//!   readings over its batches: 288 / 40.7 = 7.08 readings for 5-minute
//!   CGM, 1,440 / 43.5 = 33.1 for 1-minute (batch `k` carries readings
//!   `floor(k r)` to `floor((k + 1) r)`, so the day adds up exactly). Of
//!   the heartbeats, 4 a day are health reports (JSON; the SDK's
//!   `heartbeat_with_data_every` is 6 hours while batches flow) and the
//!   rest body-less contact heartbeats (19.2 and 18.7 a day). Alert events
//!   are the SDK's JSON `POST /v1/alerts` with `Prefer: return=minimal`.
//!   So `n` patients offer `n (73.5 + 76.9) / 2 / 86,400` requests a
//!   second. It is the default because it is the load the product puts
//!   on a node; it is a daily average (no busy hour, no catch-up after an
//!   outage: `docs/capacity.md` plans for those with a factor).
//! - `legacy`: the cadence before the steady stretch, kept so that figures
//!   compare with earlier runs: a batch every 15 minutes (15 readings of
//!   1-minute CGM, 3 of 5-minute) and an hourly health report, 120
//!   requests a patient-day, `n / 900` batches and `n / 3600` heartbeats a
//!   second.
//!
//! Arrivals are open-loop: each request is due at a time drawn from a
//! Poisson process at that rate and is sent then whether or not earlier
//! ones have been answered, and its latency runs from when it was due (a
//! sender that fell behind adds its lateness; no coordinated omission).
//! A step holds for a fixed window; it passes when every request got a
//! 2xx and the p99 latency is under 100 ms. The search doubles the patient
//! count from a start until a step fails, then bisects between the last
//! pass and the first fail. The service runs as its own process, so its
//! CPU time per request is read from `/proc`, and so is PostgreSQL's (the
//! postmaster and its backends); between steps the search waits until
//! both are idle. Clients connect from several
//! loopback addresses (127.0.0.2, …): a clinic's phones come from many
//! addresses, and the service caps connections per address.
//!
//! What it does not model: the phones' TLS (terminated here or at a
//! proxy; loopback is plain HTTP), reads by clinicians. The seeded
//! patients (`VIGIL_CAPACITY_SEEDED`, default 5,000) are fewer than the
//! simulated ones; each sends its batches in order along its own timeline,
//! so a step's database work is what that many patients' batches cost,
//! but the token cache sees fewer distinct tokens than a real node.
//! Timelines start at a UTC midnight three days back, and before the
//! search each seeded patient's first day is filled, in one untimed
//! request, up to a point drawn uniformly from the day: a batch makes the
//! service recompute its day's summary over the whole day so far, so
//! patients with empty days would make the node look cheaper than it is.
//!
//! `cargo bench -p vigil-ingest --bench capacity` runs the search on SQLite
//! and on PostgreSQL with durable settings (fsync, synchronous commit and
//! full-page writes on). Without `--bench` (as `cargo test --benches` runs
//! it) one short step per backend checks the path and fails on any error.
//! Environment: `VIGIL_CAPACITY_BACKENDS` (`sqlite,postgres`),
//! `VIGIL_CAPACITY_WINDOW` (seconds per step, default 20),
//! `VIGIL_CAPACITY_START` (patients, default 50,000),
//! `VIGIL_CAPACITY_SEEDED`, `VIGIL_CAPACITY_MIX` (`sdk` or `legacy`),
//! `VIGIL_CAPACITY_PREFILL` (1, or 0 to start every day empty, the bench
//! before the prefill), `VIGIL_CAPACITY_STATEMENTS` (list that many of
//! PostgreSQL's statements by time after each step, from
//! `pg_stat_statements`), `VIGIL_CAPACITY_REPLICAS` (`serve` processes
//! over the one PostgreSQL database, requests spread round robin as a load
//! balancer would; their CPU is added up; default 1, SQLite always 1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // A bench fails loudly.

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/serve.rs"]
mod serve;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_ingest::admin;
use vigil_ingest::domain::Role;
use vigil_model::alerts::{AlertKind, Phase};
use vigil_model::reading::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};
use vigil_model::wire::{
    self, Alert, AppState, Batch, BatchId, BufferHealth, ContentEncoding, Heartbeat, PressureLevel,
};

use serve::Server;

/// The latency a step must hold at p99.
const P99_LIMIT: Duration = Duration::from_millis(100);
/// Loopback source addresses the clients spread over.
const SOURCES: u8 = 8;
/// A request not answered within this long is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How far back, in whole UTC days, the patients' timelines start: each
/// patient's phone sends its batches in order from there, so no reading
/// is in the future, and the readings land in this month's partitions as a
/// live node's do.
const DAYS_BACK: i64 = 3;
/// Reduction's tolerance on the simulated CGM, mg/dL.
const TOLERANCE: f64 = 3.0;
/// The bisection stops when the bracket is this narrow (relative).
const RESOLUTION: f64 = 0.1;

/// The CPU time of every replica so far.
fn cpu_of_all(servers: &[Server]) -> Duration {
    servers.iter().map(|s| cpu::process(s.pid())).sum()
}

/// The database server's CPU time so far (PostgreSQL's postmaster and
/// its backends); zero for SQLite, which runs inside the service.
fn cpu_of_db(db: Option<u32>) -> Duration {
    db.map_or(Duration::ZERO, cpu::tree)
}

/// Waits (at most a minute) until the replicas and the database server
/// together used under 5 % of a core over one second: a backlog left in
/// either (queued requests, a checkpoint) would fail the next step.
fn settle(servers: &[Server], db: Option<u32>) {
    let busy = || cpu_of_all(servers) + cpu_of_db(db);
    for _ in 0..60 {
        let before = busy();
        std::thread::sleep(Duration::from_secs(1));
        if (busy().saturating_sub(before)).as_secs_f64() < 0.05 {
            return;
        }
    }
}

/// One seeded patient: wire id, device token, and how many batches and
/// alert events it has sent so far (its place in its own timeline).
struct Patient {
    id: String,
    token: String,
    one_minute: bool,
    sent: u32,
    alerts: u32,
}

/// What the simulated phones send (see the module comment).
#[derive(Clone, Copy, PartialEq)]
enum Mix {
    Sdk,
    Legacy,
}

/// One kind of CGM's requests a patient-day under a mix.
struct Cadence {
    batches: f64,
    alerts: f64,
    health_reports: f64,
    contacts: f64,
}

impl Mix {
    fn parse(s: &str) -> Mix {
        match s {
            "sdk" => Mix::Sdk,
            "legacy" => Mix::Legacy,
            other => panic!("VIGIL_CAPACITY_MIX: {other:?} is neither sdk nor legacy"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mix::Sdk => "sdk",
            Mix::Legacy => "legacy",
        }
    }

    /// Requests a patient-day for a 1-minute or a 5-minute CGM.
    fn cadence(self, one_minute: bool) -> Cadence {
        match (self, one_minute) {
            (Mix::Legacy, _) => Cadence {
                batches: 96.0,
                alerts: 0.0,
                health_reports: 24.0,
                contacts: 0.0,
            },
            // Measured totals (module comment); 4 health reports a day.
            (Mix::Sdk, false) => Cadence {
                batches: 40.7,
                alerts: 9.6,
                health_reports: 4.0,
                contacts: 23.2 - 4.0,
            },
            (Mix::Sdk, true) => Cadence {
                batches: 43.5,
                alerts: 10.7,
                health_reports: 4.0,
                contacts: 22.7 - 4.0,
            },
        }
    }

    /// Readings (kept and held back) per batch, on average.
    fn readings_per_batch(self, one_minute: bool) -> f64 {
        let per_day = if one_minute { 1440.0 } else { 288.0 };
        per_day / self.cadence(one_minute).batches
    }
}

fn seed(db: &Path, n: usize) -> Vec<Patient> {
    let store = vigil_ingest::storage::open(db).unwrap();
    let storage = store.blocking();
    (0..n)
        .map(|i| {
            let patient = admin::add_patient(storage, &format!("capacity {i}")).unwrap();
            let token = admin::add_patient_token(storage, patient, Role::Device).unwrap();
            Patient {
                id: patient.to_string(),
                token: token.expose().to_owned(),
                one_minute: i % 2 == 0,
                sent: 0,
                alerts: 0,
            }
        })
        .collect()
}

/// The sequence numbers a patient's `k`-th batch carries under `mix`.
fn batch_seqs(mix: Mix, one_minute: bool, k: u32) -> std::ops::Range<u64> {
    let r = mix.readings_per_batch(one_minute);
    let edge = |k: u32| (f64::from(k) * r).floor() as u64;
    edge(k)..edge(k + 1)
}

/// The patient's own clock after `k` batches: just past its last reading.
fn timeline(mix: Mix, p: &Patient, k: u32, origin: DateTime<Utc>) -> DateTime<Utc> {
    let step_min = if p.one_minute { 1 } else { 5 };
    origin + TimeDelta::minutes(step_min * batch_seqs(mix, p.one_minute, k).start as i64)
}

/// The batch a patient's phone sends for its `k`-th window, reduced as the
/// streaming reducer leaves a smooth trace: about three in four readings
/// held back; the last of every batch kept, and the very first reading
/// kept, so every held-back reading has kept neighbours.
fn batch(mix: Mix, p: &Patient, k: u32, origin: DateTime<Utc>, sent_at: DateTime<Utc>) -> Vec<u8> {
    batches(mix, p, k..k + 1, origin, sent_at)
}

/// Batches `ks` in one request, reduced as each would have been: the
/// day's readings so far, posted before the search (see [`prefill`]).
///
/// `sent_at` is the phone's clock when it sends, as a phone with a right
/// clock stamps it: the service shifts every reading of a batch whose
/// `sent_at` is off by more than a few seconds, so a stamp from the
/// simulated timeline would move each batch onto the present and pile the
/// batches of a day on top of each other.
fn batches(
    mix: Mix,
    p: &Patient,
    ks: std::ops::Range<u32>,
    origin: DateTime<Utc>,
    sent_at: DateTime<Utc>,
) -> Vec<u8> {
    let device = format!("cgm-{}", p.id);
    let step_min = if p.one_minute { 1 } else { 5 };
    let mut b = Batch::new(
        BatchId::random(),
        PatientId(p.id.clone()),
        DeviceId(device.clone()),
        sent_at,
    );
    for k in ks {
        let seqs = batch_seqs(mix, p.one_minute, k);
        let (first, last) = (seqs.start, seqs.end.saturating_sub(1));
        for seq in seqs {
            let t = origin + TimeDelta::minutes(step_min * seq as i64);
            let minutes = (seq * step_min as u64) as f64;
            let r = Reading {
                patient: PatientId(p.id.clone()),
                stream: Stream::Glucose,
                value: (130.0 + 35.0 * (minutes / 120.0).sin()).round(),
                sensor_time: t,
                receive_time: t,
                sequence: seq,
                quality: Quality::default(),
                provenance: Provenance {
                    device: DeviceId(device.clone()),
                    characteristic: 0x2AA7,
                    raw: Vec::new(),
                    session: Some(1),
                },
            };
            let kept = seq == 0 || seq == last || (seq - first) % 4 == 3;
            if kept {
                b.push_reading(&r, false).unwrap();
            } else {
                b.push_held_back(&r, TOLERANCE).unwrap();
            }
        }
    }
    let binary = wire::binary::encode(&b).unwrap();
    wire::compress::compress(&binary, ContentEncoding::Deflate).unwrap()
}

/// The present in whole microseconds, as the wire carries times.
fn wall_clock() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

/// Fills each seeded patient's first UTC day up to a point drawn
/// uniformly from the day, in one request per patient, before anything is
/// timed; returns the readings posted. Every batch makes the service
/// recompute its day's summary over the whole day so far (the triage
/// list's counts), so a node whose patients' days were all nearly empty
/// would look cheaper than a live one, where a batch lands on half a day
/// of readings on average.
async fn prefill(
    url: &str,
    mix: Mix,
    patients: &mut [Patient],
    origin: DateTime<Utc>,
    rng: &mut ChaCha8Rng,
) -> u64 {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT * 6)
        .build()
        .unwrap();
    let mut readings = 0;
    let mut posts = Vec::new();
    for p in patients.iter_mut() {
        let per_day = mix.cadence(p.one_minute).batches.floor() as u32;
        let k0 = rng.random_range(0..per_day);
        if k0 == 0 {
            continue;
        }
        readings += batch_seqs(mix, p.one_minute, k0).start;
        posts.push((
            Patient {
                id: p.id.clone(),
                token: p.token.clone(),
                one_minute: p.one_minute,
                sent: 0,
                alerts: 0,
            },
            k0,
        ));
        p.sent = k0;
    }
    let posts = Arc::new(std::sync::Mutex::new(posts));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, posts, url) = (client.clone(), posts.clone(), format!("{url}/v1/batches"));
            tokio::spawn(async move {
                loop {
                    let next = posts.lock().unwrap().pop();
                    let Some((p, k0)) = next else { break };
                    // Built when sent, so its stamp is the present.
                    let body = batches(mix, &p, 0..k0, origin, wall_clock());
                    let resp = client
                        .post(&url)
                        .bearer_auth(&p.token)
                        .header("content-type", "application/vnd.vigil.batch+binary; v=1")
                        .header("content-encoding", "deflate")
                        .header("prefer", wire::PREFER_MINIMAL)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(
                        resp.status().is_success(),
                        "prefill: HTTP {}",
                        resp.status()
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    readings
}

fn heartbeat(p: &Patient, at: DateTime<Utc>) -> Vec<u8> {
    let hb = Heartbeat {
        v: wire::PROTOCOL_VERSION,
        patient: PatientId(p.id.clone()),
        sent_at: at,
        sdk_version: "0.1.0".into(),
        app_state: AppState::Background,
        phone_battery_pct: Some(64.0),
        buffer: BufferHealth {
            unsent_readings: 3,
            pending_alerts: 0,
            used_bytes: 1 << 20,
            budget_bytes: 64 << 20,
            pressure: PressureLevel::Normal,
        },
        devices: Vec::new(),
    };
    wire::json::to_vec(&hb).unwrap()
}

/// The SDK's alert event as it posts it (JSON, no device, no `null`s).
fn alert(p: &Patient, n: u32, at: DateTime<Utc>) -> Vec<u8> {
    let a = Alert {
        v: wire::PROTOCOL_VERSION,
        patient: PatientId(p.id.clone()),
        device: None,
        sent_at: at,
        id: format!("low-{}-{}", p.id, n / 2),
        kind: AlertKind::Low,
        // An episode starts and ends.
        phase: if n % 2 == 0 { Phase::Start } else { Phase::End },
        time: at,
        glucose_mg_dl: Some(if n % 2 == 0 { 66.0 } else { 76.0 }),
        rate_mg_dl_per_min: None,
        battery_pct: None,
        session_expires_at: None,
    };
    wire::json::to_vec(&a).unwrap()
}

/// The kinds of request, each with its route and headers.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Batch,
    Alert,
    HealthReport,
    Contact,
}

/// One request of a step, built before the step starts (the phones' CPU
/// is not the service's).
struct Planned {
    due: Duration,
    token: Arc<str>,
    body: Vec<u8>,
    kind: Kind,
}

fn plan(
    mix: Mix,
    patients: &mut [Patient],
    count: u64,
    window: Duration,
    origin: DateTime<Utc>,
    rng: &mut ChaCha8Rng,
) -> Vec<Planned> {
    // Every (CGM, kind) pair with its rate: half the patients each CGM.
    let mut classes = Vec::new();
    for one_minute in [true, false] {
        let c = mix.cadence(one_minute);
        let per_s = count as f64 / 2.0 / 86_400.0;
        for (kind, per_day) in [
            (Kind::Batch, c.batches),
            (Kind::Alert, c.alerts),
            (Kind::HealthReport, c.health_reports),
            (Kind::Contact, c.contacts),
        ] {
            if per_day > 0.0 {
                classes.push((one_minute, kind, per_s * per_day));
            }
        }
    }
    let total_rate: f64 = classes.iter().map(|c| c.2).sum();
    let planned_at = wall_clock();
    // Round robin over each CGM's own patients.
    let (ones, fives): (Vec<usize>, Vec<usize>) =
        (0..patients.len()).partition(|&i| patients[i].one_minute);
    let mut next = [0usize; 2];
    let mut out = Vec::new();
    let mut t = 0.0f64;
    loop {
        // Exponential inter-arrival times: a Poisson process at the rate.
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        t += -u.ln() / total_rate;
        if t >= window.as_secs_f64() {
            break;
        }
        let mut pick = rng.random_range(0.0..total_rate);
        let &(one_minute, kind, _) = classes
            .iter()
            .find(|c| {
                pick -= c.2;
                pick < 0.0
            })
            .unwrap_or(&classes[classes.len() - 1]);
        let (own, cursor) = if one_minute {
            (&ones, &mut next[0])
        } else {
            (&fives, &mut next[1])
        };
        let p = &mut patients[own[*cursor % own.len()]];
        *cursor += 1;
        let now = timeline(mix, p, p.sent, origin);
        // The phone's clock when the request is due (see `batches`).
        let sent_at = planned_at + TimeDelta::microseconds((t * 1e6) as i64);
        let body = match kind {
            Kind::Batch => {
                let k = p.sent;
                p.sent += 1;
                assert!(
                    timeline(mix, p, p.sent, origin) <= Utc::now(),
                    "seed more patients: one patient's timeline reached the present"
                );
                batch(mix, p, k, origin, sent_at)
            }
            Kind::Alert => {
                p.alerts += 1;
                alert(p, p.alerts, now)
            }
            Kind::HealthReport => heartbeat(p, now),
            Kind::Contact => Vec::new(),
        };
        out.push(Planned {
            due: Duration::from_secs_f64(t),
            token: Arc::from(p.token.as_str()),
            body,
            kind,
        });
    }
    out
}

/// What one step measured.
struct Step {
    patients: u64,
    offered_per_s: f64,
    answered: usize,
    errors: Vec<String>,
    latencies: Vec<Duration>,
    cpu_per_request: Duration,
    /// The database server's CPU per request (PostgreSQL only).
    db_cpu_per_request: Duration,
    cores: f64,
}

impl Step {
    fn p(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::MAX;
        }
        let rank = ((q / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[rank.min(self.latencies.len() - 1)]
    }

    fn passed(&self) -> bool {
        self.errors.is_empty() && self.p(99.0) < P99_LIMIT
    }
}

fn clients() -> Vec<reqwest::Client> {
    (0..SOURCES)
        .map(|i| {
            reqwest::Client::builder()
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i)))
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap()
        })
        .collect()
}

async fn run_step(
    servers: &[Server],
    db: Option<u32>,
    planned: Vec<Planned>,
    patients: u64,
    window: Duration,
) -> Step {
    let clients = clients();
    let route = |path: &str| -> Vec<String> {
        servers.iter().map(|s| format!("{}{path}", s.url)).collect()
    };
    let (batches, alerts, heartbeats) = (
        route("/v1/batches"),
        route("/v1/alerts"),
        route("/v1/heartbeats"),
    );
    let offered = planned.len();
    let cpu_before = cpu_of_all(servers);
    let db_before = cpu_of_db(db);
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(offered);
    for (i, r) in planned.into_iter().enumerate() {
        let due = started + r.due;
        tokio::time::sleep_until(due).await;
        let client = clients[i % clients.len()].clone();
        // Round robin over the replicas, as a load balancer would.
        let replica = i % servers.len();
        let url = match r.kind {
            Kind::Batch => batches[replica].clone(),
            Kind::Alert => alerts[replica].clone(),
            Kind::HealthReport | Kind::Contact => heartbeats[replica].clone(),
        };
        tasks.push(tokio::spawn(async move {
            let mut req = client.post(url).bearer_auth(&*r.token).body(r.body);
            // The headers the SDK's poster sends (`core/src/sync/http.rs`).
            req = match r.kind {
                Kind::Batch => req
                    .header("content-type", "application/vnd.vigil.batch+binary; v=1")
                    .header("content-encoding", "deflate")
                    .header("prefer", wire::PREFER_MINIMAL),
                Kind::Alert => req
                    .header("content-type", "application/json")
                    .header("prefer", wire::PREFER_MINIMAL),
                Kind::HealthReport => req.header("content-type", "application/json"),
                Kind::Contact => req,
            };
            match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    // The acknowledgement is part of the round trip.
                    let _ = resp.bytes().await;
                    Ok(due.elapsed())
                }
                Ok(resp) => Err(format!("HTTP {}", resp.status())),
                Err(e) => Err(e.to_string()),
            }
        }));
    }
    let mut latencies = Vec::with_capacity(offered);
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(d)) => latencies.push(d),
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_of_all(servers).saturating_sub(cpu_before);
    let db_cpu = cpu_of_db(db).saturating_sub(db_before);
    latencies.sort();
    Step {
        patients,
        offered_per_s: offered as f64 / window.as_secs_f64(),
        answered: latencies.len(),
        errors,
        cpu_per_request: cpu / (offered.max(1) as u32),
        db_cpu_per_request: db_cpu / (offered.max(1) as u32),
        cores: cpu.as_secs_f64() / elapsed.as_secs_f64(),
        latencies,
    }
}

fn ms(d: Duration) -> String {
    if d == Duration::MAX {
        return "–".into();
    }
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn print_step(backend: &str, s: &Step) {
    println!(
        "| {backend} | {} | {:.0} | {} | {} | {} / {} / {} | {:.2} | {:.2} | {:.2} | {} |",
        s.patients,
        s.offered_per_s,
        s.answered,
        s.errors.len(),
        ms(s.p(50.0)),
        ms(s.p(99.0)),
        ms(s.latencies.last().copied().unwrap_or(Duration::MAX)),
        s.cpu_per_request.as_secs_f64() * 1000.0,
        s.db_cpu_per_request.as_secs_f64() * 1000.0,
        s.cores,
        if s.passed() { "pass" } else { "fail" },
    );
    if let Some(e) = s.errors.first() {
        println!("|  | first error: {e} | | | | | | | | |");
    }
}

struct Settings {
    full: bool,
    mix: Mix,
    window: Duration,
    start: u64,
    seeded: usize,
    /// `serve` processes over the one PostgreSQL database.
    replicas: usize,
    /// Whether the seeded patients' first day is filled before the search.
    prefill: bool,
    /// How many of PostgreSQL's statements to list after each step, by
    /// their share of the database's time (0: none, and no tracking).
    statements: usize,
}

/// The `top` statements by execution time since the last call, as a table
/// under the step's row; then resets the counters for the next step.
fn print_statements(url: &str, top: usize, requests: usize) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let rows = c
        .query(
            "SELECT calls, total_exec_time, mean_exec_time, shared_blks_hit, shared_blks_read,
                    wal_bytes::float8, regexp_replace(left(query, 140), '\\s+', ' ', 'g')
               FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1",
            &[&(top as i64)],
        )
        .unwrap();
    let total: f64 = c
        .query_one(
            "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements",
            &[],
        )
        .unwrap()
        .get(0);
    println!(
        "|  | statements: calls / request, mean ms, share of time, blocks hit / read per call, WAL bytes per call | | | | | | | | |"
    );
    for r in rows {
        let calls: i64 = r.get(0);
        let per = |x: f64| x / calls.max(1) as f64;
        let (hit, read): (i64, i64) = (r.get(3), r.get(4));
        println!(
            "|  | {:.2} / req, {:.3} ms, {:.0} %, {:.1} / {:.1}, {:.0} B: `{}` | | | | | | | | |",
            calls as f64 / requests.max(1) as f64,
            r.get::<_, f64>(2),
            100.0 * r.get::<_, f64>(1) / total.max(f64::MIN_POSITIVE),
            per(hit as f64),
            per(read as f64),
            per(r.get::<_, f64>(5)),
            r.get::<_, String>(6).replace('|', "\\|"),
        );
    }
    reset_statements(&mut c);
}

/// Starts `pg_stat_statements`' counts afresh, so a step's table holds that
/// step alone.
fn reset_statements(c: &mut postgres::Client) {
    c.batch_execute("SELECT pg_stat_statements_reset()")
        .unwrap();
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Runs the search (or, not `full`, one step) against `db`. Returns the
/// largest passing patient count (0 if none) and whether any step of a
/// quick run failed with errors.
fn search(
    backend: &str,
    db: &Path,
    db_pid: Option<u32>,
    s: &Settings,
    replicas: usize,
) -> (u64, bool) {
    let mut patients = seed(db, s.seeded);
    let servers: Vec<Server> = (0..replicas)
        .map(|_| {
            Server::start(
                db,
                // The per-token throttle guards against a misbehaving
                // phone; a phone at its real cadence never meets it, and
                // here one seeded token stands for many phones.
                &["--rate-per-second", "100000", "--rate-burst", "100000"],
            )
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    // Whole seconds: the wire carries whole microseconds.
    let today = Utc::now().timestamp().div_euclid(86_400) * 86_400;
    let origin = DateTime::from_timestamp(today, 0).unwrap() - TimeDelta::days(DAYS_BACK);
    if s.prefill {
        let filled = runtime.block_on(prefill(
            &servers[0].url,
            s.mix,
            &mut patients,
            origin,
            &mut rng,
        ));
        println!(
            "| {backend} | prefill: {filled} readings, the {} seeded patients' first day filled to a uniform point | | | | | | | | |",
            patients.len()
        );
        // A node that has run for a while has its statistics and its
        // checkpoints behind it: do both now rather than in the first steps.
        if db_pid.is_some() {
            let url = db.to_str().unwrap();
            let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
            // Two statements: VACUUM refuses to run in the implicit
            // transaction of a multi-statement query.
            c.batch_execute("VACUUM ANALYZE").unwrap();
            c.batch_execute("CHECKPOINT").unwrap();
        }
    }
    if s.full {
        settle(&servers, db_pid);
    }
    let profiled = s.statements > 0 && db_pid.is_some();
    if profiled {
        let mut c = postgres::Client::connect(db.to_str().unwrap(), postgres::NoTls).unwrap();
        reset_statements(&mut c);
    }
    let mut step = |count: u64| {
        let planned = plan(s.mix, &mut patients, count, s.window, origin, &mut rng);
        let result = runtime.block_on(run_step(&servers, db_pid, planned, count, s.window));
        print_step(backend, &result);
        if profiled {
            let requests = result.answered + result.errors.len();
            print_statements(db.to_str().unwrap(), s.statements, requests);
        }
        // An overloaded step leaves a backlog (queued requests, WAL
        // checkpoints) that would fail the next step too: wait until the
        // service is idle before the next one starts.
        if s.full {
            settle(&servers, db_pid);
        }
        result
    };
    if !s.full {
        let r = step(s.start);
        return (if r.passed() { s.start } else { 0 }, !r.errors.is_empty());
    }
    let (mut pass, mut fail) = (0u64, None::<u64>);
    let mut count = s.start;
    // Doubling until a step fails (bounded: 2^7 times the start at most).
    for _ in 0..8 {
        if step(count).passed() {
            pass = count;
            count *= 2;
        } else {
            fail = Some(count);
            break;
        }
    }
    if let Some(mut hi) = fail {
        let mut lo = pass;
        while (hi - lo) as f64 > RESOLUTION * hi as f64 {
            let mid = (lo + hi) / 2;
            if step(mid).passed() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        pass = lo;
    }
    (pass, false)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let settings = Settings {
        full,
        mix: Mix::parse(&std::env::var("VIGIL_CAPACITY_MIX").unwrap_or("sdk".into())),
        window: Duration::from_secs(env_num("VIGIL_CAPACITY_WINDOW", if full { 20 } else { 2 })),
        start: env_num("VIGIL_CAPACITY_START", if full { 50_000 } else { 20_000 }),
        seeded: env_num("VIGIL_CAPACITY_SEEDED", if full { 5_000 } else { 200 }),
        replicas: env_num("VIGIL_CAPACITY_REPLICAS", 1usize).max(1),
        prefill: env_num("VIGIL_CAPACITY_PREFILL", 1u8) == 1,
        statements: env_num("VIGIL_CAPACITY_STATEMENTS", 0usize),
    };
    let backends = std::env::var("VIGIL_CAPACITY_BACKENDS").unwrap_or("sqlite,postgres".into());
    let day = |one_minute| {
        let c = settings.mix.cadence(one_minute);
        c.batches + c.alerts + c.health_reports + c.contacts
    };
    println!(
        "capacity: open-loop, mix {} ({:.1} / {:.1} requests a patient-day for 1- / 5-minute CGM, \
         {:.1} / {:.1} readings a batch), {} s a step, p99 limit {} ms, {} seeded patients, loopback",
        settings.mix.name(),
        day(true),
        day(false),
        settings.mix.readings_per_batch(true),
        settings.mix.readings_per_batch(false),
        settings.window.as_secs(),
        P99_LIMIT.as_millis(),
        settings.seeded
    );
    println!(
        "| backend | patients | requests / s | answered | errors | p50 / p99 / max ms | service CPU ms / request | database CPU ms / request | service cores | step |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|---:|---|");
    let mut failed = false;
    let mut found = Vec::new();
    for backend in backends.split(',').map(str::trim) {
        match backend {
            "sqlite" => {
                let dir = tempfile::tempdir().unwrap();
                // One process owns a SQLite file's writer: no replicas.
                let (n, bad) = search(
                    "SQLite",
                    &dir.path().join("capacity.db"),
                    None,
                    &settings,
                    1,
                );
                found.push(("SQLite".to_owned(), n));
                failed |= bad;
            }
            "postgres" => {
                let pg = if settings.statements > 0 {
                    vigil_pg_harness::PgServer::start_durable_profiled()
                } else {
                    vigil_pg_harness::PgServer::start_durable()
                }
                .unwrap_or_else(|e| panic!("{e}"));
                let url = pg.fresh_database().unwrap();
                if settings.statements > 0 {
                    postgres::Client::connect(&url, postgres::NoTls)
                        .and_then(|mut c| c.batch_execute("CREATE EXTENSION pg_stat_statements"))
                        .unwrap_or_else(|e| panic!("pg_stat_statements: {e}"));
                }
                let name = if settings.replicas > 1 {
                    format!("PostgreSQL (durable), {} replicas", settings.replicas)
                } else {
                    "PostgreSQL (durable)".to_owned()
                };
                let pid = pg.postmaster_pid().unwrap_or_else(|e| panic!("{e}"));
                let (n, bad) = search(
                    &name,
                    Path::new(&url),
                    Some(pid),
                    &settings,
                    settings.replicas,
                );
                found.push((name, n));
                failed |= bad;
            }
            other => panic!("VIGIL_CAPACITY_BACKENDS: unknown backend {other:?}"),
        }
    }
    for (backend, n) in found {
        if settings.full {
            println!(
                "{backend}: the largest patient count that held p99 < {} ms with no errors: {n}",
                P99_LIMIT.as_millis()
            );
        } else {
            println!("{backend}: one check step (no search without --bench)");
        }
    }
    if failed {
        eprintln!("a step had errors");
        std::process::exit(1);
    }
}

//! The phone's energy budget (issue 19): the SDK facade on simulated time
//! for one simulated day, synced to the real ingest service in-process, in
//! three situations (a CGM paired and idle; a CGM and a 1 Hz heart-rate
//! strap; a CGM with no network), counting per simulated hour what drains
//! a phone's battery:
//!
//! - wake-ups: the SDK's timer expiries (`vigil_core::energy`), against the
//!   floor the readings force (one wake per notification) and a bare tokio
//!   runtime sleeping the same day; and each SDK thread's voluntary context
//!   switches from `/proc/self/task/*/status` (on a paused clock a timer
//!   costs the OS no sleep, so these count the real threads' wakes: the
//!   callback thread, the request thread);
//! - disk flushes: buffer commits at `synchronous=FULL` (each an fsync);
//! - radio: HTTP requests the sync engine attempted, and radio wakes (sync
//!   passes that sent anything; one pass's requests go back to back).
//!
//! `cargo bench -p vigil-e2e --bench energy` prints the table and fails when
//! a budget is missed; `cargo test --benches` runs it once. Results:
//! `bench/RESULTS.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use vigil_core::api::{
    AlertEvent, BufferEvent, ClockMode, DeviceEvent, DeviceEventKind, DeviceKind, HostRequest,
    Listener, Network, ReadingEvent, SyncEvent, Vigil, VigilConfig,
};
use vigil_core::energy::EnergyCounters;
use vigil_e2e::service::{Service, unthrottled_limits};

const HOURS: u64 = 24;

/// Voluntary context switches per thread name, summed over threads.
fn context_switches() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let mut name = String::new();
        let mut switches = 0;
        for line in status.lines() {
            if let Some(n) = line.strip_prefix("Name:") {
                name = n.trim().to_string();
            } else if let Some(v) = line.strip_prefix("voluntary_ctxt_switches:") {
                switches = v.trim().parse().unwrap_or(0);
            }
        }
        *out.entry(name).or_insert(0) += switches;
    }
    out
}

/// Counts readings and alerts heard; snapshots the counters the moment
/// the last session stops (after it, paused time races on unobserved).
#[derive(Default)]
struct Heard {
    readings: AtomicU64,
    alerts: AtomicU64,
    devices: AtomicU64,
    stopped: AtomicU64,
    at_stop: Mutex<Option<(EnergyCounters, BTreeMap<String, u64>)>>,
    /// Sync events by kind, until the sessions stop: what the requests were.
    sync: Mutex<BTreeMap<String, u64>>,
}

impl Listener for Heard {
    fn on_reading(&self, _: ReadingEvent) {
        self.readings.fetch_add(1, Ordering::Relaxed);
    }
    fn on_alert(&self, _: AlertEvent) {
        self.alerts.fetch_add(1, Ordering::Relaxed);
    }
    fn on_device_event(&self, e: DeviceEvent) {
        if matches!(e.kind, DeviceEventKind::Stopped | DeviceEventKind::Failed) {
            let n = self.stopped.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.devices.load(Ordering::SeqCst) {
                *self.at_stop.lock().unwrap() = Some((EnergyCounters::now(), context_switches()));
            }
        }
    }
    fn on_sync_event(&self, e: SyncEvent) {
        if self.at_stop.lock().unwrap().is_none() {
            // A retry counts under its reason too: what failed is what
            // the loop is made of.
            let key = if e.kind == "retrying" {
                let reason = e.detail.split_once(": ").map_or("", |(_, r)| r);
                format!("retrying ({})", reason.chars().take(80).collect::<String>())
            } else {
                e.kind
            };
            *self.sync.lock().unwrap().entry(key).or_insert(0) += 1;
        }
    }
    fn on_buffer_event(&self, _: BufferEvent) {}
    fn on_host_request(&self, _: HostRequest) {}
}

struct Row {
    situation: &'static str,
    notifications_per_hour: f64,
    wakes_per_hour: f64,
    flushes_per_hour: f64,
    lazy_commits_per_hour: f64,
    requests_per_hour: f64,
    radio_wakes_per_hour: f64,
    alerts: u64,
    switches_per_hour: BTreeMap<String, f64>,
    sync_events: BTreeMap<String, u64>,
    wall: Duration,
}

fn situation(
    service: &Service,
    name: &'static str,
    devices: &[(&str, DeviceKind)],
    network: Network,
) -> Row {
    let dir = tempfile::tempdir_in(shm()).unwrap();
    // Midnight UTC two days ago: the simulated day ends before the
    // service's "now" (it refuses readings from the future), and the
    // simulated patient, which follows the time of day, is the same on
    // every run.
    const DAY_MS: i64 = 86_400_000;
    let start_ms = (Utc::now().timestamp_millis() / DAY_MS - 2) * DAY_MS;
    let mut config = VigilConfig::new(dir.path().join("buffer.db"), service.patient.to_string());
    config.clock = ClockMode::Simulated {
        start_ms,
        run_for: Duration::from_secs(HOURS * 3600),
    };
    config.server_url = Some(service.url.clone());
    config.token = Some(service.device_token.clone());
    let heard = Arc::new(Heard::default());
    heard.devices.store(devices.len() as u64, Ordering::SeqCst);
    let mut sdk = Vigil::new(config, heard.clone(), None).unwrap();
    for (d, k) in devices {
        sdk.pair(d, *k).unwrap();
    }
    let began = Instant::now();
    let before = (EnergyCounters::now(), context_switches());
    sdk.set_network(network);
    sdk.start().unwrap();
    while heard.at_stop.lock().unwrap().is_none() {
        assert!(
            began.elapsed() < Duration::from_secs(900),
            "{name}: too slow"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = began.elapsed();
    let (after, switches) = heard.at_stop.lock().unwrap().take().unwrap();
    sdk.close().unwrap();
    let spent = after.since(&before.0);
    let hours = HOURS as f64;
    let mut switches_per_hour = BTreeMap::new();
    for (thread, n) in switches {
        if !thread.starts_with("vigil-") {
            continue;
        }
        let was = before.1.get(&thread).copied().unwrap_or(0);
        switches_per_hour.insert(thread, n.saturating_sub(was) as f64 / hours);
    }
    Row {
        situation: name,
        notifications_per_hour: heard.readings.load(Ordering::Relaxed) as f64 / hours,
        wakes_per_hour: spent.timer_wakes as f64 / hours,
        flushes_per_hour: spent.flushing_commits as f64 / hours,
        lazy_commits_per_hour: spent.lazy_commits as f64 / hours,
        requests_per_hour: spent.requests as f64 / hours,
        radio_wakes_per_hour: spent.radio_wakes as f64 / hours,
        alerts: heard.alerts.load(Ordering::Relaxed),
        switches_per_hour,
        sync_events: heard.sync.lock().unwrap().clone(),
        wall,
    }
}

/// A RAM-backed directory when there is one: the counters count commits,
/// and the day should not wait for this machine's disk.
fn shm() -> std::path::PathBuf {
    let p = std::path::PathBuf::from("/dev/shm");
    if p.is_dir() { p } else { std::env::temp_dir() }
}

/// The floor: a bare paused tokio runtime sleeping the same day on its own
/// thread; its voluntary context switches, read by the thread itself.
fn bare_runtime() -> u64 {
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async { tokio::time::sleep(Duration::from_secs(HOURS * 3600)).await });
        std::fs::read_to_string("/proc/thread-self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
    .join()
    .unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-service")
        .enable_all()
        .build()
        .unwrap();
    // A simulated day passes here in seconds: the service's per-token
    // throttle, which counts wall-clock seconds, would answer it with 429s
    // and the retries would be the bench's, not the product's. A real day
    // at the measured rate (under 10 requests an hour) is five orders of
    // magnitude below the default (20 a second).
    let service = rt.block_on(Service::start_with(unthrottled_limits()));
    let floor_switches = bare_runtime();
    let rows = [
        situation(
            &service,
            "idle, CGM paired (5-min readings), Wi-Fi",
            &[("cgm-1", DeviceKind::Cgm)],
            Network::Wifi,
        ),
        situation(
            &service,
            "CGM + 1 Hz heart-rate strap, Wi-Fi",
            &[("cgm-2", DeviceKind::Cgm), ("hr-2", DeviceKind::HeartRate)],
            Network::Wifi,
        ),
        situation(
            &service,
            "offline, CGM paired",
            &[("cgm-3", DeviceKind::Cgm)],
            Network::None,
        ),
    ];
    println!(
        "energy per simulated hour ({HOURS} h simulated each; floor: one wake per reading \
         heard, and a bare paused runtime sleeping the day: 1 timer, {floor_switches} \
         voluntary context switches in all)"
    );
    println!(
        "| situation | readings heard (floor: 1 wake each) | SDK timer wakes | flushes (FULL commits) | \
         NORMAL commits | flushes per 10 s of readings | requests | radio wakes (sync passes that sent) | \
         alerts in the day | wall time |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {} | {:.1} s |",
            r.situation,
            r.notifications_per_hour,
            r.wakes_per_hour,
            r.flushes_per_hour,
            r.lazy_commits_per_hour,
            r.flushes_per_hour / 360.0,
            r.requests_per_hour,
            r.radio_wakes_per_hour,
            r.alerts,
            r.wall.as_secs_f64(),
        );
    }
    println!();
    println!("voluntary context switches per simulated hour, per SDK thread (real time):");
    for r in &rows {
        let per: Vec<String> = r
            .switches_per_hour
            .iter()
            .map(|(t, n)| format!("{t} {n:.1}"))
            .collect();
        println!("- {}: {}", r.situation, per.join(", "));
    }
    println!();
    println!("sync events in the simulated day, by kind:");
    for r in &rows {
        println!("- {}: {:?}", r.situation, r.sync_events);
    }
    println!();
    let over = over_budget(&rows);
    if over.is_empty() {
        println!("every budget met");
    } else {
        for o in &over {
            eprintln!("over budget: {o}");
        }
        std::process::exit(1);
    }
}

/// The budgets per simulated hour; the bench fails when one is
/// missed, so a change that costs the battery is caught where it is
/// measured. The counters count events, not time, so the machine's load
/// does not move them.
fn over_budget(rows: &[Row]) -> Vec<String> {
    let mut over = Vec::new();
    let hours = HOURS as f64;
    for r in rows {
        let alerts = r.sync_events.get("alert_delivered").copied().unwrap_or(0) as f64 / hours;
        if r.situation.starts_with("idle") {
            if r.wakes_per_hour > 15.0 {
                over.push(format!(
                    "{}: {:.1} timer wakes an hour above the notification floor (budget 15)",
                    r.situation, r.wakes_per_hour
                ));
            }
            // Each delivered alert is one request, and the budget is for
            // hours in which no alert fires.
            if r.requests_per_hour - alerts > 5.0 {
                over.push(format!(
                    "{}: {:.1} requests an hour besides alerts (budget 5)",
                    r.situation,
                    r.requests_per_hour - alerts
                ));
            }
        }
        if r.situation.contains("strap") && r.flushes_per_hour / 360.0 > 1.0 {
            over.push(format!(
                "{}: {:.2} flushes per 10 s of readings (budget 1)",
                r.situation,
                r.flushes_per_hour / 360.0
            ));
        }
        if r.sync_events
            .keys()
            .any(|k| k.starts_with("retrying") || k == "refused")
        {
            over.push(format!(
                "{}: the sync engine retried or was refused: {:?}",
                r.situation, r.sync_events
            ));
        }
    }
    over
}

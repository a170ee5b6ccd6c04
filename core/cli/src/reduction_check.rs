//! `vigil reduction-check`: the reduction the product delivers, measured on
//! the product path.
//!
//! For each simulated patient profile and CGM interval it runs one SDK
//! (the facade every app embeds) on simulated time with a simulated CGM,
//! syncing on the SDK's default cadence (15-minute batches, stretched to 60
//! minutes while glucose is steady, `--stable-interval-min`) to the real
//! ingest service
//! in-process (embedded SQLite, HTTP over loopback), then compares what the
//! service stored with the raw trace the phone decoded:
//!
//! - the share of glucose readings that travelled held back, beside the
//!   share the same reducer holds back offline on the whole raw trace
//!   (batching should cost almost nothing);
//! - the worst distance between a reconstructed value and the raw reading;
//! - time in each consensus band from the service's data and from the raw
//!   trace (equal, since band crossings are always kept);
//! - whether every reading at the time of an alert arrived kept;
//! - the bytes the phone and the service exchanged per patient-day, HTTP
//!   headers included (a counting relay on the wire), beside what an
//!   xDrip+-style Nightscout uploader exchanges posting the same readings.
//!
//! Every figure is computed from this run's data; nothing is assumed.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, OpenFlags};
use vigil_core::api::{
    AlertEvent, BufferEvent, ClockMode, DeviceEvent, DeviceEventKind, DeviceKind, HostRequest,
    Listener, Network, ReadingEvent, Seconds, SimulatedGlucose, Simulation, SyncEvent, Vigil,
    VigilConfig,
};
use vigil_core::model::{Sample, Stream};
use vigil_core::reduce::{GlucoseBand, Policy, ReducerConfig, reduce};
use vigil_core::sync::Steadiness;

use crate::Failure;
use crate::fleet::service;
use crate::wire_meter;

/// Arguments of `vigil reduction-check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Simulated days per run.
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// CGM intervals to run, in minutes (1 and/or 5).
    #[arg(long, value_delimiter = ',', default_values_t = [5u32, 1])]
    intervals: Vec<u32>,
    /// Seed of the simulated physiology.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Batch interval while glucose is steady, minutes (the SDK's default
    /// unless given; 15 turns the stretch off, to measure what it pays).
    #[arg(long)]
    stable_interval_min: Option<u32>,
    /// The phone's contact interval, minutes (the SDK's 28 unless given),
    /// to measure what a longer dead-man's switch would save; the service
    /// here raises no alerts from it, so only the bytes change.
    #[arg(long)]
    contact_interval_min: Option<u32>,
}

impl Args {
    /// The batch interval while glucose is steady, minutes: the option, or
    /// the SDK's default.
    fn stable_minutes(&self) -> u32 {
        self.stable_interval_min
            .unwrap_or(VigilConfig::new("", "").sync_interval_when_stable.0 / 60)
    }
}

/// The three simulated patient profiles.
const PROFILES: [(SimulatedGlucose, &str); 3] = [
    (SimulatedGlucose::WellControlledType1, "t1-well"),
    (SimulatedGlucose::PoorlyControlledType1, "t1-poor"),
    (SimulatedGlucose::Type2, "t2"),
];

/// What the phone decoded: glucose readings and alert times.
#[derive(Default)]
struct Raw {
    glucose: Mutex<BTreeMap<i64, f64>>,
    alerts: Mutex<HashSet<i64>>,
    stopped: Mutex<bool>,
}

impl Listener for Raw {
    fn on_reading(&self, r: ReadingEvent) {
        if r.stream == Stream::Glucose.as_str() {
            let mut g = self.glucose.lock().unwrap_or_else(|e| e.into_inner());
            g.insert(r.sensor_time_ms, r.value);
        }
    }
    fn on_alert(&self, a: AlertEvent) {
        let mut al = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        al.insert(a.time_ms);
    }
    fn on_device_event(&self, e: DeviceEvent) {
        if e.kind == DeviceEventKind::Stopped {
            *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        }
    }
    fn on_sync_event(&self, _: SyncEvent) {}
    fn on_buffer_event(&self, _: BufferEvent) {}
    fn on_host_request(&self, _: HostRequest) {}
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct RunFigures {
    /// Glucose readings the phone decoded.
    pub readings: usize,
    /// Glucose readings the service stored.
    pub stored: usize,
    /// Percent of stored glucose readings that travelled held back.
    pub held_pct: f64,
    /// Percent the same reducer holds back offline on the raw trace.
    pub offline_held_pct: f64,
    /// Worst |reconstructed - raw|, mg/dL.
    pub max_error: f64,
    /// Time in bands (VeryLow..VeryHigh, percent of readings), service.
    pub bands_server: [f64; 5],
    /// The same from the raw trace.
    pub bands_raw: [f64; 5],
    /// Alert readings, and how many of them arrived kept.
    pub alert_readings: usize,
    /// Alert readings stored kept.
    pub alert_kept: usize,
    /// Bytes the phone and the service exchanged per simulated day, both
    /// ways, HTTP headers included.
    pub wire_bytes_per_day: f64,
    /// The same for a Nightscout uploader posting each reading as it
    /// arrives.
    pub nightscout_bytes_per_day: f64,
    /// Percent of the 15-minute batch checks at which the SDK's steadiness
    /// rule holds on the raw trace (with no alert reading in the stretched
    /// interval before): the share of the day batches may stretch.
    pub steady_pct: f64,
    /// Requests the service accepted from the phone per simulated day, as
    /// its audit log counts them: batches, alert events, heartbeats
    /// (health reports and contact heartbeats).
    pub requests_per_day: [f64; 3],
}

/// The Nightscout API secret of the comparison uploader (demo only).
const UPLOADER_SECRET: &str = "reduction-check uploader secret";

/// Posts `trace` as an xDrip+ uploader does, one `sgv` entry per request
/// as each reading arrives (keep-alive reused, as OkHttp does), through a
/// meter of its own; returns the bytes both ways.
async fn nightscout_upload(
    service: &service::Service,
    target: std::net::SocketAddr,
    patient: i64,
    trace: &BTreeMap<i64, f64>,
) -> Result<u64, Failure> {
    let storage = vigil_ingest::storage::sqlite::SqliteStorage::open(&service.database)
        .map_err(failed("service database"))?;
    vigil_ingest::admin::set_nightscout_secret(&storage, patient, UPLOADER_SECRET)
        .map_err(failed("nightscout secret"))?;
    drop(storage);
    let meter = wire_meter::start(target)
        .await
        .map_err(failed("wire meter"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent("okhttp/4.12.0")
        .build()
        .map_err(failed("HTTP client"))?;
    let secret = vigil_ingest::nightscout::sha1_hex(UPLOADER_SECRET);
    let url = format!("http://{}/api/v1/entries", meter.addr);
    let mut previous: Option<f64> = None;
    for (&ms, &value) in trace {
        let Some(t) = DateTime::from_timestamp_millis(ms) else {
            continue;
        };
        let iso = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let delta = previous.map_or(0.0, |p| value - p);
        previous = Some(value);
        let entry = serde_json::json!([{
            "device": "xDrip-DexcomG6", "date": ms, "dateString": iso,
            "sgv": value.round(), "delta": (delta * 1000.0).round() / 1000.0,
            "direction": "Flat", "type": "sgv", "filtered": value * 1000.0,
            "unfiltered": value * 1000.0, "rssi": 100, "noise": 1, "sysTime": iso
        }]);
        let resp = http
            .post(&url)
            .header("api-secret", &secret)
            .json(&entry)
            .send()
            .await
            .map_err(failed("nightscout upload"))?;
        let status = resp.status();
        let _ = resp.bytes().await;
        if !status.is_success() {
            return Err(Failure::Other(format!(
                "nightscout upload refused: {status}"
            )));
        }
    }
    Ok(meter.counts.total())
}

fn bands(values: impl Iterator<Item = f64>) -> [f64; 5] {
    let mut n = [0usize; 5];
    let mut total = 0usize;
    for v in values {
        let i = match GlucoseBand::of(v) {
            GlucoseBand::VeryLow => 0,
            GlucoseBand::Low => 1,
            GlucoseBand::InRange => 2,
            GlucoseBand::High => 3,
            GlucoseBand::VeryHigh => 4,
        };
        if let Some(c) = n.get_mut(i) {
            *c += 1;
        }
        total += 1;
    }
    n.map(|c| 100.0 * c as f64 / total.max(1) as f64)
}

fn failed<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Failure {
    move |e| Failure::Other(format!("{what}: {e}"))
}

/// One run: one phone, one profile, one interval.
fn run_one(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    glucose: SimulatedGlucose,
    one_minute: bool,
    args: &Args,
) -> Result<RunFigures, Failure> {
    let (days, seed) = (args.days, args.seed);
    // Two patients: the phone syncs as the first; the Nightscout uploader
    // it is compared with posts the same readings as the second.
    let limits = vigil_ingest::Limits {
        rate: vigil_ingest::rate_limit::RateLimit {
            per_second: 1e9,
            burst: u32::MAX,
        },
        ..vigil_ingest::Limits::default()
    };
    let service = runtime.block_on(service::start_with(dir, 0, 2, limits))?;
    let patient = service
        .patients
        .first()
        .cloned()
        .ok_or_else(|| Failure::Other("no patient".into()))?;
    let uploader = service
        .patients
        .get(1)
        .cloned()
        .ok_or_else(|| Failure::Other("no second patient".into()))?;
    let target: std::net::SocketAddr = service
        .url
        .trim_start_matches("http://")
        .parse()
        .map_err(failed("service address"))?;
    let phone_meter = runtime
        .block_on(wire_meter::start(target))
        .map_err(failed("wire meter"))?;
    let length = TimeDelta::days(i64::from(days));
    // Midnight UTC a day before the run would have to start to end now:
    // the simulated patient follows the time of day, so every run of a
    // seed meets the same patient, and the days end before the service's
    // clock (it refuses readings from the future).
    let today = Utc::now()
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let start = today - length - TimeDelta::days(1);
    let mut config = VigilConfig::new(dir.join("phone.db"), patient.id.to_string());
    config.server_url = Some(format!("http://{}", phone_meter.addr));
    config.token = Some(patient.device_token.clone());
    config.clock = ClockMode::Simulated {
        start_ms: start.timestamp_millis(),
        run_for: Duration::from_secs(u64::from(days) * 86_400),
    };
    config.simulation_seed = seed;
    config.sync_interval_when_stable = Seconds::minutes(args.stable_minutes());
    if let Some(min) = args.contact_interval_min {
        config.contact_interval = Seconds::minutes(min);
    }
    config.simulation = Some(Simulation {
        glucose,
        cgm_one_minute: one_minute,
        ..Simulation::default()
    });
    let raw = Arc::new(Raw::default());
    let mut vigil = Vigil::new(config, raw.clone(), None).map_err(failed("SDK"))?;
    vigil
        .pair("cgm-1", DeviceKind::Cgm)
        .map_err(failed("pair"))?;
    vigil.set_network(Network::Wifi);
    vigil.start().map_err(failed("start"))?;
    let began = Instant::now();
    while !*raw.stopped.lock().unwrap_or_else(|e| e.into_inner()) {
        if began.elapsed() > Duration::from_secs(1800) {
            return Err(Failure::Other("the simulated run did not finish".into()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // What the last timer sync left: the open tail closes by time.
    let drained = Instant::now();
    loop {
        let _ = vigil.sync_now();
        let s = vigil.status().map_err(failed("status"))?;
        if s.unsent_readings == 0 {
            break;
        }
        if drained.elapsed() > Duration::from_secs(120) {
            return Err(Failure::Other(format!(
                "{} readings still unsent",
                s.unsent_readings
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = vigil.stop();
    vigil.close().map_err(failed("close"))?;
    let wire_bytes = phone_meter.counts.total();
    let raw_trace = raw
        .glucose
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let nightscout_bytes =
        runtime.block_on(nightscout_upload(&service, target, uploader.id, &raw_trace))?;
    runtime.block_on(service.stop());

    let conn = Connection::open_with_flags(service_db(dir), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(failed("service database"))?;
    let mut stmt = conn
        .prepare(
            "SELECT time, value, held_back FROM readings WHERE patient_id = ?1 \
             AND stream = 'glucose' ORDER BY time",
        )
        .map_err(failed("service database"))?;
    let stored: Vec<(i64, f64, bool)> = stmt
        .query_map([patient.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(failed("service database"))?
        .collect::<rusqlite::Result<_>>()
        .map_err(failed("service database"))?;

    let mut requests_per_day = [0.0; 3];
    for (slot, action) in ["readings.write", "alerts.write", "heartbeats.write"]
        .iter()
        .enumerate()
    {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM audit_log WHERE patient_id = ?1 AND action = ?2",
                rusqlite::params![patient.id, action],
                |r| r.get(0),
            )
            .map_err(failed("service database"))?;
        if let Some(v) = requests_per_day.get_mut(slot) {
            *v = n as f64 / f64::from(days);
        }
    }
    let glucose = raw_trace;
    let alerts = raw.alerts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let samples: Vec<Sample> = glucose
        .iter()
        .filter_map(|(&ms, &value)| {
            DateTime::from_timestamp_millis(ms).map(|time| Sample { time, value })
        })
        .collect();
    let marks: Vec<bool> = glucose.keys().map(|ms| alerts.contains(ms)).collect();
    let policy = Policy::BoundedError(
        ReducerConfig::for_stream(Stream::Glucose)
            .ok_or_else(|| Failure::Other("glucose has no reducer".into()))?,
    );
    let kept_offline = reduce(&samples, &marks, &policy).map_err(failed("offline reduction"))?;
    let offline_held_pct =
        100.0 * (samples.len() - kept_offline.len()) as f64 / samples.len().max(1) as f64;

    let mut max_error = 0.0f64;
    let mut held = 0usize;
    let mut server_values = Vec::with_capacity(stored.len());
    let mut alert_kept = 0usize;
    for &(us, value, is_held) in &stored {
        let ms = us.div_euclid(1000);
        server_values.push(value);
        if is_held {
            held += 1;
            if let Some(truth) = glucose.get(&ms) {
                max_error = max_error.max((truth - value).abs());
            }
        } else if alerts.contains(&ms) {
            alert_kept += 1;
        }
    }
    let alert_readings = glucose.keys().filter(|ms| alerts.contains(ms)).count();
    let stretch = TimeDelta::minutes(i64::from(args.stable_minutes()));
    let steady_pct = steady_share(&samples, &alerts, &Steadiness::default(), stretch);
    Ok(RunFigures {
        steady_pct,
        wire_bytes_per_day: wire_bytes as f64 / f64::from(days),
        nightscout_bytes_per_day: nightscout_bytes as f64 / f64::from(days),
        readings: samples.len(),
        stored: stored.len(),
        held_pct: 100.0 * held as f64 / stored.len().max(1) as f64,
        offline_held_pct,
        max_error,
        bands_server: bands(server_values.into_iter()),
        bands_raw: bands(samples.iter().map(|s| s.value)),
        alert_readings,
        alert_kept,
        requests_per_day,
    })
}

/// Percent of 15-minute checks over `samples` (sorted by time) at which
/// `rule` holds on the readings up to the check, with no alert reading
/// within `stretch` before it: what the engine's cadence asks at each
/// batch check, read on the raw trace.
fn steady_share(
    samples: &[Sample],
    alert_ms: &HashSet<i64>,
    rule: &Steadiness,
    stretch: TimeDelta,
) -> f64 {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return 0.0;
    };
    let step = TimeDelta::minutes(15);
    let mut at = first.time + rule.window;
    let (mut checks, mut steady) = (0usize, 0usize);
    while at <= last.time {
        let upto = samples.partition_point(|s| s.time <= at);
        let from = samples.partition_point(|s| s.time < at - stretch);
        let recent = samples.get(from..upto).unwrap_or(&[]);
        let alert_lately = recent
            .iter()
            .any(|s| alert_ms.contains(&s.time.timestamp_millis()));
        let tail = &recent[recent.len().saturating_sub(Steadiness::READINGS)..];
        checks += 1;
        if rule.is_steady(tail, alert_lately) {
            steady += 1;
        }
        at += step;
    }
    100.0 * steady as f64 / checks.max(1) as f64
}

fn service_db(dir: &Path) -> std::path::PathBuf {
    dir.join("ingest.db")
}

/// Runs `vigil reduction-check`.
pub fn run(args: Args) -> Result<(), Failure> {
    if args.days == 0 || args.days > 60 {
        return Err(Failure::Input("--days must be between 1 and 60".into()));
    }
    if args.intervals.is_empty() || args.intervals.iter().any(|i| *i != 1 && *i != 5) {
        return Err(Failure::Input("--intervals takes 1 and/or 5".into()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(failed("runtime"))?;
    let stable = args.stable_minutes();
    let contact = args
        .contact_interval_min
        .unwrap_or(VigilConfig::new("", "").contact_interval.0 / 60);
    println!(
        "product path: SDK facade -> buffer -> sync engine (15-min batches, {stable} min while glucose is steady, contact every {contact} min) -> vigil-ingest (SQLite), {} simulated days per run, seed {}",
        args.days, args.seed
    );
    println!(
        "interval profile  readings stored  held-back  offline  diff  max-err  bands equal  alert readings kept  wire B/day  Nightscout B/day  ratio"
    );
    let mut ok = true;
    for &interval in &args.intervals {
        let mut sum = (0.0, 0.0, 0.0, 0.0);
        for (profile, name) in PROFILES {
            let temp = tempfile::tempdir().map_err(failed("temporary directory"))?;
            let f = run_one(&runtime, temp.path(), profile, interval == 1, &args)?;
            let equal = f
                .bands_server
                .iter()
                .zip(f.bands_raw.iter())
                .all(|(a, b)| (a - b).abs() < 1e-9);
            println!(
                "{interval:>2} min   {name:<8} {:>8} {:>6}  {:>8.1} % {:>6.1} % {:>+5.1}  {:>5.2}    {:<5}        {:>7}  {:>10.0}  {:>16.0}  {:>4.1} %",
                f.readings,
                f.stored,
                f.held_pct,
                f.offline_held_pct,
                f.held_pct - f.offline_held_pct,
                f.max_error,
                if equal { "yes" } else { "NO" },
                format!("{}/{}", f.alert_kept, f.alert_readings),
                f.wire_bytes_per_day,
                f.nightscout_bytes_per_day,
                100.0 * f.wire_bytes_per_day / f.nightscout_bytes_per_day.max(1.0),
            );
            let [b, a, h] = f.requests_per_day;
            println!(
                "                 requests accepted per day: {b:.1} batches, {a:.1} alert events, {h:.1} heartbeats; glucose steady at {:.1} % of 15-minute checks",
                f.steady_pct
            );
            ok &= equal
                && f.max_error <= 3.0
                && f.stored == f.readings
                && f.alert_kept == f.alert_readings
                && (f.held_pct - f.offline_held_pct).abs() <= 3.0;
            sum.0 += f.held_pct;
            sum.1 += f.offline_held_pct;
            sum.2 += f.wire_bytes_per_day;
            sum.3 += f.nightscout_bytes_per_day;
        }
        println!(
            "{interval:>2} min   average: {:.1} % held back on the product path, {:.1} % offline; {:.0} wire bytes per patient-day against {:.0} for a Nightscout uploader ({:.1} %)",
            sum.0 / 3.0,
            sum.1 / 3.0,
            sum.2 / 3.0,
            sum.3 / 3.0,
            100.0 * sum.2 / sum.3.max(1.0)
        );
    }
    if ok {
        Ok(())
    } else {
        Err(Failure::Other(
            "a run missed a guarantee (see the table)".into(),
        ))
    }
}

//! `vigil offline-demo`: the whole on-phone path, end to end, for a few simulated
//! patients, through the same code a phone runs:
//!
//! simulated CGM (physiology, exact GATT bytes with E2E-CRC, a RACP record
//! store, seeded faults: disconnects, out of range, dropped, duplicated and
//! corrupt notifications) → simulated transport → session (backfill through
//! RACP, dedupe, gaps, time mapping) → alert engine on every raw reading →
//! SQLite buffer (durable, deduplicated, alert outbox, ledger) → bounded-error
//! reduction (held-back readings marked, as batch assembly will) → consensus
//! metrics.
//!
//! Each patient is one phone with its own buffer file, as in the field.
//! Everything is deterministic for a seed and runs on simulated time (a
//! paused tokio clock), so two weeks take seconds.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use vigil_core::alerts::{AlertConfig, AlertEngine, AlertEvent, Phase};
use vigil_core::clock::{Clock, TokioClock};
use vigil_core::metrics::{GlucoseMetrics, consensus_metrics};
use vigil_core::model::{DeviceId, PatientId, Sample, Stream};
use vigil_core::reduce::{Policy, ReducerConfig, reduce};
use vigil_core::session::{
    Cursor, DeviceEventKind, DeviceKind, Session, SessionConfig, SessionOutput, SessionSink,
};
use vigil_core::store::{Buffer, BufferConfig, BufferSink, OutboxAlert};
use vigil_core::transport::simulated::physiology::GlucoseProfile;
use vigil_core::transport::simulated::{
    CgmConfig, FaultPlan, Radio, RandomFaults, SimulatedCgm, SimulatedTransport,
};

use crate::Failure;

/// Arguments of `vigil offline-demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of simulated patients (each one phone with a CGM).
    #[arg(long, default_value_t = 6)]
    patients: u32,
    /// Simulated days per patient.
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// Seed of the simulated physiology and faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder for the patients' buffer files (created; old files replaced).
    #[arg(long, default_value = "target/vigil-demo")]
    dir: PathBuf,
}

/// Faults a phone in a pocket sees over days: a few a day of each kind.
const FIELD_FAULTS: RandomFaults = RandomFaults {
    disconnects_per_hour: 0.1,
    out_of_range_per_day: 2.0,
    drops_per_day: 3.0,
    duplicates_per_day: 3.0,
    corruptions_per_day: 3.0,
};

/// The phone's side of the session: every raw glucose reading goes through
/// the alert engine first (alarms never wait for storage or a batch), then
/// into the SQLite buffer.
struct Phone {
    buffer: BufferSink,
    engine: AlertEngine,
    alerts: Vec<AlertEvent>,
    alerting: HashSet<u64>,
    gaps: usize,
    disconnects: usize,
}

impl SessionSink for Phone {
    fn cursor(&self, device: &DeviceId, stream: Stream) -> Option<Cursor> {
        self.buffer.cursor(device, stream)
    }

    fn accept(&mut self, output: SessionOutput) -> vigil_core::Result<()> {
        match &output {
            SessionOutput::Reading(r) if r.stream == Stream::Glucose => {
                let sample = Sample {
                    time: r.sensor_time,
                    value: r.value,
                };
                let events = self.engine.on_glucose(sample)?;
                for e in &events {
                    let payload = serde_json::to_vec(e).map_err(|e| {
                        vigil_core::Error::InvalidInput(format!("alert payload: {e}"))
                    })?;
                    self.buffer.buffer_mut().enqueue_alert(&OutboxAlert {
                        id: e.id.clone(),
                        kind: e.kind.as_str().to_string(),
                        phase: format!("{:?}", e.phase).to_lowercase(),
                        time: e.time,
                        value: e.glucose_mg_dl,
                        payload,
                    })?;
                }
                if !events.is_empty() {
                    self.alerting.insert(r.sequence);
                }
                self.alerts.extend(events);
            }
            SessionOutput::Gap(_) => self.gaps += 1,
            SessionOutput::Event(e) if matches!(e.kind, DeviceEventKind::Disconnected { .. }) => {
                self.disconnects += 1
            }
            _ => {}
        }
        self.buffer.accept(output)
    }
}

/// What one patient's run produced.
struct Summary {
    profile: &'static str,
    readings: usize,
    kept: usize,
    gaps: usize,
    disconnects: usize,
    alert_starts: usize,
    metrics: GlucoseMetrics,
    db_bytes: u64,
}

fn fail<E: std::fmt::Display>(context: &str) -> impl Fn(E) -> Failure + '_ {
    move |e| Failure::Other(format!("{context}: {e}"))
}

/// Runs `vigil offline-demo`.
pub fn run(args: Args) -> Result<(), Failure> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| Failure::Other(format!("cannot create {}: {e}", args.dir.display())))?;
    let start = Utc
        .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .ok_or_else(|| Failure::Other("demo start time".into()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Failure::Other(format!("cannot start the runtime: {e}")))?;
    let profiles = GlucoseProfile::all();
    let clock = Instant::now();
    println!(
        "Vigil demo: {} patients × {} days of 5-minute CGM with field faults, seed {}, buffers in {}",
        args.patients,
        args.days,
        args.seed,
        args.dir.display()
    );
    println!();
    println!(
        "| patient | profile | readings | gaps | disconnects | kept by reduction | alerts | mean mg/dL | TIR % | TBR<70 % | GMI % | buffer KiB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (mut total_readings, mut total_kept) = (0, 0);
    for p in 0..args.patients {
        let Some(profile) = profiles.get(p as usize % profiles.len().max(1)).cloned() else {
            return Err(Failure::Other("no physiology profiles".into()));
        };
        let path = args.dir.join(format!("patient-{p}.db"));
        remove_database(&path);
        let s = runtime.block_on(run_patient(p, profile, start, &args, &path))?;
        println!(
            "| p{p} | {} | {} | {} | {} | {:.1} % | {} | {:.0} | {:.1} | {:.1} | {:.2} | {} |",
            s.profile,
            s.readings,
            s.gaps,
            s.disconnects,
            100.0 * s.kept as f64 / s.readings.max(1) as f64,
            s.alert_starts,
            s.metrics.mean_mg_dl,
            s.metrics.tir_70_180_pct,
            s.metrics.tbr_lt70_pct,
            s.metrics.gmi_pct,
            s.db_bytes / 1024
        );
        total_readings += s.readings;
        total_kept += s.kept;
    }
    println!();
    println!(
        "{total_readings} readings collected through the session (RACP backfill after every \
         fault), alerted on and stored durably; reduction keeps {total_kept} ({:.1} %) for the \
         cloud within 3 mg/dL; {:.2} s.",
        100.0 * total_kept as f64 / total_readings.max(1) as f64,
        clock.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Starts from a clean file: an old one would only be deduplicated, and
/// the figures would not be this run's.
fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

async fn run_patient(
    index: u32,
    profile: GlucoseProfile,
    start: DateTime<Utc>,
    args: &Args,
    path: &Path,
) -> Result<Summary, Failure> {
    let name = profile.name;
    let seed = args.seed.wrapping_mul(1000).wrapping_add(u64::from(index));
    let length = TimeDelta::days(i64::from(args.days));
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(start));

    let mut cgm = CgmConfig::new(&format!("sim-cgm-{index}"), seed, start);
    cgm.profile = profile;
    cgm.faults = FaultPlan::random(seed, start, length, FIELD_FAULTS);
    let mut radio = Radio::new();
    let peripheral = radio.add(Box::new(SimulatedCgm::new(cgm).map_err(fail("sensor"))?));
    let transport = Arc::new(SimulatedTransport::start(
        radio,
        clock.clone(),
        Duration::from_secs(1),
    ));

    let buffer = Buffer::open(path, BufferConfig::default()).map_err(fail("buffer"))?;
    let config = SessionConfig::new(
        DeviceKind::Cgm,
        peripheral,
        PatientId(format!("demo-patient-{index}")),
    );
    let device = config.device.clone();
    let phone = Phone {
        buffer: BufferSink::new(buffer),
        engine: AlertEngine::new(AlertConfig::default(), device.0.clone())
            .map_err(fail("alerts"))?,
        alerts: Vec::new(),
        alerting: HashSet::new(),
        gaps: 0,
        disconnects: 0,
    };
    let mut session = Session::new(config, transport, clock, phone);
    session
        .run_until(start + length)
        .await
        .map_err(fail("session"))?;
    let mut phone = session.into_sink();

    // Batch assembly's reduction: which stored readings the cloud needs.
    let buffer = phone.buffer.buffer_mut();
    let stored = buffer
        .readings_of(&device, Stream::Glucose)
        .map_err(fail("buffer"))?;
    let samples: Vec<Sample> = stored
        .iter()
        .map(|s| Sample {
            time: s.reading.sensor_time,
            value: s.reading.value,
        })
        .collect();
    let must_keep: Vec<bool> = stored
        .iter()
        .map(|s| phone.alerting.contains(&s.reading.sequence))
        .collect();
    let policy = Policy::BoundedError(ReducerConfig::glucose(TimeDelta::minutes(5)));
    let kept = reduce(&samples, &must_keep, &policy).map_err(fail("reduction"))?;
    let kept_set: HashSet<usize> = kept.iter().copied().collect();
    let held: Vec<i64> = stored
        .iter()
        .enumerate()
        .filter(|(i, _)| !kept_set.contains(i))
        .map(|(_, s)| s.id)
        .collect();
    buffer.mark_held(&held, true).map_err(fail("buffer"))?;

    let metrics = consensus_metrics(&samples, TimeDelta::minutes(5)).map_err(fail("metrics"))?;
    let summary = Summary {
        profile: name,
        readings: samples.len(),
        kept: kept.len(),
        gaps: phone.gaps,
        disconnects: phone.disconnects,
        alert_starts: phone
            .alerts
            .iter()
            .filter(|a| a.phase == Phase::Start)
            .count(),
        metrics,
        db_bytes: 0,
    };
    drop(phone);
    let db_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Summary {
        db_bytes,
        ..summary
    })
}

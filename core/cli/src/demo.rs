//! `vigil demo`: the whole on-phone path, end to end, for a few simulated
//! patients: physiology → CGM Measurement GATT bytes (with E2E-CRC) → codec
//! → canonical reading → alert engine (every raw reading) → SQLite buffer
//! (durable, deduplicated, alert outbox) → bounded-error reduction (held-back
//! readings marked in the buffer) → consensus metrics.
//!
//! Each patient is one phone with its own buffer file, as in the field.
//! Everything is deterministic for a seed and runs on simulated time.

use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use vigil_core::alerts::{AlertConfig, AlertEngine, AlertEvent, Phase};
use vigil_core::codec::SFloat;
use vigil_core::codec::cgm::CgmMeasurement;
use vigil_core::metrics::consensus_metrics;
use vigil_core::model::{DeviceId, PatientId, Provenance, Quality, Reading, Sample, Stream};
use vigil_core::reduce::{Decision, Policy, Reducer, ReducerConfig};
use vigil_core::store::{Buffer, BufferConfig, OutboxAlert};
use vigil_core::transport::simulated::physiology::{GlucoseModel, GlucoseProfile, SampleInterval};

use crate::Failure;

/// Arguments of `vigil demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of simulated patients (each one phone with a CGM).
    #[arg(long, default_value_t = 6)]
    patients: u32,
    /// Simulated days per patient.
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// Seed of the simulated physiology.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder for the patients' buffer files (created; old files replaced).
    #[arg(long, default_value = "target/vigil-demo")]
    dir: PathBuf,
}

/// What one patient's run produced.
struct Summary {
    profile: &'static str,
    readings: u64,
    kept: u64,
    alerts: Vec<AlertEvent>,
    metrics: vigil_core::metrics::GlucoseMetrics,
    db_bytes: u64,
}

fn fail(context: &str) -> impl Fn(vigil_core::Error) -> Failure + '_ {
    move |e| Failure::Other(format!("{context}: {e}"))
}

/// Runs `vigil demo`.
pub fn run(args: Args) -> Result<(), Failure> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| Failure::Other(format!("cannot create {}: {e}", args.dir.display())))?;
    let start = Utc
        .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .ok_or_else(|| Failure::Other("demo start time".into()))?;
    let profiles = GlucoseProfile::all();
    let clock = Instant::now();
    println!(
        "Vigil demo: {} patients × {} days of 5-minute CGM, seed {}, buffers in {}",
        args.patients,
        args.days,
        args.seed,
        args.dir.display()
    );
    println!();
    println!(
        "| patient | profile | readings | kept by reduction | alerts (start) | mean mg/dL | TIR % | TBR<70 % | GMI % | buffer KiB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut total_readings = 0;
    let mut total_kept = 0;
    for p in 0..args.patients {
        let Some(profile) = profiles.get(p as usize % profiles.len().max(1)).cloned() else {
            return Err(Failure::Other("no physiology profiles".into()));
        };
        let path = args.dir.join(format!("patient-{p}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            // A stale file from an earlier run would only be deduplicated;
            // starting clean keeps the figures honest.
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
        let s = run_patient(p, profile, start, &args, &path)?;
        let starts = s.alerts.iter().filter(|a| a.phase == Phase::Start).count();
        println!(
            "| p{p} | {} | {} | {:.1} % | {} | {:.0} | {:.1} | {:.1} | {:.2} | {} |",
            s.profile,
            s.readings,
            100.0 * s.kept as f64 / s.readings.max(1) as f64,
            starts,
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
        "{total_readings} readings decoded, checked, alerted on and stored durably; \
         reduction keeps {total_kept} ({:.1} %) for the cloud within 3 mg/dL; {:.2} s.",
        100.0 * total_kept as f64 / total_readings.max(1) as f64,
        clock.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_patient(
    index: u32,
    profile: GlucoseProfile,
    start: DateTime<Utc>,
    args: &Args,
    path: &std::path::Path,
) -> Result<Summary, Failure> {
    let patient = PatientId(format!("demo-patient-{index}"));
    let device = DeviceId(format!("sim-cgm-{index}"));
    let name = profile.name;
    let seed = args.seed.wrapping_mul(1000).wrapping_add(u64::from(index));
    let mut model = GlucoseModel::new(seed, profile, start, SampleInterval::FiveMinutes)
        .map_err(fail("physiology"))?;
    let mut engine =
        AlertEngine::new(AlertConfig::default(), device.0.clone()).map_err(fail("alerts"))?;
    let policy = Policy::BoundedError(ReducerConfig::glucose(TimeDelta::minutes(5)));
    let mut reducer = Reducer::new(&policy).map_err(fail("reduction"))?;
    let mut buffer = Buffer::open(path, BufferConfig::default()).map_err(fail("buffer"))?;

    let count = u64::from(args.days) * 24 * 12;
    let mut samples = Vec::new();
    let mut alerts = Vec::new();
    let mut pending: Vec<Reading> = Vec::new();
    let mut ids: Vec<i64> = Vec::new();
    let mut decisions: Vec<Decision> = Vec::new();
    let mut held_back: Vec<u64> = Vec::new();
    let mut kept = 0u64;
    for i in 0..count {
        let point = model.next_point();
        let offset = u16::try_from(i * 5).unwrap_or(u16::MAX);
        // The sensor's side: the exact notification bytes, CRC included.
        let bytes = CgmMeasurement {
            glucose: SFloat::from_f64(point.sensor_mgdl).unwrap_or(SFloat::NAN),
            time_offset_min: offset,
            status: None,
            cal_temp: None,
            warning: None,
            trend: None,
            quality: None,
            crc: Some(0),
        }
        .encode();
        // The phone's side: decode and check the CRC, as the session does.
        for record in CgmMeasurement::decode_notification(&bytes, true).map_err(fail("decode"))? {
            let Some(value) = record.glucose_mg_dl() else {
                continue;
            };
            let time = start + TimeDelta::minutes(i64::from(record.time_offset_min));
            let sample = Sample { time, value };
            let events = engine.on_glucose(sample).map_err(fail("alerts"))?;
            for e in &events {
                let payload = serde_json_bytes(e)?;
                buffer
                    .enqueue_alert(&OutboxAlert {
                        id: e.id.clone(),
                        kind: e.kind.as_str().to_string(),
                        phase: format!("{:?}", e.phase).to_lowercase(),
                        time: e.time,
                        value: e.glucose_mg_dl,
                        payload,
                    })
                    .map_err(fail("outbox"))?;
            }
            reducer
                .push(sample, !events.is_empty(), &mut decisions)
                .map_err(fail("reduction"))?;
            alerts.extend(events);
            samples.push(sample);
            pending.push(Reading {
                patient: patient.clone(),
                stream: Stream::Glucose,
                value,
                sensor_time: time,
                receive_time: time,
                sequence: u64::from(record.time_offset_min),
                quality: Quality::default(),
                provenance: Provenance {
                    device: device.clone(),
                    characteristic: 0x2AA7,
                    raw: bytes.clone(),
                    session: Some(1),
                },
            });
        }
        if i + 1 == count {
            reducer.finish(&mut decisions);
        }
        for d in decisions.drain(..) {
            if d.kept {
                kept += 1;
            } else {
                held_back.push(d.index);
            }
        }
        // One durable insert per simulated hour, as a phone batching
        // notifications would; the reducer's hold-backs are marked in the
        // same rhythm, once their readings have rows.
        if pending.len() >= 12 || i + 1 == count {
            // Marks for readings that already have rows ride along with
            // this insert (one commit); the rest wait for the next one.
            let (ready, later): (Vec<u64>, Vec<u64>) = held_back
                .drain(..)
                .partition(|&k| usize::try_from(k).is_ok_and(|k| k < ids.len()));
            held_back = later;
            let marked: Vec<i64> = ready
                .iter()
                .filter_map(|&k| usize::try_from(k).ok().and_then(|k| ids.get(k).copied()))
                .collect();
            let outcome = buffer
                .insert_and_mark_held(&pending, &marked)
                .map_err(fail("buffer"))?;
            ids.extend(outcome.ids.iter().flatten());
            pending.clear();
            if i + 1 == count {
                let last: Vec<i64> = held_back
                    .drain(..)
                    .filter_map(|k| usize::try_from(k).ok().and_then(|k| ids.get(k).copied()))
                    .collect();
                buffer.mark_held(&last, true).map_err(fail("buffer"))?;
            }
        }
    }
    let metrics = consensus_metrics(&samples, TimeDelta::minutes(5)).map_err(fail("metrics"))?;
    drop(buffer);
    let db_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Summary {
        profile: name,
        readings: samples.len() as u64,
        kept,
        alerts,
        metrics,
        db_bytes,
    })
}

fn serde_json_bytes(value: &impl serde::Serialize) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(value).map_err(|e| Failure::Other(format!("cannot encode alert: {e}")))
}

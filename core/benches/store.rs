//! Store benchmark: the buffer's durable insert path against raw rusqlite
//! inserts of the same rows, in the same run, plus bytes per reading on disk.
//!
//! Prints a markdown table. `cargo bench -p vigil-core --bench store` runs
//! 100,000 readings per run; under `cargo test --benches` (no `--bench`
//! argument) it runs 10,000 so CI only proves it works.
//!
//! The floor is one prepared INSERT in one transaction with the same
//! pragmas (WAL and the same `synchronous`): the fastest way SQLite can take
//! these rows. The buffer commits every 100 readings (each commit is a
//! durability point), dedupes, keeps the ledger and checks the budget; the
//! row "raw, commit per 100" separates the cost of the commits from the
//! cost of the bookkeeping.
//!
//! A second table times the whole store path a CGM reading takes on the
//! phone (decode with CRC check, alert engine, online reduction, durable
//! insert with hold-backs marked) against raw inserts of the same rows.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rusqlite::{Connection, params};
use vigil_core::alerts::{AlertConfig, AlertEngine};
use vigil_core::codec::SFloat;
use vigil_core::codec::cgm::CgmMeasurement;
use vigil_core::model::{DeviceId, PatientId, Provenance, Quality, Reading, Sample, Stream};
use vigil_core::reduce::{Policy, Reducer, ReducerConfig};
use vigil_core::store::{Buffer, BufferConfig, Durability, schema, stream_code};
use vigil_core::transport::simulated::physiology::{GlucoseModel, GlucoseProfile, SampleInterval};

/// Readings per insert call / per commit in the rows of the table.
const BATCHES: [usize; 2] = [100, 1000];

/// Each figure is the best of this many runs: the machine is shared, and
/// the best run is the one least disturbed by other work.
const REPEATS: usize = 3;

/// The worst-case mix (heart rate with 4 RR intervals, SpO2 and pulse rate
/// every second, CGM glucose and trend every minute) with raw bytes of the
/// sizes real notifications have.
fn readings(n: usize) -> Result<Vec<Reading>, Box<dyn Error>> {
    let t0: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 3, 1, 8, 0, 0)
        .single()
        .ok_or("start time")?;
    let make = |device: &str, stream: Stream, seq: u64, at: DateTime<Utc>, value: f64| {
        let (characteristic, raw, session): (u16, Vec<u8>, Option<i64>) = match stream {
            Stream::Glucose | Stream::GlucoseTrend => (
                0x2AA7,
                vec![
                    12,
                    0xC3,
                    0x78,
                    0xB0,
                    seq as u8,
                    (seq >> 8) as u8,
                    0x0A,
                    0xF0,
                    0x5F,
                    0xE0,
                    0x3C,
                    0x91,
                ],
                Some(1),
            ),
            Stream::HeartRate | Stream::RrInterval => (
                0x2A37,
                vec![0x10, 72, 0x40, 0x03, 0x42, 0x03, 0x3E, 0x03, 0x41, 0x03],
                None,
            ),
            _ => (0x2A5F, vec![0x00, 0x61, 0x00, 0x48, 0x00], None),
        };
        Reading {
            patient: PatientId("patient-7f3a".into()),
            stream,
            value,
            sensor_time: at,
            receive_time: at + Duration::milliseconds(180),
            sequence: seq,
            quality: Quality::default(),
            provenance: Provenance {
                device: DeviceId(device.into()),
                characteristic,
                raw,
                session,
            },
        }
    };
    let mut out = Vec::with_capacity(n + 9);
    let mut s = 0u64;
    while out.len() < n {
        let at = t0 + Duration::seconds(s as i64);
        out.push(make(
            "strap-1",
            Stream::HeartRate,
            s,
            at,
            72.0 + (s % 20) as f64,
        ));
        for i in 0..4 {
            out.push(make(
                "strap-1",
                Stream::RrInterval,
                s * 4 + i,
                at,
                0.8 + 0.001 * i as f64,
            ));
        }
        out.push(make("oxi-1", Stream::Spo2, s, at, 97.0));
        out.push(make("oxi-1", Stream::PulseRate, s, at, 70.0));
        if s % 60 == 0 {
            out.push(make("cgm-1", Stream::Glucose, s / 60, at, 110.0));
            out.push(make("cgm-1", Stream::GlucoseTrend, s / 60, at, -0.5));
        }
        s += 1;
    }
    out.truncate(n);
    Ok(out)
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

fn buffer_run(
    dir: &Path,
    rows: &[Reading],
    durability: Durability,
    batch: usize,
) -> Result<(f64, f64), Box<dyn Error>> {
    let path = fresh(dir, "buffer.db");
    let mut buffer = Buffer::open(
        &path,
        BufferConfig {
            durability,
            ..BufferConfig::default()
        },
    )?;
    let empty = buffer.used_bytes()?;
    let start = Instant::now();
    for chunk in rows.chunks(batch) {
        let out = buffer.insert(chunk)?;
        if out.inserted != chunk.len() {
            return Err("benchmark rows must all be new".into());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let per_reading = (buffer.used_bytes()? - empty) as f64 / rows.len() as f64;
    Ok((rows.len() as f64 / secs, per_reading))
}

fn raw_run(
    dir: &Path,
    rows: &[Reading],
    durability: Durability,
    per_tx: usize,
) -> Result<f64, Box<dyn Error>> {
    let path = fresh(dir, "raw.db");
    let mut conn = Connection::open(&path)?;
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    let sync = match durability {
        Durability::PowerLoss => "FULL",
        Durability::AppCrash => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.execute_batch(schema::CURRENT)?;
    let start = Instant::now();
    for chunk in rows.chunks(per_tx) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO readings (patient, device, stream, session, sequence, value, \
                 sensor_time, receive_time, quality_percent, quality_flagged, characteristic, raw) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for r in chunk {
                stmt.execute(params![
                    r.patient.0,
                    r.provenance.device.0,
                    stream_code(r.stream),
                    r.provenance.session,
                    r.sequence as i64,
                    r.value,
                    r.sensor_time.timestamp_micros(),
                    r.receive_time.timestamp_micros(),
                    r.quality.percent,
                    r.quality.flagged,
                    r.provenance.characteristic,
                    r.provenance.raw,
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(rows.len() as f64 / start.elapsed().as_secs_f64())
}

/// One simulated CGM's notifications (1-minute readings with E2E-CRC, as a
/// backfill or a day of streaming delivers them), encoded outside the timer.
fn cgm_notifications(n: usize) -> Result<Vec<Vec<u8>>, Box<dyn Error>> {
    let start = Utc
        .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
        .single()
        .ok_or("start time")?;
    let mut model = GlucoseModel::new(
        7,
        GlucoseProfile::poorly_controlled_type1(),
        start,
        SampleInterval::OneMinute,
    )?;
    Ok((0..n)
        .map(|i| {
            CgmMeasurement {
                glucose: SFloat::from_f64(model.next_point().sensor_mgdl).unwrap_or(SFloat::NAN),
                time_offset_min: i as u16,
                status: None,
                cal_temp: None,
                warning: None,
                trend: None,
                quality: None,
                crc: Some(0),
            }
            .encode()
        })
        .collect())
}

/// Decodes one notification into the canonical reading (the session's job).
fn to_reading(bytes: &[u8], start: DateTime<Utc>) -> Result<Reading, Box<dyn Error>> {
    let record = CgmMeasurement::decode_notification(bytes, true)?
        .into_iter()
        .next()
        .ok_or("empty notification")?;
    let time = start + Duration::minutes(i64::from(record.time_offset_min));
    Ok(Reading {
        patient: PatientId("p1".into()),
        stream: Stream::Glucose,
        value: record.glucose_mg_dl().ok_or("special value")?,
        sensor_time: time,
        receive_time: time,
        sequence: u64::from(record.time_offset_min),
        quality: Quality::default(),
        provenance: Provenance {
            device: DeviceId("cgm-1".into()),
            characteristic: 0x2AA7,
            raw: bytes.to_vec(),
            session: Some(1),
        },
    })
}

/// The whole store path per reading: decode with CRC check, alert engine,
/// online reduction, durable insert every `batch` readings with the
/// reducer's hold-backs marked. Returns readings per second.
fn pipeline_run(
    dir: &Path,
    notifications: &[Vec<u8>],
    durability: Durability,
    batch: usize,
) -> Result<f64, Box<dyn Error>> {
    let start_time = Utc
        .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
        .single()
        .ok_or("start time")?;
    let path = fresh(dir, "pipeline.db");
    let mut buffer = Buffer::open(
        &path,
        BufferConfig {
            durability,
            ..BufferConfig::default()
        },
    )?;
    let mut engine = AlertEngine::new(AlertConfig::default(), "cgm-1")?;
    let mut reducer = Reducer::new(&Policy::BoundedError(ReducerConfig::glucose(
        Duration::minutes(1),
    )))?;
    let (mut pending, mut ids, mut decisions, mut held) = (
        Vec::with_capacity(batch),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let start = Instant::now();
    for (i, bytes) in notifications.iter().enumerate() {
        let reading = to_reading(bytes, start_time)?;
        let sample = Sample {
            time: reading.sensor_time,
            value: reading.value,
        };
        let alerted = !engine.on_glucose(sample)?.is_empty();
        reducer.push(sample, alerted, &mut decisions)?;
        pending.push(reading);
        if i + 1 == notifications.len() {
            reducer.finish(&mut decisions);
        }
        held.extend(decisions.drain(..).filter(|d| !d.kept).map(|d| d.index));
        if pending.len() == batch || i + 1 == notifications.len() {
            // Marks for readings already stored ride along with this
            // insert; the rest wait for the next one.
            let (ready, later): (Vec<u64>, Vec<u64>) =
                held.drain(..).partition(|&k| (k as usize) < ids.len());
            held = later;
            let marked: Vec<i64> = ready
                .iter()
                .filter_map(|&k| ids.get(k as usize).copied())
                .collect();
            ids.extend(
                buffer
                    .insert_and_mark_held(&pending, &marked)?
                    .ids
                    .into_iter()
                    .flatten(),
            );
            pending.clear();
            if i + 1 == notifications.len() {
                let last: Vec<i64> = held
                    .drain(..)
                    .filter_map(|k| ids.get(k as usize).copied())
                    .collect();
                buffer.mark_held(&last, true)?;
            }
        }
    }
    Ok(notifications.len() as f64 / start.elapsed().as_secs_f64())
}

fn pipeline_table(dir: &Path, n: usize) -> Result<(), Box<dyn Error>> {
    let notifications = cgm_notifications(n)?;
    let start = Utc
        .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
        .single()
        .ok_or("start time")?;
    let rows = notifications
        .iter()
        .map(|b| to_reading(b, start))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "\nStore path (decode + CRC, alerts, reduction, durable insert) against raw inserts: {n} CGM readings, best of {REPEATS} runs\n"
    );
    println!(
        "| durability | readings per insert | store path (readings/s) | raw, one transaction (readings/s) | ratio |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, durability) in [
        ("FULL (default)", Durability::PowerLoss),
        ("NORMAL", Durability::AppCrash),
    ] {
        let (mut path_rate, mut raw_rate) = (0f64, 0f64);
        for _ in 0..REPEATS {
            path_rate = path_rate.max(pipeline_run(dir, &notifications, durability, 1000)?);
            raw_rate = raw_rate.max(raw_run(dir, &rows, durability, rows.len())?);
        }
        println!(
            "| {name} | 1000 | {path_rate:.0} | {raw_rate:.0} | {:.2} |",
            path_rate / raw_rate
        );
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let full_run = std::env::args().any(|a| a == "--bench");
    let n = if full_run { 100_000 } else { 10_000 };
    let rows = readings(n)?;
    let dir = std::env::temp_dir().join(format!("vigil-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    println!("\nStore insert path: {n} readings of the worst-case mix, best of {REPEATS} runs\n");
    println!(
        "| durability | readings per call | buffer (readings/s) | raw, one transaction (readings/s) | ratio | raw, same commits (readings/s) | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut bytes_per_reading = f64::NAN;
    for (name, durability) in [
        ("FULL (default)", Durability::PowerLoss),
        ("NORMAL", Durability::AppCrash),
    ] {
        let mut raw_one = 0f64;
        for _ in 0..REPEATS {
            raw_one = raw_one.max(raw_run(&dir, &rows, durability, rows.len())?);
        }
        for batch in BATCHES {
            let (mut buffered, mut raw_same) = (0f64, 0f64);
            for _ in 0..REPEATS {
                let (rate, bytes) = buffer_run(&dir, &rows, durability, batch)?;
                buffered = buffered.max(rate);
                bytes_per_reading = bytes;
                raw_same = raw_same.max(raw_run(&dir, &rows, durability, batch)?);
            }
            println!(
                "| {name} | {batch} | {buffered:.0} | {raw_one:.0} | {:.2} | {raw_same:.0} | {:.2} |",
                buffered / raw_one,
                buffered / raw_same
            );
        }
    }
    println!(
        "\nBytes per reading on disk (pages in use, table and indexes): {bytes_per_reading:.1}"
    );
    pipeline_table(&dir, if full_run { 20_160 } else { 2_000 })?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

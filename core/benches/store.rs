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

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rusqlite::{Connection, params};
use vigil_core::model::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};
use vigil_core::store::{Buffer, BufferConfig, Durability, schema, stream_code};

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
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

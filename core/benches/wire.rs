//! Wire benchmark: bytes per reading of Vigil's binary and JSON batches
//! against the same readings uploaded as Nightscout-style JSON entries (the
//! form xDrip+ and AndroidAPS upload), raw and compressed, plus encode and
//! decode time per batch. Prints a markdown table for bench/RESULTS.md.
//!
//! Readings come from the physiology simulator and are sent whole (no
//! reduction), so the figures are the lossless cost of a reading. Plain
//! `Instant` timing (best of several runs), as in the reduction bench: the
//! byte counts are exact and the times only need their order of magnitude.

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use vigil_core::codec::heart_rate::rr_ticks_to_seconds;
use vigil_core::model::{DeviceId, PatientId, Quality, Stream};
use vigil_core::transport::simulated::physiology::{
    GlucoseModel, GlucoseProfile, HeartModel, HeartProfile, SampleInterval,
};
use vigil_core::wire::{self, Batch, BatchId, ContentEncoding, StreamReadings, WireReading};

type Failure = Box<dyn std::error::Error>;

const SEED: u64 = 11;
/// CGM Measurement characteristic.
const CGM_MEASUREMENT: u16 = 0x2AA7;
/// Heart Rate Measurement characteristic.
const HEART_RATE_MEASUREMENT: u16 = 0x2A37;

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_409_600, 0).unwrap_or_default() // 2026-03-02T00:00:00Z
}

fn best_of(mut f: impl FnMut() -> Result<(), Failure>) -> Result<Duration, Failure> {
    let begin = Instant::now();
    let mut best = Duration::MAX;
    let mut runs = 0;
    while runs < 3 || begin.elapsed() < Duration::from_millis(200) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed());
        runs += 1;
    }
    Ok(best)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(bytes)?;
    Ok(e.finish()?)
}

/// One Nightscout-style entry per reading: glucose as `sgv` entries with
/// a trend arrow, the way xDrip+ and AndroidAPS upload them; Nightscout has
/// no heart-rate entry, so rates and RR intervals use the same entry shape
/// with their own type (the fairest like-for-like JSON).
fn nightscout_json(batch: &Batch) -> Result<Vec<u8>, Failure> {
    let mut entries = Vec::new();
    for g in &batch.streams {
        let mut prev: Option<&WireReading> = None;
        for r in &g.readings {
            let date = r.time.timestamp_millis();
            let date_string = r.time.to_rfc3339_opts(SecondsFormat::Millis, true);
            let entry = match g.stream {
                Stream::Glucose => {
                    let rate = prev.map_or(0.0, |p| {
                        let minutes = (r.time - p.time).num_seconds() as f64 / 60.0;
                        (r.value - p.value) / minutes.max(1.0)
                    });
                    let direction = match rate {
                        x if x > 3.0 => "DoubleUp",
                        x if x > 2.0 => "SingleUp",
                        x if x > 1.0 => "FortyFiveUp",
                        x if x > -1.0 => "Flat",
                        x if x > -2.0 => "FortyFiveDown",
                        x if x > -3.0 => "SingleDown",
                        _ => "DoubleDown",
                    };
                    serde_json::json!({
                        "type": "sgv", "sgv": r.value as i64, "date": date,
                        "dateString": date_string, "direction": direction,
                        "device": batch.device.0, "noise": 1,
                    })
                }
                Stream::HeartRate => serde_json::json!({
                    "type": "hr", "bpm": r.value as i64, "date": date,
                    "dateString": date_string, "device": batch.device.0,
                }),
                _ => serde_json::json!({
                    "type": "rr", "rr": r.value, "date": date,
                    "dateString": date_string, "device": batch.device.0,
                }),
            };
            entries.push(entry);
            prev = Some(r);
        }
    }
    Ok(serde_json::to_vec(&entries)?)
}

fn new_batch(device: &str, sent_at: DateTime<Utc>) -> Batch {
    Batch::new(
        BatchId::random(),
        PatientId("3f2a9c4e-patient".into()),
        DeviceId(device.into()),
        sent_at,
    )
}

fn cgm_batch(interval: SampleInterval, minutes: i64) -> Result<Batch, Failure> {
    let mut model = GlucoseModel::new(
        SEED,
        GlucoseProfile::well_controlled_type1(),
        start(),
        interval,
    )?;
    let count = (minutes / i64::from(interval.minutes())) as usize;
    let mut group = StreamReadings::new(Stream::Glucose, Some(1), CGM_MEASUREMENT);
    for s in model.sensor_samples(count) {
        group.readings.push(WireReading {
            // The CGM time offset in minutes since session start.
            seq: u64::try_from((s.time - start()).num_minutes())?,
            time: s.time,
            value: s.value,
            quality: Quality::default(),
            raw: None,
        });
    }
    let mut batch = new_batch("dexcom-g7-8K3ZQ", start() + TimeDelta::minutes(minutes));
    batch.streams.push(group);
    Ok(batch)
}

fn heart_batch(minutes: i64) -> Result<Batch, Failure> {
    let mut model = HeartModel::new(SEED, HeartProfile::adult(), start())?;
    let mut hr = StreamReadings::new(Stream::HeartRate, None, HEART_RATE_MEASUREMENT);
    let mut rr = StreamReadings::new(Stream::RrInterval, None, HEART_RATE_MEASUREMENT);
    for i in 0..minutes * 60 {
        let p = model.next_point();
        hr.readings.push(WireReading {
            seq: u64::try_from(i)?,
            time: p.time,
            value: p.reported_bpm,
            quality: Quality::default(),
            raw: None,
        });
        for interval in &p.rr_intervals {
            // As the strap sends it: 1/1024 s ticks, decoded by the codec.
            let ticks = (interval * 1024.0).round().clamp(0.0, 65535.0) as u16;
            rr.readings.push(WireReading {
                seq: rr.readings.len() as u64,
                time: p.time,
                value: rr_ticks_to_seconds(ticks),
                quality: Quality::default(),
                raw: None,
            });
        }
    }
    let mut batch = new_batch("polar-h10-A1B2C3", start() + TimeDelta::minutes(minutes));
    batch.streams.push(hr);
    batch.streams.push(rr);
    Ok(batch)
}

fn row(name: &str, batch: &Batch) -> Result<String, Failure> {
    let n = batch.reading_count() as f64;
    let per = |bytes: usize| format!("{:.2}", bytes as f64 / n);
    let bin = wire::binary::encode(batch)?;
    let bin_deflate = wire::compress::compress(&bin, ContentEncoding::Deflate)?;
    let bin_gzip = wire::compress::compress(&bin, ContentEncoding::Gzip)?;
    let json = wire::json::to_vec(batch)?;
    let json_gzip = gzip(&json)?;
    let ns = nightscout_json(batch)?;
    let ns_gzip = gzip(&ns)?;

    // The phone's path and the server's path for the compact form.
    let encode = best_of(|| {
        let body = wire::encode_batch(batch, wire::Format::Binary, ContentEncoding::Deflate)?;
        std::hint::black_box(body);
        Ok(())
    })?;
    let decode = best_of(|| {
        let b = wire::decode_batch(&bin_deflate, wire::Format::Binary, ContentEncoding::Deflate)?;
        if b != *batch {
            return Err("decoded batch differs".into());
        }
        Ok(())
    })?;
    let json_decode = best_of(|| {
        let b: Batch = wire::json::from_slice(&json)?;
        std::hint::black_box(b);
        Ok(())
    })?;
    let us = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1e6);
    Ok(format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        batch.reading_count(),
        per(bin.len()),
        per(bin_deflate.len()),
        per(bin_gzip.len()),
        per(json.len()),
        per(json_gzip.len()),
        per(ns.len()),
        per(ns_gzip.len()),
        us(encode),
        us(decode),
        us(json_decode),
    ))
}

fn main() -> Result<(), Failure> {
    println!("### Wire bytes per reading (lossless, no reduction)\n");
    println!(
        "| batch | readings | binary | binary+deflate | binary+gzip | JSON | JSON+gzip | Nightscout JSON | Nightscout JSON+gzip | encode µs (binary+deflate) | decode µs (binary+deflate) | decode µs (JSON) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (label, minutes) in [("15 min", 15), ("1 h", 60), ("24 h", 24 * 60)] {
        println!(
            "{}",
            row(
                &format!("CGM 5-min, {label}"),
                &cgm_batch(SampleInterval::FiveMinutes, minutes)?
            )?
        );
    }
    for (label, minutes) in [("15 min", 15), ("1 h", 60), ("24 h", 24 * 60)] {
        println!(
            "{}",
            row(
                &format!("CGM 1-min, {label}"),
                &cgm_batch(SampleInterval::OneMinute, minutes)?
            )?
        );
    }
    for (label, minutes) in [("15 min", 15), ("1 h", 60), ("24 h", 24 * 60)] {
        println!(
            "{}",
            row(&format!("HR 1 Hz + RR, {label}"), &heart_batch(minutes)?)?
        );
    }
    println!(
        "\nBytes per reading = body bytes / readings in the batch (heart rows count rates and RR intervals). \
         A batch carries a fixed header (16-byte id, patient, device, send time, group headers), \
         which dominates the 15-minute rows."
    );
    Ok(())
}

//! Helpers shared by the `store_*` integration tests: a self-removing temp
//! directory and generators of realistic readings (with raw GATT bytes of
//! the sizes real notifications have).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use vigil_core::model::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigil-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("buffer.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
}

/// One reading with plausible raw bytes for its characteristic.
pub fn reading(
    device: &str,
    stream: Stream,
    sequence: u64,
    at: DateTime<Utc>,
    value: f64,
) -> Reading {
    let (characteristic, raw, session): (u16, Vec<u8>, Option<i64>) = match stream {
        // CGM Measurement: size, flags, SFLOAT glucose, time offset, trend,
        // quality, E2E-CRC.
        Stream::Glucose | Stream::GlucoseTrend => (
            0x2AA7,
            vec![
                12,
                0xC3,
                0x78,
                0xB0,
                (sequence & 0xFF) as u8,
                (sequence >> 8) as u8,
                0x0A,
                0xF0,
                0x5F,
                0xE0,
                0x3C,
                0x91,
            ],
            Some(1),
        ),
        // Heart Rate Measurement: flags, u8 rate, four RR intervals.
        Stream::HeartRate | Stream::RrInterval => (
            0x2A37,
            vec![0x10, 72, 0x40, 0x03, 0x42, 0x03, 0x3E, 0x03, 0x41, 0x03],
            None,
        ),
        // PLX Continuous Measurement: flags, SFLOAT SpO2, SFLOAT pulse rate.
        Stream::Spo2 | Stream::PulseRate => (0x2A5F, vec![0x00, 0x61, 0x00, 0x48, 0x00], None),
        _ => (
            0x2A18,
            vec![
                0x02, 0x01, 0x00, 0xEA, 0x07, 0x03, 0x01, 0x08, 0x00, 0x00, 0x78, 0xB0,
            ],
            None,
        ),
    };
    Reading {
        patient: PatientId("patient-7f3a".into()),
        stream,
        value,
        sensor_time: at,
        receive_time: at + Duration::milliseconds(180),
        sequence,
        quality: Quality {
            percent: matches!(stream, Stream::Glucose).then_some(95.0),
            flagged: false,
        },
        provenance: Provenance {
            device: DeviceId(device.into()),
            characteristic,
            raw,
            session,
        },
    }
}

/// The worst-case mix of one second `s` (counted from `t0()`): heart rate,
/// four RR intervals, SpO2 and pulse rate; every 60th second also a CGM
/// glucose and its trend.
pub fn worst_case_second(s: u64) -> Vec<Reading> {
    let at = t0() + Duration::seconds(s as i64);
    let mut out = vec![reading(
        "strap-1",
        Stream::HeartRate,
        s,
        at,
        72.0 + (s % 20) as f64,
    )];
    for i in 0..4 {
        out.push(reading(
            "strap-1",
            Stream::RrInterval,
            s * 4 + i,
            at + Duration::milliseconds(250 * i as i64),
            0.8 + 0.001 * (s % 50) as f64,
        ));
    }
    out.push(reading("oxi-1", Stream::Spo2, s, at, 97.0 - (s % 3) as f64));
    out.push(reading(
        "oxi-1",
        Stream::PulseRate,
        s,
        at,
        70.0 + (s % 10) as f64,
    ));
    if s % 60 == 0 {
        out.push(reading(
            "cgm-1",
            Stream::Glucose,
            s / 60,
            at,
            110.0 + (s % 37) as f64,
        ));
        out.push(reading("cgm-1", Stream::GlucoseTrend, s / 60, at, -0.5));
    }
    out
}

/// Opens a raw connection to a buffer file for checks the API does not
/// (and should not) offer.
pub fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

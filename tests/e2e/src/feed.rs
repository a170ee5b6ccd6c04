//! A deterministic phone workload: step `i` of a seed always yields the
//! same readings (a CGM glucose reading, a heart rate and an RR interval)
//! and, every [`ALERT_EVERY`] steps, the same urgent-low alert. A killed
//! phone process resumes at the step after the newest one its buffer holds,
//! and the parent test knows exactly what should have reached the server.

use chrono::{DateTime, TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_core::alerts::{AlertEvent, AlertKind, Phase};
use vigil_core::model::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};
use vigil_core::store::OutboxAlert;

/// One alert every this many steps.
pub const ALERT_EVERY: u64 = 97;
/// The CGM's sensor session in the feed.
pub const CGM_SESSION: i64 = 7;

/// The feed's devices and streams, for the checker.
pub fn streams() -> Vec<(DeviceId, Stream)> {
    vec![
        (DeviceId("feed-cgm".into()), Stream::Glucose),
        (DeviceId("feed-strap".into()), Stream::HeartRate),
        (DeviceId("feed-strap".into()), Stream::RrInterval),
    ]
}

/// The step after the newest one `buffer` holds: where a restarted phone
/// resumes, and how many steps a drained phone produced.
pub fn resume_at(buffer: &vigil_core::store::Buffer) -> vigil_core::Result<u64> {
    let mut next = 0;
    for (device, stream) in streams() {
        for r in buffer.readings_of(&device, stream)? {
            next = next.max(r.reading.sequence + 1);
        }
    }
    Ok(next)
}

/// A seeded workload starting at `t0`.
#[derive(Debug, Clone)]
pub struct Feed {
    /// Whose readings.
    pub patient: PatientId,
    /// Seed of the values.
    pub seed: u64,
    /// Time of step 0 (glucose steps are a minute apart, the strap's a
    /// second).
    pub t0: DateTime<Utc>,
}

impl Feed {
    /// What the checker expects once the phone sent steps `0..steps` on
    /// its true clock: the feed's streams and alerts, times exact.
    pub fn expect(&self, steps: u64) -> crate::check::Expect {
        crate::check::Expect {
            streams: streams(),
            alerts: self.alerts(steps),
            times: Some((TimeDelta::zero(), TimeDelta::zero())),
        }
    }

    /// The readings of step `i`.
    pub fn step(&self, i: u64) -> Vec<Reading> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let glucose = 120.0 + 45.0 * (i as f64 / 25.0).sin() + rng.random_range(-2.0..2.0);
        let hr = 70.0 + 15.0 * (i as f64 / 40.0).cos() + rng.random_range(-3.0..3.0);
        let rr = 60.0 / hr + rng.random_range(-0.02..0.02);
        let base = |stream, device: &str, value: f64, time, session| Reading {
            patient: self.patient.clone(),
            stream,
            value,
            sensor_time: time,
            receive_time: time,
            sequence: i,
            quality: Quality::default(),
            provenance: Provenance {
                device: DeviceId(device.into()),
                characteristic: 0x2AA7,
                raw: vec![],
                session,
            },
        };
        let minute = self.t0 + TimeDelta::minutes(i as i64);
        let second = self.t0 + TimeDelta::seconds(i as i64);
        vec![
            base(
                Stream::Glucose,
                "feed-cgm",
                glucose.round(),
                minute,
                Some(CGM_SESSION),
            ),
            base(Stream::HeartRate, "feed-strap", hr.round(), second, None),
            base(
                Stream::RrInterval,
                "feed-strap",
                (rr * 1024.0).round() / 1024.0,
                second,
                None,
            ),
        ]
    }

    /// The alert step `i` raises, if any.
    pub fn alert(&self, i: u64) -> Option<OutboxAlert> {
        if i % ALERT_EVERY != ALERT_EVERY - 1 {
            return None;
        }
        let time = self.t0 + TimeDelta::minutes(i as i64);
        let event = AlertEvent {
            id: format!("{:08x}{:08x}", self.seed as u32, i as u32),
            kind: AlertKind::UrgentLow,
            phase: Phase::Start,
            time,
            glucose_mg_dl: Some(50.0),
            rate_mg_dl_per_min: None,
            battery_pct: None,
            session_expires_at: None,
            device: Some("feed-cgm".into()),
        };
        Some(OutboxAlert {
            id: event.id.clone(),
            kind: "urgent_low".into(),
            phase: "start".into(),
            time,
            value: Some(50.0),
            payload: serde_json::to_vec(&event).ok()?,
        })
    }

    /// Every alert of steps `0..steps` as `(id, phase)`.
    pub fn alerts(&self, steps: u64) -> Vec<(String, String)> {
        (0..steps)
            .filter_map(|i| self.alert(i))
            .map(|a| (a.id, a.phase))
            .collect()
    }
}

//! The alert vocabulary: what an alert is about, where in its episode an
//! event stands, and the stable id both sides key an episode by.
//!
//! Place in the data flow: the phone's alert engine (`vigil_core::alerts`)
//! raises [`AlertEvent`]s; the wire carries them; the cloud stores, shows
//! and forwards them. Both sides must spell a kind and compute an id the
//! same way, so the phone and the cloud deduplicate an event by
//! `(id, phase, time)` after any restart or upgrade.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Glucose below the urgent-low threshold (default < 54 mg/dL).
    UrgentLow,
    /// Glucose below the low threshold (default < 70 mg/dL).
    Low,
    /// Glucose above the high threshold (default > 250 mg/dL).
    High,
    /// Glucose falling faster than the rate threshold (default 2 mg/dL/min).
    FastFall,
    /// Glucose rising faster than the rate threshold (default 2 mg/dL/min).
    FastRise,
    /// Glucose projected below the urgent-low threshold within the horizon
    /// (default 20 min).
    PredictedUrgentLow,
    /// No glucose reading for the signal-loss time (default 20 min).
    SignalLoss,
    /// The sensor session ends within the warning time (default 24 h).
    SensorSessionEnding,
    /// Device battery below the threshold (default 20 %).
    BatteryLow,
}

impl AlertKind {
    /// Every kind, in the order the engine evaluates them for one reading.
    pub const ALL: [AlertKind; 9] = [
        AlertKind::SignalLoss,
        AlertKind::UrgentLow,
        AlertKind::Low,
        AlertKind::High,
        AlertKind::FastFall,
        AlertKind::FastRise,
        AlertKind::PredictedUrgentLow,
        AlertKind::SensorSessionEnding,
        AlertKind::BatteryLow,
    ];

    /// Stable lowercase name used on the wire and in `vigil alerts`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::UrgentLow => "urgent_low",
            AlertKind::Low => "low",
            AlertKind::High => "high",
            AlertKind::FastFall => "fast_fall",
            AlertKind::FastRise => "fast_rise",
            AlertKind::PredictedUrgentLow => "predicted_urgent_low",
            AlertKind::SignalLoss => "signal_loss",
            AlertKind::SensorSessionEnding => "sensor_session_ending",
            AlertKind::BatteryLow => "battery_low",
        }
    }

    /// Parses [`AlertKind::as_str`]'s output.
    pub fn parse(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Position in [`AlertKind::ALL`], for per-kind state arrays.
    pub fn index(self) -> usize {
        match self {
            AlertKind::SignalLoss => 0,
            AlertKind::UrgentLow => 1,
            AlertKind::Low => 2,
            AlertKind::High => 3,
            AlertKind::FastFall => 4,
            AlertKind::FastRise => 5,
            AlertKind::PredictedUrgentLow => 6,
            AlertKind::SensorSessionEnding => 7,
            AlertKind::BatteryLow => 8,
        }
    }
}

/// Where in its episode an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// First raise of the episode.
    Start,
    /// A repeat raise while the condition lasts (every re-alert interval).
    Realert,
    /// The condition is over (past the threshold by the hysteresis margin, or
    /// the signal is back).
    End,
}

/// One alert event; the unit that goes to the outbox and the host callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// The episode's stable id (same for its start, re-alerts and end).
    pub id: String,
    /// What the alert is about.
    pub kind: AlertKind,
    /// Start, re-alert or end.
    pub phase: Phase,
    /// When it happened: the reading's time, or for time-driven alerts the
    /// moment the rule became true (e.g. 20 min after the last reading).
    pub time: DateTime<Utc>,
    /// Glucose of the reading that raised or ended it, if a reading did.
    pub glucose_mg_dl: Option<f64>,
    /// Glucose rate of change (least-squares slope over the rate window)
    /// behind a rate or prediction alert.
    pub rate_mg_dl_per_min: Option<f64>,
    /// Battery level behind a battery alert, percent.
    pub battery_pct: Option<f64>,
    /// Sensor session expiry behind a session-ending alert.
    pub session_expires_at: Option<DateTime<Utc>>,
    /// The device whose readings raised it, set where the alert is queued
    /// (the engine itself is per key); absent in older outbox rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// The stable id of an episode of `kind` that started at `start` for `key`.
///
/// It is the 64-bit FNV-1a hash of the UTF-8 bytes of
/// `"{key}\u{1f}{kind}\u{1f}{start as Unix milliseconds}"`, written as 16
/// lowercase hex digits. FNV-1a is fixed by its specification (unlike std's
/// `DefaultHasher`, which may change between Rust releases), so the phone and
/// the cloud, today and after an upgrade, compute the same id.
pub fn alert_id(key: &str, kind: AlertKind, start: DateTime<Utc>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let text = format!(
        "{key}\u{1f}{}\u{1f}{}",
        kind.as_str(),
        start.timestamp_millis()
    );
    let hash = text
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // FNV-1a 64 of "" and "a" (from the FNV reference test suite) checked
        // through the same fold the id uses.
        let fnv = |s: &str| {
            s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        };
        assert_eq!(fnv(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn ids_depend_on_key_kind_and_start_only() {
        let t = DateTime::parse_from_rfc3339("2026-01-05T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = alert_id("patient-1", AlertKind::Low, t);
        assert_eq!(a, alert_id("patient-1", AlertKind::Low, t));
        assert_eq!(a.len(), 16);
        assert_ne!(a, alert_id("patient-2", AlertKind::Low, t));
        assert_ne!(a, alert_id("patient-1", AlertKind::UrgentLow, t));
        assert_ne!(
            a,
            alert_id(
                "patient-1",
                AlertKind::Low,
                t + chrono::TimeDelta::minutes(5)
            )
        );
    }

    #[test]
    fn kinds_have_stable_names_and_indices() {
        for (i, k) in AlertKind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(AlertKind::parse(k.as_str()), Some(k));
        }
    }
}

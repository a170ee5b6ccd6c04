//! The adaptive batch cadence: when batches may wait longer than the
//! configured interval.
//!
//! Place in the data flow: buffer → **cadence** → the engine's batch timer.
//! Each batch request costs a few hundred bytes of request line, headers
//! and acknowledgement whatever it carries, so at 5-minute CGM data the
//! per-request cost, not the readings, is most of the wire. While glucose
//! is steady (in range, away from its edges, hardly moving) and no alert
//! has fired lately, a clinician loses little by seeing it later, so
//! batches stretch to [`SyncConfig::stable_interval`](super::SyncConfig);
//! the moment glucose moves, nears a threshold or an alert fires, they are
//! back on the configured interval. Alerts never wait for a batch: they
//! leave the outbox at once on their own path.
//!
//! A pure function over the newest readings, so the rule is tested apart
//! from timers and SQLite; times are the data's own (sensor time), so the
//! rule reads the same on simulated and wall time.

use chrono::TimeDelta;

use crate::model::Sample;

/// What counts as steady glucose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steadiness {
    /// How far back from the newest reading the rule looks.
    pub window: TimeDelta,
    /// Every reading in the window at or above this, mg/dL (10 above the
    /// consensus range's 70 and the default low alert: near a low, the
    /// clinician's view stays fresh).
    pub low_mg_dl: f64,
    /// Every reading in the window at or below this, mg/dL (the consensus
    /// "very high" boundary: a flat 200 needs no one within the hour, a
    /// reading over 250 may).
    pub high_mg_dl: f64,
    /// Highest minus lowest reading in the window at most this, mg/dL
    /// (30 over 30 minutes: the CGM "steady" trend arrow, under 1 mg/dL
    /// a minute).
    pub max_change_mg_dl: f64,
    /// At least this many readings in the window (a lost signal is not
    /// steady).
    pub min_readings: usize,
}

impl Default for Steadiness {
    /// 30 minutes, 80–250 mg/dL, at most 30 mg/dL of movement, at least
    /// 3 readings. Chosen by measurement (`vigil reduction-check` prints
    /// the share of batch checks at which the rule holds): on the
    /// simulator's 14-day traces it holds at 84 / 49 / 96 % of checks
    /// (t1-well / t1-poor / t2) against 65 / 28 / 48 % for 80–170 mg/dL
    /// and 15 mg/dL, which kept batches at 15 minutes through every meal
    /// and most flat highs (`bench/RESULTS.md`).
    fn default() -> Self {
        Steadiness {
            window: TimeDelta::minutes(30),
            low_mg_dl: 80.0,
            high_mg_dl: 250.0,
            max_change_mg_dl: 30.0,
            min_readings: 3,
        }
    }
}

impl Steadiness {
    /// How many of the newest readings to read: enough for the window at
    /// 1-minute data, with room for a backfill stored in between.
    pub const READINGS: usize = 64;

    /// Whether `recent` (glucose samples in any order) is steady: enough
    /// readings within [`Steadiness::window`] of the newest one, all inside
    /// the band and within [`Steadiness::max_change_mg_dl`] of each other.
    /// `alert_lately` (an alert fired within the stretched interval, or one
    /// is still undelivered) is never steady.
    pub fn is_steady(&self, recent: &[Sample], alert_lately: bool) -> bool {
        if alert_lately {
            return false;
        }
        let Some(newest) = recent.iter().map(|s| s.time).max() else {
            return false;
        };
        let Some(from) = newest.checked_sub_signed(self.window) else {
            return false;
        };
        let mut n = 0usize;
        let mut low = f64::INFINITY;
        let mut high = f64::NEG_INFINITY;
        for s in recent.iter().filter(|s| s.time >= from) {
            if !s.value.is_finite() || s.value < self.low_mg_dl || s.value > self.high_mg_dl {
                return false;
            }
            n += 1;
            low = low.min(s.value);
            high = high.max(s.value);
        }
        n >= self.min_readings && high - low <= self.max_change_mg_dl
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn trace(values: &[f64], step_min: i64) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Sample {
                time: t0() + TimeDelta::minutes(step_min * i as i64),
                value,
            })
            .collect()
    }

    #[test]
    fn flat_in_range_glucose_is_steady() {
        let s = Steadiness::default();
        assert!(s.is_steady(
            &trace(&[110.0, 112.0, 111.0, 115.0, 113.0, 112.0, 114.0], 5),
            false
        ));
    }

    #[test]
    fn an_alert_lately_is_never_steady() {
        let s = Steadiness::default();
        assert!(!s.is_steady(&trace(&[110.0, 112.0, 111.0, 115.0], 5), true));
    }

    #[test]
    fn glucose_near_a_threshold_or_moving_is_not_steady() {
        let s = Steadiness::default();
        // Near the low edge.
        assert!(!s.is_steady(&trace(&[85.0, 82.0, 79.0, 81.0], 5), false));
        // Past the high edge.
        assert!(!s.is_steady(&trace(&[245.0, 248.0, 252.0], 5), false));
        // In range but rising 35 mg/dL in 30 minutes (over 1 mg/dL/min).
        assert!(!s.is_steady(
            &trace(&[100.0, 107.0, 114.0, 121.0, 128.0, 135.0], 5),
            false
        ));
        // A flat high is steady; a slow drift under 1 mg/dL/min is too.
        assert!(s.is_steady(&trace(&[210.0, 214.0, 212.0, 215.0], 5), false));
        assert!(s.is_steady(
            &trace(&[100.0, 104.0, 108.0, 112.0, 116.0, 120.0], 5),
            false
        ));
    }

    #[test]
    fn too_few_readings_or_none_are_not_steady() {
        let s = Steadiness::default();
        assert!(!s.is_steady(&[], false));
        assert!(!s.is_steady(&trace(&[110.0, 111.0], 5), false));
        // A lost signal: the two readings inside the window are too few.
        let mut gap = trace(&[110.0, 111.0, 112.0], 5);
        gap.push(Sample {
            time: t0() + TimeDelta::minutes(90),
            value: 112.0,
        });
        gap.push(Sample {
            time: t0() + TimeDelta::minutes(95),
            value: 112.0,
        });
        assert!(!s.is_steady(&gap, false));
    }

    #[test]
    fn only_the_window_counts() {
        let s = Steadiness::default();
        // A rise an hour ago, flat since.
        let mut v = vec![60.0, 90.0];
        v.extend(std::iter::repeat_n(120.0, 12));
        assert!(s.is_steady(&trace(&v, 5), false));
    }

    #[test]
    fn a_value_that_is_not_a_number_is_not_steady() {
        let s = Steadiness::default();
        assert!(!s.is_steady(&trace(&[110.0, f64::NAN, 111.0, 112.0], 5), false));
    }
}

//! The rules themselves, as pure functions of values: when a condition
//! starts, when it ends, and the glucose rate they use.
//!
//! The rate is the least-squares slope of every reading in the rate window,
//! not the difference of the window's endpoints: with a CGM's ±10 % noise,
//! one noisy endpoint would otherwise raise (or hide) a fast fall. A linear
//! projection `value + rate × horizon` is what "below 54 within 20 minutes"
//! means: on a line, the value inside the horizon is lowest at one of its
//! ends, so the projection at the horizon decides.

use chrono::TimeDelta;

/// A threshold rule with hysteresis on one number (glucose, rate, battery).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Starts when the value is `< threshold`; ends when `>= threshold + margin`.
    Below {
        /// The threshold.
        threshold: f64,
        /// The hysteresis margin, ≥ 0.
        margin: f64,
    },
    /// Starts when the value is `> threshold`; ends when `<= threshold - margin`.
    Above {
        /// The threshold.
        threshold: f64,
        /// The hysteresis margin, ≥ 0.
        margin: f64,
    },
}

impl Threshold {
    /// The rule is met: an alert may start or be raised again.
    pub fn met(self, value: f64) -> bool {
        match self {
            Threshold::Below { threshold, .. } => value < threshold,
            Threshold::Above { threshold, .. } => value > threshold,
        }
    }

    /// The value is back past the threshold by the margin: the alert ends.
    /// Never true together with [`Threshold::met`] (margins are ≥ 0).
    pub fn cleared(self, value: f64) -> bool {
        match self {
            Threshold::Below { threshold, margin } => value >= threshold + margin,
            Threshold::Above { threshold, margin } => value <= threshold - margin,
        }
    }
}

/// Least-squares slope of `samples` in mg/dL per minute: the one fit the
/// phone's rate alerts and the cloud's derived trend share (it lives in
/// `vigil-model` so the service can use it without the SDK).
pub use vigil_model::trend::slope_mg_dl_per_min;

/// Glucose projected `horizon` ahead on the line through `value` with `rate`.
pub fn projected_mg_dl(value: f64, rate_mg_dl_per_min: f64, horizon: TimeDelta) -> f64 {
    value + rate_mg_dl_per_min * horizon.num_milliseconds() as f64 / 60_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sample;
    use chrono::{DateTime, Utc};

    fn at(min: i64, value: f64) -> Sample {
        let t0 = DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Sample {
            time: t0 + TimeDelta::minutes(min),
            value,
        }
    }

    #[test]
    fn slope_is_the_least_squares_fit_not_the_endpoints() {
        // x = 0, 5, 10, 15; y = 100, 90, 85, 70.
        // mean x 7.5, mean y 86.25; Σdx·dy = (-7.5)(13.75) + (-2.5)(3.75)
        // + (2.5)(-1.25) + (7.5)(-16.25) = -103.125 - 9.375 - 3.125 - 121.875
        // = -237.5; Σdx² = 125; slope = -1.9 (the endpoints would say -2).
        let s = [at(0, 100.0), at(5, 90.0), at(10, 85.0), at(15, 70.0)];
        let r = slope_mg_dl_per_min(s.iter(), 3).unwrap();
        assert!((r + 1.9).abs() < 1e-12, "{r}");
    }

    #[test]
    fn slope_needs_enough_readings() {
        let s = [at(0, 100.0), at(5, 90.0)];
        assert_eq!(slope_mg_dl_per_min(s.iter(), 3), None);
        assert_eq!(slope_mg_dl_per_min(s.iter(), 2), Some(-2.0));
        assert_eq!(
            slope_mg_dl_per_min([at(0, 1.0), at(0, 2.0)].iter(), 2),
            None
        );
    }

    #[test]
    fn thresholds_start_strictly_and_end_past_the_margin() {
        let low = Threshold::Below {
            threshold: 70.0,
            margin: 5.0,
        };
        assert!(low.met(69.9) && !low.met(70.0));
        assert!(!low.cleared(74.9) && low.cleared(75.0));
        let high = Threshold::Above {
            threshold: 250.0,
            margin: 5.0,
        };
        assert!(high.met(250.1) && !high.met(250.0));
        assert!(!high.cleared(245.1) && high.cleared(245.0));
    }

    #[test]
    fn projection_is_linear_in_the_horizon() {
        assert_eq!(projected_mg_dl(80.0, -1.5, TimeDelta::minutes(20)), 50.0);
    }
}

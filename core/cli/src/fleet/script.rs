//! The demo's scripted events, in simulated time from the start: who goes
//! low, whose sensor leaves range, whose phone goes offline. Everything
//! else (meals, insulin, the lows and highs they cause) comes from the
//! simulated physiology, seeded per patient.
//!
//! The times are chosen so that the whole script plays within the first
//! six simulated hours: three minutes of wall time at the default
//! acceleration.

use chrono::TimeDelta;
use vigil_core::api::{OutOfRange, SimulatedGlucose};

/// A period in simulated time, from the demo's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Start, inclusive.
    pub from: TimeDelta,
    /// End, exclusive.
    pub to: TimeDelta,
}

/// Who does what, for a fleet of a given size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    patients: usize,
    /// The patient whose basal insulin is too high: lows from the first
    /// hours on.
    pub hypo: usize,
    /// The patient whose CGM is out of range, and when.
    pub out_of_range: (usize, Period),
    /// The patient whose phone has no network, and when.
    pub offline: (usize, Period),
    /// How many patients (the last ones) also wear a heart-rate strap.
    /// A strap sends a reading and RR intervals every second, so its phone
    /// does far more work per simulated hour and its clock may fall behind
    /// the others on a busy machine; the scripted roles go to the first
    /// patients, which keeps the script on time.
    pub straps: usize,
}

impl Script {
    /// The script for `patients` patients (at least one), `straps` of them
    /// with a heart-rate strap. With fewer than four patients some share
    /// roles.
    pub fn new(patients: usize, straps: usize) -> Script {
        let n = patients.max(1);
        Script {
            patients: n,
            hypo: 1 % n,
            out_of_range: (
                2 % n,
                Period {
                    from: TimeDelta::minutes(60),
                    to: TimeDelta::minutes(120),
                },
            ),
            offline: (
                3 % n,
                Period {
                    from: TimeDelta::minutes(150),
                    to: TimeDelta::minutes(330),
                },
            ),
            straps: straps.min(n),
        }
    }

    /// The simulated person behind patient `i`'s CGM.
    pub fn glucose(&self, i: usize) -> SimulatedGlucose {
        if i == self.hypo {
            return SimulatedGlucose::HypoProne;
        }
        match i % 3 {
            0 => SimulatedGlucose::WellControlledType1,
            1 => SimulatedGlucose::PoorlyControlledType1,
            _ => SimulatedGlucose::Type2,
        }
    }

    /// Patient `i`'s CGM out-of-range periods, Unix ms, for a demo that
    /// starts at `start_ms`.
    pub fn out_of_range_ms(&self, i: usize, start_ms: i64) -> Vec<OutOfRange> {
        let (who, p) = self.out_of_range;
        if i != who {
            return Vec::new();
        }
        vec![OutOfRange {
            from_ms: start_ms + p.from.num_milliseconds(),
            to_ms: start_ms + p.to.num_milliseconds(),
        }]
    }

    /// Whether patient `i` wears a heart-rate strap.
    pub fn has_strap(&self, i: usize) -> bool {
        i >= self.patients - self.straps
    }

    /// One line per scripted event, for the demo's header.
    pub fn describe(&self) -> Vec<String> {
        let at = |t: TimeDelta| format!("+{:02}:{:02}", t.num_hours(), t.num_minutes() % 60);
        let (s, sp) = self.out_of_range;
        let (o, op) = self.offline;
        vec![
            format!(
                "{}: basal insulin set too high, goes hypoglycaemic within the first hours (and again after each treatment)",
                label(self.hypo)
            ),
            format!(
                "{}: CGM out of range {} to {} (signal loss, then RACP backfill of the missed readings)",
                label(s),
                at(sp.from),
                at(sp.to)
            ),
            format!(
                "{}: phone offline {} to {} (readings and alerts wait in its buffer, then sync)",
                label(o),
                at(op.from),
                at(op.to)
            ),
            format!(
                "{} of {} patients also wear a heart-rate strap; the rest is the simulated physiology",
                self.straps, self.patients
            ),
        ]
    }
}

/// How the demo names patient `i` in its output: a number, never a name.
pub fn label(i: usize) -> String {
    format!("patient {:02}", i + 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn twenty_patients_get_distinct_roles() {
        let s = Script::new(20, 5);
        let roles = [s.hypo, s.out_of_range.0, s.offline.0];
        assert_eq!(roles, [1, 2, 3]);
        assert_eq!(s.glucose(1), SimulatedGlucose::HypoProne);
        assert_ne!(s.glucose(0), SimulatedGlucose::HypoProne);
        assert_eq!(
            s.out_of_range_ms(2, 1_000),
            vec![OutOfRange {
                from_ms: 3_601_000,
                to_ms: 7_201_000
            }]
        );
        assert!(s.out_of_range_ms(1, 1_000).is_empty());
        assert!(s.has_strap(15) && !s.has_strap(14));
        assert!(!roles.iter().any(|&r| s.has_strap(r)));
    }

    #[test]
    fn one_patient_plays_every_role() {
        let s = Script::new(1, 3);
        assert_eq!((s.hypo, s.out_of_range.0, s.offline.0), (0, 0, 0));
        assert_eq!(s.straps, 1);
    }
}

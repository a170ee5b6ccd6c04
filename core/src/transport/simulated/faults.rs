//! Scripted and seeded random faults for simulated peripherals.
//!
//! A fault plan is a list of timed faults. Random faults are not a second
//! mechanism: [`FaultPlan::random`] draws a scripted list from a seed, so a
//! failing random run can be printed, replayed and shrunk by hand like any
//! scripted one.
//!
//! Faults act where they act on a real device: an out-of-range period or a
//! dropped link makes the peripheral unreachable (the transport then reports
//! a disconnect); dropped, duplicated and corrupt notifications change only
//! what goes over the air, never what the sensor stores, so a later RACP
//! backfill can recover the record.

use chrono::{DateTime, TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How long the link stays down after a [`Fault::Disconnect`].
pub const DISCONNECT_BLIP: TimeDelta = TimeDelta::seconds(30);

/// One timed fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The link drops at `at` and the device is unreachable for
    /// [`DISCONNECT_BLIP`].
    Disconnect {
        /// When the link drops.
        at: DateTime<Utc>,
    },
    /// The device is out of range (unreachable) during `from..to`.
    OutOfRange {
        /// Start, inclusive.
        from: DateTime<Utc>,
        /// End, exclusive.
        to: DateTime<Utc>,
    },
    /// Live measurement notifications in `from..to` are not sent (the
    /// records are still stored).
    DropNotifications {
        /// Start, inclusive.
        from: DateTime<Utc>,
        /// End, exclusive.
        to: DateTime<Utc>,
    },
    /// Live measurement notifications in `from..to` are sent twice.
    DuplicateNotifications {
        /// Start, inclusive.
        from: DateTime<Utc>,
        /// End, exclusive.
        to: DateTime<Utc>,
    },
    /// Live measurement notifications in `from..to` go out corrupt: with a
    /// wrong E2E-CRC when the device uses one, else one byte short.
    CorruptFrames {
        /// Start, inclusive.
        from: DateTime<Utc>,
        /// End, exclusive.
        to: DateTime<Utc>,
    },
    /// The battery falls to `percent` at `at`.
    LowBattery {
        /// When.
        at: DateTime<Utc>,
        /// The new level (below 10 % the device flags "battery low").
        percent: u8,
    },
    /// A new sensor session starts at `at` (a new sensor was inserted): the
    /// old session's records are gone, time offsets restart.
    NewSession {
        /// When the new session starts.
        at: DateTime<Utc>,
    },
}

/// Rates for [`FaultPlan::random`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomFaults {
    /// Link drops per hour.
    pub disconnects_per_hour: f64,
    /// Out-of-range periods per day (each 5 to 90 minutes).
    pub out_of_range_per_day: f64,
    /// Dropped-notification windows per day (each 1 to 10 minutes).
    pub drops_per_day: f64,
    /// Duplicated-notification windows per day (each 1 to 5 minutes).
    pub duplicates_per_day: f64,
    /// Corrupt-frame windows per day (each 1 to 5 minutes).
    pub corruptions_per_day: f64,
}

/// The faults a simulated peripheral suffers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Every fault, in any order.
    pub faults: Vec<Fault>,
}

/// Builds a windowed fault from its bounds.
type MakeWindow = fn(DateTime<Utc>, DateTime<Utc>) -> Fault;

fn within(t: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    from <= t && t < to
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// A plan of the given faults.
    pub fn scripted(faults: Vec<Fault>) -> Self {
        Self { faults }
    }

    /// A seeded random plan over `start..start + length`: the same seed and
    /// rates always give the same faults.
    pub fn random(seed: u64, start: DateTime<Utc>, length: TimeDelta, rates: RandomFaults) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let total_s = length.num_seconds().max(1);
        let days = total_s as f64 / 86_400.0;
        let mut faults = Vec::new();
        let at = |rng: &mut ChaCha8Rng| start + TimeDelta::seconds(rng.random_range(0..total_s));
        let count = |rng: &mut ChaCha8Rng, mean: f64| -> usize {
            // Whole part always, fractional part by chance: an unbiased
            // count without a Poisson sampler.
            let mean = mean.max(0.0);
            let whole = mean.floor();
            let extra = usize::from(rng.random_bool((mean - whole).clamp(0.0, 1.0)));
            whole as usize + extra
        };
        for _ in 0..count(&mut rng, rates.disconnects_per_hour * days * 24.0) {
            faults.push(Fault::Disconnect { at: at(&mut rng) });
        }
        let windows: [(f64, i64, i64, MakeWindow); 4] = [
            (rates.out_of_range_per_day, 5, 90, |from, to| {
                Fault::OutOfRange { from, to }
            }),
            (rates.drops_per_day, 1, 10, |from, to| {
                Fault::DropNotifications { from, to }
            }),
            (rates.duplicates_per_day, 1, 5, |from, to| {
                Fault::DuplicateNotifications { from, to }
            }),
            (rates.corruptions_per_day, 1, 5, |from, to| {
                Fault::CorruptFrames { from, to }
            }),
        ];
        for (rate, lo, hi, make) in windows {
            for _ in 0..count(&mut rng, rate * days) {
                let from = at(&mut rng);
                let to = from + TimeDelta::minutes(rng.random_range(lo..=hi));
                faults.push(make(from, to));
            }
        }
        Self { faults }
    }

    /// Whether a central can reach the device at `now`.
    pub fn reachable(&self, now: DateTime<Utc>) -> bool {
        !self.faults.iter().any(|f| match *f {
            Fault::Disconnect { at } => within(now, at, at + DISCONNECT_BLIP),
            Fault::OutOfRange { from, to } => within(now, from, to),
            _ => false,
        })
    }

    /// Whether a live notification measured at `t` is dropped.
    pub fn drops(&self, t: DateTime<Utc>) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(*f, Fault::DropNotifications { from, to } if within(t, from, to)))
    }

    /// Whether a live notification measured at `t` is sent twice.
    pub fn duplicates(&self, t: DateTime<Utc>) -> bool {
        self.faults.iter().any(
            |f| matches!(*f, Fault::DuplicateNotifications { from, to } if within(t, from, to)),
        )
    }

    /// Whether a live notification measured at `t` goes out corrupt.
    pub fn corrupts(&self, t: DateTime<Utc>) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(*f, Fault::CorruptFrames { from, to } if within(t, from, to)))
    }

    /// The battery level forced by the latest [`Fault::LowBattery`] at or
    /// before `now`, if any.
    pub fn battery(&self, now: DateTime<Utc>) -> Option<u8> {
        self.faults
            .iter()
            .filter_map(|f| match *f {
                Fault::LowBattery { at, percent } if at <= now => Some((at, percent)),
                _ => None,
            })
            .max_by_key(|(at, _)| *at)
            .map(|(_, p)| p)
    }

    /// Start times of new sessions in `after..=now`, oldest first.
    pub fn new_sessions(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut v: Vec<_> = self
            .faults
            .iter()
            .filter_map(|f| match *f {
                Fault::NewSession { at } if after < at && at <= now => Some(at),
                _ => None,
            })
            .collect();
        v.sort();
        v
    }
}

/// Damages an encoded notification so the codec must reject it: flips the
/// E2E-CRC when the record carries one, else cuts the last byte (the Size
/// field then promises more than arrives).
pub fn corrupt(mut value: Vec<u8>, has_crc: bool) -> Vec<u8> {
    if has_crc {
        if let Some(last) = value.last_mut() {
            *last ^= 0xA5;
        }
    } else {
        value.pop();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(min)
    }

    #[test]
    fn random_plans_are_deterministic_for_a_seed() {
        let rates = RandomFaults {
            disconnects_per_hour: 0.5,
            out_of_range_per_day: 2.0,
            drops_per_day: 3.0,
            duplicates_per_day: 3.0,
            corruptions_per_day: 3.0,
        };
        let a = FaultPlan::random(7, t(0), TimeDelta::days(1), rates);
        let b = FaultPlan::random(7, t(0), TimeDelta::days(1), rates);
        let c = FaultPlan::random(8, t(0), TimeDelta::days(1), rates);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.faults.len() >= 12);
    }

    #[test]
    fn windows_are_half_open() {
        let p = FaultPlan::scripted(vec![Fault::OutOfRange {
            from: t(10),
            to: t(20),
        }]);
        assert!(p.reachable(t(9)));
        assert!(!p.reachable(t(10)));
        assert!(!p.reachable(t(19)));
        assert!(p.reachable(t(20)));
    }
}

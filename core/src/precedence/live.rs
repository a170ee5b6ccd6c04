//! The live gate: which reading of a quantity the alert engine hears, decided
//! reading by reading as readings arrive (issue 15).
//!
//! [`Precedence::resolve`] picks one reading per moment over a stored range;
//! alerts cannot wait for a range to close. Slope rules (fast fall, fast
//! rise, predicted urgent low) need one calibrated series: two CGMs that
//! disagree by 20 mg/dL, interleaved, look like a 4 mg/dL/min swing every
//! reading. So the engine follows **one source at a time**, a source being
//! one device's stream within one sensor session, and the gate decides which.
//!
//! Decisions that shaped it:
//! - **Sticky.** The followed source keeps the engine while it is fresh;
//!   another source of the same or a lower rank takes over only once the
//!   followed one has been silent longer than the hold time. A source
//!   outranked by the policy's first [`Rule::DeviceRank`] (or an older
//!   sensor session of the followed device) never displaces it; a higher
//!   rank or the followed device's newer session takes over at once.
//! - **The present only.** A reading at or before the last one the engine
//!   heard is never admitted: backfill and late copies go to the buffer and
//!   the resolved view, not to the alarms.
//! - **Pure.** No clock, no I/O: silence is measured between sensor times,
//!   so the same readings in the same order give the same decisions on any
//!   machine.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Coincidence, DeviceClass, Precedence, Quantity, Rule, Validity};
use crate::model::{DeviceId, Reading, Stream};

/// One source the engine can follow: a device's stream within one sensor
/// session (a new sensor on the same transmitter is a new source).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// The device.
    pub device: DeviceId,
    /// Its stream.
    pub stream: Stream,
    /// Its sensor session, if the device has sessions.
    pub session: Option<i64>,
}

impl Source {
    /// The source `reading` came from.
    pub fn of(reading: &Reading) -> Source {
        Source {
            device: reading.provenance.device.clone(),
            stream: reading.stream,
            session: reading.provenance.session,
        }
    }

    /// Same device and stream, a later session: the sensor was replaced.
    fn succeeds(&self, other: &Source) -> bool {
        self.device == other.device
            && self.stream == other.stream
            && match (self.session, other.session) {
                (Some(new), Some(old)) => new > old,
                _ => false,
            }
    }
}

/// What the gate decided about one reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Fed to the engine: the followed source's next reading.
    Follow,
    /// Fed to the engine, and its source is followed from now on; the
    /// engine must forget the previous source's rate window (`previous` is
    /// `None` for the very first source).
    TakeOver {
        /// The source followed until now.
        previous: Option<Source>,
    },
    /// Not fed: at or before the last reading the engine heard (backfill, a
    /// late copy, another source lagging behind).
    NotAfterLast,
    /// Not fed: another source is followed and still fresh, and this one
    /// does not outrank it.
    Standby,
    /// Not fed: a value no alert rule can take (special, impossible, or
    /// not positive).
    Unusable,
    /// Not fed: the reading's stream does not measure the gate's quantity.
    OtherQuantity,
}

impl Admission {
    /// Whether the reading goes to the engine.
    pub fn admitted(&self) -> bool {
        matches!(self, Admission::Follow | Admission::TakeOver { .. })
    }
}

/// The followed source and what the gate remembers about it.
#[derive(Debug, Clone, PartialEq)]
struct Followed {
    source: Source,
    rank: usize,
    /// Its newest reading fed to the engine.
    last: DateTime<Utc>,
}

/// The streaming gate in front of one alert engine; see the module docs.
#[derive(Debug, Clone)]
pub struct LiveSource {
    precedence: Precedence,
    hold: TimeDelta,
    followed: Option<Followed>,
}

impl LiveSource {
    /// A gate for `precedence`'s quantity that hands over after `hold` of
    /// silence from the followed source ([`LiveSource::default_hold`] is a
    /// reasonable choice).
    pub fn new(precedence: Precedence, hold: TimeDelta) -> LiveSource {
        LiveSource {
            precedence,
            hold: hold.max(TimeDelta::zero()),
            followed: None,
        }
    }

    /// Twice the policy's coincidence width (10 min for glucose's 5-min
    /// moments): one missed reading is routine (a dropped notification,
    /// backfilled later) and must not cause a handover, two in a row mean
    /// the source is gone. A caller with a signal-loss alarm should keep the
    /// hold shorter than it, so another speaking source takes over before
    /// the alarm would sound.
    pub fn default_hold(precedence: &Precedence) -> TimeDelta {
        match precedence.config().coincidence {
            Coincidence::Slots { width } | Coincidence::Window { width } => width * 2,
        }
    }

    /// Declares `device`'s class (from the kind the app paired it with); the
    /// stream's default class applies until then.
    pub fn declare(&mut self, device: DeviceId, class: DeviceClass) {
        self.precedence = self.precedence.clone().with_device_class(device, class);
    }

    /// The source the engine follows now, if any.
    pub fn followed(&self) -> Option<&Source> {
        self.followed.as_ref().map(|f| &f.source)
    }

    /// The quantity gated.
    pub fn quantity(&self) -> Quantity {
        self.precedence.config().quantity
    }

    /// Decides whether `reading` feeds the engine, and remembers it if so.
    pub fn admit(&mut self, reading: &Reading) -> Admission {
        if Quantity::of(reading.stream) != Some(self.quantity()) {
            return Admission::OtherQuantity;
        }
        if Validity::of(reading) == Validity::Invalid || reading.value <= 0.0 {
            return Admission::Unusable;
        }
        let source = Source::of(reading);
        let rank = self.rank(reading);
        let t = reading.sensor_time;
        let Some(current) = &self.followed else {
            self.followed = Some(Followed {
                source,
                rank,
                last: t,
            });
            return Admission::TakeOver { previous: None };
        };
        if t <= current.last {
            return Admission::NotAfterLast;
        }
        if source == current.source {
            if let Some(f) = self.followed.as_mut() {
                f.last = t;
            }
            return Admission::Follow;
        }
        let replaces = rank < current.rank
            || (rank == current.rank && source.succeeds(&current.source))
            || (t - current.last > self.hold && !current.source.succeeds(&source));
        if !replaces {
            return Admission::Standby;
        }
        let previous = self.followed.replace(Followed {
            source,
            rank,
            last: t,
        });
        Admission::TakeOver {
            previous: previous.map(|p| p.source),
        }
    }

    /// Position of the reading's class in the first device ranking (0 is the
    /// most trusted); unlisted classes, or no ranking, rank last together.
    fn rank(&self, reading: &Reading) -> usize {
        let ranking = self.precedence.config().rules.iter().find_map(|r| match r {
            Rule::DeviceRank { ranking } => Some(ranking),
            _ => None,
        });
        let Some(ranking) = ranking else {
            return 0;
        };
        let class = self.precedence.class_of(reading);
        ranking
            .iter()
            .position(|c| *c == class)
            .unwrap_or(ranking.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::model::{PatientId, Provenance, Quality};
    use crate::precedence::{Coincidence, PrecedenceConfig};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_571_200, 0).unwrap()
    }

    fn reading(device: &str, stream: Stream, session: Option<i64>, min: i64, v: f64) -> Reading {
        Reading {
            patient: PatientId("p".into()),
            stream,
            value: v,
            sensor_time: t0() + TimeDelta::minutes(min),
            receive_time: t0() + TimeDelta::minutes(min),
            sequence: u64::try_from(min).unwrap_or(0),
            quality: Quality::default(),
            provenance: Provenance {
                device: DeviceId(device.into()),
                session,
                characteristic: 0x2AA7,
                raw: Vec::new(),
            },
        }
    }

    fn cgm(device: &str, session: i64, min: i64, v: f64) -> Reading {
        reading(device, Stream::Glucose, Some(session), min, v)
    }

    /// CGMs first, then meters: the ranking this gate is meant to run with.
    fn gate() -> LiveSource {
        let config = PrecedenceConfig {
            quantity: Quantity::Glucose,
            coincidence: Coincidence::Window {
                width: TimeDelta::minutes(5),
            },
            rules: vec![
                Rule::MostRecent,
                Rule::DeviceRank {
                    ranking: vec![DeviceClass::new("cgm"), DeviceClass::new("meter")],
                },
            ],
        };
        let p = Precedence::new(config).unwrap();
        let hold = LiveSource::default_hold(&p);
        LiveSource::new(p, hold)
    }

    fn admitted(g: &mut LiveSource, readings: &[Reading]) -> Vec<bool> {
        readings.iter().map(|r| g.admit(r).admitted()).collect()
    }

    #[test]
    fn the_default_hold_is_two_moments() {
        assert_eq!(
            LiveSource::default_hold(&gate().precedence),
            TimeDelta::minutes(10)
        );
    }

    #[test]
    fn two_fresh_cgms_of_one_rank_feed_only_the_first_one_heard() {
        let mut g = gate();
        let mut fed = Vec::new();
        for m in (0..60).step_by(5) {
            for r in [cgm("a", 1, m, 100.0), cgm("b", 1, m + 1, 120.0)] {
                if g.admit(&r).admitted() {
                    fed.push(r.provenance.device.0.clone());
                }
            }
        }
        assert!(fed.iter().all(|d| d == "a"), "{fed:?}");
        assert_eq!(fed.len(), 12);
    }

    #[test]
    fn a_silent_source_is_replaced_only_after_the_hold() {
        let mut g = gate();
        assert!(g.admit(&cgm("a", 1, 0, 100.0)).admitted());
        // b speaks 5 and 10 min after a's last reading: a is still fresh.
        assert_eq!(g.admit(&cgm("b", 1, 5, 110.0)), Admission::Standby);
        assert_eq!(g.admit(&cgm("b", 1, 10, 110.0)), Admission::Standby);
        // 15 min of silence is longer than the 10-min hold.
        let a = Source::of(&cgm("a", 1, 0, 100.0));
        assert_eq!(
            g.admit(&cgm("b", 1, 15, 110.0)),
            Admission::TakeOver { previous: Some(a) }
        );
        // a comes back: b is fresh, so a waits.
        assert_eq!(g.admit(&cgm("a", 1, 17, 100.0)), Admission::Standby);
        assert_eq!(g.admit(&cgm("b", 1, 20, 110.0)), Admission::Follow);
    }

    #[test]
    fn a_higher_ranked_source_takes_over_at_once_and_a_lower_one_waits() {
        let mut g = gate();
        let meter = |min, v| reading("m", Stream::MeterGlucose, None, min, v);
        assert!(g.admit(&meter(0, 90.0)).admitted());
        // The CGM outranks the meter: it takes over although the meter is
        // fresh.
        assert!(matches!(
            g.admit(&cgm("a", 1, 1, 100.0)),
            Admission::TakeOver { .. }
        ));
        assert_eq!(g.admit(&meter(3, 95.0)), Admission::Standby);
        // The meter waits even long after, while the CGM keeps talking.
        assert_eq!(
            admitted(&mut g, &[cgm("a", 1, 6, 100.0), meter(8, 95.0)]),
            [true, false]
        );
        // After the CGM's silence, the meter is better than nothing.
        assert!(g.admit(&meter(30, 95.0)).admitted());
    }

    #[test]
    fn a_new_sensor_session_takes_over_and_the_old_sessions_backfill_is_not_fed() {
        let mut g = gate();
        assert!(g.admit(&cgm("a", 1, 0, 100.0)).admitted());
        assert!(g.admit(&cgm("a", 1, 5, 100.0)).admitted());
        // The new session speaks: it replaces the old one at once.
        assert!(matches!(
            g.admit(&cgm("a", 2, 7, 140.0)),
            Admission::TakeOver { .. }
        ));
        // The old session's late readings: backfill before the last fed
        // reading, and live ones after it, are not fed, even after the hold.
        assert_eq!(g.admit(&cgm("a", 1, 6, 100.0)), Admission::NotAfterLast);
        assert_eq!(g.admit(&cgm("a", 1, 8, 100.0)), Admission::Standby);
        assert_eq!(g.admit(&cgm("a", 1, 40, 100.0)), Admission::Standby);
        assert_eq!(g.followed().and_then(|s| s.session), Some(2));
    }

    #[test]
    fn nothing_at_or_before_the_last_fed_reading_is_fed() {
        let mut g = gate();
        assert!(g.admit(&cgm("a", 1, 60, 100.0)).admitted());
        for m in [0, 30, 60] {
            assert_eq!(g.admit(&cgm("a", 1, m, 100.0)), Admission::NotAfterLast);
            assert_eq!(g.admit(&cgm("b", 1, m, 100.0)), Admission::NotAfterLast);
        }
    }

    #[test]
    fn unusable_values_and_other_quantities_are_never_fed() {
        let mut g = gate();
        for v in [f64::NAN, f64::INFINITY, -5.0, 0.0] {
            assert_eq!(g.admit(&cgm("a", 1, 0, v)), Admission::Unusable);
        }
        let hr = reading("h", Stream::HeartRate, None, 0, 60.0);
        assert_eq!(g.admit(&hr), Admission::OtherQuantity);
        assert_eq!(g.followed(), None);
    }

    #[test]
    fn a_declared_class_ranks_the_device() {
        let mut g = gate();
        // Declared a meter, this CGM stream ranks below the other CGM.
        g.declare(DeviceId("x".into()), DeviceClass::new("meter"));
        assert!(g.admit(&cgm("x", 1, 0, 100.0)).admitted());
        assert!(matches!(
            g.admit(&cgm("a", 1, 1, 100.0)),
            Admission::TakeOver { .. }
        ));
        assert_eq!(g.admit(&cgm("x", 1, 2, 100.0)), Admission::Standby);
    }

    #[test]
    fn decisions_are_a_function_of_the_reading_order() {
        let readings: Vec<Reading> = (0..200)
            .map(|i| {
                let dev = ["a", "b", "c"][i % 3];
                let min = i64::try_from((i * 7) % 97).unwrap();
                cgm(dev, i64::try_from(i % 2).unwrap(), min, 100.0)
            })
            .collect();
        let (mut g1, mut g2) = (gate(), gate());
        assert_eq!(admitted(&mut g1, &readings), admitted(&mut g2, &readings));
    }
}

//! Properties of source precedence over random multi-device inputs and random
//! policies: the result depends only on the set of inputs, every resolved
//! point is an input reading unchanged, every input is accounted for exactly
//! once, moments respect the coincidence setting, validity is never
//! overruled, and "most severe" never resolves above a coincident valid value.

// Helpers sit outside `#[test]` functions, where clippy's
// allow-unwrap-in-tests does not reach; a failed unwrap here is a failed test.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use vigil_model::precedence::{
    Coincidence, Contender, Decision, DeviceClass, Direction, Precedence, PrecedenceConfig,
    Quantity, Resolution, Rule, RuleName, Validity,
};
use vigil_model::reading::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-05T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn patient() -> PatientId {
    PatientId("p-1".into())
}

/// Three devices per quantity, two of one class, so that ranks tie too.
fn devices(q: Quantity) -> [(&'static str, Stream); 3] {
    match q {
        Quantity::HeartRate => [
            ("strap-1", Stream::HeartRate),
            ("strap-2", Stream::HeartRate),
            ("ox-1", Stream::PulseRate),
        ],
        _ => [
            ("cgm-1", Stream::Glucose),
            ("cgm-2", Stream::Glucose),
            ("meter-1", Stream::MeterGlucose),
        ],
    }
}

fn classes(q: Quantity) -> Vec<DeviceClass> {
    let names: &[&str] = match q {
        Quantity::HeartRate => &["heart_rate_strap", "oximeter", "watch"],
        _ => &["cgm", "meter", "watch"],
    };
    names.iter().map(|n| DeviceClass::new(*n)).collect()
}

#[derive(Debug, Clone)]
struct Spec {
    device: usize,
    ms: i64,
    value: f64,
    flagged: bool,
    /// 0: the patient's reading of the quantity; 1: another patient's;
    /// 2: a stream of another quantity.
    stray: u8,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0usize..3,
        // A coarse grid makes exact time ties common; the fine range the rest.
        prop_oneof![(0i64..60).prop_map(|k| k * 10_000), 0i64..600_000],
        prop_oneof![
            6 => (40i32..300).prop_map(f64::from),
            4 => 40.0f64..300.0,
            1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-1.0)],
        ],
        prop::bool::weighted(0.2),
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(|(device, ms, value, flagged, stray)| Spec {
            device,
            ms,
            value,
            flagged,
            stray,
        })
}

fn build(q: Quantity, specs: &[Spec]) -> Vec<Reading> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (device, stream) = devices(q)[s.device];
            Reading {
                patient: if s.stray == 1 {
                    PatientId("p-2".into())
                } else {
                    patient()
                },
                stream: if s.stray == 2 {
                    Stream::Battery
                } else {
                    stream
                },
                value: s.value,
                sensor_time: t0() + TimeDelta::milliseconds(s.ms),
                receive_time: t0() + TimeDelta::milliseconds(s.ms + 500),
                // Unique per input, so a reading's key names it alone.
                sequence: i as u64,
                quality: Quality {
                    percent: None,
                    flagged: s.flagged,
                },
                provenance: Provenance {
                    device: DeviceId(device.into()),
                    characteristic: 0x2A37,
                    raw: vec![i as u8],
                    session: None,
                },
            }
        })
        .collect()
}

fn rule(q: Quantity) -> impl Strategy<Value = Rule> {
    prop_oneof![
        (0i64..=120).prop_map(|s| Rule::Fresh {
            max_age: TimeDelta::seconds(s)
        }),
        Just(classes(q))
            .prop_shuffle()
            .prop_flat_map(|c| (1usize..=3).prop_map(move |n| c[..n].to_vec()))
            .prop_map(|ranking| Rule::DeviceRank { ranking }),
        Just(Rule::MostRecent),
        (
            prop_oneof![Just(Direction::Low), Just(Direction::High)],
            prop::option::of(40.0f64..300.0)
        )
            .prop_map(|(direction, engage_beyond)| Rule::MostSevere {
                direction,
                engage_beyond
            }),
    ]
}

fn coincidence() -> impl Strategy<Value = Coincidence> {
    (any::<bool>(), 1i64..=600).prop_map(|(slots, s)| {
        let width = TimeDelta::seconds(s);
        if slots {
            Coincidence::Slots { width }
        } else {
            Coincidence::Window { width }
        }
    })
}

fn quantity() -> impl Strategy<Value = Quantity> {
    prop_oneof![Just(Quantity::HeartRate), Just(Quantity::Glucose)]
}

/// A random policy and input for one quantity.
fn case() -> impl Strategy<Value = (PrecedenceConfig, Vec<Reading>)> {
    quantity().prop_flat_map(|q| {
        (
            coincidence(),
            prop::collection::vec(rule(q), 1..4),
            prop::collection::vec(spec(), 0..60),
        )
            .prop_map(move |(coincidence, rules, specs)| {
                (
                    PrecedenceConfig {
                        quantity: q,
                        coincidence,
                        rules,
                    },
                    build(q, &specs),
                )
            })
    })
}

fn resolve(config: &PrecedenceConfig, readings: &[Reading]) -> Resolution {
    Precedence::new(config.clone())
        .unwrap()
        .resolve(&patient(), readings)
        .unwrap()
}

fn key(c: &Contender) -> (String, Stream, Option<i64>, u64) {
    (c.device.0.clone(), c.stream, c.session, c.sequence)
}

fn reading_key(r: &Reading) -> (String, Stream, Option<i64>, u64) {
    (
        r.provenance.device.0.clone(),
        r.stream,
        r.provenance.session,
        r.sequence,
    )
}

fn contenders(d: &Decision) -> impl Iterator<Item = &Contender> {
    d.winner.iter().chain(d.losers.iter().map(|l| &l.reading))
}

fn width(c: Coincidence) -> TimeDelta {
    match c {
        Coincidence::Slots { width } | Coincidence::Window { width } => width,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn same_inputs_in_any_order_resolve_identically(
        (config, readings) in case(),
        seed in any::<u64>(),
    ) {
        let mut shuffled = readings.clone();
        shuffled.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        // Debug text, because NaN inputs make `==` false even for identical
        // results.
        prop_assert_eq!(
            format!("{:?}", resolve(&config, &readings)),
            format!("{:?}", resolve(&config, &shuffled))
        );
    }

    #[test]
    fn every_resolved_point_is_an_input_reading_unchanged((config, readings) in case()) {
        let res = resolve(&config, &readings);
        let with_winner: Vec<_> = res.decisions.iter().filter(|d| d.winner.is_some()).collect();
        prop_assert_eq!(res.series.len(), with_winner.len());
        for (point, decision) in res.series.iter().zip(with_winner) {
            prop_assert!(readings.contains(&point.reading), "not an input: {:?}", point.reading);
            prop_assert_eq!(point.time, decision.time);
            prop_assert_eq!(reading_key(&point.reading), key(decision.winner.as_ref().unwrap()));
        }
    }

    #[test]
    fn every_input_is_a_winner_a_loser_or_unmatched_exactly_once(
        (config, readings) in case(),
    ) {
        let res = resolve(&config, &readings);
        let mut seen: Vec<_> = res.decisions.iter().flat_map(contenders).map(key).collect();
        seen.extend(res.unmatched.iter().map(|u| reading_key(&u.reading)));
        seen.sort();
        let mut expected: Vec<_> = readings.iter().map(reading_key).collect();
        expected.sort();
        prop_assert_eq!(seen, expected);
        for u in &res.unmatched {
            prop_assert!(
                u.reading.patient != patient()
                    || Quantity::of(u.reading.stream) != Some(config.quantity)
            );
        }
    }

    #[test]
    fn moments_respect_the_coincidence_setting((config, readings) in case()) {
        let res = resolve(&config, &readings);
        let w = width(config.coincidence);
        for pair in res.decisions.windows(2) {
            prop_assert!(pair[0].time < pair[1].time);
        }
        for d in &res.decisions {
            let times: Vec<_> = contenders(d).map(|c| c.sensor_time).collect();
            for t in &times {
                prop_assert!(*t >= d.time && *t - d.time < w);
            }
            match config.coincidence {
                Coincidence::Slots { .. } => {
                    let us = w.num_microseconds().unwrap();
                    prop_assert_eq!(d.time.timestamp_micros().rem_euclid(us), 0);
                }
                Coincidence::Window { .. } => {
                    prop_assert_eq!(Some(d.time), times.iter().min().copied());
                    // One source brings one instant to a moment.
                    let all: Vec<_> = contenders(d).collect();
                    for a in &all {
                        for b in &all {
                            let same_source = a.device == b.device
                                && a.stream == b.stream
                                && a.session == b.session;
                            prop_assert!(!same_source || a.sensor_time == b.sensor_time);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn validity_is_never_overruled((config, readings) in case()) {
        let res = resolve(&config, &readings);
        for p in &res.series {
            prop_assert_ne!(Validity::of(&p.reading), Validity::Invalid);
        }
        for d in &res.decisions {
            let best = contenders(d).map(|c| c.validity).min().unwrap();
            match &d.winner {
                Some(w) => prop_assert_eq!(w.validity, best),
                None => prop_assert_eq!(best, Validity::Invalid),
            }
            for l in &d.losers {
                if l.reading.validity == Validity::Invalid {
                    prop_assert_eq!(l.rule, RuleName::Validity);
                }
            }
        }
    }

    #[test]
    fn most_severe_never_resolves_above_a_coincident_valid_value(
        (mut config, readings) in case(),
        direction in prop_oneof![Just(Direction::Low), Just(Direction::High)],
        engage_beyond in prop::option::of(40.0f64..300.0),
    ) {
        config.rules.insert(0, Rule::MostSevere { direction, engage_beyond });
        let res = resolve(&config, &readings);
        let worse = |a: f64, b: f64| match direction {
            Direction::Low => a < b,
            Direction::High => a > b,
        };
        for d in &res.decisions {
            let Some(w) = &d.winner else { continue };
            if w.validity != Validity::Valid {
                continue;
            }
            let valid: Vec<f64> = contenders(d)
                .filter(|c| c.validity == Validity::Valid)
                .filter_map(|c| c.value)
                .collect();
            let engaged = engage_beyond.is_none_or(|t| valid.iter().any(|v| worse(*v, t)));
            if engaged {
                let won = w.value.unwrap();
                for v in valid {
                    prop_assert!(!worse(v, won), "{v} is more severe than the resolved {won}");
                }
            }
        }
    }
}

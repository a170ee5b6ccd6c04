//! Properties of the alert engine over random glucose traces: episodes are
//! well formed, nothing is raised without its rule being met, urgent low
//! silences low, and the events never depend on how often the clock ticks
//! or where a restart replays from.

// Test helpers sit outside `#[test]` functions, where clippy's
// allow-unwrap-in-tests does not reach; a failed unwrap here is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use vigil_core::alerts::{AlertConfig, AlertEngine, AlertEvent, AlertKind, Phase};
use vigil_core::model::Sample;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A random trace: mostly 5-minute steps with occasional gaps up to 70 min,
/// glucose wandering 39..=401 mg/dL with steps that sometimes exceed the
/// fast-rate threshold.
fn traces() -> impl Strategy<Value = Vec<Sample>> {
    let step = (
        prop_oneof![8 => Just(5i64), 2 => 1i64..=30, 1 => 19i64..=70],
        -25.0f64..=25.0,
    );
    (40.0f64..=400.0, prop::collection::vec(step, 1..300)).prop_map(|(start, steps)| {
        let mut time = t0();
        let mut value = start;
        let mut out = vec![Sample { time, value }];
        for (dt, dv) in steps {
            time += TimeDelta::minutes(dt);
            value = (value + dv).clamp(39.0, 401.0);
            out.push(Sample { time, value });
        }
        out
    })
}

fn run(trace: &[Sample]) -> Vec<AlertEvent> {
    let mut e = AlertEngine::new(AlertConfig::default(), "prop").unwrap();
    trace
        .iter()
        .flat_map(|s| e.on_glucose(*s).unwrap())
        .collect()
}

/// The test's own least-squares slope of the readings in [t - 15 min, t].
fn slope_at(trace: &[Sample], time: DateTime<Utc>) -> Option<f64> {
    let w: Vec<_> = trace
        .iter()
        .filter(|s| s.time <= time && s.time >= time - TimeDelta::minutes(15))
        .collect();
    if w.len() < 3 {
        return None;
    }
    let x: Vec<f64> = w
        .iter()
        .map(|s| (s.time - t0()).num_seconds() as f64 / 60.0)
        .collect();
    let n = w.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = w.iter().map(|s| s.value).sum::<f64>() / n;
    let sxy: f64 = x
        .iter()
        .zip(&w)
        .map(|(x, s)| (x - mx) * (s.value - my))
        .sum();
    let sxx: f64 = x.iter().map(|x| (x - mx).powi(2)).sum();
    Some(sxy / sxx)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn episodes_start_once_end_at_most_once_and_never_go_back_in_time(trace in traces()) {
        let events = run(&trace);
        let mut by_id: HashMap<&str, Vec<&AlertEvent>> = HashMap::new();
        for e in &events {
            by_id.entry(e.id.as_str()).or_default().push(e);
        }
        for (id, evs) in by_id {
            prop_assert_eq!(evs[0].phase, Phase::Start, "{} does not begin with a start", id);
            prop_assert!(evs.iter().all(|e| e.kind == evs[0].kind));
            prop_assert!(evs.windows(2).all(|w| w[0].time <= w[1].time));
            let starts = evs.iter().filter(|e| e.phase == Phase::Start).count();
            let ends = evs.iter().filter(|e| e.phase == Phase::End).count();
            prop_assert_eq!(starts, 1);
            prop_assert!(ends <= 1);
            if ends == 1 {
                prop_assert_eq!(evs.last().unwrap().phase, Phase::End);
            }
        }
        // Events come out in time order.
        prop_assert!(events.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[test]
    fn no_event_without_its_rule_met(trace in traces()) {
        let cfg = AlertConfig::default();
        let reading_at: HashMap<DateTime<Utc>, f64> =
            trace.iter().map(|s| (s.time, s.value)).collect();
        for e in run(&trace) {
            let raised = e.phase != Phase::End;
            match e.kind {
                AlertKind::UrgentLow | AlertKind::Low | AlertKind::High => {
                    let g = e.glucose_mg_dl.unwrap();
                    prop_assert_eq!(reading_at.get(&e.time), Some(&g));
                    let (met, cleared) = match e.kind {
                        AlertKind::UrgentLow => (g < 54.0, g >= 59.0),
                        AlertKind::Low => (g < 70.0, g >= 75.0),
                        _ => (g > 250.0, g <= 245.0),
                    };
                    prop_assert!(if raised { met } else { cleared }, "{:?}", e);
                }
                AlertKind::FastFall | AlertKind::FastRise | AlertKind::PredictedUrgentLow => {
                    let rate = slope_at(&trace, e.time).unwrap();
                    prop_assert!((rate - e.rate_mg_dl_per_min.unwrap()).abs() < 1e-6);
                    let g = e.glucose_mg_dl.unwrap();
                    let projected = g + rate * cfg.prediction_horizon.time_delta().num_minutes() as f64;
                    let (met, cleared) = match e.kind {
                        AlertKind::FastFall => (rate < -2.0, rate >= -1.5),
                        AlertKind::FastRise => (rate > 2.0, rate <= 1.5),
                        _ => (projected < 54.0, projected >= 59.0),
                    };
                    prop_assert!(if raised { met } else { cleared }, "{:?} rate {}", e, rate);
                }
                AlertKind::SignalLoss => {
                    // Some gap of more than 20 minutes covers the event: it
                    // starts exactly 20 min after the reading before the gap,
                    // re-alerts inside the gap, ends at the reading after it.
                    let gap = trace.windows(2).find(|w| {
                        w[1].time - w[0].time > TimeDelta::minutes(20)
                            && e.time > w[0].time
                            && e.time <= w[1].time
                    });
                    prop_assert!(gap.is_some(), "{:?}", e);
                    let w = gap.unwrap();
                    match e.phase {
                        Phase::Start => prop_assert_eq!(e.time, w[0].time + TimeDelta::minutes(20)),
                        Phase::Realert => prop_assert!(e.time < w[1].time),
                        Phase::End => prop_assert_eq!(e.time, w[1].time),
                    }
                }
                AlertKind::SensorSessionEnding | AlertKind::BatteryLow => {
                    prop_assert!(false, "no device events were fed: {:?}", e);
                }
            }
        }
    }

    #[test]
    fn raises_of_one_episode_are_a_realert_interval_apart(trace in traces()) {
        let mut last: HashMap<String, DateTime<Utc>> = HashMap::new();
        for e in run(&trace) {
            if e.phase == Phase::End {
                continue;
            }
            let every = match e.kind {
                AlertKind::High | AlertKind::FastRise => TimeDelta::minutes(120),
                _ => TimeDelta::minutes(30),
            };
            if let Some(prev) = last.insert(e.id.clone(), e.time) {
                prop_assert!(e.phase == Phase::Realert && e.time - prev >= every, "{:?}", e);
            }
        }
    }

    #[test]
    fn low_is_never_raised_while_urgent_low_lasts(trace in traces()) {
        let mut urgent_open = false;
        for e in run(&trace) {
            match (e.kind, e.phase) {
                (AlertKind::UrgentLow, Phase::Start) => urgent_open = true,
                (AlertKind::UrgentLow, Phase::End) => urgent_open = false,
                (AlertKind::Low | AlertKind::PredictedUrgentLow, Phase::Start | Phase::Realert) => {
                    prop_assert!(!urgent_open, "{:?} during urgent low", e);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn events_do_not_depend_on_clock_ticks_or_batch_boundaries(
        trace in traces(),
        ticks in prop::collection::vec((0usize..300, 0i64..=3600), 0..40),
    ) {
        let plain = run(&trace);
        // Ticks at arbitrary seconds between readings (a host timer, the ends
        // of arbitrary batches) add no event and move none.
        let mut at: Vec<(usize, i64)> = ticks
            .into_iter()
            .filter(|(i, _)| *i + 1 < trace.len())
            .collect();
        at.sort();
        let mut e = AlertEngine::new(AlertConfig::default(), "prop").unwrap();
        let mut ticked = Vec::new();
        let mut k = 0;
        for (i, s) in trace.iter().enumerate() {
            ticked.extend(e.on_glucose(*s).unwrap());
            while k < at.len() && at[k].0 == i {
                let span = (trace[i + 1].time - s.time).num_seconds();
                let now = s.time + TimeDelta::seconds(at[k].1 % span.max(1));
                ticked.extend(e.on_tick(now));
                k += 1;
            }
        }
        prop_assert_eq!(plain, ticked);
    }
}

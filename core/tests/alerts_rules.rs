//! Each alert rule on a small hand-built trace, with the expected events
//! derived by hand in the test (times, values, phases).

// Test helpers sit outside `#[test]` functions, where clippy's
// allow-unwrap-in-tests does not reach; a failed unwrap here is a failed test.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, Utc};
use vigil_core::Error;
use vigil_core::alerts::{AlertConfig, AlertEngine, AlertEvent, AlertKind, Phase, alert_id};
use vigil_core::model::Sample;

fn t(min: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + TimeDelta::minutes(min)
}

fn s(min: i64, value: f64) -> Sample {
    Sample {
        time: t(min),
        value,
    }
}

fn engine() -> AlertEngine {
    AlertEngine::new(AlertConfig::default(), "patient-7").unwrap()
}

fn feed(e: &mut AlertEngine, trace: &[(i64, f64)]) -> Vec<AlertEvent> {
    trace
        .iter()
        .flat_map(|&(m, v)| e.on_glucose(s(m, v)).unwrap())
        .collect()
}

fn run(trace: &[(i64, f64)]) -> Vec<AlertEvent> {
    feed(&mut engine(), trace)
}

/// (kind, phase, minute, glucose) of the events of the given kinds.
fn summary(
    events: &[AlertEvent],
    kinds: &[AlertKind],
) -> Vec<(AlertKind, Phase, i64, Option<f64>)> {
    events
        .iter()
        .filter(|e| kinds.contains(&e.kind))
        .map(|e| {
            (
                e.kind,
                e.phase,
                (e.time - t(0)).num_minutes(),
                e.glucose_mg_dl,
            )
        })
        .collect()
}

use AlertKind::*;
use Phase::*;

#[test]
fn urgent_low_starts_below_54_and_ends_only_at_59() {
    let ev = run(&[
        (0, 80.0),
        (5, 75.0),
        (10, 70.0),
        (15, 60.0),
        (20, 54.0), // not below 54: no alert yet
        (25, 53.0), // first reading below 54
        (30, 50.0),
        (35, 56.0),
        (40, 58.9), // inside the 5 mg/dL margin: still on
        (45, 59.0), // 54 + 5: ends
    ]);
    assert_eq!(
        summary(&ev, &[UrgentLow]),
        vec![
            (UrgentLow, Start, 25, Some(53.0)),
            (UrgentLow, End, 45, Some(59.0)),
        ]
    );
    let ids: Vec<_> = ev
        .iter()
        .filter(|e| e.kind == UrgentLow)
        .map(|e| &e.id)
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(*ids[0], alert_id("patient-7", UrgentLow, t(25)));
}

#[test]
fn low_realerts_every_30_minutes_while_it_lasts_then_ends_at_75() {
    let mut trace = vec![(0, 100.0), (5, 69.0)];
    trace.extend((10..=65).step_by(5).map(|m| (m, 65.0)));
    trace.extend([(70, 74.0), (75, 75.0), (80, 69.0)]);
    let ev = run(&trace);
    // Start at 5; 30 min after the last raise: 35, then 65; 74 is inside the
    // margin; 75 ends; 69 at 80 is a new episode with a new id.
    assert_eq!(
        summary(&ev, &[Low]),
        vec![
            (Low, Start, 5, Some(69.0)),
            (Low, Realert, 35, Some(65.0)),
            (Low, Realert, 65, Some(65.0)),
            (Low, End, 75, Some(75.0)),
            (Low, Start, 80, Some(69.0)),
        ]
    );
    let lows: Vec<_> = ev.iter().filter(|e| e.kind == Low).collect();
    assert!(lows[..4].iter().all(|e| e.id == lows[0].id));
    assert_ne!(lows[4].id, lows[0].id);
}

#[test]
fn high_realerts_every_120_minutes_and_ends_at_245() {
    let mut trace = vec![(0, 240.0), (5, 251.0)];
    trace.extend((10..=125).step_by(5).map(|m| (m, 260.0)));
    trace.extend([(130, 245.1), (135, 245.0)]);
    let ev = run(&trace);
    assert_eq!(
        summary(&ev, &[High]),
        vec![
            (High, Start, 5, Some(251.0)),
            (High, Realert, 125, Some(260.0)),
            (High, End, 135, Some(245.0)),
        ]
    );
}

#[test]
fn fast_fall_uses_the_least_squares_rate_of_the_last_15_minutes() {
    let ev = run(&[
        (0, 150.0),
        (5, 140.0),
        (10, 128.0), // slope of 150,140,128 = -110/50 = -2.2: starts
        (15, 118.0), // 150..118: -270/125 = -2.16
        (20, 112.0), // 140..112: -235/125 = -1.88: inside the 0.5 margin
        (25, 110.0), // 128..110: -150/125 = -1.2 >= -1.5: ends
    ]);
    let falls: Vec<_> = ev.iter().filter(|e| e.kind == FastFall).collect();
    assert_eq!(
        summary(&ev, &[FastFall]),
        vec![
            (FastFall, Start, 10, Some(128.0)),
            (FastFall, End, 25, Some(110.0)),
        ]
    );
    assert!((falls[0].rate_mg_dl_per_min.unwrap() + 2.2).abs() < 1e-9);
    assert!((falls[1].rate_mg_dl_per_min.unwrap() + 1.2).abs() < 1e-9);
}

#[test]
fn a_rate_of_exactly_2_is_not_beyond_2() {
    // 150, 140, 130: slope exactly -2.0; 100, 110, 120: exactly +2.0.
    let ev = run(&[(0, 150.0), (5, 140.0), (10, 130.0)]);
    assert!(summary(&ev, &[FastFall]).is_empty());
    let ev = run(&[(0, 100.0), (5, 110.0), (10, 120.0)]);
    assert!(summary(&ev, &[FastRise]).is_empty());
}

#[test]
fn fast_rise_mirrors_fast_fall() {
    let ev = run(&[
        (0, 100.0),
        (5, 110.0),
        (10, 122.0), // +110/50 = +2.2
        (15, 130.0), // see below
    ]);
    // Window at 15: y = 100,110,122,130, mean 115.5; Σdx·dy =
    // (-7.5)(-15.5) + (-2.5)(-5.5) + (2.5)(6.5) + (7.5)(14.5) = 255; /125 = 2.04:
    // still rising fast, but the 120-minute re-alert is not due: no new event.
    assert_eq!(
        summary(&ev, &[FastRise]),
        vec![(FastRise, Start, 10, Some(122.0))]
    );
}

#[test]
fn predicted_urgent_low_projects_20_minutes_ahead() {
    let ev = run(&[
        (0, 100.0),
        (5, 95.0),
        (10, 90.0), // -1 mg/dL/min: 90 - 20 = 70
        (15, 85.0), // 65
        (20, 80.0), // 60
        (25, 75.0), // 55: not below 54
        (30, 70.0), // 50: starts
        (35, 70.0), // 80,75,70,70: -87.5/125 = -0.7 → 56: inside the margin
        (40, 72.0), // 75,70,70,72: -22.5/125 = -0.18 → 68.4 >= 59: ends
    ]);
    assert_eq!(
        summary(&ev, &[PredictedUrgentLow]),
        vec![
            (PredictedUrgentLow, Start, 30, Some(70.0)),
            (PredictedUrgentLow, End, 40, Some(72.0)),
        ]
    );
    // Nothing else fired on this gentle fall.
    assert_eq!(ev.len(), 2);
}

#[test]
fn urgent_low_silences_a_low_that_had_not_started() {
    let mut trace = vec![(0, 80.0), (5, 50.0)];
    trace.extend((10..=45).step_by(5).map(|m| (m, 50.0)));
    trace.extend([(50, 60.0), (55, 76.0)]);
    let ev = run(&trace);
    // 50 is below 70 too, but only urgent low sounds (and re-alerts at 35);
    // once urgent low ends (60 >= 59) the still-low glucose raises low at
    // that reading.
    assert_eq!(
        summary(&ev, &[UrgentLow, Low]),
        vec![
            (UrgentLow, Start, 5, Some(50.0)),
            (UrgentLow, Realert, 35, Some(50.0)),
            (UrgentLow, End, 50, Some(60.0)),
            (Low, Start, 50, Some(60.0)),
            (Low, End, 55, Some(76.0)),
        ]
    );
}

#[test]
fn urgent_low_holds_back_low_realerts_while_it_lasts() {
    let mut trace = vec![(0, 80.0), (5, 65.0), (10, 50.0)];
    trace.extend((15..=60).step_by(5).map(|m| (m, 50.0)));
    trace.push((65, 62.0));
    let ev = run(&trace);
    // Low would re-alert at 35; urgent low lasts 10..65, so the re-alert
    // waits for the first reading after urgent low ends.
    assert_eq!(
        summary(&ev, &[UrgentLow, Low]),
        vec![
            (Low, Start, 5, Some(65.0)),
            (UrgentLow, Start, 10, Some(50.0)),
            (UrgentLow, Realert, 40, Some(50.0)),
            (UrgentLow, End, 65, Some(62.0)),
            (Low, Realert, 65, Some(62.0)),
        ]
    );
}

#[test]
fn snooze_silences_one_kind_for_a_set_time_but_not_its_end() {
    let mut e = engine();
    let mut ev = feed(&mut e, &[(0, 100.0), (5, 65.0)]);
    e.snooze(Low, t(50));
    let mut trace: Vec<_> = (10..=55).step_by(5).map(|m| (m, 65.0)).collect();
    trace.push((60, 80.0));
    ev.extend(feed(&mut e, &trace));
    // The 35-minute re-alert is snoozed; at 50 the snooze is over and 45 min
    // have passed since the start: re-alert. 80 ends it.
    assert_eq!(
        summary(&ev, &[Low]),
        vec![
            (Low, Start, 5, Some(65.0)),
            (Low, Realert, 50, Some(65.0)),
            (Low, End, 60, Some(80.0)),
        ]
    );

    let mut e = engine();
    e.snooze(Low, t(1000));
    let ev = feed(&mut e, &[(0, 100.0), (5, 65.0), (10, 80.0)]);
    // Snoozed from the start: the whole episode is silent, so no end either.
    assert!(summary(&ev, &[Low]).is_empty());

    let mut e = engine();
    let mut ev = feed(&mut e, &[(0, 100.0), (5, 65.0)]);
    e.snooze(Low, t(1000));
    ev.extend(feed(&mut e, &[(10, 65.0), (15, 80.0)]));
    // Announced before the snooze: its end still comes.
    assert_eq!(
        summary(&ev, &[Low]),
        vec![(Low, Start, 5, Some(65.0)), (Low, End, 15, Some(80.0))]
    );
}

#[test]
fn snooze_of_one_kind_leaves_the_others_alone() {
    let mut e = engine();
    e.snooze(Low, t(1000));
    let ev = feed(&mut e, &[(0, 80.0), (5, 50.0)]);
    assert_eq!(
        summary(&ev, &[UrgentLow, Low]),
        vec![(UrgentLow, Start, 5, Some(50.0))]
    );
}

#[test]
fn snooze_that_ran_out_before_the_start_changes_nothing() {
    let mut e = engine();
    e.snooze(Low, t(5));
    let ev = feed(&mut e, &[(0, 100.0), (5, 65.0)]);
    assert_eq!(summary(&ev, &[Low]), vec![(Low, Start, 5, Some(65.0))]);
}

#[test]
fn signal_loss_starts_when_20_minutes_ran_out_and_ends_at_the_next_reading() {
    let ev = run(&[(0, 100.0), (5, 100.0), (30, 100.0)]);
    assert_eq!(
        summary(&ev, &[SignalLoss]),
        vec![
            (SignalLoss, Start, 25, None),
            (SignalLoss, End, 30, Some(100.0))
        ]
    );
    // A gap of exactly 20 minutes is not more than 20.
    assert!(run(&[(0, 100.0), (20, 100.0)]).is_empty());
    // A long gap re-alerts every 30 minutes.
    let ev = run(&[(0, 100.0), (70, 100.0)]);
    assert_eq!(
        summary(&ev, &[SignalLoss]),
        vec![
            (SignalLoss, Start, 20, None),
            (SignalLoss, Realert, 50, None),
            (SignalLoss, End, 70, Some(100.0)),
        ]
    );
}

#[test]
fn signal_loss_fires_on_a_clock_tick_without_any_reading() {
    let mut e = engine();
    e.on_glucose(s(0, 100.0)).unwrap();
    assert!(e.on_tick(t(20)).is_empty());
    let ev = e.on_tick(t(21));
    assert_eq!(
        summary(&ev, &[SignalLoss]),
        vec![(SignalLoss, Start, 20, None)]
    );
    // Ticking again does not repeat it.
    assert!(e.on_tick(t(22)).is_empty());
    let ev = e.on_glucose(s(23, 100.0)).unwrap();
    assert_eq!(
        summary(&ev, &[SignalLoss]),
        vec![(SignalLoss, End, 23, Some(100.0))]
    );
}

#[test]
fn sensor_session_ending_warns_24_hours_before_expiry() {
    let mut e = engine();
    assert!(e.on_sensor_session(t(0), t(25 * 60)).is_empty());
    assert!(e.on_tick(t(60)).is_empty());
    let ev = e.on_tick(t(61));
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].kind, ev[0].phase, ev[0].time),
        (SensorSessionEnding, Start, t(60))
    );
    assert_eq!(ev[0].session_expires_at, Some(t(25 * 60)));
    // A new 10-day session ends the warning.
    let ev = e.on_sensor_session(t(120), t(120 + 10 * 24 * 60));
    assert_eq!(
        (ev[0].kind, ev[0].phase, ev[0].time),
        (SensorSessionEnding, End, t(120))
    );

    // Learned when already inside the warning: raised at once.
    let mut e = engine();
    let ev = e.on_sensor_session(t(0), t(120));
    assert_eq!(
        (ev[0].kind, ev[0].phase, ev[0].time),
        (SensorSessionEnding, Start, t(0))
    );
}

#[test]
fn battery_low_starts_below_20_and_ends_at_25() {
    let mut e = engine();
    let mut ev = Vec::new();
    for (m, pct) in [
        (0, 30.0),
        (1, 20.0),
        (2, 19.0),
        (3, 15.0),
        (4, 24.9),
        (5, 25.0),
    ] {
        ev.extend(e.on_battery(t(m), pct).unwrap());
    }
    let got: Vec<_> = ev
        .iter()
        .map(|e| (e.kind, e.phase, e.time, e.battery_pct))
        .collect();
    assert_eq!(
        got,
        vec![
            (BatteryLow, Start, t(2), Some(19.0)),
            (BatteryLow, End, t(5), Some(25.0)),
        ]
    );
    assert!(matches!(
        e.on_battery(t(6), 101.0),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn replaying_the_same_readings_after_a_restart_gives_the_same_ids() {
    let trace = [(0, 100.0), (5, 65.0), (10, 50.0), (40, 50.0), (45, 90.0)];
    let first = run(&trace);
    let replay = run(&trace);
    assert!(!first.is_empty());
    assert_eq!(first, replay);
    let other = feed(
        &mut AlertEngine::new(AlertConfig::default(), "patient-8").unwrap(),
        &trace,
    );
    assert_eq!(first.len(), other.len());
    assert!(first.iter().zip(&other).all(|(a, b)| a.id != b.id));
}

#[test]
fn bad_readings_are_refused_and_change_nothing() {
    let mut e = engine();
    e.on_glucose(s(0, 100.0)).unwrap();
    for bad in [f64::NAN, f64::INFINITY, 0.0, -3.0] {
        assert!(matches!(
            e.on_glucose(s(5, bad)),
            Err(Error::InvalidInput(_))
        ));
    }
    // Same time and earlier times are not "after the previous reading".
    assert!(matches!(
        e.on_glucose(s(0, 60.0)),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        e.on_glucose(s(-5, 60.0)),
        Err(Error::InvalidInput(_))
    ));
    // The refused readings left no trace: 65 at 5 starts low as usual.
    let ev = e.on_glucose(s(5, 65.0)).unwrap();
    assert_eq!(summary(&ev, &[Low]), vec![(Low, Start, 5, Some(65.0))]);
}

#[test]
fn an_invalid_configuration_never_makes_an_engine() {
    let cfg = AlertConfig {
        low_mg_dl: 260.0,
        ..AlertConfig::default()
    };
    assert!(matches!(
        AlertEngine::new(cfg, "p"),
        Err(Error::InvalidSetting {
            setting: "low_mg_dl",
            ..
        })
    ));
}

#[test]
fn every_number_is_configurable() {
    let cfg = AlertConfig {
        low_mg_dl: 80.0,
        hysteresis_mg_dl: 10.0,
        realert_low: vigil_core::clock::Seconds::minutes(10),
        ..AlertConfig::default()
    };
    let mut e = AlertEngine::new(cfg, "p").unwrap();
    let ev = feed(
        &mut e,
        &[
            (0, 100.0),
            (5, 79.0),
            (10, 79.0),
            (15, 79.0),
            (20, 89.0),
            (25, 90.0),
        ],
    );
    assert_eq!(
        summary(&ev, &[Low]),
        vec![
            (Low, Start, 5, Some(79.0)),
            (Low, Realert, 15, Some(79.0)),
            (Low, End, 25, Some(90.0)),
        ]
    );
}

#[test]
fn a_rate_alert_waits_for_a_new_rate_after_a_gap_before_it_ends() {
    let ev = run(&[
        (0, 150.0),
        (5, 140.0),
        (10, 128.0), // -2.2: fast fall starts
        (40, 128.0), // after a 30-minute gap: one reading in the window
        (45, 128.0), // two: still no rate
        (50, 128.0), // three flat readings: rate 0, ends
    ]);
    assert_eq!(
        summary(&ev, &[FastFall, SignalLoss]),
        vec![
            (FastFall, Start, 10, Some(128.0)),
            (SignalLoss, Start, 30, None),
            (SignalLoss, End, 40, Some(128.0)),
            (FastFall, End, 50, Some(128.0)),
        ]
    );
}

#[test]
fn a_snoozed_signal_loss_starts_when_the_snooze_runs_out() {
    let mut e = engine();
    e.on_glucose(s(0, 100.0)).unwrap();
    e.snooze(SignalLoss, t(30));
    assert!(e.on_tick(t(29)).is_empty());
    let ev = e.on_glucose(s(40, 100.0)).unwrap();
    assert_eq!(
        summary(&ev, &[SignalLoss]),
        vec![
            (SignalLoss, Start, 30, None),
            (SignalLoss, End, 40, Some(100.0))
        ]
    );
    assert_eq!(ev[0].id, alert_id("patient-7", SignalLoss, t(30)));
}

/// Drives `e` through `trace` (glucose at minutes) and the clock to
/// `until`, ticking either every minute or only just after each
/// `next_deadline`; returns the events.
fn drive(
    mut e: AlertEngine,
    trace: &[(i64, f64)],
    until: i64,
    at_deadlines: bool,
) -> Vec<AlertEvent> {
    let mut out = Vec::new();
    let mut wakes = 0;
    let mut now = t(0);
    let mut readings = trace.iter().peekable();
    while now < t(until) {
        let next_reading = readings.peek().map(|&&(m, _)| t(m));
        let next_tick = if at_deadlines {
            e.next_deadline().map(|d| d + TimeDelta::milliseconds(1))
        } else {
            Some(now + TimeDelta::minutes(1))
        };
        match (next_reading, next_tick) {
            (Some(r), tick) if tick.is_none_or(|k| r <= k) => {
                let &(m, v) = readings.next().unwrap();
                now = r;
                out.extend(e.on_glucose(s(m, v)).unwrap());
            }
            (_, Some(k)) if k < t(until) => {
                now = k;
                wakes += 1;
                out.extend(e.on_tick(now));
            }
            _ => break,
        }
    }
    // A last tick at the end raises whatever is due before it.
    out.extend(e.on_tick(t(until)));
    if at_deadlines {
        // Only the raises themselves (and a deadline a reading overtook)
        // cost a wake-up: far fewer than a minute ticker's.
        assert!(wakes < 20, "{wakes} deadline wake-ups");
    }
    out
}

#[test]
fn a_timer_armed_for_the_next_deadline_raises_what_a_minute_ticker_raises() {
    // Readings every 5 minutes for an hour, a 3-hour silence (signal loss
    // and its re-alerts), the signal back, then silence again to the end.
    let mut trace: Vec<(i64, f64)> = (0..12).map(|i| (i * 5, 120.0)).collect();
    trace.extend((0..6).map(|i| (240 + i * 5, 110.0)));
    let mut snoozed = engine();
    snoozed.snooze(AlertKind::SignalLoss, t(100));
    for e in [engine(), snoozed] {
        let ticked = drive(e.clone(), &trace, 400, false);
        let armed = drive(e, &trace, 400, true);
        assert!(
            ticked.iter().any(|a| a.kind == AlertKind::SignalLoss),
            "the trace loses the signal"
        );
        assert_eq!(armed, ticked);
    }
    // Nothing to lose before the first reading: no deadline at all.
    assert_eq!(engine().next_deadline(), None);
}

#[test]
fn a_source_change_draws_no_slope_across_two_sensors() {
    use AlertKind::{FastFall, FastRise};
    // Sensor A reads a steady 120; sensor B, reading 40 mg/dL higher, takes
    // over at 20 min. Across the handover the two look like a fast rise.
    let a = [(0, 120.0), (5, 120.0), (10, 120.0), (15, 120.0)];
    let b = [(20, 160.0), (25, 160.0), (30, 160.0)];
    let mut mixed = engine();
    feed(&mut mixed, &a);
    let across = feed(&mut mixed, &b);
    assert_eq!(summary(&across, &[FastRise])[0].0, FastRise);
    // Told of the change, the engine waits for B's own readings: steady.
    let mut told = engine();
    feed(&mut told, &a);
    told.on_source_change();
    let after = feed(&mut told, &b);
    assert!(
        summary(&after, &[FastRise, FastFall]).is_empty(),
        "{after:?}"
    );
}

//! Hand-built precedence cases: for each rule, a moment whose winner is
//! worked out by hand in the comment above it, then checked against the
//! resolved series and the audit decision.

// Helpers sit outside `#[test]` functions, where clippy's
// allow-unwrap-in-tests does not reach; a failed unwrap or panic here is a
// failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use chrono::{DateTime, TimeDelta, Utc};
use vigil_core::alerts::AlertConfig;
use vigil_core::model::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};
use vigil_core::precedence::{
    Coincidence, DeviceClass, Direction, Precedence, PrecedenceConfig, Quantity, Resolution, Rule,
    RuleName, UnmatchedReason, Validity,
};
use vigil_model::Error;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-05T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(ms: i64) -> DateTime<Utc> {
    t0() + TimeDelta::milliseconds(ms)
}

const MIN: i64 = 60_000;

fn patient() -> PatientId {
    PatientId("p-1".into())
}

fn reading(device: &str, stream: Stream, ms: i64, value: f64, seq: u64) -> Reading {
    Reading {
        patient: patient(),
        stream,
        value,
        sensor_time: at(ms),
        receive_time: at(ms + 300),
        sequence: seq,
        quality: Quality::default(),
        provenance: Provenance {
            device: DeviceId(device.into()),
            characteristic: match stream {
                Stream::HeartRate => 0x2A37,
                Stream::PulseRate | Stream::Spo2 => 0x2A5F,
                Stream::Glucose => 0x2AA7,
                _ => 0x2A18,
            },
            raw: vec![seq as u8, 0x42],
            session: None,
        },
    }
}

fn flagged(mut r: Reading) -> Reading {
    r.quality.flagged = true;
    r
}

fn resolve(config: PrecedenceConfig, readings: &[Reading]) -> Resolution {
    Precedence::new(config)
        .unwrap()
        .resolve(&patient(), readings)
        .unwrap()
}

fn values(res: &Resolution) -> Vec<f64> {
    res.series.iter().map(|p| p.reading.value).collect()
}

// Strap 72 bpm at 0 s and oximeter 80 bpm at 0.5 s fall in one 1-s moment;
// the default heart-rate ranking puts the strap (ECG) first: 72 wins.
#[test]
fn chest_strap_outranks_oximeter_for_heart_rate() {
    let strap = reading("strap", Stream::HeartRate, 0, 72.0, 1);
    let ox = reading("ox", Stream::PulseRate, 500, 80.0, 1);
    let res = resolve(
        PrecedenceConfig::default_for(Quantity::HeartRate),
        &[ox.clone(), strap.clone()],
    );
    assert_eq!(res.series.len(), 1);
    assert_eq!(res.series[0].reading, strap);
    assert_eq!(res.series[0].time, at(0));
    let d = &res.decisions[0];
    assert_eq!(d.decided_by, RuleName::DeviceRank);
    assert_eq!(d.winner.as_ref().unwrap().device, DeviceId("strap".into()));
    assert_eq!(d.losers.len(), 1);
    assert_eq!(d.losers[0].rule, RuleName::DeviceRank);
    assert_eq!(d.losers[0].reading.device, DeviceId("ox".into()));
    assert_eq!(d.losers[0].reading.value, Some(80.0));
    assert_eq!(d.losers[0].reading.class, DeviceClass::new("oximeter"));
}

// CGM at 0, 5, 10 min (120, 110, 100); fingerstick 95 at 6 min. Moments of
// 5 min open at 0, 5 (CGM 110 + meter 95) and 10: the CGM keeps the trend,
// the meter reading is set aside by rank (kept, with its decision, as a
// confirmation point); a meter reading with no CGM value near stands alone.
#[test]
fn a_fingerstick_confirms_the_cgm_trend_and_stands_only_where_no_cgm_value_does() {
    let cgm: Vec<_> = [(0, 120.0), (5, 110.0), (10, 100.0)]
        .into_iter()
        .enumerate()
        .map(|(i, (m, v))| reading("cgm", Stream::Glucose, m * MIN, v, i as u64))
        .collect();
    let meter = reading("meter", Stream::MeterGlucose, 6 * MIN, 95.0, 7);
    let alone = reading("meter", Stream::MeterGlucose, 40 * MIN, 90.0, 8);
    let mut input = cgm.clone();
    input.push(meter.clone());
    input.push(alone.clone());
    let res = resolve(PrecedenceConfig::default_for(Quantity::Glucose), &input);
    assert_eq!(values(&res), vec![120.0, 110.0, 100.0, 90.0]);
    assert_eq!(res.series[1].reading, cgm[1]);
    assert_eq!(res.series[1].time, at(5 * MIN));
    assert_eq!(res.series[3].reading, alone);
    let rules: Vec<_> = res.decisions.iter().map(|d| d.decided_by).collect();
    assert_eq!(
        rules,
        vec![
            RuleName::Uncontested,
            RuleName::DeviceRank,
            RuleName::Uncontested,
            RuleName::Uncontested
        ]
    );
    let loss = &res.decisions[1].losers[0];
    assert_eq!(loss.reading.stream, Stream::MeterGlucose);
    assert!(loss.reason.contains("meter"), "{}", loss.reason);
}

// A one-minute CGM under the five-minute glucose window keeps every reading:
// a moment holds one reading per source, so the window pairs sources and
// never thins one source's own series.
#[test]
fn a_window_wider_than_a_device_s_interval_keeps_its_rate() {
    let input: Vec<_> = (0..30)
        .map(|i| reading("cgm", Stream::Glucose, i * MIN, 100.0 + i as f64, i as u64))
        .collect();
    let res = resolve(PrecedenceConfig::default_for(Quantity::Glucose), &input);
    assert_eq!(res.series.len(), 30);
    assert!(res.decisions.iter().all(|d| d.losers.is_empty()));
}

// An uploader's copy of the same sensor 2 min late (and, in a second run,
// 2 min early): every moment pairs one phone value with one uploader value
// and the phone's wins, so the series is the phone's, once.
#[test]
fn an_uploader_s_copy_with_a_clock_offset_pairs_with_the_phone_s_value_and_loses() {
    for offset in [2 * MIN, -2 * MIN, 90_000, -150_000] {
        let mut input = Vec::new();
        for i in 0..24 {
            input.push(reading(
                "phone-cgm",
                Stream::Glucose,
                i * 5 * MIN,
                100.0,
                i as u64,
            ));
            input.push(reading(
                "nightscout",
                Stream::Glucose,
                i * 5 * MIN + offset,
                101.0,
                i as u64,
            ));
        }
        let p = Precedence::new(PrecedenceConfig::default_for(Quantity::Glucose))
            .unwrap()
            .with_device_class(
                DeviceId("nightscout".into()),
                DeviceClass::new("nightscout"),
            );
        let res = p.resolve(&patient(), &input).unwrap();
        assert_eq!(res.series.len(), 24, "offset {offset}");
        assert!(
            res.series.iter().all(|p| p.reading.value == 100.0),
            "offset {offset}"
        );
    }
}

// A sensor change: session 2 of the same CGM starts while session 1's late
// backfill of the same two hours arrives. The new session stands over the
// old one minute by minute, whatever the sub-minute offset between them.
#[test]
fn a_new_sensor_session_stands_over_the_old_session_s_backfill() {
    let mut input = Vec::new();
    for i in 0..24 {
        let mut old = reading(
            "cgm",
            Stream::Glucose,
            i * 5 * MIN + 30_000,
            150.0,
            i as u64,
        );
        old.provenance.session = Some(1);
        let mut new = reading("cgm", Stream::Glucose, i * 5 * MIN, 140.0, 1000 + i as u64);
        new.provenance.session = Some(2);
        input.push(old);
        input.push(new);
    }
    let res = resolve(PrecedenceConfig::default_for(Quantity::Glucose), &input);
    assert_eq!(res.series.len(), 24);
    assert!(
        res.series
            .iter()
            .all(|p| p.reading.provenance.session == Some(2))
    );
    assert!(
        res.decisions
            .iter()
            .all(|d| d.decided_by == RuleName::NewestSession)
    );
}

// The strap outranks the oximeter, but its reading is flagged: validity
// comes before any rule, so the valid oximeter reading (80) wins.
#[test]
fn flagged_reading_never_beats_a_valid_one_even_from_a_trusted_class() {
    let strap = flagged(reading("strap", Stream::HeartRate, 0, 72.0, 1));
    let ox = reading("ox", Stream::PulseRate, 0, 80.0, 1);
    let res = resolve(
        PrecedenceConfig::default_for(Quantity::HeartRate),
        &[strap, ox.clone()],
    );
    assert_eq!(res.series[0].reading, ox);
    let d = &res.decisions[0];
    assert_eq!(d.decided_by, RuleName::Validity);
    assert_eq!(d.losers[0].rule, RuleName::Validity);
    assert_eq!(d.losers[0].reading.validity, Validity::Flagged);
}

// Two flagged readings and nothing valid: the best available still stands,
// and the configured ranking chooses among them (strap, 72).
#[test]
fn flagged_readings_resolve_when_nothing_valid_coincides() {
    let strap = flagged(reading("strap", Stream::HeartRate, 0, 72.0, 1));
    let ox = flagged(reading("ox", Stream::PulseRate, 100, 80.0, 1));
    let res = resolve(
        PrecedenceConfig::default_for(Quantity::HeartRate),
        &[strap.clone(), ox],
    );
    assert_eq!(res.series[0].reading, strap);
    assert_eq!(res.decisions[0].decided_by, RuleName::DeviceRank);
}

// NaN from the strap, a negative glucose, an SpO2 of 101 %: none may ever be
// a resolved value, even alone in its moment; the decision still records
// them, with no winner.
#[test]
fn special_and_impossible_values_never_win() {
    let hr = resolve(
        PrecedenceConfig::default_for(Quantity::HeartRate),
        &[
            reading("strap", Stream::HeartRate, 0, f64::NAN, 1),
            reading("strap", Stream::HeartRate, 10_000, f64::INFINITY, 2),
        ],
    );
    assert!(hr.series.is_empty());
    assert_eq!(hr.decisions.len(), 2);
    for d in &hr.decisions {
        assert_eq!(d.winner, None);
        assert_eq!(d.decided_by, RuleName::Validity);
        assert_eq!(d.losers[0].reading.value, None);
        assert_eq!(d.losers[0].reading.validity, Validity::Invalid);
    }

    // A flagged reading still beats an impossible one.
    let cgm = flagged(reading("cgm", Stream::Glucose, 0, 60.0, 1));
    let g = resolve(
        PrecedenceConfig::default_for(Quantity::Glucose),
        &[
            reading("meter", Stream::MeterGlucose, 0, -5.0, 1),
            cgm.clone(),
        ],
    );
    assert_eq!(g.series[0].reading, cgm);

    let s = resolve(
        PrecedenceConfig::default_for(Quantity::Spo2),
        &[
            reading("ox-a", Stream::Spo2, 0, 101.0, 1),
            reading("ox-b", Stream::Spo2, 0, 97.0, 1),
        ],
    );
    assert_eq!(values(&s), vec![97.0]);
}

// One 1-min slot: strap 70 at 0 s, oximeter 90 at 40 s. Ranking alone picks
// the strap; with a 10-s staleness limit first, the strap's reading is 40 s
// older than the newest and drops out, so the oximeter's 90 wins.
#[test]
fn staleness_limit_stops_a_quiet_trusted_device_from_winning() {
    let input = [
        reading("strap", Stream::HeartRate, 0, 70.0, 1),
        reading("ox", Stream::PulseRate, 40_000, 90.0, 1),
    ];
    let rank = Rule::DeviceRank {
        ranking: vec![
            DeviceClass::new("heart_rate_strap"),
            DeviceClass::new("oximeter"),
        ],
    };
    let slots = Coincidence::Slots {
        width: TimeDelta::minutes(1),
    };
    let plain = resolve(
        PrecedenceConfig {
            quantity: Quantity::HeartRate,
            coincidence: slots,
            rules: vec![rank.clone()],
        },
        &input,
    );
    assert_eq!(values(&plain), vec![70.0]);

    let fresh = resolve(
        PrecedenceConfig {
            quantity: Quantity::HeartRate,
            coincidence: slots,
            rules: vec![
                Rule::Fresh {
                    max_age: TimeDelta::seconds(10),
                },
                rank,
            ],
        },
        &input,
    );
    assert_eq!(values(&fresh), vec![90.0]);
    assert_eq!(fresh.decisions[0].decided_by, RuleName::Fresh);
    assert!(fresh.decisions[0].losers[0].reason.contains("40"));
}

// Two oximeters 0.6 s apart in one 1-s moment: the later (96 %) wins.
#[test]
fn most_recent_valid_reading_wins() {
    let later = reading("ox-a", Stream::Spo2, 600, 96.0, 2);
    let res = resolve(
        PrecedenceConfig::default_for(Quantity::Spo2),
        &[later.clone(), reading("ox-b", Stream::Spo2, 0, 98.0, 1)],
    );
    assert_eq!(res.series[0].reading, later);
    assert_eq!(res.decisions[0].decided_by, RuleName::MostRecent);
    // The moment is stamped with its first reading, not the winner.
    assert_eq!(res.series[0].time, at(0));
}

// Alerting policy with defaults (low 70, hysteresis 5: engages below 75).
// Moment 1: CGM 80, fingerstick 65 -> engaged (65 < 75), lowest wins: 65,
// although the display ranking keeps the CGM's 80. Moment 2 (10 min later):
// CGM 120, meter 100 -> not engaged, the ranking keeps the CGM's 120.
#[test]
fn most_severe_picks_the_lower_glucose_near_hypoglycaemia_only() {
    let input = [
        reading("cgm", Stream::Glucose, 0, 80.0, 1),
        reading("meter", Stream::MeterGlucose, MIN, 65.0, 1),
        reading("cgm", Stream::Glucose, 10 * MIN, 120.0, 3),
        reading("meter", Stream::MeterGlucose, 11 * MIN, 100.0, 2),
    ];
    let alerting = resolve(
        PrecedenceConfig::glucose_alerting(AlertConfig::default().low_episode_end_mg_dl()),
        &input,
    );
    assert_eq!(values(&alerting), vec![65.0, 120.0]);
    assert_eq!(alerting.decisions[0].decided_by, RuleName::MostSevere);
    assert_eq!(alerting.decisions[1].decided_by, RuleName::DeviceRank);

    let display = resolve(PrecedenceConfig::default_for(Quantity::Glucose), &input);
    assert_eq!(values(&display), vec![80.0, 120.0]);
}

// High direction without a threshold: of 260 and 240 the higher wins.
#[test]
fn most_severe_high_picks_the_higher_value() {
    let res = resolve(
        PrecedenceConfig {
            quantity: Quantity::Glucose,
            coincidence: Coincidence::Window {
                width: TimeDelta::minutes(5),
            },
            rules: vec![Rule::MostSevere {
                direction: Direction::High,
                engage_beyond: None,
            }],
        },
        &[
            reading("meter", Stream::MeterGlucose, 0, 240.0, 1),
            reading("cgm", Stream::Glucose, MIN, 260.0, 1),
        ],
    );
    assert_eq!(values(&res), vec![260.0]);
}

// Two oximeters at the same instant and only "most recent" configured: they
// tie, and the lower device key ("ox-a") wins whatever the input order.
#[test]
fn exact_ties_fall_to_the_lower_device_key() {
    let a = reading("ox-a", Stream::Spo2, 0, 95.0, 9);
    let b = reading("ox-b", Stream::Spo2, 0, 99.0, 1);
    let config = PrecedenceConfig::default_for(Quantity::Spo2);
    let one = resolve(config.clone(), &[a.clone(), b.clone()]);
    let two = resolve(config, &[b, a.clone()]);
    assert_eq!(one, two);
    assert_eq!(one.series[0].reading, a);
    assert_eq!(one.decisions[0].decided_by, RuleName::TieBreak);
    assert_eq!(one.decisions[0].losers[0].rule, RuleName::TieBreak);
}

// A watch speaking the Heart Rate service would pass for a strap by default;
// declared as "watch" it is unranked, so the oximeter outranks it.
#[test]
fn declared_device_class_overrides_the_stream_default() {
    let watch = reading("watch", Stream::HeartRate, 0, 70.0, 1);
    let ox = reading("ox", Stream::PulseRate, 0, 75.0, 1);
    let default = resolve(
        PrecedenceConfig::default_for(Quantity::HeartRate),
        &[watch.clone(), ox.clone()],
    );
    assert_eq!(default.series[0].reading, watch);

    let declared = Precedence::new(PrecedenceConfig::default_for(Quantity::HeartRate))
        .unwrap()
        .with_device_class(DeviceId("watch".into()), DeviceClass::new("watch"))
        .resolve(&patient(), &[watch, ox.clone()])
        .unwrap();
    assert_eq!(declared.series[0].reading, ox);
    assert!(declared.decisions[0].losers[0].reason.contains("watch"));
}

// Fixed 5-min slots: readings at 7 and 9 min share the slot stamped 5 min;
// the one at 10 min opens the next.
#[test]
fn slots_are_aligned_to_the_epoch_and_stamped_with_their_start() {
    let res = resolve(
        PrecedenceConfig {
            quantity: Quantity::Glucose,
            coincidence: Coincidence::Slots {
                width: TimeDelta::minutes(5),
            },
            rules: vec![Rule::MostRecent],
        },
        &[
            reading("cgm", Stream::Glucose, 7 * MIN, 100.0, 1),
            reading("cgm", Stream::Glucose, 9 * MIN, 104.0, 2),
            reading("cgm", Stream::Glucose, 10 * MIN, 108.0, 3),
        ],
    );
    assert_eq!(values(&res), vec![104.0, 108.0]);
    let stamps: Vec<_> = res.series.iter().map(|p| p.time).collect();
    assert_eq!(stamps, vec![at(5 * MIN), at(10 * MIN)]);
}

#[test]
fn other_patients_and_quantities_are_reported_not_dropped() {
    let mut stranger = reading("strap", Stream::HeartRate, 0, 60.0, 1);
    stranger.patient = PatientId("p-2".into());
    let rr = reading("strap", Stream::RrInterval, 0, 0.8, 2);
    let hr = reading("strap", Stream::HeartRate, 0, 72.0, 3);
    let res = resolve(
        PrecedenceConfig::default_for(Quantity::HeartRate),
        &[stranger.clone(), rr.clone(), hr.clone()],
    );
    assert_eq!(res.series.len(), 1);
    assert_eq!(res.series[0].reading, hr);
    let reasons: Vec<_> = res
        .unmatched
        .iter()
        .map(|u| (u.reading.sequence, u.reason))
        .collect();
    assert!(reasons.contains(&(1, UnmatchedReason::OtherPatient)));
    assert!(reasons.contains(&(2, UnmatchedReason::OtherQuantity)));
    assert_eq!(reasons.len(), 2);
}

fn setting_of(config: PrecedenceConfig) -> &'static str {
    match Precedence::new(config) {
        Err(Error::InvalidSetting { setting, .. }) => setting,
        other => panic!("expected InvalidSetting, got {other:?}"),
    }
}

#[test]
fn meaningless_policies_are_refused_with_the_setting_named() {
    let base = PrecedenceConfig::default_for(Quantity::HeartRate);
    let with = |f: &dyn Fn(&mut PrecedenceConfig)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    assert_eq!(
        setting_of(with(&|c| c.coincidence = Coincidence::Window {
            width: TimeDelta::zero()
        })),
        "coincidence.width"
    );
    assert_eq!(
        setting_of(with(&|c| c.coincidence = Coincidence::Slots {
            width: TimeDelta::seconds(-5)
        })),
        "coincidence.width"
    );
    assert_eq!(setting_of(with(&|c| c.rules.clear())), "rules");
    assert_eq!(
        setting_of(with(&|c| c.rules.push(Rule::Fresh {
            max_age: TimeDelta::seconds(-1)
        }))),
        "rules.fresh.max_age"
    );
    assert_eq!(
        setting_of(with(
            &|c| c.rules = vec![Rule::DeviceRank { ranking: vec![] }]
        )),
        "rules.device_rank.ranking"
    );
    assert_eq!(
        setting_of(with(&|c| c.rules = vec![Rule::DeviceRank {
            ranking: vec![DeviceClass::new("oximeter"), DeviceClass::new("oximeter")]
        }])),
        "rules.device_rank.ranking"
    );
    assert_eq!(
        setting_of(with(&|c| c.rules = vec![Rule::DeviceRank {
            ranking: vec![DeviceClass::new(" ")]
        }])),
        "rules.device_rank.ranking"
    );
    assert_eq!(
        setting_of(with(&|c| c.rules = vec![Rule::MostSevere {
            direction: Direction::Low,
            engage_beyond: Some(f64::NAN)
        }])),
        "rules.most_severe.engage_beyond"
    );
    for q in Quantity::ALL {
        assert!(Precedence::new(PrecedenceConfig::default_for(q)).is_ok());
    }
    assert!(
        Precedence::new(PrecedenceConfig::glucose_alerting(
            AlertConfig::default().low_episode_end_mg_dl()
        ))
        .is_ok()
    );
}

#[test]
fn policies_and_decisions_round_trip_through_json() {
    let config = PrecedenceConfig::glucose_alerting(AlertConfig::default().low_episode_end_mg_dl());
    let json = serde_json::to_string(&config).unwrap();
    assert!(json.contains("\"rule\":\"most_severe\""), "{json}");
    let back: PrecedenceConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);

    let res = resolve(
        config,
        &[
            reading("cgm", Stream::Glucose, 0, 65.0, 1),
            reading("meter", Stream::MeterGlucose, MIN, 80.0, 1),
            reading("meter", Stream::MeterGlucose, 2 * MIN, f64::NAN, 2),
        ],
    );
    let json = serde_json::to_string(&res.decisions).unwrap();
    let back: Vec<vigil_core::precedence::Decision> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, res.decisions);
}

// Chrono's earliest instant with a slot one microsecond wider than its
// distance to the epoch: the slot would start one microsecond before the
// earliest instant. The resolver must say so, not panic or wrap around.
#[test]
fn a_slot_before_the_representable_range_is_an_error_not_a_panic() {
    let mut r = reading("cgm", Stream::Glucose, 0, 100.0, 1);
    r.sensor_time = DateTime::<Utc>::MIN_UTC;
    let res = Precedence::new(PrecedenceConfig {
        quantity: Quantity::Glucose,
        coincidence: Coincidence::Slots {
            width: TimeDelta::microseconds(1 - DateTime::<Utc>::MIN_UTC.timestamp_micros()),
        },
        rules: vec![Rule::MostRecent],
    })
    .unwrap()
    .resolve(&patient(), &[r.clone()]);
    assert!(matches!(res, Err(Error::InvalidInput(_))), "{res:?}");

    // The same instant in a window needs no slot start and resolves.
    let res = resolve(
        PrecedenceConfig::default_for(Quantity::Glucose),
        &[r.clone()],
    );
    assert_eq!(res.series[0].reading, r);
}

// A strap and an oximeter both notifying at 1 Hz, the oximeter 0.4 s behind,
// for one minute: 60 moments of one strap and one oximeter reading each, so
// the resolved series keeps the 1-Hz rate and every point is the strap's.
#[test]
fn default_heart_rate_window_keeps_a_one_hertz_rate() {
    let mut input = Vec::new();
    for i in 0..60 {
        input.push(reading(
            "strap",
            Stream::HeartRate,
            i * 1000,
            70.0,
            i as u64,
        ));
        input.push(reading(
            "ox",
            Stream::PulseRate,
            i * 1000 + 400,
            75.0,
            i as u64,
        ));
    }
    let res = resolve(PrecedenceConfig::default_for(Quantity::HeartRate), &input);
    assert_eq!(res.series.len(), 60);
    assert!(
        res.series
            .iter()
            .all(|p| p.reading.stream == Stream::HeartRate)
    );
    assert!(res.decisions.iter().all(|d| d.losers.len() == 1));
}

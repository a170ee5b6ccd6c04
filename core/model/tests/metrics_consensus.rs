//! The consensus metrics, the GRI and data sufficiency, and the AGP on
//! multi-day traces whose figures are computed by hand, against the
//! published GMI table, and as properties over random traces.

// Test helpers sit outside `#[test]` functions, where clippy's
// allow-unwrap-in-tests does not reach; a failed unwrap here is a failed test.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use proptest::prelude::*;
use vigil_model::Error;
use vigil_model::metrics::{GriZone, agp_profile, consensus_metrics};
use vigil_model::reading::Sample;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

const FIVE: TimeDelta = TimeDelta::minutes(5);

/// 14 days of 5-minute readings alternating 100 and 200 mg/dL.
fn fourteen_days() -> Vec<Sample> {
    (0..14 * 288)
        .map(|i| Sample {
            time: t0() + FIVE * i,
            value: if i % 2 == 0 { 100.0 } else { 200.0 },
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn fourteen_days_alternating_100_and_200() {
    let m = consensus_metrics(&fourteen_days(), FIVE).unwrap();
    assert_eq!(m.readings, 4032);
    // Half at 100, half at 200: mean 150, every deviation is ±50, so the
    // squared deviations sum to 4032 × 2500 and the sample SD (n − 1) is
    // 50 × √(4032 / 4031); CV is that over 150.
    let sd = 50.0 * (4032.0_f64 / 4031.0).sqrt();
    assert!(close(m.mean_mg_dl, 150.0));
    assert!(close(m.sd_mg_dl, sd));
    assert!(close(m.cv_pct, sd / 150.0 * 100.0));
    // GMI = 3.31 + 0.02392 × 150 = 6.898.
    assert!(close(m.gmi_pct, 6.898));
    assert!(close(m.tir_70_180_pct, 50.0));
    assert!(close(m.tar_gt180_pct, 50.0));
    assert!(close(m.tar_gt250_pct, 0.0));
    assert!(close(m.tbr_lt70_pct, 0.0));
    assert!(close(m.active_pct, 100.0));
    // First reading 00:00 on day 1, last 23:55 on day 14, plus 5 min.
    assert!(close(m.days, 14.0));
    assert_eq!(m.days_with_data, 14);
    assert!(m.enough_days && m.enough_wear);
    // 100 is in tight range, 200 is high: TITR 50 %, GRI 0.8 × 50 = 40 (B).
    assert!(close(m.titr_70_140_pct, 50.0));
    assert!(close(m.gri_hypo, 0.0));
    assert!(close(m.gri_hyper, 25.0));
    assert!(close(m.gri, 40.0));
    assert_eq!(m.gri_zone, GriZone::B);
}

#[test]
fn thirteen_days_are_flagged_as_too_short_for_the_consensus() {
    let trace: Vec<_> = fourteen_days()
        .into_iter()
        .filter(|s| (s.time - t0()).num_days() < 13)
        .collect();
    let m = consensus_metrics(&trace, FIVE).unwrap();
    assert!(close(m.days, 13.0));
    assert_eq!(m.days_with_data, 13);
    assert!(!m.enough_days);
    assert!(m.enough_wear);
}

#[test]
fn a_missing_day_lowers_active_percent_but_not_the_period() {
    let trace: Vec<_> = fourteen_days()
        .into_iter()
        .filter(|s| (s.time - t0()).num_days() != 6)
        .collect();
    let m = consensus_metrics(&trace, FIVE).unwrap();
    assert_eq!(m.readings, 13 * 288);
    assert!(close(m.active_pct, 13.0 / 14.0 * 100.0));
    assert!(close(m.days, 14.0));
    assert_eq!(m.days_with_data, 13);
    assert!(m.enough_days && m.enough_wear);
}

#[test]
fn wear_under_seventy_percent_is_flagged() {
    // Every other hour missing: 50 % wear over the full 14 days.
    let trace: Vec<_> = fourteen_days()
        .into_iter()
        .filter(|s| (s.time - t0()).num_hours() % 2 == 0)
        .collect();
    let m = consensus_metrics(&trace, FIVE).unwrap();
    assert!(m.active_pct < 70.0);
    assert_eq!(m.days_with_data, 14);
    assert!(!m.enough_wear);
}

#[test]
fn gmi_matches_the_published_table() {
    // Mean glucose → GMI (%) as tabulated by Bergenstal et al., Diabetes
    // Care 2018, to one decimal.
    let table = [
        (100.0, 5.7),
        (125.0, 6.3),
        (150.0, 6.9),
        (175.0, 7.5),
        (200.0, 8.1),
        (250.0, 9.3),
        (300.0, 10.5),
        (350.0, 11.7),
    ];
    for (mean, gmi) in table {
        let m = consensus_metrics(
            &[Sample {
                time: t0(),
                value: mean,
            }],
            FIVE,
        )
        .unwrap();
        assert!(
            ((m.gmi_pct * 10.0).round() / 10.0 - gmi).abs() < 1e-9,
            "{mean}"
        );
    }
}

#[test]
fn agp_of_a_repeating_day_is_that_day() {
    // Each day the same 24 h shape: slot k of 15 min holds three readings of
    // 100 + k, so every percentile of slot k is 100 + k.
    let trace: Vec<_> = (0..14 * 288)
        .map(|i: i32| Sample {
            time: t0() + FIVE * i,
            value: 100.0 + f64::from((i % 288) / 3),
        })
        .collect();
    let agp = agp_profile(
        &trace,
        TimeDelta::minutes(15),
        FixedOffset::east_opt(0).unwrap(),
    )
    .unwrap();
    assert_eq!(agp.len(), 96);
    for (k, slot) in agp.iter().enumerate() {
        assert_eq!(slot.readings, 14 * 3);
        assert_eq!(slot.start_minute, 15 * k as u32);
        for p in slot.percentiles.unwrap() {
            assert!(close(p, 100.0 + k as f64));
        }
    }
}

#[test]
fn agp_percentiles_of_a_spread_slot() {
    // The 08:00 slot on 21 days holds 100, 105, ..., 200 (21 values):
    // h = 20 p / 100 lands on whole ranks: p5 → rank 1 (105), p25 → 5 (125),
    // p50 → 10 (150), p75 → 15 (175), p95 → 19 (195).
    let trace: Vec<_> = (0..21)
        .map(|d| Sample {
            time: t0() + TimeDelta::days(d) + TimeDelta::hours(8),
            value: 100.0 + 5.0 * d as f64,
        })
        .collect();
    let agp = agp_profile(
        &trace,
        TimeDelta::minutes(5),
        FixedOffset::east_opt(0).unwrap(),
    )
    .unwrap();
    let slot = agp[8 * 12];
    assert_eq!(slot.readings, 21);
    assert_eq!(slot.percentiles, Some([105.0, 125.0, 150.0, 175.0, 195.0]));
}

#[test]
fn empty_trace_is_an_error_not_a_row_of_nans() {
    assert!(matches!(
        consensus_metrics(&[], FIVE),
        Err(Error::InvalidInput(_))
    ));
}

fn traces() -> impl Strategy<Value = Vec<Sample>> {
    prop::collection::vec((1i64..=40, 39.0f64..=401.0), 1..500).prop_map(|steps| {
        let mut time = t0();
        steps
            .into_iter()
            .map(|(dt, value)| {
                time += TimeDelta::minutes(dt);
                Sample { time, value }
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn ranges_partition_the_readings(trace in traces()) {
        let m = consensus_metrics(&trace, FIVE).unwrap();
        prop_assert!((m.tbr_lt70_pct + m.tir_70_180_pct + m.tar_gt180_pct - 100.0).abs() < 1e-9);
        prop_assert!(m.tbr_lt54_pct <= m.tbr_lt70_pct);
        prop_assert!(m.tar_gt250_pct <= m.tar_gt180_pct);
        prop_assert!(m.active_pct > 0.0 && m.active_pct <= 100.0);
        let n = trace.len() as f64;
        let below54 = trace.iter().filter(|s| s.value < 54.0).count() as f64;
        prop_assert!((m.tbr_lt54_pct - below54 / n * 100.0).abs() < 1e-9);
    }

    #[test]
    fn mean_sd_cv_and_gmi_agree_with_their_definitions(trace in traces()) {
        let m = consensus_metrics(&trace, FIVE).unwrap();
        let n = trace.len() as f64;
        let mean = trace.iter().map(|s| s.value).sum::<f64>() / n;
        // Sample variance as (Σx² − n·mean²) / (n − 1), a different route.
        let sx2 = trace.iter().map(|s| s.value * s.value).sum::<f64>();
        let sd = if trace.len() < 2 {
            0.0
        } else {
            ((sx2 - n * mean * mean) / (n - 1.0)).max(0.0).sqrt()
        };
        prop_assert!((m.mean_mg_dl - mean).abs() < 1e-9);
        prop_assert!((m.sd_mg_dl - sd).abs() < 1e-4);
        prop_assert!(m.sd_mg_dl >= 0.0);
        prop_assert!((m.cv_pct - m.sd_mg_dl / m.mean_mg_dl * 100.0).abs() < 1e-9);
        prop_assert!((m.gmi_pct - (3.31 + 0.02392 * mean)).abs() < 1e-9);
    }

    #[test]
    fn gri_is_bounded_and_consistent_with_its_components_and_zone(trace in traces()) {
        let m = consensus_metrics(&trace, FIVE).unwrap();
        prop_assert!((0.0..=100.0).contains(&m.gri));
        prop_assert!((0.0..=100.0).contains(&m.gri_hypo));
        prop_assert!((0.0..=100.0).contains(&m.gri_hyper));
        prop_assert!((m.gri - (3.0 * m.gri_hypo + 1.6 * m.gri_hyper).min(100.0)).abs() < 1e-9);
        // The components are built from the consensus bands.
        let low = m.tbr_lt70_pct - m.tbr_lt54_pct;
        let high = m.tar_gt180_pct - m.tar_gt250_pct;
        prop_assert!((m.gri_hypo - (m.tbr_lt54_pct + 0.8 * low)).abs() < 1e-9);
        prop_assert!((m.gri_hyper - (m.tar_gt250_pct + 0.5 * high)).abs() < 1e-9);
        let zone = match m.gri {
            g if g <= 20.0 => GriZone::A,
            g if g <= 40.0 => GriZone::B,
            g if g <= 60.0 => GriZone::C,
            g if g <= 80.0 => GriZone::D,
            _ => GriZone::E,
        };
        prop_assert_eq!(m.gri_zone, zone);
        // Tight range lies inside the target range.
        prop_assert!(m.titr_70_140_pct <= m.tir_70_180_pct + 1e-12);
        prop_assert!(m.days_with_data >= 1 && m.days_with_data as f64 <= m.days.ceil());
    }

    #[test]
    fn five_minute_data_without_gaps_is_fully_active(n in 1usize..2000) {
        let trace: Vec<_> = (0..n)
            .map(|i| Sample { time: t0() + FIVE * i as i32, value: 120.0 })
            .collect();
        let m = consensus_metrics(&trace, FIVE).unwrap();
        prop_assert!((m.active_pct - 100.0).abs() < 1e-9);
        prop_assert!((m.days - n as f64 / 288.0).abs() < 1e-9);
    }
}

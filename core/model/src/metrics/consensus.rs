//! The international-consensus CGM metrics of one period of readings, with
//! the Glycemia Risk Index and time in tight range.
//!
//! Boundary conventions (Battelino et al., Diabetes Care 2019;42:1593): the
//! five bands are very low `< 54`, low `54 ≤ g < 70`, target `70 ≤ g ≤ 180`,
//! high `180 < g ≤ 250` and very high `> 250` mg/dL. The consensus writes
//! them as whole numbers (54–69, 181–250); on values with decimals the bands
//! above leave no gap, so 69.5 is low and 180.5 is high. Below 70 includes
//! below 54 and above 180 includes above 250, hence
//! `tbr_lt70 + tir + tar_gt180 = 100` exactly. Time in tight range is
//! `70 ≤ g ≤ 140`.
//!
//! Every "time in" figure is the percent of *readings* in the band, one
//! definition for all of them. With a sensor that reads at a fixed interval
//! this is the percent of the worn time the band took; gaps simply hold no
//! readings (they lower the wear, not a band). Time weighting by the gap to
//! the next reading is not used: it would let one reading before a long gap
//! stand for hours it never saw.
//!
//! The standard deviation is the *sample* SD (divide by n − 1), as R's `sd`,
//! iglu and most CGM research compute it; CV is `SD / mean × 100`. A single
//! reading has no spread to estimate: its SD and CV are reported as 0.
//!
//! GMI (Bergenstal et al., Diabetes Care 2018;41:2275) is
//! `3.31 + 0.02392 × mean glucose in mg/dL`, in percent.
//!
//! The Glycemia Risk Index (Klonoff et al., J Diabetes Sci Technol 2023;17:
//! 1226, published online 2022) is `3.0 × VLow + 2.4 × Low + 1.6 × VHigh +
//! 0.8 × High` on the band percentages above, capped at 100; its hypoglycaemia
//! component is `VLow + 0.8 × Low` and its hyperglycaemia component
//! `VHigh + 0.5 × High` (so GRI = `3 × hypo + 1.6 × hyper` before the cap).
//! Zones: A for GRI ≤ 20, B ≤ 40, C ≤ 60, D ≤ 80, E above (the paper's
//! 0–20, 21–40, … on a continuous value).
//!
//! The covered period runs from the first reading to the last reading plus
//! one sampling interval (the last reading stands for its interval). Active
//! (CGM wear) percent is the share of the period's expected sampling slots
//! that hold at least one reading: a reading belongs to the slot nearest to
//! its offset from the first reading, so clock jitter and duplicate readings
//! cannot push it over 100 %. Days with data counts the 24-hour days of the
//! period, from the first reading, that hold at least one reading. The
//! consensus asks for at least 14 days with at least 70 % wear before the
//! figures are relied on; [`GlucoseMetrics::enough_days`] and
//! [`GlucoseMetrics::enough_wear`] say whether the period meets each.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::reading::Sample;

/// GMI intercept, percent (Bergenstal 2018).
const GMI_INTERCEPT_PCT: f64 = 3.31;
/// GMI slope, percent per mg/dL (Bergenstal 2018).
const GMI_SLOPE_PCT_PER_MG_DL: f64 = 0.02392;
/// Upper edge of very low (exclusive), mg/dL.
const VERY_LOW_BELOW: f64 = 54.0;
/// Upper edge of low (exclusive) and lower edge of target, mg/dL.
const LOW_BELOW: f64 = 70.0;
/// Upper edge of tight range (inclusive), mg/dL.
const TIGHT_UP_TO: f64 = 140.0;
/// Upper edge of target (inclusive), mg/dL.
const TARGET_UP_TO: f64 = 180.0;
/// Upper edge of high (inclusive), mg/dL.
const HIGH_UP_TO: f64 = 250.0;
/// Days a period needs before the consensus relies on its figures.
const SUFFICIENT_DAYS: i128 = 14;
/// Wear a period needs before the consensus relies on its figures, percent.
const SUFFICIENT_WEAR_PCT: i128 = 70;
/// Milliseconds in a day.
const DAY_MS: i128 = 86_400_000;

/// The zone of a Glycemia Risk Index on the paper's GRI grid: A is the lowest
/// risk quintile of the clinicians' ratings, E the highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GriZone {
    /// GRI 0 to 20.
    A,
    /// GRI above 20, up to 40.
    B,
    /// GRI above 40, up to 60.
    C,
    /// GRI above 60, up to 80.
    D,
    /// GRI above 80.
    E,
}

impl GriZone {
    /// The zone of a GRI value (upper edges inclusive: 20.0 is A, 20.01 is B).
    pub fn of(gri: f64) -> GriZone {
        if gri <= 20.0 {
            GriZone::A
        } else if gri <= 40.0 {
            GriZone::B
        } else if gri <= 60.0 {
            GriZone::C
        } else if gri <= 80.0 {
            GriZone::D
        } else {
            GriZone::E
        }
    }

    /// The zone's letter, as reports print it.
    pub fn letter(self) -> &'static str {
        match self {
            GriZone::A => "A",
            GriZone::B => "B",
            GriZone::C => "C",
            GriZone::D => "D",
            GriZone::E => "E",
        }
    }
}

/// The consensus metrics of one period; every percentage is in `0..=100`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GlucoseMetrics {
    /// Mean glucose, mg/dL.
    pub mean_mg_dl: f64,
    /// Sample standard deviation of glucose (divide by n − 1), mg/dL; 0 for a
    /// single reading.
    pub sd_mg_dl: f64,
    /// Coefficient of variation, `sd / mean × 100`.
    pub cv_pct: f64,
    /// Glucose management indicator, `3.31 + 0.02392 × mean`, percent.
    pub gmi_pct: f64,
    /// Percent of readings `< 54` mg/dL.
    pub tbr_lt54_pct: f64,
    /// Percent of readings `< 70` mg/dL (includes those below 54).
    pub tbr_lt70_pct: f64,
    /// Percent of readings in `70..=180` mg/dL.
    pub tir_70_180_pct: f64,
    /// Percent of readings in tight range, `70..=140` mg/dL.
    pub titr_70_140_pct: f64,
    /// Percent of readings `> 180` mg/dL (includes those above 250).
    pub tar_gt180_pct: f64,
    /// Percent of readings `> 250` mg/dL.
    pub tar_gt250_pct: f64,
    /// Glycemia Risk Index, `3 × hypo + 1.6 × hyper` capped at 100.
    pub gri: f64,
    /// GRI hypoglycaemia component, `VLow + 0.8 × Low` (percent of readings).
    pub gri_hypo: f64,
    /// GRI hyperglycaemia component, `VHigh + 0.5 × High` (percent of
    /// readings).
    pub gri_hyper: f64,
    /// The zone (A–E) of `gri`.
    pub gri_zone: GriZone,
    /// Percent of the period's expected sampling slots holding a reading.
    pub active_pct: f64,
    /// Length of the covered period in days (first reading to last reading
    /// plus one sampling interval).
    pub days: f64,
    /// Number of 24-hour days of the period, counted from the first reading,
    /// that hold at least one reading.
    pub days_with_data: usize,
    /// Whether the period covers at least the 14 days the consensus asks for.
    pub enough_days: bool,
    /// Whether wear (`active_pct`) reaches the 70 % the consensus asks for.
    pub enough_wear: bool,
    /// Number of readings the metrics were computed from.
    pub readings: usize,
    /// Time of the earliest reading.
    pub first: DateTime<Utc>,
    /// Time of the latest reading.
    pub last: DateTime<Utc>,
}

/// A reading's consensus band (Battelino et al., 2019; tight range 70–140):
/// the one place the band edges are drawn, for these metrics and for
/// anything that counts readings per band (the cloud's per-day summaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// Below 54 mg/dL.
    VeryLow,
    /// 54 to below 70 mg/dL.
    Low,
    /// 70–180 mg/dL; `tight` when also within 70–140.
    InRange {
        /// Within the tight range, 70–140 mg/dL.
        tight: bool,
    },
    /// Above 180, up to 250 mg/dL.
    High,
    /// Above 250 mg/dL.
    VeryHigh,
}

impl Band {
    /// The band `mg_dl` falls in.
    pub fn of(mg_dl: f64) -> Band {
        if mg_dl < VERY_LOW_BELOW {
            Band::VeryLow
        } else if mg_dl < LOW_BELOW {
            Band::Low
        } else if mg_dl <= TARGET_UP_TO {
            Band::InRange {
                tight: mg_dl <= TIGHT_UP_TO,
            }
        } else if mg_dl <= HIGH_UP_TO {
            Band::High
        } else {
            Band::VeryHigh
        }
    }
}

/// The Glycemia Risk Index of a period and its two components.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gri {
    /// `3 × hypo + 1.6 × hyper`, capped at 100.
    pub gri: f64,
    /// `VLow + 0.8 × Low`, percent of readings.
    pub hypo: f64,
    /// `VHigh + 0.5 × High`, percent of readings.
    pub hyper: f64,
}

impl Gri {
    /// From the readings per band out of `n` (Klonoff et al., 2022); `None`
    /// for no readings. The weights times ten are whole numbers, so each
    /// figure is one exact integer over n: a GRI of exactly 20 is 20.0
    /// (zone A), never 20.000000000000004 (zone B).
    pub fn of(very_low: u64, low: u64, high: u64, very_high: u64, n: u64) -> Option<Gri> {
        if n == 0 {
            return None;
        }
        let (vl, l, h, vh) = (
            u128::from(very_low),
            u128::from(low),
            u128::from(high),
            u128::from(very_high),
        );
        let n = n as f64;
        Some(Gri {
            gri: (((30 * vl + 24 * l + 16 * vh + 8 * h) * 10) as f64 / n).min(100.0),
            hypo: ((10 * vl + 8 * l) * 10) as f64 / n,
            hyper: ((2 * vh + h) * 50) as f64 / n,
        })
    }
}

/// Computes the consensus metrics of `samples` (glucose in mg/dL, any order),
/// given the sensor's expected sampling interval (5 minutes for most CGMs).
///
/// Errors: [`Error::InvalidInput`] for no readings or a glucose value that is
/// not a finite positive number; [`Error::InvalidSetting`] for an interval
/// that is not positive.
pub fn consensus_metrics(samples: &[Sample], interval: TimeDelta) -> Result<GlucoseMetrics> {
    if interval <= TimeDelta::zero() {
        return Err(Error::InvalidSetting {
            setting: "interval",
            reason: format!(
                "the sampling interval must be positive, got {} s",
                interval.num_seconds()
            ),
        });
    }
    let (Some(first), Some(last)) = (
        samples.iter().map(|s| s.time).min(),
        samples.iter().map(|s| s.time).max(),
    ) else {
        return Err(Error::InvalidInput(
            "metrics need at least one glucose reading".into(),
        ));
    };
    if let Some(bad) = samples
        .iter()
        .position(|s| !(s.value.is_finite() && s.value > 0.0))
    {
        return Err(Error::InvalidInput(format!(
            "glucose reading {bad} is not a finite positive number of mg/dL"
        )));
    }

    let n = samples.len() as f64;
    let mean = samples.iter().map(|s| s.value).sum::<f64>() / n;
    let sd = if samples.len() < 2 {
        0.0
    } else {
        let squares = samples
            .iter()
            .map(|s| (s.value - mean).powi(2))
            .sum::<f64>();
        (squares / (n - 1.0)).sqrt()
    };
    let count =
        |pred: fn(Band) -> bool| samples.iter().filter(|s| pred(Band::of(s.value))).count() as u64;
    let pct = |pred: fn(Band) -> bool| (u128::from(count(pred)) * 100) as f64 / n;
    let very_low = count(|b| b == Band::VeryLow);
    let low = count(|b| b == Band::Low);
    let high = count(|b| b == Band::High);
    let very_high = count(|b| b == Band::VeryHigh);
    let Gri {
        gri,
        hypo: gri_hypo,
        hyper: gri_hyper,
    } = Gri::of(very_low, low, high, very_high, samples.len() as u64)
        .ok_or_else(|| Error::InvalidInput("metrics need at least one glucose reading".into()))?;

    // Whole milliseconds and whole slots: a period of n days at a regular
    // interval must not fall a hair short of n days, nor 70 % wear of 70 %.
    let interval_ms = i128::from(interval.num_milliseconds().max(1));
    let span_ms = i128::from((last - first).num_milliseconds());
    // The nearest whole number of intervals in `offset_ms` (halves up; the
    // offsets are never negative).
    let nearest_slot = |offset_ms: i128| (2 * offset_ms + interval_ms) / (2 * interval_ms);
    // Slots 0..=nearest(span); the last reading's slot is counted.
    let expected_slots = nearest_slot(span_ms) + 1;
    let occupied = samples
        .iter()
        .map(|s| nearest_slot(i128::from((s.time - first).num_milliseconds())))
        .collect::<BTreeSet<i128>>()
        .len() as i128;
    let active_pct = ((occupied * 100) as f64 / expected_slots as f64).min(100.0);
    let period_ms = span_ms + interval_ms;
    let days_with_data = samples
        .iter()
        .map(|s| i128::from((s.time - first).num_milliseconds()) / DAY_MS)
        .collect::<BTreeSet<i128>>()
        .len();

    Ok(GlucoseMetrics {
        mean_mg_dl: mean,
        sd_mg_dl: sd,
        cv_pct: sd / mean * 100.0,
        gmi_pct: GMI_INTERCEPT_PCT + GMI_SLOPE_PCT_PER_MG_DL * mean,
        tbr_lt54_pct: pct(|b| b == Band::VeryLow),
        tbr_lt70_pct: pct(|b| matches!(b, Band::VeryLow | Band::Low)),
        tir_70_180_pct: pct(|b| matches!(b, Band::InRange { .. })),
        titr_70_140_pct: pct(|b| b == Band::InRange { tight: true }),
        tar_gt180_pct: pct(|b| matches!(b, Band::High | Band::VeryHigh)),
        tar_gt250_pct: pct(|b| b == Band::VeryHigh),
        gri,
        gri_hypo,
        gri_hyper,
        gri_zone: GriZone::of(gri),
        active_pct,
        days: period_ms as f64 / DAY_MS as f64,
        days_with_data,
        enough_days: period_ms >= SUFFICIENT_DAYS * DAY_MS,
        enough_wear: occupied.min(expected_slots) * 100 >= SUFFICIENT_WEAR_PCT * expected_slots,
        readings: samples.len(),
        first,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(start_min: i64, step_min: i64, values: &[f64]) -> Vec<Sample> {
        let t0 = DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Sample {
                time: t0 + TimeDelta::minutes(start_min + step_min * i as i64),
                value,
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn hand_computed_trace_matches_every_metric() {
        // Ten readings every 5 minutes, chosen to hit every boundary:
        // 50 (<54), 54 and 69 (<70 not <54), 70, 180 (in range, inclusive),
        // 181, 250 (>180 not >250), 251, 300 (>250), 120.
        let v = [
            50.0, 54.0, 69.0, 70.0, 180.0, 181.0, 250.0, 251.0, 300.0, 120.0,
        ];
        let m = consensus_metrics(&trace(0, 5, &v), TimeDelta::minutes(5)).unwrap();
        // Sum = 1525, mean = 152.5.
        assert!(close(m.mean_mg_dl, 152.5));
        // Squared deviations from 152.5, summed by hand:
        // 10506.25 + 9702.25 + 6972.25 + 6806.25 + 756.25 + 812.25
        // + 9506.25 + 9702.25 + 21756.25 + 1056.25 = 77576.5; the sample
        // variance divides by n − 1 = 9.
        assert!(close(m.sd_mg_dl, (77576.5_f64 / 9.0).sqrt()));
        assert!(close(m.cv_pct, (77576.5_f64 / 9.0).sqrt() / 152.5 * 100.0));
        // GMI = 3.31 + 0.02392 × 152.5 = 3.31 + 3.6478 = 6.9578.
        assert!(close(m.gmi_pct, 6.9578));
        assert!(close(m.tbr_lt54_pct, 10.0));
        assert!(close(m.tbr_lt70_pct, 30.0));
        assert!(close(m.tir_70_180_pct, 30.0));
        assert!(close(m.tar_gt180_pct, 40.0));
        assert!(close(m.tar_gt250_pct, 20.0));
        assert!(close(
            m.tbr_lt70_pct + m.tir_70_180_pct + m.tar_gt180_pct,
            100.0
        ));
        // Tight range 70..=140: 70 and 120.
        assert!(close(m.titr_70_140_pct, 20.0));
        // VLow 10, Low 20 (54, 69), High 20 (181, 250), VHigh 20 (251, 300):
        // hypo 10 + 0.8 × 20 = 26; hyper 20 + 0.5 × 20 = 30;
        // GRI 3 × 26 + 1.6 × 30 = 126, capped at 100: zone E.
        assert!(close(m.gri_hypo, 26.0));
        assert!(close(m.gri_hyper, 30.0));
        assert!(close(m.gri, 100.0));
        assert_eq!(m.gri_zone, GriZone::E);
        assert_eq!(m.days_with_data, 1);
        assert!(!m.enough_days);
        assert!(m.enough_wear);
        assert!(close(m.active_pct, 100.0));
        // 45 minutes of span plus one 5-minute interval = 50 min.
        assert!(close(m.days, 50.0 / 1440.0));
        assert_eq!(m.readings, 10);
    }

    #[test]
    fn missing_slots_lower_active_percent() {
        // Readings at 0, 5, 10, then a gap, then 30 and 35 minutes:
        // 8 expected slots (0..=35 by 5), 5 occupied.
        let mut s = trace(0, 5, &[100.0, 100.0, 100.0]);
        s.extend(trace(30, 5, &[100.0, 100.0]));
        let m = consensus_metrics(&s, TimeDelta::minutes(5)).unwrap();
        assert!(close(m.active_pct, 5.0 / 8.0 * 100.0));
        assert!(close(m.days, 40.0 / 1440.0));
        assert!(!m.enough_wear, "62.5 % wear is under the consensus 70 %");
    }

    #[test]
    fn gri_zone_upper_edges_belong_to_the_lower_zone() {
        let zones = [
            (0.0, GriZone::A),
            (20.0, GriZone::A),
            (20.000_001, GriZone::B),
            (40.0, GriZone::B),
            (40.5, GriZone::C),
            (60.0, GriZone::C),
            (61.0, GriZone::D),
            (80.0, GriZone::D),
            (80.1, GriZone::E),
            (100.0, GriZone::E),
        ];
        for (gri, zone) in zones {
            assert_eq!(GriZone::of(gri), zone, "{gri}");
        }
    }

    #[test]
    fn band_edges_with_decimals_leave_no_gap() {
        // 69.5 is low (not in range), 180.5 is high (not in range), 140 is
        // still tight, 140.5 is not.
        let m = consensus_metrics(
            &trace(0, 5, &[69.5, 140.0, 140.5, 180.5]),
            TimeDelta::minutes(5),
        )
        .unwrap();
        assert!(close(m.tbr_lt70_pct, 25.0));
        assert!(close(m.tbr_lt54_pct, 0.0));
        assert!(close(m.titr_70_140_pct, 25.0));
        assert!(close(m.tir_70_180_pct, 50.0));
        assert!(close(m.tar_gt180_pct, 25.0));
        // Low 25, High 25: GRI 2.4 × 25 + 0.8 × 25 = 80, zone D.
        assert!(close(m.gri, 80.0));
        assert_eq!(m.gri_zone, GriZone::D);
    }

    #[test]
    fn jittered_and_duplicate_readings_never_exceed_full_wear() {
        let mut s = trace(0, 5, &[100.0; 6]);
        // A duplicate and a reading 40 s late land in occupied slots.
        s.push(s[2]);
        s.push(Sample {
            time: s[3].time + TimeDelta::seconds(40),
            value: 101.0,
        });
        let m = consensus_metrics(&s, TimeDelta::minutes(5)).unwrap();
        assert!(close(m.active_pct, 100.0));
        assert_eq!(m.readings, 8);
    }

    #[test]
    fn order_of_readings_does_not_change_metrics() {
        let s = trace(0, 5, &[60.0, 90.0, 200.0, 260.0, 120.0]);
        let mut r = s.clone();
        r.reverse();
        let iv = TimeDelta::minutes(5);
        assert_eq!(consensus_metrics(&s, iv), consensus_metrics(&r, iv));
    }

    #[test]
    fn single_reading_reports_zero_spread_and_one_interval_of_data() {
        let m = consensus_metrics(&trace(0, 5, &[99.0]), TimeDelta::minutes(5)).unwrap();
        assert!(close(m.sd_mg_dl, 0.0));
        assert!(close(m.cv_pct, 0.0));
        assert!(close(m.active_pct, 100.0));
        assert!(close(m.days, 5.0 / 1440.0));
    }

    #[test]
    fn empty_input_bad_values_and_bad_interval_are_refused() {
        let iv = TimeDelta::minutes(5);
        assert!(matches!(
            consensus_metrics(&[], iv),
            Err(Error::InvalidInput(_))
        ));
        for bad in [f64::NAN, f64::INFINITY, 0.0, -5.0] {
            assert!(matches!(
                consensus_metrics(&trace(0, 5, &[100.0, bad]), iv),
                Err(Error::InvalidInput(_))
            ));
        }
        assert!(matches!(
            consensus_metrics(&trace(0, 5, &[100.0]), TimeDelta::zero()),
            Err(Error::InvalidSetting {
                setting: "interval",
                ..
            })
        ));
    }
}

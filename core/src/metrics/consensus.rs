//! The international-consensus CGM metrics of one period of readings.
//!
//! Boundary conventions (Battelino et al., Diabetes Care 2019;42:1593):
//! below 54 is `< 54`; below 70 is `< 70` (so it includes below 54); in range
//! is `70..=180`; above 180 is `> 180` (so it includes above 250); above 250 is
//! `> 250`. Hence `tbr_lt70 + tir + tar_gt180 = 100` exactly.
//!
//! GMI (Bergenstal et al., Diabetes Care 2018;41:2275) is
//! `3.31 + 0.02392 × mean glucose in mg/dL`, in percent.
//!
//! The covered period runs from the first reading to the last reading plus
//! one sampling interval (the last reading stands for its interval). Active
//! (CGM wear) percent is the share of the period's expected sampling slots
//! that hold at least one reading: a reading belongs to the slot nearest to
//! its offset from the first reading, so clock jitter and duplicate readings
//! cannot push it over 100 %.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Sample;

/// GMI intercept, percent (Bergenstal 2018).
const GMI_INTERCEPT_PCT: f64 = 3.31;
/// GMI slope, percent per mg/dL (Bergenstal 2018).
const GMI_SLOPE_PCT_PER_MG_DL: f64 = 0.02392;

/// The consensus metrics of one period; every percentage is in `0..=100`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GlucoseMetrics {
    /// Mean glucose, mg/dL.
    pub mean_mg_dl: f64,
    /// Population standard deviation of glucose, mg/dL.
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
    /// Percent of readings `> 180` mg/dL (includes those above 250).
    pub tar_gt180_pct: f64,
    /// Percent of readings `> 250` mg/dL.
    pub tar_gt250_pct: f64,
    /// Percent of the period's expected sampling slots holding a reading.
    pub active_pct: f64,
    /// Length of the covered period in days (first reading to last reading
    /// plus one sampling interval).
    pub days: f64,
    /// Number of readings the metrics were computed from.
    pub readings: usize,
    /// Time of the earliest reading.
    pub first: DateTime<Utc>,
    /// Time of the latest reading.
    pub last: DateTime<Utc>,
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
    let variance = samples
        .iter()
        .map(|s| (s.value - mean).powi(2))
        .sum::<f64>()
        / n;
    let sd = variance.sqrt();
    let pct =
        |pred: fn(f64) -> bool| samples.iter().filter(|s| pred(s.value)).count() as f64 / n * 100.0;

    let interval_ms = interval.num_milliseconds().max(1) as f64;
    let span_ms = (last - first).num_milliseconds() as f64;
    // Slots 0..=round(span / interval); the last reading's slot is counted.
    let expected_slots = (span_ms / interval_ms).round() + 1.0;
    let occupied: BTreeSet<i64> = samples
        .iter()
        .map(|s| ((s.time - first).num_milliseconds() as f64 / interval_ms).round() as i64)
        .collect();
    let active_pct = (occupied.len() as f64 / expected_slots * 100.0).min(100.0);
    let days = (span_ms + interval_ms) / 86_400_000.0;

    Ok(GlucoseMetrics {
        mean_mg_dl: mean,
        sd_mg_dl: sd,
        cv_pct: sd / mean * 100.0,
        gmi_pct: GMI_INTERCEPT_PCT + GMI_SLOPE_PCT_PER_MG_DL * mean,
        tbr_lt54_pct: pct(|g| g < 54.0),
        tbr_lt70_pct: pct(|g| g < 70.0),
        tir_70_180_pct: pct(|g| (70.0..=180.0).contains(&g)),
        tar_gt180_pct: pct(|g| g > 180.0),
        tar_gt250_pct: pct(|g| g > 250.0),
        active_pct,
        days,
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
        // + 9506.25 + 9702.25 + 21756.25 + 1056.25 = 77576.5; / 10 = 7757.65.
        assert!(close(m.sd_mg_dl, 7757.65_f64.sqrt()));
        assert!(close(m.cv_pct, 7757.65_f64.sqrt() / 152.5 * 100.0));
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
    fn single_reading_has_zero_sd_and_one_interval_of_data() {
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

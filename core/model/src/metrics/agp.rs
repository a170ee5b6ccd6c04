//! The ambulatory glucose profile (AGP): the 5th, 25th, 50th, 75th and 95th
//! percentiles of glucose by time of day, all days of the period overlaid.
//!
//! Readings are grouped into fixed slots of the patient's *local* day (the
//! caller passes the UTC offset: a 03:00 low must plot at 03:00 for the
//! patient, wherever the server runs). No smoothing is applied: each slot's
//! percentiles are exactly those of its readings, so every plotted figure can
//! be checked by hand; a display may smooth on top.

use chrono::{FixedOffset, TimeDelta, Timelike};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::reading::Sample;

/// Seconds in a day.
const DAY_S: i64 = 86_400;

/// One time-of-day slot of the AGP.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AgpSlot {
    /// Start of the slot, minutes after local midnight.
    pub start_minute: u32,
    /// Readings that fell in this slot over all days.
    pub readings: usize,
    /// Percentiles 5, 25, 50, 75, 95 in mg/dL, or `None` if the slot is empty.
    pub percentiles: Option<[f64; 5]>,
}

/// The percentile levels of the AGP, in percent.
pub const AGP_LEVELS: [f64; 5] = [5.0, 25.0, 50.0, 75.0, 95.0];

/// The `p`-th percentile (0..=100) of already sorted values, by linear
/// interpolation between closest ranks (Hyndman & Fan type 7): rank
/// `h = (n - 1) × p / 100`, value `x[⌊h⌋] + (h - ⌊h⌋)(x[⌊h⌋+1] - x[⌊h⌋])`.
/// `None` for no values or `p` outside `0..=100`.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * p / 100.0;
    let lo = h.floor() as usize;
    let frac = h - h.floor();
    let x_lo = *sorted.get(lo)?;
    let x_hi = sorted.get(lo + 1).copied().unwrap_or(x_lo);
    Some(x_lo + frac * (x_hi - x_lo))
}

/// The AGP of `samples` (glucose mg/dL) in slots of `slot` width of the local
/// day at `utc_offset`, from local midnight; always `24 h / slot` entries.
///
/// Errors: [`Error::InvalidSetting`] if `slot` is not a positive whole number
/// of minutes dividing 24 hours; [`Error::InvalidInput`] for a glucose value
/// that is not finite.
pub fn agp_profile(
    samples: &[Sample],
    slot: TimeDelta,
    utc_offset: FixedOffset,
) -> Result<Vec<AgpSlot>> {
    let slot_s = slot.num_seconds();
    if slot_s <= 0 || slot_s % 60 != 0 || DAY_S % slot_s != 0 || slot.subsec_nanos() != 0 {
        return Err(Error::InvalidSetting {
            setting: "slot",
            reason: format!(
                "the AGP slot must be a whole number of minutes dividing 24 h, got {} s",
                slot_s
            ),
        });
    }
    if samples.iter().any(|s| !s.value.is_finite()) {
        return Err(Error::InvalidInput(
            "AGP needs finite glucose values".into(),
        ));
    }
    let n_slots = (DAY_S / slot_s) as usize;
    let mut bins: Vec<Vec<f64>> = vec![Vec::new(); n_slots];
    for s in samples {
        let local = s.time.with_timezone(&utc_offset);
        let second_of_day = i64::from(local.num_seconds_from_midnight());
        let idx = (second_of_day / slot_s) as usize;
        if let Some(bin) = bins.get_mut(idx) {
            bin.push(s.value);
        }
    }
    Ok(bins
        .into_iter()
        .enumerate()
        .map(|(i, mut values)| {
            values.sort_by(f64::total_cmp);
            let percentiles = if values.is_empty() {
                None
            } else {
                let mut out = [0.0; 5];
                for (o, p) in out.iter_mut().zip(AGP_LEVELS) {
                    // Non-empty and p within 0..=100, so always Some.
                    *o = percentile(&values, p).unwrap_or(f64::NAN);
                }
                Some(out)
            };
            AgpSlot {
                start_minute: (i as i64 * slot_s / 60) as u32,
                readings: values.len(),
                percentiles,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn at(rfc3339: &str, value: f64) -> Sample {
        Sample {
            time: DateTime::parse_from_rfc3339(rfc3339)
                .unwrap()
                .with_timezone(&Utc),
            value,
        }
    }

    #[test]
    fn percentile_interpolates_between_closest_ranks() {
        let x = [10.0, 20.0, 30.0, 40.0, 50.0];
        // h = 4 × p/100: p=5 → h=0.2 → 10 + 0.2×10 = 12.
        assert_eq!(percentile(&x, 5.0), Some(12.0));
        assert_eq!(percentile(&x, 25.0), Some(20.0));
        assert_eq!(percentile(&x, 50.0), Some(30.0));
        // p=95 → h=3.8 → 40 + 0.8×10 = 48.
        assert!((percentile(&x, 95.0).unwrap() - 48.0).abs() < 1e-12);
        assert_eq!(percentile(&x, 100.0), Some(50.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&x, 101.0), None);
    }

    #[test]
    fn readings_of_different_days_share_their_time_of_day_slot() {
        let s = [
            at("2026-01-05T08:01:00Z", 100.0),
            at("2026-01-06T08:14:00Z", 140.0),
            at("2026-01-07T08:07:00Z", 120.0),
            at("2026-01-07T08:15:00Z", 300.0),
        ];
        let agp = agp_profile(
            &s,
            TimeDelta::minutes(15),
            FixedOffset::east_opt(0).unwrap(),
        )
        .unwrap();
        assert_eq!(agp.len(), 96);
        let slot = agp[32]; // 08:00 is slot 32 of 15-minute slots.
        assert_eq!(slot.start_minute, 480);
        assert_eq!(slot.readings, 3);
        // Sorted 100, 120, 140: h = 2p/100 → p5: 100 + 0.1×20 = 102;
        // p25: 110; p50: 120; p75: 130; p95: 120 + 0.9×20 = 138.
        let p = slot.percentiles.unwrap();
        let want = [102.0, 110.0, 120.0, 130.0, 138.0];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{p:?}");
        }
        assert_eq!(agp[33].readings, 1);
        assert_eq!(agp[31].percentiles, None);
    }

    #[test]
    fn slots_follow_the_patients_local_clock() {
        // 23:30 UTC is 01:30 at UTC+2.
        let s = [at("2026-01-05T23:30:00Z", 90.0)];
        let agp = agp_profile(
            &s,
            TimeDelta::minutes(30),
            FixedOffset::east_opt(2 * 3600).unwrap(),
        )
        .unwrap();
        assert_eq!(agp[3].readings, 1);
        assert_eq!(agp[3].start_minute, 90);
        assert_eq!(agp[47].readings, 0);
    }

    #[test]
    fn slot_width_must_divide_the_day() {
        let utc = FixedOffset::east_opt(0).unwrap();
        for bad in [
            TimeDelta::zero(),
            TimeDelta::minutes(7),
            TimeDelta::seconds(90),
            TimeDelta::minutes(-15),
        ] {
            assert!(matches!(
                agp_profile(&[], bad, utc),
                Err(Error::InvalidSetting {
                    setting: "slot",
                    ..
                })
            ));
        }
    }
}

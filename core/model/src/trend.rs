//! The glucose trend derived from the glucose series: a rate of change in
//! mg/dL per minute and its arrow.
//!
//! Place in the data flow: the cloud's read side (Nightscout `direction`,
//! the dashboard's arrow, the readings API's `glucose_trend`). The phone
//! stopped uploading the sensor's own trend stream (issue 14: about 2 KB
//! per patient-day), so every reader derives the trend here from the
//! resolved glucose it already holds, held-back readings reconstructed.
//!
//! The rule, one for every reader:
//!
//! - **Rate**: the least-squares slope of the readings measured in the
//!   [`WINDOW`] (15 minutes) up to and including the reading, in mg/dL per
//!   minute. A least-squares line over several readings rather than the
//!   difference of the last two, so one noisy reading does not flip the
//!   arrow; 15 minutes because that is the span the sensor makers' arrows
//!   describe ("the last 15 minutes"), and the span the phone's fast-fall
//!   rule already uses. A rate needs at least [`MIN_READINGS`] readings
//!   spanning at least [`MIN_SPAN`] (three 5-minute readings): right after
//!   a gap or a sensor start there is no rate, as on a receiver.
//! - **Arrow**: Dexcom's published thresholds (G6/G7 user guides): steady
//!   under 1 mg/dL/min either way, 45° from 1 to 2, one arrow from 2 to 3,
//!   two arrows beyond 3. Nightscout names the same seven arrows
//!   (`Flat`, `FortyFiveUp`, `SingleUp`, `DoubleUp`, ...); xDrip+ computes
//!   its own with other cut points, but uploaders send names, not cut
//!   points, so the Dexcom ones are the ones clinicians read on receivers.

use chrono::TimeDelta;

use crate::reading::Sample;

/// The span of readings a rate is fitted over, ending at the reading.
pub const WINDOW: TimeDelta = TimeDelta::minutes(15);

/// The shortest span of readings in the window that gives a rate.
pub const MIN_SPAN: TimeDelta = TimeDelta::minutes(10);

/// The fewest readings in the window that give a rate.
pub const MIN_READINGS: usize = 3;

/// One of the seven trend arrows, by rate of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arrow {
    /// Rising 3 mg/dL/min or faster.
    DoubleUp,
    /// Rising 2 to 3 mg/dL/min.
    SingleUp,
    /// Rising 1 to 2 mg/dL/min.
    FortyFiveUp,
    /// Changing less than 1 mg/dL/min either way.
    Flat,
    /// Falling 1 to 2 mg/dL/min.
    FortyFiveDown,
    /// Falling 2 to 3 mg/dL/min.
    SingleDown,
    /// Falling 3 mg/dL/min or faster.
    DoubleDown,
}

impl Arrow {
    /// The arrow for `rate_per_min` (mg/dL per minute), by Dexcom's
    /// thresholds; a rate that is not a number has no arrow.
    pub fn of(rate_per_min: f64) -> Option<Arrow> {
        if !rate_per_min.is_finite() {
            return None;
        }
        Some(match rate_per_min {
            r if r >= 3.0 => Arrow::DoubleUp,
            r if r >= 2.0 => Arrow::SingleUp,
            r if r >= 1.0 => Arrow::FortyFiveUp,
            r if r > -1.0 => Arrow::Flat,
            r if r > -2.0 => Arrow::FortyFiveDown,
            r if r > -3.0 => Arrow::SingleDown,
            _ => Arrow::DoubleDown,
        })
    }

    /// Nightscout's name for the arrow (its `direction` field).
    pub fn nightscout_name(self) -> &'static str {
        match self {
            Arrow::DoubleUp => "DoubleUp",
            Arrow::SingleUp => "SingleUp",
            Arrow::FortyFiveUp => "FortyFiveUp",
            Arrow::Flat => "Flat",
            Arrow::FortyFiveDown => "FortyFiveDown",
            Arrow::SingleDown => "SingleDown",
            Arrow::DoubleDown => "DoubleDown",
        }
    }
}

/// The derived rate (mg/dL per minute) at `samples[index]`, from the
/// readings of the [`WINDOW`] ending at it; `samples` in time order. `None`
/// when the window holds too little (see the module's rule), when `index`
/// is past the end, or when the readings are not numbers.
pub fn rate_at(samples: &[Sample], index: usize) -> Option<f64> {
    let last = samples.get(index)?;
    let upto = samples.get(..=index)?;
    // chrono's `-` panics past its range; the earliest time has no window.
    let from = match last.time.checked_sub_signed(WINDOW) {
        Some(start) => upto.partition_point(|s| s.time < start),
        None => 0,
    };
    let window = upto.get(from..)?;
    let first = window.first()?;
    if window.len() < MIN_READINGS || last.time - first.time < MIN_SPAN {
        return None;
    }
    // `sxx` is positive once the span is, but a NaN reading is not a rate.
    slope_mg_dl_per_min(window.iter(), MIN_READINGS).filter(|r| r.is_finite())
}

/// Least-squares slope of `samples` in mg/dL per minute, or `None` with fewer
/// than `min_readings` samples (and always with fewer than two) or when all
/// share one time.
pub fn slope_mg_dl_per_min<'a>(
    samples: impl Iterator<Item = &'a Sample> + Clone,
    min_readings: usize,
) -> Option<f64> {
    let first = samples.clone().next()?.time;
    let minutes = |s: &Sample| (s.time - first).num_milliseconds() as f64 / 60_000.0;
    let (mut n, mut sx, mut sy) = (0usize, 0.0, 0.0);
    for s in samples.clone() {
        n += 1;
        sx += minutes(s);
        sy += s.value;
    }
    if n < min_readings.max(2) {
        return None;
    }
    let (mx, my) = (sx / n as f64, sy / n as f64);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for s in samples {
        let dx = minutes(s) - mx;
        sxy += dx * (s.value - my);
        sxx += dx * dx;
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

/// [`rate_at`] of every reading of `samples` (time order), in order.
pub fn rates(samples: &[Sample]) -> Vec<Option<f64>> {
    (0..samples.len()).map(|i| rate_at(samples, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default()
    }

    /// 5-minute readings with these values.
    fn series(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Sample {
                time: t0() + TimeDelta::minutes(5 * i as i64),
                value,
            })
            .collect()
    }

    #[test]
    fn a_rising_series_derives_a_rising_arrow() {
        // 10 mg/dL per 5 minutes: 2 mg/dL/min.
        let s = series(&[100.0, 110.0, 120.0, 130.0]);
        let rate = rate_at(&s, 3).unwrap_or(f64::NAN);
        assert!((rate - 2.0).abs() < 1e-9, "{rate}");
        assert_eq!(Arrow::of(rate), Some(Arrow::SingleUp));
    }

    #[test]
    fn a_falling_series_derives_a_falling_arrow() {
        let s = series(&[180.0, 160.0, 140.0, 120.0]);
        let rate = rate_at(&s, 3).unwrap_or(f64::NAN);
        assert!((rate + 4.0).abs() < 1e-9, "{rate}");
        assert_eq!(Arrow::of(rate), Some(Arrow::DoubleDown));
        assert_eq!(Arrow::DoubleDown.nightscout_name(), "DoubleDown");
    }

    #[test]
    fn a_flat_series_with_noise_stays_flat() {
        let s = series(&[120.0, 123.0, 118.0, 121.0]);
        let rate = rate_at(&s, 3).unwrap_or(f64::NAN);
        assert_eq!(Arrow::of(rate), Some(Arrow::Flat), "{rate}");
    }

    #[test]
    fn only_the_last_fifteen_minutes_count() {
        // A fall long ago, flat for the last 15 minutes.
        let s = series(&[300.0, 200.0, 120.0, 120.0, 120.0, 120.0]);
        assert_eq!(rate_at(&s, 5), Some(0.0));
    }

    #[test]
    fn too_few_readings_or_too_short_a_span_give_no_rate() {
        let s = series(&[100.0, 110.0, 120.0]);
        assert_eq!(rate_at(&s, 0), None);
        assert_eq!(rate_at(&s, 1), None);
        assert!(rate_at(&s, 2).is_some());
        assert_eq!(rate_at(&s, 3), None);
        // After a 30-minute gap the window starts again.
        let mut gap = series(&[100.0, 110.0, 120.0]);
        gap.push(Sample {
            time: t0() + TimeDelta::minutes(40),
            value: 130.0,
        });
        assert_eq!(rate_at(&gap, 3), None);
        assert_eq!(rates(&gap).iter().filter(|r| r.is_some()).count(), 1);
    }

    #[test]
    fn a_value_that_is_not_a_number_gives_no_rate_or_arrow() {
        let s = series(&[100.0, f64::NAN, 120.0]);
        assert_eq!(rate_at(&s, 2), None);
        assert_eq!(Arrow::of(f64::NAN), None);
    }

    #[test]
    fn thresholds_are_dexcom_s() {
        let cases = [
            (3.0, Arrow::DoubleUp),
            (2.0, Arrow::SingleUp),
            (1.0, Arrow::FortyFiveUp),
            (0.99, Arrow::Flat),
            (-0.99, Arrow::Flat),
            (-1.0, Arrow::FortyFiveDown),
            (-2.0, Arrow::SingleDown),
            (-3.0, Arrow::DoubleDown),
        ];
        for (rate, arrow) in cases {
            assert_eq!(Arrow::of(rate), Some(arrow), "{rate}");
        }
    }
}

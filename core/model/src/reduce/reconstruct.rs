//! What the cloud does with kept readings: a straight line between them.

use chrono::{DateTime, Utc};

use crate::reading::Sample;

/// The value at `at` on the straight line between the kept readings around
/// it; a kept reading's own value at its time; `None` before the first or
/// after the last kept reading, or when `kept` is empty.
///
/// `kept` must be in time order (as every reducer emits it). This is the
/// reconstruction the reducers' error bound is stated against.
pub fn interpolate(kept: &[Sample], at: DateTime<Utc>) -> Option<f64> {
    let after = kept.partition_point(|s| s.time < at);
    let right = kept.get(after)?;
    if right.time == at {
        return Some(right.value);
    }
    let left = kept.get(after.checked_sub(1)?)?;
    let span = (right.time - left.time).num_nanoseconds()? as f64;
    let part = (at - left.time).num_nanoseconds()? as f64;
    Some(left.value + (right.value - left.value) * (part / span))
}

/// The worst absolute difference between each sample of `full` and the
/// reconstruction from `kept`; `None` when some sample lies outside the
/// kept readings' span (nothing to interpolate from).
pub fn max_error(full: &[Sample], kept: &[Sample]) -> Option<f64> {
    full.iter().try_fold(0.0_f64, |worst, s| {
        interpolate(kept, s.time).map(|v| worst.max((v - s.value).abs()))
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn at(min: i64, value: f64) -> Sample {
        let t0 = DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Sample {
            time: t0 + TimeDelta::minutes(min),
            value,
        }
    }

    #[test]
    fn interpolation_is_exact_at_kept_readings_linear_between_and_absent_outside() {
        let kept = [at(0, 100.0), at(10, 120.0), at(20, 90.0)];
        assert_eq!(interpolate(&kept, at(0, 0.0).time), Some(100.0));
        assert_eq!(interpolate(&kept, at(10, 0.0).time), Some(120.0));
        assert_eq!(interpolate(&kept, at(5, 0.0).time), Some(110.0));
        assert_eq!(interpolate(&kept, at(15, 0.0).time), Some(105.0));
        assert_eq!(interpolate(&kept, at(-1, 0.0).time), None);
        assert_eq!(interpolate(&kept, at(21, 0.0).time), None);
        assert_eq!(interpolate(&[], at(0, 0.0).time), None);
    }

    #[test]
    fn max_error_is_the_worst_miss_or_none_outside_the_kept_span() {
        let kept = [at(0, 100.0), at(10, 120.0)];
        let full = [at(0, 100.0), at(5, 113.0), at(10, 120.0)];
        assert_eq!(max_error(&full, &kept), Some(3.0));
        assert_eq!(max_error(&[at(11, 1.0)], &kept), None);
    }
}

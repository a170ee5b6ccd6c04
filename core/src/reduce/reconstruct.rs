//! What the cloud does with kept readings: a straight line between them.

use chrono::{DateTime, Utc};

use crate::model::Sample;

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

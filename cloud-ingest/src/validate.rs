//! The one validation point: what a reading, alert or heartbeat must look
//! like to be stored, whichever path it arrives on (SDK batch in JSON or
//! binary, alert, heartbeat, Nightscout upload, CSV import), and the only
//! place request times are shifted.
//!
//! Decisions: a time is plausible between [`EARLIEST`] and the server's
//! clock plus a configured skew ([`crate::Limits::max_future_skew`]); a
//! value is plausible when finite and within [`plausible`] for its stream.
//! Time arithmetic on anything a client sent goes through [`shift`], which
//! answers a typed 400 instead of panicking at chrono's range edges (years
//! beyond ±262,000 parse but cannot be moved).

use chrono::{DateTime, TimeDelta, Utc};
use vigil_model::reading::Stream;
use vigil_model::wire::RejectReason;

use crate::error::{Error, Result};

/// No reading, alert or heartbeat is dated before this (2000-01-01T00:00Z):
/// no CGM or phone of this protocol existed, so an earlier time is a broken
/// clock, not history.
pub const EARLIEST: DateTime<Utc> = match DateTime::from_timestamp(946_684_800, 0) {
    Some(t) => t,
    // 946,684,800 s is within chrono's range; this arm cannot run, and a
    // const context cannot unwrap.
    None => DateTime::<Utc>::UNIX_EPOCH,
};

/// Lowest and highest glucose a CGM reports, mg/dL; outside is a typo.
pub const PLAUSIBLE_MG_DL: (f64, f64) = (10.0, 1000.0);

/// Values no living patient (or working sensor) produces, per stream, in
/// the stream's canonical unit. Outside: `impossible_value`.
pub fn plausible(stream: Stream) -> std::ops::RangeInclusive<f64> {
    match stream {
        Stream::Glucose | Stream::MeterGlucose => 1.0..=1500.0,
        // Current SDKs keep the sensor's trend on the phone (the service
        // derives it from glucose); SDKs before issue 14 still send it,
        // and it is still stored for them.
        Stream::GlucoseTrend => -50.0..=50.0,
        Stream::HeartRate | Stream::PulseRate => 15.0..=350.0,
        Stream::RrInterval => 0.1..=5.0,
        Stream::EnergyExpended => 0.0..=100_000.0,
        Stream::Spo2 => 1.0..=100.0,
        Stream::Battery => 0.0..=100.0,
    }
}

/// Why a value of `stream` is refused, if it is: not finite or outside
/// [`plausible`].
pub fn check_value(stream: Stream, value: f64) -> Option<RejectReason> {
    (!(value.is_finite() && plausible(stream).contains(&value)))
        .then_some(RejectReason::ImpossibleValue)
}

/// Why a (clock-corrected) time is refused, if it is: after `now` plus
/// `max_future`, or before [`EARLIEST`].
pub fn check_time(
    time: DateTime<Utc>,
    now: DateTime<Utc>,
    max_future: TimeDelta,
) -> Option<RejectReason> {
    match now.checked_add_signed(max_future) {
        Some(limit) if time <= limit => (time < EARLIEST).then_some(RejectReason::TooOld),
        // A server clock at chrono's edge cannot happen; refusing is safe.
        _ => Some(RejectReason::FutureTime),
    }
}

/// Why one reading is refused, if it is: its value first, then its time.
pub fn check_reading(
    stream: Stream,
    time: DateTime<Utc>,
    value: f64,
    now: DateTime<Utc>,
    max_future: TimeDelta,
) -> Option<RejectReason> {
    check_value(stream, value).or_else(|| check_time(time, now, max_future))
}

/// The reason as the wire spells it (`future_time`, …), for error details.
pub fn reason_name(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::ImpossibleValue => "impossible_value",
        RejectReason::FutureTime => "future_time",
        RejectReason::TooOld => "too_old",
        RejectReason::Conflict => "conflict",
        RejectReason::Unreconstructible => "unreconstructible",
        RejectReason::Unknown => "unknown",
    }
}

/// `time + by`, or a 400 naming `field` when the sum leaves chrono's range
/// (a client may send any representable time).
pub fn shift(time: DateTime<Utc>, by: TimeDelta, field: &str) -> Result<DateTime<Utc>> {
    time.checked_add_signed(by)
        .ok_or_else(|| Error::InvalidInput(format!("`{field}` is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_2000_or_past_the_skew_are_refused_with_their_reason() {
        let now = Utc::now();
        let skew = TimeDelta::minutes(5);
        assert_eq!(check_time(now, now, skew), None);
        assert_eq!(check_time(EARLIEST, now, skew), None);
        assert_eq!(
            check_time(EARLIEST - TimeDelta::seconds(1), now, skew),
            Some(RejectReason::TooOld)
        );
        assert_eq!(
            check_time(now + TimeDelta::minutes(6), now, skew),
            Some(RejectReason::FutureTime)
        );
        assert_eq!(
            check_time(DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MAX_UTC, skew),
            Some(RejectReason::FutureTime)
        );
    }

    #[test]
    fn non_finite_and_impossible_values_are_refused() {
        for v in [f64::NAN, f64::INFINITY, -1.0, 2000.0] {
            assert_eq!(
                check_value(Stream::Glucose, v),
                Some(RejectReason::ImpossibleValue)
            );
        }
        assert_eq!(check_value(Stream::Glucose, 100.0), None);
        assert_eq!(
            check_value(Stream::Spo2, 101.0),
            Some(RejectReason::ImpossibleValue)
        );
    }

    #[test]
    fn shifting_past_chronos_range_is_a_typed_error_not_a_panic() {
        assert!(matches!(
            shift(DateTime::<Utc>::MIN_UTC, -TimeDelta::days(1), "to"),
            Err(Error::InvalidInput(_))
        ));
        assert!(shift(DateTime::<Utc>::MAX_UTC, TimeDelta::milliseconds(1), "to").is_err());
        assert!(shift(EARLIEST, TimeDelta::days(1), "to").is_ok());
    }
}

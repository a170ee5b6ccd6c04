//! Turning a CGM's time offsets into absolute UTC times.
//!
//! A CGM record carries minutes since its session started; the session
//! start is the CGM Session Start Time, in the sensor's local time with its
//! time zone and DST offset. The phone's clock is the reference: reading the
//! sensor's current time offset (CGM Status) at a known phone time shows how
//! far the sensor's clock is off. Small differences are within the one-
//! minute resolution of time offsets and are only recorded; a larger drift
//! is recorded and corrected, fixed once per session so a session's times
//! never move between connections.

use chrono::{DateTime, TimeDelta, Utc};

use crate::codec::cgm::CgmSessionStartTime;

/// A drift smaller than this is resolution noise, not a clock error.
pub const DRIFT_CORRECTION_THRESHOLD: TimeDelta = TimeDelta::minutes(2);

/// Where a sensor session sits on the phone's time line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// Stable session identifier: the session start per the sensor, Unix
    /// seconds (what a dedupe key and a gap refer to).
    pub session: i64,
    /// Session start on the phone's clock (drift corrected).
    pub start: DateTime<Utc>,
    /// Sensor clock minus phone clock at the time of the reading.
    pub drift: TimeDelta,
}

impl Anchor {
    /// The absolute time of a record `offset_min` minutes into the session.
    pub fn time_of(&self, offset_min: u64) -> DateTime<Utc> {
        let minutes = i64::try_from(offset_min).unwrap_or(i64::MAX / 120);
        self.start + TimeDelta::minutes(minutes)
    }
}

/// Anchors a session from its Session Start Time, the sensor's current time
/// offset (`sensor_offset_min`, from CGM Status) and the phone's clock.
///
/// When the start time's date, time zone or DST is unknown, the phone's
/// clock alone places the session (start = now − current offset) and the
/// drift is taken as zero, since nothing else can measure it.
pub fn anchor(
    sst: &CgmSessionStartTime,
    sensor_offset_min: u16,
    phone_now: DateTime<Utc>,
) -> Anchor {
    let elapsed = TimeDelta::minutes(i64::from(sensor_offset_min));
    match sst.to_utc() {
        Some(sensor_start) => {
            // The current offset is whole minutes, floored: the sensor's
            // "now" lies in (start + k, start + k + 1 min]; take the middle.
            let sensor_now = sensor_start + elapsed + TimeDelta::seconds(30);
            let drift = sensor_now - phone_now;
            let start = if drift.abs() >= DRIFT_CORRECTION_THRESHOLD {
                sensor_start - drift
            } else {
                sensor_start
            };
            Anchor {
                session: sensor_start.timestamp(),
                start,
                drift,
            }
        }
        None => {
            let start = phone_now - elapsed;
            Anchor {
                // Whole minutes, so reconnects within the session agree.
                session: start.timestamp() / 60 * 60,
                start,
                drift: TimeDelta::zero(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::cgm::{DateTime as BtDateTime, DstOffset, TimeZone};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sst(h: u8, m: u8, tz: i8, dst: DstOffset) -> CgmSessionStartTime {
        CgmSessionStartTime {
            start: BtDateTime {
                year: 2026,
                month: 3,
                day: 29,
                hours: h,
                minutes: m,
                seconds: 0,
            },
            time_zone: TimeZone::from_raw(tz).unwrap(),
            dst,
            crc: None,
        }
    }

    #[test]
    fn local_start_time_with_zone_and_dst_maps_to_utc() {
        // 10:00 local at UTC+1 with DST (+1 h) is 08:00 UTC.
        let a = anchor(
            &sst(10, 0, 4, DstOffset::OneHour),
            90,
            utc("2026-03-29T09:30:20Z"),
        );
        assert_eq!(a.start, utc("2026-03-29T08:00:00Z"));
        assert_eq!(a.time_of(5), utc("2026-03-29T08:05:00Z"));
        assert!(a.drift.abs() < TimeDelta::seconds(31));
    }

    #[test]
    fn a_sensor_clock_minutes_ahead_is_recorded_and_corrected() {
        // The sensor thinks the session began 08:07 UTC; it really began at
        // 08:00 (its clock is 7 minutes fast).
        let a = anchor(
            &sst(10, 7, 4, DstOffset::OneHour),
            90,
            utc("2026-03-29T09:30:20Z"),
        );
        assert!((a.drift - TimeDelta::minutes(7)).abs() <= TimeDelta::seconds(30));
        assert!((a.start - utc("2026-03-29T08:00:00Z")).abs() <= TimeDelta::seconds(30));
    }

    #[test]
    fn an_unknown_time_zone_falls_back_to_the_phone_clock() {
        let mut s = sst(10, 0, 4, DstOffset::OneHour);
        s.time_zone = TimeZone::UNKNOWN;
        let a = anchor(&s, 90, utc("2026-03-29T09:30:00Z"));
        assert_eq!(a.start, utc("2026-03-29T08:00:00Z"));
        assert_eq!(a.drift, TimeDelta::zero());
    }
}

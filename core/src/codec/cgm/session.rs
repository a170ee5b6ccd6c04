//! CGM Session Start Time (0x2AAA, CGMS 1.0.1 §3.4) and CGM Session Run Time
//! (0x2AAB, CGMS §3.5): the anchor that turns a record's time offset into
//! absolute time, and the expected session length.
//!
//! Session Start Time is a Date Time (year uint16, month, day, hours,
//! minutes, seconds), a Time Zone (sint8, 15-minute units from UTC) and a DST
//! Offset (uint8 code), then the E2E-CRC when supported. The Date Time
//! allows 0 for an unknown year, month or day; the Time Zone −128 and DST
//! code 255 mean unknown. Values outside the ranges the characteristic
//! definitions give are reserved, so they are errors, not clamped.
//!
//! [`DateTime`] is shared with the Glucose Service's RACP filter (User
//! Facing Time), which uses the same seven bytes.

use chrono::{TimeDelta, Utc};

use super::{append_crc, read_checked_crc};
use crate::Result;
use crate::codec::bytes::{Reader, Writer};
pub use crate::codec::date_time::DateTime;
use crate::codec::date_time::DateTimeFields;

/// Field names errors use for the session's start time.
const START: DateTimeFields = DateTimeFields {
    year: "year",
    month: "month",
    day: "day",
    hours: "hours",
    minutes: "minutes",
    seconds: "seconds",
};

/// Time Zone: offset from UTC in 15-minute units (standard time, without
/// DST), −48..=+56, or unknown (−128 on the wire).
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZone(i8);

impl TimeZone {
    /// Unknown time zone.
    pub const UNKNOWN: Self = Self(-128);

    /// A time zone of `quarters` × 15 minutes; `None` outside −48..=+56
    /// (−128, the unknown marker, is accepted too).
    pub const fn from_raw(quarters: i8) -> Option<Self> {
        if quarters == -128 || (quarters >= -48 && quarters <= 56) {
            Some(Self(quarters))
        } else {
            None
        }
    }

    /// The value as it travels.
    pub const fn raw(self) -> i8 {
        self.0
    }

    /// The offset from UTC in minutes, or `None` when unknown.
    pub fn offset_minutes(self) -> Option<i32> {
        (self.0 != -128).then(|| i32::from(self.0) * 15)
    }
}

/// DST Offset code.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstOffset {
    /// Standard time (0).
    Standard,
    /// Half an hour daylight time, +0.5 h (2).
    HalfHour,
    /// Daylight time, +1 h (4).
    OneHour,
    /// Double daylight time, +2 h (8).
    TwoHours,
    /// DST offset unknown (255).
    Unknown,
}

impl DstOffset {
    /// The variant for a code; `None` for a reserved code.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Standard),
            2 => Some(Self::HalfHour),
            4 => Some(Self::OneHour),
            8 => Some(Self::TwoHours),
            255 => Some(Self::Unknown),
            _ => None,
        }
    }

    /// The code as it travels.
    pub const fn code(self) -> u8 {
        match self {
            Self::Standard => 0,
            Self::HalfHour => 2,
            Self::OneHour => 4,
            Self::TwoHours => 8,
            Self::Unknown => 255,
        }
    }

    /// The offset in minutes, or `None` when unknown.
    pub fn minutes(self) -> Option<i32> {
        match self {
            Self::Unknown => None,
            // The code counts quarter hours.
            other => Some(i32::from(other.code()) * 15),
        }
    }
}

/// CGM Session Start Time (0x2AAA).
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CgmSessionStartTime {
    /// Local date and time at which the session started.
    pub start: DateTime,
    /// Time zone of `start`.
    pub time_zone: TimeZone,
    /// Daylight saving offset in force at `start`.
    pub dst: DstOffset,
    /// E2E-CRC as carried; on encode `Some(_)` means "append it".
    pub crc: Option<u16>,
}

impl CgmSessionStartTime {
    /// Characteristic name carried by errors.
    pub const CHARACTERISTIC: &'static str = "CGM Session Start Time";

    /// Decodes the value; `crc` says whether the sensor supports the E2E-CRC.
    pub fn decode(bytes: &[u8], crc: bool) -> Result<Self> {
        let mut r = Reader::new(Self::CHARACTERISTIC, bytes);
        let start = DateTime::read(&mut r, START)?;
        let offset = r.offset();
        let tz = r.i8("time_zone")?;
        // The reserved value is reported as its two's-complement byte.
        let time_zone = TimeZone::from_raw(tz)
            .ok_or_else(|| r.reserved("time_zone", offset, u32::from(tz as u8)))?;
        let offset = r.offset();
        let code = r.u8("dst_offset")?;
        let dst = DstOffset::from_code(code)
            .ok_or_else(|| r.reserved("dst_offset", offset, u32::from(code)))?;
        let crc = crc
            .then(|| read_checked_crc(&mut r, bytes, 0))
            .transpose()?;
        r.finish()?;
        Ok(Self {
            start,
            time_zone,
            dst,
            crc,
        })
    }

    /// Encodes the value; fails only for a Date Time out of range.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut w = Writer::new();
        self.start.write(&mut w, Self::CHARACTERISTIC, START)?;
        w.i8(self.time_zone.raw()).u8(self.dst.code());
        if self.crc.is_some() {
            append_crc(&mut w);
        }
        Ok(w.into_vec())
    }

    /// The session start as a UTC instant: local time minus time zone minus
    /// DST. `None` when the date, the time zone or the DST offset is unknown
    /// or the date does not exist.
    pub fn to_utc(&self) -> Option<chrono::DateTime<Utc>> {
        let local = self.start.to_naive()?;
        let offset = self.time_zone.offset_minutes()? + self.dst.minutes()?;
        local
            .checked_sub_signed(TimeDelta::minutes(i64::from(offset)))
            .map(|t| t.and_utc())
    }
}

/// CGM Session Run Time (0x2AAB): the expected run time of the session.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CgmSessionRunTime {
    /// Expected session run time in hours.
    pub run_time_hours: u16,
    /// E2E-CRC as carried; on encode `Some(_)` means "append it".
    pub crc: Option<u16>,
}

impl CgmSessionRunTime {
    /// Characteristic name carried by errors.
    pub const CHARACTERISTIC: &'static str = "CGM Session Run Time";

    /// Decodes the value; `crc` says whether the sensor supports the E2E-CRC.
    pub fn decode(bytes: &[u8], crc: bool) -> Result<Self> {
        let mut r = Reader::new(Self::CHARACTERISTIC, bytes);
        let run_time_hours = r.u16("run_time")?;
        let crc = crc
            .then(|| read_checked_crc(&mut r, bytes, 0))
            .transpose()?;
        r.finish()?;
        Ok(Self {
            run_time_hours,
            crc,
        })
    }

    /// Encodes the value, appending the computed CRC when `crc` is `Some`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u16(self.run_time_hours);
        if self.crc.is_some() {
            append_crc(&mut w);
        }
        w.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::codec::crc::e2e_crc;
    use chrono::TimeZone as _;
    use proptest::prelude::*;

    // CGMS §3.4: Date Time (7), Time Zone (sint8), DST Offset (uint8).
    #[test]
    fn start_time_maps_to_utc_through_zone_and_dst() {
        // 2024-06-01 10:30:00 local, UTC+1 (4 quarters), DST +1h (code 4).
        let bytes = [0xE8, 0x07, 6, 1, 10, 30, 0, 4, 4];
        let s = CgmSessionStartTime::decode(&bytes, false).unwrap();
        assert_eq!(s.time_zone.offset_minutes(), Some(60));
        assert_eq!(s.dst, DstOffset::OneHour);
        assert_eq!(
            s.to_utc(),
            Some(Utc.with_ymd_and_hms(2024, 6, 1, 8, 30, 0).unwrap())
        );
        assert_eq!(s.encode().unwrap(), bytes);
    }

    #[test]
    fn negative_zone_and_half_hour_dst_shift_forward_to_utc() {
        // 2023-12-31 23:00 local at UTC-3:30 (-14 quarters), DST +0.5h.
        let bytes = [0xE7, 0x07, 12, 31, 23, 0, 0, (-14i8) as u8, 2];
        let s = CgmSessionStartTime::decode(&bytes, false).unwrap();
        assert_eq!(
            s.to_utc(),
            Some(Utc.with_ymd_and_hms(2024, 1, 1, 2, 0, 0).unwrap())
        );
    }

    #[test]
    fn unknown_parts_give_no_utc_instant() {
        let unknown_year = [0, 0, 6, 1, 10, 30, 0, 4, 4];
        let unknown_zone = [0xE8, 0x07, 6, 1, 10, 30, 0, 0x80, 0];
        let unknown_dst = [0xE8, 0x07, 6, 1, 10, 30, 0, 4, 255];
        for bytes in [unknown_year, unknown_zone, unknown_dst] {
            let s = CgmSessionStartTime::decode(&bytes, false).unwrap();
            assert_eq!(s.to_utc(), None, "{bytes:?}");
            assert_eq!(s.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn a_day_that_does_not_exist_is_inconsistent_not_guessed() {
        // 31 February 2024: every field is in range, the date is not.
        let impossible_date = [0xE8, 0x07, 2, 31, 10, 30, 0, 4, 0];
        assert!(matches!(
            CgmSessionStartTime::decode(&impossible_date, false),
            Err(Error::Inconsistent {
                field: "day",
                offset: 3,
                ..
            })
        ));
    }

    #[test]
    fn reserved_date_zone_and_dst_values_name_their_field() {
        let cases: [([u8; 9], &str, usize, u32); 5] = [
            ([0xE8, 0x07, 13, 1, 10, 30, 0, 4, 4], "month", 2, 13),
            ([0xE8, 0x07, 6, 1, 24, 30, 0, 4, 4], "hours", 4, 24),
            ([0x01, 0x00, 6, 1, 10, 30, 0, 4, 4], "year", 0, 1),
            ([0xE8, 0x07, 6, 1, 10, 30, 0, 57, 4], "time_zone", 7, 57),
            ([0xE8, 0x07, 6, 1, 10, 30, 0, 4, 1], "dst_offset", 8, 1),
        ];
        for (bytes, field, offset, value) in cases {
            assert_eq!(
                CgmSessionStartTime::decode(&bytes, false),
                Err(Error::Reserved {
                    characteristic: "CGM Session Start Time",
                    field,
                    offset,
                    value
                })
            );
        }
    }

    #[test]
    fn start_time_crc_is_checked() {
        let mut bytes = vec![0xE8, 0x07, 6, 1, 10, 30, 0, 4, 4];
        let crc = e2e_crc(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let s = CgmSessionStartTime::decode(&bytes, true).unwrap();
        assert_eq!(s.crc, Some(crc));
        assert_eq!(s.encode().unwrap(), bytes);
        bytes[10] ^= 0xFF;
        assert!(matches!(
            CgmSessionStartTime::decode(&bytes, true),
            Err(Error::CrcMismatch { offset: 9, .. })
        ));
    }

    #[test]
    fn encoding_an_out_of_range_date_is_refused() {
        let s = CgmSessionStartTime {
            start: DateTime {
                year: 2024,
                month: 1,
                day: 1,
                hours: 0,
                minutes: 60,
                seconds: 0,
            },
            time_zone: TimeZone::UNKNOWN,
            dst: DstOffset::Unknown,
            crc: None,
        };
        assert!(matches!(
            s.encode(),
            Err(Error::Unencodable {
                field: "minutes",
                ..
            })
        ));
    }

    // CGMS §3.5: Session Run Time (uint16 hours), then the optional CRC.
    #[test]
    fn run_time_decodes_hours_and_checks_crc() {
        let bytes = [0x50, 0x01];
        assert_eq!(
            CgmSessionRunTime::decode(&bytes, false)
                .unwrap()
                .run_time_hours,
            336
        );
        let mut with = bytes.to_vec();
        with.extend_from_slice(&e2e_crc(&bytes).to_le_bytes());
        let rt = CgmSessionRunTime::decode(&with, true).unwrap();
        assert_eq!(rt.encode(), with);
        with[0] = 0x51;
        assert!(matches!(
            CgmSessionRunTime::decode(&with, true),
            Err(Error::CrcMismatch { offset: 2, .. })
        ));
        assert!(matches!(
            CgmSessionRunTime::decode(&bytes, true),
            Err(Error::Truncated {
                field: "e2e_crc",
                offset: 2,
                ..
            })
        ));
    }

    fn date_time() -> impl Strategy<Value = DateTime> {
        (
            prop_oneof![Just(0u16), 1582u16..=9999],
            0u8..=12,
            // Every month has day 28; later days are tested by hand.
            0u8..=28,
            0u8..=23,
            0u8..=59,
            0u8..=59,
        )
            .prop_map(|(year, month, day, hours, minutes, seconds)| DateTime {
                year,
                month,
                day,
                hours,
                minutes,
                seconds,
            })
    }

    fn time_zone() -> impl Strategy<Value = TimeZone> {
        prop_oneof![Just(-128i8), -48i8..=56].prop_map(|q| TimeZone::from_raw(q).unwrap())
    }

    fn dst() -> impl Strategy<Value = DstOffset> {
        prop::sample::select(vec![0u8, 2, 4, 8, 255]).prop_map(|c| DstOffset::from_code(c).unwrap())
    }

    proptest! {
        #[test]
        fn start_time_round_trips(start in date_time(), tz in time_zone(), dst in dst(), crc in any::<bool>()) {
            let s = CgmSessionStartTime { start, time_zone: tz, dst, crc: crc.then_some(0) };
            let bytes = s.encode().unwrap();
            let back = CgmSessionStartTime::decode(&bytes, crc).unwrap();
            let expected_crc = crc.then(|| e2e_crc(&bytes[..9]));
            prop_assert_eq!(back, CgmSessionStartTime { crc: expected_crc, ..s });
        }

        #[test]
        fn utc_instant_plus_zone_and_dst_gives_back_local_time(start in date_time(), tz in time_zone(), dst in dst()) {
            let s = CgmSessionStartTime { start, time_zone: tz, dst, crc: None };
            if let Some(utc) = s.to_utc() {
                let shift = tz.offset_minutes().unwrap() + dst.minutes().unwrap();
                let local = utc.naive_utc() + TimeDelta::minutes(i64::from(shift));
                prop_assert_eq!(Some(local), start.to_naive());
            }
        }

        #[test]
        fn run_time_round_trips(h in any::<u16>(), crc in any::<bool>()) {
            let rt = CgmSessionRunTime { run_time_hours: h, crc: crc.then_some(0) };
            let bytes = rt.encode();
            let back = CgmSessionRunTime::decode(&bytes, crc).unwrap();
            prop_assert_eq!(back.run_time_hours, h);
            prop_assert_eq!(back.encode(), bytes);
        }

        #[test]
        fn session_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..14), crc in any::<bool>()) {
            if let Ok(s) = CgmSessionStartTime::decode(&bytes, crc) {
                prop_assert_eq!(s.encode().unwrap(), bytes.clone());
            }
            if let Ok(rt) = CgmSessionRunTime::decode(&bytes, crc) {
                prop_assert_eq!(rt.encode(), bytes);
            }
        }
    }
}

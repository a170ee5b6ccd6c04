//! The Bluetooth Date Time (the seven bytes of characteristic 0x2A08):
//! local wall-clock time as a device knows it, shared by the CGM Session
//! Start Time, the Glucose Measurement's base time and the Glucose Service's
//! RACP User Facing Time filter.
//!
//! Every field is checked on the way in and out: a value outside its range
//! is reserved (an error naming the field), and a known day that does not
//! exist in its month (31 April) is inconsistent. Zero in year, month or day
//! means "not known", and such a time has no calendar value.

use chrono::{NaiveDate, NaiveDateTime};

use super::bytes::{Reader, Writer};
use crate::{Error, Result};

/// A Date Time as GATT sends it (the Date Time characteristic 0x2A08 layout,
/// as in the Base Time field of GLS 1.0 Glucose Measurement): the meter's
/// local calendar time, where 0 in year, month or day means "not known".
///
/// Decoding guarantees every field is in its specified range (year 0 or
/// 1582..=9999, month 0..=12, day 0..=31, hours 0..=23, minutes and seconds
/// 0..=59) and that a known day exists in its month.
/// Ordering compares fields from year to seconds, which is chronological
/// for two fully known times (RACP range filters rely on it).
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateTime {
    /// Gregorian year, 1582..=9999, or 0 when not known.
    pub year: u16,
    /// Month 1..=12, or 0 when not known.
    pub month: u8,
    /// Day of month 1..=31, or 0 when not known.
    pub day: u8,
    /// Hours past midnight, 0..=23.
    pub hours: u8,
    /// Minutes, 0..=59.
    pub minutes: u8,
    /// Seconds, 0..=59.
    pub seconds: u8,
}

/// Why a [`DateTime`] is not valid: the field, its offset inside the 7
/// bytes, and whether it is a reserved value or a contradiction.
enum DateTimeProblem {
    Reserved(&'static str, usize, u32),
    Inconsistent(&'static str, usize, &'static str),
}

fn is_leap(year: u16) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

impl DateTime {
    /// The time as a [`NaiveDateTime`], or `None` when year, month or day
    /// is not known (or the fields are out of range, which a decoded value
    /// never is).
    pub fn to_naive(&self) -> Option<NaiveDateTime> {
        if self.year == 0 || self.month == 0 || self.day == 0 {
            return None;
        }
        NaiveDate::from_ymd_opt(
            i32::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        )?
        .and_hms_opt(
            u32::from(self.hours),
            u32::from(self.minutes),
            u32::from(self.seconds),
        )
    }

    fn problem(&self, f: DateTimeFields) -> Option<DateTimeProblem> {
        if self.year != 0 && !(1582..=9999).contains(&self.year) {
            return Some(DateTimeProblem::Reserved(f.year, 0, u32::from(self.year)));
        }
        let checks = [
            (self.month, 12, f.month, 2),
            (self.day, 31, f.day, 3),
            (self.hours, 23, f.hours, 4),
            (self.minutes, 59, f.minutes, 5),
            (self.seconds, 59, f.seconds, 6),
        ];
        for (value, max, field, offset) in checks {
            if value > max {
                return Some(DateTimeProblem::Reserved(field, offset, u32::from(value)));
            }
        }
        if self.month != 0 && self.day != 0 {
            // An unknown year allows 29 February: some year has one.
            let leap = self.year == 0 || is_leap(self.year);
            let days = match self.month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            if self.day > days {
                return Some(DateTimeProblem::Inconsistent(
                    f.day,
                    3,
                    "day does not exist in that month",
                ));
            }
        }
        None
    }

    /// Reads 7 bytes and checks every field's range.
    pub(crate) fn read(r: &mut Reader<'_>, names: DateTimeFields) -> Result<Self> {
        let start = r.offset();
        let value = Self {
            year: r.u16(names.year)?,
            month: r.u8(names.month)?,
            day: r.u8(names.day)?,
            hours: r.u8(names.hours)?,
            minutes: r.u8(names.minutes)?,
            seconds: r.u8(names.seconds)?,
        };
        match value.problem(names) {
            None => Ok(value),
            Some(DateTimeProblem::Reserved(field, at, v)) => {
                Err(r.reserved(field, start + at, v).into())
            }
            Some(DateTimeProblem::Inconsistent(field, at, reason)) => {
                Err(r.inconsistent(field, start + at, reason).into())
            }
        }
    }

    /// Writes 7 bytes; refuses a value [`DateTime::read`] would refuse.
    pub(crate) fn write(
        &self,
        w: &mut Writer,
        characteristic: &'static str,
        names: DateTimeFields,
    ) -> Result<()> {
        match self.problem(names) {
            None => {}
            Some(DateTimeProblem::Reserved(field, _, _)) => {
                return Err(Error::Unencodable {
                    characteristic,
                    field,
                    reason: "value outside the Date Time range",
                });
            }
            Some(DateTimeProblem::Inconsistent(field, _, reason)) => {
                return Err(Error::Unencodable {
                    characteristic,
                    field,
                    reason,
                });
            }
        }
        w.u16(self.year)
            .u8(self.month)
            .u8(self.day)
            .u8(self.hours)
            .u8(self.minutes)
            .u8(self.seconds);
        Ok(())
    }
}

/// Error field names for the six parts of one [`DateTime`] field, so an error
/// says `base_time.month` rather than `month`.
#[derive(Clone, Copy)]
pub(crate) struct DateTimeFields {
    pub(crate) year: &'static str,
    pub(crate) month: &'static str,
    pub(crate) day: &'static str,
    pub(crate) hours: &'static str,
    pub(crate) minutes: &'static str,
    pub(crate) seconds: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: DateTimeFields = DateTimeFields {
        year: "y",
        month: "mo",
        day: "d",
        hours: "h",
        minutes: "mi",
        seconds: "s",
    };

    fn read(bytes: &[u8]) -> Result<DateTime> {
        DateTime::read(&mut Reader::new("T", bytes), NAMES)
    }

    #[test]
    fn unknown_date_parts_give_no_naive_time() {
        let t = read(&[0, 0, 3, 4, 10, 20, 30]).unwrap();
        assert_eq!(t.year, 0);
        assert_eq!(t.to_naive(), None);
    }

    #[test]
    fn year_before_gregorian_calendar_is_reserved() {
        // 1581 = 0x062D.
        assert_eq!(
            read(&[0x2D, 0x06, 1, 1, 0, 0, 0]),
            Err(Error::Reserved {
                characteristic: "T",
                field: "y",
                offset: 0,
                value: 1581
            })
        );
    }

    #[test]
    fn february_30_is_inconsistent_but_29_in_a_leap_year_is_fine() {
        // 2024 = 0x07E8.
        assert!(read(&[0xE8, 0x07, 2, 29, 0, 0, 0]).is_ok());
        assert_eq!(
            read(&[0xE8, 0x07, 2, 30, 0, 0, 0]),
            Err(Error::Inconsistent {
                characteristic: "T",
                field: "d",
                offset: 3,
                reason: "day does not exist in that month"
            })
        );
        // 2023 = 0x07E7 has no 29 February.
        assert!(read(&[0xE7, 0x07, 2, 29, 0, 0, 0]).is_err());
    }

    #[test]
    fn hour_24_is_reserved() {
        assert!(matches!(
            read(&[0xE8, 0x07, 1, 1, 24, 0, 0]),
            Err(Error::Reserved {
                field: "h",
                offset: 4,
                value: 24,
                ..
            })
        ));
    }
}

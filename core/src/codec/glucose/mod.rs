//! The Glucose Service (0x1808, GLS 1.0): blood glucose meters.
//!
//! A meter notifies one [`GlucoseMeasurement`] (0x2A18) per stored test,
//! optionally followed by a [`GlucoseMeasurementContext`] (0x2A34) with the
//! same sequence number (meal, carbohydrate, exercise, medication, HbA1c).
//! The session pairs them and turns the measurement into a `MeterGlucose`
//! record reading in mg/dL; the context stays provenance.
//!
//! Decisions that shaped this module:
//! - Enumerated codes (sample type, meal, tester, ...) decode to enums whose
//!   `Reserved(code)` variant keeps a code the specification reserves,
//!   instead of failing: a meter reading is worth keeping when only an
//!   annotation is from a newer revision. Reserved *bits* in flags and status
//!   fields are refused, since they may change what the other fields mean.
//! - Unit flags (concentration kg/L vs mol/L, medication kg vs L) are kept
//!   even when the field they qualify is absent, so a meter that always sets
//!   its unit bit still gets byte-exact round trips.
//! - Base Time is the meter's local time with no zone: it becomes a
//!   [`chrono::NaiveDateTime`] and the session decides what zone it means.

pub mod context;
pub mod measurement;

pub use context::{
    Carbohydrate, CarbohydrateId, Exercise, GlucoseMeasurementContext, Health, Meal, Medication,
    MedicationId, MedicationUnit, Tester, TesterHealth,
};
pub use measurement::{
    ConcentrationUnit, GlucoseMeasurement, GlucoseSample, SampleLocation, SampleType,
    SensorStatusAnnunciation,
};

use super::bytes::{Reader, Writer};
use crate::{Error, Result};
use chrono::{NaiveDate, NaiveDateTime};

/// Declares an enumerated code field: named variants with their codes, plus
/// `Reserved(code)` for codes the specification keeps for future use.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident, max = $max:expr, {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $label:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A code the specification reserves, kept exactly as sent.
            Reserved(u8),
        }

        impl $name {
            /// Largest code the field's width can carry.
            pub const MAX_CODE: u8 = $max;

            /// The variant for a code as it travels.
            pub fn from_code(code: u8) -> Self {
                match code {
                    $( $code => Self::$variant, )*
                    other => Self::Reserved(other),
                }
            }

            /// The code as it travels.
            pub fn code(self) -> u8 {
                match self {
                    $( Self::$variant => $code, )*
                    Self::Reserved(code) => code,
                }
            }

            /// Whether encoding then decoding gives this value back: false
            /// for a `Reserved` holding a defined code or one too wide for
            /// the field.
            pub fn is_encodable(self) -> bool {
                self.code() <= Self::MAX_CODE && Self::from_code(self.code()) == self
            }

            /// A stable snake_case label for logs and JSON.
            pub fn label(self) -> &'static str {
                match self {
                    $( Self::$variant => $label, )*
                    Self::Reserved(_) => "reserved",
                }
            }
        }
    };
}
pub(crate) use code_enum;

/// Declares a bit field as a struct of named booleans; every bit not listed
/// is reserved.
macro_rules! bit_set {
    (
        $(#[$meta:meta])*
        $name:ident: $raw:ty {
            $( $(#[$fmeta:meta])* $field:ident = $bit:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, serde::Serialize, Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: bool, )*
        }

        impl $name {
            /// The bits the specification defines; all others are reserved.
            pub const DEFINED: $raw = 0 $( | (1 << $bit) )*;

            /// Reads the bits, or returns the reserved bits that are set.
            pub fn from_bits(bits: $raw) -> ::core::result::Result<Self, $raw> {
                let reserved = bits & !Self::DEFINED;
                if reserved != 0 {
                    return Err(reserved);
                }
                Ok(Self { $( $field: bits & (1 << $bit) != 0, )* })
            }

            /// The bits as they travel.
            pub fn to_bits(self) -> $raw {
                0 $( | if self.$field { 1 << $bit } else { 0 } )*
            }

            /// Names of the bits that are set, lowest bit first, for logs
            /// and JSON.
            pub fn set_names(self) -> Vec<&'static str> {
                let mut names = Vec::new();
                $( if self.$field { names.push(stringify!($field)); } )*
                names
            }
        }
    };
}
pub(crate) use bit_set;

/// A Date Time as GATT sends it (the Date Time characteristic 0x2A08 layout,
/// as in the Base Time field of GLS 1.0 Glucose Measurement): the meter's
/// local calendar time, where 0 in year, month or day means "not known".
///
/// Decoding guarantees every field is in its specified range (year 0 or
/// 1582..=9999, month 0..=12, day 0..=31, hours 0..=23, minutes and seconds
/// 0..=59) and that a known day exists in its month.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
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
            Some(DateTimeProblem::Reserved(field, at, v)) => Err(r.reserved(field, start + at, v)),
            Some(DateTimeProblem::Inconsistent(field, at, reason)) => {
                Err(r.inconsistent(field, start + at, reason))
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

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

pub use super::date_time::DateTime;
pub(crate) use super::date_time::DateTimeFields;

//! IEEE 11073-20601 medical floats: 16-bit SFLOAT and 32-bit FLOAT.
//!
//! A value is `mantissa × 10^exponent` with a signed exponent in the high
//! bits (4 of 16, or 8 of 32) and a signed mantissa in the rest. Five
//! mantissa values at exponent zero are not numbers but markers (11073-20601
//! §F.6 and the Bluetooth PHD transcoding white paper): NaN, NRes ("not at
//! this resolution"), +INFINITY, -INFINITY and one reserved for the future.
//! They come out as [`Special`] variants, never as numbers: a "not a number"
//! glucose value that turned into 2047 mg/dL would be a clinical error.
//!
//! The same five mantissas at any other exponent are outside the number
//! range the standard defines; rather than guess, we report them as
//! [`Special::Reserved`] and keep the raw bits, so encoding gives back the
//! exact bytes.

use serde::{Deserialize, Serialize};

/// A marker carried in place of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Special {
    /// Not a number: the sensor had no valid value.
    NaN,
    /// Not at this resolution: the value cannot be expressed in this format.
    NRes,
    /// Positive infinity: above the sensor's range.
    PosInfinity,
    /// Negative infinity: below the sensor's range.
    NegInfinity,
    /// Reserved for future use by the standard.
    Reserved,
}

impl Special {
    /// The label the `vigil` command and JSON exports use.
    pub fn label(self) -> &'static str {
        match self {
            Special::NaN => "NaN",
            Special::NRes => "NRes",
            Special::PosInfinity => "+INF",
            Special::NegInfinity => "-INF",
            Special::Reserved => "reserved",
        }
    }
}

/// Shape of one medical float format.
struct Layout {
    /// Bits of the mantissa; the exponent takes the rest of `total_bits`.
    mantissa_bits: u32,
    total_bits: u32,
}

const SFLOAT: Layout = Layout {
    mantissa_bits: 12,
    total_bits: 16,
};
const FLOAT32: Layout = Layout {
    mantissa_bits: 24,
    total_bits: 32,
};

impl Layout {
    /// Largest positive mantissa of a number (the ones above are markers).
    fn max_mantissa(&self) -> i32 {
        (1 << (self.mantissa_bits - 1)) - 3
    }

    fn exponent_range(&self) -> (i32, i32) {
        let bits = self.total_bits - self.mantissa_bits;
        (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    }

    /// Splits raw bits into sign-extended (mantissa, exponent).
    fn split(&self, raw: u32) -> (i32, i32) {
        let m_shift = 32 - self.mantissa_bits;
        let e_bits = self.total_bits - self.mantissa_bits;
        // Sign-extend by shifting the field to the top of an i32 and back.
        let mantissa = ((raw << m_shift) as i32) >> m_shift;
        let exponent = ((raw >> self.mantissa_bits) << (32 - e_bits)) as i32 >> (32 - e_bits);
        (mantissa, exponent)
    }

    fn join(&self, mantissa: i32, exponent: i32) -> u32 {
        let m_mask = (1u32 << self.mantissa_bits) - 1;
        let e_mask = (1u32 << (self.total_bits - self.mantissa_bits)) - 1;
        ((exponent as u32 & e_mask) << self.mantissa_bits) | (mantissa as u32 & m_mask)
    }

    fn special(&self, raw: u32) -> Option<Special> {
        let (mantissa, exponent) = self.split(raw);
        let max = self.max_mantissa();
        let marker = if mantissa == max + 1 {
            Special::PosInfinity
        } else if mantissa == max + 2 {
            Special::NaN
        } else if mantissa == -max - 3 {
            Special::NRes
        } else if mantissa == -max - 2 {
            Special::Reserved
        } else if mantissa == -max - 1 {
            Special::NegInfinity
        } else {
            return None;
        };
        Some(if exponent == 0 {
            marker
        } else {
            Special::Reserved
        })
    }

    fn value(&self, raw: u32, pow10: i32) -> Result<f64, Special> {
        if let Some(s) = self.special(raw) {
            return Err(s);
        }
        let (mantissa, exponent) = self.split(raw);
        let exponent = exponent + pow10;
        let m = f64::from(mantissa);
        // Dividing by an exact power of ten rounds once; multiplying by an
        // inexact 10^-n would round twice.
        Ok(if exponent < 0 {
            m / 10f64.powi(-exponent)
        } else {
            m * 10f64.powi(exponent)
        })
    }

    /// The finest-resolution encoding of `value`, if it fits.
    fn encode_f64(&self, value: f64) -> Option<u32> {
        if !value.is_finite() {
            return None;
        }
        let (lo, hi) = self.exponent_range();
        let max = f64::from(self.max_mantissa());
        (lo..=hi).find_map(|exponent| {
            let scaled = if exponent < 0 {
                value * 10f64.powi(-exponent)
            } else {
                value / 10f64.powi(exponent)
            };
            let mantissa = scaled.round();
            // The bound check makes the cast below exact.
            (mantissa.abs() <= max).then(|| self.join(mantissa as i32, exponent))
        })
    }
}

macro_rules! medical_float {
    ($(#[$doc:meta])* $name:ident, $raw:ty, $layout:expr, $nan:expr, $nres:expr, $pinf:expr, $ninf:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name($raw);

        impl $name {
            /// Not a number.
            pub const NAN: Self = Self($nan);
            /// Not at this resolution.
            pub const NRES: Self = Self($nres);
            /// Positive infinity.
            pub const POS_INFINITY: Self = Self($pinf);
            /// Negative infinity.
            pub const NEG_INFINITY: Self = Self($ninf);

            /// Wraps the raw bits exactly as they travel.
            pub const fn from_raw(raw: $raw) -> Self {
                Self(raw)
            }

            /// The raw bits, for encoding.
            pub const fn to_raw(self) -> $raw {
                self.0
            }

            /// A number `mantissa × 10^exponent`; `None` if either is out of
            /// the format's range or the pair would read back as a marker.
            pub fn new(mantissa: i32, exponent: i32) -> Option<Self> {
                let (lo, hi) = $layout.exponent_range();
                let max = $layout.max_mantissa();
                if !(lo..=hi).contains(&exponent) || !(-max..=max).contains(&mantissa) {
                    return None;
                }
                // The range checks above keep the joined value within the
                // format's width.
                <$raw>::try_from($layout.join(mantissa, exponent)).ok().map(Self)
            }

            /// The closest encoding of `value` at the finest exponent that
            /// fits; `None` for non-finite or out-of-range values.
            pub fn from_f64(value: f64) -> Option<Self> {
                $layout
                    .encode_f64(value)
                    .and_then(|raw| <$raw>::try_from(raw).ok())
                    .map(Self)
            }

            /// The signed mantissa.
            pub fn mantissa(self) -> i32 {
                $layout.split(u32::from(self.0)).0
            }

            /// The signed base-10 exponent.
            pub fn exponent(self) -> i32 {
                $layout.split(u32::from(self.0)).1
            }

            /// The marker this value carries, if it is not a number.
            pub fn special(self) -> Option<Special> {
                $layout.special(u32::from(self.0))
            }

            /// The number, or the marker in its place.
            pub fn value(self) -> Result<f64, Special> {
                $layout.value(u32::from(self.0), 0)
            }

            /// The number times `10^pow10`, rounded once: a unit change
            /// such as kg/L to mg/dL (`pow10 = 5`) stays exact where a
            /// float multiplication would not (0.0012 × 10^5 is not 120).
            pub fn scaled(self, pow10: i32) -> Result<f64, Special> {
                $layout.value(u32::from(self.0), pow10)
            }

            /// The number, or `None` for a marker.
            pub fn to_f64(self) -> Option<f64> {
                self.value().ok()
            }
        }

        impl Serialize for $name {
            /// A number, or the marker's label (`"NaN"`, `"NRes"`, `"+INF"`,
            /// `"-INF"`, `"reserved"`) so a marker never reads as a value.
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self.value() {
                    Ok(v) => s.serialize_f64(v),
                    Err(special) => s.serialize_str(special.label()),
                }
            }
        }
    };
}

medical_float!(
    /// IEEE 11073-20601 16-bit SFLOAT: 4-bit exponent, 12-bit mantissa.
    SFloat, u16, SFLOAT, 0x07FF, 0x0800, 0x07FE, 0x0802
);

medical_float!(
    /// IEEE 11073-20601 32-bit FLOAT: 8-bit exponent, 24-bit mantissa.
    Float32, u32, FLOAT32, 0x007F_FFFF, 0x0080_0000, 0x007F_FFFE, 0x0080_0002
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // IEEE 11073-20601 Annex F / Bluetooth PHD transcoding white paper,
    // table "SFLOAT special values".
    #[test]
    fn sfloat_special_values() {
        assert_eq!(SFloat::from_raw(0x07FF).special(), Some(Special::NaN));
        assert_eq!(SFloat::from_raw(0x0800).special(), Some(Special::NRes));
        assert_eq!(
            SFloat::from_raw(0x07FE).special(),
            Some(Special::PosInfinity)
        );
        assert_eq!(
            SFloat::from_raw(0x0802).special(),
            Some(Special::NegInfinity)
        );
        assert_eq!(SFloat::from_raw(0x0801).special(), Some(Special::Reserved));
        assert_eq!(SFloat::NAN.value(), Err(Special::NaN));
    }

    #[test]
    fn float32_special_values() {
        assert_eq!(Float32::from_raw(0x007F_FFFF).special(), Some(Special::NaN));
        assert_eq!(
            Float32::from_raw(0x0080_0000).special(),
            Some(Special::NRes)
        );
        assert_eq!(
            Float32::from_raw(0x007F_FFFE).special(),
            Some(Special::PosInfinity)
        );
        assert_eq!(
            Float32::from_raw(0x0080_0002).special(),
            Some(Special::NegInfinity)
        );
        assert_eq!(
            Float32::from_raw(0x0080_0001).special(),
            Some(Special::Reserved)
        );
    }

    #[test]
    fn marker_mantissa_at_nonzero_exponent_is_reserved_not_a_number() {
        // 0xF7FF: exponent -1, mantissa 0x7FF.
        assert_eq!(SFloat::from_raw(0xF7FF).special(), Some(Special::Reserved));
        assert_eq!(SFloat::from_raw(0xF7FF).to_f64(), None);
    }

    #[test]
    fn sfloat_numbers_decode_exactly() {
        // 0x0078: exponent 0, mantissa 120 -> 120 (a glucose of 120 mg/dL).
        assert_eq!(SFloat::from_raw(0x0078).to_f64(), Some(120.0));
        // 0xF4D2: exponent -1, mantissa 0x4D2 = 1234 -> 123.4
        assert_eq!(SFloat::from_raw(0xF4D2).to_f64(), Some(123.4));
        // 0x0FFF: exponent 0, mantissa -1.
        assert_eq!(SFloat::from_raw(0x0FFF).to_f64(), Some(-1.0));
        // 0x2001: exponent 2, mantissa 1 -> 100.
        assert_eq!(SFloat::from_raw(0x2001).to_f64(), Some(100.0));
        // 0x8001: exponent -8 -> 1e-8.
        assert_eq!(SFloat::from_raw(0x8001).to_f64(), Some(1e-8));
    }

    #[test]
    fn scaling_by_a_power_of_ten_is_exact() {
        // 120 × 10^-5 kg/L is 120 mg/dL.
        let v = SFloat::new(120, -5).map(|v| v.scaled(5));
        assert_eq!(v, Some(Ok(120.0)));
        assert_eq!(SFloat::NAN.scaled(5), Err(Special::NaN));
    }

    #[test]
    fn from_f64_prefers_finest_exponent() {
        let v = SFloat::from_f64(98.6).map(|s| (s.mantissa(), s.exponent()));
        assert_eq!(v, Some((986, -1)));
        let v = SFloat::from_f64(120.0).map(|s| (s.mantissa(), s.exponent()));
        assert_eq!(v, Some((1200, -1)));
        assert_eq!(SFloat::from_f64(f64::NAN), None);
        assert_eq!(SFloat::from_f64(1e12), None);
        assert_eq!(SFloat::new(2046, 0), None);
        assert_eq!(SFloat::new(1, 8), None);
    }

    proptest! {
        #[test]
        fn sfloat_raw_round_trips(raw in any::<u16>()) {
            let v = SFloat::from_raw(raw);
            prop_assert_eq!(v.to_raw(), raw);
            if v.special().is_none() {
                prop_assert_eq!(SFloat::new(v.mantissa(), v.exponent()), Some(v));
            }
        }

        #[test]
        fn float32_parts_round_trip(m in -8_388_605i32..=8_388_605, e in -128i32..=127) {
            let v = Float32::new(m, e);
            prop_assert!(v.is_some());
            let v = v.unwrap_or(Float32::NAN);
            prop_assert_eq!((v.mantissa(), v.exponent()), (m, e));
            prop_assert_eq!(v.special(), None);
        }

        #[test]
        fn sfloat_from_f64_is_within_half_a_unit(x in -2000.0f64..2000.0) {
            let v = SFloat::from_f64(x);
            prop_assert!(v.is_some());
            let v = v.unwrap_or(SFloat::NAN);
            let unit = 10f64.powi(v.exponent());
            let back = v.to_f64().unwrap_or(f64::NAN);
            prop_assert!((back - x).abs() <= unit / 2.0 + 1e-9);
        }
    }
}

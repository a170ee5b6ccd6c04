//! CGM Feature (0x2AA8, CGMS 1.0.1 §3.2): what the sensor supports, read
//! once per connection. Its bit 12 (E2E-CRC supported) decides how every
//! other CGM characteristic is decoded, so it is decoded strictly.
//!
//! Layout: CGM Feature (24 bits), Type-Sample Location (uint8: type in the
//! low nibble, sample location in the high nibble), E2E-CRC (uint16, always
//! present: 0xFFFF when the sensor does not support the CRC, otherwise the
//! CRC over the first four bytes).
//!
//! Reserved type and location values are [`crate::Error::Reserved`], not an
//! `Unknown` variant: the values are fixed by the specification and the
//! enums are also used by the calibration record, where a wrong sample kind
//! must never be accepted silently.

use crate::codec::bytes::{Reader, Writer};
use crate::codec::crc::e2e_crc;
use crate::{Error, Result};

/// The 24-bit CGM Feature field; bits 17-23 are reserved.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FeatureBits(u32);

macro_rules! feature_bits {
    ($( $(#[$doc:meta])* $konst:ident / $getter:ident = $bit:expr; )*) => {
        impl FeatureBits {
            $(
                $(#[$doc])*
                pub const $konst: u32 = 1 << $bit;
            )*
            /// Every bit the specification defines.
            pub const DEFINED: u32 = 0x0001_FFFF;

            $(
                $(#[$doc])*
                pub const fn $getter(self) -> bool {
                    self.0 & Self::$konst != 0
                }
            )*
        }
    };
}

feature_bits! {
    /// Calibration supported.
    CALIBRATION / calibration = 0;
    /// Patient high/low alerts supported.
    PATIENT_HIGH_LOW_ALERTS / patient_high_low_alerts = 1;
    /// Hypo alerts supported.
    HYPO_ALERTS / hypo_alerts = 2;
    /// Hyper alerts supported.
    HYPER_ALERTS / hyper_alerts = 3;
    /// Rate of increase/decrease alerts supported.
    RATE_ALERTS / rate_alerts = 4;
    /// Device specific alert supported.
    DEVICE_SPECIFIC_ALERT / device_specific_alert = 5;
    /// Sensor malfunction detection supported.
    SENSOR_MALFUNCTION_DETECTION / sensor_malfunction_detection = 6;
    /// Sensor temperature high-low detection supported.
    TEMPERATURE_DETECTION / temperature_detection = 7;
    /// Sensor result high-low detection supported.
    RESULT_HIGH_LOW_DETECTION / result_high_low_detection = 8;
    /// Low battery detection supported.
    LOW_BATTERY_DETECTION / low_battery_detection = 9;
    /// Sensor type error detection supported.
    SENSOR_TYPE_ERROR_DETECTION / sensor_type_error_detection = 10;
    /// General device fault supported.
    GENERAL_DEVICE_FAULT / general_device_fault = 11;
    /// E2E-CRC supported: every CGM record and control point value carries
    /// the CRC.
    E2E_CRC / e2e_crc = 12;
    /// Multiple bonds supported.
    MULTIPLE_BOND / multiple_bond = 13;
    /// Multiple sessions supported.
    MULTIPLE_SESSIONS / multiple_sessions = 14;
    /// CGM trend information supported.
    TREND / trend = 15;
    /// CGM quality supported.
    QUALITY / quality = 16;
}

impl FeatureBits {
    /// Wraps `bits`; `None` if a reserved bit (17 and up) is set.
    pub const fn from_bits(bits: u32) -> Option<Self> {
        if bits & !Self::DEFINED == 0 {
            Some(Self(bits))
        } else {
            None
        }
    }

    /// The field as it travels.
    pub const fn bits(self) -> u32 {
        self.0
    }
}

macro_rules! nibble_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal, { $( $(#[$vdoc:meta])* $variant:ident = $value:expr, )* }) => {
        $(#[$doc])*
        #[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant = $value, )*
        }

        impl $name {
            /// The variant for a nibble value; `None` for a reserved value.
            pub const fn from_nibble(v: u8) -> Option<Self> {
                match v {
                    $( $value => Some(Self::$variant), )*
                    _ => None,
                }
            }

            /// The nibble as it travels.
            pub const fn nibble(self) -> u8 {
                self as u8
            }
        }
    };
}

nibble_enum!(
    /// The kind of sample the sensor measures (CGMS §3.2.1.2, "Type").
    SampleType, "type", {
        /// Capillary whole blood.
        CapillaryWholeBlood = 1,
        /// Capillary plasma.
        CapillaryPlasma = 2,
        /// Venous whole blood.
        VenousWholeBlood = 3,
        /// Venous plasma.
        VenousPlasma = 4,
        /// Arterial whole blood.
        ArterialWholeBlood = 5,
        /// Arterial plasma.
        ArterialPlasma = 6,
        /// Undetermined whole blood.
        UndeterminedWholeBlood = 7,
        /// Undetermined plasma.
        UndeterminedPlasma = 8,
        /// Interstitial fluid (ISF), what most CGMs measure.
        InterstitialFluid = 9,
        /// Control solution.
        ControlSolution = 10,
    }
);

nibble_enum!(
    /// Where the sample is taken (CGMS §3.2.1.2, "Sample Location").
    SampleLocation, "sample_location", {
        /// Finger.
        Finger = 1,
        /// Alternate site test (AST).
        AlternateSite = 2,
        /// Earlobe.
        Earlobe = 3,
        /// Control solution.
        ControlSolution = 4,
        /// Subcutaneous tissue.
        SubcutaneousTissue = 5,
        /// Sample location value not available.
        NotAvailable = 15,
    }
);

/// Reads the Type-Sample Location octet, rejecting reserved nibbles.
pub(crate) fn read_type_location(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<(SampleType, SampleLocation)> {
    let offset = r.offset();
    let b = r.u8(field)?;
    let t = SampleType::from_nibble(b & 0x0F)
        .ok_or_else(|| r.reserved("type", offset, u32::from(b & 0x0F)))?;
    let l = SampleLocation::from_nibble(b >> 4)
        .ok_or_else(|| r.reserved("sample_location", offset, u32::from(b >> 4)))?;
    Ok((t, l))
}

/// The Type-Sample Location octet as it travels.
pub(crate) fn type_location_octet(t: SampleType, l: SampleLocation) -> u8 {
    t.nibble() | (l.nibble() << 4)
}

/// CGM Feature (0x2AA8).
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CgmFeature {
    /// The supported features.
    pub features: FeatureBits,
    /// What the sensor measures.
    pub sample_type: SampleType,
    /// Where it measures.
    pub sample_location: SampleLocation,
    /// The E2E-CRC field as carried: the checked CRC when
    /// [`FeatureBits::e2e_crc`] is set, else 0xFFFF. Encoding derives it.
    pub crc: u16,
}

impl CgmFeature {
    /// Characteristic name carried by errors.
    pub const CHARACTERISTIC: &'static str = "CGM Feature";
    /// The E2E-CRC field value of a sensor without CRC support.
    pub const NO_CRC: u16 = 0xFFFF;

    /// Decodes a CGM Feature value (always 6 bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(Self::CHARACTERISTIC, bytes);
        let offset = r.offset();
        let bits = r.u24("cgm_feature")?;
        let features =
            FeatureBits::from_bits(bits).ok_or_else(|| r.reserved("cgm_feature", offset, bits))?;
        let (sample_type, sample_location) = read_type_location(&mut r, "type_sample_location")?;
        let crc = if features.e2e_crc() {
            super::read_checked_crc(&mut r, bytes, 0)?
        } else {
            let offset = r.offset();
            let crc = r.u16("e2e_crc")?;
            if crc != Self::NO_CRC {
                return Err(Error::Inconsistent {
                    characteristic: Self::CHARACTERISTIC,
                    field: "e2e_crc",
                    offset,
                    reason: "must be 0xFFFF when E2E-CRC is not supported",
                });
            }
            crc
        };
        r.finish()?;
        Ok(Self {
            features,
            sample_type,
            sample_location,
            crc,
        })
    }

    /// Encodes the value; the CRC field is computed (or 0xFFFF without CRC
    /// support), whatever [`Self::crc`] holds.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u24(self.features.bits())
            .u8(type_location_octet(self.sample_type, self.sample_location));
        let crc = if self.features.e2e_crc() {
            e2e_crc(w.as_slice())
        } else {
            Self::NO_CRC
        };
        w.u16(crc);
        w.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // CGMS §3.2: Feature (24 bits), Type-Sample Location, E2E-CRC 0xFFFF
    // when bit 12 is clear.
    #[test]
    fn feature_without_crc_support_carries_ffff() {
        // Calibration (bit 0), trend (bit 15), quality (bit 16); ISF (9) from
        // subcutaneous tissue (5).
        let bytes = [0x01, 0x80, 0x01, 0x59, 0xFF, 0xFF];
        let f = CgmFeature::decode(&bytes).unwrap();
        assert!(f.features.calibration());
        assert!(f.features.trend());
        assert!(f.features.quality());
        assert!(!f.features.e2e_crc());
        assert_eq!(f.sample_type, SampleType::InterstitialFluid);
        assert_eq!(f.sample_location, SampleLocation::SubcutaneousTissue);
        assert_eq!(f.encode(), bytes);
    }

    #[test]
    fn e2e_crc_support_is_bit_12_and_its_crc_is_checked() {
        let mut bytes = vec![0x00, 0x10, 0x00, 0x59];
        let crc = e2e_crc(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let f = CgmFeature::decode(&bytes).unwrap();
        assert!(f.features.e2e_crc());
        assert_eq!(f.features.bits(), 1 << 12);
        assert_eq!(f.crc, crc);
        assert_eq!(f.encode(), bytes);
        bytes[3] = 0x19; // finger instead of subcutaneous
        assert!(matches!(
            CgmFeature::decode(&bytes),
            Err(Error::CrcMismatch { offset: 4, .. })
        ));
    }

    #[test]
    fn crc_field_other_than_ffff_without_support_is_inconsistent() {
        let bytes = [0x00, 0x00, 0x00, 0x59, 0x00, 0x00];
        assert_eq!(
            CgmFeature::decode(&bytes),
            Err(Error::Inconsistent {
                characteristic: "CGM Feature",
                field: "e2e_crc",
                offset: 4,
                reason: "must be 0xFFFF when E2E-CRC is not supported"
            })
        );
    }

    #[test]
    fn reserved_feature_type_and_location_values_are_rejected() {
        let bytes = [0x00, 0x00, 0x02, 0x59, 0xFF, 0xFF];
        assert!(matches!(
            CgmFeature::decode(&bytes),
            Err(Error::Reserved {
                field: "cgm_feature",
                offset: 0,
                value: 0x02_0000,
                ..
            })
        ));
        let bytes = [0x00, 0x00, 0x00, 0x50, 0xFF, 0xFF];
        assert!(matches!(
            CgmFeature::decode(&bytes),
            Err(Error::Reserved {
                field: "type",
                offset: 3,
                value: 0,
                ..
            })
        ));
        let bytes = [0x00, 0x00, 0x00, 0x69, 0xFF, 0xFF];
        assert!(matches!(
            CgmFeature::decode(&bytes),
            Err(Error::Reserved {
                field: "sample_location",
                offset: 3,
                value: 6,
                ..
            })
        ));
        assert!(matches!(
            CgmFeature::decode(&[0x00, 0x00, 0x00, 0x59, 0xFF]),
            Err(Error::Truncated {
                field: "e2e_crc",
                offset: 4,
                ..
            })
        ));
    }

    fn sample_type() -> impl Strategy<Value = SampleType> {
        (1u8..=10).prop_map(|v| SampleType::from_nibble(v).unwrap())
    }

    fn sample_location() -> impl Strategy<Value = SampleLocation> {
        prop_oneof![1u8..=5, Just(15u8)].prop_map(|v| SampleLocation::from_nibble(v).unwrap())
    }

    proptest! {
        #[test]
        fn feature_round_trips(bits in 0u32..=FeatureBits::DEFINED, t in sample_type(), l in sample_location()) {
            let f = CgmFeature { features: FeatureBits::from_bits(bits).unwrap(), sample_type: t, sample_location: l, crc: 0 };
            let bytes = f.encode();
            let back = CgmFeature::decode(&bytes).unwrap();
            prop_assert_eq!(back.features, f.features);
            prop_assert_eq!(back.sample_type, t);
            prop_assert_eq!(back.sample_location, l);
            prop_assert_eq!(back.encode(), bytes);
        }

        #[test]
        fn feature_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..10)) {
            if let Ok(f) = CgmFeature::decode(&bytes) {
                prop_assert_eq!(f.encode(), bytes);
            }
        }
    }
}

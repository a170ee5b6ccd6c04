//! Sensor Status Annunciation (CGMS 1.0.1 §3.1.1.5 and the CGM Measurement
//! characteristic definition) and the CGM Status characteristic (0x2AA9,
//! CGMS §3.3).
//!
//! The annunciation is one 24-bit field, least significant octet first:
//! Status octet (bits 0-7), Cal/Temp octet (bits 8-15), Warning octet (bits
//! 16-23). CGM Status always carries all three octets; a CGM Measurement
//! record carries only the octets its flags announce, in that same order.
//! Each octet is a newtype over validated bits, so a value with a reserved bit
//! set cannot be built and every encoder stays infallible.

use super::{append_crc, read_checked_crc};
use crate::Result;
use crate::codec::bytes::{Reader, Writer};

macro_rules! annunciation_octet {
    (
        $(#[$doc:meta])* $name:ident, valid = $valid:expr,
        { $( $(#[$bdoc:meta])* $konst:ident / $getter:ident = $bit:expr; )* }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u8);

        impl serde::Serialize for $name {
            /// As the list of conditions announced, e.g. `["session_stopped"]`.
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.set_names())
            }
        }

        impl $name {
            $(
                $(#[$bdoc])*
                pub const $konst: u8 = 1 << $bit;
            )*
            /// Every bit the specification defines; the others are reserved.
            pub const DEFINED: u8 = $valid;

            /// The octet with no condition announced.
            pub const fn empty() -> Self {
                Self(0)
            }

            /// Wraps `bits`; `None` if a reserved bit is set.
            // For the Warning octet every bit is defined and the mask is
            // zero; one macro for all three octets is still clearer.
            #[allow(clippy::bad_bit_mask)]
            pub const fn from_bits(bits: u8) -> Option<Self> {
                if bits & !Self::DEFINED == 0 {
                    Some(Self(bits))
                } else {
                    None
                }
            }

            /// The octet as it travels.
            pub const fn bits(self) -> u8 {
                self.0
            }

            /// Whether no condition is announced.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// Names of the conditions announced, for logs and JSON.
            pub fn set_names(self) -> Vec<&'static str> {
                let mut names = Vec::new();
                $( if self.$getter() { names.push(stringify!($getter)); } )*
                names
            }

            $(
                $(#[$bdoc])*
                pub const fn $getter(self) -> bool {
                    self.0 & Self::$konst != 0
                }
            )*
        }
    };
}

annunciation_octet!(
    /// Status octet of the Sensor Status Annunciation (bits 0-7 of the
    /// 24-bit field; bits 6-7 reserved).
    StatusOctet, valid = 0x3F, {
        /// The sensor session has stopped.
        SESSION_STOPPED / session_stopped = 0;
        /// The device battery is low.
        DEVICE_BATTERY_LOW / device_battery_low = 1;
        /// The sensor type is incorrect for the device.
        SENSOR_TYPE_INCORRECT / sensor_type_incorrect = 2;
        /// The sensor malfunctions.
        SENSOR_MALFUNCTION / sensor_malfunction = 3;
        /// A device specific alert is active.
        DEVICE_SPECIFIC_ALERT / device_specific_alert = 4;
        /// A general device fault occurred in the sensor.
        GENERAL_DEVICE_FAULT / general_device_fault = 5;
    }
);

annunciation_octet!(
    /// Cal/Temp octet of the Sensor Status Annunciation (bits 8-15 of the
    /// 24-bit field; bits 14-15 reserved).
    CalTempOctet, valid = 0x3F, {
        /// Time synchronisation between sensor and collector is required.
        TIME_SYNC_REQUIRED / time_sync_required = 0;
        /// Calibration is not allowed.
        CALIBRATION_NOT_ALLOWED / calibration_not_allowed = 1;
        /// Calibration is recommended.
        CALIBRATION_RECOMMENDED / calibration_recommended = 2;
        /// Calibration is required.
        CALIBRATION_REQUIRED / calibration_required = 3;
        /// Sensor temperature too high for a valid result.
        TEMPERATURE_TOO_HIGH / temperature_too_high = 4;
        /// Sensor temperature too low for a valid result.
        TEMPERATURE_TOO_LOW / temperature_too_low = 5;
    }
);

annunciation_octet!(
    /// Warning octet of the Sensor Status Annunciation (bits 16-23 of the
    /// 24-bit field; all eight bits defined).
    WarningOctet, valid = 0xFF, {
        /// Result lower than the patient low level.
        BELOW_PATIENT_LOW / below_patient_low = 0;
        /// Result higher than the patient high level.
        ABOVE_PATIENT_HIGH / above_patient_high = 1;
        /// Result lower than the hypo level.
        BELOW_HYPO / below_hypo = 2;
        /// Result higher than the hyper level.
        ABOVE_HYPER / above_hyper = 3;
        /// Rate of decrease exceeded.
        RATE_OF_DECREASE_EXCEEDED / rate_of_decrease_exceeded = 4;
        /// Rate of increase exceeded.
        RATE_OF_INCREASE_EXCEEDED / rate_of_increase_exceeded = 5;
        /// Result lower than the device can process.
        BELOW_DEVICE_RANGE / below_device_range = 6;
        /// Result higher than the device can process.
        ABOVE_DEVICE_RANGE / above_device_range = 7;
    }
);

/// Reads one annunciation octet, rejecting reserved bits.
pub(super) fn read_octet<T>(
    r: &mut Reader<'_>,
    field: &'static str,
    from_bits: fn(u8) -> Option<T>,
) -> Result<T> {
    let offset = r.offset();
    let bits = r.u8(field)?;
    from_bits(bits).ok_or_else(|| r.reserved(field, offset, u32::from(bits)).into())
}

/// The full 24-bit Sensor Status Annunciation, as CGM Status carries it.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Annunciation {
    /// Bits 0-7.
    pub status: StatusOctet,
    /// Bits 8-15.
    pub cal_temp: CalTempOctet,
    /// Bits 16-23.
    pub warning: WarningOctet,
}

impl Annunciation {
    /// Splits a 24-bit value; `None` if any reserved bit (or a bit above
    /// 23) is set.
    pub fn from_u24(bits: u32) -> Option<Self> {
        let [s, c, w, high] = bits.to_le_bytes();
        if high != 0 {
            return None;
        }
        Some(Self {
            status: StatusOctet::from_bits(s)?,
            cal_temp: CalTempOctet::from_bits(c)?,
            warning: WarningOctet::from_bits(w)?,
        })
    }

    /// The 24-bit value as it travels.
    pub fn to_u24(self) -> u32 {
        u32::from_le_bytes([
            self.status.bits(),
            self.cal_temp.bits(),
            self.warning.bits(),
            0,
        ])
    }
}

/// CGM Status (0x2AA9): the sensor's current annunciation, readable even
/// when no measurement is running (CGMS §3.3).
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CgmStatus {
    /// Minutes since the session start at which this status applies.
    pub time_offset_min: u16,
    /// The annunciation, always three octets here.
    pub status: Annunciation,
    /// The E2E-CRC carried, when the sensor supports it.
    pub crc: Option<u16>,
}

impl CgmStatus {
    /// Characteristic name carried by errors.
    pub const CHARACTERISTIC: &'static str = "CGM Status";

    /// Decodes a CGM Status value; `crc` says whether the sensor supports
    /// the E2E-CRC (CGM Feature bit 12), in which case it is checked.
    pub fn decode(bytes: &[u8], crc: bool) -> Result<Self> {
        let mut r = Reader::new(Self::CHARACTERISTIC, bytes);
        let time_offset_min = r.u16("time_offset")?;
        let offset = r.offset();
        let bits = r.u24("cgm_status")?;
        let status =
            Annunciation::from_u24(bits).ok_or_else(|| r.reserved("cgm_status", offset, bits))?;
        let crc = if crc {
            Some(read_checked_crc(&mut r, bytes, 0)?)
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            time_offset_min,
            status,
            crc,
        })
    }

    /// Encodes the value; appends the computed E2E-CRC when `crc` is `Some`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u16(self.time_offset_min).u24(self.status.to_u24());
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
    use proptest::prelude::*;

    fn with_crc(mut v: Vec<u8>) -> Vec<u8> {
        let crc = e2e_crc(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v
    }

    // CGMS §3.3 / CGM Status characteristic: Time Offset (uint16), CGM
    // Status (24 bits: Status, Cal/Temp, Warning octets, LSO first).
    #[test]
    fn status_decodes_each_octet_into_its_named_bits() {
        let bytes = [0x3C, 0x00, 0x02, 0x08, 0x04];
        let s = CgmStatus::decode(&bytes, false).unwrap();
        assert_eq!(s.time_offset_min, 60);
        assert!(s.status.status.device_battery_low());
        assert!(!s.status.status.session_stopped());
        assert!(s.status.cal_temp.calibration_required());
        assert!(s.status.warning.below_hypo());
        assert_eq!(s.status.to_u24(), 0x04_08_02);
        assert_eq!(s.crc, None);
        assert_eq!(s.encode(), bytes);
    }

    #[test]
    fn status_with_valid_crc_decodes_and_reencodes_exactly() {
        let bytes = with_crc(vec![0x05, 0x00, 0x01, 0x00, 0x80]);
        let s = CgmStatus::decode(&bytes, true).unwrap();
        assert!(s.status.status.session_stopped());
        assert!(s.status.warning.above_device_range());
        assert_eq!(s.encode(), bytes);
    }

    #[test]
    fn status_crc_mismatch_names_crc_offset() {
        let mut bytes = with_crc(vec![0x05, 0x00, 0x01, 0x00, 0x80]);
        bytes[0] ^= 1;
        assert!(matches!(
            CgmStatus::decode(&bytes, true),
            Err(Error::CrcMismatch { offset: 5, .. })
        ));
    }

    #[test]
    fn status_reserved_bit_is_rejected_with_offset() {
        // Bit 6 of the Status octet is reserved.
        let bytes = [0x00, 0x00, 0x40, 0x00, 0x00];
        assert_eq!(
            CgmStatus::decode(&bytes, false),
            Err(Error::Reserved {
                characteristic: "CGM Status",
                field: "cgm_status",
                offset: 2,
                value: 0x40
            })
        );
        // Bit 14 (Cal/Temp bit 6) is reserved too.
        let bytes = [0x00, 0x00, 0x00, 0x40, 0x00];
        assert!(matches!(
            CgmStatus::decode(&bytes, false),
            Err(Error::Reserved { value: 0x4000, .. })
        ));
    }

    #[test]
    fn status_missing_crc_is_truncated_and_extra_bytes_are_oversized() {
        let bytes = [0x00, 0x00, 0x00, 0x00, 0x00];
        assert!(matches!(
            CgmStatus::decode(&bytes, true),
            Err(Error::Truncated {
                field: "e2e_crc",
                offset: 5,
                ..
            })
        ));
        let bytes = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
        assert!(matches!(
            CgmStatus::decode(&bytes, false),
            Err(Error::Oversized {
                offset: 5,
                extra: 1,
                ..
            })
        ));
    }

    fn annunciation() -> impl Strategy<Value = Annunciation> {
        (0u8..=0x3F, 0u8..=0x3F, any::<u8>()).prop_map(|(s, c, w)| Annunciation {
            status: StatusOctet(s),
            cal_temp: CalTempOctet(c),
            warning: WarningOctet(w),
        })
    }

    proptest! {
        #[test]
        fn status_round_trips(t in any::<u16>(), a in annunciation(), crc in any::<bool>()) {
            let s = CgmStatus { time_offset_min: t, status: a, crc: crc.then_some(0) };
            let bytes = s.encode();
            let back = CgmStatus::decode(&bytes, crc).unwrap();
            prop_assert_eq!(back.time_offset_min, t);
            prop_assert_eq!(back.status, a);
            prop_assert_eq!(back.crc.is_some(), crc);
            prop_assert_eq!(back.encode(), bytes);
        }

        #[test]
        fn status_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12), crc in any::<bool>()) {
            if let Ok(s) = CgmStatus::decode(&bytes, crc) {
                prop_assert_eq!(s.encode(), bytes);
            }
        }

        #[test]
        fn annunciation_u24_round_trips(bits in 0u32..0x0100_0000) {
            match Annunciation::from_u24(bits) {
                Some(a) => prop_assert_eq!(a.to_u24(), bits),
                None => prop_assert!(bits & 0x00_C0_C0 != 0),
            }
        }
    }
}

//! Heart Rate Measurement (0x2A37) of the Heart Rate Service.
//!
//! Notified by chest straps and watches about once a second; the session
//! turns one value into a `HeartRate` trend reading, an optional
//! `EnergyExpended` record and one `RrInterval` record per interval.
//!
//! Two decisions shaped the types. The heart-rate value format (uint8 or
//! uint16) is kept in [`HeartRateFormat`] rather than inferred from the
//! number, so a strap that sends 70 bpm as a uint16 gets the same bytes back.
//! Sensor-contact codes 0 and 1 mean the same thing in HRS 1.0 but are kept
//! apart for the same reason.

use super::bytes::{Reader, Writer};
use crate::{Error, Result};

const CHARACTERISTIC: &str = "Heart Rate Measurement";

// Flag bits: HRS 1.0, Heart Rate Measurement, Flags field.
const FLAG_FORMAT_U16: u8 = 1 << 0;
const FLAG_CONTACT_SHIFT: u8 = 1;
const FLAG_CONTACT_MASK: u8 = 0b11 << FLAG_CONTACT_SHIFT;
const FLAG_ENERGY: u8 = 1 << 3;
const FLAG_RR: u8 = 1 << 4;
const FLAG_DEFINED: u8 = FLAG_FORMAT_U16 | FLAG_CONTACT_MASK | FLAG_ENERGY | FLAG_RR;

/// RR intervals travel in units of 1/1024 s (HRS 1.0, Heart Rate
/// Measurement, RR-Interval field).
pub const RR_TICKS_PER_SECOND: f64 = 1024.0;

/// How the heart-rate value travels.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeartRateFormat {
    /// One byte, 0..=255 bpm.
    Uint8,
    /// Two bytes little-endian, 0..=65535 bpm.
    Uint16,
}

/// The Sensor Contact Status bits (flags bits 1-2).
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensorContact {
    /// Code 0: the sensor does not report contact.
    NotSupported,
    /// Code 1: means the same as code 0 in HRS 1.0; kept apart so that
    /// re-encoding returns the exact byte the sensor sent.
    NotSupportedAlternate,
    /// Code 2: contact is reported and the sensor is not touching the skin,
    /// so the heart rate is likely to be wrong.
    NotDetected,
    /// Code 3: contact is reported and detected.
    Detected,
}

impl SensorContact {
    fn from_code(code: u8) -> Self {
        match code & 0b11 {
            0 => Self::NotSupported,
            1 => Self::NotSupportedAlternate,
            2 => Self::NotDetected,
            _ => Self::Detected,
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::NotSupported => 0,
            Self::NotSupportedAlternate => 1,
            Self::NotDetected => 2,
            Self::Detected => 3,
        }
    }

    /// Whether the sensor is touching the skin; `None` if it cannot tell.
    pub fn contact(self) -> Option<bool> {
        match self {
            Self::NotSupported | Self::NotSupportedAlternate => None,
            Self::NotDetected => Some(false),
            Self::Detected => Some(true),
        }
    }
}

/// One Heart Rate Measurement value.
#[derive(Debug, serde::Serialize, Clone, PartialEq, Eq, Hash)]
pub struct HeartRateMeasurement {
    /// Width the heart rate travels in; kept so encoding is byte-exact.
    pub format: HeartRateFormat,
    /// Heart rate, beats per minute.
    pub bpm: u16,
    /// Whether the sensor reports skin contact.
    pub sensor_contact: SensorContact,
    /// Energy expended since the last reset, kJ; the sensor holds it at 65535
    /// once reached (HRS 1.0, Energy Expended field).
    pub energy_expended_kj: Option<u16>,
    /// RR intervals, oldest first, in 1/1024 s; empty when none were sent.
    pub rr_intervals: Vec<u16>,
}

impl HeartRateMeasurement {
    /// Decodes one value.
    ///
    /// Errors: reserved flag bits 5-7 ([`Error::Reserved`]); RR flag set with
    /// no interval ([`Error::Inconsistent`]); a half interval at the end
    /// ([`Error::Truncated`]); bytes after the energy field when no RR
    /// intervals are flagged ([`Error::Oversized`]).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(CHARACTERISTIC, bytes);
        let flags = r.u8("flags")?;
        if flags & !FLAG_DEFINED != 0 {
            return Err(r
                .reserved("flags", 0, u32::from(flags & !FLAG_DEFINED))
                .into());
        }
        let (format, bpm) = if flags & FLAG_FORMAT_U16 != 0 {
            (HeartRateFormat::Uint16, r.u16("heart_rate")?)
        } else {
            (HeartRateFormat::Uint8, u16::from(r.u8("heart_rate")?))
        };
        let sensor_contact =
            SensorContact::from_code((flags & FLAG_CONTACT_MASK) >> FLAG_CONTACT_SHIFT);
        let energy_expended_kj = if flags & FLAG_ENERGY != 0 {
            Some(r.u16("energy_expended")?)
        } else {
            None
        };
        let mut rr_intervals = Vec::new();
        if flags & FLAG_RR != 0 {
            if r.remaining() == 0 {
                return Err(r
                    .inconsistent(
                        "rr_interval",
                        r.offset(),
                        "flags announce RR intervals but none follow",
                    )
                    .into());
            }
            rr_intervals.reserve(r.remaining() / 2);
            while r.remaining() > 0 {
                rr_intervals.push(r.u16("rr_interval")?);
            }
        }
        r.finish()?;
        Ok(Self {
            format,
            bpm,
            sensor_contact,
            energy_expended_kj,
            rr_intervals,
        })
    }

    /// Encodes the value in the format it names.
    ///
    /// Fails only for a `Uint8` format with a heart rate above 255.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut flags = self.sensor_contact.code() << FLAG_CONTACT_SHIFT;
        if self.format == HeartRateFormat::Uint16 {
            flags |= FLAG_FORMAT_U16;
        }
        if self.energy_expended_kj.is_some() {
            flags |= FLAG_ENERGY;
        }
        if !self.rr_intervals.is_empty() {
            flags |= FLAG_RR;
        }
        let mut w = Writer::new();
        w.u8(flags);
        match self.format {
            HeartRateFormat::Uint8 => {
                let bpm = u8::try_from(self.bpm).map_err(|_| Error::Unencodable {
                    characteristic: CHARACTERISTIC,
                    field: "heart_rate",
                    reason: "above 255 bpm needs the uint16 format",
                })?;
                w.u8(bpm);
            }
            HeartRateFormat::Uint16 => {
                w.u16(self.bpm);
            }
        }
        if let Some(kj) = self.energy_expended_kj {
            w.u16(kj);
        }
        for &rr in &self.rr_intervals {
            w.u16(rr);
        }
        Ok(w.into_vec())
    }

    /// The RR intervals in seconds, oldest first.
    pub fn rr_intervals_s(&self) -> Vec<f64> {
        self.rr_intervals
            .iter()
            .map(|&ticks| rr_ticks_to_seconds(ticks))
            .collect()
    }
}

/// Converts one RR interval from 1/1024 s ticks to seconds (exact: the
/// divisor is a power of two).
pub fn rr_ticks_to_seconds(ticks: u16) -> f64 {
    f64::from(ticks) / RR_TICKS_PER_SECOND
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // HRS 1.0 Heart Rate Measurement: flags 0x16 = uint8 format, contact
    // supported and detected (bits 1-2 = 0b11), RR present; 72 bpm; two RR
    // intervals of 0x0334 = 820/1024 s and 0x0400 = 1 s.
    #[test]
    fn decodes_uint8_rate_with_contact_and_rr_intervals() {
        let m = HeartRateMeasurement::decode(&[0x16, 72, 0x34, 0x03, 0x00, 0x04]).unwrap();
        assert_eq!(m.format, HeartRateFormat::Uint8);
        assert_eq!(m.bpm, 72);
        assert_eq!(m.sensor_contact, SensorContact::Detected);
        assert_eq!(m.sensor_contact.contact(), Some(true));
        assert_eq!(m.energy_expended_kj, None);
        assert_eq!(m.rr_intervals, vec![820, 1024]);
        assert_eq!(m.rr_intervals_s(), vec![820.0 / 1024.0, 1.0]);
    }

    // HRS 1.0 Flags and Energy Expended fields: flags 0x0D = uint16 format,
    // contact code 2 (supported, not detected), energy present; 70 bpm as
    // uint16, 300 kJ.
    #[test]
    fn uint16_rate_of_70_stays_uint16_on_reencode() {
        let bytes = [0x0D, 70, 0x00, 0x2C, 0x01];
        let m = HeartRateMeasurement::decode(&bytes).unwrap();
        assert_eq!(m.format, HeartRateFormat::Uint16);
        assert_eq!(m.bpm, 70);
        assert_eq!(m.sensor_contact, SensorContact::NotDetected);
        assert_eq!(m.energy_expended_kj, Some(300));
        assert_eq!(m.encode().unwrap(), bytes);
    }

    #[test]
    fn contact_codes_zero_and_one_both_mean_unsupported_and_reencode_apart() {
        let zero = HeartRateMeasurement::decode(&[0x00, 60]).unwrap();
        let one = HeartRateMeasurement::decode(&[0x02, 60]).unwrap();
        assert_eq!(zero.sensor_contact.contact(), None);
        assert_eq!(one.sensor_contact.contact(), None);
        assert_eq!(zero.encode().unwrap(), vec![0x00, 60]);
        assert_eq!(one.encode().unwrap(), vec![0x02, 60]);
    }

    #[test]
    fn reserved_flag_bits_are_refused_at_byte_zero() {
        assert_eq!(
            HeartRateMeasurement::decode(&[0x20, 60]),
            Err(Error::Reserved {
                characteristic: CHARACTERISTIC,
                field: "flags",
                offset: 0,
                value: 0x20
            })
        );
    }

    #[test]
    fn rr_flag_without_intervals_is_inconsistent() {
        // uint8 format, RR flag, energy 0x0010: the RR field would start at 4.
        assert_eq!(
            HeartRateMeasurement::decode(&[0x18, 60, 0x10, 0x00]),
            Err(Error::Inconsistent {
                characteristic: CHARACTERISTIC,
                field: "rr_interval",
                offset: 4,
                reason: "flags announce RR intervals but none follow"
            })
        );
    }

    #[test]
    fn odd_trailing_rr_byte_is_truncated() {
        assert_eq!(
            HeartRateMeasurement::decode(&[0x10, 60, 0x00, 0x04, 0x01]),
            Err(Error::Truncated {
                characteristic: CHARACTERISTIC,
                field: "rr_interval",
                offset: 4,
                needed: 2,
                available: 1
            })
        );
    }

    #[test]
    fn missing_energy_field_is_truncated() {
        assert_eq!(
            HeartRateMeasurement::decode(&[0x09, 60, 0]),
            Err(Error::Truncated {
                characteristic: CHARACTERISTIC,
                field: "energy_expended",
                offset: 3,
                needed: 2,
                available: 0
            })
        );
    }

    #[test]
    fn bytes_after_last_flagged_field_are_oversized() {
        assert_eq!(
            HeartRateMeasurement::decode(&[0x00, 60, 0x01]),
            Err(Error::Oversized {
                characteristic: CHARACTERISTIC,
                field: "heart_rate",
                offset: 2,
                extra: 1
            })
        );
    }

    #[test]
    fn uint8_format_refuses_rates_above_255() {
        let m = HeartRateMeasurement {
            format: HeartRateFormat::Uint8,
            bpm: 256,
            sensor_contact: SensorContact::NotSupported,
            energy_expended_kj: None,
            rr_intervals: vec![],
        };
        assert!(matches!(
            m.encode(),
            Err(Error::Unencodable {
                field: "heart_rate",
                ..
            })
        ));
    }

    fn contact() -> impl Strategy<Value = SensorContact> {
        (0u8..4).prop_map(SensorContact::from_code)
    }

    fn measurement() -> impl Strategy<Value = HeartRateMeasurement> {
        (
            prop_oneof![
                (0u16..=255).prop_map(|b| (HeartRateFormat::Uint8, b)),
                any::<u16>().prop_map(|b| (HeartRateFormat::Uint16, b)),
            ],
            contact(),
            proptest::option::of(any::<u16>()),
            proptest::collection::vec(any::<u16>(), 0..12),
        )
            .prop_map(
                |((format, bpm), sensor_contact, energy, rr)| HeartRateMeasurement {
                    format,
                    bpm,
                    sensor_contact,
                    energy_expended_kj: energy,
                    rr_intervals: rr,
                },
            )
    }

    proptest! {
        #[test]
        fn every_encodable_measurement_round_trips(m in measurement()) {
            let bytes = m.encode();
            prop_assert!(bytes.is_ok());
            let bytes = bytes.unwrap_or_default();
            prop_assert_eq!(HeartRateMeasurement::decode(&bytes), Ok(m));
        }

        #[test]
        fn decoded_bytes_reencode_exactly(
            flags in 0u8..0x20,
            body in proptest::collection::vec(any::<u8>(), 0..12),
        ) {
            let mut bytes = vec![flags];
            bytes.extend(body);
            if let Ok(m) = HeartRateMeasurement::decode(&bytes) {
                prop_assert_eq!(m.encode(), Ok(bytes));
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = HeartRateMeasurement::decode(&bytes);
        }
    }
}

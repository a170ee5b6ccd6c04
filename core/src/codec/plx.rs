//! PLX Continuous Measurement (0x2A5F) of the Pulse Oximeter Service.
//!
//! Notified by a pulse oximeter about once a second; the session turns the
//! SpO2PR-Normal pair into `Spo2` and `PulseRate` trend readings and keeps
//! the status fields as quality and provenance.
//!
//! Layout (PLXS 1.0, PLX Continuous Measurement; field formats in the GATT
//! Specification Supplement): Flags (uint8), SpO2PR-Normal (SpO2 SFLOAT %,
//! PR SFLOAT bpm), then as flagged SpO2PR-Fast, SpO2PR-Slow, Measurement
//! Status (uint16), Device and Sensor Status (uint24), Pulse Amplitude Index
//! (SFLOAT %). The measurement status defines bits 5..=15 and the device and
//! sensor status bits 0..=15; every other bit, like flag bits 5..=7, is
//! reserved and refused, because a status we cannot read may say the
//! numbers are invalid.

use super::bytes::{ReadFloat, Reader, WriteFloat, Writer};
use super::float::SFloat;
use super::glucose::bit_set;
use crate::Result;

const CHARACTERISTIC: &str = "PLX Continuous Measurement";

const FLAG_FAST: u8 = 1 << 0;
const FLAG_SLOW: u8 = 1 << 1;
const FLAG_MEASUREMENT_STATUS: u8 = 1 << 2;
const FLAG_DEVICE_STATUS: u8 = 1 << 3;
const FLAG_PULSE_AMPLITUDE: u8 = 1 << 4;
const FLAG_DEFINED: u8 =
    FLAG_FAST | FLAG_SLOW | FLAG_MEASUREMENT_STATUS | FLAG_DEVICE_STATUS | FLAG_PULSE_AMPLITUDE;

/// One SpO2 and pulse-rate pair, as sent.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpO2Pr {
    /// Oxygen saturation, percent; special values survive.
    pub spo2: SFloat,
    /// Pulse rate, beats per minute; special values survive.
    pub pulse_rate: SFloat,
}

impl SpO2Pr {
    /// SpO2 in percent; `None` for a special value.
    pub fn spo2_percent(&self) -> Option<f64> {
        self.spo2.to_f64()
    }

    /// Pulse rate in bpm; `None` for a special value.
    pub fn pulse_rate_bpm(&self) -> Option<f64> {
        self.pulse_rate.to_f64()
    }

    fn read(r: &mut Reader<'_>, spo2: &'static str, pr: &'static str) -> Result<Self> {
        Ok(Self {
            spo2: r.sfloat(spo2)?,
            pulse_rate: r.sfloat(pr)?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.sfloat(self.spo2).sfloat(self.pulse_rate);
    }
}

bit_set! {
    /// Measurement Status: how far the numbers can be trusted. Bits 0..=4
    /// are reserved.
    PlxMeasurementStatus: u16 {
        /// Measurement ongoing.
        measurement_ongoing = 5,
        /// Early estimated data.
        early_estimated_data = 6,
        /// Validated data.
        validated_data = 7,
        /// Fully qualified data.
        fully_qualified_data = 8,
        /// Data from measurement storage.
        data_from_storage = 9,
        /// Data for demonstration.
        data_for_demonstration = 10,
        /// Data for testing.
        data_for_testing = 11,
        /// Calibration ongoing.
        calibration_ongoing = 12,
        /// Measurement unavailable.
        measurement_unavailable = 13,
        /// Questionable measurement detected.
        questionable_measurement = 14,
        /// Invalid measurement detected.
        invalid_measurement = 15,
    }
}

bit_set! {
    /// Device and Sensor Status (uint24 on the wire). Bits 16..=23 are
    /// reserved.
    PlxDeviceSensorStatus: u32 {
        /// Extended display update ongoing.
        extended_display_update_ongoing = 0,
        /// Equipment malfunction detected.
        equipment_malfunction = 1,
        /// Signal processing irregularity detected.
        signal_processing_irregularity = 2,
        /// Inadequate signal detected.
        inadequate_signal = 3,
        /// Poor signal detected.
        poor_signal = 4,
        /// Low perfusion detected.
        low_perfusion = 5,
        /// Erratic signal detected.
        erratic_signal = 6,
        /// Nonpulsatile signal detected.
        nonpulsatile_signal = 7,
        /// Questionable pulse detected.
        questionable_pulse = 8,
        /// Signal analysis ongoing.
        signal_analysis_ongoing = 9,
        /// Sensor interference detected.
        sensor_interference = 10,
        /// Sensor unconnected to user.
        sensor_unconnected = 11,
        /// Unknown sensor connected.
        unknown_sensor = 12,
        /// Sensor displaced.
        sensor_displaced = 13,
        /// Sensor malfunctioning.
        sensor_malfunctioning = 14,
        /// Sensor disconnected.
        sensor_disconnected = 15,
    }
}

/// One PLX Continuous Measurement value.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlxContinuousMeasurement {
    /// SpO2PR-Normal: the pair to show and store; always present.
    pub normal: SpO2Pr,
    /// SpO2PR-Fast (shorter averaging), when present.
    pub fast: Option<SpO2Pr>,
    /// SpO2PR-Slow (longer averaging), when present.
    pub slow: Option<SpO2Pr>,
    /// Measurement status, when present.
    pub measurement_status: Option<PlxMeasurementStatus>,
    /// Device and sensor status, when present.
    pub device_sensor_status: Option<PlxDeviceSensorStatus>,
    /// Pulse amplitude index, percent, when present.
    pub pulse_amplitude_index: Option<SFloat>,
}

impl PlxContinuousMeasurement {
    /// Decodes one value.
    ///
    /// Errors: reserved bits in flags or either status field
    /// ([`crate::Error::Reserved`]), short or long input
    /// ([`crate::Error::Truncated`], [`crate::Error::Oversized`]).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(CHARACTERISTIC, bytes);
        let flags = r.u8("flags")?;
        if flags & !FLAG_DEFINED != 0 {
            return Err(r
                .reserved("flags", 0, u32::from(flags & !FLAG_DEFINED))
                .into());
        }
        let normal = SpO2Pr::read(&mut r, "spo2_normal", "pulse_rate_normal")?;
        let fast = if flags & FLAG_FAST != 0 {
            Some(SpO2Pr::read(&mut r, "spo2_fast", "pulse_rate_fast")?)
        } else {
            None
        };
        let slow = if flags & FLAG_SLOW != 0 {
            Some(SpO2Pr::read(&mut r, "spo2_slow", "pulse_rate_slow")?)
        } else {
            None
        };
        let measurement_status =
            if flags & FLAG_MEASUREMENT_STATUS != 0 {
                let at = r.offset();
                let bits = r.u16("measurement_status")?;
                Some(PlxMeasurementStatus::from_bits(bits).map_err(|reserved| {
                    r.reserved("measurement_status", at, u32::from(reserved))
                })?)
            } else {
                None
            };
        let device_sensor_status = if flags & FLAG_DEVICE_STATUS != 0 {
            let at = r.offset();
            let bits = r.u24("device_sensor_status")?;
            Some(
                PlxDeviceSensorStatus::from_bits(bits)
                    .map_err(|reserved| r.reserved("device_sensor_status", at, reserved))?,
            )
        } else {
            None
        };
        let pulse_amplitude_index = if flags & FLAG_PULSE_AMPLITUDE != 0 {
            Some(r.sfloat("pulse_amplitude_index")?)
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            normal,
            fast,
            slow,
            measurement_status,
            device_sensor_status,
            pulse_amplitude_index,
        })
    }

    /// Encodes the value. Infallible: every value of these types has a
    /// wire form that decodes back to it.
    pub fn encode(&self) -> Vec<u8> {
        let mut flags = 0;
        if self.fast.is_some() {
            flags |= FLAG_FAST;
        }
        if self.slow.is_some() {
            flags |= FLAG_SLOW;
        }
        if self.measurement_status.is_some() {
            flags |= FLAG_MEASUREMENT_STATUS;
        }
        if self.device_sensor_status.is_some() {
            flags |= FLAG_DEVICE_STATUS;
        }
        if self.pulse_amplitude_index.is_some() {
            flags |= FLAG_PULSE_AMPLITUDE;
        }
        let mut w = Writer::new();
        w.u8(flags);
        self.normal.write(&mut w);
        for pair in [&self.fast, &self.slow].into_iter().flatten() {
            pair.write(&mut w);
        }
        if let Some(status) = self.measurement_status {
            w.u16(status.to_bits());
        }
        if let Some(status) = self.device_sensor_status {
            w.u24(status.to_bits());
        }
        if let Some(pai) = self.pulse_amplitude_index {
            w.sfloat(pai);
        }
        w.into_vec()
    }

    /// Pulse amplitude index in percent; `None` when absent or special.
    pub fn pulse_amplitude_index_percent(&self) -> Option<f64> {
        self.pulse_amplitude_index?.to_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use proptest::prelude::*;

    // PLXS 1.0 PLX Continuous Measurement, every field: flags 0x1F; Normal
    // SpO2 0x0062 = 98 %, PR 0x0048 = 72 bpm; Fast 0x0061 = 97, 0x004A =
    // 74; Slow 0xF3D7 = 983 × 10^-1 = 98.3, 0xF2D0 = 720 × 10^-1 = 72.0;
    // measurement status 0x0080 (validated data); device and sensor status
    // 0x000020 (low perfusion); pulse amplitude index 0xF019 = 2.5 %.
    const FULL: [u8; 20] = [
        0x1F, 0x62, 0x00, 0x48, 0x00, 0x61, 0x00, 0x4A, 0x00, 0xD7, 0xF3, 0xD0, 0xF2, 0x80, 0x00,
        0x20, 0x00, 0x00, 0x19, 0xF0,
    ];

    fn full() -> Vec<u8> {
        FULL.to_vec()
    }

    #[test]
    fn decodes_every_field_from_the_specification_layout() {
        let m = PlxContinuousMeasurement::decode(&full()).unwrap();
        assert_eq!(m.normal.spo2_percent(), Some(98.0));
        assert_eq!(m.normal.pulse_rate_bpm(), Some(72.0));
        let fast = m.fast.unwrap();
        assert_eq!(
            (fast.spo2_percent(), fast.pulse_rate_bpm()),
            (Some(97.0), Some(74.0))
        );
        let slow = m.slow.unwrap();
        assert!((slow.spo2_percent().unwrap() - 98.3).abs() < 1e-9);
        assert!((slow.pulse_rate_bpm().unwrap() - 72.0).abs() < 1e-9);
        let status = m.measurement_status.unwrap();
        assert_eq!(status.set_names(), vec!["validated_data"]);
        let device = m.device_sensor_status.unwrap();
        assert!(device.low_perfusion);
        assert_eq!(device.set_names(), vec!["low_perfusion"]);
        assert!((m.pulse_amplitude_index_percent().unwrap() - 2.5).abs() < 1e-9);
        assert_eq!(m.encode(), full());
    }

    #[test]
    fn normal_pair_alone_with_nan_pulse_rate() {
        let bytes = [0x00, 0x5F, 0x00, 0xFF, 0x07];
        let m = PlxContinuousMeasurement::decode(&bytes).unwrap();
        assert_eq!(m.normal.spo2_percent(), Some(95.0));
        assert_eq!(m.normal.pulse_rate, SFloat::NAN);
        assert_eq!(m.normal.pulse_rate_bpm(), None);
        assert_eq!(m.fast, None);
        assert_eq!(m.encode(), bytes);
    }

    #[test]
    fn reserved_flag_bits_are_refused() {
        assert_eq!(
            PlxContinuousMeasurement::decode(&[0x80, 0x5F, 0x00, 0x48, 0x00]),
            Err(Error::Reserved {
                characteristic: CHARACTERISTIC,
                field: "flags",
                offset: 0,
                value: 0x80
            })
        );
    }

    #[test]
    fn reserved_measurement_status_bits_are_refused_at_their_offset() {
        let mut bytes = full();
        bytes[13] = 0x81; // bit 0 reserved, bit 7 defined
        assert_eq!(
            PlxContinuousMeasurement::decode(&bytes),
            Err(Error::Reserved {
                characteristic: CHARACTERISTIC,
                field: "measurement_status",
                offset: 13,
                value: 0x01
            })
        );
    }

    #[test]
    fn reserved_device_status_bits_are_refused_at_their_offset() {
        let mut bytes = full();
        bytes[17] = 0x01; // bit 16
        assert_eq!(
            PlxContinuousMeasurement::decode(&bytes),
            Err(Error::Reserved {
                characteristic: CHARACTERISTIC,
                field: "device_sensor_status",
                offset: 15,
                value: 0x01_0000
            })
        );
    }

    #[test]
    fn missing_slow_pulse_rate_is_truncated() {
        assert_eq!(
            PlxContinuousMeasurement::decode(&full()[..12]),
            Err(Error::Truncated {
                characteristic: CHARACTERISTIC,
                field: "pulse_rate_slow",
                offset: 11,
                needed: 2,
                available: 1
            })
        );
    }

    #[test]
    fn bytes_after_pulse_amplitude_index_are_oversized() {
        let mut bytes = full();
        bytes.extend([0, 0, 0]);
        assert_eq!(
            PlxContinuousMeasurement::decode(&bytes),
            Err(Error::Oversized {
                characteristic: CHARACTERISTIC,
                field: "pulse_amplitude_index",
                offset: 20,
                extra: 3
            })
        );
    }

    fn pair() -> impl Strategy<Value = SpO2Pr> {
        (any::<u16>(), any::<u16>()).prop_map(|(s, p)| SpO2Pr {
            spo2: SFloat::from_raw(s),
            pulse_rate: SFloat::from_raw(p),
        })
    }

    fn measurement() -> impl Strategy<Value = PlxContinuousMeasurement> {
        (
            pair(),
            proptest::option::of(pair()),
            proptest::option::of(pair()),
            proptest::option::of(0u16..0x800),
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u16>()),
        )
            .prop_map(
                |(normal, fast, slow, ms, ds, pai)| PlxContinuousMeasurement {
                    normal,
                    fast,
                    slow,
                    // Shift into the defined bits 5..=15.
                    measurement_status: ms
                        .map(|b| PlxMeasurementStatus::from_bits(b << 5).unwrap_or_default()),
                    device_sensor_status: ds.map(|b| {
                        PlxDeviceSensorStatus::from_bits(u32::from(b)).unwrap_or_default()
                    }),
                    pulse_amplitude_index: pai.map(SFloat::from_raw),
                },
            )
    }

    proptest! {
        #[test]
        fn every_measurement_round_trips(m in measurement()) {
            prop_assert_eq!(PlxContinuousMeasurement::decode(&m.encode()), Ok(m));
        }

        #[test]
        fn decoded_bytes_reencode_exactly(
            flags in 0u8..0x20,
            body in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            let mut bytes = vec![flags];
            bytes.extend(body);
            if let Ok(m) = PlxContinuousMeasurement::decode(&bytes) {
                prop_assert_eq!(m.encode(), bytes);
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = PlxContinuousMeasurement::decode(&bytes);
        }
    }
}

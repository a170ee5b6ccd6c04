//! Glucose Measurement (0x2A18): one stored blood-glucose test.
//!
//! Layout (GLS 1.0, Glucose Measurement characteristic; field formats in the
//! GATT Specification Supplement): Flags (uint8), Sequence Number (uint16),
//! Base Time (Date Time, 7 bytes), then as flagged Time Offset (sint16
//! minutes), Glucose Concentration (SFLOAT) with Type-Sample Location
//! (uint8: type low nibble, location high nibble), and Sensor Status
//! Annunciation (uint16).
//!
//! The concentration stays a raw [`SFloat`] in kg/L or mol/L as sent;
//! [`GlucoseMeasurement::concentration_mg_dl`] gives the canonical unit.

use super::{DateTime, DateTimeFields, bit_set, code_enum};
use crate::codec::bytes::{ReadFloat, Reader, WriteFloat, Writer};
use crate::codec::float::SFloat;
use crate::model::MG_DL_PER_MMOL_L;
use crate::{Error, Result};
use chrono::{NaiveDateTime, TimeDelta};

const CHARACTERISTIC: &str = "Glucose Measurement";

const FLAG_TIME_OFFSET: u8 = 1 << 0;
const FLAG_CONCENTRATION: u8 = 1 << 1;
const FLAG_MOL_PER_L: u8 = 1 << 2;
const FLAG_SENSOR_STATUS: u8 = 1 << 3;
const FLAG_CONTEXT_FOLLOWS: u8 = 1 << 4;
const FLAG_DEFINED: u8 = FLAG_TIME_OFFSET
    | FLAG_CONCENTRATION
    | FLAG_MOL_PER_L
    | FLAG_SENSOR_STATUS
    | FLAG_CONTEXT_FOLLOWS;

const BASE_TIME: DateTimeFields = DateTimeFields {
    year: "base_time.year",
    month: "base_time.month",
    day: "base_time.day",
    hours: "base_time.hours",
    minutes: "base_time.minutes",
    seconds: "base_time.seconds",
};

/// Unit of the Glucose Concentration field (flags bit 2).
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConcentrationUnit {
    /// Bit clear: kilograms per litre.
    #[default]
    KgPerL,
    /// Bit set: moles per litre.
    MolPerL,
}

code_enum! {
    /// What was sampled (Type, low nibble of Type-Sample Location). Code 0
    /// and 11..=15 are reserved.
    SampleType, max = 0x0F, {
        /// Capillary whole blood.
        CapillaryWholeBlood = 1 => "capillary_whole_blood",
        /// Capillary plasma.
        CapillaryPlasma = 2 => "capillary_plasma",
        /// Venous whole blood.
        VenousWholeBlood = 3 => "venous_whole_blood",
        /// Venous plasma.
        VenousPlasma = 4 => "venous_plasma",
        /// Arterial whole blood.
        ArterialWholeBlood = 5 => "arterial_whole_blood",
        /// Arterial plasma.
        ArterialPlasma = 6 => "arterial_plasma",
        /// Undetermined whole blood.
        UndeterminedWholeBlood = 7 => "undetermined_whole_blood",
        /// Undetermined plasma.
        UndeterminedPlasma = 8 => "undetermined_plasma",
        /// Interstitial fluid (ISF).
        InterstitialFluid = 9 => "interstitial_fluid",
        /// Control solution: a meter check, not a patient value.
        ControlSolution = 10 => "control_solution",
    }
}

code_enum! {
    /// Where the sample was taken (Sample Location, high nibble of
    /// Type-Sample Location). Code 0 and 5..=14 are reserved.
    SampleLocation, max = 0x0F, {
        /// Finger.
        Finger = 1 => "finger",
        /// Alternate site test (AST).
        AlternateSiteTest = 2 => "alternate_site_test",
        /// Earlobe.
        Earlobe = 3 => "earlobe",
        /// Control solution.
        ControlSolution = 4 => "control_solution",
        /// The meter does not know the location.
        NotAvailable = 15 => "not_available",
    }
}

bit_set! {
    /// Sensor Status Annunciation: conditions at the time of measurement.
    /// Bits 12..=15 are reserved.
    SensorStatusAnnunciation: u16 {
        /// Device battery low.
        device_battery_low = 0,
        /// Sensor malfunction or faulting.
        sensor_malfunction = 1,
        /// Sample size for blood or control solution insufficient.
        sample_size_insufficient = 2,
        /// Strip insertion error.
        strip_insertion_error = 3,
        /// Strip type incorrect for the device.
        strip_type_incorrect = 4,
        /// Result higher than the device can process.
        result_too_high = 5,
        /// Result lower than the device can process.
        result_too_low = 6,
        /// Sensor temperature too high for a valid result.
        temperature_too_high = 7,
        /// Sensor temperature too low for a valid result.
        temperature_too_low = 8,
        /// Read interrupted because the strip was pulled too soon.
        read_interrupted = 9,
        /// General device fault.
        general_device_fault = 10,
        /// Time fault: the time may be inaccurate.
        time_fault = 11,
    }
}

/// A glucose concentration with what and where it was sampled.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlucoseSample {
    /// Concentration as sent, in the measurement's
    /// [`GlucoseMeasurement::concentration_unit`]; special values survive.
    pub concentration: SFloat,
    /// Sample type.
    pub sample_type: SampleType,
    /// Sample location.
    pub sample_location: SampleLocation,
}

/// One Glucose Measurement value.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlucoseMeasurement {
    /// Sequence number of the record in the meter; the context, if any,
    /// carries the same one.
    pub sequence_number: u16,
    /// Meter-local time of the test, before [`Self::time_offset_min`].
    pub base_time: DateTime,
    /// Minutes to add to the base time (the meter's clock adjustments).
    pub time_offset_min: Option<i16>,
    /// The concentration with sample type and location, when present.
    pub sample: Option<GlucoseSample>,
    /// Unit of the concentration (flags bit 2). Kept even without a sample
    /// so the flags byte re-encodes exactly.
    pub concentration_unit: ConcentrationUnit,
    /// Sensor status annunciation, when present.
    pub sensor_status: Option<SensorStatusAnnunciation>,
    /// Whether a Glucose Measurement Context with the same sequence number
    /// follows.
    pub context_follows: bool,
}

impl GlucoseMeasurement {
    /// Decodes one value.
    ///
    /// Errors: reserved bits in flags or sensor status ([`Error::Reserved`]),
    /// out-of-range base time fields ([`Error::Reserved`]), a base-time day
    /// that does not exist ([`Error::Inconsistent`]), short or long input
    /// ([`Error::Truncated`], [`Error::Oversized`]).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(CHARACTERISTIC, bytes);
        let flags = r.u8("flags")?;
        if flags & !FLAG_DEFINED != 0 {
            return Err(r
                .reserved("flags", 0, u32::from(flags & !FLAG_DEFINED))
                .into());
        }
        let sequence_number = r.u16("sequence_number")?;
        let base_time = DateTime::read(&mut r, BASE_TIME)?;
        let time_offset_min = if flags & FLAG_TIME_OFFSET != 0 {
            Some(r.i16("time_offset")?)
        } else {
            None
        };
        let sample = if flags & FLAG_CONCENTRATION != 0 {
            let concentration = r.sfloat("glucose_concentration")?;
            let type_location = r.u8("type_sample_location")?;
            Some(GlucoseSample {
                concentration,
                sample_type: SampleType::from_code(type_location & 0x0F),
                sample_location: SampleLocation::from_code(type_location >> 4),
            })
        } else {
            None
        };
        let sensor_status = if flags & FLAG_SENSOR_STATUS != 0 {
            let at = r.offset();
            let bits = r.u16("sensor_status_annunciation")?;
            Some(
                SensorStatusAnnunciation::from_bits(bits).map_err(|reserved| {
                    r.reserved("sensor_status_annunciation", at, u32::from(reserved))
                })?,
            )
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            sequence_number,
            base_time,
            time_offset_min,
            sample,
            concentration_unit: if flags & FLAG_MOL_PER_L != 0 {
                ConcentrationUnit::MolPerL
            } else {
                ConcentrationUnit::KgPerL
            },
            sensor_status,
            context_follows: flags & FLAG_CONTEXT_FOLLOWS != 0,
        })
    }

    /// Encodes the value; fails for a field [`Self::decode`] would refuse or
    /// could not give back (an out-of-range base time, a `Reserved` code that
    /// is defined or wider than a nibble).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut flags = 0;
        if self.time_offset_min.is_some() {
            flags |= FLAG_TIME_OFFSET;
        }
        if self.sample.is_some() {
            flags |= FLAG_CONCENTRATION;
        }
        if self.concentration_unit == ConcentrationUnit::MolPerL {
            flags |= FLAG_MOL_PER_L;
        }
        if self.sensor_status.is_some() {
            flags |= FLAG_SENSOR_STATUS;
        }
        if self.context_follows {
            flags |= FLAG_CONTEXT_FOLLOWS;
        }
        let mut w = Writer::new();
        w.u8(flags).u16(self.sequence_number);
        self.base_time.write(&mut w, CHARACTERISTIC, BASE_TIME)?;
        if let Some(offset) = self.time_offset_min {
            w.i16(offset);
        }
        if let Some(sample) = &self.sample {
            if !sample.sample_type.is_encodable() || !sample.sample_location.is_encodable() {
                return Err(Error::Unencodable {
                    characteristic: CHARACTERISTIC,
                    field: "type_sample_location",
                    reason: "reserved code that is defined or does not fit a nibble",
                });
            }
            w.sfloat(sample.concentration)
                .u8(sample.sample_type.code() | (sample.sample_location.code() << 4));
        }
        if let Some(status) = self.sensor_status {
            w.u16(status.to_bits());
        }
        Ok(w.into_vec())
    }

    /// The concentration in canonical mg/dL; `None` when absent or a special
    /// value (NaN, NRes, ±INF, reserved).
    ///
    /// The unit's power of ten is applied to the SFLOAT's exponent rather
    /// than multiplied in, so 120 × 10^-5 kg/L reads as exactly 120 mg/dL
    /// (the same factors as [`crate::model::kg_l_to_mg_dl`] and
    /// [`crate::model::mol_l_to_mg_dl`]).
    pub fn concentration_mg_dl(&self) -> Option<f64> {
        let c = self.sample?.concentration;
        match self.concentration_unit {
            // kg/L × 10^5 = mg/dL.
            ConcentrationUnit::KgPerL => c.scaled(5).ok(),
            // mol/L × 10^3 = mmol/L.
            ConcentrationUnit::MolPerL => c.scaled(3).ok().map(|mmol| mmol * MG_DL_PER_MMOL_L),
        }
    }

    /// Base time plus time offset, in the meter's local time (this
    /// characteristic carries no zone); `None` when the base time's date is
    /// not known.
    pub fn absolute_time(&self) -> Option<NaiveDateTime> {
        let base = self.base_time.to_naive()?;
        let offset = TimeDelta::try_minutes(i64::from(self.time_offset_min.unwrap_or(0)))?;
        base.checked_add_signed(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    // GLS 1.0 Glucose Measurement, all fields present: flags 0x1B (time
    // offset, concentration + type/location, kg/L, sensor status, context
    // follows); sequence 0x0102; base time 2024-03-15 07:30:00 (year 0x07E8);
    // offset -5 min (0xFFFB); concentration 0xB04B = 75 × 10^-5 kg/L
    // = 75 mg/dL; type 1 (capillary whole blood), location 1 (finger) ->
    // 0x11; status 0x0001 (device battery low).
    const FULL: [u8; 17] = [
        0x1B, 0x02, 0x01, 0xE8, 0x07, 3, 15, 7, 30, 0, 0xFB, 0xFF, 0x4B, 0xB0, 0x11, 0x01, 0x00,
    ];

    #[test]
    fn decodes_every_field_from_the_specification_layout() {
        let m = GlucoseMeasurement::decode(&FULL).unwrap();
        assert_eq!(m.sequence_number, 0x0102);
        assert_eq!(
            m.base_time,
            DateTime {
                year: 2024,
                month: 3,
                day: 15,
                hours: 7,
                minutes: 30,
                seconds: 0
            }
        );
        assert_eq!(m.time_offset_min, Some(-5));
        let sample = m.sample.unwrap();
        assert_eq!(sample.concentration.mantissa(), 75);
        assert_eq!(sample.concentration.exponent(), -5);
        assert_eq!(sample.sample_type, SampleType::CapillaryWholeBlood);
        assert_eq!(sample.sample_location, SampleLocation::Finger);
        assert_eq!(m.concentration_unit, ConcentrationUnit::KgPerL);
        let status = m.sensor_status.unwrap();
        assert!(status.device_battery_low);
        assert_eq!(status.set_names(), vec!["device_battery_low"]);
        assert!(m.context_follows);
        assert!((m.concentration_mg_dl().unwrap() - 75.0).abs() < 1e-9);
        let expected = NaiveDate::from_ymd_opt(2024, 3, 15)
            .unwrap()
            .and_hms_opt(7, 25, 0)
            .unwrap();
        assert_eq!(m.absolute_time(), Some(expected));
        assert_eq!(m.encode().unwrap(), FULL);
    }

    // Flags 0x06: concentration in mol/L, no offset/status. 0xC037 = 55 ×
    // 10^-4 mol/L = 5.5 mmol/L = 99.0858 mg/dL; type 9 (ISF), location 15
    // (not available) -> 0xF9.
    #[test]
    fn mol_per_litre_converts_with_the_molar_mass() {
        let bytes = [0x06, 0, 0, 0xE8, 0x07, 1, 1, 0, 0, 0, 0x37, 0xC0, 0xF9];
        let m = GlucoseMeasurement::decode(&bytes).unwrap();
        assert_eq!(m.concentration_unit, ConcentrationUnit::MolPerL);
        assert!((m.concentration_mg_dl().unwrap() - 99.0858).abs() < 1e-9);
        let sample = m.sample.unwrap();
        assert_eq!(sample.sample_type, SampleType::InterstitialFluid);
        assert_eq!(sample.sample_location, SampleLocation::NotAvailable);
        assert_eq!(m.encode().unwrap(), bytes);
    }

    #[test]
    fn special_concentration_survives_and_has_no_mg_dl() {
        // 0x07FF = NaN; type 0 and location 0 are reserved codes, kept.
        let bytes = [0x02, 0, 0, 0xE8, 0x07, 1, 1, 0, 0, 0, 0xFF, 0x07, 0x00];
        let m = GlucoseMeasurement::decode(&bytes).unwrap();
        let sample = m.sample.unwrap();
        assert_eq!(sample.concentration, SFloat::NAN);
        assert_eq!(sample.sample_type, SampleType::Reserved(0));
        assert_eq!(sample.sample_location, SampleLocation::Reserved(0));
        assert_eq!(m.concentration_mg_dl(), None);
        assert_eq!(m.encode().unwrap(), bytes);
    }

    #[test]
    fn unit_bit_without_concentration_is_kept() {
        let bytes = [0x04, 7, 0, 0xE8, 0x07, 1, 1, 0, 0, 0];
        let m = GlucoseMeasurement::decode(&bytes).unwrap();
        assert_eq!(m.sample, None);
        assert_eq!(m.concentration_unit, ConcentrationUnit::MolPerL);
        assert_eq!(m.encode().unwrap(), bytes);
    }

    #[test]
    fn unknown_base_date_gives_no_absolute_time() {
        let bytes = [0x00, 0, 0, 0, 0, 0, 0, 12, 0, 0];
        let m = GlucoseMeasurement::decode(&bytes).unwrap();
        assert_eq!(m.absolute_time(), None);
    }

    #[test]
    fn reserved_flag_bits_are_refused() {
        let mut bytes = FULL;
        bytes[0] |= 0x40;
        assert_eq!(
            GlucoseMeasurement::decode(&bytes),
            Err(Error::Reserved {
                characteristic: CHARACTERISTIC,
                field: "flags",
                offset: 0,
                value: 0x40
            })
        );
    }

    #[test]
    fn reserved_sensor_status_bits_are_refused_at_their_offset() {
        let mut bytes = FULL;
        bytes[16] = 0x10; // bit 12
        assert_eq!(
            GlucoseMeasurement::decode(&bytes),
            Err(Error::Reserved {
                characteristic: CHARACTERISTIC,
                field: "sensor_status_annunciation",
                offset: 15,
                value: 0x1000
            })
        );
    }

    #[test]
    fn month_13_is_reserved_at_byte_5() {
        let mut bytes = FULL;
        bytes[5] = 13;
        assert_eq!(
            GlucoseMeasurement::decode(&bytes),
            Err(Error::Reserved {
                characteristic: CHARACTERISTIC,
                field: "base_time.month",
                offset: 5,
                value: 13
            })
        );
    }

    #[test]
    fn april_31_is_inconsistent_at_byte_6() {
        let mut bytes = FULL;
        bytes[5] = 4;
        bytes[6] = 31;
        assert_eq!(
            GlucoseMeasurement::decode(&bytes),
            Err(Error::Inconsistent {
                characteristic: CHARACTERISTIC,
                field: "base_time.day",
                offset: 6,
                reason: "day does not exist in that month"
            })
        );
    }

    #[test]
    fn missing_type_location_is_truncated() {
        assert_eq!(
            GlucoseMeasurement::decode(FULL.get(..14).unwrap()),
            Err(Error::Truncated {
                characteristic: CHARACTERISTIC,
                field: "type_sample_location",
                offset: 14,
                needed: 1,
                available: 0
            })
        );
    }

    #[test]
    fn byte_after_sensor_status_is_oversized() {
        let mut bytes = FULL.to_vec();
        bytes.push(0);
        assert_eq!(
            GlucoseMeasurement::decode(&bytes),
            Err(Error::Oversized {
                characteristic: CHARACTERISTIC,
                field: "sensor_status_annunciation",
                offset: 17,
                extra: 1
            })
        );
    }

    #[test]
    fn defined_code_disguised_as_reserved_is_unencodable() {
        let mut m = GlucoseMeasurement::decode(&FULL).unwrap();
        if let Some(sample) = m.sample.as_mut() {
            sample.sample_type = SampleType::Reserved(1);
        }
        assert!(matches!(
            m.encode(),
            Err(Error::Unencodable {
                field: "type_sample_location",
                ..
            })
        ));
    }

    fn date_time() -> impl Strategy<Value = DateTime> {
        (
            prop_oneof![Just(0u16), 1582u16..=9999],
            0u8..=12,
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

    fn measurement() -> impl Strategy<Value = GlucoseMeasurement> {
        let sample = (any::<u16>(), 0u8..16, 0u8..16).prop_map(|(raw, t, l)| GlucoseSample {
            concentration: SFloat::from_raw(raw),
            sample_type: SampleType::from_code(t),
            sample_location: SampleLocation::from_code(l),
        });
        (
            any::<u16>(),
            date_time(),
            proptest::option::of(any::<i16>()),
            proptest::option::of(sample),
            any::<bool>(),
            proptest::option::of(0u16..0x1000),
            any::<bool>(),
        )
            .prop_map(|(seq, base_time, offset, sample, mol, status, ctx)| {
                GlucoseMeasurement {
                    sequence_number: seq,
                    base_time,
                    time_offset_min: offset,
                    sample,
                    concentration_unit: if mol {
                        ConcentrationUnit::MolPerL
                    } else {
                        ConcentrationUnit::KgPerL
                    },
                    sensor_status: status
                        .map(|b| SensorStatusAnnunciation::from_bits(b).unwrap_or_default()),
                    context_follows: ctx,
                }
            })
    }

    proptest! {
        #[test]
        fn every_encodable_measurement_round_trips(m in measurement()) {
            let bytes = m.encode();
            prop_assert!(bytes.is_ok());
            let bytes = bytes.unwrap_or_default();
            prop_assert_eq!(GlucoseMeasurement::decode(&bytes), Ok(m));
        }

        #[test]
        fn decoded_bytes_reencode_exactly(
            flags in 0u8..0x20,
            seq in any::<u16>(),
            base in date_time(),
            body in proptest::collection::vec(any::<u8>(), 0..9),
        ) {
            // A valid base time so that most cases reach the optional fields.
            let mut bytes = vec![flags];
            bytes.extend(seq.to_le_bytes());
            bytes.extend(base.year.to_le_bytes());
            bytes.extend([base.month, base.day, base.hours, base.minutes, base.seconds]);
            bytes.extend(body);
            if let Ok(m) = GlucoseMeasurement::decode(&bytes) {
                prop_assert_eq!(m.encode(), Ok(bytes));
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = GlucoseMeasurement::decode(&bytes);
        }

        #[test]
        fn absolute_time_is_base_plus_offset(base in date_time(), offset in any::<i16>()) {
            let m = GlucoseMeasurement {
                sequence_number: 0,
                base_time: base,
                time_offset_min: Some(offset),
                sample: None,
                concentration_unit: ConcentrationUnit::KgPerL,
                sensor_status: None,
                context_follows: false,
            };
            match (base.to_naive(), m.absolute_time()) {
                (Some(b), Some(t)) => prop_assert_eq!((t - b).num_minutes(), i64::from(offset)),
                (None, None) => {}
                (b, t) => prop_assert!(false, "base {:?} but absolute {:?}", b, t),
            }
        }
    }
}

//! Glucose Measurement Context (0x2A34): what was going on around a test.
//!
//! Layout (GLS 1.0, Glucose Measurement Context characteristic): Flags
//! (uint8), Sequence Number (uint16), then as flagged Extended Flags
//! (uint8), Carbohydrate ID (uint8) + Carbohydrate (SFLOAT kg), Meal
//! (uint8), Tester-Health (uint8: tester low nibble, health high nibble),
//! Exercise Duration (uint16 s) + Exercise Intensity (uint8 %), Medication
//! ID (uint8) + Medication (SFLOAT kg or L), HbA1c (SFLOAT %).
//!
//! The context is provenance for the measurement with the same sequence
//! number; nothing here becomes a reading on its own, so quantities stay as
//! sent with only convenience conversions.

use super::code_enum;
use crate::codec::bytes::{ReadFloat, Reader, WriteFloat, Writer};
use crate::codec::float::SFloat;
use crate::{Error, Result};

const CHARACTERISTIC: &str = "Glucose Measurement Context";

const FLAG_CARBOHYDRATE: u8 = 1 << 0;
const FLAG_MEAL: u8 = 1 << 1;
const FLAG_TESTER_HEALTH: u8 = 1 << 2;
const FLAG_EXERCISE: u8 = 1 << 3;
const FLAG_MEDICATION: u8 = 1 << 4;
const FLAG_MEDICATION_LITRES: u8 = 1 << 5;
const FLAG_HBA1C: u8 = 1 << 6;
const FLAG_EXTENDED: u8 = 1 << 7;

/// Exercise Duration value meaning "longer than the field can count".
pub const EXERCISE_DURATION_OVERRUN: u16 = 0xFFFF;

code_enum! {
    /// Which meal the carbohydrate belongs to. Code 0 and 8..=255 are
    /// reserved.
    CarbohydrateId, max = 0xFF, {
        /// Breakfast.
        Breakfast = 1 => "breakfast",
        /// Lunch.
        Lunch = 2 => "lunch",
        /// Dinner.
        Dinner = 3 => "dinner",
        /// Snack.
        Snack = 4 => "snack",
        /// Drink.
        Drink = 5 => "drink",
        /// Supper.
        Supper = 6 => "supper",
        /// Brunch.
        Brunch = 7 => "brunch",
    }
}

code_enum! {
    /// When the test was taken relative to a meal. Code 0 and 6..=255 are
    /// reserved.
    Meal, max = 0xFF, {
        /// Before a meal.
        Preprandial = 1 => "preprandial",
        /// After a meal.
        Postprandial = 2 => "postprandial",
        /// Fasting.
        Fasting = 3 => "fasting",
        /// Casual (snacks, drinks, ...).
        Casual = 4 => "casual",
        /// Bedtime.
        Bedtime = 5 => "bedtime",
    }
}

code_enum! {
    /// Who took the test (low nibble of Tester-Health). Code 0 and 4..=14
    /// are reserved.
    Tester, max = 0x0F, {
        /// The patient.
        SelfTest = 1 => "self",
        /// A health care professional.
        HealthCareProfessional = 2 => "health_care_professional",
        /// A laboratory test.
        LabTest = 3 => "lab_test",
        /// Not available.
        NotAvailable = 15 => "not_available",
    }
}

code_enum! {
    /// The patient's state of health (high nibble of Tester-Health). Code 0
    /// and 6..=14 are reserved.
    Health, max = 0x0F, {
        /// Minor health issues.
        MinorIssues = 1 => "minor_issues",
        /// Major health issues.
        MajorIssues = 2 => "major_issues",
        /// During menses.
        DuringMenses = 3 => "during_menses",
        /// Under stress.
        UnderStress = 4 => "under_stress",
        /// No health issues.
        NoIssues = 5 => "no_issues",
        /// Not available.
        NotAvailable = 15 => "not_available",
    }
}

code_enum! {
    /// Kind of medication. Code 0 and 6..=255 are reserved.
    MedicationId, max = 0xFF, {
        /// Rapid-acting insulin.
        RapidActingInsulin = 1 => "rapid_acting_insulin",
        /// Short-acting insulin.
        ShortActingInsulin = 2 => "short_acting_insulin",
        /// Intermediate-acting insulin.
        IntermediateActingInsulin = 3 => "intermediate_acting_insulin",
        /// Long-acting insulin.
        LongActingInsulin = 4 => "long_acting_insulin",
        /// Pre-mixed insulin.
        PreMixedInsulin = 5 => "pre_mixed_insulin",
    }
}

/// Unit of the Medication field (flags bit 5).
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MedicationUnit {
    /// Bit clear: kilograms.
    #[default]
    Kilograms,
    /// Bit set: litres.
    Litres,
}

/// Carbohydrate intake.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Carbohydrate {
    /// Which meal.
    pub id: CarbohydrateId,
    /// Amount in kilograms, as sent.
    pub amount_kg: SFloat,
}

impl Carbohydrate {
    /// The amount in grams; `None` for a special value.
    pub fn grams(&self) -> Option<f64> {
        self.amount_kg.to_f64().map(|kg| kg * 1000.0)
    }
}

/// Who tested and the patient's health.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TesterHealth {
    /// Who took the test.
    pub tester: Tester,
    /// State of health.
    pub health: Health,
}

/// Exercise before the test.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Exercise {
    /// Duration in seconds; [`EXERCISE_DURATION_OVERRUN`] means longer.
    pub duration_s: u16,
    /// Intensity, percent.
    pub intensity_percent: u8,
}

impl Exercise {
    /// Whether the duration overflowed the field.
    pub fn is_overrun(&self) -> bool {
        self.duration_s == EXERCISE_DURATION_OVERRUN
    }
}

/// Medication taken.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Medication {
    /// Kind of medication.
    pub id: MedicationId,
    /// Amount in the context's [`GlucoseMeasurementContext::medication_unit`],
    /// as sent.
    pub amount: SFloat,
}

/// One Glucose Measurement Context value.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlucoseMeasurementContext {
    /// Sequence number of the measurement this context belongs to.
    pub sequence_number: u16,
    /// Whether the Extended Flags byte was present. Every extended flag is
    /// reserved, so decoding guarantees the byte was zero.
    pub extended_flags_present: bool,
    /// Carbohydrate intake, when present.
    pub carbohydrate: Option<Carbohydrate>,
    /// Meal relation, when present.
    pub meal: Option<Meal>,
    /// Tester and health, when present.
    pub tester_health: Option<TesterHealth>,
    /// Exercise, when present.
    pub exercise: Option<Exercise>,
    /// Medication, when present.
    pub medication: Option<Medication>,
    /// Unit of the medication amount (flags bit 5); kept even without a
    /// medication so the flags byte re-encodes exactly.
    pub medication_unit: MedicationUnit,
    /// HbA1c in percent, when present.
    pub hba1c_percent: Option<SFloat>,
}

fn unencodable(field: &'static str) -> Error {
    Error::Unencodable {
        characteristic: CHARACTERISTIC,
        field,
        reason: "reserved code that is defined or does not fit the field",
    }
}

impl GlucoseMeasurementContext {
    /// Decodes one value.
    ///
    /// Errors: a non-zero Extended Flags byte ([`Error::Reserved`]), short or
    /// long input ([`Error::Truncated`], [`Error::Oversized`]). Every bit of
    /// the flags byte is defined, so no flags value is refused.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(CHARACTERISTIC, bytes);
        let flags = r.u8("flags")?;
        let sequence_number = r.u16("sequence_number")?;
        let extended_flags_present = flags & FLAG_EXTENDED != 0;
        if extended_flags_present {
            let at = r.offset();
            let extended = r.u8("extended_flags")?;
            if extended != 0 {
                return Err(r.reserved("extended_flags", at, u32::from(extended)).into());
            }
        }
        let carbohydrate = if flags & FLAG_CARBOHYDRATE != 0 {
            Some(Carbohydrate {
                id: CarbohydrateId::from_code(r.u8("carbohydrate_id")?),
                amount_kg: r.sfloat("carbohydrate")?,
            })
        } else {
            None
        };
        let meal = if flags & FLAG_MEAL != 0 {
            Some(Meal::from_code(r.u8("meal")?))
        } else {
            None
        };
        let tester_health = if flags & FLAG_TESTER_HEALTH != 0 {
            let byte = r.u8("tester_health")?;
            Some(TesterHealth {
                tester: Tester::from_code(byte & 0x0F),
                health: Health::from_code(byte >> 4),
            })
        } else {
            None
        };
        let exercise = if flags & FLAG_EXERCISE != 0 {
            Some(Exercise {
                duration_s: r.u16("exercise_duration")?,
                intensity_percent: r.u8("exercise_intensity")?,
            })
        } else {
            None
        };
        let medication = if flags & FLAG_MEDICATION != 0 {
            Some(Medication {
                id: MedicationId::from_code(r.u8("medication_id")?),
                amount: r.sfloat("medication")?,
            })
        } else {
            None
        };
        let hba1c_percent = if flags & FLAG_HBA1C != 0 {
            Some(r.sfloat("hba1c")?)
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            sequence_number,
            extended_flags_present,
            carbohydrate,
            meal,
            tester_health,
            exercise,
            medication,
            medication_unit: if flags & FLAG_MEDICATION_LITRES != 0 {
                MedicationUnit::Litres
            } else {
                MedicationUnit::Kilograms
            },
            hba1c_percent,
        })
    }

    /// Encodes the value; fails only for a `Reserved` code that is defined
    /// or too wide for its field (decoding could not give it back).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut flags = 0;
        let mut set = |present: bool, bit: u8| {
            if present {
                flags |= bit;
            }
        };
        set(self.carbohydrate.is_some(), FLAG_CARBOHYDRATE);
        set(self.meal.is_some(), FLAG_MEAL);
        set(self.tester_health.is_some(), FLAG_TESTER_HEALTH);
        set(self.exercise.is_some(), FLAG_EXERCISE);
        set(self.medication.is_some(), FLAG_MEDICATION);
        set(
            self.medication_unit == MedicationUnit::Litres,
            FLAG_MEDICATION_LITRES,
        );
        set(self.hba1c_percent.is_some(), FLAG_HBA1C);
        set(self.extended_flags_present, FLAG_EXTENDED);

        let mut w = Writer::new();
        w.u8(flags).u16(self.sequence_number);
        if self.extended_flags_present {
            w.u8(0);
        }
        if let Some(c) = &self.carbohydrate {
            if !c.id.is_encodable() {
                return Err(unencodable("carbohydrate_id"));
            }
            w.u8(c.id.code()).sfloat(c.amount_kg);
        }
        if let Some(meal) = self.meal {
            if !meal.is_encodable() {
                return Err(unencodable("meal"));
            }
            w.u8(meal.code());
        }
        if let Some(th) = &self.tester_health {
            if !th.tester.is_encodable() || !th.health.is_encodable() {
                return Err(unencodable("tester_health"));
            }
            w.u8(th.tester.code() | (th.health.code() << 4));
        }
        if let Some(e) = &self.exercise {
            w.u16(e.duration_s).u8(e.intensity_percent);
        }
        if let Some(m) = &self.medication {
            if !m.id.is_encodable() {
                return Err(unencodable("medication_id"));
            }
            w.u8(m.id.code()).sfloat(m.amount);
        }
        if let Some(hba1c) = self.hba1c_percent {
            w.sfloat(hba1c);
        }
        Ok(w.into_vec())
    }

    /// HbA1c in percent; `None` when absent or a special value.
    pub fn hba1c(&self) -> Option<f64> {
        self.hba1c_percent?.to_f64()
    }

    /// Medication amount with its unit (kg or L); `None` when absent or a
    /// special value.
    pub fn medication_amount(&self) -> Option<(f64, MedicationUnit)> {
        Some((self.medication?.amount.to_f64()?, self.medication_unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // GLS 1.0 Glucose Measurement Context with every field: flags 0xDF
    // (carbohydrate, meal, tester-health, exercise, medication in kg, HbA1c,
    // extended flags); sequence 0x0102; extended flags 0; carbohydrate ID 1
    // (breakfast) with 0xD032 = 50 × 10^-3 kg = 50 g; meal 1 (preprandial);
    // tester 1 (self) and health 5 (no issues) -> 0x51; exercise 1800 s
    // (0x0708) at 60 %; medication ID 1 (rapid-acting insulin) with 0xA006 =
    // 6 × 10^-6 kg; HbA1c 0xF041 = 65 × 10^-1 = 6.5 %.
    const FULL: [u8; 17] = [
        0xDF, 0x02, 0x01, 0x00, 0x01, 0x32, 0xD0, 0x01, 0x51, 0x08, 0x07, 60, 0x01, 0x06, 0xA0,
        0x41, 0xF0,
    ];

    fn full() -> Vec<u8> {
        FULL.to_vec()
    }

    #[test]
    fn decodes_every_field_from_the_specification_layout() {
        let c = GlucoseMeasurementContext::decode(&full()).unwrap();
        assert_eq!(c.sequence_number, 0x0102);
        assert!(c.extended_flags_present);
        let carb = c.carbohydrate.unwrap();
        assert_eq!(carb.id, CarbohydrateId::Breakfast);
        assert!((carb.grams().unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(c.meal, Some(Meal::Preprandial));
        assert_eq!(
            c.tester_health,
            Some(TesterHealth {
                tester: Tester::SelfTest,
                health: Health::NoIssues
            })
        );
        let exercise = c.exercise.unwrap();
        assert_eq!(exercise.duration_s, 1800);
        assert_eq!(exercise.intensity_percent, 60);
        assert!(!exercise.is_overrun());
        assert_eq!(c.medication.unwrap().id, MedicationId::RapidActingInsulin);
        let (amount, unit) = c.medication_amount().unwrap();
        assert!((amount - 6e-6).abs() < 1e-15);
        assert_eq!(unit, MedicationUnit::Kilograms);
        assert!((c.hba1c().unwrap() - 6.5).abs() < 1e-9);
        assert_eq!(c.encode().unwrap(), full());
    }

    #[test]
    fn minimal_context_is_flags_and_sequence() {
        let c = GlucoseMeasurementContext::decode(&[0x00, 0x05, 0x00]).unwrap();
        assert_eq!(c.sequence_number, 5);
        assert_eq!(c.carbohydrate, None);
        assert_eq!(c.hba1c(), None);
        assert_eq!(c.encode().unwrap(), vec![0x00, 0x05, 0x00]);
    }

    // Tester 15 and health 15 mean "not available"; meal 6 is reserved and
    // kept as sent; exercise 0xFFFF is an overrun; medication in litres.
    #[test]
    fn not_available_reserved_and_overrun_codes_survive() {
        let bytes = [0x3E, 0, 0, 6, 0xFF, 0xFF, 0xFF, 100, 0x05, 0x01, 0xD0];
        let c = GlucoseMeasurementContext::decode(&bytes).unwrap();
        assert_eq!(c.meal, Some(Meal::Reserved(6)));
        let th = c.tester_health.unwrap();
        assert_eq!(th.tester, Tester::NotAvailable);
        assert_eq!(th.health, Health::NotAvailable);
        assert!(c.exercise.unwrap().is_overrun());
        assert_eq!(c.medication.unwrap().id, MedicationId::PreMixedInsulin);
        assert_eq!(c.medication_unit, MedicationUnit::Litres);
        assert_eq!(c.encode().unwrap(), bytes);
    }

    #[test]
    fn non_zero_extended_flags_are_reserved() {
        let mut bytes = full();
        bytes[3] = 0x01;
        assert_eq!(
            GlucoseMeasurementContext::decode(&bytes),
            Err(Error::Reserved {
                characteristic: CHARACTERISTIC,
                field: "extended_flags",
                offset: 3,
                value: 1
            })
        );
    }

    #[test]
    fn missing_hba1c_is_truncated() {
        assert_eq!(
            GlucoseMeasurementContext::decode(&full()[..16]),
            Err(Error::Truncated {
                characteristic: CHARACTERISTIC,
                field: "hba1c",
                offset: 15,
                needed: 2,
                available: 1
            })
        );
    }

    #[test]
    fn byte_after_hba1c_is_oversized() {
        let mut bytes = full();
        bytes.push(0);
        assert_eq!(
            GlucoseMeasurementContext::decode(&bytes),
            Err(Error::Oversized {
                characteristic: CHARACTERISTIC,
                field: "hba1c",
                offset: 17,
                extra: 1
            })
        );
    }

    #[test]
    fn reserved_variant_holding_a_defined_code_is_unencodable() {
        let mut c = GlucoseMeasurementContext::decode(&full()).unwrap();
        c.meal = Some(Meal::Reserved(2));
        assert!(matches!(
            c.encode(),
            Err(Error::Unencodable { field: "meal", .. })
        ));
        c.meal = None;
        if let Some(th) = c.tester_health.as_mut() {
            th.tester = Tester::Reserved(16);
        }
        assert!(matches!(
            c.encode(),
            Err(Error::Unencodable {
                field: "tester_health",
                ..
            })
        ));
    }

    fn context() -> impl Strategy<Value = GlucoseMeasurementContext> {
        let sf = || any::<u16>().prop_map(SFloat::from_raw);
        (
            any::<u16>(),
            any::<bool>(),
            proptest::option::of((any::<u8>(), sf())),
            proptest::option::of(any::<u8>()),
            proptest::option::of((0u8..16, 0u8..16)),
            proptest::option::of((any::<u16>(), any::<u8>())),
            proptest::option::of((any::<u8>(), sf())),
            any::<bool>(),
            proptest::option::of(sf()),
        )
            .prop_map(|(seq, ext, carb, meal, th, ex, med, litres, hba1c)| {
                GlucoseMeasurementContext {
                    sequence_number: seq,
                    extended_flags_present: ext,
                    carbohydrate: carb.map(|(id, amount_kg)| Carbohydrate {
                        id: CarbohydrateId::from_code(id),
                        amount_kg,
                    }),
                    meal: meal.map(Meal::from_code),
                    tester_health: th.map(|(t, h)| TesterHealth {
                        tester: Tester::from_code(t),
                        health: Health::from_code(h),
                    }),
                    exercise: ex.map(|(duration_s, intensity_percent)| Exercise {
                        duration_s,
                        intensity_percent,
                    }),
                    medication: med.map(|(id, amount)| Medication {
                        id: MedicationId::from_code(id),
                        amount,
                    }),
                    medication_unit: if litres {
                        MedicationUnit::Litres
                    } else {
                        MedicationUnit::Kilograms
                    },
                    hba1c_percent: hba1c,
                }
            })
    }

    proptest! {
        #[test]
        fn every_encodable_context_round_trips(c in context()) {
            let bytes = c.encode();
            prop_assert!(bytes.is_ok());
            let bytes = bytes.unwrap_or_default();
            prop_assert_eq!(GlucoseMeasurementContext::decode(&bytes), Ok(c));
        }

        #[test]
        fn decoded_bytes_reencode_exactly(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            if let Ok(c) = GlucoseMeasurementContext::decode(&bytes) {
                prop_assert_eq!(c.encode(), Ok(bytes));
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = GlucoseMeasurementContext::decode(&bytes);
        }
    }
}

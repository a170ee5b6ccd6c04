//! What simulated devices do (`TransportMode::Simulated` only): which
//! simulated patient a CGM measures, when it is out of range, and whether
//! every device suffers the faults of the field; and the simulated device
//! [`super::Vigil::pair`] puts on the air.
//!
//! Demos and app developers without hardware need a patient who goes low
//! and a sensor that leaves range at a known time, through the facade and
//! nothing else. The values are plain (an enum, Unix milliseconds), like
//! everything else at this boundary; the physiology and fault plan behind
//! them stay internal.
//!
//! The records are in every build, so an app's configuration reads the
//! same on each; the machinery behind them (everything here that names
//! `transport::simulated`) only with the `simulation` feature, which phone
//! builds leave out.

use chrono::{DateTime, TimeZone, Utc};

use super::error::{SdkError, SdkResult};
#[cfg(feature = "simulation")]
use crate::session::DeviceKind;
#[cfg(feature = "simulation")]
use crate::transport::simulated::physiology::{GlucoseProfile, SampleInterval};
#[cfg(feature = "simulation")]
use crate::transport::simulated::{
    CgmConfig, Fault, FaultPlan, HeartRateConfig, MeterConfig, OximeterConfig, Peripheral,
    RandomFaults, SimulatedCgm, SimulatedHeartRate, SimulatedMeter, SimulatedOximeter,
};
#[cfg(feature = "simulation")]
use chrono::TimeDelta;

/// The faults of [`Simulation::field_faults`]: what a phone in a pocket
/// sees over days, a few a day of each kind.
#[cfg(feature = "simulation")]
const FIELD_FAULTS: RandomFaults = RandomFaults {
    disconnects_per_hour: 0.1,
    out_of_range_per_day: 2.0,
    drops_per_day: 3.0,
    duplicates_per_day: 3.0,
    corruptions_per_day: 3.0,
};

/// The simulated person a simulated CGM measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SimulatedGlucose {
    /// Type 1, good habits: few lows.
    #[default]
    WellControlledType1,
    /// Type 1, erratic habits: highs and occasional lows.
    PoorlyControlledType1,
    /// Type 2 on oral medication: almost no lows.
    Type2,
    /// Type 1 whose basal insulin is set too high: glucose falls steadily
    /// (about 50 mg/dL an hour) into hypoglycaemia within the first hours,
    /// and again after each treatment. For demos of low alerts.
    HypoProne,
}

/// A period when every simulated CGM is out of range, Unix milliseconds
/// UTC: a record rather than a pair so that it crosses the FFI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OutOfRange {
    /// Start, inclusive.
    pub from_ms: i64,
    /// End, exclusive.
    pub to_ms: i64,
}

/// A period when one simulated CGM, named as it was paired, is out of
/// range, Unix milliseconds UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct DeviceOutOfRange {
    /// The device, as it was paired.
    pub device: String,
    /// Start, inclusive.
    pub from_ms: i64,
    /// End, exclusive.
    pub to_ms: i64,
}

/// How simulated devices behave; the default is a healthy sensor on a
/// well-controlled patient, always in range. Kotlin and Swift name the
/// patient and get the rest as default arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Simulation {
    /// The patient behind every simulated CGM paired.
    pub glucose: SimulatedGlucose,
    /// Periods when every simulated CGM is out of range.
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub cgm_out_of_range_ms: Vec<OutOfRange>,
    /// Simulated CGMs report every minute instead of every five (what the
    /// reduction measurement runs on 1-minute data).
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub cgm_one_minute: bool,
    /// Periods when one simulated CGM is out of range. A sensor change is
    /// scripted with it: the new sensor is out of range until it is put on,
    /// the old one leaves range before its last readings and backfills them
    /// when it comes back.
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub device_out_of_range_ms: Vec<DeviceOutOfRange>,
    /// Every simulated device suffers seeded random faults of the field
    /// (link drops, out-of-range periods, dropped, duplicated and corrupt
    /// notifications, a few a day of each), drawn from its seed, over the
    /// simulated clock's run (30 days on other clocks). A CGM and a meter
    /// hold their records, so the session backfills what they missed.
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub field_faults: bool,
}

/// How long field faults are drawn for when the clock has no end.
#[cfg(feature = "simulation")]
const FIELD_FAULT_DAYS: i64 = 30;

impl Simulation {
    /// Checks every scripted period (of every device), in every build: a
    /// configuration a phone build accepts is one a simulating build
    /// accepts.
    pub(crate) fn check(&self) -> SdkResult<()> {
        let own = self
            .device_out_of_range_ms
            .iter()
            .map(|d| (d.from_ms, d.to_ms));
        let every = self
            .cgm_out_of_range_ms
            .iter()
            .map(|p| (p.from_ms, p.to_ms));
        for (from, to) in every.chain(own) {
            period_times(from, to)?;
        }
        Ok(())
    }
}

#[cfg(feature = "simulation")]
impl Simulation {
    pub(crate) fn profile(&self) -> GlucoseProfile {
        match self.glucose {
            SimulatedGlucose::WellControlledType1 => GlucoseProfile::well_controlled_type1(),
            SimulatedGlucose::PoorlyControlledType1 => GlucoseProfile::poorly_controlled_type1(),
            SimulatedGlucose::Type2 => GlucoseProfile::type2(),
            SimulatedGlucose::HypoProne => GlucoseProfile {
                name: "t1-hypo-prone",
                equilibrium_mgdl: 100.0,
                // Basal too high: a steady fall the patient's own
                // treatments (fast carbohydrates once below 55) interrupt.
                basal_mismatch: -0.8,
                hypo_treat_threshold_mgdl: 55.0,
                hypo_reaction_min: 15.0,
                ..GlucoseProfile::poorly_controlled_type1()
            },
        }
    }

    /// The simulated device of `kind` paired as `device` at `now`, with
    /// `seed` for its physiology and faults; `run_for` is how long the
    /// simulated clock runs, if it ends.
    pub(crate) fn peripheral(
        &self,
        kind: DeviceKind,
        device: &str,
        seed: u64,
        now: DateTime<Utc>,
        run_for: Option<std::time::Duration>,
    ) -> SdkResult<Box<dyn Peripheral>> {
        let mut faults = match kind {
            DeviceKind::Cgm => self.faults_for(device)?,
            _ => FaultPlan::none(),
        };
        if self.field_faults {
            let length = run_for
                .and_then(|d| TimeDelta::from_std(d).ok())
                .unwrap_or(TimeDelta::days(FIELD_FAULT_DAYS));
            faults
                .faults
                .extend(FaultPlan::random(seed, now, length, FIELD_FAULTS).faults);
        }
        Ok(match kind {
            DeviceKind::Cgm => {
                let mut cgm = CgmConfig::new(device, seed, now);
                cgm.profile = self.profile();
                cgm.faults = faults;
                if self.cgm_one_minute {
                    cgm.interval = SampleInterval::OneMinute;
                }
                Box::new(SimulatedCgm::new(cgm)?)
            }
            DeviceKind::HeartRate => {
                let mut cfg = HeartRateConfig::new(device, seed, now);
                cfg.faults = faults;
                Box::new(SimulatedHeartRate::new(cfg)?)
            }
            DeviceKind::PulseOximeter => {
                let mut cfg = OximeterConfig::new(device, seed, now);
                cfg.faults = faults;
                Box::new(SimulatedOximeter::new(cfg)?)
            }
            DeviceKind::GlucoseMeter => {
                let mut cfg = MeterConfig::new(device, seed, now);
                cfg.faults = faults;
                Box::new(SimulatedMeter::new(cfg)?)
            }
        })
    }

    /// The scripted faults of the simulated CGM paired as `device`: the
    /// periods of every CGM, then its own.
    pub(crate) fn faults_for(&self, device: &str) -> SdkResult<FaultPlan> {
        let own = self
            .device_out_of_range_ms
            .iter()
            .filter(|d| d.device == device)
            .map(|d| (d.from_ms, d.to_ms));
        let faults = self
            .cgm_out_of_range_ms
            .iter()
            .map(|p| (p.from_ms, p.to_ms))
            .chain(own)
            .map(|(from, to)| period(from, to))
            .collect::<SdkResult<Vec<_>>>()?;
        Ok(FaultPlan::scripted(faults))
    }
}

/// One out-of-range period, refused if empty or reversed.
#[cfg(feature = "simulation")]
fn period(from: i64, to: i64) -> SdkResult<Fault> {
    let (from, to) = period_times(from, to)?;
    Ok(Fault::OutOfRange { from, to })
}

/// The times of one out-of-range period, refused if empty or reversed.
fn period_times(from: i64, to: i64) -> SdkResult<(DateTime<Utc>, DateTime<Utc>)> {
    let time = |ms: i64| {
        Utc.timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| SdkError::invalid("cgm_out_of_range_ms: time out of range"))
    };
    if to <= from {
        return Err(SdkError::invalid(
            "cgm_out_of_range_ms: each period must end after it starts",
        ));
    }
    Ok((time(from)?, time(to)?))
}

#[cfg(all(test, feature = "simulation"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::transport::simulated::physiology::{GlucoseModel, SampleInterval};

    #[test]
    fn hypo_prone_patient_goes_below_54_within_six_hours() {
        let profile = Simulation {
            glucose: SimulatedGlucose::HypoProne,
            ..Simulation::default()
        }
        .profile();
        for (seed, hour) in (0..40).zip([0, 6, 9, 12, 17, 21].into_iter().cycle()) {
            let start = Utc.with_ymd_and_hms(2026, 1, 5, hour, 0, 0).unwrap();
            let mut model =
                GlucoseModel::new(seed, profile.clone(), start, SampleInterval::FiveMinutes)
                    .unwrap();
            let lowest = (0..72)
                .map(|_| model.next_point().sensor_mgdl)
                .fold(f64::INFINITY, f64::min);
            assert!(lowest < 54.0, "seed {seed} from {hour}:00: lowest {lowest}");
        }
    }

    #[test]
    fn an_empty_or_reversed_period_is_refused() {
        let s = Simulation {
            cgm_out_of_range_ms: vec![OutOfRange {
                from_ms: 2_000,
                to_ms: 1_000,
            }],
            ..Simulation::default()
        };
        assert!(s.check().is_err());
        let own = Simulation {
            device_out_of_range_ms: vec![DeviceOutOfRange {
                device: "cgm-2".into(),
                from_ms: 2_000,
                to_ms: 1_000,
            }],
            ..Simulation::default()
        };
        assert!(own.check().is_err());
        let ok = Simulation {
            cgm_out_of_range_ms: vec![OutOfRange {
                from_ms: 1_000,
                to_ms: 2_000,
            }],
            ..Simulation::default()
        };
        assert_eq!(ok.faults_for("cgm-1").unwrap().faults.len(), 1);
        let own = Simulation {
            device_out_of_range_ms: vec![DeviceOutOfRange {
                device: "cgm-2".into(),
                from_ms: 3_000,
                to_ms: 4_000,
            }],
            ..ok
        };
        assert_eq!(own.faults_for("cgm-1").unwrap().faults.len(), 1);
        assert_eq!(own.faults_for("cgm-2").unwrap().faults.len(), 2);
    }
}

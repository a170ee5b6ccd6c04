//! Source precedence: one resolved series when several devices report the
//! same quantity (issue 4).
//!
//! Place in the data flow: after the buffer, beside reduction and metrics.
//! The buffer keeps every reading of every device; precedence reads them and
//! says, per coincident moment, which one stands for the patient (heart rate
//! from a chest strap or an oximeter, glucose from a CGM or a fingerstick
//! meter). It is shared, unchanged, by the SDK on the phone and by the cloud,
//! so both resolve the same inputs to the same series.
//!
//! Decisions that shaped it:
//! - **Pure and auditable.** No I/O, no clock, nothing deleted or modified:
//!   losers stay where they are, and every resolved point comes with a
//!   [`Decision`] naming the winner, each loser and the rule that eliminated
//!   it, ready to be stored as JSON for audit.
//! - **Deterministic.** Inputs are put in one total order (time, then a
//!   stable device key, then every other field) before anything is decided,
//!   so the same readings in any order resolve identically on every machine.
//! - **Validity is not a rule that can be configured away.** A flagged
//!   reading never wins over a valid one and a special value (NaN, infinity,
//!   a negative concentration) never wins at all; the configured rules only
//!   choose among the best-validity readings.

pub mod config;
pub mod resolve;

use serde::{Deserialize, Serialize};

use crate::reading::{Reading, Stream, Unit};

pub use config::{Coincidence, Direction, PrecedenceConfig, Rule};
pub use resolve::{
    Contender, Decision, Loss, Precedence, Resolution, Resolved, RuleName, Unmatched,
    UnmatchedReason,
};

/// A physiological quantity that more than one kind of device can measure.
///
/// The mapping from [`Stream`] is explicit ([`Quantity::of`]): streams of one
/// quantity share their canonical unit, so their values compare directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// Heart rate: [`Stream::HeartRate`] (strap, ECG) and
    /// [`Stream::PulseRate`] (oximeter, PPG), beats per minute.
    HeartRate,
    /// Glucose: [`Stream::Glucose`] (CGM, interstitial) and
    /// [`Stream::MeterGlucose`] (meter, capillary blood), mg/dL.
    Glucose,
    /// Oxygen saturation: [`Stream::Spo2`] from any number of oximeters,
    /// percent.
    Spo2,
}

impl Quantity {
    /// Every quantity precedence can resolve.
    pub const ALL: [Quantity; 3] = [Quantity::HeartRate, Quantity::Glucose, Quantity::Spo2];

    /// The quantity a stream measures, or `None` for streams that are not a
    /// level sampled over time and so cannot stand in for each other: RR
    /// intervals are beat-by-beat events, energy expended is one device's
    /// running counter, battery belongs to its device, and the glucose trend
    /// is a rate only CGMs compute.
    pub fn of(stream: Stream) -> Option<Quantity> {
        match stream {
            Stream::HeartRate | Stream::PulseRate => Some(Quantity::HeartRate),
            Stream::Glucose | Stream::MeterGlucose => Some(Quantity::Glucose),
            Stream::Spo2 => Some(Quantity::Spo2),
            Stream::GlucoseTrend
            | Stream::RrInterval
            | Stream::EnergyExpended
            | Stream::Battery => None,
        }
    }

    /// The streams that measure this quantity (the inverse of
    /// [`Quantity::of`]).
    pub fn streams(self) -> &'static [Stream] {
        match self {
            Quantity::HeartRate => &[Stream::HeartRate, Stream::PulseRate],
            Quantity::Glucose => &[Stream::Glucose, Stream::MeterGlucose],
            Quantity::Spo2 => &[Stream::Spo2],
        }
    }

    /// The canonical unit shared by all of the quantity's streams.
    pub fn unit(self) -> Unit {
        match self {
            Quantity::HeartRate => Unit::BeatsPerMinute,
            Quantity::Glucose => Unit::MgPerDl,
            Quantity::Spo2 => Unit::Percent,
        }
    }

    /// Stable lowercase name used in decisions and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Quantity::HeartRate => "heart_rate",
            Quantity::Glucose => "glucose",
            Quantity::Spo2 => "spo2",
        }
    }
}

/// What kind of device a reading came from (`"cgm"`, `"meter"`,
/// `"heart_rate_strap"`, `"oximeter"`, or any name the app uses), as the
/// device registry's `kind` spells it. Precedence rankings are written in
/// these names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceClass(pub String);

impl DeviceClass {
    /// A CGM read by the phone (or the Bluetooth CGM service).
    pub const CGM: &'static str = "cgm";
    /// A Nightscout uploader's copy of a CGM's values (xDrip+, Juggluco,
    /// ...), as the cloud files them.
    pub const NIGHTSCOUT: &'static str = "nightscout";
    /// Readings imported from a file.
    pub const IMPORT: &'static str = "csv-import";
    /// A fingerstick blood glucose meter.
    pub const METER: &'static str = "meter";

    /// A class named `name`.
    pub fn new(name: impl Into<String>) -> DeviceClass {
        DeviceClass(name.into())
    }

    /// The class a device streaming `stream` is assumed to be when the app
    /// did not say otherwise: the Bluetooth profile a stream arrives on
    /// implies the device (Heart Rate service: a strap; Pulse Oximeter
    /// service: an oximeter; CGM service: a CGM; Glucose service: a meter).
    /// A watch that speaks the Heart Rate service must be declared with
    /// [`Precedence::with_device_class`].
    pub fn default_for(stream: Stream) -> DeviceClass {
        DeviceClass::new(DeviceClass::default_name(stream))
    }

    /// The name of [`DeviceClass::default_for`], without allocating (the
    /// resolver asks once per reading and rule).
    pub fn default_name(stream: Stream) -> &'static str {
        match stream {
            Stream::Glucose | Stream::GlucoseTrend => "cgm",
            Stream::MeterGlucose => "meter",
            Stream::HeartRate | Stream::RrInterval | Stream::EnergyExpended => "heart_rate_strap",
            Stream::PulseRate | Stream::Spo2 => "oximeter",
            Stream::Battery => "unknown",
        }
    }
}

/// How far a reading may stand for the patient, before any configured rule.
///
/// Ordered best first: a [`Validity::Valid`] reading always beats a
/// [`Validity::Flagged`] one, and an [`Validity::Invalid`] one never wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// A finite, physically possible value the sensor did not flag.
    Valid,
    /// A possible value the sensor flagged (annunciation, calibration
    /// recommended, ...): usable only when nothing better coincides.
    Flagged,
    /// A special value (NaN, ±infinity, as the SFLOAT/FLOAT codecs report
    /// them) or one no body can produce (a negative rate or concentration,
    /// saturation above 100 %): never a resolved value.
    Invalid,
}

impl Validity {
    /// Classifies one reading.
    pub fn of(reading: &Reading) -> Validity {
        Validity::classify(reading.unit(), reading.value, reading.quality.flagged)
    }

    /// Classifies a value in `unit` whose quality is `flagged` or not: for
    /// callers that hold the parts of a reading rather than a [`Reading`].
    pub fn classify(unit: Unit, value: f64, flagged: bool) -> Validity {
        let impossible =
            !value.is_finite() || value < 0.0 || (unit == Unit::Percent && value > 100.0);
        if impossible {
            Validity::Invalid
        } else if flagged {
            Validity::Flagged
        } else {
            Validity::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_of_one_quantity_share_a_unit_and_map_back() {
        for q in Quantity::ALL {
            for s in q.streams() {
                assert_eq!(Quantity::of(*s), Some(q));
                assert_eq!(s.unit(), q.unit());
            }
        }
        let mapped = Stream::ALL
            .into_iter()
            .filter(|s| Quantity::of(*s).is_some())
            .count();
        let listed: usize = Quantity::ALL.iter().map(|q| q.streams().len()).sum();
        assert_eq!(mapped, listed);
    }
}

//! The canonical reading that every stage after the codec speaks.
//!
//! One canonical unit per stream (UCUM code carried along), so nothing
//! downstream ever has to ask "mg/dL or mmol/L?". Provenance keeps the device,
//! the characteristic and the raw bytes, so any stored value can be audited
//! back to what the sensor actually sent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Milligrams per decilitre in one millimole per litre of glucose.
///
/// The molar mass of D-glucose (C6H12O6) is 180.156 g/mol, so 1 mmol/L is
/// 180.156 mg/L = 18.0156 mg/dL. Conversions use this exact factor; rounding
/// (e.g. to one decimal of mmol/L) is a display decision made by the app.
pub const MG_DL_PER_MMOL_L: f64 = 18.0156;

/// Converts mmol/L to the canonical mg/dL.
pub fn mmol_l_to_mg_dl(mmol_l: f64) -> f64 {
    mmol_l * MG_DL_PER_MMOL_L
}

/// Converts canonical mg/dL to mmol/L.
pub fn mg_dl_to_mmol_l(mg_dl: f64) -> f64 {
    mg_dl / MG_DL_PER_MMOL_L
}

/// Converts a Glucose Measurement (0x2A18) concentration in kg/L to mg/dL.
///
/// 1 kg/L = 10^6 mg per 10 dL = 10^5 mg/dL.
pub fn kg_l_to_mg_dl(kg_l: f64) -> f64 {
    kg_l * 100_000.0
}

/// Converts a Glucose Measurement (0x2A18) concentration in mol/L to mg/dL.
///
/// 1 mol/L = 1000 mmol/L, so mg/dL = mol/L × 1000 × 18.0156.
pub fn mol_l_to_mg_dl(mol_l: f64) -> f64 {
    mol_l * 1000.0 * MG_DL_PER_MMOL_L
}

/// The canonical units of Vigil's streams, each with its UCUM code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milligrams per decilitre (glucose).
    MgPerDl,
    /// Beats per minute (heart and pulse rate).
    BeatsPerMinute,
    /// Seconds (RR intervals).
    Seconds,
    /// Percent (SpO2, battery, sensor quality).
    Percent,
    /// Kilojoules (energy expended).
    Kilojoules,
    /// Milligrams per decilitre per minute (glucose trend).
    MgPerDlPerMinute,
}

impl Unit {
    /// The Unified Code for Units of Measure code of this unit.
    pub fn ucum(self) -> &'static str {
        match self {
            Unit::MgPerDl => "mg/dL",
            Unit::BeatsPerMinute => "/min",
            Unit::Seconds => "s",
            Unit::Percent => "%",
            Unit::Kilojoules => "kJ",
            Unit::MgPerDlPerMinute => "mg/dL/min",
        }
    }
}

/// How quickly a stream must reach people, per DESIGN.md's data classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Local callback at once, immediate POST until acknowledged.
    Alarm,
    /// Buffered, reduced within a bounded error, batched.
    Trend,
    /// Buffered, lossless, batched.
    Record,
}

/// A kind of measurement, with one canonical unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Interstitial glucose from a CGM, mg/dL.
    Glucose,
    /// Capillary blood glucose from a meter, mg/dL.
    MeterGlucose,
    /// Glucose rate of change reported by the sensor, mg/dL/min.
    GlucoseTrend,
    /// Heart rate, beats per minute.
    HeartRate,
    /// One RR interval (time between beats), seconds.
    RrInterval,
    /// Energy expended reported by a heart-rate strap, kJ.
    EnergyExpended,
    /// Peripheral oxygen saturation, percent.
    Spo2,
    /// Pulse rate from an oximeter, beats per minute.
    PulseRate,
    /// Device battery level, percent.
    Battery,
}

impl Stream {
    /// Every stream, for iteration in tests and schemas.
    pub const ALL: [Stream; 9] = [
        Stream::Glucose,
        Stream::MeterGlucose,
        Stream::GlucoseTrend,
        Stream::HeartRate,
        Stream::RrInterval,
        Stream::EnergyExpended,
        Stream::Spo2,
        Stream::PulseRate,
        Stream::Battery,
    ];

    /// The stream's one canonical unit.
    pub fn unit(self) -> Unit {
        match self {
            Stream::Glucose | Stream::MeterGlucose => Unit::MgPerDl,
            Stream::GlucoseTrend => Unit::MgPerDlPerMinute,
            Stream::HeartRate | Stream::PulseRate => Unit::BeatsPerMinute,
            Stream::RrInterval => Unit::Seconds,
            Stream::EnergyExpended => Unit::Kilojoules,
            Stream::Spo2 | Stream::Battery => Unit::Percent,
        }
    }

    /// The data class that fixes the stream's sync path and latency budget.
    ///
    /// Alarms are events derived from readings, not a stream of their own,
    /// so every stream here is trend or record.
    pub fn profile(self) -> Profile {
        match self {
            Stream::Glucose
            | Stream::GlucoseTrend
            | Stream::HeartRate
            | Stream::Spo2
            | Stream::PulseRate => Profile::Trend,
            Stream::MeterGlucose
            | Stream::RrInterval
            | Stream::EnergyExpended
            | Stream::Battery => Profile::Record,
        }
    }

    /// Whether the phone uploads this stream's readings.
    ///
    /// Every stream is uploaded but the CGM's own trend
    /// ([`Stream::GlucoseTrend`]): the cloud derives the rate of change
    /// from the glucose series it already holds
    /// ([`crate::trend::rate_at`]), so sending the sensor's rate as well
    /// cost about 2 KB per patient-day for nothing the cloud lacked
    /// (issue 14). The phone keeps those readings for its own arrow and
    /// its alerts; the protocol still accepts them from older SDKs.
    pub fn is_uploaded(self) -> bool {
        !matches!(self, Stream::GlucoseTrend)
    }

    /// Stable lowercase name used in storage and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Glucose => "glucose",
            Stream::MeterGlucose => "meter_glucose",
            Stream::GlucoseTrend => "glucose_trend",
            Stream::HeartRate => "heart_rate",
            Stream::RrInterval => "rr_interval",
            Stream::EnergyExpended => "energy_expended",
            Stream::Spo2 => "spo2",
            Stream::PulseRate => "pulse_rate",
            Stream::Battery => "battery",
        }
    }

    /// Parses [`Stream::as_str`]'s output.
    pub fn parse(name: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Opaque patient identifier assigned by the cloud; never a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PatientId(pub String);

/// Stable device identifier (e.g. the sensor's serial or BLE address hash).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceId(pub String);

/// How far a reading can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Quality {
    /// Sensor-reported quality in percent (CGM Quality field), if any.
    pub percent: Option<f64>,
    /// The sensor flagged the value (annunciation bits set, calibration
    /// recommended, out of range, ...).
    pub flagged: bool,
}

/// Where a reading came from, kept for audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Device that measured it.
    pub device: DeviceId,
    /// 16-bit UUID of the characteristic it arrived on (e.g. 0x2AA7).
    pub characteristic: u16,
    /// The exact value bytes as received.
    pub raw: Vec<u8>,
    /// Sensor session it belongs to, when the device has sessions (CGM).
    pub session: Option<i64>,
}

/// One measurement in canonical form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Whose reading it is.
    pub patient: PatientId,
    /// Which quantity.
    pub stream: Stream,
    /// Value in [`Stream::unit`].
    pub value: f64,
    /// When the sensor measured it, mapped to absolute UTC time.
    pub sensor_time: DateTime<Utc>,
    /// When the phone received it.
    pub receive_time: DateTime<Utc>,
    /// Per-device, per-stream sequence (the CGM time offset or record number).
    pub sequence: u64,
    /// Trust in the value.
    pub quality: Quality,
    /// Device, characteristic and raw bytes.
    pub provenance: Provenance,
}

impl Reading {
    /// The canonical unit of this reading.
    pub fn unit(&self) -> Unit {
        self.stream.unit()
    }

    /// The UCUM code of this reading's unit.
    pub fn ucum(&self) -> &'static str {
        self.stream.unit().ucum()
    }
}

/// One timestamped value of one stream: the unit that reduction, metrics
/// and alert rules work on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was measured (absolute UTC).
    pub time: DateTime<Utc>,
    /// Value in the stream's canonical unit.
    pub value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmol_conversion_uses_the_molar_mass_of_glucose() {
        assert!((mmol_l_to_mg_dl(5.5) - 99.0858).abs() < 1e-9);
        assert!((mg_dl_to_mmol_l(180.156) - 10.0).abs() < 1e-12);
        assert!((mg_dl_to_mmol_l(mmol_l_to_mg_dl(3.9)) - 3.9).abs() < 1e-12);
    }

    #[test]
    fn glucose_measurement_units_convert_exactly() {
        // 120 mg/dL is 0.0012 kg/L.
        assert!((kg_l_to_mg_dl(0.0012) - 120.0).abs() < 1e-9);
        // 5.5 mmol/L is 0.0055 mol/L.
        assert!((mol_l_to_mg_dl(0.0055) - 99.0858).abs() < 1e-9);
    }

    #[test]
    fn every_stream_has_a_unit_and_parses_back() {
        for s in Stream::ALL {
            assert!(!s.unit().ucum().is_empty());
            assert_eq!(Stream::parse(s.as_str()), Some(s));
        }
        assert_eq!(Stream::Glucose.unit().ucum(), "mg/dL");
    }
}

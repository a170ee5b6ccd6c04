//! Byte-exact codecs for the Bluetooth SIG characteristics Vigil speaks.
//!
//! First stage of the data flow: the transport hands over the value bytes of
//! one notification, indication or read, and a codec turns them into typed
//! values, or the other way round for what the phone writes (the Record
//! Access Control Point, RACP, and the CGM Specific Ops Control Point, SOCP). Codecs do no I/O and hold no state.
//!
//! Two rules shape every decoder: it never panics on any input (all reads go
//! through [`bytes::Reader`], which is bounds-checked), and it never guesses:
//! a truncated, oversized, reserved or inconsistent field is a typed
//! [`crate::Error`] naming the field and byte offset. Every encoder is the
//! exact inverse of its decoder (round-trip property tests).

#![deny(clippy::indexing_slicing)]

pub mod battery;
pub mod bytes;
pub mod cgm;
pub mod crc;
pub mod date_time;
pub mod float;
pub mod glucose;
pub mod heart_rate;
pub mod plx;
pub mod racp;

pub use float::{Float32, SFloat, Special};

use crate::{Error, Result};
use battery::BatteryLevel;
use cgm::socp::{SocpRequest, SocpResponse};
use cgm::{CgmFeature, CgmMeasurement, CgmSessionRunTime, CgmSessionStartTime, CgmStatus};
use glucose::{GlucoseMeasurement, GlucoseMeasurementContext};
use heart_rate::HeartRateMeasurement;
use plx::PlxContinuousMeasurement;
use racp::{RacpRequest, RacpResponse, RacpService};

/// What a decoder needs to know beyond the bytes: facts learned from other
/// characteristics of the same device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The CGM Feature says the sensor appends an E2E-CRC to its records.
    pub e2e_crc: bool,
    /// Which service's Record Access Control Point is spoken (it decides
    /// what filter type 0x01 means).
    pub racp_service: RacpService,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            e2e_crc: false,
            racp_service: RacpService::Cgm,
        }
    }
}

/// One decoded characteristic value, whichever characteristic it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Decoded {
    /// CGM Measurement: one notification may carry several records.
    CgmMeasurement(Vec<CgmMeasurement>),
    /// CGM Feature.
    CgmFeature(CgmFeature),
    /// CGM Status.
    CgmStatus(CgmStatus),
    /// CGM Session Start Time.
    CgmSessionStartTime(CgmSessionStartTime),
    /// CGM Session Run Time.
    CgmSessionRunTime(CgmSessionRunTime),
    /// A CGM Specific Ops Control Point request (written by the phone).
    SocpRequest(SocpRequest),
    /// A CGM Specific Ops Control Point response (indicated by the sensor).
    SocpResponse(SocpResponse),
    /// A Record Access Control Point request.
    RacpRequest(RacpRequest),
    /// A Record Access Control Point response.
    RacpResponse(RacpResponse),
    /// Glucose Measurement (a meter record).
    GlucoseMeasurement(GlucoseMeasurement),
    /// Glucose Measurement Context.
    GlucoseMeasurementContext(GlucoseMeasurementContext),
    /// Heart Rate Measurement.
    HeartRateMeasurement(HeartRateMeasurement),
    /// PLX Continuous Measurement.
    PlxContinuousMeasurement(PlxContinuousMeasurement),
    /// Battery Level.
    BatteryLevel(BatteryLevel),
}

/// Every characteristic UUID [`decode`] understands.
pub const DECODABLE: [u16; 12] = [
    uuid::CGM_MEASUREMENT,
    uuid::CGM_FEATURE,
    uuid::CGM_STATUS,
    uuid::CGM_SESSION_START_TIME,
    uuid::CGM_SESSION_RUN_TIME,
    uuid::CGM_SPECIFIC_OPS_CONTROL_POINT,
    uuid::RECORD_ACCESS_CONTROL_POINT,
    uuid::GLUCOSE_MEASUREMENT,
    uuid::GLUCOSE_MEASUREMENT_CONTEXT,
    uuid::HEART_RATE_MEASUREMENT,
    uuid::PLX_CONTINUOUS_MEASUREMENT,
    uuid::BATTERY_LEVEL,
];

/// Decodes the value of the characteristic with 16-bit UUID `characteristic`.
///
/// Control points carry both directions on one UUID; the op code says which,
/// so a request and a response each decode as what they are. A UUID without
/// a codec is [`Error::InvalidInput`].
pub fn decode(characteristic: u16, bytes: &[u8], opts: &DecodeOptions) -> Result<Decoded> {
    let crc = opts.e2e_crc;
    Ok(match characteristic {
        uuid::CGM_MEASUREMENT => {
            Decoded::CgmMeasurement(CgmMeasurement::decode_notification(bytes, crc)?)
        }
        uuid::CGM_FEATURE => Decoded::CgmFeature(CgmFeature::decode(bytes)?),
        uuid::CGM_STATUS => Decoded::CgmStatus(CgmStatus::decode(bytes, crc)?),
        uuid::CGM_SESSION_START_TIME => {
            Decoded::CgmSessionStartTime(CgmSessionStartTime::decode(bytes, crc)?)
        }
        uuid::CGM_SESSION_RUN_TIME => {
            Decoded::CgmSessionRunTime(CgmSessionRunTime::decode(bytes, crc)?)
        }
        uuid::CGM_SPECIFIC_OPS_CONTROL_POINT => match SocpRequest::decode(bytes, crc) {
            Ok(request) => Decoded::SocpRequest(request),
            // The op code is a response's: decode it as one.
            Err(Error::Inconsistent {
                field: "op_code", ..
            }) => Decoded::SocpResponse(SocpResponse::decode(bytes, crc)?),
            Err(e) => return Err(e),
        },
        uuid::RECORD_ACCESS_CONTROL_POINT => match bytes.first() {
            // Op codes 5 (number of records) and 6 (response code) are the
            // server's answers; 1-4 are the client's requests.
            Some(5 | 6) => Decoded::RacpResponse(RacpResponse::decode(bytes)?),
            _ => Decoded::RacpRequest(RacpRequest::decode(bytes, opts.racp_service)?),
        },
        uuid::GLUCOSE_MEASUREMENT => {
            Decoded::GlucoseMeasurement(GlucoseMeasurement::decode(bytes)?)
        }
        uuid::GLUCOSE_MEASUREMENT_CONTEXT => {
            Decoded::GlucoseMeasurementContext(GlucoseMeasurementContext::decode(bytes)?)
        }
        uuid::HEART_RATE_MEASUREMENT => {
            Decoded::HeartRateMeasurement(HeartRateMeasurement::decode(bytes)?)
        }
        uuid::PLX_CONTINUOUS_MEASUREMENT => {
            Decoded::PlxContinuousMeasurement(PlxContinuousMeasurement::decode(bytes)?)
        }
        uuid::BATTERY_LEVEL => Decoded::BatteryLevel(BatteryLevel::decode(bytes)?),
        other => {
            return Err(Error::InvalidInput(format!(
                "no codec for characteristic 0x{other:04X}"
            )));
        }
    })
}

/// 16-bit UUIDs of the services Vigil talks to.
pub mod service {
    /// Continuous Glucose Monitoring Service.
    pub const CGM: u16 = 0x181F;
    /// Glucose Service (blood glucose meters).
    pub const GLUCOSE: u16 = 0x1808;
    /// Heart Rate Service.
    pub const HEART_RATE: u16 = 0x180D;
    /// Pulse Oximeter Service.
    pub const PULSE_OXIMETER: u16 = 0x1822;
    /// Battery Service.
    pub const BATTERY: u16 = 0x180F;
}

/// 16-bit UUIDs of the characteristics Vigil decodes.
pub mod uuid {
    /// CGM Measurement.
    pub const CGM_MEASUREMENT: u16 = 0x2AA7;
    /// CGM Feature.
    pub const CGM_FEATURE: u16 = 0x2AA8;
    /// CGM Status.
    pub const CGM_STATUS: u16 = 0x2AA9;
    /// CGM Session Start Time.
    pub const CGM_SESSION_START_TIME: u16 = 0x2AAA;
    /// CGM Session Run Time.
    pub const CGM_SESSION_RUN_TIME: u16 = 0x2AAB;
    /// CGM Specific Ops Control Point.
    pub const CGM_SPECIFIC_OPS_CONTROL_POINT: u16 = 0x2AAC;
    /// Record Access Control Point.
    pub const RECORD_ACCESS_CONTROL_POINT: u16 = 0x2A52;
    /// Glucose Measurement.
    pub const GLUCOSE_MEASUREMENT: u16 = 0x2A18;
    /// Glucose Measurement Context.
    pub const GLUCOSE_MEASUREMENT_CONTEXT: u16 = 0x2A34;
    /// Heart Rate Measurement.
    pub const HEART_RATE_MEASUREMENT: u16 = 0x2A37;
    /// PLX Continuous Measurement.
    pub const PLX_CONTINUOUS_MEASUREMENT: u16 = 0x2A5F;
    /// Battery Level.
    pub const BATTERY_LEVEL: u16 = 0x2A19;
}

//! CGM Specific Ops Control Point (0x2AAC, CGMS 1.0.1 §3.6): how the phone
//! configures a CGM sensor (communication interval, calibration, alert
//! levels) and starts or stops its session, and how the sensor answers.
//!
//! The phone writes a request (op code, operand, E2E-CRC when supported)
//! and the sensor indicates a response on the same characteristic. The two
//! directions are separate types, [`CgmOpsRequest`] and [`CgmOpsResponse`],
//! so a response op code arriving where a request is expected (or the
//! reverse) is an error, not a silent mix-up.
//!
//! Unlike the CGM records, control point messages do not keep their CRC
//! value: it says nothing about the sensor's data. `decode` takes whether
//! the CRC is present (CGM Feature bit 12) and checks it; `encode` takes the
//! same flag and appends the computed CRC.
//!
//! The Response Code message keeps the echoed request op code raw (`u8`):
//! a sensor answers "op code not supported" to op codes this crate does not
//! know, and that answer must still decode.

use crate::codec::bytes::{ReadFloat, Reader, WriteFloat, Writer};
use crate::codec::cgm::{
    SampleLocation, SampleType, append_crc, read_checked_crc, read_type_location,
    type_location_octet,
};
use crate::codec::float::SFloat;
use crate::{Error, Result};

const CHARACTERISTIC: &str = "CGM Specific Ops Control Point";

/// Op codes of the CGM Specific Ops Control Point (CGMS §3.6.1, table of op
/// codes). 0 and 29-255 are reserved.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SocpOpCode {
    /// Set CGM Communication Interval (operand: minutes, uint8).
    SetCommunicationInterval = 1,
    /// Get CGM Communication Interval.
    GetCommunicationInterval = 2,
    /// CGM Communication Interval response.
    CommunicationIntervalResponse = 3,
    /// Set Glucose Calibration Value (operand: calibration record).
    SetCalibrationValue = 4,
    /// Get Glucose Calibration Value (operand: record number, uint16).
    GetCalibrationValue = 5,
    /// Glucose Calibration Value response (calibration record).
    CalibrationValueResponse = 6,
    /// Set Patient High Alert Level.
    SetPatientHighAlertLevel = 7,
    /// Get Patient High Alert Level.
    GetPatientHighAlertLevel = 8,
    /// Patient High Alert Level response.
    PatientHighAlertLevelResponse = 9,
    /// Set Patient Low Alert Level.
    SetPatientLowAlertLevel = 10,
    /// Get Patient Low Alert Level.
    GetPatientLowAlertLevel = 11,
    /// Patient Low Alert Level response.
    PatientLowAlertLevelResponse = 12,
    /// Set Hypo Alert Level.
    SetHypoAlertLevel = 13,
    /// Get Hypo Alert Level.
    GetHypoAlertLevel = 14,
    /// Hypo Alert Level response.
    HypoAlertLevelResponse = 15,
    /// Set Hyper Alert Level.
    SetHyperAlertLevel = 16,
    /// Get Hyper Alert Level.
    GetHyperAlertLevel = 17,
    /// Hyper Alert Level response.
    HyperAlertLevelResponse = 18,
    /// Set Rate of Decrease Alert Level.
    SetRateOfDecreaseAlertLevel = 19,
    /// Get Rate of Decrease Alert Level.
    GetRateOfDecreaseAlertLevel = 20,
    /// Rate of Decrease Alert Level response.
    RateOfDecreaseAlertLevelResponse = 21,
    /// Set Rate of Increase Alert Level.
    SetRateOfIncreaseAlertLevel = 22,
    /// Get Rate of Increase Alert Level.
    GetRateOfIncreaseAlertLevel = 23,
    /// Rate of Increase Alert Level response.
    RateOfIncreaseAlertLevelResponse = 24,
    /// Reset Device Specific Alert.
    ResetDeviceSpecificAlert = 25,
    /// Start the Session.
    StartSession = 26,
    /// Stop the Session.
    StopSession = 27,
    /// Response Code (operand: request op code, response code value).
    ResponseCode = 28,
}

impl SocpOpCode {
    /// The op code for a byte; `None` for a reserved value.
    pub fn from_u8(v: u8) -> Option<Self> {
        use SocpOpCode::*;
        const ALL: [SocpOpCode; 28] = [
            SetCommunicationInterval,
            GetCommunicationInterval,
            CommunicationIntervalResponse,
            SetCalibrationValue,
            GetCalibrationValue,
            CalibrationValueResponse,
            SetPatientHighAlertLevel,
            GetPatientHighAlertLevel,
            PatientHighAlertLevelResponse,
            SetPatientLowAlertLevel,
            GetPatientLowAlertLevel,
            PatientLowAlertLevelResponse,
            SetHypoAlertLevel,
            GetHypoAlertLevel,
            HypoAlertLevelResponse,
            SetHyperAlertLevel,
            GetHyperAlertLevel,
            HyperAlertLevelResponse,
            SetRateOfDecreaseAlertLevel,
            GetRateOfDecreaseAlertLevel,
            RateOfDecreaseAlertLevelResponse,
            SetRateOfIncreaseAlertLevel,
            GetRateOfIncreaseAlertLevel,
            RateOfIncreaseAlertLevelResponse,
            ResetDeviceSpecificAlert,
            StartSession,
            StopSession,
            ResponseCode,
        ];
        ALL.into_iter().find(|op| *op as u8 == v)
    }

    /// The byte as it travels.
    pub fn to_u8(self) -> u8 {
        self as u8
    }
}

/// The six alert levels a sensor can hold; each has a set, a get and a
/// response op code, three apart.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertLevel {
    /// Patient high level, mg/dL.
    PatientHigh,
    /// Patient low level, mg/dL.
    PatientLow,
    /// Hypo level, mg/dL.
    Hypo,
    /// Hyper level, mg/dL.
    Hyper,
    /// Rate of decrease, (mg/dL)/min.
    RateOfDecrease,
    /// Rate of increase, (mg/dL)/min.
    RateOfIncrease,
}

impl AlertLevel {
    const ALL: [AlertLevel; 6] = [
        AlertLevel::PatientHigh,
        AlertLevel::PatientLow,
        AlertLevel::Hypo,
        AlertLevel::Hyper,
        AlertLevel::RateOfDecrease,
        AlertLevel::RateOfIncrease,
    ];

    /// The "set" op code; "get" is one more, "response" two more.
    fn set_op(self) -> u8 {
        match self {
            AlertLevel::PatientHigh => 7,
            AlertLevel::PatientLow => 10,
            AlertLevel::Hypo => 13,
            AlertLevel::Hyper => 16,
            AlertLevel::RateOfDecrease => 19,
            AlertLevel::RateOfIncrease => 22,
        }
    }

    /// The alert level and the role (0 set, 1 get, 2 response) of an op code.
    fn of_op(op: u8) -> Option<(Self, u8)> {
        Self::ALL
            .into_iter()
            .find(|a| (a.set_op()..a.set_op() + 3).contains(&op))
            .map(|a| (a, op - a.set_op()))
    }
}

/// Calibration Status bits of a calibration record; bits 3-7 reserved.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CalibrationStatus(u8);

impl CalibrationStatus {
    /// Calibration data rejected (calibration failed).
    pub const REJECTED: u8 = 1 << 0;
    /// Calibration data out of range.
    pub const OUT_OF_RANGE: u8 = 1 << 1;
    /// Calibration process pending.
    pub const PENDING: u8 = 1 << 2;
    /// Every bit the specification defines.
    pub const DEFINED: u8 = 0x07;

    /// Wraps `bits`; `None` if a reserved bit is set.
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

    /// The sensor rejected the calibration data.
    pub const fn rejected(self) -> bool {
        self.0 & Self::REJECTED != 0
    }

    /// The calibration data was out of range.
    pub const fn out_of_range(self) -> bool {
        self.0 & Self::OUT_OF_RANGE != 0
    }

    /// The calibration is still being processed.
    pub const fn pending(self) -> bool {
        self.0 & Self::PENDING != 0
    }
}

/// A calibration record (CGMS §3.6.2.4, "Calibration Data Record"), 10
/// bytes: the operand of Set Glucose Calibration Value and of its response.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CalibrationRecord {
    /// Glucose concentration of the calibration sample, mg/dL.
    pub glucose: SFloat,
    /// Calibration time, minutes since session start.
    pub time_min: u16,
    /// Sample type of the calibration.
    pub sample_type: SampleType,
    /// Sample location of the calibration.
    pub sample_location: SampleLocation,
    /// When the next calibration is due, minutes since session start.
    pub next_calibration_min: u16,
    /// Calibration data record number.
    pub record_number: u16,
    /// Calibration status.
    pub status: CalibrationStatus,
}

impl CalibrationRecord {
    /// Encoded length in bytes.
    pub const LEN: usize = 10;

    /// The calibration glucose in mg/dL, if a number.
    pub fn glucose_mg_dl(&self) -> Option<f64> {
        self.glucose.to_f64()
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let glucose = r.sfloat("calibration_glucose")?;
        let time_min = r.u16("calibration_time")?;
        let (sample_type, sample_location) = read_type_location(r, "calibration_type_location")?;
        let next_calibration_min = r.u16("next_calibration_time")?;
        let record_number = r.u16("calibration_record_number")?;
        let offset = r.offset();
        let bits = r.u8("calibration_status")?;
        let status = CalibrationStatus::from_bits(bits)
            .ok_or_else(|| r.reserved("calibration_status", offset, u32::from(bits)))?;
        Ok(Self {
            glucose,
            time_min,
            sample_type,
            sample_location,
            next_calibration_min,
            record_number,
            status,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.sfloat(self.glucose)
            .u16(self.time_min)
            .u8(type_location_octet(self.sample_type, self.sample_location))
            .u16(self.next_calibration_min)
            .u16(self.record_number)
            .u8(self.status.bits());
    }
}

/// Response Code values of the CGM Specific Ops Control Point (CGMS
/// §3.6.1); 0 and 6-255 reserved.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocpResponseCode {
    /// Success (1).
    Success,
    /// Op code not supported (2).
    OpCodeNotSupported,
    /// Invalid operand (3).
    InvalidOperand,
    /// Procedure not completed (4).
    ProcedureNotCompleted,
    /// Parameter out of range (5).
    ParameterOutOfRange,
}

impl SocpResponseCode {
    /// The variant for a byte; `None` for a reserved value.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Success),
            2 => Some(Self::OpCodeNotSupported),
            3 => Some(Self::InvalidOperand),
            4 => Some(Self::ProcedureNotCompleted),
            5 => Some(Self::ParameterOutOfRange),
            _ => None,
        }
    }

    /// The byte as it travels.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Success => 1,
            Self::OpCodeNotSupported => 2,
            Self::InvalidOperand => 3,
            Self::ProcedureNotCompleted => 4,
            Self::ParameterOutOfRange => 5,
        }
    }
}

/// A request the phone writes to the CGM Specific Ops Control Point.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgmOpsRequest {
    /// Set the communication interval in minutes (0 disables periodic
    /// communication, 255 asks for the fastest interval).
    SetCommunicationInterval {
        /// Interval in minutes.
        minutes: u8,
    },
    /// Ask for the communication interval.
    GetCommunicationInterval,
    /// Send a calibration value.
    SetCalibrationValue(CalibrationRecord),
    /// Ask for a stored calibration record (0xFFFF: the last one).
    GetCalibrationValue {
        /// Calibration data record number.
        record_number: u16,
    },
    /// Set an alert level.
    SetAlertLevel {
        /// Which level.
        alert: AlertLevel,
        /// The level, mg/dL or (mg/dL)/min.
        value: SFloat,
    },
    /// Ask for an alert level.
    GetAlertLevel {
        /// Which level.
        alert: AlertLevel,
    },
    /// Reset the device specific alert.
    ResetDeviceSpecificAlert,
    /// Start the session.
    StartSession,
    /// Stop the session.
    StopSession,
}

/// A response the sensor indicates on the CGM Specific Ops Control Point.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgmOpsResponse {
    /// The communication interval in minutes.
    CommunicationInterval {
        /// Interval in minutes.
        minutes: u8,
    },
    /// A stored calibration record.
    CalibrationValue(CalibrationRecord),
    /// An alert level.
    AlertLevel {
        /// Which level.
        alert: AlertLevel,
        /// The level, mg/dL or (mg/dL)/min.
        value: SFloat,
    },
    /// The outcome of a request.
    ResponseCode {
        /// The op code of the request answered, raw as echoed.
        request_op_code: u8,
        /// The outcome.
        code: SocpResponseCode,
    },
}

impl CgmOpsResponse {
    /// The request op code of a Response Code message, typed, if known.
    pub fn request_op(&self) -> Option<SocpOpCode> {
        match self {
            Self::ResponseCode {
                request_op_code, ..
            } => SocpOpCode::from_u8(*request_op_code),
            _ => None,
        }
    }
}

/// Reads the op code byte, rejecting reserved values.
fn read_op(r: &mut Reader<'_>) -> Result<u8> {
    let op = r.u8("op_code")?;
    match SocpOpCode::from_u8(op) {
        Some(_) => Ok(op),
        None => Err(r.reserved("op_code", 0, u32::from(op)).into()),
    }
}

/// Checks the CRC (if any) and that nothing follows.
fn finish(mut r: Reader<'_>, bytes: &[u8], crc: bool) -> Result<()> {
    if crc {
        read_checked_crc(&mut r, bytes, 0)?;
    }
    Ok(r.finish()?)
}

fn wrong_direction(op_is_response: bool) -> Error {
    Error::Inconsistent {
        characteristic: CHARACTERISTIC,
        field: "op_code",
        offset: 0,
        reason: if op_is_response {
            "op code is a response, not a request"
        } else {
            "op code is a request, not a response"
        },
    }
}

impl CgmOpsRequest {
    /// Decodes a request; `crc` says whether the E2E-CRC is present.
    pub fn decode(bytes: &[u8], crc: bool) -> Result<Self> {
        let mut r = Reader::new(CHARACTERISTIC, bytes);
        let op = read_op(&mut r)?;
        let request = match op {
            1 => Self::SetCommunicationInterval {
                minutes: r.u8("communication_interval")?,
            },
            2 => Self::GetCommunicationInterval,
            4 => Self::SetCalibrationValue(CalibrationRecord::read(&mut r)?),
            5 => Self::GetCalibrationValue {
                record_number: r.u16("calibration_record_number")?,
            },
            25 => Self::ResetDeviceSpecificAlert,
            26 => Self::StartSession,
            27 => Self::StopSession,
            op => match AlertLevel::of_op(op) {
                Some((alert, 0)) => Self::SetAlertLevel {
                    alert,
                    value: r.sfloat("alert_level")?,
                },
                Some((alert, 1)) => Self::GetAlertLevel { alert },
                _ => return Err(wrong_direction(true)),
            },
        };
        finish(r, bytes, crc)?;
        Ok(request)
    }

    /// The op code this request travels with.
    pub fn op_code(&self) -> SocpOpCode {
        let op = match self {
            Self::SetCommunicationInterval { .. } => 1,
            Self::GetCommunicationInterval => 2,
            Self::SetCalibrationValue(_) => 4,
            Self::GetCalibrationValue { .. } => 5,
            Self::SetAlertLevel { alert, .. } => alert.set_op(),
            Self::GetAlertLevel { alert } => alert.set_op() + 1,
            Self::ResetDeviceSpecificAlert => 25,
            Self::StartSession => 26,
            Self::StopSession => 27,
        };
        // Every op above is in the table; the fallback is unreachable.
        SocpOpCode::from_u8(op).unwrap_or(SocpOpCode::ResponseCode)
    }

    /// Encodes the request, appending the computed E2E-CRC when `crc`.
    pub fn encode(&self, crc: bool) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.op_code().to_u8());
        match self {
            Self::SetCommunicationInterval { minutes } => {
                w.u8(*minutes);
            }
            Self::SetCalibrationValue(rec) => rec.write(&mut w),
            Self::GetCalibrationValue { record_number } => {
                w.u16(*record_number);
            }
            Self::SetAlertLevel { value, .. } => {
                w.sfloat(*value);
            }
            Self::GetCommunicationInterval
            | Self::GetAlertLevel { .. }
            | Self::ResetDeviceSpecificAlert
            | Self::StartSession
            | Self::StopSession => {}
        }
        if crc {
            append_crc(&mut w);
        }
        w.into_vec()
    }
}

impl CgmOpsResponse {
    /// Decodes a response; `crc` says whether the E2E-CRC is present.
    pub fn decode(bytes: &[u8], crc: bool) -> Result<Self> {
        let mut r = Reader::new(CHARACTERISTIC, bytes);
        let op = read_op(&mut r)?;
        let response = match op {
            3 => Self::CommunicationInterval {
                minutes: r.u8("communication_interval")?,
            },
            6 => Self::CalibrationValue(CalibrationRecord::read(&mut r)?),
            28 => {
                let request_op_code = r.u8("request_op_code")?;
                let offset = r.offset();
                let v = r.u8("response_code")?;
                let code = SocpResponseCode::from_u8(v)
                    .ok_or_else(|| r.reserved("response_code", offset, u32::from(v)))?;
                Self::ResponseCode {
                    request_op_code,
                    code,
                }
            }
            op => match AlertLevel::of_op(op) {
                Some((alert, 2)) => Self::AlertLevel {
                    alert,
                    value: r.sfloat("alert_level")?,
                },
                _ => return Err(wrong_direction(false)),
            },
        };
        finish(r, bytes, crc)?;
        Ok(response)
    }

    /// The op code this response travels with.
    pub fn op_code(&self) -> SocpOpCode {
        let op = match self {
            Self::CommunicationInterval { .. } => 3,
            Self::CalibrationValue(_) => 6,
            Self::AlertLevel { alert, .. } => alert.set_op() + 2,
            Self::ResponseCode { .. } => 28,
        };
        // Every op above is in the table; the fallback is unreachable.
        SocpOpCode::from_u8(op).unwrap_or(SocpOpCode::ResponseCode)
    }

    /// Encodes the response, appending the computed E2E-CRC when `crc`.
    pub fn encode(&self, crc: bool) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.op_code().to_u8());
        match self {
            Self::CommunicationInterval { minutes } => {
                w.u8(*minutes);
            }
            Self::CalibrationValue(rec) => rec.write(&mut w),
            Self::AlertLevel { value, .. } => {
                w.sfloat(*value);
            }
            Self::ResponseCode {
                request_op_code,
                code,
            } => {
                w.u8(*request_op_code).u8(code.to_u8());
            }
        }
        if crc {
            append_crc(&mut w);
        }
        w.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::crc::e2e_crc;
    use proptest::prelude::*;

    fn with_crc(mut v: Vec<u8>) -> Vec<u8> {
        let crc = e2e_crc(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v
    }

    // CGMS §3.6.2.1: Set CGM Communication Interval, operand in minutes.
    #[test]
    fn set_communication_interval_carries_minutes() {
        let bytes = [0x01, 0x05];
        assert_eq!(
            CgmOpsRequest::decode(&bytes, false),
            Ok(CgmOpsRequest::SetCommunicationInterval { minutes: 5 })
        );
        assert_eq!(
            CgmOpsRequest::SetCommunicationInterval { minutes: 5 }.encode(false),
            bytes
        );
    }

    // CGMS §3.6.2.4-6: the calibration record is 10 bytes.
    #[test]
    fn calibration_value_response_decodes_the_record() {
        let bytes = [
            0x06, // Glucose Calibration Value response
            0x64, 0x00, // 100 mg/dL
            0x3C, 0x00, // at 60 min
            0x51, // type 1 (capillary whole blood), location 5 (subcutaneous)
            0xD0, 0x02, // next at 720 min
            0x03, 0x00, // record 3
            0x04, // pending
        ];
        let CgmOpsResponse::CalibrationValue(rec) = CgmOpsResponse::decode(&bytes, false).unwrap()
        else {
            panic!("not a calibration value");
        };
        assert_eq!(rec.glucose_mg_dl(), Some(100.0));
        assert_eq!(rec.time_min, 60);
        assert_eq!(rec.sample_type, SampleType::CapillaryWholeBlood);
        assert_eq!(rec.sample_location, SampleLocation::SubcutaneousTissue);
        assert_eq!(rec.next_calibration_min, 720);
        assert_eq!(rec.record_number, 3);
        assert!(rec.status.pending() && !rec.status.rejected());
        assert_eq!(CgmOpsResponse::CalibrationValue(rec).encode(false), bytes);
    }

    // CGMS §3.6.1: alert levels: set/get/response op codes 7..=24.
    #[test]
    fn alert_level_op_codes_map_to_their_levels() {
        let hypo_set = [0x0D, 0x46, 0x00]; // Set Hypo Alert Level 70 mg/dL
        assert_eq!(
            CgmOpsRequest::decode(&hypo_set, false),
            Ok(CgmOpsRequest::SetAlertLevel {
                alert: AlertLevel::Hypo,
                value: SFloat::from_raw(70)
            })
        );
        assert_eq!(
            CgmOpsRequest::decode(&[0x14], false),
            Ok(CgmOpsRequest::GetAlertLevel {
                alert: AlertLevel::RateOfDecrease
            })
        );
        assert_eq!(
            CgmOpsResponse::decode(&[0x18, 0x02, 0x00], false),
            Ok(CgmOpsResponse::AlertLevel {
                alert: AlertLevel::RateOfIncrease,
                value: SFloat::from_raw(2)
            })
        );
    }

    #[test]
    fn session_control_and_response_code_round_trip_with_crc() {
        let start = with_crc(vec![0x1A]);
        assert_eq!(
            CgmOpsRequest::decode(&start, true),
            Ok(CgmOpsRequest::StartSession)
        );
        assert_eq!(CgmOpsRequest::StartSession.encode(true), start);
        // Response Code: request Start Session, Success.
        let resp = with_crc(vec![0x1C, 0x1A, 0x01]);
        let decoded = CgmOpsResponse::decode(&resp, true).unwrap();
        assert_eq!(decoded.request_op(), Some(SocpOpCode::StartSession));
        assert_eq!(decoded.encode(true), resp);
        // An unknown request op code echoed back still decodes.
        let resp = [0x1C, 0x7F, 0x02];
        assert_eq!(
            CgmOpsResponse::decode(&resp, false),
            Ok(CgmOpsResponse::ResponseCode {
                request_op_code: 0x7F,
                code: SocpResponseCode::OpCodeNotSupported
            })
        );
    }

    #[test]
    fn errors_name_field_and_offset() {
        assert_eq!(
            CgmOpsRequest::decode(&[0x00], false),
            Err(Error::Reserved {
                characteristic: CHARACTERISTIC,
                field: "op_code",
                offset: 0,
                value: 0
            })
        );
        assert!(matches!(
            CgmOpsRequest::decode(&[0x1C, 0x01, 0x01], false),
            Err(Error::Inconsistent {
                field: "op_code",
                offset: 0,
                ..
            })
        ));
        assert!(matches!(
            CgmOpsResponse::decode(&[0x1A], false),
            Err(Error::Inconsistent {
                field: "op_code",
                offset: 0,
                ..
            })
        ));
        assert!(matches!(
            CgmOpsResponse::decode(&[0x1C, 0x1A, 0x06], false),
            Err(Error::Reserved {
                field: "response_code",
                offset: 2,
                value: 6,
                ..
            })
        ));
        assert!(matches!(
            CgmOpsRequest::decode(&[0x05, 0x01], false),
            Err(Error::Truncated {
                field: "calibration_record_number",
                offset: 1,
                ..
            })
        ));
        assert!(matches!(
            CgmOpsRequest::decode(&[0x1A, 0x00], false),
            Err(Error::Oversized { offset: 1, .. })
        ));
        let mut bad = with_crc(vec![0x1B]);
        bad[1] ^= 1;
        assert!(matches!(
            CgmOpsRequest::decode(&bad, true),
            Err(Error::CrcMismatch { offset: 1, .. })
        ));
        let mut rec = vec![0x04, 0x64, 0x00, 0, 0, 0x51, 0, 0, 0, 0, 0x08];
        assert!(matches!(
            CgmOpsRequest::decode(&rec, false),
            Err(Error::Reserved {
                field: "calibration_status",
                offset: 10,
                ..
            })
        ));
        rec[5] = 0x5B; // type 11 is reserved
        assert!(matches!(
            CgmOpsRequest::decode(&rec, false),
            Err(Error::Reserved {
                field: "type",
                offset: 5,
                value: 11,
                ..
            })
        ));
    }

    fn alert() -> impl Strategy<Value = AlertLevel> {
        prop::sample::select(AlertLevel::ALL.to_vec())
    }

    fn record() -> impl Strategy<Value = CalibrationRecord> {
        (
            any::<u16>(),
            any::<u16>(),
            1u8..=10,
            prop_oneof![1u8..=5, Just(15u8)],
            any::<u16>(),
            any::<u16>(),
            0u8..=7,
        )
            .prop_map(|(g, t, ty, loc, next, n, st)| CalibrationRecord {
                glucose: SFloat::from_raw(g),
                time_min: t,
                sample_type: SampleType::from_nibble(ty).unwrap(),
                sample_location: SampleLocation::from_nibble(loc).unwrap(),
                next_calibration_min: next,
                record_number: n,
                status: CalibrationStatus::from_bits(st).unwrap(),
            })
    }

    fn request() -> impl Strategy<Value = CgmOpsRequest> {
        prop_oneof![
            any::<u8>().prop_map(|minutes| CgmOpsRequest::SetCommunicationInterval { minutes }),
            Just(CgmOpsRequest::GetCommunicationInterval),
            record().prop_map(CgmOpsRequest::SetCalibrationValue),
            any::<u16>()
                .prop_map(|record_number| CgmOpsRequest::GetCalibrationValue { record_number }),
            (alert(), any::<u16>()).prop_map(|(alert, v)| CgmOpsRequest::SetAlertLevel {
                alert,
                value: SFloat::from_raw(v)
            }),
            alert().prop_map(|alert| CgmOpsRequest::GetAlertLevel { alert }),
            Just(CgmOpsRequest::ResetDeviceSpecificAlert),
            Just(CgmOpsRequest::StartSession),
            Just(CgmOpsRequest::StopSession),
        ]
    }

    fn response() -> impl Strategy<Value = CgmOpsResponse> {
        prop_oneof![
            any::<u8>().prop_map(|minutes| CgmOpsResponse::CommunicationInterval { minutes }),
            record().prop_map(CgmOpsResponse::CalibrationValue),
            (alert(), any::<u16>()).prop_map(|(alert, v)| CgmOpsResponse::AlertLevel {
                alert,
                value: SFloat::from_raw(v)
            }),
            (any::<u8>(), 1u8..=5).prop_map(|(op, c)| CgmOpsResponse::ResponseCode {
                request_op_code: op,
                code: SocpResponseCode::from_u8(c).unwrap()
            }),
        ]
    }

    proptest! {
        #[test]
        fn request_round_trips(req in request(), crc in any::<bool>()) {
            let bytes = req.encode(crc);
            prop_assert_eq!(CgmOpsRequest::decode(&bytes, crc), Ok(req));
        }

        #[test]
        fn response_round_trips(resp in response(), crc in any::<bool>()) {
            let bytes = resp.encode(crc);
            prop_assert_eq!(CgmOpsResponse::decode(&bytes, crc), Ok(resp));
        }

        #[test]
        fn ops_decoders_never_panic_and_reencode_exactly(
            bytes in proptest::collection::vec(any::<u8>(), 0..16),
            crc in any::<bool>(),
        ) {
            if let Ok(req) = CgmOpsRequest::decode(&bytes, crc) {
                prop_assert_eq!(req.encode(crc), bytes.clone());
            }
            if let Ok(resp) = CgmOpsResponse::decode(&bytes, crc) {
                prop_assert_eq!(resp.encode(crc), bytes);
            }
        }
    }
}

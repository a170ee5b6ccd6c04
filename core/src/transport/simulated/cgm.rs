//! A simulated continuous glucose monitor (CGM Service 0x181F plus the
//! Battery Service), speaking exactly the bytes of the CGM codecs.
//!
//! The sensor measures on a fixed grid (every 1 or 5 minutes from the
//! configured start) from the seeded [`GlucoseModel`], stores every record
//! of the running session in a bounded [`RecordStore`] (oldest evicted),
//! notifies each new record live when the phone is connected and
//! subscribed, and answers the Record Access Control Point and the CGM
//! Specific Ops Control Point, SOCP (start/stop session, communication interval).
//! Records are sent one per notification and a RACP report ends with its
//! response-code indication, in the order CGMS §3.7 prescribes.
//!
//! Sessions: a session starts at the configured start (or a scripted
//! [`Fault::NewSession`](super::faults::Fault::NewSession), or a Start
//! Session written to the control point) and its first `warmup_min` minutes
//! produce no records (warm-up). It expires after `run_time_hours`: the last
//! record carries "session stopped" and nothing more is measured until a new
//! session starts, which clears the store and restarts time offsets at 0.
//!
//! The sensor keeps its own clock, `clock_skew` ahead of true time, and
//! writes its Session Start Time (local time, time zone, DST) from it, so a
//! session must record the drift between the sensor's "now" and the phone's.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};

use super::faults::{FaultPlan, corrupt};
use super::physiology::{GlucoseModel, GlucoseProfile, SampleInterval};
use super::record_store::RecordStore;
use super::{AttError, Emission, Peripheral, battery_char, chr, props, uuid};
use crate::Result;
use crate::codec::battery::BatteryLevel;
use crate::codec::cgm::socp::{SocpOpCode, SocpRequest, SocpResponse, SocpResponseCode};
use crate::codec::cgm::{
    Annunciation, CgmFeature, CgmMeasurement, CgmSessionRunTime, CgmSessionStartTime, CgmStatus,
    DstOffset, FeatureBits, SampleLocation, SampleType, StatusOctet, TimeZone,
};
use crate::codec::racp::RacpService;
use crate::codec::{SFloat, service, uuid as u};
use crate::transport::{Advertisement, Characteristic, GattUuid, PeripheralId};

/// Below this battery level the sensor sets "device battery low".
pub const LOW_BATTERY_PERCENT: u8 = 10;

/// Everything that defines one simulated CGM.
#[derive(Debug, Clone)]
pub struct CgmConfig {
    /// Transport-level identity and advertised name.
    pub id: PeripheralId,
    /// Seed of the physiology.
    pub seed: u64,
    /// The simulated patient.
    pub profile: GlucoseProfile,
    /// True (phone) time at which the first session starts and the
    /// measurement grid begins.
    pub start: DateTime<Utc>,
    /// Measurement interval.
    pub interval: SampleInterval,
    /// Whether records and CGM characteristics carry the E2E-CRC.
    pub e2e_crc: bool,
    /// Records the sensor holds before it evicts the oldest.
    pub capacity: usize,
    /// Minutes at the start of a session without records.
    pub warmup_min: u16,
    /// Session length in hours before the sensor expires.
    pub run_time_hours: u16,
    /// The sensor's time zone (standard offset from UTC).
    pub time_zone: TimeZone,
    /// The sensor's DST offset.
    pub dst: DstOffset,
    /// How far the sensor's clock runs ahead of true time (negative:
    /// behind).
    pub clock_skew: TimeDelta,
    /// Battery level when no fault says otherwise.
    pub battery_percent: u8,
    /// The faults it suffers.
    pub faults: FaultPlan,
}

impl CgmConfig {
    /// A healthy sensor: well-controlled type 1 patient, 5-minute
    /// readings, E2E-CRC on, 14-day session, 14 days of storage, no
    /// warm-up at the start, UTC+1 with DST, exact clock, no faults.
    pub fn new(id: &str, seed: u64, start: DateTime<Utc>) -> Self {
        Self {
            id: PeripheralId(id.to_owned()),
            seed,
            profile: GlucoseProfile::well_controlled_type1(),
            start,
            interval: SampleInterval::FiveMinutes,
            e2e_crc: true,
            capacity: 14 * 24 * 60,
            warmup_min: 0,
            run_time_hours: 14 * 24,
            time_zone: TimeZone::from_raw(4).unwrap_or(TimeZone::UNKNOWN),
            dst: DstOffset::OneHour,
            clock_skew: TimeDelta::zero(),
            battery_percent: 80,
            faults: FaultPlan::none(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct SensorSession {
    /// True time of the start.
    start: DateTime<Utc>,
}

/// A simulated CGM; see the module docs.
#[derive(Debug)]
pub struct SimulatedCgm {
    cfg: CgmConfig,
    model: GlucoseModel,
    store: RecordStore<CgmMeasurement>,
    session: Option<SensorSession>,
    /// Start of the latest session, running or not.
    last_start: DateTime<Utc>,
    /// Time offset of the last measurement of the latest session.
    last_offset: u16,
    next_sample: DateTime<Utc>,
    last_advance: DateTime<Utc>,
    connected: bool,
    subscribed: HashSet<GattUuid>,
    pending: VecDeque<Emission>,
    battery_sent: Option<u8>,
    prev_sensor: Option<f64>,
}

impl SimulatedCgm {
    /// A sensor as configured; fails for a profile the physiology refuses.
    pub fn new(cfg: CgmConfig) -> Result<Self> {
        let model = GlucoseModel::new(cfg.seed, cfg.profile.clone(), cfg.start, cfg.interval)?;
        Ok(Self {
            store: RecordStore::new(cfg.capacity, RacpService::Cgm),
            session: Some(SensorSession { start: cfg.start }),
            last_start: cfg.start,
            last_offset: 0,
            next_sample: cfg.start,
            last_advance: cfg.start - TimeDelta::seconds(1),
            connected: false,
            subscribed: HashSet::new(),
            pending: VecDeque::new(),
            battery_sent: None,
            prev_sensor: None,
            model,
            cfg,
        })
    }

    /// Time offsets of every record the sensor holds now, oldest first: the
    /// ground truth fault tests compare the phone's buffer with.
    pub fn held_offsets(&self) -> Vec<u16> {
        self.store.keys()
    }

    /// Every record the sensor holds now, oldest first.
    pub fn held(&self) -> Vec<CgmMeasurement> {
        self.store.records()
    }

    /// True (phone) start time of the latest session.
    pub fn session_start(&self) -> DateTime<Utc> {
        self.last_start
    }

    fn battery(&self, now: DateTime<Utc>) -> u8 {
        self.cfg
            .faults
            .battery(now)
            .unwrap_or(self.cfg.battery_percent)
    }

    fn crc(&self) -> Option<u16> {
        self.cfg.e2e_crc.then_some(0)
    }

    fn status_octet(&self, now: DateTime<Utc>, stopped: bool) -> StatusOctet {
        let mut bits = 0;
        if stopped {
            bits |= StatusOctet::SESSION_STOPPED;
        }
        if self.battery(now) < LOW_BATTERY_PERCENT {
            bits |= StatusOctet::DEVICE_BATTERY_LOW;
        }
        StatusOctet::from_bits(bits).unwrap_or_default()
    }

    fn start_session(&mut self, at: DateTime<Utc>) {
        self.store.clear();
        self.session = Some(SensorSession { start: at });
        self.last_start = at;
        self.last_offset = 0;
        self.prev_sensor = None;
    }

    fn minutes_since(start: DateTime<Utc>, t: DateTime<Utc>) -> i64 {
        (t - start).num_minutes()
    }

    /// Measures at `t` (a grid point) and stores/sends the record.
    fn measure(&mut self, t: DateTime<Utc>, out: &mut Vec<Emission>) {
        let point = self.model.next_point();
        let Some(session) = self.session else { return };
        let offset = Self::minutes_since(session.start, t);
        let expiry = i64::from(self.cfg.run_time_hours) * 60;
        if offset < i64::from(self.cfg.warmup_min) {
            return;
        }
        let Ok(offset_u16) = u16::try_from(offset) else {
            self.session = None;
            return;
        };
        let stopped = offset >= expiry;
        let status = self.status_octet(t, stopped);
        // The model reports levels, the sensor a rate: the slope over the
        // last interval, to 0.1 mg/dL/min (none for a session's first).
        let trend = self.prev_sensor.and_then(|prev| {
            let per_min = (point.sensor_mgdl - prev) / f64::from(self.cfg.interval.minutes());
            SFloat::new((per_min * 10.0).round().clamp(-2000.0, 2000.0) as i32, -1)
        });
        self.prev_sensor = Some(point.sensor_mgdl);
        let record = CgmMeasurement {
            glucose: SFloat::new(point.sensor_mgdl.round() as i32, 0).unwrap_or(SFloat::NAN),
            time_offset_min: offset_u16,
            status: (!status.is_empty()).then_some(status),
            cal_temp: None,
            warning: None,
            trend,
            quality: None,
            crc: self.crc(),
        };
        self.store.push(offset_u16, record);
        self.last_offset = offset_u16;
        if stopped {
            self.session = None;
        }
        let live = uuid(u::CGM_MEASUREMENT);
        if self.connected && self.subscribed.contains(&live) && !self.cfg.faults.drops(t) {
            let mut value = record.encode();
            if self.cfg.faults.corrupts(t) {
                value = corrupt(value, self.cfg.e2e_crc);
            }
            let times = if self.cfg.faults.duplicates(t) { 2 } else { 1 };
            for _ in 0..times {
                out.push(Emission {
                    at: t,
                    characteristic: live,
                    value: value.clone(),
                });
            }
        }
    }

    fn sensor_now_offset(&self, now: DateTime<Utc>) -> u16 {
        match self.session {
            Some(s) => u16::try_from(Self::minutes_since(s.start, now).max(0)).unwrap_or(u16::MAX),
            None => self.last_offset,
        }
    }

    fn session_start_time(&self) -> Vec<u8> {
        let local = self.last_start
            + self.cfg.clock_skew
            + TimeDelta::minutes(i64::from(
                self.cfg.time_zone.offset_minutes().unwrap_or(0)
                    + self.cfg.dst.minutes().unwrap_or(0),
            ));
        let start = crate::codec::cgm::DateTime {
            year: u16::try_from(local.year()).unwrap_or(0),
            month: local.month() as u8,
            day: local.day() as u8,
            hours: local.hour() as u8,
            minutes: local.minute() as u8,
            seconds: local.second() as u8,
        };
        CgmSessionStartTime {
            start,
            time_zone: self.cfg.time_zone,
            dst: self.cfg.dst,
            crc: self.crc(),
        }
        .encode()
        .unwrap_or_default()
    }

    fn socp(&mut self, now: DateTime<Utc>, value: &[u8]) -> SocpResponse {
        let op = value.first().copied().unwrap_or(0);
        let code = |code| SocpResponse::ResponseCode {
            request_op_code: op,
            code,
        };
        let Ok(req) = SocpRequest::decode(value, self.cfg.e2e_crc) else {
            return match SocpOpCode::from_u8(op) {
                None => code(SocpResponseCode::OpCodeNotSupported),
                Some(_) => code(SocpResponseCode::InvalidOperand),
            };
        };
        match req {
            SocpRequest::StartSession if self.session.is_none() => {
                self.start_session(now);
                code(SocpResponseCode::Success)
            }
            SocpRequest::StopSession if self.session.is_some() => {
                self.session = None;
                code(SocpResponseCode::Success)
            }
            SocpRequest::StartSession | SocpRequest::StopSession => {
                code(SocpResponseCode::ProcedureNotCompleted)
            }
            SocpRequest::GetCommunicationInterval => SocpResponse::CommunicationInterval {
                minutes: self.cfg.interval.minutes() as u8,
            },
            SocpRequest::SetCommunicationInterval { minutes } => {
                if u32::from(minutes) == self.cfg.interval.minutes() {
                    code(SocpResponseCode::Success)
                } else {
                    code(SocpResponseCode::ParameterOutOfRange)
                }
            }
            _ => code(SocpResponseCode::OpCodeNotSupported),
        }
    }
}

impl Peripheral for SimulatedCgm {
    fn advertisement(&self) -> Advertisement {
        Advertisement {
            id: self.cfg.id.clone(),
            name: Some(format!("Vigil CGM {}", self.cfg.id.0)),
            services: vec![uuid(service::CGM), uuid(service::BATTERY)],
            rssi: Some(-60),
        }
    }

    fn characteristics(&self) -> Vec<Characteristic> {
        let s = service::CGM;
        let (n, i, r, w) = (props::NOTIFY, props::INDICATE, props::READ, props::WRITE);
        vec![
            chr(s, u::CGM_MEASUREMENT, n),
            chr(s, u::CGM_FEATURE, r),
            chr(s, u::CGM_STATUS, r),
            chr(s, u::CGM_SESSION_START_TIME, r),
            chr(s, u::CGM_SESSION_RUN_TIME, r),
            chr(s, u::RECORD_ACCESS_CONTROL_POINT, props::join(w, i)),
            chr(s, u::CGM_SPECIFIC_OPS_CONTROL_POINT, props::join(w, i)),
            battery_char(),
        ]
    }

    fn reachable(&self, now: DateTime<Utc>) -> bool {
        self.cfg.faults.reachable(now)
    }

    fn read(&mut self, now: DateTime<Utc>, characteristic: GattUuid) -> Result<Vec<u8>, AttError> {
        let short = characteristic.as_u16().ok_or(AttError::AttributeNotFound)?;
        let mut bits = FeatureBits::TREND | FeatureBits::LOW_BATTERY_DETECTION;
        if self.cfg.e2e_crc {
            bits |= FeatureBits::E2E_CRC;
        }
        Ok(match short {
            u::CGM_FEATURE => CgmFeature {
                features: FeatureBits::from_bits(bits).ok_or(AttError::ReadNotPermitted)?,
                sample_type: SampleType::InterstitialFluid,
                sample_location: SampleLocation::SubcutaneousTissue,
                crc: 0,
            }
            .encode(),
            u::CGM_STATUS => CgmStatus {
                time_offset_min: self.sensor_now_offset(now),
                status: Annunciation {
                    status: self.status_octet(now, self.session.is_none()),
                    ..Annunciation::default()
                },
                crc: self.crc(),
            }
            .encode(),
            u::CGM_SESSION_START_TIME => self.session_start_time(),
            u::CGM_SESSION_RUN_TIME => CgmSessionRunTime {
                run_time_hours: self.cfg.run_time_hours,
                crc: self.crc(),
            }
            .encode(),
            u::BATTERY_LEVEL => BatteryLevel {
                percent: self.battery(now).min(100),
            }
            .encode()
            .map_err(|_| AttError::ReadNotPermitted)?,
            u::CGM_MEASUREMENT
            | u::RECORD_ACCESS_CONTROL_POINT
            | u::CGM_SPECIFIC_OPS_CONTROL_POINT => return Err(AttError::ReadNotPermitted),
            _ => return Err(AttError::AttributeNotFound),
        })
    }

    fn write(
        &mut self,
        now: DateTime<Utc>,
        characteristic: GattUuid,
        value: &[u8],
    ) -> Result<(), AttError> {
        let short = characteristic.as_u16().ok_or(AttError::AttributeNotFound)?;
        if !matches!(
            short,
            u::RECORD_ACCESS_CONTROL_POINT | u::CGM_SPECIFIC_OPS_CONTROL_POINT
        ) {
            return Err(
                if self
                    .characteristics()
                    .iter()
                    .any(|c| c.uuid == characteristic)
                {
                    AttError::WriteNotPermitted
                } else {
                    AttError::AttributeNotFound
                },
            );
        }
        if !self.subscribed.contains(&characteristic) {
            return Err(AttError::ClientCharacteristicConfigurationImproperlyConfigured);
        }
        if self
            .pending
            .iter()
            .any(|e| e.characteristic == characteristic)
        {
            return Err(AttError::ProcedureAlreadyInProgress);
        }
        // Measure up to `now` first, so a report includes every record the
        // sensor holds at the moment of the request.
        let mut live = self.advance_measurements(now);
        self.pending.extend(live.drain(..));
        if short == u::RECORD_ACCESS_CONTROL_POINT {
            let answer = self.store.answer(value);
            let measurement = uuid(u::CGM_MEASUREMENT);
            for record in answer.records {
                self.pending.push_back(Emission {
                    at: now,
                    characteristic: measurement,
                    value: record.encode(),
                });
            }
            self.pending.push_back(Emission {
                at: now,
                characteristic,
                value: answer.response.encode(),
            });
        } else {
            let response = self.socp(now, value);
            self.pending.push_back(Emission {
                at: now,
                characteristic,
                value: response.encode(self.cfg.e2e_crc),
            });
        }
        Ok(())
    }

    fn set_subscribed(&mut self, characteristic: GattUuid, on: bool) -> Result<(), AttError> {
        let table = self.characteristics();
        super::set_cccd(&table, &mut self.subscribed, characteristic, on)
    }

    fn set_connected(&mut self, now: DateTime<Utc>, connected: bool) {
        // Catch up first, so records measured before the change are stored
        // under the old link state.
        let _ = self.advance_measurements(now);
        self.connected = connected;
        if !connected {
            self.subscribed.clear();
            self.pending.clear();
            self.battery_sent = None;
        }
    }

    fn advance(&mut self, now: DateTime<Utc>) -> Vec<Emission> {
        let mut out: Vec<Emission> = self.pending.drain(..).collect();
        out.extend(self.advance_measurements(now));
        let level = self.battery(now).min(100);
        let battery = uuid(u::BATTERY_LEVEL);
        if self.connected && self.subscribed.contains(&battery) && self.battery_sent != Some(level)
        {
            if let Ok(value) = (BatteryLevel { percent: level }).encode() {
                out.push(Emission {
                    at: now,
                    characteristic: battery,
                    value,
                });
                self.battery_sent = Some(level);
            }
        }
        out
    }
}

impl SimulatedCgm {
    /// Runs the measurement grid and scripted session starts up to `now`.
    fn advance_measurements(&mut self, now: DateTime<Utc>) -> Vec<Emission> {
        let mut out = Vec::new();
        if now <= self.last_advance {
            return out;
        }
        let step = self.cfg.interval.duration();
        while self.next_sample <= now {
            let t = self.next_sample;
            for at in self.cfg.faults.new_sessions(self.last_advance, t) {
                self.start_session(at);
            }
            self.last_advance = t;
            self.measure(t, &mut out);
            self.next_sample = t + step;
        }
        for at in self.cfg.faults.new_sessions(self.last_advance, now) {
            self.start_session(at);
        }
        self.last_advance = now;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::racp::{
        FilterValue, RacpRequest, RacpResponse, RacpResponseCode, RecordFilter,
    };

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn connected(cfg: CgmConfig) -> SimulatedCgm {
        let mut s = SimulatedCgm::new(cfg).unwrap();
        s.set_connected(t0(), true);
        for c in [
            u::CGM_MEASUREMENT,
            u::RECORD_ACCESS_CONTROL_POINT,
            u::CGM_SPECIFIC_OPS_CONTROL_POINT,
        ] {
            s.set_subscribed(uuid(c), true).unwrap();
        }
        s
    }

    fn racp(filter: RecordFilter) -> Vec<u8> {
        RacpRequest::ReportStoredRecords(filter).encode().unwrap()
    }

    #[test]
    fn a_report_sends_records_then_the_response_indication() {
        let mut s = connected(CgmConfig::new("c", 1, t0()));
        let now = t0() + TimeDelta::minutes(60);
        // Offset 0 was measured as the link came up, before notifications
        // were enabled: stored, not sent.
        let live = s.advance(now);
        assert_eq!(live.len(), 12);
        let filter = RecordFilter::AtLeast(FilterValue::TimeOffset(30));
        s.write(now, uuid(u::RECORD_ACCESS_CONTROL_POINT), &racp(filter))
            .unwrap();
        let out = s.advance(now);
        let (last, records) = out.split_last().unwrap();
        let offsets: Vec<u16> = records
            .iter()
            .map(|e| {
                assert_eq!(e.characteristic, uuid(u::CGM_MEASUREMENT));
                CgmMeasurement::decode(&e.value, true)
                    .unwrap()
                    .time_offset_min
            })
            .collect();
        assert_eq!(offsets, vec![30, 35, 40, 45, 50, 55, 60]);
        assert_eq!(last.characteristic, uuid(u::RECORD_ACCESS_CONTROL_POINT));
        assert_eq!(
            RacpResponse::decode(&last.value).unwrap(),
            RacpResponse::ResponseCode {
                request_op_code: 1,
                code: RacpResponseCode::Success
            }
        );
    }

    #[test]
    fn a_second_request_before_the_answer_is_procedure_already_in_progress() {
        let mut s = connected(CgmConfig::new("c", 1, t0()));
        let now = t0() + TimeDelta::minutes(10);
        let cp = uuid(u::RECORD_ACCESS_CONTROL_POINT);
        s.write(now, cp, &racp(RecordFilter::All)).unwrap();
        assert_eq!(
            s.write(now, cp, &racp(RecordFilter::All)),
            Err(AttError::ProcedureAlreadyInProgress)
        );
        s.advance(now);
        assert!(s.write(now, cp, &racp(RecordFilter::All)).is_ok());
    }

    #[test]
    fn control_points_need_indications_enabled() {
        let mut s = SimulatedCgm::new(CgmConfig::new("c", 1, t0())).unwrap();
        s.set_connected(t0(), true);
        assert_eq!(
            s.write(
                t0(),
                uuid(u::RECORD_ACCESS_CONTROL_POINT),
                &racp(RecordFilter::All)
            ),
            Err(AttError::ClientCharacteristicConfigurationImproperlyConfigured)
        );
        assert_eq!(
            s.write(t0(), uuid(u::CGM_FEATURE), &[0]),
            Err(AttError::WriteNotPermitted)
        );
    }

    #[test]
    fn stop_and_start_session_restart_time_offsets() {
        let mut s = connected(CgmConfig::new("c", 1, t0()));
        let socp = uuid(u::CGM_SPECIFIC_OPS_CONTROL_POINT);
        let code = |s: &mut SimulatedCgm, now| {
            let out = s.advance(now);
            let e = out.iter().find(|e| e.characteristic == socp).unwrap();
            SocpResponse::decode(&e.value, true).unwrap()
        };
        let t1 = t0() + TimeDelta::minutes(42);
        s.write(t1, socp, &SocpRequest::StartSession.encode(true))
            .unwrap();
        assert!(matches!(
            code(&mut s, t1),
            SocpResponse::ResponseCode {
                code: SocpResponseCode::ProcedureNotCompleted,
                ..
            }
        ));
        s.write(t1, socp, &SocpRequest::StopSession.encode(true))
            .unwrap();
        assert!(matches!(
            code(&mut s, t1),
            SocpResponse::ResponseCode {
                code: SocpResponseCode::Success,
                ..
            }
        ));
        let status = CgmStatus::decode(&s.read(t1, uuid(u::CGM_STATUS)).unwrap(), true).unwrap();
        assert!(status.status.status.session_stopped());
        s.write(t1, socp, &SocpRequest::StartSession.encode(true))
            .unwrap();
        code(&mut s, t1);
        let out = s.advance(t1 + TimeDelta::minutes(10));
        let offsets: Vec<u16> = out
            .iter()
            .filter(|e| e.characteristic == uuid(u::CGM_MEASUREMENT))
            .map(|e| {
                CgmMeasurement::decode(&e.value, true)
                    .unwrap()
                    .time_offset_min
            })
            .collect();
        // Grid points at 45 and 50 minutes are 3 and 8 minutes into the
        // session that started at 42.
        assert_eq!(offsets, vec![3, 8]);
        assert_eq!(s.held_offsets(), vec![3, 8]);
    }

    #[test]
    fn without_e2e_crc_every_value_decodes_without_one() {
        let mut cfg = CgmConfig::new("c", 1, t0());
        cfg.e2e_crc = false;
        let mut s = connected(cfg);
        let now = t0() + TimeDelta::minutes(20);
        let feature = CgmFeature::decode(&s.read(now, uuid(u::CGM_FEATURE)).unwrap()).unwrap();
        assert!(!feature.features.e2e_crc());
        CgmSessionStartTime::decode(
            &s.read(now, uuid(u::CGM_SESSION_START_TIME)).unwrap(),
            false,
        )
        .unwrap();
        for e in s.advance(now) {
            CgmMeasurement::decode(&e.value, false).unwrap();
        }
    }

    #[test]
    fn records_survive_while_disconnected_and_are_not_sent() {
        let mut s = connected(CgmConfig::new("c", 1, t0()));
        s.set_connected(t0() + TimeDelta::minutes(1), false);
        assert!(s.advance(t0() + TimeDelta::minutes(30)).is_empty());
        assert_eq!(s.held_offsets().len(), 7);
    }
}

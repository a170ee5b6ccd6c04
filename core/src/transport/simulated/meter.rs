//! A simulated blood glucose meter (Glucose Service 0x1808 plus Battery):
//! fingerstick tests around meals and bedtime, stored with sequence numbers
//! and handed over only through the Record Access Control Point, as GLS
//! meters do (no live notifications of their own).
//!
//! Tests read the seeded [`GlucoseModel`]'s blood glucose (not the lagged
//! interstitial value a CGM sees) with a meter's few-percent error, and are
//! stamped with the meter's local wall-clock time (GLS carries no time
//! zone), so the session must know the meter's UTC offset.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::faults::FaultPlan;
use super::physiology::{GlucoseModel, GlucoseProfile, SampleInterval};
use super::record_store::RecordStore;
use super::{AttError, Emission, Peripheral, battery_char, chr, props, uuid};
use crate::Result;
use crate::codec::battery::BatteryLevel;
use crate::codec::glucose::{
    ConcentrationUnit, DateTime as GlsDateTime, GlucoseMeasurement, GlucoseSample, SampleLocation,
    SampleType,
};
use crate::codec::racp::RacpService;
use crate::codec::{SFloat, service, uuid as u};
use crate::transport::{Advertisement, Characteristic, GattUuid, PeripheralId};

/// Local times of day (minutes after midnight) around which tests happen.
const TEST_TIMES_MIN: [i64; 4] = [7 * 60 + 30, 12 * 60 + 15, 18 * 60 + 30, 22 * 60 + 30];

/// Everything that defines one simulated meter.
#[derive(Debug, Clone)]
pub struct MeterConfig {
    /// Transport-level identity.
    pub id: PeripheralId,
    /// Seed of the physiology and of the test times.
    pub seed: u64,
    /// The simulated patient.
    pub profile: GlucoseProfile,
    /// True time at which the simulation starts.
    pub start: DateTime<Utc>,
    /// The meter's local time offset from UTC, minutes.
    pub utc_offset_min: i32,
    /// Records the meter holds before evicting the oldest.
    pub capacity: usize,
    /// Sequence number of the first test.
    pub first_sequence: u16,
    /// Battery level when no fault says otherwise.
    pub battery_percent: u8,
    /// The faults it suffers.
    pub faults: FaultPlan,
}

impl MeterConfig {
    /// A healthy meter: type 2 patient, UTC+1, 500 records, no faults.
    pub fn new(id: &str, seed: u64, start: DateTime<Utc>) -> Self {
        Self {
            id: PeripheralId(id.to_owned()),
            seed,
            profile: GlucoseProfile::type2(),
            start,
            utc_offset_min: 60,
            capacity: 500,
            first_sequence: 1,
            battery_percent: 70,
            faults: FaultPlan::none(),
        }
    }
}

/// A simulated blood glucose meter; see the module docs.
#[derive(Debug)]
pub struct SimulatedMeter {
    cfg: MeterConfig,
    model: GlucoseModel,
    rng: ChaCha8Rng,
    store: RecordStore<GlucoseMeasurement>,
    /// Minute (since start) the model has reached.
    minute: i64,
    /// Upcoming test times, minutes since start.
    schedule: VecDeque<i64>,
    planned_days: i64,
    next_sequence: u16,
    connected: bool,
    subscribed: HashSet<GattUuid>,
    pending: VecDeque<Emission>,
}

impl SimulatedMeter {
    /// A meter as configured; fails for a profile the physiology refuses.
    pub fn new(cfg: MeterConfig) -> Result<Self> {
        let model = GlucoseModel::new(
            cfg.seed,
            cfg.profile.clone(),
            cfg.start,
            SampleInterval::OneMinute,
        )?;
        Ok(Self {
            model,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x4d45_5445),
            store: RecordStore::new(cfg.capacity, RacpService::Glucose),
            minute: 0,
            schedule: VecDeque::new(),
            planned_days: 0,
            next_sequence: cfg.first_sequence,
            connected: false,
            subscribed: HashSet::new(),
            pending: VecDeque::new(),
            cfg,
        })
    }

    /// Sequence numbers of every record the meter holds, oldest first.
    pub fn held_sequences(&self) -> Vec<u16> {
        self.store.keys()
    }

    /// Every record the meter holds now, oldest first.
    pub fn held(&self) -> Vec<GlucoseMeasurement> {
        self.store.records()
    }

    fn local(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        t + TimeDelta::minutes(i64::from(self.cfg.utc_offset_min))
    }

    /// Plans the tests of local day `day` (0 = the day containing start).
    fn plan_day(&mut self, day: i64) {
        let local_start = self.local(self.cfg.start);
        let midnight = local_start
            .with_hour(0)
            .and_then(|t| t.with_minute(0))
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(local_start);
        let day_start = (midnight - local_start).num_minutes() + day * 1440;
        for base in TEST_TIMES_MIN {
            let at = day_start + base + self.rng.random_range(-20..=25);
            if at > 0 {
                self.schedule.push_back(at);
            }
        }
    }

    fn run_to(&mut self, now: DateTime<Utc>) {
        let target = (now - self.cfg.start).num_minutes();
        while self.planned_days * 1440 <= target + 1440 {
            let d = self.planned_days;
            self.plan_day(d);
            self.planned_days += 1;
        }
        while let Some(&at) = self.schedule.front() {
            if at > target {
                break;
            }
            self.schedule.pop_front();
            let steps = u32::try_from(at - self.minute).unwrap_or(0);
            let point = self.model.advance(steps);
            self.minute = at;
            self.take_test(point.blood_mgdl, self.cfg.start + TimeDelta::minutes(at));
        }
    }

    fn take_test(&mut self, blood_mgdl: f64, t: DateTime<Utc>) {
        let measured = blood_mgdl * (1.0 + self.rng.random_range(-0.04..0.04));
        let local = self.local(t);
        let seq = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        let record = GlucoseMeasurement {
            sequence_number: seq,
            base_time: GlsDateTime {
                year: u16::try_from(local.year()).unwrap_or(0),
                month: local.month() as u8,
                day: local.day() as u8,
                hours: local.hour() as u8,
                minutes: local.minute() as u8,
                seconds: local.second() as u8,
            },
            time_offset_min: None,
            sample: SFloat::new(measured.round() as i32, -5).map(|c| GlucoseSample {
                concentration: c,
                sample_type: SampleType::CapillaryWholeBlood,
                sample_location: SampleLocation::Finger,
            }),
            concentration_unit: ConcentrationUnit::KgPerL,
            sensor_status: None,
            context_follows: false,
        };
        self.store.push(seq, record);
    }

    fn battery(&self, now: DateTime<Utc>) -> u8 {
        self.cfg
            .faults
            .battery(now)
            .unwrap_or(self.cfg.battery_percent)
    }
}

impl Peripheral for SimulatedMeter {
    fn advertisement(&self) -> Advertisement {
        Advertisement {
            id: self.cfg.id.clone(),
            name: Some(format!("Vigil BGM {}", self.cfg.id.0)),
            services: vec![uuid(service::GLUCOSE), uuid(service::BATTERY)],
            rssi: Some(-62),
        }
    }

    fn characteristics(&self) -> Vec<Characteristic> {
        vec![
            chr(service::GLUCOSE, u::GLUCOSE_MEASUREMENT, props::NOTIFY),
            chr(
                service::GLUCOSE,
                u::RECORD_ACCESS_CONTROL_POINT,
                props::join(props::WRITE, props::INDICATE),
            ),
            battery_char(),
        ]
    }

    fn reachable(&self, now: DateTime<Utc>) -> bool {
        self.cfg.faults.reachable(now)
    }

    fn read(&mut self, now: DateTime<Utc>, characteristic: GattUuid) -> Result<Vec<u8>, AttError> {
        match characteristic.as_u16() {
            Some(u::BATTERY_LEVEL) => BatteryLevel {
                percent: self.battery(now).min(100),
            }
            .encode()
            .map_err(|_| AttError::ReadNotPermitted),
            Some(u::GLUCOSE_MEASUREMENT | u::RECORD_ACCESS_CONTROL_POINT) => {
                Err(AttError::ReadNotPermitted)
            }
            _ => Err(AttError::AttributeNotFound),
        }
    }

    fn write(
        &mut self,
        now: DateTime<Utc>,
        characteristic: GattUuid,
        value: &[u8],
    ) -> Result<(), AttError> {
        match characteristic.as_u16() {
            Some(u::RECORD_ACCESS_CONTROL_POINT) => {}
            Some(u::GLUCOSE_MEASUREMENT | u::BATTERY_LEVEL) => {
                return Err(AttError::WriteNotPermitted);
            }
            _ => return Err(AttError::AttributeNotFound),
        }
        if !self.subscribed.contains(&characteristic) {
            return Err(AttError::ClientCharacteristicConfigurationImproperlyConfigured);
        }
        if !self.pending.is_empty() {
            return Err(AttError::ProcedureAlreadyInProgress);
        }
        self.run_to(now);
        let answer = self.store.answer(value);
        let measurement = uuid(u::GLUCOSE_MEASUREMENT);
        for record in answer.records {
            if let Ok(value) = record.encode() {
                self.pending.push_back(Emission {
                    at: now,
                    characteristic: measurement,
                    value,
                });
            }
        }
        self.pending.push_back(Emission {
            at: now,
            characteristic,
            value: answer.response.encode(),
        });
        Ok(())
    }

    fn set_subscribed(&mut self, characteristic: GattUuid, on: bool) -> Result<(), AttError> {
        let table = self.characteristics();
        super::set_cccd(&table, &mut self.subscribed, characteristic, on)
    }

    fn set_connected(&mut self, now: DateTime<Utc>, connected: bool) {
        self.run_to(now);
        self.connected = connected;
        if !connected {
            self.subscribed.clear();
            self.pending.clear();
        }
    }

    fn advance(&mut self, now: DateTime<Utc>) -> Vec<Emission> {
        self.run_to(now);
        self.pending.drain(..).collect()
    }
}

//! A simulated heart-rate strap (Heart Rate Service 0x180D plus Battery):
//! one Heart Rate Measurement notification a second from the seeded
//! [`HeartModel`], with the RR intervals of the beats in that second.
//!
//! A strap stores nothing: what is measured while the phone is away is
//! lost, and no session can backfill it. Faults act on the notifications
//! (dropped, duplicated, cut short) and on reachability.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};

use super::faults::{FaultPlan, corrupt};
use super::physiology::{HeartModel, HeartPoint, HeartProfile};
use super::{AttError, Emission, Peripheral, battery_char, chr, props, uuid};
use crate::Result;
use crate::codec::battery::BatteryLevel;
use crate::codec::heart_rate::{
    HeartRateFormat, HeartRateMeasurement, RR_TICKS_PER_SECOND, SensorContact,
};
use crate::codec::{service, uuid as u};
use crate::transport::{Advertisement, Characteristic, GattUuid, PeripheralId};

/// Everything that defines one simulated strap.
#[derive(Debug, Clone)]
pub struct HeartRateConfig {
    /// Transport-level identity.
    pub id: PeripheralId,
    /// Seed of the physiology.
    pub seed: u64,
    /// The simulated wearer.
    pub profile: HeartProfile,
    /// True time of the first beat-second.
    pub start: DateTime<Utc>,
    /// Battery level when no fault says otherwise.
    pub battery_percent: u8,
    /// The faults it suffers.
    pub faults: FaultPlan,
}

impl HeartRateConfig {
    /// A healthy adult's strap with no faults.
    pub fn new(id: &str, seed: u64, start: DateTime<Utc>) -> Self {
        Self {
            id: PeripheralId(id.to_owned()),
            seed,
            profile: HeartProfile::adult(),
            start,
            battery_percent: 90,
            faults: FaultPlan::none(),
        }
    }
}

/// Drives a 1 Hz source and the notification faults; shared by the strap
/// and the oximeter.
#[derive(Debug)]
pub(crate) struct OneHertz {
    pub(crate) model: HeartModel,
    pub(crate) next: DateTime<Utc>,
    pub(crate) connected: bool,
    pub(crate) subscribed: HashSet<GattUuid>,
    pub(crate) battery_sent: Option<u8>,
}

impl OneHertz {
    pub(crate) fn new(seed: u64, profile: HeartProfile, start: DateTime<Utc>) -> Result<Self> {
        Ok(Self {
            model: HeartModel::new(seed, profile, start)?,
            next: start,
            connected: false,
            subscribed: HashSet::new(),
            battery_sent: None,
        })
    }

    /// Steps the model to `now`, turning each second into a value with
    /// `encode`, and applies the faults to what is sent on `live`.
    pub(crate) fn advance(
        &mut self,
        now: DateTime<Utc>,
        faults: &FaultPlan,
        battery: u8,
        live: GattUuid,
        mut encode: impl FnMut(&HeartPoint) -> Option<Vec<u8>>,
    ) -> Vec<Emission> {
        let mut out = Vec::new();
        while self.next <= now {
            let t = self.next;
            let point = self.model.next_point();
            self.next = t + TimeDelta::seconds(1);
            if !(self.connected && self.subscribed.contains(&live)) || faults.drops(t) {
                continue;
            }
            let Some(mut value) = encode(&point) else {
                continue;
            };
            if faults.corrupts(t) {
                value = corrupt(value, false);
            }
            let times = if faults.duplicates(t) { 2 } else { 1 };
            for _ in 0..times {
                out.push(Emission {
                    at: t,
                    characteristic: live,
                    value: value.clone(),
                });
            }
        }
        let level = battery.min(100);
        let bat = uuid(u::BATTERY_LEVEL);
        if self.connected && self.subscribed.contains(&bat) && self.battery_sent != Some(level) {
            if let Ok(value) = (BatteryLevel { percent: level }).encode() {
                out.push(Emission {
                    at: now,
                    characteristic: bat,
                    value,
                });
                self.battery_sent = Some(level);
            }
        }
        out
    }

    pub(crate) fn set_subscribed(
        &mut self,
        table: &[Characteristic],
        characteristic: GattUuid,
        on: bool,
    ) -> Result<(), AttError> {
        super::set_cccd(table, &mut self.subscribed, characteristic, on)
    }

    pub(crate) fn set_connected(&mut self, connected: bool) {
        self.connected = connected;
        if !connected {
            self.subscribed.clear();
            self.battery_sent = None;
        }
    }
}

/// A simulated heart-rate strap; see the module docs.
#[derive(Debug)]
pub struct SimulatedHeartRate {
    cfg: HeartRateConfig,
    src: OneHertz,
}

impl SimulatedHeartRate {
    /// A strap as configured; fails for a profile the physiology refuses.
    pub fn new(cfg: HeartRateConfig) -> Result<Self> {
        Ok(Self {
            src: OneHertz::new(cfg.seed, cfg.profile.clone(), cfg.start)?,
            cfg,
        })
    }

    fn battery(&self, now: DateTime<Utc>) -> u8 {
        self.cfg
            .faults
            .battery(now)
            .unwrap_or(self.cfg.battery_percent)
    }
}

/// The Heart Rate Measurement a strap sends for one second.
pub(crate) fn encode_heart_point(p: &HeartPoint) -> Option<Vec<u8>> {
    let bpm = p.reported_bpm.round().clamp(0.0, f64::from(u16::MAX)) as u16;
    HeartRateMeasurement {
        format: if bpm > 255 {
            HeartRateFormat::Uint16
        } else {
            HeartRateFormat::Uint8
        },
        bpm,
        sensor_contact: SensorContact::Detected,
        energy_expended_kj: None,
        rr_intervals: p
            .rr_intervals
            .iter()
            .map(|s| {
                (s * RR_TICKS_PER_SECOND)
                    .round()
                    .clamp(0.0, f64::from(u16::MAX)) as u16
            })
            .collect(),
    }
    .encode()
    .ok()
}

impl Peripheral for SimulatedHeartRate {
    fn advertisement(&self) -> Advertisement {
        Advertisement {
            id: self.cfg.id.clone(),
            name: Some(format!("Vigil HR {}", self.cfg.id.0)),
            services: vec![uuid(service::HEART_RATE), uuid(service::BATTERY)],
            rssi: Some(-55),
        }
    }

    fn characteristics(&self) -> Vec<Characteristic> {
        vec![
            chr(
                service::HEART_RATE,
                u::HEART_RATE_MEASUREMENT,
                props::NOTIFY,
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
            Some(u::HEART_RATE_MEASUREMENT) => Err(AttError::ReadNotPermitted),
            _ => Err(AttError::AttributeNotFound),
        }
    }

    fn write(
        &mut self,
        _: DateTime<Utc>,
        characteristic: GattUuid,
        _: &[u8],
    ) -> Result<(), AttError> {
        Err(super::refuse_write(&self.characteristics(), characteristic))
    }

    fn set_subscribed(&mut self, characteristic: GattUuid, on: bool) -> Result<(), AttError> {
        let table = self.characteristics();
        self.src.set_subscribed(&table, characteristic, on)
    }

    fn set_connected(&mut self, now: DateTime<Utc>, connected: bool) {
        let _ = self.advance(now);
        self.src.set_connected(connected);
    }

    fn advance(&mut self, now: DateTime<Utc>) -> Vec<Emission> {
        let battery = self.battery(now);
        self.src.advance(
            now,
            &self.cfg.faults,
            battery,
            uuid(u::HEART_RATE_MEASUREMENT),
            encode_heart_point,
        )
    }
}

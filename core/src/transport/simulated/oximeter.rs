//! A simulated pulse oximeter (Pulse Oximeter Service 0x1822 plus
//! Battery): one PLX Continuous Measurement a second.
//!
//! Pulse rate comes from the seeded [`super::physiology::HeartModel`];
//! SpO2 is a seeded, slowly wandering saturation around a healthy 97 %, a
//! little lower in sleep, to one decimal. Like a strap it stores nothing, so nothing can be
//! backfilled.

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::faults::FaultPlan;
use super::heart_rate::OneHertz;
use super::physiology::{Activity, HeartProfile};
use super::{AttError, Emission, Peripheral, battery_char, chr, props, uuid};
use crate::Result;
use crate::codec::battery::BatteryLevel;
use crate::codec::plx::{PlxContinuousMeasurement, SpO2Pr};
use crate::codec::{SFloat, service, uuid as u};
use crate::transport::{Advertisement, Characteristic, GattUuid, PeripheralId};

/// Everything that defines one simulated oximeter.
#[derive(Debug, Clone)]
pub struct OximeterConfig {
    /// Transport-level identity.
    pub id: PeripheralId,
    /// Seed of the physiology.
    pub seed: u64,
    /// The simulated wearer.
    pub profile: HeartProfile,
    /// True time of the first second.
    pub start: DateTime<Utc>,
    /// Battery level when no fault says otherwise.
    pub battery_percent: u8,
    /// The faults it suffers.
    pub faults: FaultPlan,
}

impl OximeterConfig {
    /// A healthy adult's oximeter with no faults.
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

/// A simulated pulse oximeter; see the module docs.
#[derive(Debug)]
pub struct SimulatedOximeter {
    cfg: OximeterConfig,
    src: OneHertz,
    rng: ChaCha8Rng,
    /// Deviation of SpO2 from its activity baseline, percent.
    wander: f64,
}

impl SimulatedOximeter {
    /// An oximeter as configured; fails for a profile the physiology
    /// refuses.
    pub fn new(cfg: OximeterConfig) -> Result<Self> {
        Ok(Self {
            src: OneHertz::new(cfg.seed, cfg.profile.clone(), cfg.start)?,
            // A separate stream, so SpO2 noise does not shift the heart.
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5350_4f32),
            wander: 0.0,
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

impl Peripheral for SimulatedOximeter {
    fn advertisement(&self) -> Advertisement {
        Advertisement {
            id: self.cfg.id.clone(),
            name: Some(format!("Vigil PLX {}", self.cfg.id.0)),
            services: vec![uuid(service::PULSE_OXIMETER), uuid(service::BATTERY)],
            rssi: Some(-58),
        }
    }

    fn characteristics(&self) -> Vec<Characteristic> {
        vec![
            chr(
                service::PULSE_OXIMETER,
                u::PLX_CONTINUOUS_MEASUREMENT,
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
            Some(u::PLX_CONTINUOUS_MEASUREMENT) => Err(AttError::ReadNotPermitted),
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
        let (rng, wander) = (&mut self.rng, &mut self.wander);
        self.src.advance(
            now,
            &self.cfg.faults,
            battery,
            uuid(u::PLX_CONTINUOUS_MEASUREMENT),
            |p| {
                // Mean-reverting wander (about a minute) plus a little
                // per-second jitter.
                *wander += -*wander / 60.0 + rng.random_range(-0.15..0.15);
                let base = if p.activity == Activity::Sleep {
                    95.5
                } else {
                    97.2
                };
                let spo2 = (base + *wander + rng.random_range(-0.2..0.2)).clamp(85.0, 100.0);
                PlxContinuousMeasurement {
                    normal: SpO2Pr {
                        spo2: SFloat::new((spo2 * 10.0).round() as i32, -1)?,
                        pulse_rate: SFloat::new(p.reported_bpm.round() as i32, 0)?,
                    },
                    fast: None,
                    slow: None,
                    measurement_status: None,
                    device_sensor_status: None,
                    pulse_amplitude_index: None,
                }
                .encode()
                .into()
            },
        )
    }
}

//! Devices that store nothing (a heart-rate strap, a pulse oximeter):
//! subscribe to the measurement and turn each notification into readings
//! as it comes ([`super::heart_rate`], [`super::pulse_oximeter`]). There
//! is nothing to backfill: what they measure while the phone is away is
//! lost.

use super::link::{Halt, Step, has};
use super::{DeviceKind, Session, SessionSink};
use crate::codec::uuid as u;
use crate::transport::Transport;

impl<T: Transport + ?Sized, S: SessionSink> Session<T, S> {
    pub(super) async fn serve_stream(&mut self) -> Step {
        let chars = self.transport.discover(&self.cfg.peripheral).await?;
        let measurement = match self.cfg.kind {
            DeviceKind::HeartRate => u::HEART_RATE_MEASUREMENT,
            _ => u::PLX_CONTINUOUS_MEASUREMENT,
        };
        if !has(&chars, measurement) {
            return Err(Halt::Link(
                "the device lacks its measurement characteristic".into(),
            ));
        }
        self.read_battery(&chars).await?;
        self.subscribe(measurement).await?;
        loop {
            let Some((short, value)) = self.value_or_end(self.until).await? else {
                return Err(Halt::Until);
            };
            match short {
                u::HEART_RATE_MEASUREMENT => self.heart_rate(&value),
                u::PLX_CONTINUOUS_MEASUREMENT => self.plx(&value),
                u::BATTERY_LEVEL => self.battery_value(&value),
                _ => {}
            }
        }
    }
}

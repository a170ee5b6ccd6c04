//! The Battery Level every device kind may offer: read once per
//! connection, then notified; a change becomes a battery reading, a level
//! below [`LOW_BATTERY_PERCENT`] one battery-low event until it recovers.

use super::link::{Step, has};
use super::{DeviceEventKind, LOW_BATTERY_PERCENT, Session, SessionSink};
use crate::codec::battery::BatteryLevel;
use crate::codec::uuid as u;
use crate::model::{Quality, Stream};
use crate::transport::{Characteristic, Transport};

impl<T: Transport + ?Sized, S: SessionSink> Session<T, S> {
    pub(super) async fn read_battery(&mut self, chars: &[Characteristic]) -> Step {
        if has(chars, u::BATTERY_LEVEL) {
            let v = self.read(u::BATTERY_LEVEL).await?;
            self.battery_value(&v);
            self.subscribe(u::BATTERY_LEVEL).await?;
        }
        Ok(())
    }

    pub(super) fn battery_value(&mut self, bytes: &[u8]) {
        let Ok(level) = BatteryLevel::decode(bytes) else {
            self.event(DeviceEventKind::CorruptFrame {
                characteristic: u::BATTERY_LEVEL,
            });
            return;
        };
        if self.last_battery == Some(level.percent) {
            return;
        }
        self.last_battery = Some(level.percent);
        let seq = self.next_sequence(Stream::Battery);
        let now = self.clock.now();
        self.reading(
            Stream::Battery,
            f64::from(level.percent),
            now,
            seq,
            u::BATTERY_LEVEL,
            bytes.to_vec(),
            None,
            Quality::default(),
        );
        if level.percent < LOW_BATTERY_PERCENT {
            self.battery_low(Some(level.percent));
        } else {
            self.battery_low_reported = false;
        }
    }

    pub(super) fn battery_low(&mut self, percent: Option<u8>) {
        if !self.battery_low_reported {
            self.battery_low_reported = true;
            self.event(DeviceEventKind::BatteryLow { percent });
        }
    }
}

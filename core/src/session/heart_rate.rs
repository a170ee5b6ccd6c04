//! A Heart Rate Measurement notification (0x2A37) becomes a heart-rate
//! reading and one RR-interval reading per interval it carries, numbered
//! by the session (the strap numbers nothing) and flagged when the strap
//! reports no skin contact.

use super::{DeviceEventKind, Session, SessionSink};
use crate::codec::heart_rate::{HeartRateMeasurement, rr_ticks_to_seconds};
use crate::codec::uuid as u;
use crate::model::{Quality, Stream};
use crate::transport::Transport;

impl<T: Transport + ?Sized, S: SessionSink> Session<T, S> {
    pub(super) fn heart_rate(&mut self, value: &[u8]) {
        let Ok(m) = HeartRateMeasurement::decode(value) else {
            self.event(DeviceEventKind::CorruptFrame {
                characteristic: u::HEART_RATE_MEASUREMENT,
            });
            return;
        };
        let now = self.clock.now();
        let quality = Quality {
            percent: None,
            flagged: m.sensor_contact.contact() == Some(false),
        };
        let seq = self.next_sequence(Stream::HeartRate);
        let c = u::HEART_RATE_MEASUREMENT;
        self.reading(
            Stream::HeartRate,
            f64::from(m.bpm),
            now,
            seq,
            c,
            value.to_vec(),
            None,
            quality,
        );
        for ticks in &m.rr_intervals {
            let seq = self.next_sequence(Stream::RrInterval);
            let s = rr_ticks_to_seconds(*ticks);
            self.reading(
                Stream::RrInterval,
                s,
                now,
                seq,
                c,
                value.to_vec(),
                None,
                quality,
            );
        }
    }
}

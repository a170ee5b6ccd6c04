//! A PLX Continuous Measurement notification (0x2A5F) becomes an SpO2 and
//! a pulse-rate reading, numbered by the session (the oximeter numbers
//! nothing); a special value (NaN, NRes) is no reading.

use super::{DeviceEventKind, Session, SessionSink};
use crate::codec::plx::PlxContinuousMeasurement;
use crate::codec::uuid as u;
use crate::model::{Quality, Stream};
use crate::transport::Transport;

impl<T: Transport + ?Sized, S: SessionSink> Session<T, S> {
    pub(super) fn plx(&mut self, value: &[u8]) {
        let Ok(m) = PlxContinuousMeasurement::decode(value) else {
            self.event(DeviceEventKind::CorruptFrame {
                characteristic: u::PLX_CONTINUOUS_MEASUREMENT,
            });
            return;
        };
        let now = self.clock.now();
        let c = u::PLX_CONTINUOUS_MEASUREMENT;
        let q = Quality::default();
        if let Some(spo2) = m.normal.spo2_percent() {
            let seq = self.next_sequence(Stream::Spo2);
            self.reading(Stream::Spo2, spo2, now, seq, c, value.to_vec(), None, q);
        }
        if let Some(pr) = m.normal.pulse_rate_bpm() {
            let seq = self.next_sequence(Stream::PulseRate);
            self.reading(Stream::PulseRate, pr, now, seq, c, value.to_vec(), None, q);
        }
    }
}

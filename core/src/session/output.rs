//! What a session hands its sink: readings, gaps and device events, and
//! the cursors (the newest record held per stream) that decide where a
//! backfill starts and what is a duplicate.
//!
//! The sink's first failure in a run is kept and stops the run (see the
//! module docs of [`super`]); a cached cursor moves only once the sink
//! kept the output.

use chrono::{DateTime, Utc};

use super::{Cursor, DeviceEvent, DeviceEventKind, Gap, Session, SessionOutput, SessionSink};
use crate::Result;
use crate::model::{Provenance, Quality, Reading, Stream};
use crate::transport::Transport;

impl<T: Transport + ?Sized, S: SessionSink> Session<T, S> {
    /// Returns the sink's first failure in this run, if any.
    pub(super) fn check_sink(&mut self) -> Result<()> {
        match self.sink_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Hands one output to the sink unless it already failed in this run;
    /// `true` when the sink kept it.
    pub(super) fn emit(&mut self, output: SessionOutput) -> bool {
        if self.sink_error.is_some() {
            return false;
        }
        match self.sink.accept(output) {
            Ok(()) => true,
            Err(e) => {
                self.sink_error = Some(e);
                false
            }
        }
    }

    pub(super) fn event(&mut self, kind: DeviceEventKind) {
        let e = DeviceEvent {
            device: self.cfg.device.clone(),
            at: self.clock.now(),
            kind,
        };
        self.emit(SessionOutput::Event(e));
    }

    pub(super) fn cursor(&mut self, stream: Stream) -> Option<Cursor> {
        if let Some(c) = self.cursors.get(&stream) {
            return *c;
        }
        let c = self.sink.cursor(&self.cfg.device, stream);
        self.cursors.insert(stream, c);
        c
    }

    pub(super) fn next_sequence(&mut self, stream: Stream) -> u64 {
        self.cursor(stream)
            .map_or(0, |c| c.sequence.saturating_add(1))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn reading(
        &mut self,
        stream: Stream,
        value: f64,
        sensor_time: DateTime<Utc>,
        sequence: u64,
        characteristic: u16,
        raw: Vec<u8>,
        session: Option<i64>,
        quality: Quality,
    ) {
        if !value.is_finite() {
            return;
        }
        let r = Reading {
            patient: self.cfg.patient.clone(),
            stream,
            value,
            sensor_time,
            receive_time: self.clock.now(),
            sequence,
            quality,
            provenance: Provenance {
                device: self.cfg.device.clone(),
                characteristic,
                raw,
                session,
            },
        };
        // The cached cursor moves only once the sink kept the reading.
        if self.emit(SessionOutput::Reading(r)) {
            self.cursors.insert(
                stream,
                Some(Cursor {
                    session,
                    sequence,
                    time: sensor_time,
                }),
            );
        }
    }

    pub(super) fn gap(&mut self, gap: Gap) {
        let cursor = gap.last_missing.map(|last| Cursor {
            session: gap.session,
            sequence: last,
            time: gap.to,
        });
        let stream = gap.stream;
        if self.emit(SessionOutput::Gap(gap)) {
            if let Some(c) = cursor {
                self.cursors.insert(stream, Some(c));
            }
        }
    }
}

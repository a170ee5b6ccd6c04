//! What a session produces and where it goes: readings, explicit gaps and
//! device events, into a [`SessionSink`].
//!
//! The sink is a trait so the session does not depend on the SQLite buffer:
//! the store implements it, tests and `vigil simulate` use [`MemorySink`].
//! The sink is also the session's memory across restarts: the newest record
//! it holds for a device and stream ([`SessionSink::cursor`]) is where the
//! next RACP backfill starts, and the stable key that drops duplicates.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::model::{DeviceId, Reading, Stream};

/// Why readings are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// The sensor measured them but no longer holds them (its store
    /// overflowed while the phone was away).
    NotHeld,
    /// A new sensor session began; the previous session's records after
    /// `from` were never received and the new sensor cannot report them.
    SessionChanged,
}

/// An explicit hole in a stream: no reading exists strictly between `from`
/// and `to`, although the sensor was expected to produce some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// Device whose readings are missing.
    pub device: DeviceId,
    /// Stream with the hole.
    pub stream: Stream,
    /// Sensor session of the missing records, when the device has sessions.
    pub session: Option<i64>,
    /// Sensor time of the last reading before the hole (exclusive).
    pub from: DateTime<Utc>,
    /// Sensor time of the first reading after the hole, or the start of
    /// the new session (exclusive).
    pub to: DateTime<Utc>,
    /// First missing sequence (time offset or record number), if known.
    pub first_missing: Option<u64>,
    /// Last missing sequence, if known.
    pub last_missing: Option<u64>,
    /// Why.
    pub reason: GapReason,
}

/// Something that happened to a device, as opposed to a measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DeviceEventKind {
    /// The link is up.
    Connected,
    /// The link went down.
    Disconnected {
        /// What ended it, for logs.
        reason: String,
    },
    /// A reconnection attempt failed or is scheduled; the next one is in
    /// `delay_ms`.
    Reconnecting {
        /// Consecutive failed attempts so far.
        attempt: u32,
        /// Backoff with jitter before the next attempt, milliseconds.
        delay_ms: u64,
    },
    /// The sensor's clock differs from the phone's: positive when the
    /// sensor is ahead. Resolution is about 30 s (time offsets are whole
    /// minutes).
    ClockDrift {
        /// Sensor time minus phone time, milliseconds.
        drift_ms: i64,
    },
    /// A sensor session the phone had not seen began.
    NewSession {
        /// Session identifier (start time, Unix seconds).
        session: i64,
        /// When it started (UTC).
        start: DateTime<Utc>,
    },
    /// The session runs but has produced no record yet.
    WarmingUp,
    /// The first record after a warm-up arrived.
    WarmUpComplete,
    /// The sensor session stopped (expired or stopped on request).
    SessionStopped,
    /// The device reports a low battery.
    BatteryLow {
        /// Level, percent, when known.
        percent: Option<u8>,
    },
    /// A frame failed its E2E-CRC or framing and was discarded (the record
    /// is recovered by backfill when the device stores records).
    CorruptFrame {
        /// Characteristic it arrived on.
        characteristic: u16,
    },
}

/// A device event with its device and phone time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceEvent {
    /// Which device.
    pub device: DeviceId,
    /// Phone time when the session noticed it.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: DeviceEventKind,
}

/// One thing a session hands to its sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionOutput {
    /// A decoded, deduplicated reading.
    Reading(Reading),
    /// An explicit gap.
    Gap(Gap),
    /// A device event.
    Event(DeviceEvent),
}

/// The newest record a sink holds for one device and stream (a reading or
/// the end of a gap): the stable dedupe key and the backfill start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sensor session, for devices with sessions.
    pub session: Option<i64>,
    /// Time offset (CGM), record number (meter) or session-assigned
    /// sequence (streams without one).
    pub sequence: u64,
    /// Sensor time of that record.
    pub time: DateTime<Utc>,
}

/// Where a session's output goes. The store implements it; so does
/// [`MemorySink`].
pub trait SessionSink: Send {
    /// The newest record held for `device` and `stream`, if any.
    fn cursor(&self, device: &DeviceId, stream: Stream) -> Option<Cursor>;

    /// Takes one output. Readings and gaps of a stream arrive in sequence
    /// order within a session.
    ///
    /// `Ok` means the output is kept and [`SessionSink::cursor`] already
    /// reflects it: for a durable sink, committed, or held for a commit no
    /// later than [`SessionSink::flush_due`] (a sink that batches commits
    /// says so there, and the session calls [`SessionSink::flush`] on
    /// time). An error means it was
    /// not kept: the session then hands this sink nothing more, stops, and
    /// returns the error from [`super::Session::run_until`]; the next run
    /// backfills from the cursor, so a record the sensor still holds is
    /// fetched again rather than lost.
    fn accept(&mut self, output: SessionOutput) -> Result<()>;

    /// When the outputs this sink holds uncommitted must be committed, if
    /// it holds any. The default sink commits in `accept` and holds none.
    fn flush_due(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// Commits every output held; the session calls it at
    /// [`SessionSink::flush_due`] and when it stops. An error is handled
    /// like one from [`SessionSink::accept`].
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// An in-memory sink for tests, demos and `vigil simulate`.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    /// Everything accepted, in order.
    pub outputs: Vec<SessionOutput>,
    cursors: HashMap<(DeviceId, Stream), Cursor>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The readings of `stream`, in arrival order.
    pub fn readings(&self, stream: Stream) -> Vec<&Reading> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                SessionOutput::Reading(r) if r.stream == stream => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Every gap, in arrival order.
    pub fn gaps(&self) -> Vec<&Gap> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                SessionOutput::Gap(g) => Some(g),
                _ => None,
            })
            .collect()
    }

    /// Every device event, in arrival order.
    pub fn events(&self) -> Vec<&DeviceEvent> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                SessionOutput::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }
}

impl SessionSink for MemorySink {
    fn cursor(&self, device: &DeviceId, stream: Stream) -> Option<Cursor> {
        self.cursors.get(&(device.clone(), stream)).copied()
    }

    fn accept(&mut self, output: SessionOutput) -> Result<()> {
        match &output {
            SessionOutput::Reading(r) => {
                self.cursors.insert(
                    (r.provenance.device.clone(), r.stream),
                    Cursor {
                        session: r.provenance.session,
                        sequence: r.sequence,
                        time: r.sensor_time,
                    },
                );
            }
            SessionOutput::Gap(g) => {
                if let Some(last) = g.last_missing {
                    self.cursors.insert(
                        (g.device.clone(), g.stream),
                        Cursor {
                            session: g.session,
                            sequence: last,
                            time: g.to,
                        },
                    );
                }
            }
            SessionOutput::Event(_) => {}
        }
        self.outputs.push(output);
        Ok(())
    }
}

impl<S: SessionSink + ?Sized> SessionSink for Box<S> {
    fn cursor(&self, device: &DeviceId, stream: Stream) -> Option<Cursor> {
        (**self).cursor(device, stream)
    }

    fn accept(&mut self, output: SessionOutput) -> Result<()> {
        (**self).accept(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PatientId, Provenance, Quality};

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::minutes(min)
    }

    #[test]
    fn the_cursor_is_the_newest_reading_or_gap_end_per_device_and_stream() {
        let dev = DeviceId("d".into());
        let mut sink = MemorySink::new();
        assert_eq!(sink.cursor(&dev, Stream::Glucose), None);
        sink.accept(SessionOutput::Reading(Reading {
            patient: PatientId("p".into()),
            stream: Stream::Glucose,
            value: 100.0,
            sensor_time: t(5),
            receive_time: t(5),
            sequence: 5,
            quality: Quality::default(),
            provenance: Provenance {
                device: dev.clone(),
                characteristic: 0x2AA7,
                raw: vec![],
                session: Some(1),
            },
        }))
        .unwrap();
        assert_eq!(
            sink.cursor(&dev, Stream::Glucose).map(|c| c.sequence),
            Some(5)
        );
        assert_eq!(sink.cursor(&dev, Stream::HeartRate), None);
        sink.accept(SessionOutput::Gap(Gap {
            device: dev.clone(),
            stream: Stream::Glucose,
            session: Some(1),
            from: t(5),
            to: t(60),
            first_missing: Some(10),
            last_missing: Some(55),
            reason: GapReason::NotHeld,
        }))
        .unwrap();
        // A gap already recorded is not asked for (nor recorded) again.
        let c = sink.cursor(&dev, Stream::Glucose).unwrap();
        assert_eq!((c.sequence, c.session), (55, Some(1)));
        assert_eq!(sink.gaps().len(), 1);
        assert_eq!(sink.readings(Stream::Glucose).len(), 1);
    }
}

//! The link life cycle every device kind shares: connect, serve the
//! connection with the kind's protocol, and on any link failure report
//! the disconnect and reconnect with backoff, until the run's end; plus
//! the GATT calls and the wait for this device's next value that every
//! protocol is written in.
//!
//! A link failure is never an error of the run, only a reason to
//! reconnect ([`Halt::Link`]); the run fails only when the sink does.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Backoff, DeviceEventKind, DeviceKind, Session, SessionConfig, SessionSink};
use crate::clock::Clock;
use crate::transport::{Characteristic, GattUuid, Transport, TransportEvent, WriteKind};
use crate::{Error, Result};

/// Why serving a connection stopped.
#[derive(Debug)]
pub(super) enum Halt {
    /// The run's end time was reached.
    Until,
    /// The sink refused an output; the error waits in `sink_error`.
    Sink,
    /// The link is gone or unusable; reconnect.
    Link(String),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Halt::Link(e.to_string())
    }
}

pub(super) type Step<T = ()> = std::result::Result<T, Halt>;

pub(super) fn uuid(short: u16) -> GattUuid {
    GattUuid::from_u16(short)
}

pub(super) fn has(chars: &[Characteristic], short: u16) -> bool {
    chars.iter().any(|c| c.uuid == uuid(short))
}

impl<T: Transport + ?Sized, S: SessionSink> Session<T, S> {
    /// A session over `transport`, subscribed to its events from now on.
    pub fn new(cfg: SessionConfig, transport: Arc<T>, clock: Arc<dyn Clock>, sink: S) -> Self {
        let events = transport.events();
        Self {
            rng: Backoff::rng(cfg.jitter_seed),
            interval_min: cfg.default_interval_min.max(1),
            until: clock.now(),
            cfg,
            transport,
            clock,
            sink,
            events,
            cursors: HashMap::new(),
            crc: false,
            anchor: None,
            session_ended: false,
            warming: false,
            drift_reported: false,
            last_battery: None,
            battery_low_reported: false,
            sink_error: None,
        }
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Commits what the sink holds (see [`SessionSink::flush`]): for a
    /// caller that stopped a run by dropping its future.
    pub fn flush_sink(&mut self) -> Result<()> {
        self.sink.flush()
    }

    /// Gives the sink back.
    pub fn into_sink(self) -> S {
        self.sink
    }

    /// Runs the state machine until the clock reaches `until`, then
    /// disconnects. Link failures are never errors: they lead to a
    /// reconnect with backoff. To run until told otherwise, pass a far
    /// future and drop the future to stop: every output already handed to
    /// the sink stays there, and the next run resumes from its cursor.
    ///
    /// Fails only when the sink refused an output (see the module docs):
    /// the error is the sink's, every output accepted before it is kept,
    /// and calling `run_until` again resumes from the sink's cursor.
    pub async fn run_until(&mut self, until: DateTime<Utc>) -> Result<()> {
        self.until = until;
        let mut result = self.run_inner(until).await;
        // Whatever the sink still holds is committed before the run ends.
        if let Err(e) = self.sink.flush() {
            if result.is_ok() {
                result = Err(e);
            }
        }
        if result.is_err() {
            // The cache may hold the cursor of an output the sink refused;
            // the sink's own cursor is the truth for the next run.
            self.cursors.clear();
        }
        result
    }

    pub(super) async fn run_inner(&mut self, until: DateTime<Utc>) -> Result<()> {
        let id = self.cfg.peripheral.clone();
        let mut attempt = 0u32;
        while self.clock.now() < until {
            self.check_sink()?;
            if self.transport.connect(&id).await.is_err() {
                attempt = attempt.saturating_add(1);
                self.wait_backoff(attempt).await;
                continue;
            }
            attempt = 0;
            while self.events.try_recv().is_ok() {}
            self.drift_reported = false;
            self.event(DeviceEventKind::Connected);
            let outcome = match self.cfg.kind {
                DeviceKind::Cgm => self.serve_cgm().await,
                DeviceKind::GlucoseMeter => self.serve_meter().await,
                DeviceKind::HeartRate | DeviceKind::PulseOximeter => self.serve_stream().await,
            };
            // The link may already be gone; nothing to do about a failure.
            let _ = self.transport.disconnect(&id).await;
            self.check_sink()?;
            match outcome {
                Ok(()) | Err(Halt::Until) => break,
                Err(Halt::Sink) => {}
                Err(Halt::Link(reason)) => {
                    self.event(DeviceEventKind::Disconnected { reason });
                    attempt = attempt.saturating_add(1);
                    self.wait_backoff(attempt).await;
                }
            }
        }
        self.check_sink()
    }

    pub(super) async fn wait_backoff(&mut self, attempt: u32) {
        let delay = self.cfg.backoff.delay(attempt, &mut self.rng);
        self.event(DeviceEventKind::Reconnecting {
            attempt,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        });
        let left = (self.until - self.clock.now()).to_std().unwrap_or_default();
        tokio::time::sleep(delay.min(left)).await;
        crate::energy::timer_woke();
    }

    /// The next value from this device before `deadline` (`None` at the
    /// deadline); a disconnect of this device halts.
    pub(super) async fn next_value(
        &mut self,
        deadline: DateTime<Utc>,
    ) -> Step<Option<(u16, Vec<u8>)>> {
        loop {
            if self.sink_error.is_some() {
                return Err(Halt::Sink);
            }
            let now = self.clock.now();
            let left = deadline - now;
            let Ok(left) = left.to_std() else {
                return Ok(None);
            };
            if left.is_zero() {
                return Ok(None);
            }
            // A sink batching commits is flushed on time, in the same
            // wait: no timer of its own.
            let flush_in = self
                .sink
                .flush_due()
                .map(|due| (due - now).to_std().unwrap_or_default())
                .filter(|f| *f < left);
            match tokio::time::timeout(flush_in.unwrap_or(left), self.events.recv()).await {
                Err(_) if flush_in.is_some() => {
                    if flush_in.is_some_and(|f| !f.is_zero()) {
                        crate::energy::timer_woke();
                    }
                    if let Err(e) = self.sink.flush() {
                        self.sink_error = Some(e);
                    }
                }
                Err(_) => {
                    crate::energy::timer_woke();
                    return Ok(None);
                }
                Ok(None) => return Err(Halt::Link("transport closed".into())),
                Ok(Some(TransportEvent::Disconnected(id))) if id == self.cfg.peripheral => {
                    return Err(Halt::Link("link lost".into()));
                }
                Ok(Some(TransportEvent::Value {
                    id,
                    characteristic,
                    value,
                })) if id == self.cfg.peripheral => {
                    if let Some(short) = characteristic.as_u16() {
                        return Ok(Some((short, value)));
                    }
                }
                Ok(Some(_)) => {}
            }
        }
    }

    /// Waits for a value until `deadline` or the run's end, whichever is
    /// first; `Halt::Until` at the run's end.
    pub(super) async fn value_or_end(
        &mut self,
        deadline: DateTime<Utc>,
    ) -> Step<Option<(u16, Vec<u8>)>> {
        let d = deadline.min(self.until);
        let v = self.next_value(d).await?;
        if v.is_none() && self.clock.now() >= self.until {
            return Err(Halt::Until);
        }
        Ok(v)
    }

    pub(super) async fn read(&self, short: u16) -> Step<Vec<u8>> {
        Ok(self
            .transport
            .read(&self.cfg.peripheral, uuid(short))
            .await?)
    }

    pub(super) async fn write(&self, short: u16, value: &[u8]) -> Step {
        Ok(self
            .transport
            .write(
                &self.cfg.peripheral,
                uuid(short),
                value,
                WriteKind::WithResponse,
            )
            .await?)
    }

    pub(super) async fn subscribe(&self, short: u16) -> Step {
        Ok(self
            .transport
            .subscribe(&self.cfg.peripheral, uuid(short))
            .await?)
    }

    pub(super) fn response_deadline(&self) -> DateTime<Utc> {
        self.clock.now() + TimeDelta::from_std(self.cfg.response_timeout).unwrap_or(TimeDelta::MAX)
    }
}

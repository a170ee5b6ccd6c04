//! One device's life: connect, discover, read, subscribe, backfill, stream,
//! and reconnect, turning GATT bytes into deduplicated readings, explicit
//! gaps and device events.
//!
//! Third stage of the data flow: the transport hands over bytes, the codecs
//! decode them, and the session decides what they mean. It never touches
//! storage directly: everything goes to a [`SessionSink`], whose
//! [`SessionSink::cursor`] (the newest record already held) is where a
//! backfill starts and what makes duplicates recognisable.
//!
//! ```text
//!                 ┌──────────── connect fails ───────────┐
//!                 ▼                                       │
//!   start ──▶ Connecting ──ok──▶ Discovering ──▶ Reading ─┼─▶ Subscribing
//!                 ▲   wait backoff(attempt) ± jitter      │     │ (measurement, RACP,
//!                 │                                       │     │  ops CP, battery)
//!                 │                                       │     ▼
//!            Backoff ◀──── link lost / ATT error / ───── Backfilling ◀──────────┐
//!                 ▲         timeout in any state          │ RACP "≥ cursor+1"   │ hole, corrupt
//!                 │                                       │ (all, if none)      │ frame, older
//!                 │                                       ▼                     │ offset (new
//!                 └────────────────────────────────── Streaming ────────────────┘ session?)
//!                                                         │
//!                                            `until` reached: disconnect, done
//! ```
//!
//! - **Reading** (CGM): Feature (E2E-CRC on or off), Session Start Time and
//!   CGM Status, which anchor time offsets to UTC and measure the drift
//!   between the sensor's clock and the phone's ([`time`]); a Session Start
//!   Time the session has not seen means a new sensor session.
//! - **Backfilling** happens after every (re)connect and whenever streaming
//!   reveals a hole: a record offset beyond the next expected one (a dropped
//!   notification), a corrupt frame (bad CRC: never a reading, but still in
//!   the sensor's store), or an offset older than the cursor (a new
//!   session). Records are collected until the RACP response code, sorted,
//!   deduplicated against the cursor and handed over in order. Offsets the
//!   sensor no longer holds become a [`Gap`] with [`GapReason::NotHeld`].
//! - **Backoff**: exponential from 1 s to 5 min with ±30 % seeded jitter,
//!   reset by a successful connection.
//! - **A sink failure stops the run.** When [`SessionSink::accept`] fails
//!   (a full disk, [`Error::BufferFull`]), the session hands the sink
//!   nothing more, forgets its cached cursors, disconnects and returns the
//!   error from [`Session::run_until`]. Retrying inside the session would
//!   hide a condition only the app can fix (free space, sync), and going
//!   on would store later records past one that was not kept, moving the
//!   cursor beyond a hole. Stopping is lossless for devices that store
//!   records: the next run (same session or a new one over the same sink)
//!   backfills from the sink's cursor and fetches the failed record again.
//!   A heart-rate strap or oximeter stores nothing, so what they sent
//!   while the sink failed is lost, as it is while out of range.
//!
//! Dedupe keys: (device, sensor session, time offset) for a CGM, (device,
//! sequence number) for a meter. A heart-rate strap and an oximeter store
//! nothing and number nothing: the session numbers their readings itself
//! (monotonic per stream across reconnects) and nothing is backfilled for
//! them; what they measure while the phone is away is lost, and a
//! duplicated notification of theirs cannot be told from a repeated value.

mod backoff;
mod sink;
pub mod time;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand_chacha::ChaCha8Rng;

pub use backoff::Backoff;
pub use sink::{
    Cursor, DeviceEvent, DeviceEventKind, Gap, GapReason, MemorySink, SessionOutput, SessionSink,
};
pub use time::Anchor;

use crate::clock::Clock;
use crate::codec::battery::BatteryLevel;
use crate::codec::cgm::{CgmFeature, CgmMeasurement, CgmSessionStartTime, CgmStatus};
use crate::codec::cgm_ops::{CgmOpsRequest, CgmOpsResponse};
use crate::codec::glucose::GlucoseMeasurement;
use crate::codec::heart_rate::{HeartRateMeasurement, rr_ticks_to_seconds};
use crate::codec::plx::PlxContinuousMeasurement;
use crate::codec::racp::{FilterValue, RacpRequest, RacpResponse, RacpResponseCode, RecordFilter};
use crate::codec::uuid as u;
use crate::model::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};
use crate::transport::{
    Characteristic, EventReceiver, GattUuid, PeripheralId, Transport, TransportEvent, WriteKind,
};
use crate::{Error, Result};

/// Battery level below which a device counts as low.
pub const LOW_BATTERY_PERCENT: u8 = 10;

/// Which protocol the session speaks; also the kind an app pairs a device as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum DeviceKind {
    /// Continuous glucose monitor (CGM Service, RACP backfill).
    Cgm,
    /// Heart-rate strap (no store, no backfill).
    HeartRate,
    /// Pulse oximeter (no store, no backfill).
    PulseOximeter,
    /// Blood glucose meter (Glucose Service, RACP backfill).
    GlucoseMeter,
}

/// How a session behaves.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Which protocol.
    pub kind: DeviceKind,
    /// The transport's handle for the device.
    pub peripheral: PeripheralId,
    /// The stable device identity readings carry.
    pub device: DeviceId,
    /// Whose readings they are.
    pub patient: PatientId,
    /// Reconnect policy.
    pub backoff: Backoff,
    /// Seed of the backoff jitter.
    pub jitter_seed: u64,
    /// How long to wait for a control point's response.
    pub response_timeout: Duration,
    /// CGM measurement interval assumed when the sensor does not answer
    /// Get Communication Interval.
    pub default_interval_min: u16,
    /// The meter's local time offset from UTC (Glucose Measurement base
    /// times carry no zone), minutes.
    pub meter_utc_offset_min: i32,
    /// How often a connected meter is asked for new records.
    pub meter_poll: Duration,
}

impl SessionConfig {
    /// Defaults: backoff 1 s to 5 min ±30 %, 30 s control point timeout,
    /// 5-minute CGM interval, meter at UTC+1 polled every 5 minutes.
    pub fn new(kind: DeviceKind, peripheral: PeripheralId, patient: PatientId) -> Self {
        Self {
            kind,
            device: DeviceId(peripheral.0.clone()),
            peripheral,
            patient,
            backoff: Backoff::default(),
            jitter_seed: 0,
            response_timeout: Duration::from_secs(30),
            default_interval_min: 5,
            meter_utc_offset_min: 60,
            meter_poll: Duration::from_secs(300),
        }
    }
}

/// Why serving a connection stopped.
#[derive(Debug)]
enum Halt {
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

type Step<T = ()> = std::result::Result<T, Halt>;

fn uuid(short: u16) -> GattUuid {
    GattUuid::from_u16(short)
}

fn has(chars: &[Characteristic], short: u16) -> bool {
    chars.iter().any(|c| c.uuid == uuid(short))
}

/// One device's session; see the module docs.
pub struct Session<T: Transport + ?Sized, S: SessionSink> {
    cfg: SessionConfig,
    transport: Arc<T>,
    clock: Arc<dyn Clock>,
    sink: S,
    events: EventReceiver,
    rng: ChaCha8Rng,
    until: DateTime<Utc>,
    cursors: HashMap<Stream, Option<Cursor>>,
    // CGM state.
    crc: bool,
    anchor: Option<Anchor>,
    interval_min: u16,
    session_ended: bool,
    warming: bool,
    drift_reported: bool,
    // Any device.
    last_battery: Option<u8>,
    battery_low_reported: bool,
    /// The first failure of the sink in this run; once set, nothing more
    /// is handed to the sink and the run stops at the next await.
    sink_error: Option<Error>,
}

impl<T: Transport + ?Sized, S: SessionSink> std::fmt::Debug for Session<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
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

    async fn run_inner(&mut self, until: DateTime<Utc>) -> Result<()> {
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

    /// Returns the sink's first failure in this run, if any.
    fn check_sink(&mut self) -> Result<()> {
        match self.sink_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Hands one output to the sink unless it already failed in this run;
    /// `true` when the sink kept it.
    fn emit(&mut self, output: SessionOutput) -> bool {
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

    async fn wait_backoff(&mut self, attempt: u32) {
        let delay = self.cfg.backoff.delay(attempt, &mut self.rng);
        self.event(DeviceEventKind::Reconnecting {
            attempt,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        });
        let left = (self.until - self.clock.now()).to_std().unwrap_or_default();
        tokio::time::sleep(delay.min(left)).await;
        crate::energy::timer_woke();
    }

    // ----- outputs ---------------------------------------------------------

    fn event(&mut self, kind: DeviceEventKind) {
        let e = DeviceEvent {
            device: self.cfg.device.clone(),
            at: self.clock.now(),
            kind,
        };
        self.emit(SessionOutput::Event(e));
    }

    fn cursor(&mut self, stream: Stream) -> Option<Cursor> {
        if let Some(c) = self.cursors.get(&stream) {
            return *c;
        }
        let c = self.sink.cursor(&self.cfg.device, stream);
        self.cursors.insert(stream, c);
        c
    }

    fn next_sequence(&mut self, stream: Stream) -> u64 {
        self.cursor(stream)
            .map_or(0, |c| c.sequence.saturating_add(1))
    }

    #[allow(clippy::too_many_arguments)]
    fn reading(
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

    fn gap(&mut self, gap: Gap) {
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

    // ----- transport helpers -------------------------------------------------

    /// The next value from this device before `deadline` (`None` at the
    /// deadline); a disconnect of this device halts.
    async fn next_value(&mut self, deadline: DateTime<Utc>) -> Step<Option<(u16, Vec<u8>)>> {
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
    async fn value_or_end(&mut self, deadline: DateTime<Utc>) -> Step<Option<(u16, Vec<u8>)>> {
        let d = deadline.min(self.until);
        let v = self.next_value(d).await?;
        if v.is_none() && self.clock.now() >= self.until {
            return Err(Halt::Until);
        }
        Ok(v)
    }

    async fn read(&self, short: u16) -> Step<Vec<u8>> {
        Ok(self
            .transport
            .read(&self.cfg.peripheral, uuid(short))
            .await?)
    }

    async fn write(&self, short: u16, value: &[u8]) -> Step {
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

    async fn subscribe(&self, short: u16) -> Step {
        Ok(self
            .transport
            .subscribe(&self.cfg.peripheral, uuid(short))
            .await?)
    }

    fn response_deadline(&self) -> DateTime<Utc> {
        self.clock.now() + TimeDelta::from_std(self.cfg.response_timeout).unwrap_or(TimeDelta::MAX)
    }

    // ----- battery ------------------------------------------------------------

    async fn read_battery(&mut self, chars: &[Characteristic]) -> Step {
        if has(chars, u::BATTERY_LEVEL) {
            let v = self.read(u::BATTERY_LEVEL).await?;
            self.battery_value(&v);
            self.subscribe(u::BATTERY_LEVEL).await?;
        }
        Ok(())
    }

    fn battery_value(&mut self, bytes: &[u8]) {
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

    fn battery_low(&mut self, percent: Option<u8>) {
        if !self.battery_low_reported {
            self.battery_low_reported = true;
            self.event(DeviceEventKind::BatteryLow { percent });
        }
    }

    // ----- CGM ------------------------------------------------------------------

    async fn serve_cgm(&mut self) -> Step {
        let chars = self.transport.discover(&self.cfg.peripheral).await?;
        if !has(&chars, u::CGM_MEASUREMENT) || !has(&chars, u::RECORD_ACCESS_CONTROL_POINT) {
            return Err(Halt::Link("not a CGM with a record store".into()));
        }
        let feature = CgmFeature::decode(&self.read(u::CGM_FEATURE).await?)?;
        self.crc = feature.features.e2e_crc();
        self.refresh_anchor().await?;
        self.read_battery(&chars).await?;
        self.subscribe(u::CGM_MEASUREMENT).await?;
        self.subscribe(u::RECORD_ACCESS_CONTROL_POINT).await?;
        if has(&chars, u::CGM_SPECIFIC_OPS_CONTROL_POINT) {
            self.subscribe(u::CGM_SPECIFIC_OPS_CONTROL_POINT).await?;
            if let Some(minutes) = self.communication_interval().await? {
                self.interval_min = minutes;
            }
        }
        self.backfill_cgm().await?;
        loop {
            let Some((short, value)) = self.value_or_end(self.until).await? else {
                return Err(Halt::Until);
            };
            match short {
                u::CGM_MEASUREMENT if self.live_cgm(&value) => self.backfill_cgm().await?,
                u::BATTERY_LEVEL => self.battery_value(&value),
                _ => {}
            }
        }
    }

    async fn communication_interval(&mut self) -> Step<Option<u16>> {
        let req = CgmOpsRequest::GetCommunicationInterval.encode(self.crc);
        self.write(u::CGM_SPECIFIC_OPS_CONTROL_POINT, &req).await?;
        let deadline = self.response_deadline();
        while let Some((short, value)) = self.value_or_end(deadline).await? {
            match short {
                u::CGM_SPECIFIC_OPS_CONTROL_POINT => {
                    return Ok(match CgmOpsResponse::decode(&value, self.crc) {
                        Ok(CgmOpsResponse::CommunicationInterval { minutes }) if minutes > 0 => {
                            Some(u16::from(minutes))
                        }
                        _ => None,
                    });
                }
                u::CGM_MEASUREMENT => {
                    // A live record during the exchange: the backfill that
                    // follows fetches it again in order.
                }
                u::BATTERY_LEVEL => self.battery_value(&value),
                _ => {}
            }
        }
        Ok(None)
    }

    /// Reads Session Start Time and CGM Status; handles a new session, the
    /// clock drift and a stopped session.
    async fn refresh_anchor(&mut self) -> Step {
        let sst =
            CgmSessionStartTime::decode(&self.read(u::CGM_SESSION_START_TIME).await?, self.crc)?;
        let status = CgmStatus::decode(&self.read(u::CGM_STATUS).await?, self.crc)?;
        let a = time::anchor(&sst, status.time_offset_min, self.clock.now());
        if !self.drift_reported {
            self.drift_reported = true;
            self.event(DeviceEventKind::ClockDrift {
                drift_ms: a.drift.num_milliseconds(),
            });
        }
        if self.anchor.map(|old| old.session) != Some(a.session) {
            self.enter_session(a);
        }
        let octet = status.status.status;
        if octet.session_stopped() && !self.session_ended {
            self.session_ended = true;
            self.event(DeviceEventKind::SessionStopped);
        }
        if octet.device_battery_low() {
            self.battery_low(self.last_battery);
        }
        Ok(())
    }

    fn enter_session(&mut self, a: Anchor) {
        let interval = TimeDelta::minutes(i64::from(self.interval_min));
        if let Some(c) = self.cursor(Stream::Glucose) {
            let known_ended = self.anchor.is_some() && self.session_ended;
            if c.session != Some(a.session) && !known_ended && c.time + interval < a.start {
                self.gap(Gap {
                    device: self.cfg.device.clone(),
                    stream: Stream::Glucose,
                    session: c.session,
                    from: c.time,
                    to: a.start,
                    first_missing: None,
                    last_missing: None,
                    reason: GapReason::SessionChanged,
                });
            }
        }
        let resumed = self
            .cursor(Stream::Glucose)
            .is_some_and(|c| c.session == Some(a.session));
        if !resumed {
            self.event(DeviceEventKind::NewSession {
                session: a.session,
                start: a.start,
            });
        }
        self.anchor = Some(a);
        self.session_ended = false;
        self.warming = false;
    }

    /// The glucose cursor, if it belongs to the current session.
    fn cgm_cursor(&mut self) -> Option<Cursor> {
        let session = self.anchor.map(|a| a.session);
        self.cursor(Stream::Glucose)
            .filter(|c| session.is_some() && c.session == session)
    }

    /// Handles one live notification; `true` when a backfill is needed.
    fn live_cgm(&mut self, value: &[u8]) -> bool {
        let mut need = false;
        for record in CgmMeasurement::records(value, self.crc) {
            let Ok(m) = record else {
                self.event(DeviceEventKind::CorruptFrame {
                    characteristic: u::CGM_MEASUREMENT,
                });
                need = true;
                continue;
            };
            let off = u64::from(m.time_offset_min);
            match self.cgm_cursor() {
                Some(c) if off == c.sequence => {} // a repeated notification
                Some(c) if off < c.sequence => need = true, // maybe a new session
                Some(c) if off > c.sequence + u64::from(self.interval_min) => need = true,
                _ if need => {} // keep order: the backfill brings it
                _ => self.accept_cgm(&m),
            }
        }
        need
    }

    async fn backfill_cgm(&mut self) -> Step {
        self.refresh_anchor().await?;
        // A corrupt frame during the backfill itself is retried a few
        // times; the record stays in the sensor until it is read cleanly.
        for _ in 0..3 {
            let filter = match self.cgm_cursor() {
                Some(c) => match u16::try_from(c.sequence + 1) {
                    Ok(next) => RecordFilter::AtLeast(FilterValue::TimeOffset(next)),
                    Err(_) => return Ok(()),
                },
                None => RecordFilter::All,
            };
            let had_cursor = self.cgm_cursor().is_some();
            let req = RacpRequest::ReportStoredRecords(filter).encode()?;
            self.write(u::RECORD_ACCESS_CONTROL_POINT, &req).await?;
            let deadline = self.response_deadline();
            let mut got = Vec::new();
            let mut corrupt = 0;
            loop {
                let Some((short, value)) = self.value_or_end(deadline).await? else {
                    return Err(Halt::Link("RACP response timed out".into()));
                };
                match short {
                    u::CGM_MEASUREMENT => {
                        for r in CgmMeasurement::records(&value, self.crc) {
                            match r {
                                Ok(m) => got.push(m),
                                Err(_) => {
                                    corrupt += 1;
                                    self.event(DeviceEventKind::CorruptFrame {
                                        characteristic: u::CGM_MEASUREMENT,
                                    });
                                }
                            }
                        }
                    }
                    u::RECORD_ACCESS_CONTROL_POINT => match RacpResponse::decode(&value) {
                        Ok(RacpResponse::ResponseCode { code, .. }) => match code {
                            RacpResponseCode::Success | RacpResponseCode::NoRecordsFound => break,
                            other => {
                                return Err(Halt::Link(format!("RACP refused: {other:?}")));
                            }
                        },
                        Ok(RacpResponse::NumberOfStoredRecords(_)) => {}
                        Err(e) => return Err(Halt::Link(format!("bad RACP response: {e}"))),
                    },
                    u::BATTERY_LEVEL => self.battery_value(&value),
                    _ => {}
                }
            }
            got.sort_by_key(|m| m.time_offset_min);
            got.dedup_by_key(|m| m.time_offset_min);
            if got.is_empty() && !had_cursor && !self.session_ended && !self.warming {
                self.warming = true;
                self.event(DeviceEventKind::WarmingUp);
            }
            for m in &got {
                self.accept_cgm(m);
            }
            if corrupt == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Turns one record into readings, after the duplicate and gap checks
    /// against the cursor. Records must come in offset order.
    fn accept_cgm(&mut self, m: &CgmMeasurement) {
        let Some(a) = self.anchor else { return };
        let off = u64::from(m.time_offset_min);
        let step = u64::from(self.interval_min);
        if let Some(c) = self.cgm_cursor() {
            if off <= c.sequence {
                return;
            }
            if off > c.sequence + step {
                self.gap(Gap {
                    device: self.cfg.device.clone(),
                    stream: Stream::Glucose,
                    session: Some(a.session),
                    from: c.time,
                    to: a.time_of(off),
                    first_missing: Some(c.sequence + step),
                    last_missing: Some(off - step),
                    reason: GapReason::NotHeld,
                });
            }
        }
        if self.warming {
            self.warming = false;
            self.event(DeviceEventKind::WarmUpComplete);
        }
        let time = a.time_of(off);
        let raw = m.encode();
        let flagged = m.status.is_some_and(|o| !o.is_empty())
            || m.cal_temp.is_some_and(|o| !o.is_empty())
            || m.warning.is_some_and(|o| !o.is_empty());
        let quality = Quality {
            percent: m.quality_percent(),
            flagged,
        };
        let value = m.glucose_mg_dl().unwrap_or(f64::NAN);
        if value.is_finite() {
            self.reading(
                Stream::Glucose,
                value,
                time,
                off,
                u::CGM_MEASUREMENT,
                raw.clone(),
                Some(a.session),
                quality,
            );
        } else {
            // A special value (NaN, NRes) is no reading, but the record was
            // received: move the cursor so it is neither refetched nor a gap
            // (unless the sink failed: then the run stops and the next one
            // starts from the sink's cursor).
            if self.sink_error.is_none() {
                self.cursors.insert(
                    Stream::Glucose,
                    Some(Cursor {
                        session: Some(a.session),
                        sequence: off,
                        time,
                    }),
                );
            }
        }
        if let Some(trend) = m.trend_mg_dl_per_min() {
            self.reading(
                Stream::GlucoseTrend,
                trend,
                time,
                off,
                u::CGM_MEASUREMENT,
                raw,
                Some(a.session),
                quality,
            );
        }
        if let Some(status) = m.status {
            if status.session_stopped() && !self.session_ended {
                self.session_ended = true;
                self.event(DeviceEventKind::SessionStopped);
            }
            if status.device_battery_low() {
                self.battery_low(self.last_battery);
            }
        }
    }

    // ----- blood glucose meter -------------------------------------------------

    async fn serve_meter(&mut self) -> Step {
        let chars = self.transport.discover(&self.cfg.peripheral).await?;
        if !has(&chars, u::GLUCOSE_MEASUREMENT) || !has(&chars, u::RECORD_ACCESS_CONTROL_POINT) {
            return Err(Halt::Link("not a glucose meter with a record store".into()));
        }
        self.read_battery(&chars).await?;
        self.subscribe(u::GLUCOSE_MEASUREMENT).await?;
        self.subscribe(u::RECORD_ACCESS_CONTROL_POINT).await?;
        loop {
            self.backfill_meter().await?;
            let poll = self.clock.now()
                + TimeDelta::from_std(self.cfg.meter_poll).unwrap_or(TimeDelta::MAX);
            while let Some((short, value)) = self.value_or_end(poll).await? {
                if short == u::BATTERY_LEVEL {
                    self.battery_value(&value);
                }
            }
        }
    }

    async fn backfill_meter(&mut self) -> Step {
        let cursor = self.cursor(Stream::MeterGlucose);
        let filter = match cursor {
            Some(c) => match u16::try_from(c.sequence + 1) {
                Ok(next) => RecordFilter::AtLeast(FilterValue::SequenceNumber(next)),
                Err(_) => return Ok(()),
            },
            None => RecordFilter::All,
        };
        let req = RacpRequest::ReportStoredRecords(filter).encode()?;
        self.write(u::RECORD_ACCESS_CONTROL_POINT, &req).await?;
        let deadline = self.response_deadline();
        let mut got = Vec::new();
        loop {
            let Some((short, value)) = self.value_or_end(deadline).await? else {
                return Err(Halt::Link("RACP response timed out".into()));
            };
            match short {
                u::GLUCOSE_MEASUREMENT => match GlucoseMeasurement::decode(&value) {
                    Ok(m) => got.push((m, value)),
                    Err(_) => self.event(DeviceEventKind::CorruptFrame {
                        characteristic: u::GLUCOSE_MEASUREMENT,
                    }),
                },
                u::RECORD_ACCESS_CONTROL_POINT => match RacpResponse::decode(&value) {
                    Ok(RacpResponse::ResponseCode { code, .. }) => match code {
                        RacpResponseCode::Success | RacpResponseCode::NoRecordsFound => break,
                        other => return Err(Halt::Link(format!("RACP refused: {other:?}"))),
                    },
                    Ok(RacpResponse::NumberOfStoredRecords(_)) => {}
                    Err(e) => return Err(Halt::Link(format!("bad RACP response: {e}"))),
                },
                u::BATTERY_LEVEL => self.battery_value(&value),
                _ => {}
            }
        }
        got.sort_by_key(|(m, _)| m.sequence_number);
        got.dedup_by_key(|(m, _)| m.sequence_number);
        let offset = TimeDelta::minutes(i64::from(self.cfg.meter_utc_offset_min));
        for (m, raw) in got {
            let seq = u64::from(m.sequence_number);
            let Some(local) = m.absolute_time() else {
                continue;
            };
            let time = local.and_utc() - offset;
            if let Some(c) = self.cursor(Stream::MeterGlucose) {
                if seq <= c.sequence {
                    continue;
                }
                if seq > c.sequence + 1 {
                    self.gap(Gap {
                        device: self.cfg.device.clone(),
                        stream: Stream::MeterGlucose,
                        session: None,
                        from: c.time,
                        to: time,
                        first_missing: Some(c.sequence + 1),
                        last_missing: Some(seq - 1),
                        reason: GapReason::NotHeld,
                    });
                }
            }
            let value = m.concentration_mg_dl().unwrap_or(f64::NAN);
            let flagged = m.sensor_status.is_some_and(|s| s.to_bits() != 0);
            self.reading(
                Stream::MeterGlucose,
                value,
                time,
                seq,
                u::GLUCOSE_MEASUREMENT,
                raw,
                None,
                Quality {
                    percent: None,
                    flagged,
                },
            );
        }
        Ok(())
    }

    // ----- heart rate and pulse oximetry ----------------------------------------

    async fn serve_stream(&mut self) -> Step {
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

    fn heart_rate(&mut self, value: &[u8]) {
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

    fn plx(&mut self, value: &[u8]) {
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

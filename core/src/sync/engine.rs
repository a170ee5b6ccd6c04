//! The sync engine: one tokio task that owns a buffer connection, one timer
//! and the retry state.
//!
//! The task sleeps until the earliest due timer (batches, heartbeat, a
//! retry) or a command from the [`SyncHandle`]. With no network it sets no
//! timer at all: it waits for the host to report one. Each wake-up does
//! every piece of work due within [`SyncConfig::coalesce_slack`], so timers
//! that fall close together cost one wake-up.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::assemble::{Reduction, WireBatch, assemble, settle};
use super::http::{HttpPoster, HttpReply, Poster, Route};
use super::policy::{Network, Power, decide};
use super::{HostStatus, SyncConfig, SyncEvent, SyncReport, TokenProvider};
use crate::alerts::AlertEvent;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::model::{PatientId, Stream};
use crate::session::Backoff;
use crate::store::{Buffer, SyncState};
use crate::wire::{
    self, Alert, AlertAck, BatchAck, BufferHealth, ContentEncoding, DeviceHealth, Format,
    Heartbeat, JSON_CONTENT_TYPE, PROTOCOL_VERSION,
};

/// Starts sync engines.
#[derive(Debug)]
pub struct SyncEngine;

impl SyncEngine {
    /// Opens the buffer at `buffer_path` (its own connection) and starts the
    /// engine on the current tokio runtime, posting over HTTPS (or HTTP) to
    /// `config.server_url` for `patient`. Fails outside a runtime, on a
    /// buffer that cannot be opened, or on an unusable TLS setting.
    ///
    /// Opening the buffer returns batches left in flight to unsent, so the
    /// facade should open its own connection first.
    pub fn start(
        buffer_path: PathBuf,
        patient: PatientId,
        config: SyncConfig,
        tokens: Arc<dyn TokenProvider>,
        events: mpsc::UnboundedSender<SyncEvent>,
        clock: Arc<dyn Clock>,
    ) -> Result<SyncHandle> {
        let poster = Arc::new(HttpPoster::new(&config)?);
        Self::start_with_poster(buffer_path, patient, config, tokens, events, clock, poster)
    }

    /// [`SyncEngine::start`] over any [`Poster`] (tests, or a host that
    /// brings its own HTTP stack).
    pub fn start_with_poster(
        buffer_path: PathBuf,
        patient: PatientId,
        config: SyncConfig,
        tokens: Arc<dyn TokenProvider>,
        events: mpsc::UnboundedSender<SyncEvent>,
        clock: Arc<dyn Clock>,
        poster: Arc<dyn Poster>,
    ) -> Result<SyncHandle> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::InvalidInput("sync: start needs a tokio runtime".into()))?;
        if config.interval.is_zero() || config.heartbeat_interval.is_zero() {
            return Err(Error::InvalidSetting {
                setting: "interval",
                reason: "intervals must be positive".into(),
            });
        }
        // Timers add these to the clock: bounded, no addition can overflow.
        let year = Duration::from_secs(366 * 86_400);
        for (setting, d) in [
            ("interval", config.interval),
            ("stable_interval", config.stable_interval),
            ("contact_interval", config.contact_interval),
            ("heartbeat_interval", config.heartbeat_interval),
            (
                "heartbeat_with_data_every",
                config.heartbeat_with_data_every,
            ),
        ] {
            if d.is_zero() || d > year {
                return Err(Error::InvalidSetting {
                    setting,
                    reason: "must be positive and at most a year".into(),
                });
            }
        }
        if config.stable_interval < config.interval {
            return Err(Error::InvalidSetting {
                setting: "stable_interval",
                reason: "must be at least the sync interval".into(),
            });
        }
        if config.batch_max == 0 {
            return Err(Error::InvalidSetting {
                setting: "batch_max",
                reason: "must be at least 1".into(),
            });
        }
        let buffer = Buffer::open(&buffer_path, config.buffer)?;
        let network = config.initial_network;
        let wakeups = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        let engine = Engine {
            buffer,
            patient,
            next_batch_at: now + config.interval,
            next_check_at: None,
            started_at: now,
            last_contact_at: now,
            heartbeat_not_before: now,
            batches_flowing: false,
            last_heartbeat_at: None,
            config,
            tokens,
            token: None,
            events,
            clock,
            poster,
            network,
            power: Power::default(),
            host: HostStatus::default(),
            retry_at: None,
            server_wait_until: None,
            attempt: 0,
            rng: Backoff::rng(rand::random()),
            stored_hint: 0,
            batch_limits: HashMap::new(),
            close_tails: false,
            wakeups: wakeups.clone(),
            posted: 0,
        };
        let task = runtime.spawn(engine.run(rx));
        Ok(SyncHandle { tx, task, wakeups })
    }
}

enum Command {
    Network(Network),
    Power(Power),
    Host(HostStatus),
    AlertEnqueued,
    ReadingsStored(usize),
    SyncNow(oneshot::Sender<Result<SyncReport>>),
}

/// The app's (the facade's) handle on a running engine.
#[derive(Debug)]
pub struct SyncHandle {
    tx: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
    wakeups: Arc<AtomicU64>,
}

impl SyncHandle {
    /// The phone's network changed. Work the old network kept waiting
    /// starts at once.
    pub fn set_network(&self, n: Network) {
        let _ = self.tx.send(Command::Network(n));
    }

    /// The battery changed.
    pub fn set_power(&self, p: Power) {
        let _ = self.tx.send(Command::Power(p));
    }

    /// What the heartbeat reports about the app and its devices.
    pub fn set_host_status(&self, status: HostStatus) {
        let _ = self.tx.send(Command::Host(status));
    }

    /// The facade wrote an alert to the outbox: post it now.
    pub fn alert_enqueued(&self) {
        let _ = self.tx.send(Command::AlertEnqueued);
    }

    /// The pipeline stored `n` readings: once `batch_max` are waiting, a
    /// batch leaves before the timer.
    pub fn readings_stored(&self, n: usize) {
        let _ = self.tx.send(Command::ReadingsStored(n));
    }

    /// Drains what policy allows now (for WorkManager / background refresh)
    /// and returns the counts; a failure is reported in
    /// [`SyncReport::failure`] and retried by the engine later.
    pub async fn sync_now(&self) -> Result<SyncReport> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::SyncNow(tx))
            .map_err(|_| Error::InvalidInput("sync engine stopped".into()))?;
        rx.await
            .map_err(|_| Error::InvalidInput("sync engine stopped".into()))?
    }

    /// How many times the engine woke on its own timer (not on a command):
    /// what the coalescing test counts.
    pub fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    /// Stops the engine after the command in progress. Readings in flight
    /// are rolled back by the engine or, if it is cut short, when the buffer
    /// is next opened.
    pub async fn stop(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// Why a send failed.
#[derive(Debug)]
enum Failure {
    /// No HTTP answer (connection, timeout, TLS).
    Transport(String),
    /// `429`/`503`, with the server's `Retry-After` if any.
    Throttled(u16, Option<Duration>),
    /// `401`/`403` after one refresh.
    Unauthorized,
    /// Any other non-2xx status.
    Status(u16),
    /// A 2xx answer that is not the expected acknowledgement.
    Protocol(String),
    /// The buffer failed.
    Storage(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Storage(e)
    }
}

impl From<vigil_model::Error> for Failure {
    fn from(e: vigil_model::Error) -> Failure {
        Failure::Storage(e.into())
    }
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Transport(s) => s.clone(),
            Failure::Throttled(s, _) => format!("server busy ({s})"),
            Failure::Unauthorized => "unauthorized".into(),
            Failure::Status(s) => format!("server answered {s}"),
            Failure::Protocol(s) => format!("unexpected answer: {s}"),
            Failure::Storage(e) => e.to_string(),
        }
    }
}

/// What one pass should attempt.
#[derive(Debug, Clone, Copy)]
struct Want {
    batches: bool,
    heartbeat: bool,
}

struct Engine {
    buffer: Buffer,
    patient: PatientId,
    config: SyncConfig,
    tokens: Arc<dyn TokenProvider>,
    token: Option<String>,
    events: mpsc::UnboundedSender<SyncEvent>,
    clock: Arc<dyn Clock>,
    poster: Arc<dyn Poster>,
    network: Network,
    power: Power,
    host: HostStatus,
    next_batch_at: Instant,
    /// While batches are on the stretched interval: when to look again at
    /// whether glucose is still steady.
    next_check_at: Option<Instant>,
    started_at: Instant,
    /// When the server last acknowledged anything (or the engine started).
    last_contact_at: Instant,
    /// A heartbeat that failed or was skipped waits until then, as a lost
    /// heartbeat is not retried (its timer would otherwise stay due).
    heartbeat_not_before: Instant,
    /// A batch was acknowledged and no batch pass waited or failed since.
    batches_flowing: bool,
    /// When a health heartbeat was last acknowledged.
    last_heartbeat_at: Option<Instant>,
    retry_at: Option<Instant>,
    /// Until when the server asked for quiet (`Retry-After` on a `429` or
    /// `503`): a host's sync-now inside it sends no batches.
    server_wait_until: Option<Instant>,
    attempt: u32,
    rng: ChaCha8Rng,
    stored_hint: usize,
    /// Per-stream batch sizes the server's `413`s taught.
    batch_limits: HashMap<Stream, usize>,
    /// A host's sync-now is running: streaming reduction closes open tails.
    close_tails: bool,
    wakeups: Arc<AtomicU64>,
    /// Requests attempted so far: a pass that raised it woke the radio.
    posted: u64,
}

impl Engine {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        // Settings the host sent before the task first ran apply first.
        while let Ok(command) = rx.try_recv() {
            self.on_command(command).await;
        }
        // Alerts a previous process left undelivered go at once.
        if self.has_pending_alerts() {
            self.pass(Want {
                batches: false,
                heartbeat: false,
            })
            .await;
        }
        loop {
            let command = match self.next_wake() {
                Some(at) => tokio::select! {
                    c = rx.recv() => c,
                    () = tokio::time::sleep_until(at) => {
                        self.wakeups.fetch_add(1, Ordering::Relaxed);
                        crate::energy::timer_woke();
                        self.on_timer().await;
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            let Some(command) = command else { break };
            self.on_command(command).await;
        }
        // Stopping: nothing of ours stays in flight.
        let _ = self.buffer.rollback_in_flight(None);
    }

    /// The earliest timer worth waking for, or `None` (no network: only a
    /// command can make progress).
    fn next_wake(&self) -> Option<Instant> {
        let decision = decide(&self.config, self.network, self.power);
        if !decision.urgent {
            return None;
        }
        let mut at = self.heartbeat_at();
        if decision.batches.is_ok() {
            at = at.min(self.next_batch_at);
            if let Some(check) = self.next_check_at {
                at = at.min(check);
            }
        }
        if let Some(r) = self.retry_at {
            at = at.min(r);
        }
        Some(at)
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        let horizon = now + self.config.coalesce_slack;
        let retry = self.retry_at.is_some_and(|r| r <= horizon);
        let mut batches = retry || self.next_batch_at <= horizon;
        // Stretched: glucose that moved since brings the batch forward now.
        if !batches && self.next_check_at.is_some_and(|c| c <= horizon) {
            if self.steady() {
                self.next_check_at = Some(now + self.config.interval);
            } else {
                batches = true;
            }
        }
        let heartbeat = self.heartbeat_at() <= horizon;
        // Contact is due and a batch would be within another contact
        // period: the batch goes now and is the contact, one request
        // instead of two.
        if heartbeat
            && !batches
            && self.contact_at() <= horizon
            && self.next_batch_at <= now + self.config.contact_interval
            && decide(&self.config, self.network, self.power)
                .batches
                .is_ok()
        {
            batches = true;
        }
        self.pass(Want { batches, heartbeat }).await;
    }

    /// When contact is next due: the dead-man's switch must hear from the
    /// phone within its silence period.
    fn contact_at(&self) -> Instant {
        self.last_contact_at + self.config.contact_interval
    }

    /// When the health report is next due: soon after start, then every
    /// `heartbeat_interval` while batches do not flow and every
    /// `heartbeat_with_data_every` while they do.
    fn health_at(&self) -> Instant {
        match self.last_heartbeat_at {
            None => self.started_at + self.config.heartbeat_interval,
            Some(at) if self.batches_flowing => at + self.config.heartbeat_with_data_every,
            Some(at) => at + self.config.heartbeat_interval,
        }
    }

    /// When a heartbeat of either kind is next due (not before a failed
    /// or skipped one's next turn).
    fn heartbeat_at(&self) -> Instant {
        self.health_at()
            .min(self.contact_at())
            .max(self.heartbeat_not_before)
    }

    /// Whether batches may wait the stretched interval: it is configured,
    /// the newest glucose is steady and no alert fired within the
    /// stretched interval or is still undelivered. A buffer that cannot
    /// say is not steady.
    fn steady(&self) -> bool {
        if self.config.stable_interval <= self.config.interval {
            return false;
        }
        let Ok(recent) = self
            .buffer
            .recent_samples(Stream::Glucose, super::Steadiness::READINGS)
        else {
            return false;
        };
        let Some(newest) = recent.iter().map(|s| s.time).max() else {
            return false;
        };
        let lookback = chrono::TimeDelta::from_std(self.config.stable_interval)
            .unwrap_or(chrono::TimeDelta::MAX);
        let alert_lately = self.has_pending_alerts()
            || match (
                newest.checked_sub_signed(lookback),
                newest.checked_add_signed(chrono::TimeDelta::days(1)),
            ) {
                (Some(from), Some(to)) => {
                    !matches!(self.buffer.alert_times(from, to), Ok(t) if t.is_empty())
                }
                _ => true,
            };
        self.config.steadiness.is_steady(&recent, alert_lately)
    }

    /// The next batch time after a batch pass at `now`: the stretched
    /// interval while batches flow and glucose is steady (looking again
    /// every configured interval), the configured one otherwise.
    fn schedule_batches(&mut self, now: Instant) {
        if self.batches_flowing && self.steady() {
            self.next_batch_at = now + self.config.stable_interval;
            self.next_check_at = Some(now + self.config.interval);
        } else {
            self.next_batch_at = now + self.config.interval;
            self.next_check_at = None;
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Network(n) => {
                self.network = n;
                self.catch_up().await;
            }
            Command::Power(p) => {
                self.power = p;
                self.catch_up().await;
            }
            Command::Host(h) => self.host = h,
            Command::AlertEnqueued => {
                self.pass(Want {
                    batches: false,
                    heartbeat: false,
                })
                .await;
            }
            Command::ReadingsStored(n) => {
                self.stored_hint = self.stored_hint.saturating_add(n);
                if self.stored_hint >= self.config.batch_max {
                    self.stored_hint = 0;
                    let waiting = self
                        .buffer
                        .count(None, Some(SyncState::Unsent))
                        .unwrap_or(0);
                    if waiting >= self.config.batch_max as u64 {
                        self.pass(Want {
                            batches: true,
                            heartbeat: false,
                        })
                        .await;
                    }
                }
            }
            Command::SyncNow(reply) => {
                let now = Instant::now();
                if let Some(until) = self.server_wait_until.filter(|u| *u > now) {
                    // A background task's sync-now (WorkManager, background
                    // refresh) must not undo the server's back-off: only
                    // alerts go, and the host hears when to come back.
                    let mut report = SyncReport::default();
                    if self.has_pending_alerts() {
                        report = self
                            .pass(Want {
                                batches: false,
                                heartbeat: false,
                            })
                            .await;
                    }
                    if report.failure.is_none() {
                        let wait = until.saturating_duration_since(now).as_secs().max(1);
                        report.failure = Some(format!("server busy: asked to wait {wait} s more"));
                    }
                    let _ = reply.send(Ok(report));
                    return;
                }
                // The host wants everything sent: open segments close too.
                self.close_tails = true;
                let report = self
                    .pass(Want {
                        batches: true,
                        heartbeat: self.heartbeat_at() <= now + self.config.coalesce_slack,
                    })
                    .await;
                self.close_tails = false;
                let _ = reply.send(Ok(report));
            }
        }
    }

    /// After a network or power change: whatever is overdue goes now.
    async fn catch_up(&mut self) {
        let now = Instant::now();
        let alerts = self.has_pending_alerts();
        let want = Want {
            batches: self.next_batch_at <= now || self.retry_at.is_some_and(|r| r <= now),
            heartbeat: self.heartbeat_at() <= now,
        };
        if alerts || want.batches || want.heartbeat {
            self.pass(want).await;
        }
    }

    /// One pass: alerts (always, if any network), then batches and the
    /// heartbeat as wanted and allowed. Schedules the retry on failure.
    async fn pass(&mut self, want: Want) -> SyncReport {
        let posted = self.posted;
        let report = self.pass_inner(want).await;
        if self.posted != posted {
            crate::energy::radio_woke();
        }
        report
    }

    /// Whether the outbox holds an undelivered alert (a buffer that
    /// cannot say counts as none: the next pass will say why).
    fn has_pending_alerts(&self) -> bool {
        self.buffer
            .pending_alerts()
            .map(|a| !a.is_empty())
            .unwrap_or(false)
    }

    /// Counts one HTTP attempt, for the process's energy figures and for
    /// this pass's radio wake.
    fn count_request(&mut self) {
        crate::energy::requested();
        self.posted = self.posted.wrapping_add(1);
    }

    /// [`Engine::pass`] without the radio count.
    async fn pass_inner(&mut self, want: Want) -> SyncReport {
        let mut report = SyncReport::default();
        let now = Instant::now();
        let decision = decide(&self.config, self.network, self.power);
        if !decision.urgent {
            report.waiting = decision.batches.err();
            return report;
        }
        let contact_before = self.last_contact_at;
        let mut failure = self.send_alerts(&mut report).await.err();
        if want.batches {
            match decision.batches {
                Err(reason) => {
                    self.batches_flowing = false;
                    report.waiting = Some(reason);
                    self.emit(SyncEvent::Waiting(reason));
                }
                Ok(()) if failure.is_none() => {
                    failure = self.send_batches(&mut report).await.err();
                    // Flowing once a batch went through; a pass with
                    // nothing to send leaves it as it was.
                    if failure.is_some() {
                        self.batches_flowing = false;
                    } else if report.batches > 0 {
                        self.batches_flowing = true;
                    }
                }
                Ok(()) => self.batches_flowing = false,
            }
            self.schedule_batches(now);
        }
        if want.heartbeat {
            let horizon = now + self.config.coalesce_slack;
            let sent = if failure.is_some() {
                Some(false)
            } else if self.health_at() <= horizon {
                let ok = self.send_heartbeat().await.is_ok();
                if ok {
                    self.last_heartbeat_at = Some(now);
                }
                Some(ok)
            } else if self.last_contact_at == contact_before && self.contact_at() <= horizon {
                // Nothing else reached the server in this wake-up: a
                // body-less heartbeat keeps the dead-man's switch quiet.
                Some(self.send_contact().await.is_ok())
            } else {
                // Not due, or this wake-up's other requests were contact.
                None
            };
            match sent {
                Some(true) => {
                    report.heartbeat = true;
                    self.emit(SyncEvent::HeartbeatSent);
                }
                // A lost or skipped heartbeat is not retried: the next one
                // is on schedule.
                Some(false) => {
                    self.heartbeat_not_before = now + self.config.heartbeat_interval;
                }
                None => {}
            }
        }
        match failure {
            // Batches went: the back-off is over.
            None if want.batches => {
                self.attempt = 0;
                self.retry_at = None;
                self.server_wait_until = None;
            }
            // Only alerts (or a heartbeat) went: a retry of batches that
            // failed before still stands.
            None => {}
            Some(f) => {
                self.attempt = self.attempt.saturating_add(1);
                let backoff = self.config.backoff.delay(self.attempt, &mut self.rng);
                let after = match &f {
                    Failure::Throttled(_, Some(ra)) => {
                        self.server_wait_until = Some(now + *ra);
                        *ra
                    }
                    _ => backoff,
                };
                self.retry_at = Some(now + after);
                let reason = f.describe();
                if matches!(f, Failure::Unauthorized) {
                    self.emit(SyncEvent::Unauthorized);
                    report.unauthorized = true;
                }
                self.emit(SyncEvent::Retrying {
                    after,
                    reason: reason.clone(),
                });
                report.failure = Some(reason);
            }
        }
        report
    }

    /// The clock's time in whole microseconds: the wire's resolution (a
    /// finer `sent_at` is refused by the protocol).
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let t = self.clock.now();
        chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
    }

    fn emit(&self, event: SyncEvent) {
        let _ = self.events.send(event);
    }

    /// Posts with the current token; after a `401`/`403` asks the provider
    /// for a fresh token and tries once more.
    async fn post(
        &mut self,
        route: Route,
        content_type: &'static str,
        encoding: Option<&'static str>,
        body: Vec<u8>,
    ) -> std::result::Result<HttpReply, Failure> {
        if self.token.is_none() {
            self.token = self.tokens.token();
        }
        let poster = self.poster.clone();
        self.count_request();
        let mut reply = poster
            .post(
                route,
                content_type,
                encoding,
                body.clone(),
                self.token.as_deref(),
            )
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        if reply.status == 401 || reply.status == 403 {
            self.token = self.tokens.refresh();
            self.count_request();
            reply = poster
                .post(route, content_type, encoding, body, self.token.as_deref())
                .await
                .map_err(|e| Failure::Transport(e.to_string()))?;
            if reply.status == 401 || reply.status == 403 {
                return Err(Failure::Unauthorized);
            }
        }
        match reply.status {
            200..=299 => {
                self.last_contact_at = Instant::now();
                Ok(reply)
            }
            429 | 503 => Err(Failure::Throttled(reply.status, reply.retry_after)),
            s => Err(Failure::Status(s)),
        }
    }

    async fn send_alerts(&mut self, report: &mut SyncReport) -> std::result::Result<(), Failure> {
        let pending = self.buffer.pending_alerts()?;
        let mut refused = None;
        for row in pending {
            // The outbox payload is the engine's event as JSON; a row this
            // build cannot read stays in the outbox rather than being lost.
            let Ok(event) = serde_json::from_slice::<AlertEvent>(&row.payload) else {
                continue;
            };
            let alert = Alert::from_event(self.patient.clone(), None, self.now(), &event);
            let body = wire::json::to_vec(&alert)?;
            let reply = match self
                .post(Route::Alerts, JSON_CONTENT_TYPE, None, body)
                .await
            {
                Ok(reply) => reply,
                // This alert was refused as sent: it stays in the outbox
                // (retried with backoff) and the next one still goes now.
                Err(f @ Failure::Status(400..=499)) => {
                    refused.get_or_insert(f);
                    continue;
                }
                Err(f) => return Err(f),
            };
            // `204`: stored (the minimal answer the poster asks for).
            if reply.status != 204 {
                let ack: AlertAck = wire::json::from_slice(&reply.body)
                    .map_err(|e| Failure::Protocol(e.to_string()))?;
                if ack.id != event.id || ack.phase != event.phase {
                    return Err(Failure::Protocol("ack for another alert".into()));
                }
            }
            self.buffer
                .mark_alert_delivered(&row.id, &row.phase, row.time, self.now())?;
            report.alerts_delivered += 1;
            self.emit(SyncEvent::AlertDelivered {
                id: row.id,
                phase: row.phase,
            });
        }
        refused.map_or(Ok(()), Err)
    }

    /// Sends every stream's unsent decided readings, as of when each
    /// stream's last batch was taken: first each stream's first batch,
    /// joined into one request per device, then, one stream at a time,
    /// whatever did not fit. A `413` halves that stream's batch size and
    /// tries again at once; another refusal of the request itself (a `4xx`
    /// that no retry of the same bytes can fix) stops only that stream, so
    /// one bad batch cannot hold back the others (a joined request that is
    /// refused is sent again stream by stream to find out whose it was).
    /// Either way the readings stay in the buffer until acknowledged.
    async fn send_batches(&mut self, report: &mut SyncReport) -> std::result::Result<(), Failure> {
        if self.config.reduction == Reduction::Streaming {
            // Tails close by the data's own clock (the newest reading's
            // sensor time), not the engine's, which may be the wall clock
            // beside simulated readings; a host's sync-now closes every
            // open tail.
            let now = if self.close_tails {
                chrono::DateTime::<chrono::Utc>::MAX_UTC
            } else {
                let clock = self.now();
                self.buffer
                    .newest_sensor_time()?
                    .map_or(clock, |t| t.min(clock))
            };
            for stream in Stream::ALL {
                super::decide_closed_segments(&mut self.buffer, stream, now)?;
            }
        }
        let more = match self.send_joined_round(report).await {
            Ok(full) => full,
            Err(Failure::Status(400..=499)) => Stream::ALL.to_vec(),
            Err(f) => return Err(f),
        };
        let mut refused = None;
        for stream in more {
            loop {
                let limit = self.batch_limit(stream);
                let Some(local) = self.take_batch(stream, limit)? else {
                    break;
                };
                let outcome = match self.assemble_local(&local) {
                    Ok(wires) => self.send_wires(wires, report).await,
                    Err(e) => Err(Failure::Storage(e)),
                };
                // Whatever no acknowledgement covered goes again later.
                self.buffer.rollback_in_flight(Some(local.id))?;
                match outcome {
                    // The stream was drained as of this batch: readings
                    // stored while it travelled wait for the next pass, so
                    // a pass is bounded and a 1 Hz stream cannot keep the
                    // radio up batch after small batch.
                    Ok(true) if local.readings.len() < limit => break,
                    Ok(true) => {}
                    // Something was left unsettled: do not spin on it.
                    Ok(false) => break,
                    Err(Failure::Status(413)) if limit > 1 => {
                        self.batch_limits.insert(stream, (limit / 2).max(1));
                    }
                    Err(f @ Failure::Status(400..=499)) => {
                        self.emit(SyncEvent::Refused {
                            stream,
                            reason: f.describe(),
                        });
                        refused.get_or_insert(f);
                        break;
                    }
                    Err(f) => return Err(f),
                }
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// Takes each stream's first batch and sends them joined, one request
    /// per device. Returns the streams whose batch was full (more of them
    /// may be waiting); none when something was left unsettled.
    async fn send_joined_round(
        &mut self,
        report: &mut SyncReport,
    ) -> std::result::Result<Vec<Stream>, Failure> {
        let mut locals = Vec::new();
        let mut wires = Vec::new();
        let mut failed = None;
        for stream in Stream::ALL {
            let limit = self.batch_limit(stream);
            let taken = self.take_batch(stream, limit).and_then(|b| {
                b.map(|b| self.assemble_local(&b).map(|w| (b, w)))
                    .transpose()
            });
            match taken {
                Ok(Some((local, w))) => {
                    wires.extend(w);
                    locals.push((local.id, local.stream, local.readings.len(), limit));
                }
                Ok(None) => {}
                Err(e) => {
                    failed = Some(Failure::Storage(e));
                    break;
                }
            }
        }
        let outcome = match failed {
            Some(f) => Err(f),
            None if locals.is_empty() => Ok(true),
            None => self.send_wires(super::assemble::merge(wires), report).await,
        };
        // Whatever no acknowledgement covered goes again later.
        for (id, ..) in &locals {
            self.buffer.rollback_in_flight(Some(*id))?;
        }
        Ok(if outcome? {
            locals
                .iter()
                .filter(|(_, _, taken, limit)| taken >= limit)
                .map(|(_, stream, ..)| *stream)
                .collect()
        } else {
            Vec::new()
        })
    }

    /// The next batch of `stream` from the buffer, marked in flight.
    fn take_batch(
        &mut self,
        stream: Stream,
        limit: usize,
    ) -> Result<Option<crate::store::InFlightBatch>> {
        if self.config.reduction == Reduction::Streaming {
            self.buffer.next_decided_batch(stream, limit)
        } else {
            self.buffer.next_batch_with_held(stream, limit)
        }
    }

    /// The batch size for `stream`: the configured one until the server
    /// answered `413`, then halved for each.
    fn batch_limit(&self, stream: Stream) -> usize {
        self.batch_limits
            .get(&stream)
            .copied()
            .unwrap_or(self.config.batch_max)
    }

    /// The wire batches of one buffer batch, reduced as configured.
    fn assemble_local(&self, local: &crate::store::InFlightBatch) -> Result<Vec<WireBatch>> {
        let times = match (
            local.readings.iter().map(|r| r.reading.sensor_time).min(),
            local.readings.iter().map(|r| r.reading.sensor_time).max(),
        ) {
            (Some(from), Some(to)) if self.config.reduction == Reduction::AtSync => self
                .buffer
                .alert_times(from, to)?
                .into_iter()
                .collect::<HashSet<_>>(),
            _ => HashSet::new(),
        };
        assemble(
            local,
            self.config.reduction,
            &times,
            self.config.send_raw,
            self.now(),
        )
    }

    /// Sends wire batches and settles each by its acknowledgement;
    /// `Ok(true)` when every reading was settled.
    async fn send_wires(
        &mut self,
        wires: Vec<WireBatch>,
        report: &mut SyncReport,
    ) -> std::result::Result<bool, Failure> {
        let mut all = true;
        for w in wires {
            let (body, encoding) = encode(&w)?;
            let reply = self
                .post(
                    Route::Batches,
                    Format::Binary.content_type(),
                    encoding,
                    body,
                )
                .await?;
            // `204`: every reading stored (the minimal answer the poster
            // asks for); otherwise the JSON ack, per stream.
            let ack = if reply.status == 204 {
                BatchAck::stored_whole(&w.batch)
            } else {
                wire::json::from_slice::<BatchAck>(&reply.body)
                    .map_err(|e| Failure::Protocol(e.to_string()))?
            };
            let settled = settle(&mut self.buffer, &w, &ack)?;
            all &= settled.total() as usize == w.rows.len();
            report.batches += 1;
            report.readings_stored += settled.stored;
            report.readings_rejected += settled.rejected;
            for (stream, s) in settled.by_stream {
                self.emit(SyncEvent::BatchAcknowledged {
                    stream,
                    stored: s.stored,
                    rejected: s.rejected,
                });
            }
        }
        Ok(all)
    }

    async fn send_heartbeat(&mut self) -> std::result::Result<(), Failure> {
        let heartbeat = self.heartbeat()?;
        let body = wire::json::to_vec(&heartbeat)?;
        self.post(Route::Heartbeats, JSON_CONTENT_TYPE, None, body)
            .await
            .map(|_| ())
    }

    /// A body-less heartbeat: contact only, the smallest request the
    /// service answers (`204`, no body).
    async fn send_contact(&mut self) -> std::result::Result<(), Failure> {
        self.post(Route::Heartbeats, JSON_CONTENT_TYPE, None, Vec::new())
            .await
            .map(|_| ())
    }

    fn heartbeat(&self) -> Result<Heartbeat> {
        let b = &self.buffer;
        let buffer = BufferHealth {
            unsent_readings: b.count(None, Some(SyncState::Unsent))?,
            pending_alerts: b.pending_alerts()?.len() as u64,
            used_bytes: b.used_bytes()?,
            budget_bytes: b.capacity_policy().budget_bytes,
            pressure: b.pressure()?,
        };
        let mut devices: Vec<DeviceHealth> = self.host.devices.clone();
        for d in b.devices()? {
            if d.forgotten_at.is_some() || devices.iter().any(|h| h.device == d.device) {
                continue;
            }
            devices.push(DeviceHealth {
                device: d.device,
                connected: false,
                last_contact: None,
                battery_pct: None,
            });
        }
        for d in &mut devices {
            if d.last_contact.is_none() {
                d.last_contact = b.last_contact(&d.device)?;
            }
        }
        Ok(Heartbeat {
            v: PROTOCOL_VERSION,
            patient: self.patient.clone(),
            sent_at: self.now(),
            sdk_version: env!("CARGO_PKG_VERSION").to_string(),
            app_state: self.host.app_state,
            phone_battery_pct: Some(f64::from(self.power.percent)),
            buffer,
            devices,
        })
    }
}

/// Binary, deflated unless deflate makes it larger (tiny batches).
fn encode(w: &WireBatch) -> Result<(Vec<u8>, Option<&'static str>)> {
    let plain = wire::encode_batch(&w.batch, Format::Binary, ContentEncoding::Identity)?;
    let deflated = wire::compress::compress(&plain, ContentEncoding::Deflate)?;
    Ok(if deflated.len() < plain.len() {
        (deflated, ContentEncoding::Deflate.header())
    } else {
        (plain, None)
    })
}

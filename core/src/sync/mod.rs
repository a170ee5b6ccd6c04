//! Sync: the buffer's readings and the alert outbox on their way to the
//! ingest service.
//!
//! Place in the data flow: store → reduce → **sync** → cloud-ingest. The
//! engine owns its own [`Buffer`](crate::store::Buffer) connection on the
//! same SQLite file as the session pipeline (WAL lets both work at once),
//! reads unsent readings per stream, reduces trend streams, encodes
//! [`wire`](crate::wire) batches (binary + deflate; one device's streams
//! joined into one request) and posts them; it marks
//! a reading synced only after a [`BatchAck`](crate::wire::BatchAck)
//! covers it. Alerts leave the outbox at once over any network and are
//! retried until an [`AlertAck`](crate::wire::AlertAck).
//!
//! Decisions that shaped it:
//!
//! - **The buffer is the only state that matters.** A batch in flight is a
//!   mark in SQLite; a failure rolls it back, and a killed process's marks
//!   are rolled back when the buffer is next opened. The server stores each
//!   reading key once, so the worst a kill can cause is one re-send.
//! - **One task, one timer.** The engine sleeps until the earliest of its
//!   timers (batch interval, heartbeat, a pending retry); work due within a
//!   short slack of a wake-up is done in the same wake-up, so a phone with
//!   nothing to send wakes only as often as its timers demand.
//! - **The transport is a trait** ([`Poster`]): [`HttpPoster`] (reqwest over
//!   rustls, optional SPKI pinning) in production, an in-memory poster in
//!   tests that need tokio's paused clock.

mod assemble;
mod cadence;
mod engine;
mod http;
mod policy;
mod segments;
mod tls;
mod wall;

pub use assemble::{Reduction, Settled, StreamSettled, WireBatch, assemble, merge, settle};
pub use cadence::Steadiness;
pub use engine::{SyncEngine, SyncHandle};
pub use http::{HttpPoster, HttpReply, Poster, Route, retry_after};
pub use policy::{Decision, Network, Power, WaitReason, decide};
pub use segments::{PassReport, decide_closed_segments, decide_with};
pub use tls::{client_config, spki_of_certificate, spki_sha256};
pub use wall::WallClockPoster;

use std::sync::Mutex;
use std::time::Duration;

use crate::model::Stream;
use crate::session::Backoff;
use crate::store::BufferConfig;
use crate::wire::{AppState, DeviceHealth};

/// How the engine syncs. Chosen by the app through the facade.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncConfig {
    /// Base URL of the ingest service (`https://ingest.example.org`).
    pub server_url: String,
    /// How often batches leave on the timer.
    pub interval: Duration,
    /// How often batches leave while glucose is steady (in range, away
    /// from its edges, hardly moving) and no alert fired lately
    /// ([`Steadiness`]); equal to `interval` turns the stretch off. The
    /// clinician's view is then up to this old instead of `interval`;
    /// alerts never wait. While stretched the engine still looks every
    /// `interval` and sends at once when glucose moves.
    pub stable_interval: Duration,
    /// What counts as steady glucose for `stable_interval`.
    pub steadiness: Steadiness,
    /// The longest the engine lets pass without an acknowledged request
    /// (a batch, an alert or a heartbeat all count): when it passes, a
    /// body-less contact heartbeat goes, or, when a batch is due within
    /// another such period anyway, the batch goes early instead. Below
    /// the service's dead-man's switch (30 minutes by default) with room
    /// for a late timer.
    pub contact_interval: Duration,
    /// How often a heartbeat reports the SDK's health while batches are
    /// not flowing (none sent yet, waiting for a network or battery, or
    /// failing).
    pub heartbeat_interval: Duration,
    /// How often the health report goes while batches are acknowledged:
    /// the cloud counts each batch as contact, and contact heartbeats fill
    /// the gaps, so the health report (about 600 bytes a time, headers
    /// included) only refreshes the dashboard's view of the phone.
    pub heartbeat_with_data_every: Duration,
    /// Most readings (kept plus held back) in one batch; also the number of
    /// waiting readings that triggers a sync before the timer.
    pub batch_max: usize,
    /// Batches wait for an unmetered network ([`Network::Wifi`]); alerts do
    /// not.
    pub wait_for_unmetered: bool,
    /// Below this battery percentage, and not charging, non-urgent sync
    /// (batches) waits.
    pub low_battery_percent: u8,
    /// SHA-256 of the SubjectPublicKeyInfo of acceptable server keys; empty
    /// means normal certificate verification only.
    pub spki_pins: Vec<[u8; 32]>,
    /// Extra trusted roots (PEM), for a private CA or a test server.
    pub extra_roots_pem: Vec<String>,
    /// How trend streams are reduced (record streams are always lossless).
    pub reduction: Reduction,
    /// Retry delays after a failure (a `Retry-After` overrides them).
    pub backoff: Backoff,
    /// Work due within this long after a wake-up is done in that wake-up.
    pub coalesce_slack: Duration,
    /// Time allowed for one HTTP request.
    pub request_timeout: Duration,
    /// Send each reading's characteristic bytes along (audit; costs bytes).
    pub send_raw: bool,
    /// How the engine's own buffer connection is opened (the budget it
    /// reports in heartbeats).
    pub buffer: BufferConfig,
    /// The network the engine assumes until the host reports one. The
    /// facade starts offline: an engine that assumed Wi-Fi could send
    /// before the app's first report arrived (under simulated time its
    /// first timer may fire at once).
    pub initial_network: Network,
}

impl Default for SyncConfig {
    /// 15-minute batches, 60 minutes while glucose is steady, contact at
    /// least every 28 minutes, health heartbeats every 15 minutes while
    /// batches do not flow and every 6 hours while they do, 5000 readings
    /// per batch, any network, 15 % battery threshold, no pins, streaming
    /// reduction, retries from 1 s doubling to 15 min, 60 s coalescing
    /// slack, 30 s per request.
    fn default() -> Self {
        SyncConfig {
            server_url: String::new(),
            interval: Duration::from_secs(15 * 60),
            stable_interval: Duration::from_secs(60 * 60),
            steadiness: Steadiness::default(),
            contact_interval: Duration::from_secs(28 * 60),
            heartbeat_interval: Duration::from_secs(15 * 60),
            heartbeat_with_data_every: Duration::from_secs(6 * 60 * 60),
            batch_max: 5000,
            wait_for_unmetered: false,
            low_battery_percent: 15,
            spki_pins: Vec::new(),
            extra_roots_pem: Vec::new(),
            reduction: Reduction::Streaming,
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(15 * 60),
                jitter: 0.3,
            },
            coalesce_slack: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            send_raw: false,
            buffer: BufferConfig::default(),
            initial_network: Network::Wifi,
        }
    }
}

/// Where the auth token comes from: the app's configuration, or a host
/// callback that can fetch a fresh one.
pub trait TokenProvider: Send + Sync {
    /// The current token, if any.
    fn token(&self) -> Option<String>;
    /// Called after a `401`, once per failure: a fresh token, if the host
    /// can get one.
    fn refresh(&self) -> Option<String>;
}

/// A fixed token from configuration: `refresh` returns it again.
#[derive(Debug, Clone)]
pub struct StaticToken(pub String);

impl TokenProvider for StaticToken {
    fn token(&self) -> Option<String> {
        Some(self.0.clone())
    }
    fn refresh(&self) -> Option<String> {
        Some(self.0.clone())
    }
}

/// A token the host can replace at run time (for a refresh callback that
/// only knows the new token later). Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct SharedToken(Mutex<Option<String>>);

impl SharedToken {
    /// A provider holding `token`.
    pub fn new(token: Option<String>) -> SharedToken {
        SharedToken(Mutex::new(token))
    }
    /// Replaces the token.
    pub fn set(&self, token: Option<String>) {
        if let Ok(mut t) = self.0.lock() {
            *t = token;
        }
    }
}

impl TokenProvider for SharedToken {
    fn token(&self) -> Option<String> {
        self.0.lock().ok().and_then(|t| t.clone())
    }
    fn refresh(&self) -> Option<String> {
        self.token()
    }
}

/// What the engine tells the app (through the facade's listener).
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEvent {
    /// The server acknowledged readings of `stream`: `stored` are held by
    /// the cloud now (kept and held back), `rejected` were refused for good.
    BatchAcknowledged {
        /// The stream.
        stream: Stream,
        /// Readings the cloud now holds.
        stored: u64,
        /// Readings refused for good (never re-sent).
        rejected: u64,
    },
    /// An alert event reached the cloud.
    AlertDelivered {
        /// The episode id.
        id: String,
        /// The phase delivered (`start`, `realert`, `end`).
        phase: String,
    },
    /// A heartbeat was accepted.
    HeartbeatSent,
    /// The server refused a batch of `stream` as sent (a `4xx` other than
    /// auth and throttling, after any `413` splitting): the readings stay
    /// on the phone and are tried again with backoff; other streams go on.
    Refused {
        /// The stream held back.
        stream: Stream,
        /// What the server answered (no readings, no tokens).
        reason: String,
    },
    /// A send failed; the engine retries after `after`.
    Retrying {
        /// Delay before the next attempt.
        after: Duration,
        /// What failed (no tokens, no readings).
        reason: String,
    },
    /// The server refused the token even after a refresh.
    Unauthorized,
    /// Batches are waiting because of the network or battery policy.
    Waiting(WaitReason),
}

/// Counts of one sync pass ([`SyncHandle::sync_now`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    /// Batches the server acknowledged.
    pub batches: u64,
    /// Readings the server now holds (kept and held back).
    pub readings_stored: u64,
    /// Readings refused for good.
    pub readings_rejected: u64,
    /// Alert events delivered.
    pub alerts_delivered: u64,
    /// A heartbeat went out in this pass.
    pub heartbeat: bool,
    /// Batches were held back by policy.
    pub waiting: Option<WaitReason>,
    /// The pass stopped on this failure (the engine retries later).
    pub failure: Option<String>,
    /// The failure was the server refusing the token even after a
    /// refresh: the app must sign in again, retrying will not help.
    pub unauthorized: bool,
}

/// Per-device facts only the host knows (connection, device battery), for
/// the heartbeat. The engine adds the last contact from the buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct HostStatus {
    /// What the app is doing.
    pub app_state: AppState,
    /// Devices as the host sees them.
    pub devices: Vec<DeviceHealth>,
}

impl Default for HostStatus {
    fn default() -> Self {
        HostStatus {
            app_state: AppState::Foreground,
            devices: Vec::new(),
        }
    }
}

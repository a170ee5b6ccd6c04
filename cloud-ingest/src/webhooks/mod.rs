//! Webhooks: the service pushes alert and new-data events to the clinic's
//! other systems (an EHR inbox, a paging service).
//!
//! Place in the data flow: intake stores an alert or a batch → an event is
//! queued in the database ([`crate::storage::Storage::enqueue_webhook_event`],
//! one delivery per subscribed webhook) → the [`dispatch::Dispatcher`] posts
//! it, signed, and retries with backoff until the receiver answers 2xx or
//! the attempts run out. Decisions:
//!
//! - **The queue is a table**, not memory, so a restart loses no delivery
//!   and every attempt is logged (status, error, time) for the clinic to
//!   audit. Delivery is at least once; receivers dedupe by `Vigil-Delivery`.
//! - **Signature**: `Vigil-Signature: v1=<hex HMAC-SHA256(secret,
//!   "<timestamp>.<body>")>` with `Vigil-Timestamp: <unix seconds>`, so a
//!   receiver can reject both forged and replayed deliveries ([`verify`]).
//! - **HTTPS only**, except loopback receivers (tests, a sidecar): event
//!   bodies name patients by id and carry alert values.
//! - **Bodies are small**: an alert event carries the alert; a data event
//!   says which patient, streams and time span arrived, and the receiver
//!   reads the readings through the authenticated API if it needs them.

pub mod dispatch;
pub mod sign;

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use sign::{sign, verify};

use crate::error::{Error, Result};

/// A webhook's id.
pub type WebhookId = i64;
/// A delivery's id: sent as `Vigil-Delivery` so receivers can dedupe.
pub type DeliveryId = i64;

/// What a webhook subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An alert started, ended or was acknowledged (including `app_silent`).
    Alert,
    /// A batch of readings was stored.
    Data,
}

impl EventKind {
    /// The name used in the database, the CLI and the `Vigil-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Alert => "alert",
            EventKind::Data => "data",
        }
    }

    /// Parses [`EventKind::as_str`].
    pub fn parse(s: &str) -> Result<EventKind> {
        match s.trim() {
            "alert" => Ok(EventKind::Alert),
            "data" => Ok(EventKind::Data),
            other => Err(Error::InvalidInput(format!(
                "webhook event {other:?}: expected alert or data"
            ))),
        }
    }

    /// The comma-separated form [`EventKind::parse_list`] reads, as both
    /// backends store a webhook's subscriptions.
    pub fn join_list(kinds: &[EventKind]) -> String {
        kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses a comma-separated list (`alert,data`), at least one.
    pub fn parse_list(s: &str) -> Result<Vec<EventKind>> {
        let mut kinds = Vec::new();
        for part in s.split(',') {
            let kind = EventKind::parse(part)?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }
}

/// A webhook to register.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Where to POST; checked by [`check_url`].
    pub url: String,
    /// What to send it.
    pub events: Vec<EventKind>,
    /// The HMAC key, shown once to the registering admin.
    pub secret: String,
}

/// A registered webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    /// Its id.
    pub id: WebhookId,
    /// Where deliveries go.
    pub url: String,
    /// What it receives.
    pub events: Vec<EventKind>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// A delivery the dispatcher should attempt now.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The delivery's id.
    pub id: DeliveryId,
    /// Its event.
    pub event: EventKind,
    /// The JSON body, exactly as signed and sent.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The target.
    pub url: String,
    /// The HMAC key.
    pub secret: String,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx: done.
    Delivered {
        /// Its status.
        status: u16,
        /// When.
        at: DateTime<Utc>,
    },
    /// Failed; try again at `retry_at`, or give up when it is `None`.
    Failed {
        /// The receiver's status, if it answered.
        status: Option<u16>,
        /// What went wrong (no body content: receivers may echo PHI).
        error: String,
        /// When.
        at: DateTime<Utc>,
        /// The next attempt, or `None` to give up.
        retry_at: Option<DateTime<Utc>>,
    },
}

/// One delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryLog {
    /// The delivery's id.
    pub id: DeliveryId,
    /// Its event.
    pub event: EventKind,
    /// Attempts made.
    pub attempts: u32,
    /// When it was delivered, if it was.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was given up, if it was.
    pub gave_up_at: Option<DateTime<Utc>>,
    /// The last status the receiver answered.
    pub last_status: Option<u16>,
    /// The last error.
    pub last_error: Option<String>,
}

/// Accepts `https://` URLs, and `http://` only to loopback addresses.
pub fn check_url(url: &str) -> Result<()> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| Error::InvalidInput(format!("webhook url: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback =
                host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(Error::InvalidInput(
                    "webhook url: plain http is allowed only to loopback; use https".into(),
                ))
            }
        }
        other => Err(Error::InvalidInput(format!(
            "webhook url: scheme {other:?} is not https"
        ))),
    }
}

/// A new signing secret: 256 random bits from the operating system, hex,
/// prefixed `vgl_w_` so a leaked one is recognisable in a secret scanner.
pub fn generate_secret() -> Result<String> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Config(format!("operating system RNG failed: {e}")))?;
    let mut s = String::from("vgl_w_");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    Ok(s)
}

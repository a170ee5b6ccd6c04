//! Webhook subscriptions and deliveries as stored; the rules (URL check,
//! signing, retries) live in `crate::webhooks`.

use chrono::{DateTime, Utc};
use serde::Serialize;

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
    /// Where to POST; checked by [`crate::webhooks::check_url`].
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

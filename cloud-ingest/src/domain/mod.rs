//! The ids and records every layer shares: patients, clinicians, tokens
//! and credentials, audit entries, webhooks, data points.
//!
//! Plain data with no behaviour beyond naming, parsing and hashing itself,
//! so that `storage`, `auth`, `access` and every slice can depend on it and
//! it on nothing of theirs: the dependency direction is slices → `access`
//! → `auth` → `storage` → `domain` (and `error`), never back.
//!
//! The intake records (`NewBatch`, `StoredReading`, `ReadingQuery`,
//! alerts, heartbeats) stay in `storage::intake` for now: they are the
//! storage contract's own vocabulary and no module below storage uses them.

mod audit;
mod credential;
mod webhook;

pub use audit::{AuditEntry, NewAuditEntry};
pub use credential::{
    CredentialKind, NewToken, Role, SecretHash, TokenHash, TokenRecord, TokenScope,
};
pub use webhook::{
    Attempt, DeliveryId, DeliveryLog, DueDelivery, EventKind, NewWebhook, Webhook, WebhookId,
};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A patient's id: the database row id, printed by `patient add`.
pub type PatientId = i64;
/// A clinician's id.
pub type ClinicianId = i64;
/// A token's id: the only way a token is named in logs and the audit log.
pub type TokenId = i64;

/// A patient as the service stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Patient {
    /// The patient's id.
    pub id: PatientId,
    /// The name shown to clinicians (PHI: never logged).
    pub display_name: String,
    /// When the patient was registered.
    pub created_at: DateTime<Utc>,
    /// IANA time zone for local-time views; `None` reads as UTC.
    pub time_zone: Option<String>,
}

/// A Nightscout treatment or device status, normalised
/// (`crate::nightscout::care`).
#[derive(Debug, Clone, PartialEq)]
pub struct NsDocument {
    /// Its `created_at`.
    pub time: DateTime<Utc>,
    /// The treatment's `eventType` or the status's `device`.
    pub kind: String,
    /// The normalised JSON document.
    pub document: String,
}

/// One glucose data point as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    /// When it was measured.
    pub time: DateTime<Utc>,
    /// Glucose, mg/dL.
    pub mg_dl: f64,
    /// The stored device id or serial that measured it.
    pub device: String,
    /// Held back by the phone's reduction and reconstructed here, within
    /// the reduction's tolerance of what the sensor measured.
    pub held_back: bool,
}

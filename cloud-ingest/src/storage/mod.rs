//! Storage: the one interface between the service and its database.
//!
//! Everything above this module (auth, routes, the admin CLI) talks to a
//! [`Storage`] and never to SQL. The decisions that shaped it:
//!
//! - [`Storage`] is the union of small traits by concern: [`Directory`]
//!   (patients, clinicians, tokens, sessions, Nightscout secrets),
//!   [`Audit`], [`Readings`] (batches, readings, Nightscout documents, day
//!   summaries, precedence), [`Alerts`] (alerts, acks, heartbeats, the
//!   dead-man's switch) and [`Webhooks`]. Import [`prelude`] to call them
//!   on a concrete backend.
//! - Rules live above the backends, once: each trait's provided methods
//!   check their input and turn what the rows said into the contract's
//!   error ([`rules`]); a backend implements the `*_row` methods and only
//!   maps to rows (`sqlite/`, `postgres/`, one file per concern each).
//!
//! - The trait is synchronous and object-safe, and [`Store`] runs each call
//!   on tokio's blocking pool. rusqlite is blocking; a PostgreSQL backend can
//!   use a blocking client the same way (or wrap an async pool with
//!   `Handle::block_on` inside the blocking task), so one trait serves both
//!   without an async-trait object in every handler.
//! - Backends own their schema through numbered `NNNN_verb_object.sql`
//!   migrations embedded in the binary and applied at open, recorded in a
//!   `schema_migrations` table; PostgreSQL (`storage/postgres/`) follows
//!   the same numbered list in its own dialect (`migrations/postgres/`).
//! - [`open`] picks the backend from the `--database` value: a
//!   `postgres://` URL or a SQLite file path.
//!
//! Intake types ([`NewBatch`], [`NewAlert`], ...) are plain data in the
//! wire protocol's vocabulary (`vigil_model` streams and acks), so a backend
//! only maps them to rows; the rules (validation, skew, reconstruction) live
//! in the routes, once.

mod alerts;
mod audit;
mod directory;
pub mod intake;
pub mod postgres;
pub mod prelude;
mod readings;
pub mod rules;
pub mod sqlite;
mod webhooks;

pub use alerts::Alerts;
pub use audit::Audit;
pub use directory::Directory;
pub use postgres::notify as pg_notify;
pub use readings::Readings;
pub use webhooks::Webhooks;

pub use intake::*;

use std::sync::Arc;

use vigil_model::wire::BatchAck;

use crate::domain::NewAuditEntry;

use crate::error::Result;

/// The glucose units a clinician may read the dashboard in, as stored.
pub const CLINICIAN_UNITS: [&str; 2] = ["mgdl", "mmol"];

/// The migrations every backend applies, in order: (version, name, SQL).
/// Versions are dense and start at 1; a backend records each applied one.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "0001_create_patients",
        include_str!("../../migrations/0001_create_patients.sql"),
    ),
    (
        2,
        "0002_create_clinicians",
        include_str!("../../migrations/0002_create_clinicians.sql"),
    ),
    (
        3,
        "0003_create_tokens",
        include_str!("../../migrations/0003_create_tokens.sql"),
    ),
    (
        4,
        "0004_create_audit_log",
        include_str!("../../migrations/0004_create_audit_log.sql"),
    ),
    (
        5,
        "0005_create_batches",
        include_str!("../../migrations/0005_create_batches.sql"),
    ),
    (
        6,
        "0006_create_readings",
        include_str!("../../migrations/0006_create_readings.sql"),
    ),
    (
        7,
        "0007_create_alerts",
        include_str!("../../migrations/0007_create_alerts.sql"),
    ),
    (
        8,
        "0008_create_contact",
        include_str!("../../migrations/0008_create_contact.sql"),
    ),
    (
        9,
        "0009_create_dashboard_sessions",
        include_str!("../../migrations/0009_create_dashboard_sessions.sql"),
    ),
    (
        10,
        "0010_create_nightscout_secrets",
        include_str!("../../migrations/0010_create_nightscout_secrets.sql"),
    ),
    (
        11,
        "0011_create_webhooks",
        include_str!("../../migrations/0011_create_webhooks.sql"),
    ),
    (
        12,
        "0012_add_patient_time_zone",
        include_str!("../../migrations/0012_add_patient_time_zone.sql"),
    ),
    (
        13,
        "0013_add_alert_event_phone_time",
        include_str!("../../migrations/0013_add_alert_event_phone_time.sql"),
    ),
    (
        14,
        "0014_create_precedence_policies",
        include_str!("../../migrations/0014_create_precedence_policies.sql"),
    ),
    (
        15,
        "0015_create_nightscout_documents",
        include_str!("../../migrations/0015_create_nightscout_documents.sql"),
    ),
    (
        16,
        "0016_add_audit_credential",
        include_str!("../../migrations/0016_add_audit_credential.sql"),
    ),
    (
        17,
        "0017_nightscout_entry_trends",
        include_str!("../../migrations/0017_nightscout_entry_trends.sql"),
    ),
    (
        18,
        "0018_add_clinician_glucose_unit",
        include_str!("../../migrations/0018_add_clinician_glucose_unit.sql"),
    ),
    (
        19,
        "0019_create_glucose_days",
        include_str!("../../migrations/0019_create_glucose_days.sql"),
    ),
    (
        20,
        "0020_drop_intake_foreign_keys",
        include_str!("../../migrations/0020_drop_intake_foreign_keys.sql"),
    ),
    (
        21,
        "0021_drop_readings_id_index",
        include_str!("../../migrations/0021_drop_readings_id_index.sql"),
    ),
    (
        22,
        "0022_partition_readings_by_month",
        include_str!("../../migrations/0022_partition_readings_by_month.sql"),
    ),
    (
        23,
        "0023_add_glucose_day_tail",
        include_str!("../../migrations/0023_add_glucose_day_tail.sql"),
    ),
];

/// The storage contract: the union of the concerns, plus the database's
/// own health. Every backend passes the same suite
/// (`tests/storage_contract.rs`). Calls block; use them through [`Store`]
/// from async code, with [`prelude`] in scope to call a concern's methods.
pub trait Storage: Directory + Audit + Readings + Alerts + Webhooks + 'static {
    /// Succeeds when the database answers a trivial query (`/readyz`).
    fn ping(&self) -> Result<()>;
    /// The highest migration version applied.
    fn schema_version(&self) -> Result<u32>;
    /// Makes what storage needs before time reaches it: on PostgreSQL the
    /// readings partitions of the month holding `now` and the next ones,
    /// moving their rows out of the default partition. Idempotent; run at
    /// open and daily ([`crate::upkeep`]). Returns what it made, by name.
    /// A backend without partitions (SQLite) has nothing to do.
    fn ensure_partitions(&self, _now: chrono::DateTime<chrono::Utc>) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    // Intake writes with their audit entry. A backend with transactions
    // over a network (PostgreSQL) writes both in one transaction: one
    // commit a request instead of two. These defaults make two calls; the
    // entry's action is checked first either way.

    /// [`Readings::store_batch`] and [`Audit::append_audit`] of `audit`.
    fn store_batch_audited(&self, batch: &NewBatch, audit: &NewAuditEntry) -> Result<BatchAck> {
        rules::audit_action(&audit.action)?;
        let ack = self.store_batch(batch)?;
        self.insert_audit_row(audit)?;
        Ok(ack)
    }
    /// [`Alerts::store_alert`] (with contact) and the audit entry.
    fn store_alert_audited(&self, alert: &NewAlert, audit: &NewAuditEntry) -> Result<bool> {
        rules::audit_action(&audit.action)?;
        let fresh = self.store_alert(alert, true)?;
        self.insert_audit_row(audit)?;
        Ok(fresh)
    }
    /// [`Alerts::store_heartbeat`] and the audit entry.
    fn store_heartbeat_audited(&self, hb: &NewHeartbeat, audit: &NewAuditEntry) -> Result<()> {
        rules::audit_action(&audit.action)?;
        self.store_heartbeat(hb)?;
        self.insert_audit_row(audit).map(drop)
    }
    /// [`Alerts::record_contact`] and the audit entry.
    fn record_contact_audited(
        &self,
        patient: crate::domain::PatientId,
        at: chrono::DateTime<chrono::Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()> {
        rules::audit_action(&audit.action)?;
        self.record_contact(patient, at)?;
        self.insert_audit_row(audit).map(drop)
    }
}

/// Opens the backend `database` names: PostgreSQL for a `postgres://` or
/// `postgresql://` URL, else the SQLite file at that path (created when
/// missing). Migrations are applied either way.
pub fn open(database: &std::path::Path) -> Result<Store> {
    match database.to_str() {
        Some(url) if postgres::is_postgres_url(url) => {
            Ok(Store::new(postgres::PostgresStorage::connect(url)?))
        }
        _ => Ok(Store::new(sqlite::SqliteStorage::open(database)?)),
    }
}

/// A cheap, cloneable async handle to a [`Storage`] backend.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn Storage>,
}

impl Store {
    /// Wraps a backend.
    pub fn new(backend: impl Storage) -> Self {
        Self {
            inner: Arc::new(backend),
        }
    }

    /// Runs one blocking storage call on tokio's blocking pool so a slow
    /// query never stalls the request-handling threads.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Storage) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(inner.as_ref())).await?
    }

    /// The backend, for blocking callers (the admin CLI, tests).
    pub fn blocking(&self) -> &dyn Storage {
        self.inner.as_ref()
    }
}

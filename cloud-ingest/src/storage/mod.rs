//! Storage: the one interface between the service and its database.
//!
//! Everything above this module (auth, routes, the admin CLI) talks to a
//! [`Storage`] and never to SQL. Two decisions shaped it:
//!
//! - The trait is synchronous and object-safe, and [`Store`] runs each call
//!   on tokio's blocking pool. rusqlite is blocking; a PostgreSQL backend can
//!   use a blocking client the same way (or wrap an async pool with
//!   `Handle::block_on` inside the blocking task), so one trait serves both
//!   without an async-trait object in every handler.
//! - Backends own their schema through numbered `NNNN_verb_object.sql`
//!   migrations embedded in the binary and applied at open, recorded in a
//!   `schema_migrations` table; PostgreSQL (`storage/postgres.rs`) follows
//!   the same numbered list in its own dialect (`migrations/postgres/`).
//! - [`open`] picks the backend from the `--database` value: a
//!   `postgres://` URL or a SQLite file path.
//!
//! Intake types ([`NewBatch`], [`NewAlert`], ...) are plain data in the
//! wire protocol's vocabulary (`vigil_model` streams and acks), so a backend
//! only maps them to rows; the rules (validation, skew, reconstruction) live
//! in the routes, once.

pub mod intake;
pub mod postgres;
pub mod sqlite;

pub use postgres::notify as pg_notify;

pub use intake::*;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::{
    Attempt, AuditEntry, ClinicianId, CredentialKind, DeliveryId, DeliveryLog, DueDelivery,
    EventKind, NewAuditEntry, NewToken, NewWebhook, NsDocument, Patient, PatientId, SecretHash,
    TokenHash, TokenId, TokenRecord, Webhook, WebhookId,
};
use crate::error::Result;

/// The glucose units a clinician may read the dashboard in, as stored.
pub const CLINICIAN_UNITS: [&str; 2] = ["mgdl", "mmol"];

/// The one check of a clinician unit, for every backend.
pub(crate) fn check_clinician_unit(unit: &str) -> crate::error::Result<()> {
    if CLINICIAN_UNITS.contains(&unit) {
        Ok(())
    } else {
        Err(crate::error::Error::InvalidInput(
            "the glucose unit must be mgdl or mmol".into(),
        ))
    }
}

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
];

/// The storage contract. Every backend passes the same suite
/// (`tests/storage_contract.rs`). Calls block; use them through [`Store`]
/// from async code.
pub trait Storage: Send + Sync + 'static {
    /// Succeeds when the database answers a trivial query (`/readyz`).
    fn ping(&self) -> Result<()>;
    /// The highest migration version applied.
    fn schema_version(&self) -> Result<u32>;
    /// Registers a patient and returns its new id.
    fn add_patient(&self, display_name: &str) -> Result<PatientId>;
    /// The patient with this id, if any.
    fn patient(&self, id: PatientId) -> Result<Option<Patient>>;
    /// Sets a patient's IANA time zone (validated by the caller); `false`
    /// for an unknown patient.
    fn set_patient_time_zone(&self, id: PatientId, time_zone: &str) -> Result<bool>;
    /// `patient`'s stored precedence policy for `quantity` (its JSON
    /// document), or `None` for the product default.
    fn precedence_policy(&self, patient: PatientId, quantity: &str) -> Result<Option<String>>;
    /// Stores `patient`'s precedence policy for `quantity` (already
    /// validated), replacing any earlier one; false when no such patient.
    fn set_precedence_policy(
        &self,
        patient: PatientId,
        quantity: &str,
        policy: &str,
        by: Option<TokenId>,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Stores Nightscout documents of `collection` (`treatments` or
    /// `devicestatus`) for `patient` in one transaction; one already stored
    /// (same time and kind) is skipped. Returns how many were new.
    fn store_ns_documents(
        &self,
        patient: PatientId,
        collection: &str,
        documents: &[NsDocument],
    ) -> Result<u64>;
    /// `patient`'s documents of `collection` with a time in `[from, to)`,
    /// newest first, at most `limit`.
    fn ns_documents(
        &self,
        patient: PatientId,
        collection: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NsDocument>>;
    /// Registers a clinician; [`crate::Error::Conflict`] if the name is taken.
    fn add_clinician(&self, name: &str) -> Result<ClinicianId>;
    /// The clinician with this exact name, if any.
    fn clinician_by_name(&self, name: &str) -> Result<Option<ClinicianId>>;
    /// Assigns a patient to a clinician; assigning twice is a no-op.
    /// [`crate::Error::NotFound`] if either does not exist.
    fn assign(&self, clinician: ClinicianId, patient: PatientId) -> Result<()>;
    /// The patients assigned to a clinician, by id.
    fn assigned_patients(&self, clinician: ClinicianId) -> Result<Vec<Patient>>;
    /// Whether the clinician is assigned this patient.
    fn is_assigned(&self, clinician: ClinicianId, patient: PatientId) -> Result<bool>;
    /// The glucose unit the clinician reads the dashboard in (`mgdl` or
    /// `mmol`); [`crate::Error::NotFound`] if there is no such clinician.
    fn clinician_unit(&self, clinician: ClinicianId) -> Result<String>;
    /// Sets it; [`crate::Error::InvalidInput`] for another value,
    /// [`crate::Error::NotFound`] if there is no such clinician.
    fn set_clinician_unit(&self, clinician: ClinicianId, unit: &str) -> Result<()>;
    /// Stores a token's hash; [`crate::Error::InvalidInput`] if role and
    /// scope disagree, [`crate::Error::NotFound`] if the linked patient or
    /// clinician does not exist.
    fn insert_token(&self, token: &NewToken) -> Result<TokenId>;
    /// The token stored under this hash, revoked or not.
    fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>>;
    /// Revokes a token; returns false if it did not exist or was revoked.
    fn revoke_token(&self, id: TokenId) -> Result<bool>;
    /// Appends an audit entry. Entries are never updated or deleted.
    fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64>;
    /// Appends many audit entries at once, all or none: a page that reads
    /// hundreds of patients (the triage list) audits each of them without
    /// a round trip apiece.
    fn append_audits(&self, entries: &[NewAuditEntry]) -> Result<()>;
    /// Audit entries with id greater than `after`, oldest first, at most
    /// `limit` of them.
    fn audit_entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>>;

    /// Stores a dashboard session (only the hash of its id) acting as
    /// `token`, valid until `expires_at`. Unknown token: `NotFound`.
    fn create_session(
        &self,
        hash: &TokenHash,
        token: TokenId,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// The token a session acts as, if the session exists and has not
    /// expired at `now` (the token itself may be revoked: the caller checks).
    fn session_token(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<TokenRecord>>;
    /// Ends a session; true if it existed. Also drops every session expired
    /// at `now`, so the table does not grow without bound.
    fn delete_session(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<bool>;

    /// Ends every dashboard session of `clinician` (any of their tokens);
    /// returns how many there were. Open live streams of those sessions end
    /// at their next credential check.
    fn end_clinician_sessions(&self, clinician: ClinicianId) -> Result<u64>;
    /// Sets (or replaces) a patient's Nightscout secret hash. Unknown
    /// patient: `NotFound`; a hash another patient already uses: `Conflict`.
    fn set_nightscout_secret(&self, patient: PatientId, hash: &SecretHash) -> Result<()>;
    /// The patient whose Nightscout secret hashes to `hash`.
    fn nightscout_patient(&self, hash: &SecretHash) -> Result<Option<PatientId>>;
    /// Deletes `patient`'s readings from `device` with time in `[from,
    /// to)`; returns how many (Nightscout's DELETE: an owner removes what
    /// they uploaded through Nightscout, nothing a phone synced).
    fn delete_readings(
        &self,
        patient: PatientId,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64>;

    /// Stores a validated batch in one transaction and answers with what is
    /// durably stored. A batch id seen before returns the ack stored with it
    /// (`duplicate: true`) and writes nothing; a reading whose key is stored
    /// counts as stored when its value is the same and is rejected as
    /// `conflict` otherwise. Build the answer with [`assemble_ack`]. Also
    /// records the patient's last contact (the dead-man's switch).
    fn store_batch(&self, batch: &NewBatch) -> Result<vigil_model::wire::BatchAck>;
    /// The latest stored kept reading of one stream and session strictly
    /// before `at` (reconstructing a held-back reading whose earlier
    /// neighbour arrived in an earlier batch).
    fn kept_reading_before(
        &self,
        key: &SeriesKey,
        at: DateTime<Utc>,
    ) -> Result<Option<StoredReading>>;
    /// Readings of a patient in `[from, to)`, by time then id, at most
    /// `limit`; `stream` narrows to one stream.
    fn readings(&self, query: &ReadingQuery) -> Result<Vec<StoredReading>>;
    /// Stores an alert event once by (patient, alert id, phase, time);
    /// returns true when it was new. Also records the patient's contact
    /// when `contact` is set (an alert posted by the phone).
    fn store_alert(&self, alert: &NewAlert, contact: bool) -> Result<bool>;
    /// Alert events of these patients at or after `since`, oldest first, at
    /// most `limit`.
    fn alerts_for(
        &self,
        patients: &[PatientId],
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>>;
    /// The patients having an alert episode with this id (normally one).
    fn alert_patients(&self, alert_id: &str) -> Result<Vec<PatientId>>;
    /// Records that `token` acknowledged the episode; returns false when
    /// it had already (the first acknowledgement's time stands).
    fn ack_alert(
        &self,
        patient: PatientId,
        alert_id: &str,
        token: TokenId,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Acknowledgements of an episode, oldest first.
    fn alert_acks(&self, patient: PatientId, alert_id: &str) -> Result<Vec<AlertAckRecord>>;
    /// Keeps the heartbeat when it is the patient's latest by `sent_at`,
    /// and records the contact either way.
    fn store_heartbeat(&self, heartbeat: &NewHeartbeat) -> Result<()>;
    /// Records contact from the patient's phone at `at` (a body-less
    /// heartbeat: the dead-man's switch hears it, the latest health report
    /// stays as it was).
    fn record_contact(&self, patient: PatientId, at: DateTime<Utc>) -> Result<()>;
    /// The patient's latest heartbeat, if any.
    fn latest_heartbeat(&self, patient: PatientId) -> Result<Option<NewHeartbeat>>;
    /// Every patient the service has heard from, with the dead-man's
    /// switch state.
    fn contacts(&self) -> Result<Vec<Contact>>;
    /// Opens (`Some`) or closes (`None`) the patient's `app_silent`
    /// episode. Opening succeeds only when none is open and closing only
    /// when `expected` names the open one, so two replicas running the
    /// switch never both act; returns whether this call changed the state.
    fn set_silence(
        &self,
        patient: PatientId,
        expected: Option<&str>,
        silence: Option<&Silence>,
    ) -> Result<bool>;
    /// Registers a webhook; [`crate::Error::InvalidInput`] for an empty
    /// event list.
    fn add_webhook(&self, hook: &NewWebhook) -> Result<WebhookId>;
    /// Day summaries of `scope` for days in `[from_day, to_day)`, current or
    /// not (`GlucoseDay::current`), by patient then day.
    fn glucose_days(&self, scope: DayScope, from_day: i64, to_day: i64) -> Result<Vec<GlucoseDay>>;
    /// The day summaries of `scope` in `[from_day, to_day)` that are not
    /// current (a write since they were computed, or never computed).
    fn stale_glucose_days(
        &self,
        scope: DayScope,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<StaleDay>>;
    /// Stores the counts computed for a stale day read at `generation`; a
    /// write since then leaves the row stale and returns false.
    fn put_glucose_day(
        &self,
        patient: PatientId,
        day: i64,
        generation: i64,
        counts: &DayCounts,
    ) -> Result<bool>;
    /// The registered, enabled webhooks, by id.
    fn webhooks(&self) -> Result<Vec<Webhook>>;
    /// Queues one delivery of `body` per enabled webhook subscribed to
    /// `kind`, due at `at`; returns how many.
    fn enqueue_webhook_event(&self, kind: EventKind, body: &str, at: DateTime<Utc>) -> Result<u64>;
    /// Deliveries due at `now`, oldest first, at most `limit`.
    fn due_webhook_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueDelivery>>;
    /// Records an attempt: delivered, or failed with its next time (none:
    /// given up). [`crate::Error::NotFound`] for an unknown delivery.
    fn record_webhook_attempt(&self, id: DeliveryId, attempt: &Attempt) -> Result<()>;
    /// A webhook's deliveries, oldest first: the delivery log.
    fn webhook_deliveries(&self, webhook: WebhookId) -> Result<Vec<DeliveryLog>>;
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

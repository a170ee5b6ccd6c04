//! The PostgreSQL backend: the scale path, stateless ingest replicas over one
//! database.
//!
//! Decisions:
//! - rust-postgres's blocking `postgres` client, because the [`Storage`]
//!   trait is synchronous and already runs on tokio's blocking pool; an async
//!   client would need a `block_on` per call for nothing.
//! - r2d2 pools the connections ([`Pool`]): at most [`POOL_SIZE`], a
//!   bounded wait for one ([`POOL_WAIT`]), broken ones dropped on return,
//!   idle and old ones closed by its reaper. [`Target`] opens them, with the
//!   TLS connector chosen per URL in one place.
//! - TLS through rustls (ring provider, webpki roots plus an optional
//!   `VIGIL_DATABASE_CA` PEM file), required for any host off loopback; a
//!   loopback host or a Unix socket connects plainly. No OpenSSL.
//! - The same numbered migrations as SQLite ([`MIGRATIONS`]), written in
//!   PostgreSQL's dialect, each applied in its own transaction under an
//!   advisory lock so replicas starting together migrate once.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::config::{Host, SslMode};
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls, Row};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;
use vigil_model::wire::BatchAck;

use crate::storage::Storage;
mod intake;
pub mod notify;

use crate::domain::SecretHash;
use crate::domain::{
    Attempt, DeliveryId, DeliveryLog, DueDelivery, EventKind, NewWebhook, Webhook, WebhookId,
};
use crate::domain::{
    AuditEntry, ClinicianId, NewAuditEntry, NewToken, NsDocument, Patient, PatientId, TokenId,
    TokenRecord, TokenScope,
};
use crate::domain::{Role, TokenHash};
use crate::error::{Error, Result};
use crate::storage::{
    AlertAckRecord, Contact, DayCounts, DayScope, GlucoseDay, NewAlert, NewBatch, NewHeartbeat,
    ReadingQuery, SeriesKey, Silence, StaleDay, StoredAlert, StoredReading,
};
use intake as pg_intake;

/// The PostgreSQL migrations: the same versions and names as
/// [`crate::storage::MIGRATIONS`], in PostgreSQL's dialect.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "0001_create_patients",
        include_str!("../../../migrations/postgres/0001_create_patients.sql"),
    ),
    (
        2,
        "0002_create_clinicians",
        include_str!("../../../migrations/postgres/0002_create_clinicians.sql"),
    ),
    (
        3,
        "0003_create_tokens",
        include_str!("../../../migrations/postgres/0003_create_tokens.sql"),
    ),
    (
        4,
        "0004_create_audit_log",
        include_str!("../../../migrations/postgres/0004_create_audit_log.sql"),
    ),
    (
        5,
        "0005_create_batches",
        include_str!("../../../migrations/postgres/0005_create_batches.sql"),
    ),
    (
        6,
        "0006_create_readings",
        include_str!("../../../migrations/postgres/0006_create_readings.sql"),
    ),
    (
        7,
        "0007_create_alerts",
        include_str!("../../../migrations/postgres/0007_create_alerts.sql"),
    ),
    (
        8,
        "0008_create_contact",
        include_str!("../../../migrations/postgres/0008_create_contact.sql"),
    ),
    (
        9,
        "0009_create_dashboard_sessions",
        include_str!("../../../migrations/postgres/0009_create_dashboard_sessions.sql"),
    ),
    (
        10,
        "0010_create_nightscout_secrets",
        include_str!("../../../migrations/postgres/0010_create_nightscout_secrets.sql"),
    ),
    (
        11,
        "0011_create_webhooks",
        include_str!("../../../migrations/postgres/0011_create_webhooks.sql"),
    ),
    (
        12,
        "0012_add_patient_time_zone",
        include_str!("../../../migrations/postgres/0012_add_patient_time_zone.sql"),
    ),
    (
        13,
        "0013_add_alert_event_phone_time",
        include_str!("../../../migrations/postgres/0013_add_alert_event_phone_time.sql"),
    ),
    (
        14,
        "0014_create_precedence_policies",
        include_str!("../../../migrations/postgres/0014_create_precedence_policies.sql"),
    ),
    (
        15,
        "0015_create_nightscout_documents",
        include_str!("../../../migrations/postgres/0015_create_nightscout_documents.sql"),
    ),
    (
        16,
        "0016_add_audit_credential",
        include_str!("../../../migrations/postgres/0016_add_audit_credential.sql"),
    ),
    (
        17,
        "0017_nightscout_entry_trends",
        include_str!("../../../migrations/postgres/0017_nightscout_entry_trends.sql"),
    ),
    (
        18,
        "0018_add_clinician_glucose_unit",
        include_str!("../../../migrations/postgres/0018_add_clinician_glucose_unit.sql"),
    ),
    (
        19,
        "0019_create_glucose_days",
        include_str!("../../../migrations/postgres/0019_create_glucose_days.sql"),
    ),
];

/// Connections a replica opens at most. The blocking pool runs many more
/// threads; beyond this they queue for a connection.
pub const POOL_SIZE: u32 = 16;

/// How long a call waits for a free connection before failing.
pub const POOL_WAIT: Duration = Duration::from_secs(10);

/// Key of the advisory lock held while migrating (any constant works; this
/// one spells "vigil").
const MIGRATION_LOCK: i64 = 0x76_69_67_69_6c;

/// Whether `url` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// How connections are made: plain on loopback, rustls elsewhere.
#[derive(Clone)]
pub enum Connector {
    /// Loopback host or Unix socket: no TLS.
    Plain,
    /// Any other host: TLS required.
    Tls(MakeRustlsConnect),
}

/// A parsed database URL and its connector: everything needed to open one
/// more connection (the pool, the LISTEN thread).
#[derive(Clone)]
pub struct Target {
    config: Config,
    connector: Connector,
}

impl Target {
    /// Parses a `postgres://` URL and picks the connector. Off loopback, TLS
    /// is required; `sslmode=disable` there is refused.
    pub fn parse(url: &str) -> Result<Self> {
        let mut config =
            Config::from_str(url).map_err(|e| Error::Config(format!("bad PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("vigil-ingest");
        }
        let connector = if all_loopback(config.get_hosts()) {
            Connector::Plain
        } else {
            if config.get_ssl_mode() == SslMode::Disable {
                return Err(Error::Config(
                    "sslmode=disable is refused for a PostgreSQL host off loopback".into(),
                ));
            }
            config.ssl_mode(SslMode::Require);
            Connector::Tls(MakeRustlsConnect::new(tls_config()?))
        };
        Ok(Self { config, connector })
    }

    /// Whether connections use TLS.
    pub fn uses_tls(&self) -> bool {
        matches!(self.connector, Connector::Tls(_))
    }

    /// Opens one new connection.
    pub fn connect(&self) -> Result<Client> {
        Self::connect_with(&self.config, &self.connector)
    }

    /// Opens one new connection that names itself `application_name` in
    /// `pg_stat_activity` (operators can tell the LISTEN connection apart).
    pub fn connect_as(&self, application_name: &str) -> Result<Client> {
        let mut config = self.config.clone();
        config.application_name(application_name);
        Self::connect_with(&config, &self.connector)
    }

    fn connect_with(config: &Config, connector: &Connector) -> Result<Client> {
        Ok(match connector {
            Connector::Plain => config.connect(NoTls)?,
            Connector::Tls(tls) => config.connect(tls.clone())?,
        })
    }
}

fn all_loopback(hosts: &[Host]) -> bool {
    !hosts.is_empty()
        && hosts.iter().all(|h| match h {
            Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .trim_matches(|c| c == '[' || c == ']')
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            #[cfg(unix)]
            Host::Unix(_) => true,
        })
}

fn tls_config() -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = std::env::var_os("VIGIL_DATABASE_CA") {
        for cert in CertificateDer::pem_file_iter(&path)
            .map_err(|e| Error::Config(format!("reading VIGIL_DATABASE_CA: {e}")))?
        {
            let cert = cert.map_err(|e| Error::Config(format!("VIGIL_DATABASE_CA: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::Config(format!("VIGIL_DATABASE_CA: {e}")))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Config(format!("TLS configuration: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Opens connections for r2d2 and tells it which are broken.
pub struct Manager(Target);

impl r2d2::ManageConnection for Manager {
    type Connection = Client;
    type Error = Error;

    fn connect(&self) -> Result<Client> {
        self.0.connect()
    }

    fn is_valid(&self, conn: &mut Client) -> Result<()> {
        conn.simple_query("")?;
        Ok(())
    }

    fn has_broken(&self, conn: &mut Client) -> bool {
        conn.is_closed()
    }
}

/// A bounded pool of blocking connections to one [`Target`].
pub struct Pool {
    target: Target,
    // Always `Some` until drop, which hands it to a plain thread.
    inner: Option<r2d2::Pool<Manager>>,
}

/// A connection borrowed from the [`Pool`]; returned on drop unless broken.
pub type Pooled = r2d2::PooledConnection<Manager>;

impl Pool {
    /// A pool of at most `max` connections to `target`; opens none yet (the
    /// first call connects, so a server that is down fails that call with
    /// its own error rather than the constructor with a timeout).
    pub fn new(target: Target, max: u32) -> Self {
        let inner = r2d2::Pool::builder()
            .max_size(max.max(1))
            .min_idle(Some(0))
            // A checkout costs no round trip: a connection the server closed
            // shows as closed and is dropped, and the failed call's error
            // reaches its caller like any other database error.
            .test_on_check_out(false)
            .connection_timeout(POOL_WAIT)
            .error_handler(Box::new(LogConnectError))
            .build_unchecked(Manager(target.clone()));
        Self {
            target,
            inner: Some(inner),
        }
    }

    /// A connection: an idle one, a new one while under the limit, or the
    /// next one returned within [`POOL_WAIT`].
    pub fn get(&self) -> Result<Pooled> {
        let Some(pool) = &self.inner else {
            return Err(Error::Postgres("the connection pool is closed".into()));
        };
        pool.get().map_err(|e| {
            Error::Postgres(format!("no database connection within the pool wait ({e})"))
        })
    }
}

/// Logs a failed connection attempt through `tracing` (r2d2's own handler
/// writes to the `log` facade, which this service does not collect). The
/// error is the driver's, naming no credentials.
#[derive(Debug)]
struct LogConnectError;

impl r2d2::HandleError<Error> for LogConnectError {
    fn handle_error(&self, error: Error) {
        tracing::warn!(%error, "PostgreSQL connection attempt failed");
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing a blocking client runs its own small runtime, which tokio
        // forbids on an async worker thread (where the last `Store` clone is
        // often dropped, at shutdown). Drop the pool on a plain thread.
        if let Some(pool) = self.inner.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

/// A [`Storage`] over a PostgreSQL database.
pub struct PostgresStorage {
    pool: Pool,
}

impl PostgresStorage {
    /// Connects to `url` (a `postgres://` URL) and applies every pending
    /// migration. Guarantees the schema is at the latest version on success.
    pub fn connect(url: &str) -> Result<Self> {
        let target = Target::parse(url)?;
        let storage = Self {
            pool: Pool::new(target, POOL_SIZE),
        };
        {
            let mut conn = storage.pool.get().map_err(|e| {
                Error::Config(format!("cannot connect to PostgreSQL at --database: {e}"))
            })?;
            migrate(&mut conn)?;
        }

        Ok(storage)
    }

    /// The connection target, for code that needs a connection of its own
    /// outside the pool (a LISTEN loop).
    pub fn target(&self) -> &Target {
        &self.pool.target
    }

    fn conn(&self) -> Result<Pooled> {
        self.pool.get()
    }
}

fn migrate(conn: &mut Client) -> Result<()> {
    let mut tx = conn.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER     PRIMARY KEY,
             name       TEXT        NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL
         )",
    )?;
    tx.commit()?;
    for (version, name, sql) in MIGRATIONS {
        let version = i32::try_from(*version)
            .map_err(|_| Error::Config(format!("migration {name}: version too large")))?;
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        let applied: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)",
                &[&version],
            )?
            .get(0);
        if !applied {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[&version, name, &Utc::now()],
            )?;
            tracing::info!(version, name, "applied migration");
        }
        tx.commit()?;
    }
    Ok(())
}

fn is_code(e: &postgres::Error, codes: &[&SqlState]) -> bool {
    e.code().is_some_and(|c| codes.contains(&c))
}

fn patient_row(r: &Row) -> Patient {
    Patient {
        id: r.get(0),
        display_name: r.get(1),
        created_at: r.get(2),
        time_zone: r.get(3),
    }
}

impl Storage for PostgresStorage {
    fn ping(&self) -> Result<()> {
        self.conn()?.execute("SELECT 1", &[])?;
        Ok(())
    }

    fn schema_version(&self) -> Result<u32> {
        let v: Option<i32> = self
            .conn()?
            .query_one("SELECT MAX(version) FROM schema_migrations", &[])?
            .get(0);
        Ok(v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0))
    }

    fn add_patient(&self, display_name: &str) -> Result<PatientId> {
        if display_name.trim().is_empty() {
            return Err(Error::InvalidInput("display name is empty".into()));
        }
        Ok(self
            .conn()?
            .query_one(
                "INSERT INTO patients (display_name, created_at) VALUES ($1, $2) RETURNING id",
                &[&display_name, &Utc::now()],
            )?
            .get(0))
    }

    fn patient(&self, id: PatientId) -> Result<Option<Patient>> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT id, display_name, created_at, time_zone FROM patients WHERE id = $1",
                &[&id],
            )?
            .as_ref()
            .map(patient_row))
    }

    fn set_patient_time_zone(&self, id: PatientId, time_zone: &str) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE patients SET time_zone = $1 WHERE id = $2",
            &[&time_zone, &id],
        )?;
        Ok(n == 1)
    }

    fn precedence_policy(&self, patient: PatientId, quantity: &str) -> Result<Option<String>> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT policy FROM precedence_policies WHERE patient_id = $1 AND quantity = $2",
                &[&patient, &quantity],
            )?
            .map(|r| r.get(0)))
    }

    fn set_precedence_policy(
        &self,
        patient: PatientId,
        quantity: &str,
        policy: &str,
        by: Option<TokenId>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut conn = self.conn()?;
        let exists: bool = conn
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1)",
                &[&patient],
            )?
            .get(0);
        if !exists {
            return Ok(false);
        }
        let mut tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO precedence_policies (patient_id, quantity, policy, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (patient_id, quantity) DO UPDATE SET
                 policy = excluded.policy, updated_at = excluded.updated_at,
                 updated_by = excluded.updated_by",
            &[&patient, &quantity, &policy, &at, &by],
        )?;
        // Another policy re-decides every moment: every day summary of the
        // patient's glucose is stale.
        if quantity == vigil_model::precedence::Quantity::Glucose.as_str() {
            tx.execute(
                "UPDATE glucose_days SET stale = stale + 1 WHERE patient_id = $1",
                &[&patient],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    fn store_ns_documents(
        &self,
        patient: PatientId,
        collection: &str,
        documents: &[NsDocument],
    ) -> Result<u64> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let insert = tx.prepare(
            "INSERT INTO nightscout_documents (patient_id, collection, time_ms, kind, document)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (patient_id, collection, time_ms, kind) DO NOTHING",
        )?;
        let mut new = 0u64;
        for d in documents {
            new += tx.execute(
                &insert,
                &[
                    &patient,
                    &collection,
                    &d.time.timestamp_millis(),
                    &d.kind,
                    &d.document,
                ],
            )?;
        }
        tx.commit()?;
        Ok(new)
    }

    fn ns_documents(
        &self,
        patient: PatientId,
        collection: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NsDocument>> {
        let rows = self.conn()?.query(
            "SELECT time_ms, kind, document FROM nightscout_documents
             WHERE patient_id = $1 AND collection = $2 AND time_ms >= $3 AND time_ms < $4
             ORDER BY time_ms DESC, kind LIMIT $5",
            &[
                &patient,
                &collection,
                &from.timestamp_millis(),
                &to.timestamp_millis(),
                &i64::from(limit),
            ],
        )?;
        rows.iter()
            .map(|r| {
                let time = DateTime::from_timestamp_millis(r.get::<_, i64>(0))
                    .ok_or_else(|| Error::Internal("stored document time out of range".into()))?;
                Ok(NsDocument {
                    time,
                    kind: r.get(1),
                    document: r.get(2),
                })
            })
            .collect()
    }

    fn add_clinician(&self, name: &str) -> Result<ClinicianId> {
        if name.trim().is_empty() {
            return Err(Error::InvalidInput("clinician name is empty".into()));
        }
        match self.conn()?.query_one(
            "INSERT INTO clinicians (name, created_at) VALUES ($1, $2) RETURNING id",
            &[&name, &Utc::now()],
        ) {
            Ok(row) => Ok(row.get(0)),
            Err(e) if is_code(&e, &[&SqlState::UNIQUE_VIOLATION]) => {
                Err(Error::Conflict(format!("clinician {name:?} exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn clinician_by_name(&self, name: &str) -> Result<Option<ClinicianId>> {
        Ok(self
            .conn()?
            .query_opt("SELECT id FROM clinicians WHERE name = $1", &[&name])?
            .map(|r| r.get(0)))
    }

    fn assign(&self, clinician: ClinicianId, patient: PatientId) -> Result<()> {
        match self.conn()?.execute(
            "INSERT INTO clinician_patients (clinician_id, patient_id, assigned_at)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&clinician, &patient, &Utc::now()],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, &[&SqlState::FOREIGN_KEY_VIOLATION]) => Err(Error::NotFound(
                format!("clinician {clinician} or patient {patient}"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn assigned_patients(&self, clinician: ClinicianId) -> Result<Vec<Patient>> {
        Ok(self
            .conn()?
            .query(
                "SELECT p.id, p.display_name, p.created_at, p.time_zone
                   FROM clinician_patients cp JOIN patients p ON p.id = cp.patient_id
                  WHERE cp.clinician_id = $1
                  ORDER BY p.id",
                &[&clinician],
            )?
            .iter()
            .map(patient_row)
            .collect())
    }

    fn is_assigned(&self, clinician: ClinicianId, patient: PatientId) -> Result<bool> {
        Ok(self
            .conn()?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM clinician_patients
                                 WHERE clinician_id = $1 AND patient_id = $2)",
                &[&clinician, &patient],
            )?
            .get(0))
    }

    fn clinician_unit(&self, clinician: ClinicianId) -> Result<String> {
        self.conn()?
            .query_opt(
                "SELECT glucose_unit FROM clinicians WHERE id = $1",
                &[&clinician],
            )?
            .map(|r| r.get(0))
            .ok_or(Error::NotFound("clinician".into()))
    }

    fn set_clinician_unit(&self, clinician: ClinicianId, unit: &str) -> Result<()> {
        crate::storage::check_clinician_unit(unit)?;
        let n = self.conn()?.execute(
            "UPDATE clinicians SET glucose_unit = $2 WHERE id = $1",
            &[&clinician, &unit],
        )?;
        if n == 0 {
            return Err(Error::NotFound("clinician".into()));
        }
        Ok(())
    }

    fn insert_token(&self, token: &NewToken) -> Result<TokenId> {
        let (patient, clinician) = match (token.role, token.scope) {
            (Role::Device | Role::Follower, TokenScope::Patient(p)) => (Some(p), None),
            (Role::Clinician, TokenScope::Clinician(c)) => (None, Some(c)),
            (Role::Admin, TokenScope::Admin) => (None, None),
            (role, _) => {
                return Err(Error::InvalidInput(format!(
                    "a {} token cannot have that scope",
                    role.as_str()
                )));
            }
        };
        match self.conn()?.query_one(
            "INSERT INTO tokens (hash, role, patient_id, clinician_id, label, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &token.hash.as_bytes().as_slice(),
                &token.role.as_str(),
                &patient,
                &clinician,
                &token.label,
                &Utc::now(),
            ],
        ) {
            Ok(row) => Ok(row.get(0)),
            Err(e)
                if is_code(
                    &e,
                    &[
                        &SqlState::FOREIGN_KEY_VIOLATION,
                        &SqlState::UNIQUE_VIOLATION,
                        &SqlState::CHECK_VIOLATION,
                    ],
                ) =>
            {
                Err(Error::NotFound(
                    "the token's patient or clinician does not exist".into(),
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>> {
        let row = self.conn()?.query_opt(
            "SELECT id, hash, role, patient_id, clinician_id, revoked_at
               FROM tokens WHERE hash = $1",
            &[&hash.as_bytes().as_slice()],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: TokenId = row.get(0);
        let stored: Vec<u8> = row.get(1);
        let role: String = row.get(2);
        let patient: Option<PatientId> = row.get(3);
        let clinician: Option<ClinicianId> = row.get(4);
        let revoked_at: Option<DateTime<Utc>> = row.get(5);
        let hash = TokenHash::from_slice(&stored)
            .ok_or_else(|| Error::Config(format!("token {id}: stored hash has a bad length")))?;
        let role = Role::parse(&role)
            .ok_or_else(|| Error::Config(format!("token {id}: unknown stored role")))?;
        let scope = match (role, patient, clinician) {
            (Role::Device | Role::Follower, Some(p), None) => TokenScope::Patient(p),
            (Role::Clinician, None, Some(c)) => TokenScope::Clinician(c),
            (Role::Admin, None, None) => TokenScope::Admin,
            _ => {
                return Err(Error::Config(format!(
                    "token {id}: stored scope contradicts its role"
                )));
            }
        };
        Ok(Some(TokenRecord {
            id,
            hash,
            role,
            scope,
            revoked_at,
        }))
    }

    fn revoke_token(&self, id: TokenId) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &Utc::now()],
        )?;
        Ok(n == 1)
    }

    fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64> {
        if entry.action.is_empty() {
            return Err(Error::InvalidInput("audit action is empty".into()));
        }
        Ok(self
            .conn()?
            .query_one(
                "INSERT INTO audit_log (at, credential, token_id, patient_id, action)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &Utc::now(),
                    &entry.credential.as_str(),
                    &entry.token_id,
                    &entry.patient_id,
                    &entry.action,
                ],
            )?
            .get(0))
    }

    fn append_audits(&self, entries: &[NewAuditEntry]) -> Result<()> {
        if entries.iter().any(|e| e.action.is_empty()) {
            return Err(Error::InvalidInput("audit action is empty".into()));
        }
        if entries.is_empty() {
            return Ok(());
        }
        // One statement over parallel arrays: one round trip and one
        // commit for the whole page, however many patients it shows.
        let credential: Vec<&str> = entries.iter().map(|e| e.credential.as_str()).collect();
        let token: Vec<Option<TokenId>> = entries.iter().map(|e| e.token_id).collect();
        let patient: Vec<Option<PatientId>> = entries.iter().map(|e| e.patient_id).collect();
        let action: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        self.conn()?.execute(
            "INSERT INTO audit_log (at, credential, token_id, patient_id, action)
             SELECT $1, c, t, p, a
               FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::text[]) AS u (c, t, p, a)",
            &[&Utc::now(), &credential, &token, &patient, &action],
        )?;
        Ok(())
    }

    fn audit_entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        Ok(self
            .conn()?
            .query(
                "SELECT id, at, token_id, patient_id, action, credential FROM audit_log
                  WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &i64::from(limit)],
            )?
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                at: r.get(1),
                token_id: r.get(2),
                patient_id: r.get(3),
                action: r.get(4),
                credential: crate::storage::CredentialKind::parse(r.get(5)),
            })
            .collect())
    }

    fn store_batch(&self, batch: &NewBatch) -> Result<BatchAck> {
        pg_intake::store_batch(&mut *self.conn()?, batch)
    }

    fn kept_reading_before(
        &self,
        key: &SeriesKey,
        at: DateTime<Utc>,
    ) -> Result<Option<StoredReading>> {
        pg_intake::kept_reading_before(&mut *self.conn()?, key, at)
    }

    fn readings(&self, query: &ReadingQuery) -> Result<Vec<StoredReading>> {
        pg_intake::readings(&mut *self.conn()?, query)
    }

    fn store_alert(&self, alert: &NewAlert, contact: bool) -> Result<bool> {
        pg_intake::store_alert(&mut *self.conn()?, alert, contact)
    }

    fn alerts_for(
        &self,
        patients: &[PatientId],
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>> {
        pg_intake::alerts_for(&mut *self.conn()?, patients, since, limit)
    }

    fn alert_patients(&self, alert_id: &str) -> Result<Vec<PatientId>> {
        pg_intake::alert_patients(&mut *self.conn()?, alert_id)
    }

    fn ack_alert(
        &self,
        patient: PatientId,
        alert_id: &str,
        token: TokenId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        pg_intake::ack_alert(&mut *self.conn()?, patient, alert_id, token, at)
    }

    fn alert_acks(&self, patient: PatientId, alert_id: &str) -> Result<Vec<AlertAckRecord>> {
        pg_intake::alert_acks(&mut *self.conn()?, patient, alert_id)
    }

    fn store_heartbeat(&self, heartbeat: &NewHeartbeat) -> Result<()> {
        pg_intake::store_heartbeat(&mut *self.conn()?, heartbeat)
    }

    fn record_contact(&self, patient: PatientId, at: DateTime<Utc>) -> Result<()> {
        pg_intake::record_contact(&mut *self.conn()?, patient, at)
    }

    fn latest_heartbeat(&self, patient: PatientId) -> Result<Option<NewHeartbeat>> {
        pg_intake::latest_heartbeat(&mut *self.conn()?, patient)
    }

    fn contacts(&self) -> Result<Vec<Contact>> {
        pg_intake::contacts(&mut *self.conn()?)
    }

    fn set_silence(
        &self,
        patient: PatientId,
        expected: Option<&str>,
        silence: Option<&Silence>,
    ) -> Result<bool> {
        pg_intake::set_silence(&mut *self.conn()?, patient, expected, silence)
    }
    fn create_session(
        &self,
        hash: &TokenHash,
        token: TokenId,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        match self.conn()?.execute(
            "INSERT INTO dashboard_sessions (hash, token_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[
                &hash.as_bytes().as_slice(),
                &token,
                &Utc::now(),
                &expires_at,
            ],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, &[&SqlState::FOREIGN_KEY_VIOLATION]) => {
                Err(Error::NotFound("the session's token does not exist".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn session_token(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<TokenRecord>> {
        let row = self.conn()?.query_opt(
            "SELECT t.hash FROM dashboard_sessions s JOIN tokens t ON t.id = s.token_id
              WHERE s.hash = $1 AND s.expires_at > $2",
            &[&hash.as_bytes().as_slice(), &now],
        )?;
        let token_hash = row.and_then(|r| TokenHash::from_slice(r.get::<_, &[u8]>(0)));
        match token_hash {
            Some(h) => self.token_by_hash(&h),
            None => Ok(None),
        }
    }

    fn delete_session(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<bool> {
        let mut conn = self.conn()?;
        let n = conn.execute(
            "DELETE FROM dashboard_sessions WHERE hash = $1",
            &[&hash.as_bytes().as_slice()],
        )?;
        conn.execute(
            "DELETE FROM dashboard_sessions WHERE expires_at <= $1",
            &[&now],
        )?;
        Ok(n == 1)
    }

    fn end_clinician_sessions(&self, clinician: ClinicianId) -> Result<u64> {
        let n = self.conn()?.execute(
            "DELETE FROM dashboard_sessions WHERE token_id IN
                 (SELECT id FROM tokens WHERE clinician_id = $1)",
            &[&clinician],
        )?;
        Ok(n)
    }

    fn set_nightscout_secret(&self, patient: PatientId, hash: &SecretHash) -> Result<()> {
        let mut conn = self.conn()?;
        let exists: bool = conn
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1)",
                &[&patient],
            )?
            .get(0);
        if !exists {
            return Err(Error::NotFound(format!("patient {patient}")));
        }
        match conn.execute(
            "INSERT INTO nightscout_secrets (patient_id, hash, set_at) VALUES ($1, $2, $3)
             ON CONFLICT (patient_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
            &[&patient, &hash.0, &Utc::now()],
        ) {
            Ok(_) => Ok(()),
            Err(e)
                if is_code(
                    &e,
                    &[&SqlState::UNIQUE_VIOLATION, &SqlState::CHECK_VIOLATION],
                ) =>
            {
                Err(Error::Conflict(
                    "another patient already uses that Nightscout secret".into(),
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn nightscout_patient(&self, hash: &SecretHash) -> Result<Option<PatientId>> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT patient_id FROM nightscout_secrets WHERE hash = $1",
                &[&hash.0],
            )?
            .map(|r| r.get(0)))
    }

    fn delete_readings(
        &self,
        patient: PatientId,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM readings WHERE patient_id = $1 AND device = $2 AND time >= $3 AND time < $4",
            &[
                &patient,
                &device,
                &crate::storage::intake::micros(from),
                &crate::storage::intake::micros(to),
            ],
        )?;
        if n > 0 {
            tx.execute(
                "UPDATE glucose_days SET stale = stale + 1
                  WHERE patient_id = $1 AND day >= $2 AND day <= $3",
                &[
                    &patient,
                    &crate::storage::day_of(from),
                    &crate::storage::day_of(to - chrono::TimeDelta::microseconds(1)),
                ],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    fn glucose_days(&self, scope: DayScope, from_day: i64, to_day: i64) -> Result<Vec<GlucoseDay>> {
        pg_intake::glucose_days(&mut *self.conn()?, scope, from_day, to_day)
    }

    fn stale_glucose_days(
        &self,
        scope: DayScope,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<StaleDay>> {
        pg_intake::stale_glucose_days(&mut *self.conn()?, scope, from_day, to_day)
    }

    fn put_glucose_day(
        &self,
        patient: PatientId,
        day: i64,
        generation: i64,
        counts: &DayCounts,
    ) -> Result<bool> {
        pg_intake::put_glucose_day(&mut *self.conn()?, patient, day, generation, counts)
    }

    fn add_webhook(&self, hook: &NewWebhook) -> Result<WebhookId> {
        if hook.events.is_empty() {
            return Err(Error::InvalidInput("webhook: no events".into()));
        }
        let events = EventKind::join_list(&hook.events);
        Ok(self
            .conn()?
            .query_one(
                "INSERT INTO webhooks (url, events, secret, created_at)
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&hook.url, &events, &hook.secret, &Utc::now()],
            )?
            .get(0))
    }

    fn webhooks(&self) -> Result<Vec<Webhook>> {
        let rows = self.conn()?.query(
            "SELECT id, url, events, created_at FROM webhooks
              WHERE disabled_at IS NULL ORDER BY id",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Webhook {
                    id: r.get(0),
                    url: r.get(1),
                    events: EventKind::parse_list(r.get(2))?,
                    created_at: r.get(3),
                })
            })
            .collect()
    }

    fn enqueue_webhook_event(&self, kind: EventKind, body: &str, at: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let targets = tx.query(
            "SELECT id, events FROM webhooks WHERE disabled_at IS NULL",
            &[],
        )?;
        let mut queued = 0;
        for row in targets {
            let id: i64 = row.get(0);
            if !EventKind::parse_list(row.get(1))?.contains(&kind) {
                continue;
            }
            tx.execute(
                "INSERT INTO webhook_deliveries (webhook_id, event, body, created_at, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $4)",
                &[&id, &kind.as_str(), &body, &at],
            )?;
            queued += 1;
        }
        tx.commit()?;
        Ok(queued)
    }

    fn due_webhook_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueDelivery>> {
        let rows = self.conn()?.query(
            "SELECT d.id, d.event, d.body, d.attempts, w.url, w.secret
               FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
              WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $1
                AND w.disabled_at IS NULL
              ORDER BY d.next_attempt_at, d.id LIMIT $2",
            &[&now, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                let attempts: i32 = r.get(3);
                Ok(DueDelivery {
                    id: r.get(0),
                    event: EventKind::parse(r.get(1))?,
                    body: r.get(2),
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    url: r.get(4),
                    secret: r.get(5),
                })
            })
            .collect()
    }

    fn record_webhook_attempt(&self, id: DeliveryId, attempt: &Attempt) -> Result<()> {
        let mut conn = self.conn()?;
        let changed = match attempt {
            Attempt::Delivered { status, at } => conn.execute(
                "UPDATE webhook_deliveries
                    SET attempts = attempts + 1, delivered_at = $2, next_attempt_at = NULL,
                        last_status = $3, last_error = NULL
                  WHERE id = $1",
                &[&id, at, &i32::from(*status)],
            )?,
            Attempt::Failed {
                status,
                error,
                at,
                retry_at,
            } => {
                let gave_up = if retry_at.is_none() { Some(*at) } else { None };
                conn.execute(
                    "UPDATE webhook_deliveries
                        SET attempts = attempts + 1, next_attempt_at = $2, gave_up_at = $3,
                            last_status = $4, last_error = $5
                      WHERE id = $1",
                    &[&id, retry_at, &gave_up, &status.map(i32::from), error],
                )?
            }
        };
        if changed == 0 {
            return Err(Error::NotFound(format!("webhook delivery {id}")));
        }
        Ok(())
    }

    fn webhook_deliveries(&self, webhook: WebhookId) -> Result<Vec<DeliveryLog>> {
        let rows = self.conn()?.query(
            "SELECT id, event, attempts, delivered_at, gave_up_at, last_status, last_error
               FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id",
            &[&webhook],
        )?;
        rows.iter()
            .map(|r| {
                let attempts: i32 = r.get(2);
                let status: Option<i32> = r.get(5);
                Ok(DeliveryLog {
                    id: r.get(0),
                    event: EventKind::parse(r.get(1))?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    delivered_at: r.get(3),
                    gave_up_at: r.get(4),
                    last_status: status.and_then(|s| u16::try_from(s).ok()),
                    last_error: r.get(6),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_connect_plainly_and_others_require_tls() {
        for url in [
            "postgres://u@127.0.0.1:5/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5/db",
            "postgresql://u@%2Ftmp%2Fpg/db",
        ] {
            assert!(!Target::parse(url).unwrap().uses_tls(), "{url}");
        }
        for url in ["postgres://u@db.example.org/db", "postgres://u@10.0.0.5/db"] {
            assert!(Target::parse(url).unwrap().uses_tls(), "{url}");
        }
        assert!(matches!(
            Target::parse("postgres://u@db.example.org/db?sslmode=disable"),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn migrations_match_the_shared_list_in_version_and_name() {
        let pg: Vec<_> = MIGRATIONS.iter().map(|(v, n, _)| (*v, *n)).collect();
        let shared: Vec<_> = crate::storage::MIGRATIONS
            .iter()
            .map(|(v, n, _)| (*v, *n))
            .collect();
        assert_eq!(pg, shared);
    }
}

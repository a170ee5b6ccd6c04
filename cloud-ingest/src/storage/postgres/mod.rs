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

use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use postgres::{Client, Row};
use vigil_model::wire::BatchAck;

use crate::domain::{NewAuditEntry, Patient, PatientId};
use crate::error::{Error, Result};
use crate::storage::{NewAlert, NewBatch, NewHeartbeat, Storage, rules};

mod alerts;
mod audit;
mod conn;
mod directory;
mod intake;
pub mod notify;
pub mod partitions;
mod pool;
mod readings;
mod webhooks;

pub use conn::{Conn, Tx};
pub use pool::{Connector, Manager, POOL_SIZE, POOL_WAIT, Pool, Pooled, Target};

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
    (
        20,
        "0020_drop_intake_foreign_keys",
        include_str!("../../../migrations/postgres/0020_drop_intake_foreign_keys.sql"),
    ),
    (
        21,
        "0021_drop_readings_id_index",
        include_str!("../../../migrations/postgres/0021_drop_readings_id_index.sql"),
    ),
    (
        22,
        "0022_partition_readings_by_month",
        include_str!("../../../migrations/postgres/0022_partition_readings_by_month.sql"),
    ),
    (
        23,
        "0023_add_glucose_day_tail",
        include_str!("../../../migrations/postgres/0023_add_glucose_day_tail.sql"),
    ),
];

/// Key of the advisory lock held while migrating (any constant works; this
/// one spells "vigil").
const MIGRATION_LOCK: i64 = 0x76_69_67_69_6c;

/// Whether `url` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A [`Storage`] over a PostgreSQL database.
pub struct PostgresStorage {
    pool: Pool,
}

impl PostgresStorage {
    /// Connects to `url` (a `postgres://` URL) and applies every pending
    /// migration. Guarantees the schema is at the latest version, and the
    /// readings partitions of this month and the next
    /// [`partitions::MONTHS_AHEAD`] exist, on success.
    pub fn connect(url: &str) -> Result<Self> {
        let target = Target::parse(url)?;
        let storage = Self {
            pool: Pool::new(target, POOL_SIZE),
        };
        {
            let mut conn = storage.pool.get().map_err(|e| {
                Error::Config(format!("cannot connect to PostgreSQL at --database: {e}"))
            })?;
            migrate(&mut conn, u32::MAX)?;
            for name in partitions::ensure(&mut conn, Utc::now())? {
                tracing::info!(partition = %name, "made a readings partition");
            }
        }

        Ok(storage)
    }

    /// The connection target, for code that needs a connection of its own
    /// outside the pool (a LISTEN loop).
    pub fn target(&self) -> &Target {
        self.pool.target()
    }

    fn conn(&self) -> Result<Pooled> {
        self.pool.get()
    }
}

/// Applies the pending migrations up to version `last`, each in its own
/// transaction under [`MIGRATION_LOCK`]. [`PostgresStorage::connect`]
/// applies them all; a test stops at an older version to build the
/// database a later migration must convert.
pub fn migrate(conn: &mut Client, last: u32) -> Result<()> {
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
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v <= last) {
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

    fn store_batch_audited(&self, batch: &NewBatch, audit: &NewAuditEntry) -> Result<BatchAck> {
        rules::audit_action(&audit.action)?;
        intake::store_batch(&mut *self.conn()?, batch, Some(audit))
    }

    fn store_alert_audited(&self, alert: &NewAlert, audit: &NewAuditEntry) -> Result<bool> {
        rules::audit_action(&audit.action)?;
        intake::store_alert(&mut *self.conn()?, alert, true, Some(audit))
    }

    fn store_heartbeat_audited(&self, hb: &NewHeartbeat, audit: &NewAuditEntry) -> Result<()> {
        rules::audit_action(&audit.action)?;
        intake::store_heartbeat(&mut *self.conn()?, hb, Some(audit))
    }

    fn record_contact_audited(
        &self,
        patient: PatientId,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()> {
        rules::audit_action(&audit.action)?;
        intake::record_contact(&mut *self.conn()?, patient, at, Some(audit))
    }

    fn ensure_partitions(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let mut conn = self.conn()?;
        partitions::ensure(&mut conn, now)
    }

    fn schema_version(&self) -> Result<u32> {
        let v: Option<i32> = self
            .conn()?
            .query_one("SELECT MAX(version) FROM schema_migrations", &[])?
            .get(0);
        Ok(v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

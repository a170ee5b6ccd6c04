//! The embedded SQLite backend: one clinic on one machine, no server to run.
//!
//! One connection behind a mutex: SQLite allows one writer at a time anyway,
//! and the calls here are short indexed lookups and single-row inserts, so a
//! pool would add contention rather than remove it. WAL lets the `serve`
//! process and the admin CLI use the same file at once; `busy_timeout` makes
//! the CLI wait for the service's write instead of failing.
//!
//! One file per concern (`directory.rs`, `audit.rs`, `readings.rs`,
//! `alerts.rs`, `webhooks.rs`) implements that concern's trait by mapping
//! rows only; the rules sit above, in the traits' provided methods.
//! `intake.rs` holds the intake statements those files share.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use rusqlite::{Connection, params};

use crate::domain::Patient;
use crate::error::Result;
use crate::storage::{MIGRATIONS, Storage};

mod alerts;
mod audit;
mod directory;
mod intake;
mod readings;
mod webhooks;

/// A [`Storage`] over one SQLite file (or an in-memory database).
pub struct SqliteStorage {
    conn: Mutex<Connection>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path`, turns on WAL and
    /// foreign keys, and applies every pending migration in one transaction
    /// each. Guarantees the schema is at the latest version on success.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        // WAL is a property of the file: it sticks, and a reader never
        // blocks the writer.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Self::setup(conn)
    }

    /// An in-memory database, for tests of the storage contract.
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self> {
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written row:
        // an open rusqlite transaction rolls back when dropped, so the
        // connection is still consistent and safe to keep using.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )?;
    for (version, name, sql) in MIGRATIONS {
        let tx = conn.transaction()?;
        let applied: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if !applied {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![version, name, Utc::now()],
            )?;
            tracing::info!(version, name, "applied migration");
        }
        tx.commit()?;
    }
    Ok(())
}

fn patient_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Patient> {
    Ok(Patient {
        id: r.get(0)?,
        display_name: r.get(1)?,
        created_at: r.get(2)?,
        time_zone: r.get(3)?,
    })
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    )
}

impl Storage for SqliteStorage {
    fn ping(&self) -> Result<()> {
        self.conn().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn schema_version(&self) -> Result<u32> {
        let v: Option<u32> =
            self.conn()
                .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                    r.get(0)
                })?;
        Ok(v.unwrap_or(0))
    }
}

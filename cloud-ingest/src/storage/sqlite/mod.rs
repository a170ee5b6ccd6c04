//! The embedded SQLite backend: one clinic on one machine, no server to run.
//!
//! One writer, several readers (issue 13's tenant isolation):
//! - **One write connection behind a fair lock.** SQLite allows one writer
//!   at a time anyway; the lock hands over in arrival order, and a large
//!   batch is written in chunks of [`intake::CHUNK`] readings, each its own
//!   transaction, so another tenant's small write waits for at most one
//!   chunk, not for a whole 20,000-reading batch.
//! - **Reads on their own connections** ([`SqliteStorage::reader`]): WAL
//!   lets a reader see every committed write without blocking the writer
//!   or waiting for it, so a token lookup or a day's points never queue
//!   behind another tenant's insert. An in-memory database has one
//!   connection only, so there the reader is the writer.
//!
//! WAL also lets the `serve` process and the admin CLI use the same file at
//! once; `busy_timeout` makes the CLI wait for the service's write instead
//! of failing.
//!
//! One file per concern (`directory.rs`, `audit.rs`, `readings.rs`,
//! `alerts.rs`, `webhooks.rs`) implements that concern's trait by mapping
//! rows only; the rules sit above, in the traits' provided methods.
//! `intake.rs` holds the intake statements those files share.

use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use parking_lot::{FairMutex, FairMutexGuard};
use rusqlite::{Connection, OpenFlags, params};

use crate::domain::Patient;
use crate::error::Result;
use crate::storage::{MIGRATIONS, Storage};

mod alerts;
mod audit;
mod directory;
mod intake;
mod readings;
mod webhooks;

/// Read connections a file-backed store opens: one per blocking-pool
/// thread that is likely to read at once on a 2–4 core node.
const READERS: usize = 4;

/// A [`Storage`] over one SQLite file (or an in-memory database).
pub struct SqliteStorage {
    conn: FairMutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

/// A connection to read with: a pooled read-only one, or the writer where
/// there is no other (an in-memory database).
pub(crate) enum Reader<'a> {
    Pooled(MutexGuard<'a, Connection>),
    Writer(FairMutexGuard<'a, Connection>),
}

impl Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            Reader::Pooled(c) => c,
            Reader::Writer(c) => c,
        }
    }
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
        let mut store = Self::setup(conn)?;
        // Opened after the migrations, so they see the latest schema.
        store.readers = (0..READERS)
            .map(|_| open_reader(path).map(Mutex::new))
            .collect::<Result<_>>()?;
        Ok(store)
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
            conn: FairMutex::new(conn),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The write connection. A panic while holding it cannot leave a
    /// half-written row: an open rusqlite transaction rolls back when
    /// dropped, so the connection stays consistent (the lock does not
    /// poison).
    fn conn(&self) -> FairMutexGuard<'_, Connection> {
        self.conn.lock()
    }

    /// A connection for reads that need not wait for the writer: a free
    /// read connection if there is one, else the next in turn.
    pub(crate) fn reader(&self) -> Reader<'_> {
        if self.readers.is_empty() {
            return Reader::Writer(self.conn());
        }
        if let Some(free) = self.readers.iter().find_map(|r| r.try_lock().ok()) {
            return Reader::Pooled(free);
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        // A reader only runs SELECTs, so a panic mid-read leaves nothing
        // half-done behind a poisoned lock.
        Reader::Pooled(
            self.readers[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// A read-only connection to the file at `path` (`query_only` as well, so
/// no statement can write through it by mistake).
fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "query_only", true)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
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

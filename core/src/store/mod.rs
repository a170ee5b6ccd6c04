//! The on-phone SQLite buffer: every decoded reading lands here before
//! reduction and sync, and stays until the cloud has acknowledged it (or the
//! capacity policy evicts it, which is always counted and reported).
//!
//! Place in the data flow: codec → session → **store** → reduce → sync. The
//! alert engine writes its outbox here too, so an alert raised without a
//! network survives an app kill and is posted later.
//!
//! Decisions that shaped it:
//!
//! - **One SQLite file in WAL mode with `synchronous=FULL` by default.** The
//!   promise is "a reading is durable once the call that stored it returned".
//!   In WAL mode `NORMAL` already survives an app crash or kill (the WAL
//!   frames are in the OS page cache when the commit returns), but a power
//!   loss or OS crash can roll back the last transactions. A phone whose
//!   battery dies is an ordinary event, and the readings lost would be the
//!   most recent ones (the ones an alert may just have fired on), so the
//!   default fsyncs the WAL at every commit. [`Durability::AppCrash`]
//!   (`NORMAL`) exists for apps that accept that risk for throughput; the
//!   benchmark reports both.
//! - **Inserts are batched in one transaction per call** and dedupe on the
//!   key (device, stream, session, sequence): a duplicated notification or a
//!   backfilled record is reported as a duplicate, not an error.
//! - **Sync state lives on the reading** (unsent → in flight → acknowledged)
//!   and only the server's acknowledgement moves a reading to acknowledged.
//! - **A byte budget**, measured as pages in use (`page_count -
//!   freelist_count`, because SQLite files do not shrink without `VACUUM`),
//!   with pressure events at 80 % and 95 % and counted evictions when full
//!   (see [`capacity`]).
//!
//! - **The buffer is the session's sink** ([`BufferSink`]): a reading a
//!   session handed over is committed before the session moves on, and the
//!   newest record in the file is where an app restart resumes backfill.
//!
//! - **Export cursors live here too** ([`export`]): how far the phone's
//!   health store has taken the readings, so an export resumes after a
//!   kill and readings stored before the user opted in are exported.
//!
//! Timestamps are stored as microseconds since the Unix epoch (UTC);
//! RR intervals are finer than a millisecond.

pub mod buffer;
pub mod capacity;
pub mod export;
pub mod ledger;
pub mod outbox;
pub mod reduction;
pub mod registry;
pub mod schema;
pub mod sink;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::error::{Error, Result};

pub use buffer::{
    InFlightBatch, InsertOutcome, StoredReading, SyncCursor, SyncState, TREND_ID_BASE,
};
pub use capacity::{
    BufferEvent, CapacityPolicy, DEFAULT_BUDGET_BYTES, Eviction, MEASURED_BYTES_PER_READING,
    PressureLevel, WORST_CASE_READINGS_72H,
};
pub use export::ExportCursor;
pub use ledger::{Completeness, LedgerRange, RangeKind};
pub use outbox::OutboxAlert;
pub use reduction::{Decisions, SeriesKey};
pub use registry::{DeviceRecord, WearPeriod};
pub use sink::BufferSink;

/// How far a returned write is guaranteed to survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a returned write survives app kills, crashes,
    /// OS crashes and power loss (the WAL is fsynced at every commit).
    #[default]
    PowerLoss,
    /// `synchronous=NORMAL`: a returned write survives app kills and
    /// crashes; an OS crash or power loss may lose the last transactions.
    AppCrash,
}

/// Settings the app chooses when it opens the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BufferConfig {
    /// Byte budget and pressure thresholds.
    pub capacity: CapacityPolicy,
    /// What a returned write survives.
    pub durability: Durability,
}

/// The on-phone buffer: one SQLite file holding readings, the alert outbox,
/// sync and export cursors, the device registry and the completeness ledger.
///
/// Not `Sync`: one owner (the core's storage task) serialises writes, which
/// is also what SQLite does internally.
#[derive(Debug)]
pub struct Buffer {
    conn: Connection,
    capacity: capacity::CapacityState,
    trend_streams_sql: String,
}

impl Buffer {
    /// Opens (or creates) the buffer at `path`, switches it to WAL mode,
    /// applies the durability setting, turns foreign keys on, migrates the
    /// schema to [`schema::VERSION`], and returns batches left in flight by
    /// a previous process to unsent.
    ///
    /// Fails with [`Error::Storage`] if the file is not a SQLite database,
    /// was written by a newer schema, or cannot be opened.
    pub fn open(path: impl AsRef<Path>, config: BufferConfig) -> Result<Buffer> {
        let mut buffer = Buffer::open_shared(path, config)?;
        // Whoever had batches in flight died with the previous process.
        buffer.rollback_in_flight(None)?;
        Ok(buffer)
    }

    /// Opens another connection on a buffer this process already opened
    /// with [`Buffer::open`] (a second session, the sync engine): the same
    /// settings and migration, but batches in flight are left alone, since
    /// they belong to a live sender in this process.
    pub fn open_shared(path: impl AsRef<Path>, config: BufferConfig) -> Result<Buffer> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Storage {
                code: None,
                message: format!("could not switch the buffer to WAL mode (got `{mode}`)"),
            });
        }
        let sync = match config.durability {
            Durability::PowerLoss => "FULL",
            Durability::AppCrash => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        // Every commit is counted at the level it runs at: a FULL commit
        // is an fsync, what the energy budget limits. Never vetoes.
        let flushing = matches!(config.durability, Durability::PowerLoss);
        conn.commit_hook(Some(move || {
            crate::energy::committed(flushing);
            false
        }));
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // The budget counts the main file; a checkpointed WAL is truncated
        // back to this size so it cannot grow unseen beside it.
        conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
        schema::migrate(&mut conn)?;
        let trend: Vec<String> = crate::model::Stream::ALL
            .into_iter()
            .filter(|s| s.profile() == crate::model::Profile::Trend)
            .map(|s| stream_code(s).to_string())
            .collect();
        Ok(Buffer {
            conn,
            capacity: capacity::CapacityState::new(config.capacity),
            trend_streams_sql: trend.join(","),
        })
    }

    /// Runs `PRAGMA integrity_check` and returns SQLite's verdict (`"ok"`
    /// when the file is sound).
    pub fn integrity_check(&self) -> Result<String> {
        let verdict: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(verdict)
    }

    /// Bytes the database pages in use occupy (`page_count -
    /// freelist_count` times `page_size`): what the byte budget measures.
    pub fn used_bytes(&self) -> Result<u64> {
        capacity::used_bytes(&self.conn)
    }

    /// The pressure level the bytes in use put the buffer at now (what a
    /// heartbeat reports; another connection may have written meanwhile).
    pub fn pressure(&self) -> Result<PressureLevel> {
        Ok(self.capacity.level_of(self.used_bytes()?))
    }

    /// The capacity policy in force.
    pub fn capacity_policy(&self) -> CapacityPolicy {
        self.capacity.policy
    }
}

impl From<rusqlite::Error> for Error {
    /// Keeps SQLite's result code and a message naming what failed, never
    /// a bound value or a row's contents.
    fn from(err: rusqlite::Error) -> Error {
        match err {
            rusqlite::Error::SqliteFailure(e, msg) => Error::Storage {
                code: Some(e.extended_code),
                message: match msg {
                    Some(m) => format!("sqlite: {m}"),
                    None => format!("sqlite: {e}"),
                },
            },
            rusqlite::Error::QueryReturnedNoRows => Error::Storage {
                code: None,
                message: "query returned no rows".into(),
            },
            rusqlite::Error::InvalidColumnType(_, name, ty) => Error::Storage {
                code: None,
                message: format!("column `{name}` has unexpected type {ty}"),
            },
            rusqlite::Error::FromSqlConversionFailure(_, ty, _) => Error::Storage {
                code: None,
                message: format!("a stored {ty} value could not be converted"),
            },
            rusqlite::Error::IntegralValueOutOfRange(idx, _) => Error::Storage {
                code: None,
                message: format!("integer in column {idx} out of range"),
            },
            _ => Error::Storage {
                code: None,
                message: "sqlite interface error".into(),
            },
        }
    }
}

/// The stream's code in the readings table. An integer rather than the
/// name saves about 30 bytes per reading (the table and two indexes carry
/// it); the codes are part of the file format and never change.
pub fn stream_code(stream: crate::model::Stream) -> i64 {
    use crate::model::Stream;
    match stream {
        Stream::Glucose => 1,
        Stream::MeterGlucose => 2,
        Stream::GlucoseTrend => 3,
        Stream::HeartRate => 4,
        Stream::RrInterval => 5,
        Stream::EnergyExpended => 6,
        Stream::Spo2 => 7,
        Stream::PulseRate => 8,
        Stream::Battery => 9,
    }
}

/// Inverse of [`stream_code`].
pub fn stream_from_code(code: i64) -> Option<crate::model::Stream> {
    crate::model::Stream::ALL
        .into_iter()
        .find(|s| stream_code(*s) == code)
}

/// Microseconds since the Unix epoch: the buffer's time representation.
pub(crate) fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Inverse of [`to_micros`]; a stored value outside chrono's range means
/// the file was written by something else.
pub(crate) fn from_micros(us: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| Error::Storage {
        code: None,
        message: "stored timestamp out of range".into(),
    })
}

/// Converts a sequence or count to SQLite's signed integer; values past
/// 2^63-1 are refused rather than wrapped (they would break ordering).
pub(crate) fn u64_to_sql(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::InvalidInput(format!("{what} exceeds 2^63-1")))
}

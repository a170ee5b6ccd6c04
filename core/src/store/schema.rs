//! The buffer's schema: the current version, the SQL of a fresh database, and
//! one upgrade step per version.
//!
//! A phone may skip any number of app releases, so every old version must
//! upgrade forward step by step, inside one transaction, to exactly the
//! schema a fresh install gets. Fresh databases are created from
//! [`CURRENT`] (not by replaying the steps) so the test that upgrades a
//! frozen old schema and compares it with a fresh one can actually catch a
//! step that forgot something.
//!
//! Versions:
//! - 1: readings with their sync state.
//! - 2: reduction's hold-back marker and the in-flight batch on readings,
//!   batch ids that are never reused (`AUTOINCREMENT`, so a late
//!   acknowledgement of an abandoned batch cannot match a new one), the
//!   alert outbox, sync cursors, the device registry (devices and who
//!   wore them when) and the completeness ledger.
//! - 3: a gap a session reported keeps its sensor session, first and last
//!   missing sequence and reason on its ledger range, so the buffer as a
//!   session sink can resume backfill after the end of a recorded gap and
//!   give the gap back exactly as the session saw it.
//! - 4: streaming reduction. Each trend reading carries whether reduction
//!   has decided it (`decided`; record readings are decided on arrival),
//!   the open segment of each series starts at the anchor kept in
//!   `reduction_anchors`, and the ledger counts acknowledged readings that
//!   travelled held back. Readings stored before version 4 count as
//!   decided and go as they were marked.
//! - 5: the alert outbox is keyed by (id, phase, time), as the protocol
//!   identifies an alert event: every re-alert of an episode is its own
//!   row, so each reaches the cloud and reduction keeps each one's reading
//!   (version 4 kept only an episode's first re-alert). Export cursors:
//!   how far each export target (Health Connect, HealthKit) has taken the
//!   readings, by row id, one per id range (record and trend readings take
//!   separate ranges), so an interrupted export resumes where it stopped.
//! - 6: local-only readings (issue 14). The CGM trend stream stays on the
//!   phone (the cloud derives the trend from glucose): its readings are
//!   stored in sync state 3 (local-only), decided on arrival, and the
//!   ledger counts those evicted (`evicted_local`). Trend readings not yet
//!   acknowledged when the phone upgrades become local-only; acknowledged
//!   ones stay acknowledged (the cloud holds them).

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// The schema version this code writes, kept in SQLite's `user_version`.
pub const VERSION: i64 = 6;

/// The complete schema at [`VERSION`], used for fresh databases.
///
/// Times are microseconds since the Unix epoch (UTC). `readings.stream` is
/// the stream's fixed integer code ([`super::stream_code`]; the hot table
/// and its indexes carry it on every row); the small tables keep the
/// stream's name. The unique key stores `session IS NULL` beside
/// `ifnull(session, 0)` because SQLite treats NULLs as distinct in a UNIQUE
/// index, and a reading without a session must dedupe too.
pub const CURRENT: &str = "
CREATE TABLE readings (
    id INTEGER PRIMARY KEY,
    patient TEXT NOT NULL,
    device TEXT NOT NULL,
    stream INTEGER NOT NULL,
    session INTEGER,
    sequence INTEGER NOT NULL,
    value REAL NOT NULL,
    sensor_time INTEGER NOT NULL,
    receive_time INTEGER NOT NULL,
    quality_percent REAL,
    quality_flagged INTEGER NOT NULL,
    characteristic INTEGER NOT NULL,
    raw BLOB NOT NULL,
    sync_state INTEGER NOT NULL DEFAULT 0,
    held INTEGER NOT NULL DEFAULT 0,
    batch INTEGER,
    decided INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX readings_key ON readings (device, stream, session IS NULL, ifnull(session, 0), sequence);
CREATE INDEX readings_by_state ON readings (stream, sync_state, id);
CREATE INDEX readings_evictable ON readings (sync_state, id);
CREATE INDEX readings_batch ON readings (batch) WHERE batch IS NOT NULL;
CREATE INDEX readings_undecided ON readings (stream, id) WHERE decided = 0;
CREATE TABLE reduction_anchors (
    device TEXT NOT NULL,
    stream INTEGER NOT NULL,
    no_session INTEGER NOT NULL,
    session INTEGER NOT NULL,
    sensor_time INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (device, stream, no_session, session)
);
CREATE TABLE batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE alert_outbox (
    id TEXT NOT NULL,
    phase TEXT NOT NULL,
    kind TEXT NOT NULL,
    time INTEGER NOT NULL,
    value REAL,
    payload BLOB NOT NULL,
    enqueued_at INTEGER NOT NULL,
    delivered_at INTEGER,
    PRIMARY KEY (id, phase, time)
);
CREATE INDEX alert_outbox_pending ON alert_outbox (time) WHERE delivered_at IS NULL;
CREATE TABLE sync_cursors (
    endpoint TEXT NOT NULL,
    stream TEXT NOT NULL,
    last_acked_sequence INTEGER,
    last_batch_id TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (endpoint, stream)
);
CREATE TABLE devices (
    device TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    paired_at INTEGER NOT NULL,
    forgotten_at INTEGER
);
CREATE TABLE wear (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices (device) ON DELETE CASCADE,
    patient TEXT NOT NULL,
    worn_from INTEGER NOT NULL,
    worn_to INTEGER
);
CREATE INDEX wear_by_device ON wear (device, worn_from);
CREATE TABLE ledger (
    device TEXT NOT NULL,
    stream TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    reported_missing INTEGER NOT NULL DEFAULT 0,
    acknowledged INTEGER NOT NULL DEFAULT 0,
    evicted_acknowledged INTEGER NOT NULL DEFAULT 0,
    evicted_unsent INTEGER NOT NULL DEFAULT 0,
    held_back INTEGER NOT NULL DEFAULT 0,
    evicted_local INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device, stream)
);
CREATE TABLE ledger_ranges (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    stream TEXT NOT NULL,
    kind TEXT NOT NULL,
    from_time INTEGER NOT NULL,
    to_time INTEGER NOT NULL,
    count INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    session INTEGER,
    first_sequence INTEGER,
    last_sequence INTEGER,
    reason TEXT
);
CREATE INDEX ledger_ranges_by_stream ON ledger_ranges (device, stream, kind, from_time);
CREATE TABLE export_cursors (
    target TEXT PRIMARY KEY,
    last_record_id INTEGER NOT NULL,
    last_trend_id INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
";

/// Version 1 to 2: everything but the readings table arrived in version 2.
const V1_TO_V2: &str = "
ALTER TABLE readings ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE readings ADD COLUMN batch INTEGER;
CREATE INDEX readings_evictable ON readings (sync_state, id);
CREATE INDEX readings_batch ON readings (batch) WHERE batch IS NOT NULL;
CREATE TABLE batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE alert_outbox (
    id TEXT NOT NULL,
    phase TEXT NOT NULL,
    kind TEXT NOT NULL,
    time INTEGER NOT NULL,
    value REAL,
    payload BLOB NOT NULL,
    enqueued_at INTEGER NOT NULL,
    delivered_at INTEGER,
    PRIMARY KEY (id, phase)
);
CREATE INDEX alert_outbox_pending ON alert_outbox (time) WHERE delivered_at IS NULL;
CREATE TABLE sync_cursors (
    endpoint TEXT NOT NULL,
    stream TEXT NOT NULL,
    last_acked_sequence INTEGER,
    last_batch_id TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (endpoint, stream)
);
CREATE TABLE devices (
    device TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    paired_at INTEGER NOT NULL,
    forgotten_at INTEGER
);
CREATE TABLE wear (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices (device) ON DELETE CASCADE,
    patient TEXT NOT NULL,
    worn_from INTEGER NOT NULL,
    worn_to INTEGER
);
CREATE INDEX wear_by_device ON wear (device, worn_from);
CREATE TABLE ledger (
    device TEXT NOT NULL,
    stream TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    reported_missing INTEGER NOT NULL DEFAULT 0,
    acknowledged INTEGER NOT NULL DEFAULT 0,
    evicted_acknowledged INTEGER NOT NULL DEFAULT 0,
    evicted_unsent INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device, stream)
);
INSERT INTO ledger (device, stream, received, acknowledged)
    SELECT device, CASE stream WHEN 1 THEN 'glucose' WHEN 2 THEN 'meter_glucose'
        WHEN 3 THEN 'glucose_trend' WHEN 4 THEN 'heart_rate' WHEN 5 THEN 'rr_interval'
        WHEN 6 THEN 'energy_expended' WHEN 7 THEN 'spo2' WHEN 8 THEN 'pulse_rate'
        WHEN 9 THEN 'battery' END,
        count(*), sum(sync_state = 2)
    FROM readings GROUP BY device, stream;
CREATE TABLE ledger_ranges (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    stream TEXT NOT NULL,
    kind TEXT NOT NULL,
    from_time INTEGER NOT NULL,
    to_time INTEGER NOT NULL,
    count INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX ledger_ranges_by_stream ON ledger_ranges (device, stream, kind, from_time);
";

/// Version 2 to 3: the session's view of a gap on its ledger range (all
/// NULL for evictions and for ranges recorded before version 3).
const V2_TO_V3: &str = "
ALTER TABLE ledger_ranges ADD COLUMN session INTEGER;
ALTER TABLE ledger_ranges ADD COLUMN first_sequence INTEGER;
ALTER TABLE ledger_ranges ADD COLUMN last_sequence INTEGER;
ALTER TABLE ledger_ranges ADD COLUMN reason TEXT;
";

/// Version 3 to 4: streaming reduction's state. Every reading already
/// stored is decided (it goes as it was marked); held marks on readings not
/// yet acknowledged are cleared, since no segment anchor vouches for them.
const V3_TO_V4: &str = "
ALTER TABLE readings ADD COLUMN decided INTEGER NOT NULL DEFAULT 0;
UPDATE readings SET decided = 1;
UPDATE readings SET held = 0 WHERE sync_state <> 2;
CREATE INDEX readings_undecided ON readings (stream, id) WHERE decided = 0;
CREATE TABLE reduction_anchors (
    device TEXT NOT NULL,
    stream INTEGER NOT NULL,
    no_session INTEGER NOT NULL,
    session INTEGER NOT NULL,
    sensor_time INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (device, stream, no_session, session)
);
ALTER TABLE ledger ADD COLUMN held_back INTEGER NOT NULL DEFAULT 0;
";

/// Version 4 to 5: the outbox's key gains the event's time (SQLite cannot
/// change a primary key in place, so the table is rebuilt), and the export
/// cursors arrive (no target has exported anything yet).
const V4_TO_V5: &str = "
CREATE TABLE alert_outbox_v5 (
    id TEXT NOT NULL,
    phase TEXT NOT NULL,
    kind TEXT NOT NULL,
    time INTEGER NOT NULL,
    value REAL,
    payload BLOB NOT NULL,
    enqueued_at INTEGER NOT NULL,
    delivered_at INTEGER,
    PRIMARY KEY (id, phase, time)
);
INSERT INTO alert_outbox_v5 (id, phase, kind, time, value, payload, enqueued_at, delivered_at)
    SELECT id, phase, kind, time, value, payload, enqueued_at, delivered_at FROM alert_outbox;
DROP TABLE alert_outbox;
ALTER TABLE alert_outbox_v5 RENAME TO alert_outbox;
CREATE INDEX alert_outbox_pending ON alert_outbox (time) WHERE delivered_at IS NULL;
CREATE TABLE export_cursors (
    target TEXT PRIMARY KEY,
    last_record_id INTEGER NOT NULL,
    last_trend_id INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
";

/// Version 5 to 6: the CGM trend (stream code 3) stays on the phone. Its
/// readings not yet acknowledged become local-only (state 3) and decided,
/// out of any batch (a batch in flight at the upgrade belonged to a
/// process that is gone; the cloud stores a resent reading once, and these
/// are simply not resent), and reduction's anchors for the stream go.
const V5_TO_V6: &str = "
ALTER TABLE ledger ADD COLUMN evicted_local INTEGER NOT NULL DEFAULT 0;
UPDATE readings SET sync_state = 3, batch = NULL, decided = 1, held = 0
    WHERE stream = 3 AND sync_state IN (0, 1);
DELETE FROM batches WHERE NOT EXISTS
    (SELECT 1 FROM readings WHERE batch = batches.id AND sync_state = 1);
DELETE FROM reduction_anchors WHERE stream = 3;
";

/// Applies the one step that takes a database from version `from` to
/// `from + 1`. The caller holds the transaction and bumps `user_version`.
///
/// Fails with [`Error::Storage`] for a version with no step (0 is handled by
/// creating [`CURRENT`], not by a step).
pub fn upgrade_from(conn: &Connection, from: i64) -> Result<()> {
    match from {
        1 => conn.execute_batch(V1_TO_V2).map_err(Error::from),
        2 => conn.execute_batch(V2_TO_V3).map_err(Error::from),
        3 => conn.execute_batch(V3_TO_V4).map_err(Error::from),
        4 => conn.execute_batch(V4_TO_V5).map_err(Error::from),
        5 => conn.execute_batch(V5_TO_V6).map_err(Error::from),
        other => Err(Error::Storage {
            code: None,
            message: format!("no schema upgrade step from version {other}"),
        }),
    }
}

/// Brings the database to [`VERSION`]: creates a fresh schema in an empty
/// database, or runs every step from the stored version, all in one
/// immediate transaction so a kill mid-way leaves the old version intact.
///
/// Refuses a database written by a newer release rather than guess at it.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if stored > VERSION {
        return Err(Error::Storage {
            code: None,
            message: format!(
                "database schema version {stored} is newer than this code's version {VERSION}"
            ),
        });
    }
    if stored == 0 {
        let objects: i64 = tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if objects != 0 {
            return Err(Error::Storage {
                code: None,
                message: "database has tables but no schema version; not a Vigil buffer".into(),
            });
        }
        tx.execute_batch(CURRENT)?;
    } else {
        for from in stored..VERSION {
            upgrade_from(&tx, from)?;
        }
    }
    // `user_version` takes no bound parameters; VERSION is a constant.
    tx.execute_batch(&format!("PRAGMA user_version = {VERSION}"))?;
    tx.commit()?;
    Ok(())
}

//! Schema migrations: a database frozen at version 1 upgrades to exactly
//! the schema a fresh install gets, and keeps its readings.

// Test crate: helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod store_common;

use rusqlite::Connection;
use store_common::{TempDir, raw};
use vigil_core::Error;
use vigil_core::model::{DeviceId, Stream};
use vigil_core::store::{Buffer, BufferConfig, SyncState, schema};

/// Version 1 exactly as it shipped. Frozen: never edit this text.
const V1: &str = "
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
    sync_state INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX readings_key ON readings (device, stream, session IS NULL, ifnull(session, 0), sequence);
CREATE INDEX readings_by_state ON readings (stream, sync_state, id);
PRAGMA user_version = 1;
";

/// Everything that makes two schemas behave the same, in a form that does
/// not depend on how the SQL text was spelled: per table its columns
/// (name, type, not null, default, key position), foreign keys and
/// indexes (uniqueness, partial, columns or expressions), plus each index's
/// SQL with whitespace collapsed.
fn normalised_schema(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    let mut objects: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    objects.sort();
    for (kind, name, sql) in objects {
        if kind == "index" {
            let sql = sql.unwrap_or_default();
            out.push(format!(
                "index {name}: {}",
                sql.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
            continue;
        }
        out.push(format!("{kind} {name}"));
        let cols: Vec<String> = conn
            .prepare("SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")
            .unwrap()
            .query_map([&name], |r| {
                Ok(format!(
                    "  column {}: {} notnull={} default={:?} pk={} hidden={}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.extend(cols);
        let fks: Vec<String> = conn
            .prepare("SELECT \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq")
            .unwrap()
            .query_map([&name], |r| {
                Ok(format!(
                    "  fk {}.{} -> {} update={} delete={}",
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.extend(fks);
        let mut idx: Vec<String> = conn
            .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")
            .unwrap()
            .query_map([&name], |r| {
                Ok(format!(
                    "  index {} unique={} origin={} partial={}",
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        idx.sort();
        out.extend(idx);
    }
    out
}

#[test]
fn version_1_database_upgrades_to_the_fresh_schema_and_keeps_its_readings() {
    let dir = TempDir::new("upgrade");
    let old = dir.path().join("old.db");
    {
        let conn = raw(&old);
        conn.execute_batch(V1).unwrap();
        conn.execute(
            "INSERT INTO readings (patient, device, stream, session, sequence, value, sensor_time, \
             receive_time, quality_percent, quality_flagged, characteristic, raw, sync_state) \
             VALUES ('p', 'cgm-1', 1, 1, 7, 104.0, 1772352000000000, 1772352000180000, \
             NULL, 0, 10919, x'0C00', 2), \
             ('p', 'cgm-1', 1, 1, 8, 99.0, 1772352060000000, 1772352060180000, \
             NULL, 0, 10919, x'0C00', 0)",
            [],
        )
        .unwrap();
    }
    let upgraded = Buffer::open(&old, BufferConfig::default()).unwrap();
    drop(upgraded);
    let fresh = dir.path().join("fresh.db");
    drop(Buffer::open(&fresh, BufferConfig::default()).unwrap());

    let (a, b) = (raw(&old), raw(&fresh));
    let version = |c: &Connection| {
        c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    assert_eq!(version(&a), schema::VERSION);
    assert_eq!(version(&b), schema::VERSION);
    assert_eq!(normalised_schema(&a), normalised_schema(&b));
    assert!(
        normalised_schema(&b).len() > 20,
        "the comparison must cover the whole schema"
    );

    // The data and its sync state survive, and the ledger starts from it.
    let buffer = Buffer::open(&old, BufferConfig::default()).unwrap();
    let dev = DeviceId("cgm-1".into());
    let r = buffer
        .find(&dev, Stream::Glucose, Some(1), 7)
        .unwrap()
        .unwrap();
    assert_eq!((r.reading.value, r.state), (104.0, SyncState::Acknowledged));
    let c = buffer.completeness(&dev, Stream::Glucose).unwrap();
    assert_eq!((c.received, c.acknowledged, c.unsent), (2, 1, 1));
}

#[test]
fn the_comparison_notices_a_schema_that_differs() {
    // Guards the guard: if the normalisation hid differences, the upgrade
    // test above would pass for any upgrade step.
    let dir = TempDir::new("differs");
    let fresh = dir.path().join("fresh.db");
    drop(Buffer::open(&fresh, BufferConfig::default()).unwrap());
    let altered = dir.path().join("altered.db");
    drop(Buffer::open(&altered, BufferConfig::default()).unwrap());
    raw(&altered)
        .execute_batch(
            "DROP INDEX readings_batch; CREATE INDEX readings_batch ON readings (batch);",
        )
        .unwrap();
    assert_ne!(
        normalised_schema(&raw(&fresh)),
        normalised_schema(&raw(&altered))
    );
}

#[test]
fn a_database_from_a_newer_release_is_refused_untouched() {
    let dir = TempDir::new("newer");
    raw(&dir.db())
        .execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
        .unwrap();
    let err = Buffer::open(dir.db(), BufferConfig::default()).unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    let v: i64 = raw(&dir.db())
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);
}

#[test]
fn there_is_an_upgrade_step_for_every_version_below_the_current_one() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(V1).unwrap();
    for from in 1..schema::VERSION {
        schema::upgrade_from(&conn, from).unwrap();
    }
    assert!(schema::upgrade_from(&conn, schema::VERSION).is_err());
}

#[test]
fn readings_stored_before_streaming_reduction_upgrade_as_decided_and_go_as_they_are() {
    let dir = TempDir::new("upgrade-v4");
    let old = dir.path().join("old.db");
    {
        let conn = raw(&old);
        conn.execute_batch(V1).unwrap();
        conn.execute(
            "INSERT INTO readings (patient, device, stream, session, sequence, value, sensor_time, \
             receive_time, quality_percent, quality_flagged, characteristic, raw, sync_state) \
             VALUES ('p', 'cgm-1', 1, 1, 8, 99.0, 1772352060000000, 1772352060180000, \
             NULL, 0, 10919, x'0C00', 0)",
            [],
        )
        .unwrap();
    }
    let mut buffer = Buffer::open(&old, BufferConfig::default()).unwrap();
    let c = buffer
        .completeness(&DeviceId("cgm-1".into()), Stream::Glucose)
        .unwrap();
    assert_eq!((c.undecided, c.acknowledged_held_back), (0, 0));
    // No reduction pass needed: the old reading is already decided, kept.
    let batch = buffer
        .next_decided_batch(Stream::Glucose, 10)
        .unwrap()
        .unwrap();
    assert_eq!(batch.readings.len(), 1);
    assert!(!batch.readings[0].held);
}

#[test]
fn a_version_4_outbox_upgrades_keeping_its_rows_and_then_takes_every_re_alert() {
    let dir = TempDir::new("upgrade-v5");
    let old = dir.path().join("old.db");
    {
        let conn = raw(&old);
        conn.execute_batch(V1).unwrap();
        for from in 1..4 {
            schema::upgrade_from(&conn, from).unwrap();
        }
        conn.execute_batch("PRAGMA user_version = 4").unwrap();
        conn.execute(
            "INSERT INTO alert_outbox (id, phase, kind, time, value, payload, enqueued_at, \
             delivered_at) VALUES ('a-1', 'start', 'low', 1772352000000000, 65.0, x'7B7D', \
             1772352000000000, 1772352001000000), ('a-1', 'realert', 'low', 1772353800000000, \
             64.0, x'7B7D', 1772353800000000, NULL)",
            [],
        )
        .unwrap();
        // Version 4's key: a second re-alert of the episode was dropped.
        let again = conn.execute(
            "INSERT INTO alert_outbox (id, phase, kind, time, value, payload, enqueued_at) \
             VALUES ('a-1', 'realert', 'low', 1772355600000000, 63.0, x'7B7D', 0) \
             ON CONFLICT DO NOTHING",
            [],
        );
        assert_eq!(again.unwrap(), 0);
    }
    let mut buffer = Buffer::open(&old, BufferConfig::default()).unwrap();
    let pending = buffer.pending_alerts().unwrap();
    assert_eq!(pending.len(), 1, "the delivered start stays delivered");
    assert_eq!(pending[0].phase, "realert");
    let second = vigil_core::store::OutboxAlert {
        time: pending[0].time + chrono::Duration::minutes(30),
        ..pending[0].clone()
    };
    assert!(buffer.enqueue_alert(&second).unwrap());
    assert_eq!(buffer.pending_alerts().unwrap().len(), 2);
}

#[test]
fn a_version_5_buffer_upgrades_its_unsent_trend_readings_to_local_only() {
    let dir = TempDir::new("upgrade-v6");
    let old = dir.path().join("old.db");
    {
        let conn = raw(&old);
        conn.execute_batch(V1).unwrap();
        for from in 1..5 {
            schema::upgrade_from(&conn, from).unwrap();
        }
        conn.execute_batch("PRAGMA user_version = 5").unwrap();
        conn.execute(
            "INSERT INTO batches (id, stream, created_at) VALUES (7, 'glucose_trend', 0)",
            [],
        )
        .unwrap();
        // Stream 3 is the CGM trend: one acknowledged, one unsent and
        // undecided, one in flight in batch 7; stream 1 is glucose.
        for (stream, seq, state, batch, decided) in [
            (3, 1, 2, "NULL", 1),
            (3, 2, 0, "NULL", 0),
            (3, 3, 1, "7", 1),
            (1, 1, 0, "NULL", 0),
        ] {
            conn.execute_batch(&format!(
                "INSERT INTO readings (patient, device, stream, session, sequence, value, \
                 sensor_time, receive_time, quality_percent, quality_flagged, characteristic, \
                 raw, sync_state, batch, decided) VALUES ('p', 'cgm-1', {stream}, 1, {seq}, \
                 -0.5, {t}, {t}, NULL, 0, 10919, x'0C00', {state}, {batch}, {decided})",
                t = 1_772_352_060_000_000i64 + seq * 300_000_000,
            ))
            .unwrap();
        }
    }
    let buffer = Buffer::open(&old, BufferConfig::default()).unwrap();
    let states: Vec<SyncState> = buffer
        .readings_of(&DeviceId("cgm-1".into()), Stream::GlucoseTrend)
        .unwrap()
        .iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(
        states,
        [
            SyncState::Acknowledged,
            SyncState::LocalOnly,
            SyncState::LocalOnly
        ]
    );
    let c = buffer
        .completeness(&DeviceId("cgm-1".into()), Stream::GlucoseTrend)
        .unwrap();
    assert_eq!(
        (c.stored, c.unsent, c.in_flight, c.undecided, c.local_only),
        (3, 0, 0, 0, 2)
    );
    let glucose = buffer
        .completeness(&DeviceId("cgm-1".into()), Stream::Glucose)
        .unwrap();
    assert_eq!(
        (glucose.unsent, glucose.undecided),
        (1, 1),
        "glucose untouched"
    );
}

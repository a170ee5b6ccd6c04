//! PostgreSQL's monthly partitions of `readings` (migration 0022, issue
//! 20): made at open and by the daily upkeep, a reading outside them kept
//! in the default partition until its month is made, and an existing,
//! populated table converted with its rows, ids and one-row-a-seq rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail loudly.

use std::sync::OnceLock;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use vigil_ingest::storage::postgres::partitions::{MONTHS_AHEAD, Month};
use vigil_ingest::storage::postgres::{MIGRATIONS, PostgresStorage, migrate};
use vigil_ingest::storage::prelude::*;
use vigil_ingest::storage::{NewBatch, NewGroup, NewReading, ReadingQuery, Storage};
use vigil_model::reading::Stream;
use vigil_model::wire::{BatchId, RejectReason, Rejected, SeqRange};
use vigil_pg_harness::PgServer;

fn pg() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| PgServer::start().unwrap_or_else(|e| panic!("{e}")))
}

fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

fn batch(id: u8, patient: i64, readings: Vec<NewReading>) -> NewBatch {
    NewBatch {
        v: 1,
        id: BatchId([id; 16]),
        patient,
        device: "cgm-1".into(),
        received_at: Utc::now(),
        groups: vec![NewGroup {
            stream: Stream::Glucose,
            session: Some(4),
            characteristic: 0x2AA7,
            tolerance: Some(3.0),
            readings,
            rejected: vec![],
        }],
    }
}

fn reading(seq: u64, time: DateTime<Utc>, value: f64) -> NewReading {
    NewReading {
        seq,
        time,
        value,
        quality_percent: None,
        quality_flagged: false,
        held_back: false,
        raw: None,
    }
}

/// The partitions of `readings`, by name, in order.
fn partitions(c: &mut postgres::Client) -> Vec<String> {
    c.query(
        "SELECT inhrelid::regclass::text FROM pg_inherits
          WHERE inhparent = 'readings'::regclass ORDER BY 1",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// (seq, id, partition) of every reading, by seq.
fn placed(c: &mut postgres::Client) -> Vec<(i64, i64, String)> {
    c.query(
        "SELECT seq, id, tableoid::regclass::text FROM readings ORDER BY seq",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// Partitions of `readings` with no replica identity index of their own.
fn partitions_without_replica_identity(c: &mut postgres::Client) -> Vec<String> {
    c.query(
        "SELECT h.inhrelid::regclass::text FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          WHERE h.inhparent = 'readings'::regclass AND c.relreplident <> 'i' ORDER BY 1",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn open_makes_this_month_and_the_next_two_and_upkeep_is_idempotent() {
    let url = pg().fresh_database().unwrap();
    let s = PostgresStorage::connect(&url).unwrap();
    let now = Utc::now();
    let mut c = client(&url);
    let have = partitions(&mut c);
    for ahead in 0..=MONTHS_AHEAD {
        let m = Month::of(now, ahead).unwrap();
        assert!(have.contains(&m.name), "{} missing from {have:?}", m.name);
    }
    assert!(have.contains(&"readings_default".to_owned()));
    assert_eq!(s.ensure_partitions(now).unwrap(), Vec::<String>::new());
    assert_eq!(s.ensure_partitions(now).unwrap(), Vec::<String>::new());
    assert_eq!(partitions(&mut c), have, "upkeep twice changes nothing");
    // Opening again (a second replica) neither fails nor adds anything.
    drop(PostgresStorage::connect(&url).unwrap());
    assert_eq!(partitions(&mut c), have);
    assert_eq!(
        partitions_without_replica_identity(&mut c),
        Vec::<String>::new()
    );
    // A read of a time range is planned over its month only.
    let m = Month::of(now, 1).unwrap();
    let plan: Vec<String> = c
        .query(
            "EXPLAIN SELECT * FROM readings WHERE patient_id = 1 AND time >= $1 AND time < $2
              ORDER BY time, id",
            &[&m.from, &(m.from + 86_400_000_000)],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains(&m.name), "{plan}");
    for other in have.iter().filter(|p| **p != m.name) {
        assert!(
            !plan.contains(other.as_str()),
            "{other} not pruned:\n{plan}"
        );
    }
}

#[test]
fn a_reading_past_every_month_waits_in_the_default_partition_until_upkeep_makes_its_month() {
    let url = pg().fresh_database().unwrap();
    let s = PostgresStorage::connect(&url).unwrap();
    let p = s.add_patient("Ada").unwrap();
    let now = Utc::now();
    let month = Month::of(now, MONTHS_AHEAD + 3).unwrap();
    let when = Utc.timestamp_micros(month.from).unwrap() + TimeDelta::days(3);
    s.store_batch(&batch(
        1,
        p,
        vec![reading(1, now, 100.0), reading(2, when, 110.0)],
    ))
    .unwrap();
    let mut c = client(&url);
    let before = placed(&mut c);
    assert_eq!(before[1].2, "readings_default");

    // Upkeep at a clock inside that month makes it (and the two after)
    // and moves the waiting reading, id and all, out of the default.
    let made = s.ensure_partitions(when).unwrap();
    assert_eq!(made[0], month.name);
    assert_eq!(made.len() as u32, MONTHS_AHEAD + 1);
    let after = placed(&mut c);
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1], (2, before[1].1, month.name.clone()));
    let left: i64 = c
        .query_one("SELECT COUNT(*) FROM readings_default", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    assert_eq!(
        partitions_without_replica_identity(&mut c),
        Vec::<String>::new()
    );
    assert!(s.ensure_partitions(when).unwrap().is_empty());

    // The moved reading is still read, and still found by intake: sent
    // again at another time it is stored once.
    let q = ReadingQuery {
        patient: p,
        stream: None,
        from: when - TimeDelta::days(1),
        to: when + TimeDelta::days(1),
        limit: 10,
    };
    assert_eq!(s.readings(&q).unwrap().len(), 1);
    let ack = s
        .store_batch(&batch(2, p, vec![reading(2, now, 111.0)]))
        .unwrap();
    assert_eq!(
        ack.streams[0].rejected,
        vec![Rejected {
            seq: 2,
            reason: RejectReason::Conflict
        }]
    );
    assert_eq!(placed(&mut c).len(), 2);
}

#[test]
fn migration_22_converts_a_populated_table_keeping_rows_ids_and_one_row_a_seq() {
    let url = pg().fresh_database().unwrap();
    let mut c = client(&url);
    assert_eq!(MIGRATIONS[20].0, 21);
    migrate(&mut c, 21).unwrap();
    let version: i32 = c
        .query_one("SELECT MAX(version) FROM schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 21);
    let p: i64 = c
        .query_one(
            "INSERT INTO patients (display_name, created_at) VALUES ('Ada', now()) RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    let old_batch: i64 = c
        .query_one(
            "INSERT INTO batches (batch_key, patient_id, device, received_at, ack)
             VALUES ($1, $2, 'cgm-1', 0, '') RETURNING id",
            &[&&[0u8; 16][..], &p],
        )
        .unwrap()
        .get(0);
    // Two old months, a gap month between them, and an id sequence that
    // has moved on past deleted rows.
    let jan = Utc.with_ymd_and_hms(2025, 1, 15, 0, 0, 0).unwrap();
    let mar = Utc.with_ymd_and_hms(2025, 3, 2, 0, 0, 0).unwrap();
    c.execute(
        "INSERT INTO readings (patient_id, device, stream, session, seq, time, value,
             quality_flagged, characteristic, held_back, batch_id)
         SELECT $1, 'cgm-1', 'glucose', 4, g, CASE WHEN g <= 3 THEN $2::BIGINT ELSE $3::BIGINT END + g,
                100 + g, FALSE, 10919, FALSE, $4
           FROM generate_series(1, 6) AS g",
        &[&p, &jan.timestamp_micros(), &mar.timestamp_micros(), &old_batch],
    )
    .unwrap();
    c.execute("DELETE FROM readings WHERE seq = 6", &[])
        .unwrap();
    let before = placed(&mut c);
    assert_eq!(before.len(), 5);

    let s = PostgresStorage::connect(&url).unwrap();
    assert_eq!(s.schema_version().unwrap() as usize, MIGRATIONS.len());
    let after = placed(&mut c);
    let ids = |v: &[(i64, i64, String)]| v.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>();
    assert_eq!(ids(&after), ids(&before), "every row, with its id");
    let homes: Vec<&str> = after.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(
        homes,
        [
            "readings_2025_01",
            "readings_2025_01",
            "readings_2025_01",
            "readings_2025_03",
            "readings_2025_03"
        ]
    );
    let have = partitions(&mut c);
    assert!(have.contains(&"readings_2025_02".to_owned()), "{have:?}");
    assert!(have.contains(&Month::of(Utc::now(), MONTHS_AHEAD).unwrap().name));
    assert_eq!(
        partitions_without_replica_identity(&mut c),
        Vec::<String>::new()
    );
    let old_table: Option<String> = c
        .query_one("SELECT to_regclass('readings_unpartitioned')::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(old_table, None);

    // The old rows still hold their seqs against a resend at another time,
    // and new rows take ids after the old ones (past the deleted 6th).
    let now = Utc::now();
    let ack = s
        .store_batch(&batch(
            1,
            p,
            vec![
                reading(1, now, 101.0),
                reading(4, now, 999.0),
                reading(7, now, 107.0),
            ],
        ))
        .unwrap();
    assert_eq!(
        ack.streams[0].stored,
        vec![
            SeqRange { first: 1, last: 1 },
            SeqRange { first: 7, last: 7 }
        ]
    );
    assert_eq!(
        ack.streams[0].rejected,
        vec![Rejected {
            seq: 4,
            reason: RejectReason::Conflict
        }]
    );
    let rows = placed(&mut c);
    assert_eq!(rows.len(), 6);
    let (seq, id, _) = &rows[5];
    assert_eq!(*seq, 7);
    assert!(*id > 6, "id {id} reuses an old one");
}

#[test]
fn two_replicas_sending_a_seq_at_different_times_at_once_store_it_once() {
    let url = pg().fresh_database().unwrap();
    let a = std::sync::Arc::new(PostgresStorage::connect(&url).unwrap());
    let b = std::sync::Arc::new(PostgresStorage::connect(&url).unwrap());
    let p = a.add_patient("Ada").unwrap();
    let now = Utc::now();
    let later = now + TimeDelta::days(40);
    let rounds = 30u8;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let writer = |s: std::sync::Arc<PostgresStorage>, first: u8, at: DateTime<Utc>| {
        let barrier = std::sync::Arc::clone(&barrier);
        std::thread::spawn(move || {
            for round in 0..rounds {
                let seqs = u64::from(round) * 10..u64::from(round) * 10 + 10;
                barrier.wait();
                s.store_batch(&batch(
                    first + round,
                    p,
                    seqs.map(|q| reading(q, at, 100.0)).collect(),
                ))
                .unwrap();
            }
        })
    };
    let one = writer(a, 0, now);
    let two = writer(b, 100, later);
    one.join().unwrap();
    two.join().unwrap();
    let mut c = client(&url);
    let rows: i64 = c
        .query_one("SELECT COUNT(*) FROM readings", &[])
        .unwrap()
        .get(0);
    let seqs: i64 = c
        .query_one("SELECT COUNT(DISTINCT seq) FROM readings", &[])
        .unwrap()
        .get(0);
    assert_eq!(seqs, i64::from(rounds) * 10);
    assert_eq!(rows, seqs, "a seq stored twice");
}

//! Server storage per reading (issue 14): bytes on disk per stored glucose
//! reading, table and indexes, on SQLite and on PostgreSQL, for what the
//! SDK sends (14 days of 5-minute CGM per patient, three in four readings
//! held back by the phone's reduction and sent as sequence and time only,
//! kept ones with their raw GATT bytes), and the same store with only the
//! kept readings, to say whether storing only those and reconstructing
//! held-back values on read would pay.
//!
//! Two figures each, after `VACUUM` and less the empty schema, over the
//! rows: the readings table with its indexes (SQLite's `dbstat`;
//! PostgreSQL's `pg_total_relation_size` summed over the partitions of
//! `readings`: heap, TOAST, every index), and the whole database (the batches table keeps each batch's
//! acknowledgement for idempotent retries, so it grows per batch, not per
//! reading).
//!
//! `cargo bench -p vigil-ingest --bench storage_size` stores 20 patients
//! (80,640 readings); without `--bench` (as `cargo test --benches` runs it)
//! 2 patients check the path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // A bench fails loudly.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use vigil_ingest::admin;
use vigil_ingest::storage::postgres::PostgresStorage;
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_ingest::storage::{NewBatch, NewGroup, NewReading, Storage};
use vigil_model::reading::Stream;
use vigil_model::wire::{BatchId, PROTOCOL_VERSION};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

/// 14 days of one patient's 5-minute CGM in 15-minute batches, as the SDK
/// sends them; `only_kept` leaves the held-back readings out.
fn fill(s: &dyn Storage, patients: usize, only_kept: bool) -> u64 {
    let mut rows = 0u64;
    for p in 0..patients {
        let patient = admin::add_patient(s, &format!("Bench {p}")).unwrap();
        for batch in 0..(14 * 96) {
            let readings: Vec<NewReading> = (0..3)
                .map(|k| {
                    let seq = batch * 3 + k;
                    let time = t0() + TimeDelta::minutes(5 * seq as i64);
                    // One in four kept (as on the product path, 75 % held
                    // back); kept readings carry their raw bytes.
                    let kept = seq % 4 == 0;
                    NewReading {
                        seq: seq * 5,
                        time,
                        value: 100.0 + (seq % 80) as f64,
                        quality_percent: None,
                        quality_flagged: false,
                        held_back: !kept,
                        raw: kept
                            .then(|| vec![0x0e, 0x00, 0x6e, 0xb0, 0x05, 0x00, 0x00, 0x00, 0x12]),
                    }
                })
                .filter(|r| !only_kept || !r.held_back)
                .collect();
            rows += readings.len() as u64;
            if readings.is_empty() {
                continue;
            }
            s.store_batch(&NewBatch {
                v: PROTOCOL_VERSION,
                id: BatchId::random(),
                patient,
                device: "cgm-1".into(),
                received_at: Utc::now(),
                groups: vec![NewGroup {
                    stream: Stream::Glucose,
                    session: Some(1_796_256_000),
                    characteristic: 0x2AA7,
                    tolerance: Some(3.0),
                    readings,
                    rejected: Vec::new(),
                }],
            })
            .unwrap();
        }
    }
    rows
}

/// (readings table and its indexes, whole database) in bytes, after VACUUM.
fn sqlite_bytes(path: &std::path::Path) -> (u64, u64) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")
        .unwrap();
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let readings: i64 = c
        .query_row(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN \
             (SELECT name FROM sqlite_schema WHERE tbl_name = 'readings')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (
        u64::try_from(readings).unwrap(),
        u64::try_from(pages * size).unwrap(),
    )
}

fn sqlite_per_reading(patients: usize, only_kept: bool) -> (u64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    drop(SqliteStorage::open(&empty).unwrap());
    let base = sqlite_bytes(&empty);
    let path = dir.path().join("vigil.db");
    let s = SqliteStorage::open(&path).unwrap();
    let rows = fill(&s, patients, only_kept);
    drop(s);
    let (table, whole) = sqlite_bytes(&path);
    let table = table.saturating_sub(base.0);
    let whole = whole.saturating_sub(base.1);
    (rows, table as f64 / rows as f64, whole as f64 / rows as f64)
}

fn postgres_per_reading(
    server: &vigil_pg_harness::PgServer,
    patients: usize,
    only_kept: bool,
) -> (u64, f64, f64) {
    let url = server.fresh_database().unwrap();
    let empty = server.fresh_database().unwrap();
    drop(PostgresStorage::connect(&empty).unwrap());
    let s = PostgresStorage::connect(&url).unwrap();
    let rows = fill(&s, patients, only_kept);
    drop(s);
    let sizes = |url: &str| -> (i64, i64) {
        let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
        c.batch_execute("VACUUM FULL").unwrap();
        let row = c
            .query_one(
                "SELECT (SELECT SUM(pg_total_relation_size(relid))::bigint \
                         FROM pg_partition_tree('readings')), \
                 (SELECT SUM(pg_total_relation_size(c.oid))::bigint FROM pg_class c \
                  JOIN pg_namespace n ON n.oid = c.relnamespace \
                  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm'))",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    let (base_table, base_whole) = sizes(&empty);
    let (table, whole) = sizes(&url);
    (
        rows,
        (table - base_table) as f64 / rows as f64,
        (whole - base_whole) as f64 / rows as f64,
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let patients = if full { 20 } else { 2 };
    let server = vigil_pg_harness::PgServer::start().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "| store | readings stored | readings table + indexes, bytes per stored reading | per measured reading | whole database, bytes per stored reading | per measured reading |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let measured = (patients * 14 * 288) as f64;
    for (name, only_kept) in [
        ("all readings (as today)", false),
        ("kept readings only", true),
    ] {
        for (engine, (rows, table, whole)) in [
            ("SQLite", sqlite_per_reading(patients, only_kept)),
            (
                "PostgreSQL",
                postgres_per_reading(&server, patients, only_kept),
            ),
        ] {
            let share = rows as f64 / measured;
            println!(
                "| {engine}, {name} | {rows} | {table:.1} | {:.1} | {whole:.1} | {:.1} |",
                table * share,
                whole * share
            );
        }
    }
}

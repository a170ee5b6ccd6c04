//! Crash safety: a writer process killed with SIGKILL at random points, 100
//! times over, never loses a reading whose insert call had returned and
//! never leaves a file that fails `PRAGMA integrity_check`.
//!
//! The test re-executes its own binary as the writer (selected by an
//! environment variable), so no helper binary has to be built first.

// Test crate: helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod store_common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use store_common::{TempDir, raw, reading, t0};
use vigil_core::model::Stream;
use vigil_core::store::{Buffer, BufferConfig};

const CHILD_DB: &str = "VIGIL_STORE_CRASH_CHILD_DB";
const CHILD_START: &str = "VIGIL_STORE_CRASH_CHILD_START";
const CHILD_SEED: &str = "VIGIL_STORE_CRASH_CHILD_SEED";
const KILLS: u64 = 100;

/// Sequence `s` alternates between a trend stream (heart rate) and a
/// record stream (RR intervals), so both id ranges are written.
fn stream_of(s: u64) -> Stream {
    if s % 2 == 0 {
        Stream::HeartRate
    } else {
        Stream::RrInterval
    }
}

/// The writer's entry point, run only inside the child process (when
/// `CHILD_DB` is set); in a normal test run it returns at once. Inserts
/// batches of 1-20 readings forever and prints `ACK first last` after each
/// insert call returned.
#[test]
fn child_process_entry_point() {
    let Ok(db) = std::env::var(CHILD_DB) else {
        return;
    };
    let mut seq: u64 = std::env::var(CHILD_START).unwrap().parse().unwrap();
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buffer = Buffer::open(&db, BufferConfig::default()).unwrap();
    let mut out = std::io::stdout().lock();
    loop {
        let n = rng.random_range(1..=20u64);
        let batch: Vec<_> = (seq..seq + n)
            .map(|s| {
                let at = t0() + chrono::Duration::milliseconds(s as i64 * 250);
                reading("strap-1", stream_of(s), s, at, 60.0 + (s % 40) as f64)
            })
            .collect();
        buffer.insert(&batch).unwrap();
        writeln!(out, "ACK {} {}", seq, seq + n - 1).unwrap();
        out.flush().unwrap();
        seq += n;
    }
}

#[test]
fn sigkilled_writer_loses_no_returned_reading_and_leaves_a_sound_file() {
    let dir = TempDir::new("crash");
    let db = dir.db();
    let exe = std::env::current_exe().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_0004);
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut next = 0u64;
    let mut killed_mid_write = 0;
    let started = Instant::now();

    for run in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_process_entry_point",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &db)
            .env(CHILD_START, next.to_string())
            .env(CHILD_SEED, run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });

        // One kill in ten lands anywhere (start-up, open, migration); the
        // rest land while the writer is inserting, after its first ACK.
        if rng.random_bool(0.1) {
            std::thread::sleep(Duration::from_micros(rng.random_range(0..30_000)));
        } else {
            loop {
                let line = rx
                    .recv_timeout(Duration::from_secs(10))
                    .expect("writer acknowledges");
                if let Some(range) = parse_ack(&line) {
                    acked.extend(range);
                    break;
                }
            }
            std::thread::sleep(Duration::from_micros(rng.random_range(0..15_000)));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let mut acked_this_run = 0;
        for line in rx.try_iter() {
            if let Some(range) = parse_ack(&line) {
                acked_this_run += 1;
                acked.extend(range);
            }
        }
        if acked_this_run > 0 {
            killed_mid_write += 1;
        }
        next = acked.last().map_or(0, |l| l + 1);

        // After every kill: the file is sound and holds every acknowledged
        // reading.
        if db.exists() {
            let conn = raw(&db);
            let verdict: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(verdict, "ok", "run {run}");
            let has_table: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'readings'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            if has_table == 1 {
                let stored: BTreeSet<u64> = conn
                    .prepare("SELECT sequence FROM readings WHERE device = 'strap-1'")
                    .unwrap()
                    .query_map([], |r| r.get::<_, i64>(0).map(|s| s as u64))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let lost: Vec<_> = acked.difference(&stored).take(5).collect();
                assert!(
                    lost.is_empty(),
                    "run {run}: acknowledged readings lost: {lost:?}"
                );
            } else {
                assert!(
                    acked.is_empty(),
                    "run {run}: readings acknowledged but no table"
                );
            }
        }
    }
    println!(
        "{KILLS} kills, {killed_mid_write} after further ACKs, {} readings acknowledged, {:.1} s",
        acked.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        killed_mid_write >= KILLS / 2,
        "most kills must land while writing"
    );
    assert!(acked.len() as u64 > KILLS * 10);

    // The buffer reopens, and its ledger moved in step with the readings
    // (same transaction): received equals what is stored, per stream.
    let buffer = Buffer::open(&db, BufferConfig::default()).unwrap();
    assert_eq!(buffer.integrity_check().unwrap(), "ok");
    for stream in [Stream::HeartRate, Stream::RrInterval] {
        let c = buffer
            .completeness(&vigil_core::model::DeviceId("strap-1".into()), stream)
            .unwrap();
        assert_eq!(c.received, c.stored, "{stream:?}");
        assert_eq!(c.stored, buffer.count(Some(stream), None).unwrap());
    }
}

fn parse_ack(line: &str) -> Option<std::ops::RangeInclusive<u64>> {
    let mut parts = line.strip_prefix("ACK ")?.split(' ');
    let first = parts.next()?.parse().ok()?;
    let last = parts.next()?.parse().ok()?;
    Some(first..=last)
}

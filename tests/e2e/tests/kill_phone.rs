//! Fault: the SDK process is SIGKILLed mid-sync again and again.
//! Invariant: once a last run drains the buffer, the server holds every
//! reading the phone ever stored exactly once, every alert once, and the
//! phone's ledger agrees with the server.
//!
//! `VIGIL_SOAK=1` makes it ten times longer (same code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_core::model::PatientId;
use vigil_core::store::{Buffer, BufferConfig};
use vigil_e2e::check::verify;
use vigil_e2e::feed::{Feed, streams};
use vigil_e2e::procs::{Ingest, lines, seed, wait_for};

fn soak() -> bool {
    std::env::var_os("VIGIL_SOAK").is_some_and(|v| v != "0")
}

#[test]
fn sigkill_mid_sync_fifty_times_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let (kills, steps) = if soak() {
        (500, 30_000u64)
    } else {
        (50, 3_000u64)
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ingest.db");
    let (patient, token) = seed(&db);
    let ingest = Ingest::start(Path::new(env!("CARGO_BIN_EXE_e2e-ingest")), &db);
    let buffer_path = dir.path().join("phone.db");
    let seed_value = 6;
    // Far enough back that every step lies in the past.
    // (Whole milliseconds: the phone is told t0 in ms.)
    let t0 = chrono::DateTime::from_timestamp_millis(
        (Utc::now() - TimeDelta::minutes(steps as i64 + 60)).timestamp_millis(),
    )
    .unwrap();
    let phone = |mode: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_e2e-phone"))
            .args([
                buffer_path.to_str().unwrap(),
                &ingest.url(),
                &token,
                &patient.to_string(),
                &seed_value.to_string(),
                &t0.timestamp_millis().to_string(),
                &steps.to_string(),
                mode,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let rx = lines(child.stdout.take().unwrap());
        (child, rx)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(50);
    // A kill counts as mid-sync when the next start finds readings its
    // predecessor left in flight. Kill until `kills` of them did.
    let mut mid_sync = 0;
    let mut attempts = 0;
    let mut previous_killed = false;
    while mid_sync < kills {
        assert!(
            attempts < kills * 5,
            "only {mid_sync} of {attempts} kills landed mid-sync"
        );
        let (mut child, rx) = phone("run");
        let line = wait_for(&rx, "in_flight", Duration::from_secs(10)).expect("phone started");
        if previous_killed && line != "in_flight 0" {
            mid_sync += 1;
        }
        // Kill a moment into a sync, after a random number of them: a
        // sync marks its first batch in flight within milliseconds, and a
        // timer alone lands mostly between syncs once they are few and
        // large (one request per device).
        for _ in 0..rng.random_range(1..4) {
            if wait_for(&rx, "sync", Duration::from_secs(10)).is_none() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(1..8)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        attempts += 1;
        previous_killed = true;
    }
    let kill_loop = started.elapsed();
    // The last kill's in-flight readings are returned by the drain run.
    let (mut child, rx) = phone("drain");
    assert!(wait_for(&rx, "in_flight", Duration::from_secs(10)).is_some());
    assert!(
        wait_for(&rx, "drained", Duration::from_secs(120)).is_some(),
        "the drain run did not finish"
    );
    assert!(child.wait().unwrap().success());

    let buffer = Buffer::open(&buffer_path, BufferConfig::default()).unwrap();
    let storage = vigil_ingest::storage::open(&db).unwrap();
    let feed = Feed {
        patient: PatientId(patient.to_string()),
        seed: seed_value,
        t0,
    };
    let summary = verify(&buffer, storage.blocking(), patient, &feed.expect(steps))
        .unwrap_or_else(|bad| panic!("{} violations:\n{}", bad.len(), bad.join("\n")));
    // Every step's readings, and the feed's exact values for record data.
    assert_eq!(summary.readings, 3 * steps, "{summary:?}");
    for (device, stream) in streams() {
        for s in buffer.readings_of(&device, stream).unwrap() {
            let want = &feed.step(s.reading.sequence)[match stream {
                vigil_core::model::Stream::Glucose => 0,
                vigil_core::model::Stream::HeartRate => 1,
                _ => 2,
            }];
            assert_eq!(s.reading.value.to_bits(), want.value.to_bits());
            assert_eq!(s.reading.sensor_time, want.sensor_time);
        }
    }
    eprintln!(
        "kill_phone: {attempts} SIGKILLs ({mid_sync} mid-sync) in {kill_loop:.1?}, {} readings ({} held back), {} alerts, {:.1?} in all",
        summary.readings,
        summary.held_back,
        summary.alerts,
        started.elapsed()
    );
}

//! Fault: the ingest service is SIGKILLed and restarted (same port) 20
//! times while a phone process is syncing, on SQLite and on PostgreSQL.
//! Invariant: the phone drains anyway, and the server holds every reading
//! exactly once, every alert once, matching the phone's ledger.
//!
//! `VIGIL_SOAK=1` makes it five times longer (same code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_core::model::PatientId;
use vigil_core::store::{Buffer, BufferConfig};
use vigil_e2e::check::{server_readings, verify};
use vigil_e2e::feed::{Feed, resume_at};
use vigil_e2e::procs::{Ingest, lines, seed, wait_for};

fn soak() -> bool {
    std::env::var_os("VIGIL_SOAK").is_some_and(|v| v != "0")
}

fn restarts_mid_sync(database: &Path, label: &str) {
    let started = Instant::now();
    let (restarts, steps) = if soak() {
        (100, 400_000u64)
    } else {
        (20, 200_000u64)
    };
    let dir = tempfile::tempdir().unwrap();
    let (patient, token) = seed(database);
    let mut ingest = Ingest::start(Path::new(env!("CARGO_BIN_EXE_e2e-ingest")), database);
    let storage = vigil_ingest::storage::open(database).unwrap();
    let buffer_path = dir.path().join("phone.db");
    let seed_value = 20;
    let t0 = chrono::DateTime::from_timestamp_millis(
        (Utc::now() - TimeDelta::minutes(steps as i64 + 60)).timestamp_millis(),
    )
    .unwrap();
    // The URL stays the same across restarts: the same port.
    let url = ingest.url();
    let phone = |mode: &str, steps: u64| {
        Command::new(env!("CARGO_BIN_EXE_e2e-phone"))
            .args([
                buffer_path.to_str().unwrap(),
                &url,
                &token,
                &patient.to_string(),
                &seed_value.to_string(),
                &t0.timestamp_millis().to_string(),
                &steps.to_string(),
                mode,
            ])
            .env("E2E_PHONE_PACE_MS", "50")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    // A feed far longer than the restarts last: the phone is producing and
    // syncing at every kill, however fast this machine is.
    let mut phone_run = phone("run", steps);
    let _out = lines(phone_run.stdout.take().unwrap());
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    let mut stored_at_kill = Vec::new();
    for _ in 0..restarts {
        std::thread::sleep(Duration::from_millis(rng.random_range(100..400)));
        // Still syncing: the kill lands while the phone has work in hand.
        assert!(
            phone_run.try_wait().unwrap().is_none(),
            "{label}: the phone exited before restart {}",
            ingest.starts
        );
        ingest.kill(); // SIGKILL
        stored_at_kill.push(server_readings(storage.blocking(), patient).unwrap().len());
        std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        ingest.restart();
    }
    // The phone stops (killed: the kill scenario covers that) and a last
    // run drains what it produced.
    phone_run.kill().unwrap();
    phone_run.wait().unwrap();
    let produced =
        resume_at(&Buffer::open_shared(&buffer_path, BufferConfig::default()).unwrap()).unwrap();
    assert!(
        produced < steps,
        "{label}: the feed ran out during the restarts ({produced} of {steps})"
    );
    let mut drain = phone("drain", produced);
    let out = lines(drain.stdout.take().unwrap());
    assert!(
        wait_for(&out, "drained", Duration::from_secs(120)).is_some(),
        "{label}: the phone did not drain"
    );
    assert!(drain.wait().unwrap().success());
    // The server kept taking readings between restarts.
    let growing = stored_at_kill.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        growing * 4 >= restarts * 3,
        "{label}: stored counts at the kills {stored_at_kill:?}"
    );

    let buffer = Buffer::open(&buffer_path, BufferConfig::default()).unwrap();
    let feed = Feed {
        patient: PatientId(patient.to_string()),
        seed: seed_value,
        t0,
    };
    let summary = verify(&buffer, storage.blocking(), patient, &feed.expect(produced))
        .unwrap_or_else(|bad| panic!("{label}: {} violations:\n{}", bad.len(), bad.join("\n")));
    assert_eq!(summary.readings, 3 * produced, "{summary:?}");
    eprintln!(
        "restart_service/{label}: {} SIGKILL restarts, {} readings ({} held back), {} alerts, {:.1?}",
        ingest.starts - 1,
        summary.readings,
        summary.held_back,
        summary.alerts,
        started.elapsed()
    );
}

#[test]
fn sqlite_service_killed_and_restarted_twenty_times_mid_sync_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    restarts_mid_sync(&dir.path().join("ingest.db"), "sqlite");
}

#[test]
fn postgres_service_killed_and_restarted_twenty_times_mid_sync_loses_nothing() {
    let pg = vigil_pg_harness::PgServer::start().unwrap_or_else(|e| panic!("{e}"));
    let url = pg.fresh_database().unwrap();
    restarts_mid_sync(Path::new(&url), "postgres");
}

//! `e2e-phone BUFFER URL TOKEN PATIENT SEED T0_MS STEPS MODE`: an SDK
//! process for the kill scenario. It opens its buffer file, resumes the
//! deterministic [`Feed`] at the step after the newest one the buffer
//! holds, and syncs through the real [`SyncEngine`] with tiny batches after
//! every few steps, so a SIGKILL lands mid-sync most of the time.
//!
//! MODE `run` produces a few steps at a time and syncs forever (until
//! killed); MODE `drain` produces what is left of `STEPS`, syncs until
//! everything is acknowledged and every alert delivered, prints `drained`
//! and exits.
//!
//! On start it prints `in_flight N`: readings a killed predecessor left in
//! flight (that is, it was killed mid-sync), before opening the buffer
//! returns them to unsent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use vigil_core::clock::SystemClock;
use vigil_core::model::PatientId;
use vigil_core::session::Backoff;
use vigil_core::store::{Buffer, BufferConfig, SyncState};
use vigil_core::sync::{StaticToken, SyncConfig, SyncEngine};
use vigil_e2e::feed::{Feed, resume_at};

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    buffer: PathBuf,
    url: String,
    token: String,
    feed: Feed,
    steps: u64,
    drain: bool,
}

fn parse() -> Fallible<Args> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [buffer, url, token, patient, seed, t0, steps, mode] = a.as_slice() else {
        return Err("usage: e2e-phone BUFFER URL TOKEN PATIENT SEED T0_MS STEPS run|drain".into());
    };
    Ok(Args {
        buffer: PathBuf::from(buffer),
        url: url.clone(),
        token: token.clone(),
        feed: Feed {
            patient: PatientId(patient.clone()),
            seed: seed.parse()?,
            t0: DateTime::from_timestamp_millis(t0.parse()?).ok_or("T0_MS out of range")?,
        },
        steps: steps.parse()?,
        drain: mode == "drain",
    })
}

fn main() -> ExitCode {
    match parse().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Fallible<()> {
    let config = BufferConfig::default();
    let in_flight =
        Buffer::open_shared(&args.buffer, config)?.count(None, Some(SyncState::InFlight))?;
    println!("in_flight {in_flight}");
    let mut buffer = Buffer::open(&args.buffer, config)?;
    let mut next = resume_at(&buffer)?;
    let pace_ms: Option<u64> = std::env::var("E2E_PHONE_PACE_MS")
        .ok()
        .and_then(|v| v.parse().ok());
    // A kill between a step's readings and its alert loses nothing: the
    // outbox is idempotent by (id, phase), so every due alert is enqueued
    // again (a delivered one stays delivered).
    for i in 0..next {
        if let Some(a) = args.feed.alert(i) {
            buffer.enqueue_alert(&a)?;
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let sync = SyncConfig {
        server_url: args.url.clone(),
        batch_max: 10,
        interval: Duration::from_secs(3600),
        request_timeout: Duration::from_secs(3),
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            jitter: 0.3,
        },
        ..SyncConfig::default()
    };
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = runtime.block_on(async {
        SyncEngine::start(
            args.buffer.clone(),
            args.feed.patient.clone(),
            sync,
            Arc::new(StaticToken(args.token.clone())),
            tx,
            Arc::new(SystemClock),
        )
    })?;
    loop {
        // A chunk of steps per transaction, so that most of the process's
        // time is spent syncing (where the kills should land).
        let chunk_end = (next + 12).min(args.steps);
        let readings: Vec<_> = (next..chunk_end).flat_map(|i| args.feed.step(i)).collect();
        buffer.insert(&readings)?;
        for i in next..chunk_end {
            if let Some(a) = args.feed.alert(i) {
                buffer.enqueue_alert(&a)?;
            }
        }
        next = chunk_end;
        // The kill test times its SIGKILLs from this line.
        println!("sync");
        let report = runtime.block_on(handle.sync_now())?;
        let done = next >= args.steps
            && buffer.count(None, Some(SyncState::Unsent))? == 0
            && buffer.count(None, Some(SyncState::InFlight))? == 0
            && buffer.pending_alerts()?.is_empty();
        if done && args.drain {
            break;
        }
        // With E2E_PHONE_PACE_MS, a failed pass pauses that long: a phone
        // measures at its own pace while the server is down, rather than
        // piling up more than a drain can send in the test's time.
        if done {
            std::thread::sleep(Duration::from_millis(20));
        } else if let (Some(_), Some(ms)) = (&report.failure, pace_ms) {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
    runtime.block_on(handle.stop());
    println!("drained");
    Ok(())
}

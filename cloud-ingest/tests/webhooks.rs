//! Webhooks end to end over loopback: a real receiver, signed deliveries,
//! retries with backoff, giving up, the delivery log, and a queue that
//! survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::sync::Notify;
use vigil_ingest::admin;
use vigil_ingest::domain::EventKind;
use vigil_ingest::storage::prelude::*;
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_ingest::storage::{Storage, Store};
use vigil_ingest::webhooks::dispatch::{Dispatcher, RetryPolicy, publish};
use vigil_ingest::webhooks::{check_url, verify};

/// What the receiver saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    headers: HeaderMap,
    body: Bytes,
}

/// A receiver answering from a script of statuses (the last one repeats).
#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Vec<u16>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut seen = r.seen.lock().unwrap();
    let n = seen.len();
    seen.push(Seen { headers, body });
    let code = r.script.get(n).or(r.script.last()).copied().unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

async fn start_receiver(script: Vec<u16>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(Receiver {
            seen: Arc::clone(&seen),
            script: Arc::new(script),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        first_retry: Duration::from_millis(40),
        max_retry: Duration::from_millis(200),
        max_attempts,
        timeout: Duration::from_secs(2),
        poll: Duration::from_millis(20),
    }
}

/// Runs the worker until `done` holds for the store, at most 10 s.
async fn run_until(
    store: &Store,
    wake: Arc<Notify>,
    policy: RetryPolicy,
    done: impl Fn(&dyn Storage) -> bool,
) {
    let worker = Dispatcher::new(store.clone(), policy, wake).unwrap();
    let stop = Arc::new(Notify::new());
    let stopped = Arc::clone(&stop);
    let task = tokio::spawn(worker.run(async move { stopped.notified().await }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(store.blocking()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker did not finish within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.notify_one();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_the_same_signed_delivery_until_it_accepts() {
    let (url, seen) = start_receiver(vec![500, 503, 200]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(SqliteStorage::open(&dir.path().join("w.db")).unwrap());
    let secret = admin::add_webhook(store.blocking(), &url, "alert,data").unwrap();
    // A second receiver subscribed to data only must not get the alert.
    let (data_url, data_seen) = start_receiver(vec![200]).await;
    admin::add_webhook(store.blocking(), &data_url, "data").unwrap();

    let wake = Arc::new(Notify::new());
    let payload = serde_json::json!({"kind": "urgent_low", "patient": 7, "phase": "start"});
    let queued = publish(&store, &wake, EventKind::Alert, &payload)
        .await
        .unwrap();
    assert_eq!(queued, 1);

    let hook = store.blocking().webhooks().unwrap()[0].id;
    run_until(&store, wake, fast_policy(5), |s| {
        s.webhook_deliveries(hook).unwrap()[0]
            .delivered_at
            .is_some()
    })
    .await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "two failures then the accepted attempt");
    let now = chrono::Utc::now().timestamp();
    for s in &seen {
        assert_eq!(s.body, seen[0].body, "every attempt carries the same body");
        assert_eq!(s.headers["vigil-event"], "alert");
        assert_eq!(
            s.headers["vigil-delivery"],
            seen[0].headers["vigil-delivery"]
        );
        let ts: i64 = s.headers["vigil-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let sig = s.headers["vigil-signature"].to_str().unwrap();
        assert!(
            verify(&secret, ts, &s.body, sig, now, 60),
            "signature verifies"
        );
        assert!(!verify("vgl_w_wrong", ts, &s.body, sig, now, 60));
    }
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body, payload);

    let log = store.blocking().webhook_deliveries(hook).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].attempts, 3);
    assert_eq!(log[0].last_status, Some(200));
    assert!(log[0].gave_up_at.is_none());
    assert!(
        data_seen.lock().unwrap().is_empty(),
        "data-only hook got no alert"
    );
    assert!(
        store
            .blocking()
            .due_webhook_deliveries(chrono::Utc::now() + chrono::TimeDelta::days(1), 10)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_accepts_is_given_up_on_and_logged() {
    let (url, seen) = start_receiver(vec![500]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(SqliteStorage::open(&dir.path().join("w.db")).unwrap());
    admin::add_webhook(store.blocking(), &url, "data").unwrap();
    let wake = Arc::new(Notify::new());
    publish(
        &store,
        &wake,
        EventKind::Data,
        &serde_json::json!({"patient": 1}),
    )
    .await
    .unwrap();
    let hook = store.blocking().webhooks().unwrap()[0].id;
    run_until(&store, wake, fast_policy(3), |s| {
        s.webhook_deliveries(hook).unwrap()[0].gave_up_at.is_some()
    })
    .await;
    let log = store.blocking().webhook_deliveries(hook).unwrap();
    assert_eq!(log[0].attempts, 3);
    assert_eq!(log[0].last_status, Some(500));
    assert!(log[0].delivered_at.is_none());
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_delivery_survives_a_restart() {
    let (url, seen) = start_receiver(vec![200]).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    {
        let store = Store::new(SqliteStorage::open(&db).unwrap());
        admin::add_webhook(store.blocking(), &url, "alert").unwrap();
        publish(
            &store,
            &Notify::new(),
            EventKind::Alert,
            &serde_json::json!({"a": 1}),
        )
        .await
        .unwrap();
    } // the process "stops" before any worker ran
    let store = Store::new(SqliteStorage::open(&db).unwrap());
    let hook = store.blocking().webhooks().unwrap()[0].id;
    run_until(&store, Arc::new(Notify::new()), fast_policy(3), |s| {
        s.webhook_deliveries(hook).unwrap()[0]
            .delivered_at
            .is_some()
    })
    .await;
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn only_https_or_loopback_receivers_are_accepted() {
    assert!(check_url("https://ehr.example.org/vigil").is_ok());
    assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
    assert!(check_url("http://[::1]:9000/hook").is_ok());
    assert!(check_url("http://localhost/hook").is_ok());
    assert!(check_url("http://ehr.example.org/vigil").is_err());
    assert!(check_url("ftp://ehr.example.org/").is_err());
    assert!(check_url("not a url").is_err());
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(&dir.path().join("w.db")).unwrap();
    assert!(admin::add_webhook(&s, "http://ehr.example.org/", "alert").is_err());
    assert!(admin::add_webhook(&s, "https://ehr.example.org/", "pager").is_err());
    assert!(
        s.webhooks().unwrap().is_empty(),
        "nothing stored on refusal"
    );
}

#[test]
fn the_cli_registers_and_lists_webhooks_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_vigil-ingest"))
            .arg("--database")
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let secret = run(&[
        "webhook",
        "add",
        "https://ehr.example.org/vigil",
        "--events",
        "alert,data",
    ]);
    assert_eq!(secret.lines().count(), 1);
    assert!(secret.trim().starts_with("vgl_w_") && secret.trim().len() == 6 + 64);
    let list = run(&["webhook", "list"]);
    assert_eq!(list.trim(), "1 https://ehr.example.org/vigil alert,data");
    assert!(
        !list.contains(secret.trim()),
        "the secret is shown once only"
    );
}

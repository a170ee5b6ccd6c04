//! LISTEN/NOTIFY between replicas, on a throwaway PostgreSQL: every
//! listener hears each committed event exactly once, nothing of a rolled-back
//! one, and a listener whose connection is killed comes back by itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::pg_server;
use vigil_ingest::storage::pg_notify::{
    self, LISTENER_APPLICATION_NAME, Listener, MAX_PAYLOAD, PgFanout,
};
use vigil_ingest::storage::postgres::{PostgresStorage, Target};

const BOUND: Duration = Duration::from_secs(10);

fn listener(url: &str) -> (Listener, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let l = Listener::spawn(Target::parse(url).unwrap(), move |p| {
        let _ = tx.send(p);
    })
    .unwrap();
    (l, rx)
}

/// Waits until `n` listening connections exist (LISTEN is issued before a
/// listener counts as up).
fn wait_for_listeners(raw: &mut postgres::Client, n: i64) {
    let deadline = Instant::now() + BOUND;
    loop {
        let up: i64 = raw
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() \
                 AND state = 'idle' AND query LIKE 'LISTEN%'",
                &[&LISTENER_APPLICATION_NAME],
            )
            .unwrap()
            .get(0);
        if up >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{up} of {n} listeners up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn received_within(rx: &mpsc::Receiver<String>, bound: Duration) -> Vec<String> {
    let deadline = Instant::now() + bound;
    let mut got = Vec::new();
    while let Ok(p) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        got.push(p);
    }
    got
}

#[test]
fn every_listener_hears_each_committed_event_once_and_no_rolled_back_one() {
    let url = pg_server().fresh_database().unwrap();
    PostgresStorage::connect(&url).unwrap();
    let (_a, rx_a) = listener(&url);
    let (_b, rx_b) = listener(&url);
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    wait_for_listeners(&mut raw, 2);

    let mut tx = raw.transaction().unwrap();
    pg_notify::publish(&mut tx, "rolled-back").unwrap();
    tx.rollback().unwrap();
    let mut tx = raw.transaction().unwrap();
    pg_notify::publish(&mut tx, "first").unwrap();
    tx.commit().unwrap();
    pg_notify::publish(&mut raw, "second").unwrap();

    for rx in [&rx_a, &rx_b] {
        let first = rx.recv_timeout(BOUND).unwrap();
        let second = rx.recv_timeout(BOUND).unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("first", "second"));
        // Nothing more arrives: no duplicate, no rolled-back event.
        assert_eq!(
            received_within(rx, Duration::from_millis(500)),
            Vec::<String>::new()
        );
    }
}

#[test]
fn a_listener_whose_connection_is_killed_reconnects_and_hears_later_events_once() {
    let url = pg_server().fresh_database().unwrap();
    PostgresStorage::connect(&url).unwrap();
    let (l, rx) = listener(&url);
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    wait_for_listeners(&mut raw, 1);
    let killed: i64 = raw
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND datname = current_database()",
            &[&LISTENER_APPLICATION_NAME],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    // It comes back on its own, bounded by the backoff.
    let deadline = Instant::now() + BOUND;
    while l.reconnects() == 0 {
        assert!(Instant::now() < deadline, "listener did not reconnect");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for_listeners(&mut raw, 1);
    pg_notify::publish(&mut raw, "after").unwrap();
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), "after");
    assert_eq!(
        received_within(&rx, Duration::from_millis(500)),
        Vec::<String>::new()
    );
}

#[test]
fn oversized_events_are_refused_before_reaching_the_server() {
    let url = pg_server().fresh_database().unwrap();
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let big = "x".repeat(MAX_PAYLOAD + 1);
    assert!(matches!(
        pg_notify::publish(&mut raw, &big),
        Err(vigil_ingest::Error::InvalidInput(_))
    ));
    pg_notify::publish(&mut raw, &"x".repeat(MAX_PAYLOAD)).unwrap();
}

#[test]
fn an_event_published_by_one_replica_reaches_every_replica_once_including_itself() {
    let url = pg_server().fresh_database().unwrap();
    PostgresStorage::connect(&url).unwrap();
    let replica = |url: &str| {
        let (tx, rx) = mpsc::channel();
        let f = PgFanout::start(Target::parse(url).unwrap(), move |p| {
            let _ = tx.send(p);
        })
        .unwrap();
        (f, rx)
    };
    let (a, rx_a) = replica(&url);
    let (b, rx_b) = replica(&url);
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    wait_for_listeners(&mut raw, 2);
    b.publish(r#"{"alert":1}"#).unwrap();
    a.publish(r#"{"alert":2}"#).unwrap();
    for rx in [&rx_a, &rx_b] {
        let mut got = vec![
            rx.recv_timeout(BOUND).unwrap(),
            rx.recv_timeout(BOUND).unwrap(),
        ];
        got.sort();
        assert_eq!(got, [r#"{"alert":1}"#, r#"{"alert":2}"#]);
        assert_eq!(
            received_within(rx, Duration::from_millis(500)),
            Vec::<String>::new()
        );
    }
    assert_eq!(a.listener().reconnects() + b.listener().reconnects(), 0);
}

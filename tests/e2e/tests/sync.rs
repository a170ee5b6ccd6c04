//! The SDK's sync engine against the real ingest service, through the
//! fault proxy: every reading stored exactly once, held-back glucose
//! reconstructed within its tolerance, every reading marked synced only
//! by an ack, and the alert delivered once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use vigil_core::alerts::{AlertEvent, AlertKind, Phase};
use vigil_core::clock::SystemClock;
use vigil_core::model::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};
use vigil_core::store::{Buffer, BufferConfig, OutboxAlert, SyncState};
use vigil_core::sync::{StaticToken, SyncConfig, SyncEngine};
use vigil_e2e::proxy::{FaultProxy, Faults};
use vigil_e2e::service::Service;
use vigil_ingest::storage::intake::ReadingQuery;

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_drops_duplicates_and_lost_acks_everything_is_stored_once() {
    let service = Service::start().await;
    let proxy = FaultProxy::start(
        service.addr,
        Faults {
            drop: 0.1,
            duplicate: 0.1,
            cut_response: 0.1,
        },
        42,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.db");
    let mut buffer = Buffer::open(&path, BufferConfig::default()).unwrap();
    let patient = PatientId(service.patient.to_string());
    let t0 = micros(Utc::now() - TimeDelta::hours(6));
    let truth = |i: u64| 120.0 + 40.0 * ((i as f64) / 10.0).sin();
    let glucose: Vec<Reading> = (0..60)
        .map(|i| Reading {
            patient: patient.clone(),
            stream: Stream::Glucose,
            value: truth(i).round(),
            sensor_time: t0 + TimeDelta::minutes(5 * i as i64),
            receive_time: t0 + TimeDelta::minutes(5 * i as i64),
            sequence: i,
            quality: Quality::default(),
            provenance: Provenance {
                device: DeviceId("cgm-1".into()),
                characteristic: 0x2AA7,
                raw: vec![],
                session: Some(3),
            },
        })
        .collect();
    let rr: Vec<Reading> = (0..500)
        .map(|i| Reading {
            stream: Stream::RrInterval,
            value: 0.75 + (i % 9) as f64 / 128.0,
            sensor_time: t0 + TimeDelta::seconds(i as i64),
            sequence: i,
            provenance: Provenance {
                device: DeviceId("strap-1".into()),
                characteristic: 0x2A37,
                raw: vec![],
                session: None,
            },
            ..glucose[0].clone()
        })
        .collect();
    buffer.insert(&glucose).unwrap();
    buffer.insert(&rr).unwrap();
    let event = AlertEvent {
        id: "00000000000000e2".into(),
        kind: AlertKind::UrgentLow,
        phase: Phase::Start,
        time: t0,
        glucose_mg_dl: Some(50.0),
        rate_mg_dl_per_min: None,
        battery_pct: None,
        session_expires_at: None,
        device: Some("cgm-1".into()),
    };
    buffer
        .enqueue_alert(&OutboxAlert {
            id: event.id.clone(),
            kind: "urgent_low".into(),
            phase: "start".into(),
            time: t0,
            value: Some(50.0),
            payload: serde_json::to_vec(&event).unwrap(),
        })
        .unwrap();

    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let config = SyncConfig {
        server_url: proxy.url(),
        batch_max: 25,
        request_timeout: Duration::from_secs(5),
        ..SyncConfig::default()
    };
    let handle = SyncEngine::start(
        path.clone(),
        patient.clone(),
        config,
        Arc::new(StaticToken(service.device_token.clone())),
        tx,
        Arc::new(SystemClock),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let _ = handle.sync_now().await.unwrap();
        let unsent = buffer.count(None, Some(SyncState::Unsent)).unwrap();
        if unsent == 0 && buffer.pending_alerts().unwrap().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {unsent} unsent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.stop().await;
    assert_eq!(
        buffer.count(None, Some(SyncState::Acknowledged)).unwrap(),
        560
    );
    let s = proxy.stats();
    assert!(s.dropped > 0 && s.duplicated > 0 && s.cut > 0, "{s:?}");

    let stored = service
        .store
        .blocking()
        .readings(&ReadingQuery {
            patient: service.patient,
            stream: None,
            from: DateTime::<Utc>::MIN_UTC,
            to: DateTime::<Utc>::MAX_UTC,
            limit: 100_000,
        })
        .unwrap();
    assert_eq!(stored.len(), 560, "every reading exactly once");
    let keys: BTreeSet<_> = stored
        .iter()
        .map(|r| (r.device.clone(), r.stream, r.session, r.seq))
        .collect();
    assert_eq!(keys.len(), 560);
    for r in &stored {
        match r.stream {
            Stream::RrInterval => {
                assert_eq!(r.value.to_bits(), rr[r.seq as usize].value.to_bits())
            }
            Stream::Glucose => {
                let want = glucose[r.seq as usize].value;
                assert!(
                    (r.value - want).abs() <= 3.0 + 1e-9,
                    "{} vs {want}",
                    r.value
                );
            }
            other => panic!("unexpected stream {other:?}"),
        }
    }
}

/// Hands out a stale token until asked to refresh.
struct Refreshing {
    stale: String,
    fresh: String,
    refreshed: std::sync::atomic::AtomicUsize,
}

impl vigil_core::sync::TokenProvider for Refreshing {
    fn token(&self) -> Option<String> {
        Some(
            if self.refreshed.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                self.stale.clone()
            } else {
                self.fresh.clone()
            },
        )
    }
    fn refresh(&self) -> Option<String> {
        self.refreshed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.token()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_refreshes_once_and_429_retry_after_is_waited_out() {
    use vigil_core::sync::SyncEvent;
    // One request per second sustained, bursts of 2: a phone sending many
    // small batches hits 429 with Retry-After.
    let limits = vigil_ingest::Limits {
        rate: vigil_ingest::rate_limit::RateLimit {
            per_second: 1.0,
            burst: 2,
        },
        ..vigil_ingest::Limits::default()
    };
    let service = Service::start_with(limits).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.db");
    let mut buffer = Buffer::open(&path, BufferConfig::default()).unwrap();
    let patient = PatientId(service.patient.to_string());
    let t0 = micros(Utc::now() - TimeDelta::hours(1));
    let rr: Vec<Reading> = (0..40)
        .map(|i| Reading {
            patient: patient.clone(),
            stream: Stream::RrInterval,
            value: 0.8,
            sensor_time: t0 + TimeDelta::seconds(i as i64),
            receive_time: t0 + TimeDelta::seconds(i as i64),
            sequence: i,
            quality: Quality::default(),
            provenance: Provenance {
                device: DeviceId("strap-1".into()),
                characteristic: 0x2A37,
                raw: vec![],
                session: None,
            },
        })
        .collect();
    buffer.insert(&rr).unwrap();
    let tokens = Arc::new(Refreshing {
        stale: format!("vgl_d_{}", "0f".repeat(32)),
        fresh: service.device_token.clone(),
        refreshed: Default::default(),
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = SyncConfig {
        server_url: service.url.clone(),
        batch_max: 10,
        ..SyncConfig::default()
    };
    let handle = SyncEngine::start(
        path.clone(),
        patient,
        config,
        tokens.clone(),
        tx,
        Arc::new(SystemClock),
    )
    .unwrap();
    let first = handle.sync_now().await.unwrap();
    assert_eq!(
        tokens.refreshed.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // The burst is spent (the 401 counted too): the rest waits for the
    // server's Retry-After, and the engine's own timer finishes the job.
    assert!(
        first.failure.as_deref().unwrap_or("").contains("429"),
        "{first:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while buffer.count(None, Some(SyncState::Unsent)).unwrap() > 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.stop().await;
    assert_eq!(
        buffer.count(None, Some(SyncState::Acknowledged)).unwrap(),
        40
    );
    let mut waits = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let SyncEvent::Retrying { after, reason } = e {
            if reason.contains("429") {
                waits.push(after);
            }
        }
    }
    assert!(!waits.is_empty());
    assert!(
        waits.iter().all(|w| *w >= Duration::from_secs(1)),
        "{waits:?}"
    );
}

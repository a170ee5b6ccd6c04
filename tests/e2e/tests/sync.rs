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

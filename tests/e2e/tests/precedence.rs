//! One resolved series on the phone and in the cloud (issue 15): a patient
//! wearing two CGMs and two heart-rate straps for six simulated hours (the
//! facade simulates CGMs and straps only).
//! The phone resolves its buffer as the readings arrived; the cloud
//! resolves what the sync engine delivered, batch by batch, and again from
//! the same rows in reverse order. All three name the same reading for
//! every moment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vigil_core::api::{
    AlertEvent, BufferEvent, ClockMode, DeviceEvent, DeviceEventKind, DeviceKind, HostRequest,
    Listener, Network, ReadingEvent, SyncEvent, Vigil, VigilConfig,
};
use vigil_core::precedence::{PrecedenceConfig, Quantity};
use vigil_e2e::service::Service;
use vigil_ingest::resolved;
use vigil_ingest::storage::ReadingQuery;

#[derive(Default)]
struct Seen {
    stopped: Mutex<usize>,
}

impl Listener for Seen {
    fn on_reading(&self, _: ReadingEvent) {}
    fn on_alert(&self, _: AlertEvent) {}
    fn on_device_event(&self, e: DeviceEvent) {
        if e.kind == DeviceEventKind::Stopped {
            *self.stopped.lock().unwrap() += 1;
        }
    }
    fn on_sync_event(&self, _: SyncEvent) {}
    fn on_buffer_event(&self, _: BufferEvent) {}
    fn on_host_request(&self, _: HostRequest) {}
}

/// A resolved point as both sides can name it: device, stream, time.
type Point = (String, String, i64);

#[test]
fn phone_and_cloud_resolve_the_same_readings_to_the_same_series() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let service = rt.block_on(Service::start());
    let dir = tempfile::tempdir().unwrap();
    let hours = 6;
    let start_ms = Utc::now().timestamp_millis() - (hours + 2) * 3_600_000;
    let mut config = VigilConfig::new(dir.path().join("buffer.db"), service.patient.to_string());
    config.clock = ClockMode::Simulated {
        start_ms,
        run_for: Duration::from_secs(hours as u64 * 3600),
    };
    config.server_url = Some(service.url.clone());
    config.token = Some(service.device_token.clone());
    let seen = Arc::new(Seen::default());
    let mut sdk = Vigil::new(config, seen.clone(), None).unwrap();
    for (device, kind) in [
        ("cgm-a", DeviceKind::Cgm),
        ("cgm-b", DeviceKind::Cgm),
        ("strap-1", DeviceKind::HeartRate),
        ("strap-2", DeviceKind::HeartRate),
    ] {
        sdk.pair(device, kind).unwrap();
    }
    sdk.start().unwrap();
    let until = Instant::now() + Duration::from_secs(180);
    while *seen.stopped.lock().unwrap() < 4 {
        assert!(Instant::now() < until, "the simulated run did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    sdk.set_network(Network::Wifi);
    let until = Instant::now() + Duration::from_secs(180);
    loop {
        let _ = sdk.sync_now();
        if sdk.status().unwrap().unsent_readings == 0 {
            break;
        }
        assert!(Instant::now() < until, "readings still unsent");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (from_ms, to_ms) = (start_ms, start_ms + hours * 3_600_000 + 60_000);
    let from = DateTime::from_timestamp_millis(from_ms).unwrap();
    let to = DateTime::from_timestamp_millis(to_ms).unwrap();
    for quantity in [Quantity::Glucose, Quantity::HeartRate] {
        let phone: Vec<Point> = sdk
            .resolved_readings(quantity.as_str(), from_ms, to_ms)
            .unwrap()
            .into_iter()
            .map(|r| (r.device, r.stream, r.sensor_time_ms))
            .collect();
        let store = service.store.clone();
        let patient = service.patient;
        let (cloud, reversed, raw) = rt.block_on(async move {
            tokio::task::spawn_blocking(move || {
                let s = store.blocking();
                let cloud = resolved::resolve(s, patient, quantity, None, from, to).unwrap();
                let mut rows = Vec::new();
                for stream in quantity.streams() {
                    rows.extend(
                        s.readings(&ReadingQuery {
                            patient,
                            stream: Some(*stream),
                            from,
                            to,
                            limit: 1_000_000,
                        })
                        .unwrap(),
                    );
                }
                let raw = rows.len();
                rows.reverse();
                let reversed =
                    resolved::resolve_rows(patient, PrecedenceConfig::default_for(quantity), rows)
                        .unwrap();
                (cloud.series, reversed.series, raw)
            })
            .await
            .unwrap()
        });
        let name = |v: Vec<vigil_ingest::storage::StoredReading>| -> Vec<Point> {
            v.into_iter()
                .map(|r| {
                    (
                        r.device,
                        r.stream.as_str().to_string(),
                        r.time.timestamp_millis(),
                    )
                })
                .collect()
        };
        let (cloud, reversed) = (name(cloud), name(reversed));
        let q = quantity.as_str();
        assert!(
            phone.len() > 60,
            "{q}: only {} resolved on the phone",
            phone.len()
        );
        assert!(raw > phone.len(), "{q}: nothing to resolve ({raw} raw)");
        assert_eq!(cloud, reversed, "{q}: the cloud depends on arrival order");
        assert_eq!(
            phone.len(),
            cloud.len(),
            "{q}: phone and cloud differ in length"
        );
        assert_eq!(phone, cloud, "{q}: phone and cloud chose differently");
        let devices: BTreeSet<&str> = phone.iter().map(|p| p.0.as_str()).collect();
        assert!(!devices.is_empty());
    }
    sdk.close().unwrap();
}

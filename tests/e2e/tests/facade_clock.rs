//! The facade on simulated and accelerated time syncs to the real service:
//! requests run on real time (no instant timeouts from a paused clock), and
//! readings keep their simulated times on the server (no skew "correction"
//! between the two clocks).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vigil_core::api::{
    AlertEvent, BufferEvent, ClockMode, DeviceEvent, DeviceEventKind, DeviceKind, HostRequest,
    Listener, Network, ReadingEvent, SyncEvent, Vigil, VigilConfig,
};
use vigil_core::model::Stream;
use vigil_e2e::service::Service;
use vigil_ingest::storage::intake::ReadingQuery;

#[derive(Default)]
struct Seen {
    readings: Mutex<Vec<(String, i64)>>,
    stopped: Mutex<usize>,
}

impl Listener for Seen {
    fn on_reading(&self, r: ReadingEvent) {
        // The CGM's own trend stays on the phone (the service derives it):
        // only what the phone uploads is compared with the server.
        if Stream::parse(&r.stream).is_some_and(|s| !s.is_uploaded()) {
            return;
        }
        self.readings
            .lock()
            .unwrap()
            .push((r.stream, r.sensor_time_ms));
    }
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

fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// Syncs until the buffer has nothing unsent, within `limit`.
fn drain(sdk: &Vigil, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        let _ = sdk.sync_now();
        let s = sdk.status().unwrap();
        if s.unsent_readings == 0 {
            return;
        }
        assert!(
            Instant::now() < until,
            "{} readings still unsent",
            s.unsent_readings
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stored(rt: &tokio::runtime::Runtime, service: &Service) -> Vec<(String, i64)> {
    let store = service.store.clone();
    let patient = service.patient;
    rt.block_on(async move {
        tokio::task::spawn_blocking(move || {
            store
                .blocking()
                .readings(&ReadingQuery {
                    patient,
                    stream: None,
                    from: DateTime::<Utc>::MIN_UTC,
                    to: DateTime::<Utc>::MAX_UTC,
                    limit: 1_000_000,
                })
                .unwrap()
        })
        .await
        .unwrap()
    })
    .into_iter()
    .map(|r| (r.stream.as_str().to_string(), r.time.timestamp_millis()))
    .collect()
}

fn sorted(mut v: Vec<(String, i64)>) -> Vec<(String, i64)> {
    v.sort();
    v
}

#[test]
fn simulated_hours_sync_to_the_real_service_with_their_own_times() {
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
    sdk.pair("cgm-1", DeviceKind::Cgm).unwrap();
    sdk.pair("strap-1", DeviceKind::HeartRate).unwrap();
    sdk.start().unwrap();
    assert!(
        wait_for(Duration::from_secs(120), || *seen.stopped.lock().unwrap()
            == 2),
        "the simulated run did not finish"
    );
    sdk.set_network(Network::Wifi);
    drain(&sdk, Duration::from_secs(120));
    sdk.close().unwrap();

    let phone = sorted(seen.readings.lock().unwrap().clone());
    assert!(phone.len() > 1000, "only {} readings", phone.len());
    // Glucose may be reduced at sync time (held back, reconstructed on the
    // server at the same times); every reading arrives once, with the
    // phone's (simulated) time, none shifted by the gap to the wall clock.
    // (Several RR intervals of one notification share a time, so compare
    // sorted lists, not sets.)
    let server = sorted(stored(&rt, &service));
    assert_eq!(server.len(), phone.len(), "lost or duplicated readings");
    assert!(
        server == phone,
        "the server's reading times differ from the phone's"
    );
}

#[test]
fn accelerated_time_catches_up_with_the_wall_clock_and_syncs_as_it_goes() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let service = rt.block_on(Service::start());
    let dir = tempfile::tempdir().unwrap();
    // Two simulated hours behind, at 3600x: caught up after about 2 s.
    let start_ms = Utc::now().timestamp_millis() - 2 * 3_600_000;
    let mut config = VigilConfig::new(dir.path().join("buffer.db"), service.patient.to_string());
    config.clock = ClockMode::Accelerated {
        start_ms,
        factor: 3600.0,
    };
    config.server_url = Some(service.url.clone());
    config.token = Some(service.device_token.clone());
    config.sync_interval = vigil_core::api::Seconds::minutes(15);
    let seen = Arc::new(Seen::default());
    let mut sdk = Vigil::new(config, seen.clone(), None).unwrap();
    sdk.pair("cgm-1", DeviceKind::Cgm).unwrap();
    sdk.set_network(Network::Wifi);
    sdk.start().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    // Caught up: the newest reading is recent, never in the future.
    let now = Utc::now().timestamp_millis();
    let newest = seen
        .readings
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.1)
        .max()
        .unwrap();
    assert!(newest <= now, "a reading from the future");
    assert!(
        now - newest < 15 * 60_000,
        "still {} s behind",
        (now - newest) / 1000
    );
    // The 15-minute timer has fired on simulated time: batches went out
    // without any sync_now.
    assert!(
        wait_for(Duration::from_secs(20), || !stored(&rt, &service)
            .is_empty()),
        "nothing synced on the timer"
    );
    sdk.stop().unwrap();
    drain(&sdk, Duration::from_secs(60));
    sdk.close().unwrap();
    let phone = sorted(seen.readings.lock().unwrap().clone());
    let server = sorted(stored(&rt, &service));
    assert_eq!(server.len(), phone.len());
    assert!(
        server == phone,
        "the server's reading times differ from the phone's"
    );
}

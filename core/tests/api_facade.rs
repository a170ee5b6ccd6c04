//! The SDK facade end to end: a simulated CGM on simulated time, readings
//! and alerts reach the listener on the callback thread, alerts are in the
//! outbox, stop is clean, and host-fed and error paths behave.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_core::api::{
    AlertEvent, BufferEvent, ClockMode, DeviceEvent, DeviceKind, HostRequest, Listener,
    ReadingEvent, SdkError, SyncEvent, TransportMode, Vigil, VigilConfig,
};

#[derive(Default)]
struct Collected {
    readings: Vec<ReadingEvent>,
    alerts: Vec<AlertEvent>,
    devices: Vec<DeviceEvent>,
    hosts: Vec<HostRequest>,
    threads: Vec<String>,
}

#[derive(Default)]
struct Recorder(Mutex<Collected>);

impl Recorder {
    fn note(&self, f: impl FnOnce(&mut Collected)) {
        let mut c = self.0.lock().unwrap();
        c.threads
            .push(std::thread::current().name().unwrap_or("?").to_string());
        f(&mut c);
    }
}

impl Listener for Recorder {
    fn on_reading(&self, r: ReadingEvent) {
        self.note(|c| c.readings.push(r));
    }
    fn on_alert(&self, a: AlertEvent) {
        self.note(|c| c.alerts.push(a));
    }
    fn on_device_event(&self, e: DeviceEvent) {
        self.note(|c| c.devices.push(e));
    }
    fn on_sync_event(&self, _: SyncEvent) {}
    fn on_buffer_event(&self, _: BufferEvent) {}
    fn on_host_request(&self, r: HostRequest) {
        self.note(|c| c.hosts.push(r));
    }
}

fn wait_for(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

fn simulated(dir: &std::path::Path, hours: u64) -> VigilConfig {
    let mut c = VigilConfig::new(dir.join("buffer.db"), "patient-1");
    c.clock = ClockMode::Simulated {
        start_ms: 1_767_571_200_000, // 2026-01-05T00:00:00Z
        run_for: Duration::from_secs(hours * 3600),
    };
    c
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn simulated_cgm_readings_and_alerts_reach_the_listener_and_the_outbox() {
    let dir = tempdir("cgm");
    let rec = Arc::new(Recorder::default());
    let mut sdk = Vigil::new(simulated(&dir, 48), rec.clone(), None).unwrap();
    sdk.pair("cgm-1", DeviceKind::Cgm).unwrap();
    sdk.start().unwrap();
    assert!(sdk.is_running());
    // 48 simulated hours of 5-minute readings: the session ends by itself.
    let finished = wait_for(Duration::from_secs(120), || {
        rec.0
            .lock()
            .unwrap()
            .devices
            .iter()
            .any(|d| d.kind == "stopped")
    });
    assert!(finished, "the session did not finish its simulated run");
    sdk.stop().unwrap();
    let status = sdk.status().unwrap();
    let c = rec.0.lock().unwrap();
    let glucose: Vec<_> = c
        .readings
        .iter()
        .filter(|r| r.stream == "glucose")
        .collect();
    assert!(
        glucose.len() > 400,
        "only {} glucose readings",
        glucose.len()
    );
    assert!(
        glucose
            .iter()
            .all(|r| r.unit == "mg/dL" && r.device == "cgm-1")
    );
    assert!(c.devices.iter().any(|d| d.kind == "connected"));
    // Every callback on the SDK's callback thread, none on the test's.
    assert!(c.threads.iter().all(|t| t == "vigil-callbacks"));
    // Two days of a simulated type 1 patient cross the alert thresholds.
    assert!(!c.alerts.is_empty(), "no alert in 48 h");
    assert!(c.alerts.iter().all(|a| a.device == "cgm-1"));
    assert_eq!(status.pending_alerts as usize, {
        let mut ids: Vec<_> = c.alerts.iter().map(|a| (&a.id, &a.phase)).collect();
        ids.sort();
        ids.dedup();
        ids.len()
    });
    assert_eq!(status.stored_readings as usize, c.readings.len());
    assert_eq!(status.unsent_readings, status.stored_readings);
    assert!(status.last_device_contact_ms.is_some());
    assert_eq!(status.devices, vec!["cgm-1".to_string()]);
    drop(c);
    sdk.close().unwrap();
    // The buffer is whole and reopens with everything in it.
    let rec2 = Arc::new(Recorder::default());
    let sdk2 = Vigil::new(simulated(&dir, 1), rec2, None).unwrap();
    assert_eq!(
        sdk2.status().unwrap().stored_readings,
        status.stored_readings
    );
}

#[test]
fn stop_is_prompt_and_start_stop_cycles_do_not_leak_threads() {
    let dir = tempdir("cycles");
    let rec = Arc::new(Recorder::default());
    let sdk = Vigil::new(simulated(&dir, 24 * 365), rec.clone(), None).unwrap();
    sdk.pair("cgm-1", DeviceKind::Cgm).unwrap();
    let threads = || {
        std::fs::read_dir("/proc/self/task")
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let mut before = 0;
    for i in 0..30 {
        sdk.start().unwrap();
        let t = Instant::now();
        sdk.stop().unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "stop took {:?}",
            t.elapsed()
        );
        assert!(!sdk.is_running());
        if i == 5 {
            before = threads();
        }
    }
    assert!(
        threads() <= before + 1,
        "threads grew from {before} to {}",
        threads()
    );
    let stops = rec
        .0
        .lock()
        .unwrap()
        .devices
        .iter()
        .filter(|d| d.kind == "stopped")
        .count();
    assert!(
        wait_for(Duration::from_secs(5), || {
            rec.0
                .lock()
                .unwrap()
                .devices
                .iter()
                .filter(|d| d.kind == "stopped")
                .count()
                == 30
        }),
        "stopped events: {stops}"
    );
}

#[test]
fn host_fed_requests_reach_the_listener_and_bad_input_is_refused() {
    let dir = tempdir("host");
    let rec = Arc::new(Recorder::default());
    let mut cfg = VigilConfig::new(dir.join("buffer.db"), "patient-1");
    cfg.transport = TransportMode::HostFed;
    let sdk = Vigil::new(cfg, rec.clone(), None).unwrap();
    sdk.pair("AA:BB", DeviceKind::HeartRate).unwrap();
    sdk.start().unwrap();
    assert!(wait_for(Duration::from_secs(10), || {
        !rec.0.lock().unwrap().hosts.is_empty()
    }));
    let first = rec.0.lock().unwrap().hosts[0].clone();
    assert_eq!(first.command, "connect");
    assert_eq!(first.device.as_deref(), Some("AA:BB"));
    // An answer for a token the core never issued is refused.
    assert!(matches!(
        sdk.complete_host_request(first.token + 1000, vigil_core::api::HostReply::Done),
        Err(SdkError::Device { .. } | SdkError::InvalidInput { .. })
    ));
    assert!(matches!(
        sdk.feed_host_bytes("AA:BB", "not-a-uuid", vec![0]),
        Err(SdkError::InvalidInput { .. })
    ));
    sdk.stop().unwrap();
}

#[test]
fn errors_are_clear_and_typed() {
    let dir = tempdir("errors");
    let rec = Arc::new(Recorder::default());
    let bad = VigilConfig::new(dir.join("b.db"), " ");
    assert!(matches!(
        Vigil::new(bad, rec.clone(), None),
        Err(SdkError::InvalidInput { .. })
    ));
    std::fs::write(dir.join("junk.db"), vec![7u8; 4096]).unwrap();
    let junk = VigilConfig::new(dir.join("junk.db"), "p");
    assert!(matches!(
        Vigil::new(junk, rec.clone(), None),
        Err(SdkError::Storage { .. })
    ));
    let sdk = Vigil::new(simulated(&dir, 1), rec, None).unwrap();
    assert!(matches!(sdk.start(), Err(SdkError::NotAvailable { .. })));
    assert!(matches!(
        sdk.forget("nope"),
        Err(SdkError::InvalidInput { .. })
    ));
    assert!(matches!(sdk.sync_now(), Err(SdkError::NotAvailable { .. })));
    assert!(matches!(
        sdk.feed_host_bytes("x", "2a37", vec![0]),
        Err(SdkError::NotAvailable { .. })
    ));
    let msg = sdk.sync_now().unwrap_err().to_string();
    assert!(msg.contains("server_url"), "{msg}");
}

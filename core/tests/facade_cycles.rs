//! Start/stop cycles of the SDK facade: stop is prompt, every cycle reports
//! its session stopped, and no thread is left behind.
//!
//! This test counts the process's threads, so it lives alone in its own test
//! binary: any sibling test running at the same time would add threads of its
//! own and make the count meaningless.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_core::api::{
    AlertEvent, BufferEvent, ClockMode, DeviceEvent, DeviceEventKind, DeviceKind, HostRequest,
    Listener, ReadingEvent, SyncEvent, Vigil, VigilConfig,
};

#[derive(Default)]
struct Collected {
    devices: Vec<DeviceEvent>,
}

#[derive(Default)]
struct Recorder(Mutex<Collected>);

impl Listener for Recorder {
    fn on_reading(&self, _: ReadingEvent) {}
    fn on_alert(&self, _: AlertEvent) {}
    fn on_device_event(&self, e: DeviceEvent) {
        self.0.lock().unwrap().devices.push(e);
    }
    fn on_sync_event(&self, _: SyncEvent) {}
    fn on_buffer_event(&self, _: BufferEvent) {}
    fn on_host_request(&self, _: HostRequest) {}
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
    let d = std::env::temp_dir().join(format!("vigil-cycles-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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
        .filter(|d| d.kind == DeviceEventKind::Stopped)
        .count();
    assert!(
        wait_for(Duration::from_secs(5), || {
            rec.0
                .lock()
                .unwrap()
                .devices
                .iter()
                .filter(|d| d.kind == DeviceEventKind::Stopped)
                .count()
                == 30
        }),
        "stopped events: {stops}"
    );
}

//! The SDK facade end to end: a simulated CGM on simulated time, readings
//! and alerts reach the listener on the callback thread, alerts are in the
//! outbox, and host-fed and error paths behave.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_core::api::{
    AlertEvent, AlertKind, BufferEvent, ClockMode, DeviceEvent, DeviceEventKind, DeviceKind,
    DeviceOutOfRange, HostRequest, Listener, Phase, ReadingEvent, SdkError, SyncEvent,
    TransportMode, Vigil, VigilConfig,
};

#[derive(Default)]
struct Collected {
    syncs: Vec<SyncEvent>,
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
    fn on_sync_event(&self, e: SyncEvent) {
        self.note(|c| c.syncs.push(e));
    }
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

/// Waits (up to 2 minutes) for a device session to report it stopped: a
/// simulated run ends by itself.
fn session_stopped(rec: &Recorder) -> bool {
    wait_for(Duration::from_secs(120), || {
        rec.0
            .lock()
            .unwrap()
            .devices
            .iter()
            .any(|d| d.kind == DeviceEventKind::Stopped)
    })
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
fn simulated_time_starts_at_start_ms_however_long_pairing_took() {
    // A paused runtime jumps to its next timer whenever it is idle: the
    // simulated radio's tick carried the clock minutes ahead before
    // `start`, so runs began at arbitrary times and short ones were empty.
    let dir = tempdir("clock-held");
    let rec = Arc::new(Recorder::default());
    let mut config = simulated(&dir, 1);
    config.simulation.get_or_insert_default().field_faults = false;
    let mut sdk = Vigil::new(config, rec.clone(), None).unwrap();
    sdk.pair("strap-1", DeviceKind::HeartRate).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sdk.start().unwrap();
    assert!(session_stopped(&rec), "the simulated hour did not end");
    sdk.close().unwrap();
    let c = rec.0.lock().unwrap();
    let connected = c
        .devices
        .iter()
        .find(|d| d.kind == DeviceEventKind::Connected)
        .unwrap();
    assert_eq!(connected.time_ms, 1_767_571_200_000);
    let beats = c.readings.iter().filter(|r| r.stream == "heart_rate");
    // One beat a second for the whole hour, from its first second.
    assert!((3590..=3601).contains(&beats.count()));
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
    let finished = session_stopped(&rec);
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
    assert!(
        c.devices
            .iter()
            .any(|d| d.kind == DeviceEventKind::Connected)
    );
    // Every callback on the SDK's callback thread, none on the test's.
    assert!(c.threads.iter().all(|t| t == "vigil-callbacks"));
    // Two days of a simulated type 1 patient cross the alert thresholds.
    assert!(!c.alerts.is_empty(), "no alert in 48 h");
    assert!(c.alerts.iter().all(|a| a.device == "cgm-1"));
    assert_eq!(status.pending_alerts as usize, {
        let mut ids: Vec<_> = c.alerts.iter().map(|a| (&a.id, a.phase as u8)).collect();
        ids.sort();
        ids.dedup();
        ids.len()
    });
    assert_eq!(status.stored_readings as usize, c.readings.len());
    // Nothing synced yet: every reading is unsent but the CGM's own trend,
    // which stays on the phone and is never pending.
    assert!(status.ledger.local_only > 0);
    assert_eq!(
        status.unsent_readings + status.ledger.local_only,
        status.stored_readings
    );
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

/// Stops the SDK from inside its own reading callback.
struct StopOnFirstReading {
    sdk: std::sync::OnceLock<std::sync::Weak<Vigil>>,
    result: Mutex<Option<Result<(), SdkError>>>,
}

impl Listener for StopOnFirstReading {
    fn on_reading(&self, _: ReadingEvent) {
        let mut result = self.result.lock().unwrap();
        if result.is_none() {
            let sdk = self.sdk.get().and_then(|w| w.upgrade()).unwrap();
            *result = Some(sdk.stop());
        }
    }
    fn on_alert(&self, _: AlertEvent) {}
    fn on_device_event(&self, _: DeviceEvent) {}
    fn on_sync_event(&self, _: SyncEvent) {}
    fn on_buffer_event(&self, _: BufferEvent) {}
    fn on_host_request(&self, _: HostRequest) {}
}

#[test]
fn a_callback_may_call_back_into_the_sdk_even_to_stop_it() {
    let dir = tempdir("reentrant");
    let listener = Arc::new(StopOnFirstReading {
        sdk: std::sync::OnceLock::new(),
        result: Mutex::new(None),
    });
    let sdk = Arc::new(Vigil::new(simulated(&dir, 24 * 365), listener.clone(), None).unwrap());
    listener.sdk.set(Arc::downgrade(&sdk)).unwrap();
    sdk.pair("cgm-1", DeviceKind::Cgm).unwrap();
    sdk.start().unwrap();
    assert!(wait_for(Duration::from_secs(30), || {
        listener.result.lock().unwrap().is_some()
    }));
    assert_eq!(listener.result.lock().unwrap().clone(), Some(Ok(())));
    assert!(!sdk.is_running());
}

#[test]
fn with_a_server_that_is_down_alerts_are_tried_at_once_and_stay_in_the_outbox() {
    let dir = tempdir("sync-down");
    // A loopback port with nobody listening: every request is refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = simulated(&dir, 48);
    cfg.server_url = Some(format!("http://127.0.0.1:{port}"));
    let rec = Arc::new(Recorder::default());
    // A server without any token is refused up front.
    assert!(matches!(
        Vigil::new(cfg.clone(), rec.clone(), None),
        Err(SdkError::InvalidInput { .. })
    ));
    cfg.token = Some("device-token".into());
    let sdk = Vigil::new(cfg, rec.clone(), None).unwrap();
    // Offline: nothing is attempted, nothing fails.
    assert_eq!(sdk.sync_now(), Ok(0));
    sdk.set_network(vigil_core::api::Network::Cellular);
    sdk.pair("cgm-1", DeviceKind::Cgm).unwrap();
    sdk.start().unwrap();
    assert!(session_stopped(&rec));
    let c = rec.0.lock().unwrap();
    assert!(!c.alerts.is_empty());
    // The engine tried (and was refused) without waiting for a batch.
    assert!(
        c.syncs.iter().any(|e| e.kind == "retrying"),
        "{:?}",
        c.syncs
    );
    assert!(!c.syncs.iter().any(|e| e.kind == "alert_delivered"));
    drop(c);
    match sdk.sync_now() {
        Err(SdkError::Network { .. }) => {}
        other => panic!("sync_now against a closed port: {other:?}"),
    }
    let status = sdk.status().unwrap();
    assert!(status.pending_alerts > 0);
    assert_eq!(status.ledger.acknowledged, 0);
    assert_eq!(status.last_sync_ms, None);
}

#[test]
fn accelerated_time_runs_at_its_factor_until_stopped() {
    let dir = tempdir("accelerated");
    let rec = Arc::new(Recorder::default());
    let start_ms = 1_767_571_200_000;
    let factor = 3600.0; // one simulated hour per wall second
    let mut c = VigilConfig::new(dir.join("buffer.db"), "patient-1");
    c.clock = ClockMode::Accelerated { start_ms, factor };
    let mut sdk = Vigil::new(c, rec.clone(), None).unwrap();
    sdk.pair("cgm-1", DeviceKind::Cgm).unwrap();
    let wall = Instant::now();
    sdk.start().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let latest = |rec: &Recorder| {
        rec.0
            .lock()
            .unwrap()
            .readings
            .iter()
            .map(|r| r.sensor_time_ms)
            .max()
    };
    let seen = latest(&rec).expect("no reading in 3 simulated hours");
    let elapsed = wall.elapsed().as_secs_f64();
    let simulated_s = (seen - start_ms) as f64 / 1000.0;
    // Paced: never ahead of the factor (plus one pacing step and the
    // sensor's warm-up), and not stalled either (a loaded machine lags).
    assert!(
        simulated_s <= factor * (elapsed + 0.1),
        "{simulated_s} simulated s after {elapsed} wall s"
    );
    assert!(
        simulated_s >= factor * 0.5,
        "only {simulated_s} simulated s after {elapsed} wall s"
    );
    // Still running: accelerated sessions have no end of their own.
    assert!(sdk.is_running());
    std::thread::sleep(Duration::from_millis(500));
    assert!(latest(&rec).unwrap() > seen, "time stopped while running");
    sdk.stop().unwrap();
    sdk.close().unwrap();
}

#[test]
fn acceleration_factor_out_of_range_is_refused() {
    let dir = tempdir("bad-factor");
    for factor in [0.5, f64::NAN, f64::INFINITY, 2.0e6] {
        let mut c = VigilConfig::new(dir.join("buffer.db"), "patient-1");
        c.clock = ClockMode::Accelerated {
            start_ms: 1_767_571_200_000,
            factor,
        };
        let err = Vigil::new(c, Arc::new(Recorder::default()), None).unwrap_err();
        assert!(matches!(err, SdkError::InvalidInput { .. }), "{err:?}");
    }
}

#[test]
fn export_walks_every_stored_reading_once_through_a_cursor_that_survives_reopening() {
    let dir = tempdir("export");
    let rec = Arc::new(Recorder::default());
    let mut sdk = Vigil::new(simulated(&dir, 3), rec.clone(), None).unwrap();
    sdk.pair("cgm-1", DeviceKind::Cgm).unwrap();
    sdk.start().unwrap();
    let finished = session_stopped(&rec);
    assert!(finished, "the session did not finish its simulated run");
    sdk.stop().unwrap();
    let decoded: Vec<u64> = rec
        .0
        .lock()
        .unwrap()
        .readings
        .iter()
        .filter(|r| r.stream == "glucose")
        .map(|r| r.sequence)
        .collect();
    assert!(
        decoded.len() > 20,
        "only {} glucose readings",
        decoded.len()
    );
    let glucose = vec!["glucose".to_string()];

    // Half, confirmed; then an unconfirmed batch (the store failed).
    let half = decoded.len() as u32 / 2;
    let first = sdk.export_batch("health_connect", &glucose, half).unwrap();
    assert_eq!(first.readings.len(), half as usize);
    assert!(first.readings.iter().all(|r| r.stream == "glucose"));
    sdk.confirm_export("health_connect", first.cursor).unwrap();
    let lost = sdk.export_batch("health_connect", &glucose, 5).unwrap();
    sdk.close().unwrap();

    let sdk = Vigil::new(simulated(&dir, 1), Arc::new(Recorder::default()), None).unwrap();
    let resent = sdk.export_batch("health_connect", &glucose, 5).unwrap();
    assert_eq!(resent, lost);
    // Confirming an older batch again moves nothing back.
    sdk.confirm_export("health_connect", first.cursor).unwrap();
    let mut exported: Vec<u64> = first.readings.iter().map(|r| r.sequence).collect();
    loop {
        let b = sdk.export_batch("health_connect", &glucose, 7).unwrap();
        if b.readings.is_empty() {
            assert_eq!(b.cursor, 0);
            sdk.confirm_export("health_connect", b.cursor).unwrap();
            break;
        }
        exported.extend(b.readings.iter().map(|r| r.sequence));
        sdk.confirm_export("health_connect", b.cursor).unwrap();
    }
    assert_eq!(exported, decoded);

    // Bad input is a typed error, never a panic.
    fn invalid<T>(r: Result<T, SdkError>) -> bool {
        matches!(r, Err(SdkError::InvalidInput { .. }))
    }
    assert!(invalid(sdk.export_batch("", &glucose, 10)));
    assert!(invalid(sdk.export_batch(
        "hc",
        &["insulin".to_string()],
        10
    )));
    assert!(invalid(sdk.export_batch("hc", &[], 10)));
    assert!(invalid(sdk.export_batch("hc", &glucose, 0)));
    assert!(invalid(sdk.export_batch("hc", &glucose, u32::MAX)));
    assert!(invalid(sdk.confirm_export(" ", 1)));
    assert!(invalid(sdk.confirm_export("hc", u64::MAX)));
    assert!(invalid(sdk.confirm_export("hc", first.cursor + 1_000_000)));
}

// ----- source precedence on the phone (issue 15) ---------------------------

/// Waits (up to 2 minutes) until `n` device sessions reported they stopped.
fn sessions_stopped(rec: &Recorder, n: usize) -> bool {
    wait_for(Duration::from_secs(120), || {
        rec.0
            .lock()
            .unwrap()
            .devices
            .iter()
            .filter(|d| d.kind == DeviceEventKind::Stopped)
            .count()
            >= n
    })
}

/// The alert kinds glucose readings drive (battery and sensor session
/// alerts belong to each device).
fn glucose_alert(a: &AlertEvent) -> bool {
    !matches!(
        a.kind,
        AlertKind::BatteryLow | AlertKind::SensorSessionEnding
    )
}

/// Asserts that no two episodes of one kind are open at once: each episode
/// (an id) runs from its start to its end (or forever).
fn assert_one_episode_at_a_time(alerts: &[AlertEvent]) {
    let mut episodes: std::collections::BTreeMap<(AlertKind, String), (i64, i64)> =
        std::collections::BTreeMap::new();
    for a in alerts.iter().filter(|a| glucose_alert(a)) {
        let e = episodes
            .entry((a.kind, a.id.clone()))
            .or_insert((i64::MAX, i64::MAX));
        match a.phase {
            Phase::Start => e.0 = a.time_ms,
            Phase::End => e.1 = a.time_ms,
            Phase::Realert => {}
        }
    }
    let mut by_kind: std::collections::BTreeMap<AlertKind, Vec<(i64, i64)>> =
        std::collections::BTreeMap::new();
    for ((kind, _), span) in episodes {
        by_kind.entry(kind).or_default().push(span);
    }
    for (kind, mut spans) in by_kind {
        spans.sort();
        for w in spans.windows(2) {
            assert!(
                w[1].0 >= w[0].1,
                "two {kind:?} episodes at once: {:?} and {:?}",
                w[0],
                w[1]
            );
        }
    }
}

/// What one device's glucose series alone raises, replayed through a fresh
/// alert engine in sensor-time order: (kind, phase, time).
fn replay_alone(readings: &[ReadingEvent], device: &str) -> Vec<(AlertKind, Phase, i64)> {
    use vigil_core::alerts::{AlertConfig, AlertEngine};
    let mut series: Vec<&ReadingEvent> = readings
        .iter()
        .filter(|r| r.device == device && r.stream == "glucose")
        .collect();
    series.sort_by_key(|r| r.sensor_time_ms);
    series.dedup_by_key(|r| r.sensor_time_ms);
    let mut engine = AlertEngine::new(AlertConfig::default(), "replay").unwrap();
    let mut out = Vec::new();
    for r in series {
        let sample = vigil_core::model::Sample {
            time: chrono::DateTime::from_timestamp_millis(r.sensor_time_ms).unwrap(),
            value: r.value,
        };
        for e in engine.on_glucose(sample).unwrap() {
            out.push((e.kind, e.phase, e.time.timestamp_millis()));
        }
    }
    out
}

#[test]
fn two_cgms_with_offset_values_raise_each_episode_once_from_one_series() {
    let dir = tempdir("two-cgms");
    let rec = Arc::new(Recorder::default());
    let mut cfg = simulated(&dir, 12);
    // Both sensors fall into lows within hours, each with its own values
    // (their seeds differ): two series that disagree, on one patient.
    cfg.simulation.get_or_insert_default().glucose = vigil_core::api::SimulatedGlucose::HypoProne;
    let mut sdk = Vigil::new(cfg, rec.clone(), None).unwrap();
    sdk.pair("cgm-a", DeviceKind::Cgm).unwrap();
    sdk.pair("cgm-b", DeviceKind::Cgm).unwrap();
    sdk.start().unwrap();
    assert!(
        sessions_stopped(&rec, 2),
        "the simulated runs did not finish"
    );
    sdk.stop().unwrap();
    let c = rec.0.lock().unwrap();
    assert!(
        !c.devices.iter().any(|d| d.kind == DeviceEventKind::Failed),
        "{:?}",
        c.devices
    );
    // Both series reach the app raw.
    for d in ["cgm-a", "cgm-b"] {
        let n = c
            .readings
            .iter()
            .filter(|r| r.device == d && r.stream == "glucose")
            .count();
        assert!(n > 100, "{d}: {n} readings");
    }
    let alerts: Vec<AlertEvent> = c
        .alerts
        .iter()
        .filter(|a| glucose_alert(a))
        .cloned()
        .collect();
    assert!(!alerts.is_empty(), "a hypo-prone patient raised no alert");
    // One source stands for the patient: every glucose alert names it...
    let followed: std::collections::BTreeSet<&str> =
        alerts.iter().map(|a| a.device.as_str()).collect();
    assert_eq!(followed.len(), 1, "alerts from {followed:?}");
    let followed = *followed.iter().next().unwrap();
    // ...no episode is raised twice...
    assert_one_episode_at_a_time(&alerts);
    // ...and the alerts are exactly what that sensor's own series raises:
    // no fast rise or fall drawn across the two sensors' offset.
    let raised: Vec<(AlertKind, Phase, i64)> = alerts
        .iter()
        .map(|a| (a.kind, a.phase, a.time_ms))
        .collect();
    assert_eq!(raised, replay_alone(&c.readings, followed));
    let status = sdk.status().unwrap();
    assert_eq!(status.stored_readings as usize, c.readings.len());
    drop(c);
    sdk.close().unwrap();
}

const T0_MS: i64 = 1_767_571_200_000;
const HOUR_MS: i64 = 3_600_000;

#[test]
fn a_sensor_change_with_two_hours_of_overlapping_backfill_stores_everything_and_alerts_once() {
    let dir = tempdir("sensor-change");
    let rec = Arc::new(Recorder::default());
    let mut cfg = simulated(&dir, 10);
    cfg.simulation.get_or_insert_default().glucose = vigil_core::api::SimulatedGlucose::HypoProne;
    // The new sensor goes on at 4 h; the old one has been out of range
    // since then and comes back at 6 h with two hours of backfill, which
    // overlap the new sensor's live readings.
    cfg.simulation
        .get_or_insert_default()
        .device_out_of_range_ms = vec![
        DeviceOutOfRange {
            device: "cgm-new".into(),
            from_ms: T0_MS,
            to_ms: T0_MS + 4 * HOUR_MS,
        },
        DeviceOutOfRange {
            device: "cgm-old".into(),
            from_ms: T0_MS + 4 * HOUR_MS,
            to_ms: T0_MS + 6 * HOUR_MS,
        },
    ];
    let mut sdk = Vigil::new(cfg, rec.clone(), None).unwrap();
    sdk.pair("cgm-old", DeviceKind::Cgm).unwrap();
    sdk.pair("cgm-new", DeviceKind::Cgm).unwrap();
    sdk.start().unwrap();
    assert!(
        sessions_stopped(&rec, 2),
        "the simulated runs did not finish"
    );
    sdk.stop().unwrap();
    let c = rec.0.lock().unwrap();
    // No error: neither session failed on the overlap.
    assert!(
        !c.devices.iter().any(|d| d.kind == DeviceEventKind::Failed),
        "{:?}",
        c.devices
    );
    // Every reading is buffered, the overlapping backfill included.
    let status = sdk.status().unwrap();
    assert_eq!(status.stored_readings as usize, c.readings.len());
    let in_overlap = |d: &str| {
        c.readings
            .iter()
            .filter(|r| {
                r.device == d
                    && r.stream == "glucose"
                    && (T0_MS + 4 * HOUR_MS..T0_MS + 6 * HOUR_MS).contains(&r.sensor_time_ms)
            })
            .count()
    };
    assert!(
        in_overlap("cgm-old") >= 20,
        "old backfill: {}",
        in_overlap("cgm-old")
    );
    assert!(
        in_overlap("cgm-new") >= 20,
        "new live: {}",
        in_overlap("cgm-new")
    );
    let alerts: Vec<AlertEvent> = c
        .alerts
        .iter()
        .filter(|a| glucose_alert(a))
        .cloned()
        .collect();
    assert!(!alerts.is_empty(), "a hypo-prone patient raised no alert");
    // No alert raised twice, no two episodes of a kind at once...
    // (id, kind, whether it is the end): starts and ends only.
    let mut raised: Vec<(&str, AlertKind, bool)> = alerts
        .iter()
        .filter(|a| a.phase != Phase::Realert)
        .map(|a| (a.id.as_str(), a.kind, a.phase == Phase::End))
        .collect();
    let n = raised.len();
    raised.sort();
    raised.dedup();
    assert_eq!(raised.len(), n, "an alert was raised twice");
    assert_one_episode_at_a_time(&alerts);
    // ...the new sensor took over before a signal loss could sound, and
    // the old sensor's backfill raised nothing.
    assert!(
        !alerts.iter().any(|a| a.kind == AlertKind::SignalLoss),
        "{alerts:?}"
    );
    assert!(
        alerts
            .iter()
            .filter(|a| a.time_ms >= T0_MS + 4 * HOUR_MS)
            .all(|a| a.device == "cgm-new"),
        "{alerts:?}"
    );
    drop(c);
    sdk.close().unwrap();
}

#[test]
fn the_resolved_view_has_one_reading_per_coincident_moment_and_readings_stay_raw() {
    let dir = tempdir("resolved");
    let rec = Arc::new(Recorder::default());
    let mut sdk = Vigil::new(simulated(&dir, 3), rec.clone(), None).unwrap();
    sdk.pair("cgm-a", DeviceKind::Cgm).unwrap();
    sdk.pair("cgm-b", DeviceKind::Cgm).unwrap();
    sdk.start().unwrap();
    assert!(
        sessions_stopped(&rec, 2),
        "the simulated runs did not finish"
    );
    sdk.stop().unwrap();
    let (from, to) = (T0_MS, T0_MS + 3 * HOUR_MS + 1);
    let resolved = sdk.resolved_readings("glucose", from, to).unwrap();
    let c = rec.0.lock().unwrap();
    let mut raw: Vec<&ReadingEvent> = c
        .readings
        .iter()
        .filter(|r| r.stream == "glucose" && (from..to).contains(&r.sensor_time_ms))
        .collect();
    raw.sort_by_key(|r| r.sensor_time_ms);
    // The raw series holds both sensors, moment by moment.
    assert!(raw.iter().any(|r| r.device == "cgm-a") && raw.iter().any(|r| r.device == "cgm-b"));
    // The moments, as the glucose policy cuts them: each opened by the
    // earliest reading not yet in one, 5 minutes wide.
    let mut moments: Vec<Vec<&ReadingEvent>> = Vec::new();
    for r in &raw {
        match moments.last_mut() {
            Some(m) if r.sensor_time_ms - m[0].sensor_time_ms < 5 * 60_000 => m.push(r),
            _ => moments.push(vec![r]),
        }
    }
    assert!(
        moments.iter().any(|m| m.len() > 1),
        "no coincident readings"
    );
    assert_eq!(resolved.len(), moments.len());
    for (point, moment) in resolved.iter().zip(&moments) {
        assert!(
            moment.contains(&point),
            "{point:?} is not of its moment {moment:?}"
        );
    }
    assert!(raw.len() > resolved.len());
    // Bad input is refused with a reason.
    for (q, f, t) in [
        ("insulin", from, to),
        ("glucose", to, from),
        ("glucose", 0, 2 * 86_400_000),
    ] {
        assert!(matches!(
            sdk.resolved_readings(q, f, t),
            Err(SdkError::InvalidInput { .. })
        ));
    }
    drop(c);
    sdk.close().unwrap();
}

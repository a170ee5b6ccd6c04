//! The session fault suite: for every fault a simulated device can suffer,
//! what the sink ends with. Each CGM test checks the same invariant: every
//! record the sensor still holds is in the sink exactly once, in order, with
//! its bytes and the right absolute time; anything it no longer holds is an
//! explicit gap.
//!
//! The suite is written once and instantiated per transport and per sink
//! by `fault_suite!` (one line each below): the in-memory sink, and the
//! SQLite buffer in a temporary file, where every assertion about readings
//! and gaps reads what the buffer holds through its public queries
//! (`readings_of`, `gaps`, `session_cursor`, `completeness`). The buffer
//! keeps no device events (see `store::sink`), so the buffer runs take
//! events from a log kept beside it. The buffer runs use
//! `Durability::AppCrash` (`synchronous=NORMAL`): the suite is about what
//! the session hands over, not about fsync, and it keeps the suite fast.
//! The btleplug transport joins with one more line once it can serve these
//! peripherals.

// Test helpers outside #[test] fns: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use vigil_core::clock::{Clock, TokioClock};
use vigil_core::codec::cgm::CgmMeasurement;
use vigil_core::codec::uuid::RECORD_ACCESS_CONTROL_POINT;
use vigil_core::model::{DeviceId, PatientId, Reading, Stream};
use vigil_core::session::DeviceKind;
use vigil_core::session::{
    Cursor, DeviceEvent, DeviceEventKind, Gap, GapReason, MemorySink, Session, SessionConfig,
    SessionOutput, SessionSink,
};
use vigil_core::store::{Buffer, BufferConfig, BufferSink, Durability};
use vigil_core::transport::host_fed::HostFedTransport;
use vigil_core::transport::simulated::physiology::SampleInterval;
use vigil_core::transport::simulated::{AttError, Emission, Peripheral, uuid};
use vigil_core::transport::simulated::{
    CgmConfig, Fault, FaultPlan, HeartRateConfig, HostApp, MeterConfig, OximeterConfig, Radio,
    RandomFaults, SimulatedCgm, SimulatedHeartRate, SimulatedMeter, SimulatedOximeter,
    SimulatedTransport,
};
use vigil_core::transport::{Advertisement, Characteristic, GattUuid, Transport};

mod store_common;

const TICK: Duration = Duration::from_secs(1);

/// What a sink under test holds, read back the way its owner would.
trait Held: SessionSink + Sized + 'static {
    /// An empty sink.
    fn fresh() -> Self;
    /// The readings of `stream`, in the order they were kept.
    fn readings(&self, stream: Stream) -> Vec<Reading>;
    /// Every gap, in the order recorded.
    fn gaps(&self) -> Vec<Gap>;
    /// Every device event, in order.
    fn events(&self) -> Vec<DeviceEvent>;
    /// The same sink after an app restart: for the buffer, everything is
    /// closed and the file opened again.
    fn reopen(self) -> Self;
}

impl Held for MemorySink {
    fn fresh() -> Self {
        MemorySink::new()
    }
    fn readings(&self, stream: Stream) -> Vec<Reading> {
        MemorySink::readings(self, stream)
            .into_iter()
            .cloned()
            .collect()
    }
    fn gaps(&self) -> Vec<Gap> {
        MemorySink::gaps(self).into_iter().cloned().collect()
    }
    fn events(&self) -> Vec<DeviceEvent> {
        MemorySink::events(self).into_iter().cloned().collect()
    }
    fn reopen(self) -> Self {
        self
    }
}

/// The SQLite buffer in a temporary file, as a session's sink.
struct StoreSink {
    sink: Option<BufferSink>,
    /// Device events, which the buffer does not keep.
    events: Vec<DeviceEvent>,
    /// The devices that wrote, so the queries know whom to ask about.
    devices: Vec<DeviceId>,
    dir: store_common::TempDir,
}

fn open_buffer(dir: &store_common::TempDir) -> BufferSink {
    let config = BufferConfig {
        durability: Durability::AppCrash,
        ..BufferConfig::default()
    };
    BufferSink::new(Buffer::open(dir.db(), config).unwrap())
}

impl StoreSink {
    fn buffer(&self) -> &Buffer {
        self.sink.as_ref().unwrap().buffer()
    }
}

impl SessionSink for StoreSink {
    fn cursor(&self, device: &DeviceId, stream: Stream) -> Option<Cursor> {
        self.sink.as_ref().unwrap().cursor(device, stream)
    }
    fn accept(&mut self, output: SessionOutput) -> vigil_core::Result<()> {
        let device = match &output {
            SessionOutput::Reading(r) => r.provenance.device.clone(),
            SessionOutput::Gap(g) => g.device.clone(),
            SessionOutput::Event(e) => e.device.clone(),
        };
        if !self.devices.contains(&device) {
            self.devices.push(device);
        }
        if let SessionOutput::Event(e) = &output {
            self.events.push(e.clone());
        }
        self.sink.as_mut().unwrap().accept(output)
    }
}

impl Held for StoreSink {
    fn fresh() -> Self {
        let dir = store_common::TempDir::new("session-faults");
        StoreSink {
            sink: Some(open_buffer(&dir)),
            events: Vec::new(),
            devices: Vec::new(),
            dir,
        }
    }
    fn readings(&self, stream: Stream) -> Vec<Reading> {
        let mut out = Vec::new();
        for d in &self.devices {
            let stored = self.buffer().readings_of(d, stream).unwrap();
            // The ledger agrees with the rows: nothing lost on the way in.
            let c = self.buffer().completeness(d, stream).unwrap();
            assert_eq!(c.received, stored.len() as u64);
            assert_eq!(c.stored, stored.len() as u64);
            out.extend(stored.into_iter().map(|s| s.reading));
        }
        out
    }
    fn gaps(&self) -> Vec<Gap> {
        let mut out = Vec::new();
        for d in &self.devices {
            for stream in Stream::ALL {
                out.extend(self.buffer().gaps(d, stream).unwrap());
            }
        }
        out
    }
    fn events(&self) -> Vec<DeviceEvent> {
        self.events.clone()
    }
    fn reopen(mut self) -> Self {
        drop(self.sink.take());
        self.sink = Some(open_buffer(&self.dir));
        self
    }
}

/// Builds a transport serving `radio` on `clock`.
type MakeTransport = fn(Radio, Arc<dyn Clock>) -> Arc<dyn Transport>;

fn simulated(radio: Radio, clock: Arc<dyn Clock>) -> Arc<dyn Transport> {
    Arc::new(SimulatedTransport::start(radio, clock, TICK))
}

fn host_fed(radio: Radio, clock: Arc<dyn Clock>) -> Arc<dyn Transport> {
    let (transport, link) = HostFedTransport::new(Duration::from_secs(10));
    tokio::spawn(HostApp::new(radio, link, clock, TICK).run());
    Arc::new(transport)
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-28T22:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(minutes)
}

fn patient() -> PatientId {
    PatientId("patient-1".into())
}

/// Runs a CGM session against `cfg` for `minutes`, over a fresh sink or
/// the one given.
async fn run_cgm_with<S: Held>(
    make: MakeTransport,
    cfg: CgmConfig,
    minutes: i64,
    sink: S,
) -> (S, Arc<Mutex<SimulatedCgm>>) {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(t0()));
    let cgm = Arc::new(Mutex::new(SimulatedCgm::new(cfg).unwrap()));
    let mut radio = Radio::new();
    let id = radio.add(Box::new(cgm.clone()));
    let transport = make(radio, clock.clone());
    let mut scfg = SessionConfig::new(DeviceKind::Cgm, id, patient());
    scfg.jitter_seed = 11;
    let mut session = Session::new(scfg, transport, clock, sink);
    session.run_until(at(minutes)).await.unwrap();
    (session.into_sink(), cgm)
}

async fn run_cgm<S: Held>(
    make: MakeTransport,
    cfg: CgmConfig,
    minutes: i64,
) -> (S, Arc<Mutex<SimulatedCgm>>) {
    run_cgm_with(make, cfg, minutes, S::fresh()).await
}

fn cgm(seed: u64) -> CgmConfig {
    CgmConfig::new("cgm-1", seed, t0())
}

fn count<S: Held>(sink: &S, f: impl Fn(&DeviceEventKind) -> bool) -> usize {
    sink.events().iter().filter(|e| f(&e.kind)).count()
}

/// The invariant: readings strictly increasing per session (no duplicate,
/// in order); every record the sensor holds that was measured before the
/// end (less one interval, still in flight) is there with its exact bytes
/// and the absolute time session start + offset.
fn assert_holds_everything<S: Held>(sink: &S, device: &Mutex<SimulatedCgm>, end_min: i64) {
    let readings = sink.readings(Stream::Glucose);
    for pair in readings.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.provenance.session == b.provenance.session {
            assert!(
                a.sequence < b.sequence,
                "out of order or duplicate: {} then {}",
                a.sequence,
                b.sequence
            );
        }
        assert!(a.sensor_time < b.sensor_time);
    }
    let dev = device.lock().unwrap();
    let start = dev.session_start();
    let session = readings.last().and_then(|r| r.provenance.session);
    let current: Vec<&Reading> = readings
        .iter()
        .filter(|r| r.provenance.session == session)
        .collect();
    let mut checked = 0;
    for record in dev.held() {
        let time = start + TimeDelta::minutes(i64::from(record.time_offset_min));
        if time > at(end_min) - TimeDelta::minutes(5) {
            continue;
        }
        let hits: Vec<_> = current
            .iter()
            .filter(|r| r.sequence == u64::from(record.time_offset_min))
            .collect();
        assert_eq!(hits.len(), 1, "offset {} held once", record.time_offset_min);
        assert_eq!(
            hits[0].sensor_time, time,
            "offset {}",
            record.time_offset_min
        );
        assert_eq!(hits[0].provenance.raw, record.encode());
        checked += 1;
    }
    assert!(checked > 0, "the test must check something");
}

fn glucose_offsets<S: Held>(sink: &S) -> Vec<u64> {
    sink.readings(Stream::Glucose)
        .iter()
        .map(|r| r.sequence)
        .collect()
}

/// A sink that refuses chosen readings (counted over every reading it is
/// offered, from 0), as a full disk would, and keeps everything else in
/// the sink it wraps.
struct Refusing<S> {
    inner: S,
    offered: usize,
    refuse: Vec<usize>,
}

impl<S: SessionSink> SessionSink for Refusing<S> {
    fn cursor(&self, device: &DeviceId, stream: Stream) -> Option<Cursor> {
        self.inner.cursor(device, stream)
    }
    fn accept(&mut self, output: SessionOutput) -> vigil_core::Result<()> {
        if let SessionOutput::Reading(_) = output {
            let n = self.offered;
            self.offered += 1;
            if self.refuse.contains(&n) {
                return Err(vigil_core::Error::Storage {
                    code: None,
                    message: format!("disk full (injected at reading {n})"),
                });
            }
        }
        self.inner.accept(output)
    }
}

/// Every write the phone made: characteristic and bytes.
type WriteLog = Arc<Mutex<Vec<(GattUuid, Vec<u8>)>>>;

/// A peripheral that records every write the phone makes.
struct Recording<P> {
    inner: P,
    writes: WriteLog,
}

impl<P: Peripheral> Peripheral for Recording<P> {
    fn advertisement(&self) -> Advertisement {
        self.inner.advertisement()
    }
    fn characteristics(&self) -> Vec<Characteristic> {
        self.inner.characteristics()
    }
    fn reachable(&self, now: DateTime<Utc>) -> bool {
        self.inner.reachable(now)
    }
    fn read(&mut self, now: DateTime<Utc>, c: GattUuid) -> Result<Vec<u8>, AttError> {
        self.inner.read(now, c)
    }
    fn write(&mut self, now: DateTime<Utc>, c: GattUuid, v: &[u8]) -> Result<(), AttError> {
        self.writes.lock().unwrap().push((c, v.to_vec()));
        self.inner.write(now, c, v)
    }
    fn set_subscribed(&mut self, c: GattUuid, on: bool) -> Result<(), AttError> {
        self.inner.set_subscribed(c, on)
    }
    fn set_connected(&mut self, now: DateTime<Utc>, connected: bool) {
        self.inner.set_connected(now, connected)
    }
    fn advance(&mut self, now: DateTime<Utc>) -> Vec<Emission> {
        self.inner.advance(now)
    }
}

mod scenarios {
    use super::*;

    pub async fn backfill_asks_only_for_what_is_missing<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(15);
        cfg.faults = FaultPlan::scripted(vec![Fault::OutOfRange {
            from: at(61),
            to: at(120),
        }]);
        let writes = Arc::new(Mutex::new(Vec::new()));
        let device = Recording {
            inner: SimulatedCgm::new(cfg).unwrap(),
            writes: writes.clone(),
        };
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(t0()));
        let mut radio = Radio::new();
        let id = radio.add(Box::new(device));
        let transport = make(radio, clock.clone());
        let scfg = SessionConfig::new(DeviceKind::Cgm, id, patient());
        let mut session = Session::new(scfg, transport, clock, S::fresh());
        session.run_until(at(3 * 60)).await.unwrap();
        let racp: Vec<Vec<u8>> = writes
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| *c == uuid(RECORD_ACCESS_CONTROL_POINT))
            .map(|(_, v)| v.clone())
            .collect();
        // First connection: report all (op 0x01, operator 0x01). After the
        // time out of range: report records with time offset (filter 0x01)
        // ≥ 61, one past the last one received (60).
        assert_eq!(racp, vec![vec![0x01, 0x01], vec![0x01, 0x03, 0x01, 61, 0]]);
    }

    pub async fn a_quiet_day_is_complete<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(1);
        cfg.interval = SampleInterval::OneMinute;
        let (sink, dev) = run_cgm::<S>(make, cfg, 24 * 60).await;
        assert_holds_everything(&sink, &dev, 24 * 60);
        assert!(sink.readings(Stream::Glucose).len() >= 24 * 60 - 2);
        assert!(sink.gaps().is_empty());
        assert_eq!(count(&sink, |k| matches!(k, DeviceEventKind::Connected)), 1);
    }

    pub async fn disconnects_lose_nothing<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(2);
        cfg.faults = FaultPlan::scripted(
            [37, 122, 123, 300, 301, 302]
                .map(|m| Fault::Disconnect { at: at(m) })
                .to_vec(),
        );
        let (sink, dev) = run_cgm::<S>(make, cfg, 8 * 60).await;
        assert_holds_everything(&sink, &dev, 8 * 60);
        assert!(count(&sink, |k| matches!(k, DeviceEventKind::Disconnected { .. })) >= 3);
        assert!(count(&sink, |k| matches!(k, DeviceEventKind::Reconnecting { .. })) >= 3);
        assert!(sink.gaps().is_empty());
    }

    pub async fn out_of_range_is_backfilled<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(3);
        cfg.faults = FaultPlan::scripted(vec![Fault::OutOfRange {
            from: at(60),
            to: at(4 * 60),
        }]);
        let (sink, dev) = run_cgm::<S>(make, cfg, 6 * 60).await;
        assert_holds_everything(&sink, &dev, 6 * 60);
        // The three hours away came in by backfill: received well after
        // they were measured.
        let late = sink
            .readings(Stream::Glucose)
            .iter()
            .filter(|r| r.receive_time - r.sensor_time > TimeDelta::minutes(30))
            .count();
        assert!(late >= 30, "{late}");
        assert!(sink.gaps().is_empty());
    }

    pub async fn what_the_sensor_no_longer_holds_is_an_explicit_gap<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(4);
        cfg.capacity = 24; // two hours of 5-minute records
        cfg.faults = FaultPlan::scripted(vec![Fault::OutOfRange {
            from: at(60),
            to: at(6 * 60),
        }]);
        let (sink, dev) = run_cgm::<S>(make, cfg, 7 * 60).await;
        assert_holds_everything(&sink, &dev, 7 * 60);
        let gaps = sink.gaps();
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        let g = &gaps[0];
        assert_eq!(g.reason, GapReason::NotHeld);
        let offsets = glucose_offsets(&sink);
        let first_after = offsets
            .iter()
            .copied()
            .find(|o| *o > g.first_missing.unwrap())
            .unwrap();
        // The gap covers exactly the offsets between the last reading
        // before and the first after.
        assert!(offsets.contains(&(g.first_missing.unwrap() - 5)));
        assert_eq!(g.last_missing.unwrap() + 5, first_after);
        assert_eq!(g.to, t0() + TimeDelta::minutes(first_after as i64));
        // The sensor really no longer holds them.
        let held = dev.lock().unwrap().held_offsets();
        assert!(u64::from(held[0]) > g.last_missing.unwrap());
    }

    pub async fn dropped_notifications_are_recovered<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(5);
        cfg.faults = FaultPlan::scripted(vec![
            Fault::DropNotifications {
                from: at(30),
                to: at(50),
            },
            Fault::DropNotifications {
                from: at(200),
                to: at(201),
            },
        ]);
        let (sink, dev) = run_cgm::<S>(make, cfg, 5 * 60).await;
        assert_holds_everything(&sink, &dev, 5 * 60);
        assert!(sink.gaps().is_empty());
    }

    pub async fn duplicated_notifications_are_stored_once<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(6);
        cfg.faults = FaultPlan::scripted(vec![Fault::DuplicateNotifications {
            from: at(10),
            to: at(120),
        }]);
        let (sink, dev) = run_cgm::<S>(make, cfg, 3 * 60).await;
        assert_holds_everything(&sink, &dev, 3 * 60);
    }

    pub async fn corrupt_frames_never_become_readings<S: Held>(make: MakeTransport, crc: bool) {
        let mut cfg = cgm(7);
        cfg.e2e_crc = crc;
        cfg.faults = FaultPlan::scripted(vec![Fault::CorruptFrames {
            from: at(20),
            to: at(60),
        }]);
        let (sink, dev) = run_cgm::<S>(make, cfg, 3 * 60).await;
        assert!(count(&sink, |k| matches!(k, DeviceEventKind::CorruptFrame { .. })) >= 7);
        // Zero loss: every corrupt record came back through the backfill
        // (the held-records check compares exact, valid bytes).
        assert_holds_everything(&sink, &dev, 3 * 60);
        for r in sink.readings(Stream::Glucose) {
            assert!(CgmMeasurement::decode(&r.provenance.raw, crc).is_ok());
        }
    }

    pub async fn warm_up_is_reported_then_readings_start<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(8);
        cfg.warmup_min = 30;
        let (sink, dev) = run_cgm::<S>(make, cfg, 3 * 60).await;
        assert_holds_everything(&sink, &dev, 3 * 60);
        let kinds: Vec<_> = sink.events().iter().map(|e| e.kind.clone()).collect();
        let warm = kinds
            .iter()
            .position(|k| *k == DeviceEventKind::WarmingUp)
            .unwrap();
        let done = kinds
            .iter()
            .position(|k| *k == DeviceEventKind::WarmUpComplete)
            .unwrap();
        assert!(warm < done);
        assert_eq!(glucose_offsets(&sink)[0], 30);
    }

    pub async fn expiry_then_new_session_keeps_both_sessions<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(9);
        cfg.run_time_hours = 2;
        cfg.warmup_min = 15;
        cfg.faults = FaultPlan::scripted(vec![Fault::NewSession { at: at(3 * 60 + 2) }]);
        // Ends before the second session expires at 5 h 02.
        let (sink, dev) = run_cgm::<S>(make, cfg, 4 * 60 + 30).await;
        assert_holds_everything(&sink, &dev, 4 * 60 + 30);
        assert_eq!(count(&sink, |k| *k == DeviceEventKind::SessionStopped), 1);
        assert_eq!(
            count(&sink, |k| matches!(k, DeviceEventKind::NewSession { .. })),
            2
        );
        let readings = sink.readings(Stream::Glucose);
        let first: Vec<_> = readings
            .iter()
            .filter(|r| r.sensor_time < at(3 * 60))
            .collect();
        // The whole first session, offsets 15..=120, at their times.
        assert_eq!(first.len(), (120 - 15) / 5 + 1);
        assert!(first.iter().all(|r| r.sensor_time == at(r.sequence as i64)));
        // The expiry was seen, so the pause between sessions is no gap.
        assert!(sink.gaps().is_empty());
    }

    pub async fn a_new_session_while_away_makes_a_session_gap<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(10);
        cfg.faults = FaultPlan::scripted(vec![
            Fault::OutOfRange {
                from: at(60),
                to: at(4 * 60),
            },
            Fault::NewSession { at: at(2 * 60) },
        ]);
        let (sink, dev) = run_cgm::<S>(make, cfg, 5 * 60).await;
        assert_holds_everything(&sink, &dev, 5 * 60);
        let gaps = sink.gaps();
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].reason, GapReason::SessionChanged);
        assert_eq!(gaps[0].to, at(2 * 60));
        assert!(gaps[0].from < at(60));
    }

    pub async fn low_battery_is_a_reading_and_an_event<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(11);
        cfg.faults = FaultPlan::scripted(vec![Fault::LowBattery {
            at: at(90),
            percent: 7,
        }]);
        let (sink, dev) = run_cgm::<S>(make, cfg, 3 * 60).await;
        assert_holds_everything(&sink, &dev, 3 * 60);
        let levels: Vec<f64> = sink
            .readings(Stream::Battery)
            .iter()
            .map(|r| r.value)
            .collect();
        assert_eq!(levels, vec![80.0, 7.0]);
        assert_eq!(
            count(&sink, |k| matches!(k, DeviceEventKind::BatteryLow { .. })),
            1
        );
        // Records after the drop carry the annunciation and are flagged.
        assert!(
            sink.readings(Stream::Glucose)
                .iter()
                .filter(|r| r.sensor_time > at(95))
                .all(|r| r.quality.flagged)
        );
    }

    pub async fn sensor_clock_drift_is_recorded_and_corrected<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(12);
        cfg.clock_skew = TimeDelta::minutes(7);
        let (sink, dev) = run_cgm::<S>(make, cfg, 2 * 60).await;
        let drift = sink
            .events()
            .iter()
            .find_map(|e| match e.kind {
                DeviceEventKind::ClockDrift { drift_ms } => Some(drift_ms),
                _ => None,
            })
            .unwrap();
        assert!((drift - 7 * 60_000).abs() <= 30_000, "{drift}");
        // Times are corrected to the phone's clock within the resolution of
        // the measurement.
        let start = dev.lock().unwrap().session_start();
        for r in sink.readings(Stream::Glucose) {
            let expected = start + TimeDelta::minutes(r.sequence as i64);
            assert!((r.sensor_time - expected).abs() <= TimeDelta::seconds(30));
        }
    }

    pub async fn random_faults_lose_nothing_the_sensor_holds<S: Held>(make: MakeTransport) {
        let mut cfg = cgm(13);
        cfg.faults = FaultPlan::random(
            99,
            t0(),
            TimeDelta::hours(12),
            RandomFaults {
                disconnects_per_hour: 0.5,
                out_of_range_per_day: 3.0,
                drops_per_day: 6.0,
                duplicates_per_day: 6.0,
                corruptions_per_day: 6.0,
            },
        );
        let (sink, dev) = run_cgm::<S>(make, cfg, 12 * 60).await;
        assert_holds_everything(&sink, &dev, 12 * 60);
        assert!(sink.gaps().is_empty());
    }

    pub async fn a_restarted_session_resumes_from_the_sink<S: Held>(make: MakeTransport) {
        let (sink, _) = run_cgm::<S>(make, cgm(14), 60).await;
        let before = sink.readings(Stream::Glucose).len();
        let last = sink.cursor(
            &vigil_core::model::DeviceId("cgm-1".into()),
            Stream::Glucose,
        );
        // Same sensor, same seed: the app restarts with its buffer (for the
        // SQLite buffer: every handle closed, the file opened again).
        let (sink, dev) = run_cgm_with(make, cgm(14), 3 * 60, sink.reopen()).await;
        assert_holds_everything(&sink, &dev, 3 * 60);
        let after = sink.readings(Stream::Glucose);
        assert!(after.len() > before);
        assert!(after[before].sequence > last.unwrap().sequence);
    }

    pub async fn a_sink_that_refuses_readings_loses_nothing_the_sensor_holds<S: Held>(
        make: MakeTransport,
    ) {
        let mut cfg = cgm(16);
        // The third refusal falls in the backfill after the time away.
        cfg.faults = FaultPlan::scripted(vec![Fault::OutOfRange {
            from: at(60),
            to: at(3 * 60),
        }]);
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(t0()));
        let dev = Arc::new(Mutex::new(SimulatedCgm::new(cfg).unwrap()));
        let mut radio = Radio::new();
        let id = radio.add(Box::new(dev.clone()));
        let transport = make(radio, clock.clone());
        let scfg = SessionConfig::new(DeviceKind::Cgm, id, patient());
        let sink = Refusing {
            inner: S::fresh(),
            offered: 0,
            refuse: vec![3, 10, 40],
        };
        let mut session = Session::new(scfg, transport, clock.clone(), sink);
        let mut stops = Vec::new();
        loop {
            match session.run_until(at(5 * 60)).await {
                Ok(()) => break,
                Err(e) => {
                    assert!(e.to_string().contains("disk full"), "{e}");
                    stops.push(clock.now());
                    assert!(stops.len() <= 3, "stopped more often than refused");
                }
            }
        }
        // Every refusal stopped the run, and the third came in the backfill.
        assert_eq!(stops.len(), 3);
        assert!(stops[2] >= at(3 * 60), "{stops:?}");
        let sink = session.into_sink().inner;
        // Each refused record came back from the sensor on the next run:
        // exactly once, in order, at its time, and no gap.
        assert_holds_everything(&sink, &dev, 5 * 60);
        assert!(sink.gaps().is_empty());
    }

    pub async fn meter_records_come_once_by_sequence_with_gaps<S: Held>(make: MakeTransport) {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(t0()));
        let mut cfg = MeterConfig::new("bgm-1", 21, t0());
        cfg.capacity = 3;
        // Tests at about 06:30 and 11:15 UTC are synced before the meter
        // leaves for two days.
        cfg.faults = FaultPlan::scripted(vec![Fault::OutOfRange {
            from: at(15 * 60),
            to: at(63 * 60),
        }]);
        let meter = Arc::new(Mutex::new(SimulatedMeter::new(cfg).unwrap()));
        let mut radio = Radio::new();
        let id = radio.add(Box::new(meter.clone()));
        let transport = make(radio, clock.clone());
        let mut scfg = SessionConfig::new(DeviceKind::GlucoseMeter, id, patient());
        scfg.meter_utc_offset_min = 60;
        let mut session = Session::new(scfg, transport, clock, S::fresh());
        session.run_until(at(3 * 24 * 60)).await.unwrap();
        let sink = session.into_sink();
        let readings = sink.readings(Stream::MeterGlucose);
        let seqs: Vec<u64> = readings.iter().map(|r| r.sequence).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let dev = meter.lock().unwrap();
        for m in dev.held() {
            let r = readings
                .iter()
                .find(|r| r.sequence == u64::from(m.sequence_number))
                .unwrap();
            // Meter local time (UTC+1) back to UTC.
            let local = m.absolute_time().unwrap().and_utc();
            assert_eq!(r.sensor_time, local - TimeDelta::hours(1));
            assert_eq!(r.value, m.concentration_mg_dl().unwrap());
        }
        // Two days away with room for three records: the rest is a gap.
        let gaps = sink.gaps();
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        let g = &gaps[0];
        let missing = g.first_missing.unwrap()..=g.last_missing.unwrap();
        assert!(seqs.iter().all(|s| !missing.contains(s)));
        assert_eq!(
            g.last_missing.unwrap() + 1,
            seqs[seqs
                .iter()
                .position(|s| *s > g.first_missing.unwrap())
                .unwrap()]
        );
    }

    pub async fn heart_rate_resumes_after_a_dropout_with_monotonic_sequences<S: Held>(
        make: MakeTransport,
    ) {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(t0()));
        let mut cfg = HeartRateConfig::new("hr-1", 31, t0());
        cfg.faults = FaultPlan::scripted(vec![
            Fault::OutOfRange {
                from: at(10),
                to: at(20),
            },
            Fault::CorruptFrames {
                from: at(25),
                to: at(26),
            },
        ]);
        let mut radio = Radio::new();
        let id = radio.add(Box::new(SimulatedHeartRate::new(cfg).unwrap()));
        let transport = make(radio, clock.clone());
        let scfg = SessionConfig::new(DeviceKind::HeartRate, id, patient());
        let mut session = Session::new(scfg, transport, clock, S::fresh());
        session.run_until(at(40)).await.unwrap();
        let sink = session.into_sink();
        let hr = sink.readings(Stream::HeartRate);
        let seqs: Vec<u64> = hr.iter().map(|r| r.sequence).collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
        // Nothing measured while away or corrupt; about 1 Hz otherwise.
        assert!(
            hr.iter()
                .all(|r| r.sensor_time < at(10) || r.sensor_time >= at(20))
        );
        assert!(hr.len() > 25 * 60 && hr.len() < 30 * 60 + 5, "{}", hr.len());
        assert!(count(&sink, |k| matches!(k, DeviceEventKind::CorruptFrame { .. })) >= 55);
        assert!(!sink.readings(Stream::RrInterval).is_empty());
        assert!(hr.iter().all(|r| (30.0..=220.0).contains(&r.value)));
    }

    pub async fn oximeter_streams_spo2_and_pulse<S: Held>(make: MakeTransport) {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(t0()));
        let mut radio = Radio::new();
        let cfg = OximeterConfig::new("plx-1", 41, t0());
        let id = radio.add(Box::new(SimulatedOximeter::new(cfg).unwrap()));
        let transport = make(radio, clock.clone());
        let scfg = SessionConfig::new(DeviceKind::PulseOximeter, id, patient());
        let mut session = Session::new(scfg, transport, clock, S::fresh());
        session.run_until(at(10)).await.unwrap();
        let sink = session.into_sink();
        let spo2 = sink.readings(Stream::Spo2);
        assert!(spo2.len() >= 595, "{}", spo2.len());
        assert!(spo2.iter().all(|r| (85.0..=100.0).contains(&r.value)));
        assert_eq!(sink.readings(Stream::PulseRate).len(), spo2.len());
    }
}

macro_rules! fault_suite {
    ($name:ident, $make:expr, $sink:ty) => {
        mod $name {
            use super::*;

            #[tokio::test(start_paused = true)]
            async fn backfill_asks_only_for_what_is_missing() {
                scenarios::backfill_asks_only_for_what_is_missing::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn a_quiet_day_is_complete() {
                scenarios::a_quiet_day_is_complete::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn disconnects_lose_nothing() {
                scenarios::disconnects_lose_nothing::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn out_of_range_is_backfilled() {
                scenarios::out_of_range_is_backfilled::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn what_the_sensor_no_longer_holds_is_an_explicit_gap() {
                scenarios::what_the_sensor_no_longer_holds_is_an_explicit_gap::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn dropped_notifications_are_recovered() {
                scenarios::dropped_notifications_are_recovered::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn duplicated_notifications_are_stored_once() {
                scenarios::duplicated_notifications_are_stored_once::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn corrupt_frames_with_crc_never_become_readings() {
                scenarios::corrupt_frames_never_become_readings::<$sink>($make, true).await;
            }
            #[tokio::test(start_paused = true)]
            async fn corrupt_frames_without_crc_never_become_readings() {
                scenarios::corrupt_frames_never_become_readings::<$sink>($make, false).await;
            }
            #[tokio::test(start_paused = true)]
            async fn warm_up_is_reported_then_readings_start() {
                scenarios::warm_up_is_reported_then_readings_start::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn expiry_then_new_session_keeps_both_sessions() {
                scenarios::expiry_then_new_session_keeps_both_sessions::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn a_new_session_while_away_makes_a_session_gap() {
                scenarios::a_new_session_while_away_makes_a_session_gap::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn low_battery_is_a_reading_and_an_event() {
                scenarios::low_battery_is_a_reading_and_an_event::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn sensor_clock_drift_is_recorded_and_corrected() {
                scenarios::sensor_clock_drift_is_recorded_and_corrected::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn random_faults_lose_nothing_the_sensor_holds() {
                scenarios::random_faults_lose_nothing_the_sensor_holds::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn a_restarted_session_resumes_from_the_sink() {
                scenarios::a_restarted_session_resumes_from_the_sink::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn a_sink_that_refuses_readings_loses_nothing_the_sensor_holds() {
                scenarios::a_sink_that_refuses_readings_loses_nothing_the_sensor_holds::<$sink>(
                    $make,
                )
                .await;
            }
            #[tokio::test(start_paused = true)]
            async fn meter_records_come_once_by_sequence_with_gaps() {
                scenarios::meter_records_come_once_by_sequence_with_gaps::<$sink>($make).await;
            }
            #[tokio::test(start_paused = true)]
            async fn heart_rate_resumes_after_a_dropout_with_monotonic_sequences() {
                scenarios::heart_rate_resumes_after_a_dropout_with_monotonic_sequences::<$sink>(
                    $make,
                )
                .await;
            }
            #[tokio::test(start_paused = true)]
            async fn oximeter_streams_spo2_and_pulse() {
                scenarios::oximeter_streams_spo2_and_pulse::<$sink>($make).await;
            }
        }
    };
}

fault_suite!(over_simulated, simulated as MakeTransport, MemorySink);
fault_suite!(over_host_fed, host_fed as MakeTransport, MemorySink);
fault_suite!(
    over_simulated_into_buffer,
    simulated as MakeTransport,
    StoreSink
);
fault_suite!(
    over_host_fed_into_buffer,
    host_fed as MakeTransport,
    StoreSink
);

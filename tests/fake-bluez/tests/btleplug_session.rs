//! The session over the real btleplug transport, against the simulated CGM
//! served by the emulated BlueZ: discover, subscribe, backfill through
//! RACP, peer disconnects, reconnect, backfill again, and nothing the
//! sensor holds is lost or stored twice.
//!
//! Real D-Bus traffic cannot run on tokio's paused time (the runtime would
//! fast-forward while a reply is on the wire), so phone and sensor share a
//! scaled wall clock instead: one real second is four simulated minutes.
//! The outcome may differ in detail from run to run (when exactly a
//! reconnect lands); the invariant checked may not.

// Test helpers outside #[test] fns: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use common::{Rig, wait_for};
use vigil_core::clock::Clock;
use vigil_core::model::{PatientId, Stream};
use vigil_core::session::{
    Backoff, DeviceEventKind, DeviceKind, MemorySink, Session, SessionConfig,
};
use vigil_core::transport::btleplug::BtleplugTransport;
use vigil_core::transport::simulated::physiology::SampleInterval;
use vigil_core::transport::simulated::{CgmConfig, Fault, FaultPlan, SimulatedCgm};
use vigil_core::transport::{GattUuid, Transport, TransportEvent};

/// Simulated time runs this many times faster than the wall clock.
const SPEED: u32 = 240;

/// Wall time scaled by [`SPEED`], from `epoch`.
struct ScaledClock {
    epoch: DateTime<Utc>,
    origin: Instant,
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.origin.elapsed() * SPEED;
        self.epoch + TimeDelta::from_std(elapsed).unwrap()
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-28T22:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(minutes)
}

/// Serves a one-minute CGM (history before `t0`, then `faults`) over the
/// emulated BlueZ and runs a real session through the btleplug transport
/// until minute `end`. The device is found by a service scan, as an app
/// pairing a new sensor would.
async fn run_over_btleplug(
    history: TimeDelta,
    faults: Vec<Fault>,
    end: i64,
) -> (MemorySink, Arc<Mutex<SimulatedCgm>>) {
    let (rig, clock) = Rig::start_with_clock(|| {
        Arc::new(ScaledClock {
            epoch: t0(),
            origin: Instant::now(),
        })
    })
    .await;

    let mut cfg = CgmConfig::new("cgm-1", 21, t0() - history);
    cfg.interval = SampleInterval::OneMinute;
    cfg.faults = FaultPlan::scripted(faults);
    let cgm = Arc::new(Mutex::new(SimulatedCgm::new(cfg).unwrap()));
    let path = rig.fake.add_peripheral(Box::new(cgm.clone()));

    // The sensor lives on the shared clock, ticked every 10 ms of wall
    // time (2.4 simulated seconds).
    let fake = rig.fake.clone();
    let ticker = tokio::spawn(async move {
        loop {
            if let Err(e) = fake.tick().await {
                eprintln!("fake BlueZ tick failed: {e}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    let transport = Arc::new(BtleplugTransport::new().await.unwrap());
    let mut rx = transport.events();
    transport
        .start_scan(&[GattUuid::from_u16(0x181F)])
        .await
        .unwrap();
    let TransportEvent::Discovered(adv) =
        wait_for(&mut rx, |e| matches!(e, TransportEvent::Discovered(_))).await
    else {
        unreachable!()
    };
    transport.stop_scan().await.unwrap();
    assert!(path.ends_with(adv.id.0.rsplit('/').next().unwrap()));

    let mut scfg = SessionConfig::new(
        DeviceKind::Cgm,
        adv.id.clone(),
        PatientId("patient-1".into()),
    );
    scfg.jitter_seed = 5;
    // Reconnect quickly in wall time: the default first retry (1 s) is
    // four simulated minutes here.
    scfg.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(500),
        jitter: 0.3,
    };
    let mut session = Session::new(scfg, transport.clone(), clock.clone(), MemorySink::new());
    tokio::time::timeout(Duration::from_secs(60), session.run_until(at(end)))
        .await
        .expect("the session ends within a minute of wall time")
        .unwrap();
    ticker.abort();
    (session.into_sink(), cgm)
}

/// The invariant: readings in order with no duplicate, and every record
/// the sensor holds, measured before the last two minutes (possibly still
/// in flight), arrived exactly once with its exact bytes and absolute time.
/// Returns how many records it checked.
fn assert_holds_everything(sink: &MemorySink, cgm: &Mutex<SimulatedCgm>, end: i64) -> usize {
    let readings = sink.readings(Stream::Glucose);
    for pair in readings.windows(2) {
        assert!(
            pair[0].sequence < pair[1].sequence,
            "{} then {}",
            pair[0].sequence,
            pair[1].sequence
        );
    }
    let dev = cgm.lock().unwrap();
    let start = dev.session_start();
    let mut checked = 0;
    for record in dev.held() {
        let time = start + TimeDelta::minutes(i64::from(record.time_offset_min));
        if time > at(end) - TimeDelta::minutes(2) {
            continue;
        }
        let hits: Vec<_> = readings
            .iter()
            .filter(|r| r.sequence == u64::from(record.time_offset_min))
            .collect();
        assert_eq!(hits.len(), 1, "offset {}", record.time_offset_min);
        assert_eq!(hits[0].sensor_time, time);
        assert_eq!(hits[0].provenance.raw, record.encode());
        checked += 1;
    }
    assert!(sink.gaps().is_empty(), "{:?}", sink.gaps());
    checked
}

fn count(sink: &MemorySink, f: impl Fn(&DeviceEventKind) -> bool) -> usize {
    sink.events().iter().filter(|e| f(&e.kind)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgm_session_over_btleplug_backfills_after_disconnects_and_loses_nothing() {
    // Two hours measured before the phone first connects (a first
    // backfill), two peer disconnects, and four minutes out of range in
    // between (a second backfill).
    let end = 30;
    let (sink, cgm) = run_over_btleplug(
        TimeDelta::hours(2),
        vec![
            Fault::Disconnect { at: at(6) },
            Fault::OutOfRange {
                from: at(11),
                to: at(15),
            },
            Fault::Disconnect { at: at(22) },
        ],
        end,
    )
    .await;

    // The link really dropped and came back, more than once.
    let connects = count(&sink, |k| matches!(k, DeviceEventKind::Connected));
    let drops = count(&sink, |k| matches!(k, DeviceEventKind::Disconnected { .. }));
    assert!(connects >= 3, "connects {connects}: {:?}", sink.events());
    assert!(drops >= 2, "drops {drops}: {:?}", sink.events());

    let checked = assert_holds_everything(&sink, &cgm, end);
    assert!(checked >= 120 + 25, "checked {checked}");

    // Both backfills happened over RACP: the two hours before the first
    // connection, and the minutes out of range, arrived after they were
    // measured, not live.
    let readings = sink.readings(Stream::Glucose);
    let late = |from: DateTime<Utc>, to: DateTime<Utc>| {
        readings
            .iter()
            .filter(|r| r.sensor_time >= from && r.sensor_time < to)
            .filter(|r| r.receive_time - r.sensor_time > TimeDelta::minutes(2))
            .count()
    };
    let (first, second) = (late(t0() - TimeDelta::hours(2), t0()), late(at(11), at(14)));
    eprintln!(
        "btleplug session: {} readings, {checked} held records checked, {connects} connects, \
         {drops} drops, backfilled {first} before the first connect and {second} while out of range",
        readings.len()
    );
    assert!(first >= 115, "first backfill {first}");
    assert!(second >= 2, "out-of-range minutes backfilled: {second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_duplicated_and_corrupt_notifications_over_btleplug_lose_nothing() {
    // A hostile link: live notifications lost, then sent twice, then
    // corrupted (E2E-CRC wrong), then a peer disconnect. The session must
    // still end with each held record exactly once and intact.
    let end = 30;
    let (sink, cgm) = run_over_btleplug(
        TimeDelta::minutes(10),
        vec![
            Fault::DropNotifications {
                from: at(3),
                to: at(8),
            },
            Fault::DuplicateNotifications {
                from: at(10),
                to: at(16),
            },
            Fault::CorruptFrames {
                from: at(18),
                to: at(22),
            },
            Fault::Disconnect { at: at(25) },
        ],
        end,
    )
    .await;
    let checked = assert_holds_everything(&sink, &cgm, end);
    eprintln!(
        "btleplug hostile link: {} readings, {checked} held records checked",
        sink.readings(Stream::Glucose).len()
    );
    assert!(checked >= 10 + 25, "checked {checked}");
}

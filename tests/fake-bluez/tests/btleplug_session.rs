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
#![allow(clippy::unwrap_used)]

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgm_session_over_btleplug_backfills_after_disconnects_and_loses_nothing() {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock {
        epoch: t0(),
        origin: Instant::now(),
    });
    let rig = Rig::start_with_clock(clock.clone()).await;

    // The sensor has been measuring for two hours before the phone first
    // connects (a first backfill), drops the link twice, and is out of
    // range for four minutes in between (a second backfill).
    let mut cfg = CgmConfig::new("cgm-1", 21, t0() - TimeDelta::hours(2));
    cfg.interval = SampleInterval::OneMinute;
    cfg.faults = FaultPlan::scripted(vec![
        Fault::Disconnect { at: at(6) },
        Fault::OutOfRange {
            from: at(11),
            to: at(15),
        },
        Fault::Disconnect { at: at(22) },
    ]);
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

    // Discover the CGM by its service.
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

    // Run the session for half an hour of simulated time.
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
    let end = 30;
    let mut session = Session::new(scfg, transport.clone(), clock.clone(), MemorySink::new());
    tokio::time::timeout(Duration::from_secs(60), session.run_until(at(end)))
        .await
        .expect("the session ends within a minute of wall time")
        .unwrap();
    ticker.abort();
    let sink = session.into_sink();

    // The link really dropped and came back, more than once.
    let events = sink.events();
    let connects = events
        .iter()
        .filter(|e| matches!(e.kind, DeviceEventKind::Connected))
        .count();
    let drops = events
        .iter()
        .filter(|e| matches!(e.kind, DeviceEventKind::Disconnected { .. }))
        .count();
    assert!(connects >= 3, "connects {connects}: {events:?}");
    assert!(drops >= 2, "drops {drops}: {events:?}");

    // In order, no duplicates.
    let readings = sink.readings(Stream::Glucose);
    for pair in readings.windows(2) {
        assert!(
            pair[0].sequence < pair[1].sequence,
            "{} then {}",
            pair[0].sequence,
            pair[1].sequence
        );
    }

    // Every record the sensor holds, measured before the last two minutes
    // (possibly still in flight), arrived exactly once with its exact
    // bytes and absolute time.
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
    assert!(checked >= 120 + 25, "checked {checked}");
    assert!(sink.gaps().is_empty(), "{:?}", sink.gaps());

    // Both backfills happened over RACP: the two hours before the first
    // connection, and the minutes out of range, arrived after they were
    // measured, not live.
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

//! The buffer as a session's sink: its cursor survives a restart and
//! includes the end of a recorded gap, a gap is counted in the ledger, and
//! a full buffer stops a session without losing what the sensor holds.

// Test crate: helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod store_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use store_common::{TempDir, reading, t0};
use vigil_core::Error;
use vigil_core::clock::{Clock, TokioClock};
use vigil_core::model::{DeviceId, PatientId, Stream};
use vigil_core::session::{
    DeviceKind, Gap, GapReason, Session, SessionConfig, SessionOutput, SessionSink,
};
use vigil_core::store::{Buffer, BufferConfig, BufferSink, CapacityPolicy, Durability, RangeKind};
use vigil_core::transport::simulated::{MeterConfig, Radio, SimulatedMeter, SimulatedTransport};

fn fast() -> BufferConfig {
    BufferConfig {
        durability: Durability::AppCrash,
        ..BufferConfig::default()
    }
}

fn minutes(m: i64) -> chrono::DateTime<chrono::Utc> {
    t0() + TimeDelta::minutes(m)
}

#[test]
fn the_cursor_includes_a_gap_end_and_survives_reopening_the_file() {
    let dir = TempDir::new("sink-cursor");
    let dev = DeviceId("cgm-1".into());
    let mut sink = BufferSink::new(Buffer::open(dir.db(), fast()).unwrap());
    assert_eq!(sink.cursor(&dev, Stream::Glucose), None);
    let mut r = reading("cgm-1", Stream::Glucose, 5, minutes(5), 100.0);
    r.provenance.device = dev.clone();
    r.provenance.session = Some(7);
    sink.accept(SessionOutput::Reading(r)).unwrap();
    let c = sink.cursor(&dev, Stream::Glucose).unwrap();
    assert_eq!((c.session, c.sequence, c.time), (Some(7), 5, minutes(5)));
    // A gap of offsets 10..=55 at 5-minute steps whose following reading
    // never arrived (the app was killed between the two).
    let gap = Gap {
        device: dev.clone(),
        stream: Stream::Glucose,
        session: Some(7),
        from: minutes(5),
        to: minutes(60),
        first_missing: Some(10),
        last_missing: Some(55),
        reason: GapReason::NotHeld,
    };
    sink.accept(SessionOutput::Gap(gap.clone())).unwrap();
    drop(sink);

    let buffer = Buffer::open(dir.db(), fast()).unwrap();
    let sink = BufferSink::new(buffer);
    let c = sink.cursor(&dev, Stream::Glucose).unwrap();
    assert_eq!((c.session, c.sequence, c.time), (Some(7), 55, minutes(60)));
    assert_eq!(
        sink.buffer().gaps(&dev, Stream::Glucose).unwrap(),
        vec![gap]
    );
    // Ten records missing: (55 - 10) / 5 + 1, the step taken from the
    // reading before the gap.
    let c = sink.buffer().completeness(&dev, Stream::Glucose).unwrap();
    assert_eq!((c.received, c.reported_missing), (1, 10));
    let ranges = sink
        .buffer()
        .ledger_ranges(&dev, Stream::Glucose, RangeKind::ReportedMissing)
        .unwrap();
    assert_eq!(ranges.len(), 1);
    assert_eq!(ranges[0].count, 10);
    // Another stream and another device have their own cursors.
    assert_eq!(sink.cursor(&dev, Stream::GlucoseTrend), None);
    assert_eq!(sink.cursor(&DeviceId("x".into()), Stream::Glucose), None);
}

#[test]
fn a_newer_session_is_the_cursor_even_with_smaller_offsets() {
    let dir = TempDir::new("sink-session");
    let dev = DeviceId("cgm-1".into());
    let mut sink = BufferSink::new(Buffer::open(dir.db(), fast()).unwrap());
    for (session, seq) in [(100, 500), (200, 15)] {
        let mut r = reading("cgm-1", Stream::Glucose, seq, minutes(seq as i64), 100.0);
        r.provenance.device = dev.clone();
        r.provenance.session = Some(session);
        sink.accept(SessionOutput::Reading(r)).unwrap();
    }
    // A session change with no sequences does not move the cursor.
    sink.accept(SessionOutput::Gap(Gap {
        device: dev.clone(),
        stream: Stream::Glucose,
        session: Some(100),
        from: minutes(500),
        to: minutes(600),
        first_missing: None,
        last_missing: None,
        reason: GapReason::SessionChanged,
    }))
    .unwrap();
    let c = sink.cursor(&dev, Stream::Glucose).unwrap();
    assert_eq!((c.session, c.sequence), (Some(200), 15));
    let c = sink.buffer().completeness(&dev, Stream::Glucose).unwrap();
    assert_eq!(c.reported_missing, 0, "an unknown count is not guessed");
}

#[test]
fn a_duplicate_reading_is_accepted_and_stored_once() {
    let dir = TempDir::new("sink-dup");
    let mut sink = BufferSink::new(Buffer::open(dir.db(), fast()).unwrap());
    let r = reading("hr-1", Stream::HeartRate, 3, minutes(0), 60.0);
    sink.accept(SessionOutput::Reading(r.clone())).unwrap();
    sink.accept(SessionOutput::Reading(r.clone())).unwrap();
    let c = sink
        .buffer()
        .completeness(&r.provenance.device, Stream::HeartRate)
        .unwrap();
    assert_eq!((c.received, c.duplicates, c.stored), (1, 1, 1));
}

/// Runs a meter session into a buffer file until `end_min`.
async fn run_meter(
    dir: &TempDir,
    config: BufferConfig,
    meter: &Arc<Mutex<SimulatedMeter>>,
    clock: &Arc<dyn Clock>,
    end_min: i64,
) -> (vigil_core::Result<()>, Buffer) {
    let mut radio = Radio::new();
    let id = radio.add(Box::new(meter.clone()));
    let transport = Arc::new(SimulatedTransport::start(
        radio,
        clock.clone(),
        Duration::from_secs(1),
    ));
    let scfg = SessionConfig::new(DeviceKind::GlucoseMeter, id, PatientId("patient-1".into()));
    let sink = BufferSink::new(Buffer::open(dir.db(), config).unwrap());
    let mut session = Session::new(scfg, transport, clock.clone(), sink);
    let result = session.run_until(minutes(end_min)).await;
    (result, session.into_sink().into_buffer())
}

#[tokio::test(start_paused = true)]
async fn a_full_buffer_stops_the_session_and_a_later_run_loses_nothing() {
    let dir = TempDir::new("sink-full");
    // The budget is below what an empty buffer uses: meter and battery
    // readings (record class, never evicted) cannot fit.
    let empty = Buffer::open(dir.db(), fast())
        .unwrap()
        .used_bytes()
        .unwrap();
    let full = BufferConfig {
        capacity: CapacityPolicy {
            budget_bytes: empty - 1,
        },
        ..fast()
    };
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(t0()));
    let cfg = MeterConfig::new("bgm-1", 21, t0());
    let meter = Arc::new(Mutex::new(SimulatedMeter::new(cfg).unwrap()));
    let (result, buffer) = run_meter(&dir, full, &meter, &clock, 2 * 24 * 60).await;
    match result {
        Err(Error::BufferFull { .. }) => {}
        other => panic!("expected the session to stop with BufferFull, got {other:?}"),
    }
    let dev = DeviceId("bgm-1".into());
    let stopped_with = buffer
        .readings_of(&dev, Stream::MeterGlucose)
        .unwrap()
        .len();
    assert_eq!(stopped_with, 0, "nothing fits, so nothing is claimed");
    drop(buffer);

    // Room again (sync freed space, the app raised the budget): a new
    // session over the same file fetches everything the meter holds.
    let (result, buffer) = run_meter(&dir, fast(), &meter, &clock, 3 * 24 * 60).await;
    result.unwrap();
    let stored = buffer.readings_of(&dev, Stream::MeterGlucose).unwrap();
    let seqs: Vec<u64> = stored.iter().map(|s| s.reading.sequence).collect();
    let held: Vec<u64> = meter
        .lock()
        .unwrap()
        .held()
        .iter()
        .map(|m| u64::from(m.sequence_number))
        .collect();
    assert!(!held.is_empty());
    assert_eq!(seqs, held, "every held record once, in order");
    assert!(buffer.gaps(&dev, Stream::MeterGlucose).unwrap().is_empty());
}

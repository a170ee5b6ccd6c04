//! The capacity policy: the measured bytes per reading behind the default
//! budget, pressure events, eviction order, and the refusal when nothing
//! may be evicted.

// Test crate: helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod store_common;

use chrono::Duration;
use store_common::{TempDir, reading, t0, worst_case_second};
use vigil_core::Error;
use vigil_core::model::{DeviceId, Profile, Stream};
use vigil_core::store::{
    Buffer, BufferConfig, BufferEvent, CapacityPolicy, DEFAULT_BUDGET_BYTES,
    MEASURED_BYTES_PER_READING, OutboxAlert, PressureLevel, RangeKind, SyncState,
    WORST_CASE_READINGS_72H,
};

fn open_with_budget(dir: &TempDir, budget_bytes: u64) -> Buffer {
    Buffer::open(
        dir.db(),
        BufferConfig {
            capacity: CapacityPolicy { budget_bytes },
            ..BufferConfig::default()
        },
    )
    .unwrap()
}

#[test]
fn measured_bytes_per_reading_stays_within_the_stated_figure() {
    let dir = TempDir::new("measure");
    let mut buffer = open_with_budget(&dir, u64::MAX);
    let empty = buffer.used_bytes().unwrap();
    let mut n = 0u64;
    // Two hours of the worst case, in one-minute batches.
    for minute in 0..120u64 {
        let batch: Vec<_> = (minute * 60..minute * 60 + 60)
            .flat_map(worst_case_second)
            .collect();
        n += buffer.insert(&batch).unwrap().inserted as u64;
    }
    let per_reading = (buffer.used_bytes().unwrap() - empty) as f64 / n as f64;
    println!("{n} readings, {per_reading:.1} bytes per reading on disk");
    assert!(
        per_reading <= MEASURED_BYTES_PER_READING as f64,
        "the schema grew: {per_reading:.1} B/reading > stated {MEASURED_BYTES_PER_READING}"
    );
    assert!(
        per_reading >= MEASURED_BYTES_PER_READING as f64 * 0.85,
        "the stated figure is stale: measured {per_reading:.1} B/reading"
    );
    // The default holds 72 hours of the worst case at the measured size.
    assert!(DEFAULT_BUDGET_BYTES as f64 >= per_reading * WORST_CASE_READINGS_72H as f64);
}

/// Inserts the worst-case mix one minute at a time until `until` returns
/// true or `max_minutes` pass; returns every event and the minutes used.
fn feed(
    buffer: &mut Buffer,
    start_minute: u64,
    max_minutes: u64,
    mut until: impl FnMut(&[BufferEvent]) -> bool,
) -> (Vec<BufferEvent>, u64) {
    let mut events = Vec::new();
    for minute in start_minute..start_minute + max_minutes {
        let batch: Vec<_> = (minute * 60..minute * 60 + 60)
            .flat_map(worst_case_second)
            .collect();
        events.extend(buffer.insert(&batch).unwrap().events);
        if until(&events) {
            return (events, minute + 1);
        }
    }
    (events, start_minute + max_minutes)
}

#[test]
fn pressure_events_fire_at_80_and_95_percent_with_hours_until_overflow() {
    let dir = TempDir::new("pressure");
    let budget = 3 * 1024 * 1024;
    let mut buffer = open_with_budget(&dir, budget);
    let start_used = buffer.used_bytes().unwrap();
    let (events, minutes) = feed(&mut buffer, 0, 600, |ev| {
        ev.iter().any(|e| {
            matches!(
                e,
                BufferEvent::Pressure {
                    level: PressureLevel::Critical,
                    ..
                }
            )
        })
    });
    let pressure: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            BufferEvent::Pressure {
                level,
                used_bytes,
                budget_bytes,
                hours_to_overflow,
            } => Some((*level, *used_bytes, *budget_bytes, *hours_to_overflow)),
            BufferEvent::Evicted(_) => None,
        })
        .collect();
    assert_eq!(pressure.len(), 2, "{pressure:?}");
    assert!(events.iter().all(|e| !matches!(e, BufferEvent::Evicted(_))));
    let (high, critical) = (pressure[0], pressure[1]);
    assert_eq!(high.0, PressureLevel::High);
    assert!(high.1 as f64 >= 0.80 * budget as f64 && (high.1 as f64) < 0.95 * budget as f64);
    assert_eq!(critical.0, PressureLevel::Critical);
    assert!(critical.1 as f64 >= 0.95 * budget as f64);
    assert_eq!(high.2, budget);
    // The estimate agrees with the growth rate this test observed overall
    // (bytes per hour of receive time) within a factor of two.
    let rate_per_hour =
        (buffer.used_bytes().unwrap() - start_used) as f64 / (minutes as f64 / 60.0);
    for (_, used, _, hours) in [high, critical] {
        let hours = hours.expect("a growing buffer has an estimate");
        let expected = (budget - used) as f64 / rate_per_hour;
        assert!(
            hours > expected / 2.0 && hours < expected * 2.0,
            "estimate {hours} h, expected about {expected} h"
        );
    }
}

#[test]
fn full_buffer_evicts_acknowledged_first_then_oldest_unsent_trend_and_never_records_or_alerts() {
    let dir = TempDir::new("evict");
    let budget = 2 * 1024 * 1024;
    let mut buffer = open_with_budget(&dir, budget);
    let alert = OutboxAlert {
        id: "a-1".into(),
        kind: "urgent_low".into(),
        phase: "raised".into(),
        time: t0(),
        value: Some(50.0),
        payload: b"{}".to_vec(),
    };
    buffer.enqueue_alert(&alert).unwrap();

    // Fill to about 60 %, then acknowledge the oldest heart-rate readings.
    let mut minute = 0;
    while buffer.used_bytes().unwrap() < budget * 6 / 10 {
        let batch: Vec<_> = (minute * 60..minute * 60 + 60)
            .flat_map(worst_case_second)
            .collect();
        buffer.insert(&batch).unwrap();
        minute += 1;
    }
    let sent = buffer.next_batch(Stream::HeartRate, 1000).unwrap().unwrap();
    let acked_ids: Vec<i64> = sent.readings.iter().map(|r| r.id).collect();
    assert_eq!(
        buffer.acknowledge_batch(sent.id).unwrap() as usize,
        acked_ids.len()
    );

    // Keep inserting until the first eviction.
    let (events, next) = feed(&mut buffer, minute, 600, |ev| {
        ev.iter().any(|e| matches!(e, BufferEvent::Evicted(_)))
    });
    let first = events
        .iter()
        .find_map(|e| match e {
            BufferEvent::Evicted(ev) => Some(ev.clone()),
            _ => None,
        })
        .expect("an eviction");
    assert!(
        first.acknowledged > 0,
        "acknowledged readings go first: {first:?}"
    );
    assert!(
        acked_ids
            .iter()
            .take(first.acknowledged as usize)
            .all(|id| buffer.get(*id).unwrap().is_none())
    );

    // Keep going past the budget (five more minutes: 1,200 records, which
    // still fit once trend readings make room): unsent trend readings go,
    // oldest first.
    let (events, _) = feed(&mut buffer, next, 5, |_| false);
    let mut unsent_evicted = 0;
    let mut acked_evicted = first.acknowledged;
    let mut local_evicted = first.local;
    for e in &events {
        if let BufferEvent::Evicted(ev) = e {
            unsent_evicted += ev.unsent;
            acked_evicted += ev.acknowledged;
            local_evicted += ev.local;
            for r in ev
                .ranges
                .iter()
                .filter(|r| r.kind == RangeKind::EvictedLocal)
            {
                // Only the CGM's own trend stays on the phone.
                assert_eq!(r.stream, Stream::GlucoseTrend, "{r:?}");
            }
            for r in ev
                .ranges
                .iter()
                .filter(|r| r.kind == RangeKind::EvictedUnsent)
            {
                assert_eq!(r.stream.profile(), Profile::Trend, "{r:?}");
            }
        }
    }
    assert!(unsent_evicted > 0);
    let used = buffer.used_bytes().unwrap();
    assert!(used <= budget);
    // Eviction frees whole pages, so it stops close to the budget instead
    // of emptying the buffer.
    assert!(
        used as f64 >= 0.9 * budget as f64,
        "over-evicted: {used} of {budget}"
    );
    assert!(
        buffer
            .count(Some(Stream::Spo2), Some(SyncState::Unsent))
            .unwrap()
            > 0
    );
    assert_eq!(buffer.integrity_check().unwrap(), "ok");

    // Oldest first: no stored unsent SpO2 reading (the oldest unsent trend
    // stream once heart rate's acknowledged head went) is older than an
    // evicted one.
    let dev = DeviceId("oxi-1".into());
    let evicted = buffer
        .ledger_ranges(&dev, Stream::Spo2, RangeKind::EvictedUnsent)
        .unwrap();
    let newest_evicted = evicted
        .iter()
        .map(|r| r.to)
        .max()
        .expect("SpO2 was evicted");
    let oldest_kept = buffer
        .next_batch(Stream::Spo2, 1)
        .unwrap()
        .unwrap()
        .readings[0]
        .reading
        .sensor_time;
    assert!(oldest_kept > newest_evicted);
    buffer.rollback_in_flight(None).unwrap();

    // Record-class readings were all kept, the alert is still pending, and
    // every stream's ledger balances: received = stored + evicted.
    let mut ledger_evicted = (0, 0, 0);
    for (device, stream) in [
        ("strap-1", Stream::HeartRate),
        ("strap-1", Stream::RrInterval),
        ("oxi-1", Stream::Spo2),
        ("oxi-1", Stream::PulseRate),
        ("cgm-1", Stream::Glucose),
        ("cgm-1", Stream::GlucoseTrend),
    ] {
        let c = buffer
            .completeness(&DeviceId(device.into()), stream)
            .unwrap();
        assert_eq!(
            c.received,
            c.stored + c.evicted_acknowledged + c.evicted_unsent + c.evicted_local,
            "{stream:?}"
        );
        if stream.profile() == Profile::Record {
            assert_eq!(c.evicted_unsent, 0, "{stream:?}");
            assert_eq!(c.stored, c.received, "{stream:?}");
        }
        ledger_evicted.0 += c.evicted_acknowledged;
        ledger_evicted.1 += c.evicted_unsent;
        ledger_evicted.2 += c.evicted_local;
    }
    // The CGM trend never waits for the cloud: local-only readings go
    // before any unsent one.
    assert!(local_evicted > 0, "no local-only reading evicted");
    assert_eq!(
        ledger_evicted,
        (acked_evicted, unsent_evicted, local_evicted),
        "events and ledger agree"
    );
    assert_eq!(buffer.pending_alerts().unwrap(), vec![alert]);
}

#[test]
fn full_buffer_with_nothing_evictable_refuses_the_write_and_keeps_everything_stored() {
    let dir = TempDir::new("full");
    let budget = 512 * 1024;
    let mut buffer = open_with_budget(&dir, budget);
    let mut stored = 0u64;
    let mut seq = 0u64;
    let err = loop {
        let batch: Vec<_> = (0..200)
            .map(|i| {
                seq += 1;
                reading(
                    "strap-1",
                    Stream::RrInterval,
                    seq,
                    t0() + Duration::milliseconds(800 * seq as i64),
                    0.8 + i as f64 * 1e-4,
                )
            })
            .collect();
        match buffer.insert(&batch) {
            Ok(out) => stored += out.inserted as u64,
            Err(e) => break e,
        }
        assert!(stored < 100_000, "never refused");
    };
    match err {
        Error::BufferFull {
            used_bytes,
            budget_bytes,
        } => {
            assert_eq!(budget_bytes, budget);
            assert!(used_bytes > budget);
        }
        other => panic!("expected BufferFull, got {other:?}"),
    }
    assert_eq!(
        buffer.count(None, None).unwrap(),
        stored,
        "the refused batch stored nothing"
    );
    assert!(buffer.used_bytes().unwrap() <= budget);
    let c = buffer
        .completeness(&DeviceId("strap-1".into()), Stream::RrInterval)
        .unwrap();
    assert_eq!((c.received, c.evicted_unsent), (stored, 0));
    // Once the cloud acknowledges some, there is room again.
    let batch = buffer.next_batch(Stream::RrInterval, 500).unwrap().unwrap();
    buffer.acknowledge_batch(batch.id).unwrap();
    let more = vec![reading("strap-1", Stream::RrInterval, seq + 1, t0(), 0.8)];
    let out = buffer.insert(&more).unwrap();
    assert_eq!(out.inserted, 1);
    assert_eq!(
        buffer
            .count(Some(Stream::RrInterval), Some(SyncState::Unsent))
            .unwrap() as usize,
        stored as usize - 500 + 1
    );
}

//! The buffer's insert path, sync state machine, outbox, registry, cursors
//! and ledger, through the public API only.

// Test crate: helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod store_common;

use chrono::Duration;
use store_common::{TempDir, reading, t0, worst_case_second};
use vigil_core::Error;
use vigil_core::model::{DeviceId, PatientId, Stream};
use vigil_core::store::{Buffer, BufferConfig, OutboxAlert, RangeKind, SyncState};

fn open(dir: &TempDir) -> Buffer {
    Buffer::open(dir.db(), BufferConfig::default()).unwrap()
}

#[test]
fn inserted_readings_read_back_exactly_after_reopening() {
    let dir = TempDir::new("roundtrip");
    let batch: Vec<_> = (0..30).flat_map(worst_case_second).collect();
    let out = open(&dir).insert(&batch).unwrap();
    assert_eq!(out.inserted, batch.len());
    assert_eq!(out.duplicates, 0);
    let buffer = open(&dir);
    for (r, id) in batch.iter().zip(&out.ids) {
        let stored = buffer.get(id.unwrap()).unwrap().unwrap();
        assert_eq!(&stored.reading, r);
        // Every stream waits for sync but the CGM's own trend, which stays
        // on the phone (the cloud derives it).
        let state = if r.stream.is_uploaded() {
            SyncState::Unsent
        } else {
            SyncState::LocalOnly
        };
        assert_eq!(stored.state, state, "{:?}", r.stream);
        assert!(!stored.held);
    }
    assert_eq!(buffer.integrity_check().unwrap(), "ok");
}

#[test]
fn reinserting_the_same_key_is_a_reported_duplicate_not_an_error() {
    let dir = TempDir::new("dup");
    let mut buffer = open(&dir);
    let first = reading("cgm-1", Stream::Glucose, 5, t0(), 100.0);
    let mut again = first.clone();
    again.value = 250.0; // a replayed notification must not overwrite
    let no_session = reading("strap-1", Stream::HeartRate, 9, t0(), 60.0);
    let out = buffer
        .insert(&[first.clone(), no_session.clone(), again, no_session.clone()])
        .unwrap();
    assert_eq!(out.inserted, 2);
    assert_eq!(out.duplicates, 2);
    assert!(out.ids[0].is_some() && out.ids[1].is_some());
    assert!(out.ids[2].is_none() && out.ids[3].is_none());
    let stored = buffer
        .find(&DeviceId("cgm-1".into()), Stream::Glucose, Some(1), 5)
        .unwrap()
        .unwrap();
    assert_eq!(stored.reading.value, 100.0);
    // Same sequence in another session is a different reading.
    let mut other_session = first;
    other_session.provenance.session = Some(2);
    assert_eq!(buffer.insert(&[other_session]).unwrap().inserted, 1);
    let ledger = buffer
        .completeness(&DeviceId("strap-1".into()), Stream::HeartRate)
        .unwrap();
    assert_eq!(
        (ledger.received, ledger.duplicates, ledger.stored),
        (1, 1, 1)
    );
}

#[test]
fn invalid_reading_fails_the_whole_call_and_stores_nothing() {
    let dir = TempDir::new("invalid");
    let mut buffer = open(&dir);
    let good = reading("cgm-1", Stream::Glucose, 1, t0(), 100.0);
    let mut nan = reading("cgm-1", Stream::Glucose, 2, t0(), 100.0);
    nan.value = f64::NAN;
    let mut huge = reading("cgm-1", Stream::Glucose, 3, t0(), 100.0);
    huge.sequence = u64::MAX;
    for bad in [nan, huge] {
        let err = buffer.insert(&[good.clone(), bad]).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    }
    assert_eq!(buffer.count(None, None).unwrap(), 0);
}

#[test]
fn readings_are_acknowledged_only_after_the_server_acknowledged_their_batch() {
    let dir = TempDir::new("sync");
    let mut buffer = open(&dir);
    let readings: Vec<_> = (0..10)
        .map(|i| {
            reading(
                "cgm-1",
                Stream::Glucose,
                i,
                t0() + Duration::minutes(i as i64),
                100.0,
            )
        })
        .collect();
    buffer.insert(&readings).unwrap();
    buffer
        .insert(&[reading("strap-1", Stream::HeartRate, 1, t0(), 70.0)])
        .unwrap();

    let batch = buffer.next_batch(Stream::Glucose, 4).unwrap().unwrap();
    let seqs: Vec<u64> = batch.readings.iter().map(|r| r.reading.sequence).collect();
    assert_eq!(seqs, [0, 1, 2, 3], "oldest first, one stream only");
    assert!(
        batch
            .readings
            .iter()
            .all(|r| r.state == SyncState::InFlight)
    );
    assert_eq!(
        buffer
            .count(Some(Stream::Glucose), Some(SyncState::Acknowledged))
            .unwrap(),
        0
    );

    // A failed send rolls back; the next batch hands out the same readings.
    assert_eq!(buffer.rollback_in_flight(Some(batch.id)).unwrap(), 4);
    let retry = buffer.next_batch(Stream::Glucose, 4).unwrap().unwrap();
    assert_eq!(
        retry.readings.iter().map(|r| r.id).collect::<Vec<_>>(),
        batch.readings.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    let second = buffer.next_batch(Stream::Glucose, 100).unwrap().unwrap();
    assert_eq!(second.readings.len(), 6);
    assert!(buffer.next_batch(Stream::Glucose, 100).unwrap().is_none());

    assert_eq!(buffer.acknowledge_batch(retry.id).unwrap(), 4);
    // Acknowledging an unknown or already acknowledged batch marks nothing.
    assert_eq!(buffer.acknowledge_batch(retry.id).unwrap(), 0);
    // Partial acknowledgement of the second batch, the rest rolled back.
    let acked: Vec<i64> = second.readings[..2].iter().map(|r| r.id).collect();
    assert_eq!(buffer.acknowledge_readings(&acked).unwrap(), 2);
    assert_eq!(buffer.rollback_in_flight(None).unwrap(), 4);

    let c = buffer
        .completeness(&DeviceId("cgm-1".into()), Stream::Glucose)
        .unwrap();
    assert_eq!(
        (c.acknowledged, c.unsent, c.in_flight, c.stored),
        (6, 4, 0, 10)
    );
    // Unsent readings can never be acknowledged directly.
    let unsent = buffer.next_batch(Stream::Glucose, 1).unwrap().unwrap();
    buffer.rollback_in_flight(None).unwrap();
    assert_eq!(
        buffer
            .acknowledge_readings(&[unsent.readings[0].id])
            .unwrap(),
        0
    );
}

#[test]
fn held_back_readings_are_kept_but_left_out_of_batches() {
    let dir = TempDir::new("held");
    let mut buffer = open(&dir);
    let readings: Vec<_> = (0..5)
        .map(|i| {
            reading(
                "oxi-1",
                Stream::Spo2,
                i,
                t0() + Duration::seconds(i as i64),
                97.0,
            )
        })
        .collect();
    let ids: Vec<i64> = buffer
        .insert(&readings)
        .unwrap()
        .ids
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(buffer.mark_held(&ids[1..4], true).unwrap(), 3);
    let batch = buffer.next_batch(Stream::Spo2, 10).unwrap().unwrap();
    assert_eq!(
        batch.readings.iter().map(|r| r.id).collect::<Vec<_>>(),
        [ids[0], ids[4]]
    );
    let c = buffer
        .completeness(&DeviceId("oxi-1".into()), Stream::Spo2)
        .unwrap();
    assert_eq!((c.stored, c.held_back), (5, 3));
    buffer.mark_held(&ids[1..2], false).unwrap();
    let next = buffer.next_batch(Stream::Spo2, 10).unwrap().unwrap();
    assert_eq!(next.readings.len(), 1);
    assert_eq!(next.readings[0].id, ids[1]);
}

#[test]
fn hold_back_marks_ride_along_with_the_next_insert() {
    let dir = TempDir::new("held-along");
    let mut buffer = open(&dir);
    let spo2 = |i: u64| {
        reading(
            "oxi-1",
            Stream::Spo2,
            i,
            t0() + Duration::seconds(i as i64),
            97.0,
        )
    };
    let first: Vec<i64> = buffer
        .insert(&[spo2(0), spo2(1), spo2(2)])
        .unwrap()
        .ids
        .into_iter()
        .flatten()
        .collect();
    // The reducer decided about readings 1 and 2 only once later ones came.
    let out = buffer
        .insert_and_mark_held(&[spo2(3), spo2(4)], &first[1..3])
        .unwrap();
    assert_eq!(out.inserted, 2);
    let c = buffer
        .completeness(&DeviceId("oxi-1".into()), Stream::Spo2)
        .unwrap();
    assert_eq!((c.stored, c.held_back), (5, 2));
    // A refused insert takes its marks with it.
    let mut bad = spo2(5);
    bad.value = f64::NAN;
    assert!(buffer.insert_and_mark_held(&[bad], &first[0..1]).is_err());
    let c = buffer
        .completeness(&DeviceId("oxi-1".into()), Stream::Spo2)
        .unwrap();
    assert_eq!(c.held_back, 2);
}

#[test]
fn alert_outbox_is_idempotent_by_event_and_survives_reopen() {
    let dir = TempDir::new("outbox");
    let alert = |phase: &str, minutes: i64| OutboxAlert {
        id: "a-1".into(),
        kind: "urgent_low".into(),
        phase: phase.into(),
        time: t0() + Duration::minutes(minutes),
        value: Some(52.0),
        payload: br#"{"rule":"urgent_low"}"#.to_vec(),
    };
    {
        let mut buffer = open(&dir);
        assert!(buffer.enqueue_alert(&alert("start", 0)).unwrap());
        assert!(!buffer.enqueue_alert(&alert("start", 0)).unwrap());
        // Each re-alert of the episode is its own event; a replay of one
        // is not.
        assert!(buffer.enqueue_alert(&alert("realert", 30)).unwrap());
        assert!(buffer.enqueue_alert(&alert("realert", 60)).unwrap());
        assert!(!buffer.enqueue_alert(&alert("realert", 60)).unwrap());
        assert!(buffer.enqueue_alert(&alert("end", 75)).unwrap());
    }
    let mut buffer = open(&dir);
    let pending = buffer.pending_alerts().unwrap();
    assert_eq!(pending.len(), 4);
    assert!(pending.contains(&alert("start", 0)));
    let realert = |m| t0() + Duration::minutes(m);
    assert_eq!(
        buffer
            .alert_times(t0(), t0() + Duration::hours(2))
            .unwrap()
            .len(),
        4,
        "every event's reading is kept by reduction"
    );
    assert!(
        buffer
            .mark_alert_delivered("a-1", "start", t0(), t0())
            .unwrap()
    );
    assert!(
        !buffer
            .mark_alert_delivered("a-1", "start", t0(), t0())
            .unwrap()
    );
    // Delivering one re-alert leaves the other pending.
    assert!(
        buffer
            .mark_alert_delivered("a-1", "realert", realert(30), t0())
            .unwrap()
    );
    assert_eq!(
        buffer.pending_alerts().unwrap(),
        vec![alert("realert", 60), alert("end", 75)]
    );
}

#[test]
fn registry_attributes_a_device_to_whoever_wore_it_at_the_time() {
    let dir = TempDir::new("registry");
    let mut buffer = open(&dir);
    let dev = DeviceId("oxi-1".into());
    let (a, b) = (PatientId("p-a".into()), PatientId("p-b".into()));
    buffer.pair(&dev, "oximeter", &a, t0()).unwrap();
    buffer
        .pair(&dev, "oximeter", &b, t0() + Duration::hours(5))
        .unwrap();
    buffer.forget(&dev, t0() + Duration::hours(9)).unwrap();
    assert_eq!(
        buffer.wearer_at(&dev, t0() - Duration::hours(1)).unwrap(),
        None
    );
    assert_eq!(
        buffer.wearer_at(&dev, t0() + Duration::hours(1)).unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        buffer.wearer_at(&dev, t0() + Duration::hours(6)).unwrap(),
        Some(b.clone())
    );
    assert_eq!(
        buffer.wearer_at(&dev, t0() + Duration::hours(10)).unwrap(),
        None
    );
    let history = buffer.wear_history(&dev).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].to, Some(t0() + Duration::hours(5)));
    assert_eq!(history[1].to, Some(t0() + Duration::hours(9)));
    let devices = buffer.devices().unwrap();
    assert_eq!(devices[0].forgotten_at, Some(t0() + Duration::hours(9)));
    let err = buffer.forget(&DeviceId("never".into()), t0()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
}

#[test]
fn sync_cursors_persist_per_endpoint_and_stream() {
    let dir = TempDir::new("cursor");
    {
        let mut buffer = open(&dir);
        assert_eq!(buffer.cursor("batches", Stream::Glucose).unwrap(), None);
        buffer
            .set_cursor("batches", Stream::Glucose, Some(41), Some("b-9"))
            .unwrap();
        buffer
            .set_cursor("batches", Stream::Glucose, Some(42), Some("b-10"))
            .unwrap();
        buffer
            .set_cursor("batches", Stream::Spo2, None, None)
            .unwrap();
    }
    let buffer = open(&dir);
    let c = buffer.cursor("batches", Stream::Glucose).unwrap().unwrap();
    assert_eq!(
        (c.last_acked_sequence, c.last_batch_id.as_deref()),
        (Some(42), Some("b-10"))
    );
    assert_eq!(buffer.cursor("alerts", Stream::Glucose).unwrap(), None);
}

#[test]
fn sensor_reported_gaps_are_counted_with_their_ranges() {
    let dir = TempDir::new("gaps");
    let mut buffer = open(&dir);
    let dev = DeviceId("cgm-1".into());
    let (from, to) = (t0(), t0() + Duration::minutes(14));
    buffer
        .record_missing(&dev, Stream::Glucose, from, to, 15)
        .unwrap();
    let c = buffer.completeness(&dev, Stream::Glucose).unwrap();
    assert_eq!(c.reported_missing, 15);
    let ranges = buffer
        .ledger_ranges(&dev, Stream::Glucose, RangeKind::ReportedMissing)
        .unwrap();
    assert_eq!(ranges.len(), 1);
    assert_eq!(
        (ranges[0].from, ranges[0].to, ranges[0].count),
        (from, to, 15)
    );
    assert!(
        buffer
            .record_missing(&dev, Stream::Glucose, to, from, 1)
            .is_err()
    );
}

#[test]
fn a_file_that_is_not_a_database_is_a_storage_error() {
    let dir = TempDir::new("garbage");
    std::fs::write(dir.db(), vec![0x5Au8; 8192]).unwrap();
    let err = Buffer::open(dir.db(), BufferConfig::default()).unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
}

#[test]
fn a_late_acknowledgement_of_an_abandoned_batch_marks_nothing() {
    let dir = TempDir::new("late-ack");
    let mut buffer = open(&dir);
    let readings: Vec<_> = (0..3)
        .map(|i| {
            reading(
                "cgm-1",
                Stream::Glucose,
                i,
                t0() + Duration::minutes(i as i64),
                100.0,
            )
        })
        .collect();
    buffer.insert(&readings).unwrap();
    let abandoned = buffer.next_batch(Stream::Glucose, 10).unwrap().unwrap();
    buffer.rollback_in_flight(Some(abandoned.id)).unwrap();
    let resent = buffer.next_batch(Stream::Glucose, 10).unwrap().unwrap();
    assert_ne!(resent.id, abandoned.id, "batch ids are never reused");
    assert_eq!(buffer.acknowledge_batch(abandoned.id).unwrap(), 0);
    assert_eq!(buffer.count(None, Some(SyncState::InFlight)).unwrap(), 3);
}

#[test]
fn batches_in_flight_when_the_process_died_are_unsent_again_after_reopening() {
    let dir = TempDir::new("reopen-inflight");
    {
        let mut buffer = open(&dir);
        buffer
            .insert(&[reading("oxi-1", Stream::Spo2, 1, t0(), 97.0)])
            .unwrap();
        let batch = buffer.next_batch(Stream::Spo2, 10).unwrap().unwrap();
        assert_eq!(batch.readings[0].state, SyncState::InFlight);
    }
    let mut buffer = open(&dir);
    assert_eq!(buffer.count(None, Some(SyncState::Unsent)).unwrap(), 1);
    assert_eq!(
        buffer
            .next_batch(Stream::Spo2, 10)
            .unwrap()
            .unwrap()
            .readings
            .len(),
        1
    );
}

#[test]
fn a_shared_connection_leaves_batches_in_flight_alone_and_a_fresh_open_returns_them() {
    let dir = TempDir::new("shared");
    let batch: Vec<_> = (0..3).flat_map(worst_case_second).collect();
    let mut first = open(&dir);
    first.insert(&batch).unwrap();
    let sent = first.next_batch(Stream::Glucose, 10_000).unwrap().unwrap();
    let in_flight = sent.readings.len() as u64;
    assert!(in_flight > 0);
    // A second connection of the same process (a session, the sync engine)
    // must not take a live sender's batch back.
    let shared = Buffer::open_shared(dir.db(), BufferConfig::default()).unwrap();
    assert_eq!(
        shared.count(None, Some(SyncState::InFlight)).unwrap(),
        in_flight
    );
    drop(shared);
    drop(first);
    // A fresh process's open does: the sender died with the old process.
    let reopened = open(&dir);
    assert_eq!(reopened.count(None, Some(SyncState::InFlight)).unwrap(), 0);
}

/// `n` glucose readings of `cgm-1` from sequence `from`, five minutes apart.
fn glucose(from: u64, n: u64) -> Vec<vigil_core::model::Reading> {
    (from..from + n)
        .map(|s| {
            reading(
                "cgm-1",
                Stream::Glucose,
                s,
                t0() + Duration::minutes(5 * s as i64),
                100.0,
            )
        })
        .collect()
}

fn sequences(rows: &[vigil_core::store::StoredReading]) -> Vec<u64> {
    rows.iter().map(|r| r.reading.sequence).collect()
}

#[test]
fn an_export_resumes_after_its_cursor_and_the_cursor_survives_reopening() {
    let dir = TempDir::new("export-resume");
    open(&dir).insert(&glucose(1, 10)).unwrap();
    let mut buffer = open(&dir);
    let first = buffer
        .readings_to_export("health_connect", &[Stream::Glucose], 4)
        .unwrap();
    assert_eq!(sequences(&first), vec![1, 2, 3, 4]);
    // Not confirmed: the same batch again.
    let again = buffer
        .readings_to_export("health_connect", &[Stream::Glucose], 4)
        .unwrap();
    assert_eq!(again, first);
    assert!(
        buffer
            .advance_export_cursor("health_connect", first[3].id)
            .unwrap()
    );
    drop(buffer);
    let mut buffer = open(&dir);
    let next = buffer
        .readings_to_export("health_connect", &[Stream::Glucose], 4)
        .unwrap();
    assert_eq!(sequences(&next), vec![5, 6, 7, 8]);
    buffer
        .advance_export_cursor("health_connect", next[3].id)
        .unwrap();
    // Readings stored later come after the cursor; nothing before it again.
    buffer.insert(&glucose(11, 2)).unwrap();
    let rest = buffer
        .readings_to_export("health_connect", &[Stream::Glucose], 100)
        .unwrap();
    assert_eq!(sequences(&rest), vec![9, 10, 11, 12]);
    buffer
        .advance_export_cursor("health_connect", rest[3].id)
        .unwrap();
    assert!(
        buffer
            .readings_to_export("health_connect", &[Stream::Glucose], 100)
            .unwrap()
            .is_empty()
    );
    // Each target has its own cursor.
    assert_eq!(
        buffer
            .readings_to_export("healthkit", &[Stream::Glucose], 100)
            .unwrap()
            .len(),
        12
    );
}

#[test]
fn an_export_cursor_never_moves_back_nor_past_the_stored_readings() {
    let dir = TempDir::new("export-monotonic");
    let mut buffer = open(&dir);
    let ids: Vec<i64> = buffer
        .insert(&glucose(1, 6))
        .unwrap()
        .ids
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert!(buffer.advance_export_cursor("hc", ids[4]).unwrap());
    let before = buffer.export_cursor("hc").unwrap();
    assert!(!buffer.advance_export_cursor("hc", ids[1]).unwrap());
    assert!(!buffer.advance_export_cursor("hc", ids[4]).unwrap());
    assert_eq!(buffer.export_cursor("hc").unwrap(), before);
    assert!(matches!(
        buffer.advance_export_cursor("hc", ids[5] + 1),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        buffer.advance_export_cursor("hc", 0),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(buffer.export_cursor("hc").unwrap(), before);
    let rest = buffer
        .readings_to_export("hc", &[Stream::Glucose], 10)
        .unwrap();
    assert_eq!(sequences(&rest), vec![6]);
}

#[test]
fn an_export_takes_only_its_streams_held_back_and_record_readings_included() {
    let dir = TempDir::new("export-streams");
    let mut buffer = open(&dir);
    let mut batch = glucose(1, 4);
    for s in 1..=3 {
        let at = t0() + Duration::minutes(5 * s as i64);
        batch.push(reading("strap-1", Stream::HeartRate, s, at, 60.0));
        batch.push(reading("meter-1", Stream::MeterGlucose, s, at, 110.0));
    }
    let out = buffer.insert(&batch).unwrap();
    // Reduction held the second glucose reading back: still the patient's.
    buffer.mark_held(&[out.ids[1].unwrap()], true).unwrap();
    let streams = [Stream::Glucose, Stream::MeterGlucose];
    let mut exported = Vec::new();
    loop {
        let rows = buffer.readings_to_export("hc", &streams, 2).unwrap();
        let Some(last) = rows.last() else { break };
        buffer.advance_export_cursor("hc", last.id).unwrap();
        exported.extend(rows.iter().map(|r| (r.reading.stream, r.reading.sequence)));
    }
    let mut expected: Vec<_> = (1..=3).map(|s| (Stream::MeterGlucose, s)).collect();
    expected.extend((1..=4).map(|s| (Stream::Glucose, s)));
    assert_eq!(exported, expected);
    // Record and trend readings take separate id ranges: a meter reading
    // stored after the glucose was exported is still exported, and so is a
    // new glucose reading.
    let at = t0() + Duration::hours(2);
    buffer
        .insert(&[
            reading("meter-1", Stream::MeterGlucose, 4, at, 120.0),
            reading("cgm-1", Stream::Glucose, 5, at, 120.0),
        ])
        .unwrap();
    let mut late = Vec::new();
    loop {
        let rows = buffer.readings_to_export("hc", &streams, 10).unwrap();
        let Some(last) = rows.last() else { break };
        buffer.advance_export_cursor("hc", last.id).unwrap();
        late.extend(rows.iter().map(|r| (r.reading.stream, r.reading.sequence)));
    }
    assert_eq!(late, vec![(Stream::MeterGlucose, 4), (Stream::Glucose, 5)]);
}

#[test]
fn a_reading_stored_after_every_exported_row_was_evicted_still_lands_after_the_cursor() {
    let dir = TempDir::new("export-evicted");
    let mut buffer = open(&dir);
    let out = buffer.insert(&glucose(1, 3)).unwrap();
    let last = out.ids[2].unwrap();
    buffer.advance_export_cursor("hc", last).unwrap();
    // What eviction does once the cloud has them all: every row of the
    // range goes, the highest id with them.
    store_common::raw(&dir.db())
        .execute("DELETE FROM readings", [])
        .unwrap();
    let new = buffer.insert(&glucose(4, 1)).unwrap().ids[0].unwrap();
    assert!(new > last);
    let rows = buffer
        .readings_to_export("hc", &[Stream::Glucose], 10)
        .unwrap();
    assert_eq!(sequences(&rows), vec![4]);
}

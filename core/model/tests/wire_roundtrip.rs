//! Property tests of the wire protocol: every valid batch survives both
//! encodings and every content coding unchanged (values bit for bit), and
//! the JSON form of the other messages round-trips too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use vigil_model::alerts::{AlertKind, Phase};
use vigil_model::reading::{DeviceId, PatientId, Quality, Stream};
use vigil_model::wire::{
    self, Alert, AlertAck, AppState, Batch, BatchAck, BatchId, BufferHealth, ContentEncoding,
    DeviceHealth, Format, Heartbeat, HeldBack, PressureLevel, RejectReason, Rejected, SeqRange,
    StreamAck, StreamReadings, WireReading, json,
};

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    // Whole microseconds from 1900 to 2200, the protocol's resolution.
    (-2_208_988_800_000_000i64..7_258_118_400_000_000)
        .prop_map(|us| DateTime::from_timestamp_micros(us).unwrap())
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        (40i32..=400).prop_map(f64::from),
        (0i32..=4000).prop_map(|t| f64::from(t) / 10.0),
        (1u16..=3000).prop_map(|k| f64::from(k) / 1024.0),
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        Just(-0.0),
    ]
}

fn quality() -> impl Strategy<Value = Quality> {
    (proptest::option::of(value()), any::<bool>())
        .prop_map(|(percent, flagged)| Quality { percent, flagged })
}

fn reading() -> impl Strategy<Value = WireReading> {
    (
        any::<u64>(),
        time(),
        value(),
        quality(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)),
    )
        .prop_map(|(seq, time, value, quality, raw)| WireReading {
            seq,
            time,
            value,
            quality,
            raw,
        })
}

/// A group whose readings are either random or a regular series (the
/// common case, which exercises the runs).
fn group() -> impl Strategy<Value = StreamReadings> {
    let regular = (time(), any::<u32>(), 0usize..60, 1i64..600).prop_map(|(t0, s0, n, step)| {
        (0..n)
            .map(|i| WireReading {
                seq: u64::from(s0) + i as u64,
                time: t0 + chrono::TimeDelta::seconds(step * i as i64),
                value: 100.0 + (i % 7) as f64,
                quality: Quality::default(),
                raw: None,
            })
            .collect::<Vec<_>>()
    });
    let random = proptest::collection::vec(reading(), 0..20);
    (
        proptest::sample::select(Stream::ALL.to_vec()),
        proptest::option::of(any::<i64>()),
        any::<u16>(),
        proptest::option::of(0.0f64..50.0),
        prop_oneof![regular, random],
        proptest::collection::vec((any::<u64>(), time()), 0..10),
    )
        .prop_map(
            |(stream, session, characteristic, tolerance, readings, held)| StreamReadings {
                stream,
                session,
                characteristic,
                tolerance,
                readings,
                held_back: if tolerance.is_some() {
                    held.into_iter()
                        .map(|(seq, time)| HeldBack { seq, time })
                        .collect()
                } else {
                    Vec::new()
                },
            },
        )
}

fn batch() -> impl Strategy<Value = Batch> {
    (
        any::<[u8; 16]>(),
        "[a-z0-9-]{1,40}",
        "[A-Za-z0-9:é ]{1,40}",
        time(),
        proptest::collection::vec(group(), 0..5),
    )
        .prop_map(|(id, patient, device, sent_at, streams)| {
            let mut b = Batch::new(BatchId(id), PatientId(patient), DeviceId(device), sent_at);
            b.streams = streams;
            b
        })
}

/// Equality that also tells -0.0 from 0.0 (derived `PartialEq` does not).
fn same_bits(a: &Batch, b: &Batch) -> bool {
    a == b
        && a.streams.iter().zip(&b.streams).all(|(x, y)| {
            x.readings.iter().zip(&y.readings).all(|(r, s)| {
                r.value.to_bits() == s.value.to_bits()
                    && r.quality.percent.map(f64::to_bits) == s.quality.percent.map(f64::to_bits)
            }) && x.tolerance.map(f64::to_bits) == y.tolerance.map(f64::to_bits)
        })
}

const CODINGS: [ContentEncoding; 3] = [
    ContentEncoding::Identity,
    ContentEncoding::Gzip,
    ContentEncoding::Deflate,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_valid_batch_round_trips_through_both_encodings_and_every_coding(b in batch()) {
        for format in [Format::Json, Format::Binary] {
            for coding in CODINGS {
                let body = wire::encode_batch(&b, format, coding).unwrap();
                let back = wire::decode_batch(&body, format, coding).unwrap();
                prop_assert!(same_bits(&b, &back), "{format:?} {coding:?}");
            }
        }
    }

    #[test]
    fn binary_and_json_decode_to_the_same_batch(b in batch()) {
        let from_bin = wire::binary::decode(&wire::binary::encode(&b).unwrap()).unwrap();
        let from_json: Batch = json::from_slice(&json::to_vec(&b).unwrap()).unwrap();
        prop_assert!(same_bits(&from_bin, &from_json));
    }

    #[test]
    fn binary_encoding_is_deterministic_and_canonical(b in batch()) {
        let once = wire::binary::encode(&b).unwrap();
        let again = wire::binary::encode(&wire::binary::decode(&once).unwrap()).unwrap();
        prop_assert_eq!(once, again);
    }

    #[test]
    fn seq_ranges_cover_exactly_the_sequences_given(seqs in proptest::collection::vec(0u64..200, 0..100)) {
        let ranges = SeqRange::coalesce(seqs.iter().copied());
        for s in 0..200u64 {
            prop_assert_eq!(ranges.iter().any(|r| r.contains(s)), seqs.contains(&s));
        }
        // Fewest ranges: no two touch.
        for w in ranges.windows(2) {
            prop_assert!(w[0].last + 1 < w[1].first);
        }
    }
}

#[test]
fn alerts_heartbeats_and_acks_round_trip_as_json() {
    let t = DateTime::parse_from_rfc3339("2026-05-01T03:04:05.123456Z")
        .unwrap()
        .with_timezone(&Utc);
    let alert = Alert {
        v: wire::PROTOCOL_VERSION,
        patient: PatientId("p-1".into()),
        device: Some(DeviceId("cgm-1".into())),
        sent_at: t,
        id: "0123456789abcdef".into(),
        kind: AlertKind::FastFall,
        phase: Phase::Start,
        time: t,
        glucose_mg_dl: Some(81.0),
        rate_mg_dl_per_min: Some(-2.4),
        battery_pct: None,
        session_expires_at: None,
    };
    assert_eq!(
        json::from_slice::<Alert>(&json::to_vec(&alert).unwrap()).unwrap(),
        alert
    );
    assert_eq!(
        Alert::from_event(
            alert.patient.clone(),
            alert.device.clone(),
            t,
            &alert.event()
        ),
        alert
    );

    let heartbeat = Heartbeat {
        v: 1,
        patient: PatientId("p-1".into()),
        sent_at: t,
        sdk_version: "0.1.0".into(),
        app_state: AppState::Background,
        phone_battery_pct: Some(54.0),
        buffer: BufferHealth {
            unsent_readings: 12,
            pending_alerts: 1,
            used_bytes: 81_920,
            budget_bytes: 64 << 20,
            pressure: PressureLevel::Normal,
        },
        devices: vec![DeviceHealth {
            device: DeviceId("cgm-1".into()),
            connected: true,
            last_contact: Some(t),
            battery_pct: Some(80.0),
        }],
    };
    assert_eq!(
        json::from_slice::<Heartbeat>(&json::to_vec(&heartbeat).unwrap()).unwrap(),
        heartbeat
    );

    let ack = BatchAck {
        v: 1,
        batch: BatchId::random(),
        duplicate: false,
        streams: vec![StreamAck {
            stream: Stream::Glucose,
            session: Some(3),
            stored: vec![SeqRange {
                first: 10,
                last: 20,
            }],
            rejected: vec![Rejected {
                seq: 21,
                reason: RejectReason::ImpossibleValue,
            }],
        }],
    };
    assert_eq!(
        json::from_slice::<BatchAck>(&json::to_vec(&ack).unwrap()).unwrap(),
        ack
    );

    let alert_ack = AlertAck {
        v: 1,
        id: alert.id.clone(),
        phase: Phase::Start,
        time: t,
        duplicate: true,
    };
    assert_eq!(
        json::from_slice::<AlertAck>(&json::to_vec(&alert_ack).unwrap()).unwrap(),
        alert_ack
    );
}

#[test]
fn ack_runs_span_a_group_s_own_stored_readings_and_break_at_a_refused_one() {
    use vigil_model::wire::SeqRange;
    let r = |first, last| SeqRange { first, last };
    // 5-minute CGM offsets: one range, not four.
    assert_eq!(SeqRange::runs(&[15, 0, 5, 10], &[]), vec![r(0, 15)]);
    // A refused reading in the middle splits the run and is not claimed.
    let runs = SeqRange::runs(&[0, 5, 15, 20], &[10]);
    assert_eq!(runs, vec![r(0, 5), r(15, 20)]);
    assert!(!runs.iter().any(|x| x.contains(10)));
    // Stored and refused at once (two groups of one stream): the refusal wins.
    assert_eq!(SeqRange::runs(&[0, 5, 10], &[5]), vec![r(0, 0), r(10, 10)]);
    assert!(SeqRange::runs(&[], &[3]).is_empty());
}

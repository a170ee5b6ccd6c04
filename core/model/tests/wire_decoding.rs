//! The wire decoders against hostile and surprising input (a seeded fuzz of
//! mutated valid encodings, truncation at every byte, newer versions), and
//! the protocol's semantics: acknowledgements, held-back reconstruction,
//! building batches from buffered readings, and the JSON example of
//! docs/protocol.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_model::Error;
use vigil_model::reading::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};
use vigil_model::wire::{
    self, Batch, BatchAck, BatchId, ContentEncoding, Format, HeldBack, RejectReason, Rejected,
    SeqRange, StreamAck, StreamReadings, WireReading, json,
};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A realistic batch: a CGM group with quality, raw bytes and held-back
/// readings, and a heart-rate group.
fn sample_batch() -> Batch {
    let mut b = Batch::new(
        BatchId::parse("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap(),
        PatientId("p-7".into()),
        DeviceId("cgm-8K3ZQ".into()),
        t0() + TimeDelta::minutes(60),
    );
    let mut g = StreamReadings::new(Stream::Glucose, Some(4), 0x2AA7);
    g.tolerance = Some(3.0);
    for i in 0..12u64 {
        let time = t0() + TimeDelta::minutes(5 * i as i64);
        if i % 3 == 1 {
            g.held_back.push(HeldBack { seq: 5 * i, time });
            continue;
        }
        g.readings.push(WireReading {
            seq: 5 * i,
            time,
            value: 110.0 + i as f64,
            quality: Quality {
                percent: (i % 2 == 0).then_some(92.5),
                flagged: i == 9,
            },
            raw: (i < 3).then(|| vec![0x0e, 0x00, 0x6e, 0x00, i as u8, 0x00]),
        });
    }
    b.streams.push(g);
    let mut hr = StreamReadings::new(Stream::HeartRate, None, 0x2A37);
    for i in 0..30u64 {
        hr.readings.push(WireReading {
            seq: i,
            time: t0() + TimeDelta::seconds(i as i64),
            value: 60.0 + (i % 4) as f64,
            quality: Quality::default(),
            raw: None,
        });
    }
    b.streams.push(hr);
    b
}

fn mutate(rng: &mut ChaCha8Rng, valid: &[u8]) -> Vec<u8> {
    let mut m = valid.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        match rng.random_range(0..5) {
            0 if !m.is_empty() => {
                let i = rng.random_range(0..m.len());
                m[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !m.is_empty() => {
                let i = rng.random_range(0..m.len());
                m[i] = rng.random();
            }
            2 => {
                let i = rng.random_range(0..=m.len());
                m.insert(i, rng.random());
            }
            3 if !m.is_empty() => {
                let i = rng.random_range(0..m.len());
                m.remove(i);
            }
            _ => {
                let cut = rng.random_range(0..=m.len());
                m.truncate(cut);
            }
        }
    }
    m
}

#[test]
fn mutated_binary_batches_never_panic_and_whatever_decodes_is_valid() {
    let valid = wire::binary::encode(&sample_batch()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0005);
    let (mut accepted, mut refused) = (0u32, 0u32);
    for _ in 0..200_000 {
        let input = mutate(&mut rng, &valid);
        match wire::binary::decode(&input) {
            // Anything accepted obeys the rules and re-encodes to bytes
            // that decode to the same batch.
            Ok(batch) => {
                batch.validate().unwrap();
                let again = wire::binary::encode(&batch).unwrap();
                assert_eq!(wire::binary::decode(&again).unwrap(), batch);
                accepted += 1;
            }
            Err(
                Error::Wire { .. }
                | Error::Truncated { .. }
                | Error::Oversized { .. }
                | Error::Reserved { .. },
            ) => refused += 1,
            Err(other) => panic!("unexpected error kind: {other:?}"),
        }
    }
    // The fuzz reaches deep into the layout (some mutations of values
    // still decode) and refuses most.
    assert!(accepted > 100, "accepted {accepted}");
    assert!(refused > 100_000, "refused {refused}");
}

#[test]
fn mutated_compressed_bodies_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    for coding in [ContentEncoding::Gzip, ContentEncoding::Deflate] {
        for format in [Format::Binary, Format::Json] {
            let valid = wire::encode_batch(&sample_batch(), format, coding).unwrap();
            for _ in 0..5_000 {
                let input = mutate(&mut rng, &valid);
                if let Ok(b) = wire::decode_batch(&input, format, coding) {
                    b.validate().unwrap();
                }
            }
        }
    }
}

#[test]
fn random_bytes_and_json_garbage_are_refused_with_typed_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..20_000 {
        let len = rng.random_range(0..64);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if rng.random_bool(0.5) && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&[b'V', b'G', b'B', 1]);
        }
        assert!(wire::binary::decode(&bytes).is_err());
        assert!(json::from_slice::<Batch>(&bytes).is_err());
    }
}

#[test]
fn every_truncation_of_a_valid_batch_is_refused_with_its_offset() {
    let valid = wire::binary::encode(&sample_batch()).unwrap();
    for cut in 0..valid.len() {
        let err = wire::binary::decode(&valid[..cut]).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { offset, .. } if offset <= cut)
                || matches!(err, Error::Wire { .. }),
            "cut at {cut}: {err:?}"
        );
    }
    let mut long = valid.clone();
    long.push(0);
    assert!(matches!(
        wire::binary::decode(&long),
        Err(Error::Oversized { .. })
    ));
}

#[test]
fn a_newer_version_is_refused_in_both_encodings_before_its_fields_are_read() {
    let mut valid = wire::binary::encode(&sample_batch()).unwrap();
    valid[3] = 2;
    let err = wire::binary::decode(&valid).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Wire {
                field: "v",
                offset: Some(3),
                ..
            }
        ),
        "{err:?}"
    );

    // A v2 JSON body whose other fields this build cannot read at all is
    // refused for its version, not for the fields.
    let body = br#"{"v":2,"id":{"new":"shape"}}"#;
    let err = json::from_slice::<Batch>(body).unwrap_err();
    assert!(matches!(err, Error::Wire { field: "v", .. }), "{err:?}");

    let mut b = sample_batch();
    b.v = 0;
    assert!(wire::binary::encode(&b).is_err());
}

#[test]
fn json_from_an_older_client_without_optional_fields_is_accepted() {
    // Only the required fields: what a minimal third-party client sends.
    let body = br#"{"v":1,"id":"0f8fad5b-d9cb-469f-a165-70867728950e","patient":"p-7",
        "device":"meter-1","sent_at":"2026-03-02T09:00:00Z",
        "streams":[{"stream":"meter_glucose","characteristic":10776,
        "readings":[{"seq":1,"time":"2026-03-02T08:55:00Z","value":104}]}]}"#;
    let b: Batch = json::from_slice(body).unwrap();
    let g = &b.streams[0];
    assert_eq!(g.session, None);
    assert_eq!(g.tolerance, None);
    assert_eq!(g.readings[0].quality, Quality::default());
    assert_eq!(g.readings[0].value, 104.0);
}

#[test]
fn the_protocol_doc_json_example_decodes_and_matches_its_binary_twin() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/protocol.md"
    ))
    .unwrap();
    let start = doc.find("```json\n").unwrap() + "```json\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let b: Batch = json::from_slice(&doc.as_bytes()[start..end]).unwrap();
    let bin = wire::binary::encode(&b).unwrap();
    assert_eq!(wire::binary::decode(&bin).unwrap(), b);
}

#[test]
fn invalid_batches_are_refused_on_encode_with_the_field_named() {
    type Spoil = Box<dyn Fn(&mut Batch)>;
    let cases: Vec<(&str, Spoil)> = vec![
        (
            "value",
            Box::new(|b| b.streams[0].readings[0].value = f64::NAN),
        ),
        ("patient", Box::new(|b| b.patient.0.clear())),
        ("device", Box::new(|b| b.device.0 = "x".repeat(300))),
        (
            "time",
            Box::new(|b| b.streams[0].readings[0].time += TimeDelta::nanoseconds(1)),
        ),
        (
            "tolerance",
            Box::new(|b| b.streams[0].tolerance = Some(-1.0)),
        ),
        ("held_back", Box::new(|b| b.streams[0].tolerance = None)),
        (
            "raw",
            Box::new(|b| b.streams[0].readings[0].raw = Some(vec![0; 513])),
        ),
    ];
    for (field, spoil) in cases {
        let mut b = sample_batch();
        spoil(&mut b);
        for result in [wire::binary::encode(&b), json::to_vec(&b)] {
            match result {
                Err(Error::Wire { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}

#[test]
fn an_ack_settles_stored_and_rejected_readings_and_nothing_else() {
    let ack = BatchAck {
        v: 1,
        batch: BatchId::random(),
        duplicate: false,
        streams: vec![StreamAck {
            stream: Stream::Glucose,
            session: Some(4),
            stored: SeqRange::coalesce([0, 5, 10, 15, 16, 17]),
            rejected: vec![Rejected {
                seq: 20,
                reason: RejectReason::ImpossibleValue,
            }],
        }],
    };
    assert!(ack.settles(Stream::Glucose, Some(4), 16));
    assert!(ack.settles(Stream::Glucose, Some(4), 20));
    assert!(!ack.settles(Stream::Glucose, Some(4), 18));
    assert!(
        !ack.settles(Stream::Glucose, Some(5), 16),
        "another session"
    );
    assert!(
        !ack.settles(Stream::HeartRate, Some(4), 16),
        "another stream"
    );
}

#[test]
fn an_unknown_reject_reason_from_a_newer_server_is_still_a_refusal() {
    let body = br#"{"v":1,"batch":"0f8fad5b-d9cb-469f-a165-70867728950e","streams":[
        {"stream":"glucose","session":4,"stored":[],"rejected":[{"seq":3,"reason":"quarantined"}]}]}"#;
    let ack: BatchAck = json::from_slice(body).unwrap();
    assert_eq!(ack.streams[0].rejected[0].reason, RejectReason::Unknown);
    assert!(ack.settles(Stream::Glucose, Some(4), 3));
}

#[test]
fn held_back_readings_are_reconstructed_within_the_tolerance() {
    // A fall, then a rise: reduce the series with the core's reducer and
    // send what it keeps; the cloud's reconstruction of every held-back
    // reading must be within the tolerance sent.
    use vigil_model::reading::Sample;
    use vigil_model::reduce::{Policy, ReducerConfig, reduce};
    let samples: Vec<Sample> = (0..48)
        .map(|i| Sample {
            time: t0() + TimeDelta::minutes(5 * i),
            value: 150.0 - 40.0 * ((i as f64) / 8.0).sin() + (i % 3) as f64,
        })
        .collect();
    let config = ReducerConfig::glucose(TimeDelta::minutes(5));
    let kept = reduce(&samples, &[], &Policy::BoundedError(config)).unwrap();
    assert!(kept.len() < samples.len());

    let reading = |i: usize| Reading {
        patient: PatientId("p-7".into()),
        stream: Stream::Glucose,
        value: samples[i].value,
        sensor_time: samples[i].time,
        receive_time: samples[i].time,
        sequence: 5 * i as u64,
        quality: Quality::default(),
        provenance: Provenance {
            device: DeviceId("cgm-8K3ZQ".into()),
            characteristic: 0x2AA7,
            raw: vec![1, 2, 3],
            session: Some(4),
        },
    };
    let mut b = Batch::new(
        BatchId::random(),
        PatientId("p-7".into()),
        DeviceId("cgm-8K3ZQ".into()),
        t0(),
    );
    for i in 0..samples.len() {
        if kept.contains(&i) {
            b.push_reading(&reading(i), i == 0).unwrap();
        } else {
            b.push_held_back(&reading(i), config.tolerance).unwrap();
        }
    }
    let sent = wire::decode_batch(
        &wire::encode_batch(&b, Format::Binary, ContentEncoding::Gzip).unwrap(),
        Format::Binary,
        ContentEncoding::Gzip,
    )
    .unwrap();
    let g = &sent.streams[0];
    assert_eq!(g.readings[0].raw, Some(vec![1, 2, 3]));
    assert_eq!(g.readings[1].raw, None);
    let rebuilt = g.reconstruct_held_back();
    assert_eq!(rebuilt.len(), samples.len() - kept.len());
    for (h, value) in rebuilt {
        let truth = samples.iter().find(|s| s.time == h.time).unwrap().value;
        let value = value.unwrap();
        assert!(
            (value - truth).abs() <= g.tolerance.unwrap() + 1e-9,
            "{h:?}"
        );
    }

    // A reading of another device does not belong in this batch.
    let mut other = reading(0);
    other.provenance.device = DeviceId("someone-else".into());
    assert!(b.push_reading(&other, false).is_err());
}

#[test]
fn batch_ids_are_uuid_v4_and_print_and_parse_back() {
    let id = BatchId::random();
    let text = id.to_string();
    assert_eq!(text.len(), 36);
    assert_eq!(&text[14..15], "4");
    assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"));
    assert_eq!(BatchId::parse(&text).unwrap(), id);
    assert_eq!(BatchId::parse(&text.to_uppercase()).unwrap(), id);
    assert_ne!(BatchId::random(), id);
    for bad in [
        "",
        "0f8fad5b-d9cb-469f-a165-70867728950",
        "0f8fad5bxd9cb-469f-a165-70867728950e",
        "zf8fad5b-d9cb-469f-a165-70867728950e",
    ] {
        assert!(BatchId::parse(bad).is_err(), "{bad}");
    }
}

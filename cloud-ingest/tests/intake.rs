//! Intake end to end over loopback HTTP: batches (JSON and binary+deflate),
//! idempotency, partial accept, bodies that must leave the database as it
//! was, live alerts over SSE, acknowledgement, the dead-man's switch, and
//! metrics that agree with the core's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::Fixture;
use serde_json::Value;
use vigil_ingest::Limits;
use vigil_ingest::storage::ReadingQuery;
use vigil_model::alerts::{AlertKind, Phase};
use vigil_model::metrics::consensus_metrics;
use vigil_model::reading::{DeviceId, PatientId, Quality, Sample, Stream};
use vigil_model::wire::{
    self, Alert, Batch, BatchAck, BatchId, ContentEncoding, Format, HeldBack, StreamReadings,
    WireReading,
};

fn now_us() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn batch(fx: &Fixture, sent_at: DateTime<Utc>, readings: &[(u64, DateTime<Utc>, f64)]) -> Batch {
    let mut b = Batch::new(
        BatchId::random(),
        PatientId(fx.own.to_string()),
        DeviceId("cgm-1".into()),
        sent_at,
    );
    let mut g = StreamReadings::new(Stream::Glucose, Some(4), 0x2AA7);
    for &(seq, time, value) in readings {
        g.readings.push(WireReading {
            seq,
            time,
            value,
            quality: Quality::default(),
            raw: None,
        });
    }
    b.streams.push(g);
    b
}

async fn post(
    url: &str,
    token: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = tokio::time::timeout(Duration::from_secs(10), req.send())
        .await
        .unwrap()
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post_json_batch(base: &str, token: &str, b: &Batch) -> (u16, Value) {
    post(
        &format!("{base}/v1/batches"),
        token,
        "application/json",
        None,
        wire::json::to_vec(b).unwrap(),
    )
    .await
}

fn stored(fx: &Fixture) -> Vec<(u64, f64)> {
    fx.store
        .blocking()
        .readings(&ReadingQuery {
            patient: fx.own,
            stream: None,
            from: DateTime::<Utc>::MIN_UTC,
            to: DateTime::<Utc>::MAX_UTC,
            limit: 100_000,
        })
        .unwrap()
        .iter()
        .map(|r| (r.seq, r.value))
        .collect()
}

fn ranges(ack: &Value) -> Vec<(u64, u64)> {
    ack["streams"][0]["stored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["first"].as_u64().unwrap(), r["last"].as_u64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_binary_deflate_batches_are_stored_and_acknowledged() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let t0 = now_us() - TimeDelta::hours(1);
    let at = |i: i64| t0 + TimeDelta::minutes(5 * i);
    let b = batch(
        &fx,
        now_us(),
        &[(1, at(0), 100.0), (2, at(1), 101.5), (3, at(2), 99.0)],
    );
    let (status, ack) = post_json_batch(&base, &fx.device, &b).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ranges(&ack), [(1, 3)]);
    assert_eq!(ack["duplicate"], false);
    let ack: BatchAck = serde_json::from_value(ack).unwrap();
    assert!(ack.settles(Stream::Glucose, Some(4), 2));

    let b2 = batch(&fx, now_us(), &[(4, at(3), 120.25), (5, at(4), 130.0)]);
    let body = wire::encode_batch(&b2, Format::Binary, ContentEncoding::Deflate).unwrap();
    let (status, ack) = post(
        &format!("{base}/v1/batches"),
        &fx.device,
        wire::BINARY_CONTENT_TYPE,
        Some("deflate"),
        body,
    )
    .await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ranges(&ack), [(4, 5)]);
    assert_eq!(
        stored(&fx),
        [(1, 100.0), (2, 101.5), (3, 99.0), (4, 120.25), (5, 130.0)]
    );

    // Read back over HTTP as the assigned clinician.
    let url = format!(
        "{base}/v1/patients/{}/readings?stream=glucose&from={}",
        fx.own,
        (t0 - TimeDelta::minutes(1)).to_rfc3339()
    );
    let got: Value = reqwest::Client::new()
        .get(url.replace('+', "%2B"))
        .bearer_auth(&fx.clinician)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let values: Vec<f64> = got["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [100.0, 101.5, 99.0, 120.25, 130.0]);
}

/// Posts a binary batch with `Prefer: return=minimal`; returns the status,
/// the answer's content type and its body.
async fn post_preferring_minimal(base: &str, token: &str, b: &Batch) -> (u16, String, Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/batches"))
        .bearer_auth(token)
        .header("content-type", wire::BINARY_CONTENT_TYPE)
        .header("prefer", wire::PREFER_MINIMAL)
        .body(wire::encode_batch(b, Format::Binary, ContentEncoding::Identity).unwrap())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_prefers_minimal_gets_204_only_when_every_reading_is_stored() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let t0 = now_us() - TimeDelta::hours(1);
    let at = |i: i64| t0 + TimeDelta::minutes(5 * i);
    let mut b = batch(&fx, now_us(), &[(1, at(0), 100.0), (3, at(2), 104.0)]);
    b.streams[0].tolerance = Some(3.0);
    b.streams[0].held_back.push(HeldBack {
        seq: 2,
        time: at(1),
    });
    let (status, ct, body) = post_preferring_minimal(&base, &fx.device, &b).await;
    assert_eq!((status, ct.as_str(), body.len()), (204, "", 0));
    let ack = BatchAck::stored_whole(&b);
    for seq in 1..=3 {
        assert!(ack.settles(Stream::Glucose, Some(4), seq));
    }
    assert_eq!(stored(&fx).len(), 3);
    // A retry of the same batch: the same answer, stored once.
    let (status, _, again) = post_preferring_minimal(&base, &fx.device, &b).await;
    assert_eq!((status, again.len()), (204, 0));
    assert_eq!(stored(&fx).len(), 3);

    // A refused reading: the JSON ack, so the phone learns why.
    let ahead = now_us() + TimeDelta::days(3);
    let bad = batch(&fx, now_us(), &[(4, at(3), 100.0), (5, ahead, 100.0)]);
    let (status, ct, body) = post_preferring_minimal(&base, &fx.device, &bad).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/json"), "{ct}");
    let ack: BatchAck = serde_json::from_slice(&body).unwrap();
    assert_eq!(ack.streams[0].rejected.len(), 1);

    // A client that does not ask keeps today's JSON ack.
    let plain = batch(&fx, now_us(), &[(6, at(5), 100.0)]);
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/batches"))
        .bearer_auth(&fx.device)
        .header("content-type", wire::BINARY_CONTENT_TYPE)
        .body(wire::encode_batch(&plain, Format::Binary, ContentEncoding::Identity).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ack: BatchAck = resp.json().await.unwrap();
    assert!(ack.settles(Stream::Glucose, Some(4), 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_back_readings_before_a_batch_s_first_kept_one_lean_on_the_stored_one_before_each() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let t0 = now_us() - TimeDelta::hours(2);
    let at = |i: i64| t0 + TimeDelta::minutes(5 * i);
    let first = batch(&fx, now_us(), &[(1, at(0), 100.0), (5, at(4), 120.0)]);
    assert_eq!(post_json_batch(&base, &fx.device, &first).await.0, 200);
    // The next batch's first kept reading is at(8); seqs 6 and 7 lie after
    // the stored at(4), seq 2 before it (its earlier neighbour is at(0)).
    let mut next = batch(&fx, now_us(), &[(9, at(8), 140.0)]);
    next.streams[0].tolerance = Some(3.0);
    for (seq, i) in [(6, 5), (7, 6), (2, 1)] {
        next.streams[0]
            .held_back
            .push(HeldBack { seq, time: at(i) });
    }
    let (status, ack) = post_json_batch(&base, &fx.device, &next).await;
    assert_eq!(status, 200, "{ack}");
    let mut got = stored(&fx);
    got.sort_by_key(|r| r.0);
    assert_eq!(
        got,
        [
            (1, 100.0),
            (2, 105.0),
            (5, 120.0),
            (6, 125.0),
            (7, 130.0),
            (9, 140.0)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_heartbeat_records_contact_and_keeps_the_health_report() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let hb = serde_json::json!({
        "v": 1, "patient": fx.own.to_string(), "sent_at": now_us(),
        "sdk_version": "0.1.0", "app_state": "background",
        "buffer": {"unsent_readings": 3, "pending_alerts": 0, "used_bytes": 10,
                   "budget_bytes": 1000, "pressure": "normal"},
        "devices": []
    });
    let (s, _) = post(
        &format!("{base}/v1/heartbeats"),
        &fx.device,
        "application/json",
        None,
        serde_json::to_vec(&hb).unwrap(),
    )
    .await;
    assert_eq!(s, 204);
    let store = fx.store.blocking();
    let first = store.contacts().unwrap()[0].last_contact;
    let report = store.latest_heartbeat(fx.own).unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/heartbeats"))
        .bearer_auth(&fx.device)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert!(store.contacts().unwrap()[0].last_contact > first);
    assert_eq!(store.latest_heartbeat(fx.own).unwrap().unwrap(), report);
    // Any other token is refused as before.
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/heartbeats"))
        .bearer_auth(&fx.clinician)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_or_reading_sent_again_is_stored_once_and_acknowledged_again() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let t0 = now_us() - TimeDelta::hours(1);
    let at = |i: i64| t0 + TimeDelta::minutes(5 * i);
    let b = batch(&fx, now_us(), &[(1, at(0), 100.0), (2, at(1), 101.0)]);
    let (_, first) = post_json_batch(&base, &fx.device, &b).await;
    let (status, again) = post_json_batch(&base, &fx.device, &b).await;
    assert_eq!(status, 200);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["streams"], first["streams"]);
    // A new batch overlapping the first: 2 again, 3 new.
    let overlap = batch(&fx, now_us(), &[(2, at(1), 101.0), (3, at(2), 102.0)]);
    let (_, ack) = post_json_batch(&base, &fx.device, &overlap).await;
    assert_eq!(ack["duplicate"], false);
    assert_eq!(ranges(&ack), [(2, 3)]);
    assert_eq!(stored(&fx), [(1, 100.0), (2, 101.0), (3, 102.0)]);
}

/// Issue 13: the same minutes posted again under new sequence numbers are
/// refused (a sensor session measures once per instant), so a device
/// cannot grow a day's stored readings, and the summaries recomputed over
/// them, batch after batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glucose_at_an_instant_already_held_under_another_sequence_is_a_conflict() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let t0 = now_us() - TimeDelta::hours(1);
    let at = |i: i64| t0 + TimeDelta::minutes(5 * i);
    let first = batch(&fx, now_us(), &[(1, at(0), 100.0), (2, at(1), 101.0)]);
    post_json_batch(&base, &fx.device, &first).await;
    // 11 and 12 repeat stored instants; 13 and 14 share a new one within
    // the batch (the first of them stands); 15 is new.
    let replay = batch(
        &fx,
        now_us(),
        &[
            (11, at(0), 100.0),
            (12, at(1), 140.0),
            (13, at(2), 102.0),
            (14, at(2), 102.0),
            (15, at(3), 103.0),
        ],
    );
    let (status, ack) = post_json_batch(&base, &fx.device, &replay).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ranges(&ack), [(13, 13), (15, 15)]);
    let refused: Vec<(u64, &str)> = ack["streams"][0]["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["seq"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        refused,
        [(11, "conflict"), (12, "conflict"), (14, "conflict")]
    );
    assert_eq!(
        stored(&fx),
        [(1, 100.0), (2, 101.0), (13, 102.0), (15, 103.0)]
    );
    // The same reading under its own sequence is still just stored again.
    let (_, again) = post_json_batch(&base, &fx.device, &first).await;
    assert_eq!(ranges(&again), [(1, 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_readings_are_listed_and_valid_ones_of_the_same_batch_stored() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let now = now_us();
    let b = batch(
        &fx,
        now,
        &[
            (1, now - TimeDelta::minutes(10), 100.0),
            (2, now - TimeDelta::minutes(5), 5000.0),
            (3, now + TimeDelta::days(1), 100.0),
            (4, now - TimeDelta::days(1000), 100.0),
        ],
    );
    let (status, ack) = post_json_batch(&base, &fx.device, &b).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ranges(&ack), [(1, 1)]);
    let rejected: Vec<(u64, String)> = ack["streams"][0]["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (2, "impossible_value".to_owned()),
            (3, "future_time".to_owned()),
            (4, "too_old".to_owned())
        ]
    );
    assert_eq!(stored(&fx), [(1, 100.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_clock_ahead_is_corrected_from_sent_at() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let ahead = TimeDelta::hours(2);
    let phone_now = now_us() + ahead;
    // On the phone's clock the reading is a minute old; uncorrected it
    // would be two hours in the future.
    let b = batch(
        &fx,
        phone_now,
        &[(1, phone_now - TimeDelta::minutes(1), 110.0)],
    );
    let (status, ack) = post_json_batch(&base, &fx.device, &b).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ranges(&ack), [(1, 1)]);
    let r = &fx
        .store
        .blocking()
        .readings(&ReadingQuery {
            patient: fx.own,
            stream: None,
            from: DateTime::<Utc>::MIN_UTC,
            to: DateTime::<Utc>::MAX_UTC,
            limit: 10,
        })
        .unwrap()[0];
    let expected = Utc::now() - TimeDelta::minutes(1);
    assert!(
        (r.time - expected).abs() < TimeDelta::seconds(30),
        "{}",
        r.time
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_named_4xx_and_leave_the_database_untouched() {
    let fx = Fixture::new();
    let limits = Limits {
        max_body_bytes: 64 * 1024,
        ..Limits::default()
    };
    let base = common::serve_loopback(fx.state(limits)).await;
    let url = format!("{base}/v1/batches");
    let now = now_us();
    let good = batch(&fx, now, &[(1, now - TimeDelta::minutes(1), 100.0)]);
    let json = wire::json::to_vec(&good).unwrap();
    let audit_before = fx.store.blocking().audit_entries(0, 10_000).unwrap().len();

    // Truncated JSON.
    let (s, e) = post(
        &url,
        &fx.device,
        "application/json",
        None,
        json[..json.len() / 2].to_vec(),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("malformed")), "{e}");
    // An unknown stream.
    let text = String::from_utf8(json.clone())
        .unwrap()
        .replace("\"glucose\"", "\"glucosee\"");
    let (s, e) = post(
        &url,
        &fx.device,
        "application/json",
        None,
        text.into_bytes(),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["detail"].as_str().unwrap().contains("stream"), "{e}");
    // A corrupt binary body.
    let mut bin = wire::binary::encode(&good).unwrap();
    bin.truncate(bin.len() - 3);
    let (s, _) = post(&url, &fx.device, wire::BINARY_CONTENT_TYPE, None, bin).await;
    assert_eq!(s, 400);
    // A binary body whose version varint says 70,000: malformed (400), not
    // too large; a 413 would make the SDK halve a batch that no size cures.
    let mut huge_version = wire::binary::encode(&good).unwrap();
    huge_version.splice(3..4, [0xF0, 0xA2, 0x04]);
    let (s, e) = post(
        &url,
        &fx.device,
        wire::BINARY_CONTENT_TYPE,
        None,
        huge_version,
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("malformed")), "{e}");
    // Unknown content type and coding.
    let (s, _) = post(&url, &fx.device, "text/plain", None, json.clone()).await;
    assert_eq!(s, 415);
    let (s, _) = post(
        &url,
        &fx.device,
        "application/json",
        Some("br"),
        json.clone(),
    )
    .await;
    assert_eq!(s, 415);
    // A zip bomb: small on the wire, far over the limit inflated.
    let bomb = wire::compress::compress(&vec![b' '; 8 << 20], ContentEncoding::Gzip).unwrap();
    assert!(bomb.len() < 64 * 1024);
    let (s, e) = post(&url, &fx.device, "application/json", Some("gzip"), bomb).await;
    assert_eq!(s, 413, "{e}");
    // Another patient's batch with this device's token, and a follower.
    let mut foreign = good.clone();
    foreign.patient = PatientId(fx.foreign.to_string());
    let (s, _) = post_json_batch(&base, &fx.device, &foreign).await;
    assert_eq!(s, 403);
    let (s, _) = post_json_batch(&base, &fx.follower, &good).await;
    assert_eq!(s, 403);

    assert!(stored(&fx).is_empty());
    assert_eq!(
        fx.store.blocking().audit_entries(0, 10_000).unwrap().len(),
        audit_before,
        "a refused request writes nothing, not even an audit entry"
    );
    // And the same batch, well formed, still goes in.
    let (s, _) = post_json_batch(&base, &fx.device, &good).await;
    assert_eq!(s, 200);
    assert_eq!(stored(&fx).len(), 1);
}

fn alert(fx: &Fixture, id: &str, phase: Phase) -> Alert {
    Alert {
        v: 1,
        patient: PatientId(fx.own.to_string()),
        device: Some(DeviceId("cgm-1".into())),
        sent_at: now_us(),
        id: id.into(),
        kind: AlertKind::UrgentLow,
        phase,
        time: now_us(),
        glucose_mg_dl: Some(50.0),
        rate_mg_dl_per_min: None,
        battery_pct: None,
        session_expires_at: None,
    }
}

/// Reads SSE chunks until one contains `needle`, within `within`.
async fn expect_event(resp: &mut reqwest::Response, needle: &str, within: Duration) -> String {
    let mut seen = String::new();
    tokio::time::timeout(within, async {
        while !seen.contains(needle) {
            let chunk = resp.chunk().await.unwrap().expect("stream ended");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{needle}` within {within:?}; saw {seen:?}"));
    seen
}

async fn open_stream(base: &str, token: &str) -> reqwest::Response {
    let resp = reqwest::Client::new()
        .get(format!("{base}/v1/alerts/stream"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_sent_preferring_minimal_is_stored_and_answered_204() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let a = alert(&fx, "0123456789abcdef", Phase::Start);
    let send = |prefer: Option<&'static str>| {
        let mut req = reqwest::Client::new()
            .post(format!("{base}/v1/alerts"))
            .bearer_auth(&fx.device)
            .header("content-type", "application/json");
        if let Some(p) = prefer {
            req = req.header("prefer", p);
        }
        req.body(wire::json::to_vec(&a).unwrap()).send()
    };
    let first = send(Some("respond-async, return=minimal")).await.unwrap();
    assert_eq!(first.status(), 204);
    assert!(first.headers().get("content-type").is_none());
    assert!(first.bytes().await.unwrap().is_empty());
    // Stored: the same event without the preference is a duplicate.
    let again = send(None).await.unwrap();
    assert_eq!(again.status(), 200);
    let ack: serde_json::Value = again.json().await.unwrap();
    assert_eq!(ack["duplicate"], true);
    // Another preference is not the minimal one.
    let other = send(Some("return=representation")).await.unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_the_clinicians_stream_and_the_ack_is_broadcast() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let mut clinician = open_stream(&base, &fx.clinician).await;
    let mut follower = open_stream(&base, &fx.follower).await;
    let a = alert(&fx, "00aa11bb22cc33dd", Phase::Start);
    let started = std::time::Instant::now();
    let (s, ack) = post(
        &format!("{base}/v1/alerts"),
        &fx.device,
        "application/json",
        None,
        wire::json::to_vec(&a).unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{ack}");
    assert_eq!(ack["duplicate"], false);
    let seen = expect_event(&mut clinician, "00aa11bb22cc33dd", Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(seen.contains("event: alert"), "{seen}");
    assert!(seen.contains("urgent_low"), "{seen}");
    expect_event(&mut follower, "00aa11bb22cc33dd", Duration::from_secs(5)).await;
    // A retry is acknowledged as a duplicate.
    let (_, again) = post(
        &format!("{base}/v1/alerts"),
        &fx.device,
        "application/json",
        None,
        wire::json::to_vec(&a).unwrap(),
    )
    .await;
    assert_eq!(again["duplicate"], true);

    // The foreign clinician may not acknowledge, and learns only what an
    // unknown alert id would tell; the assigned one may.
    let ack_url = format!("{base}/v1/alerts/00aa11bb22cc33dd/ack");
    let foreign = reqwest::Client::new()
        .post(&ack_url)
        .bearer_auth(&fx.foreign_clinician)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
    let foreign: serde_json::Value = foreign.json().await.unwrap();
    let unknown: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/v1/alerts/ffffffffffffffff/ack"))
        .bearer_auth(&fx.foreign_clinician)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(foreign, unknown);
    let resp = reqwest::Client::new()
        .post(&ack_url)
        .bearer_auth(&fx.clinician)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["new"], true);
    let seen = expect_event(&mut follower, "event: ack", Duration::from_secs(5)).await;
    assert!(seen.contains("00aa11bb22cc33dd"));
    let stored = fx
        .store
        .blocking()
        .alert_acks(fx.own, "00aa11bb22cc33dd")
        .unwrap();
    assert_eq!(stored.len(), 1);
    let s = reqwest::Client::new()
        .post(format!("{base}/v1/alerts/ffffffffffffffff/ack"))
        .bearer_auth(&fx.clinician)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_mans_switch_raises_app_silent_and_ends_it_on_contact() {
    let fx = Fixture::new();
    let state = fx.state(Limits::default());
    let base = common::serve_loopback(state.clone()).await;
    let hb = serde_json::json!({
        "v": 1, "patient": fx.own.to_string(), "sent_at": now_us(),
        "sdk_version": "0.1.0", "app_state": "background",
        "buffer": {"unsent_readings": 3, "pending_alerts": 0, "used_bytes": 10,
                   "budget_bytes": 1000, "pressure": "normal"},
        "devices": []
    });
    let hb_body = serde_json::to_vec(&hb).unwrap();
    let (s, _) = post(
        &format!("{base}/v1/heartbeats"),
        &fx.device,
        "application/json",
        None,
        hb_body.clone(),
    )
    .await;
    assert_eq!(s, 204);
    let store = fx.store.blocking();
    let after = TimeDelta::minutes(30);
    let now = Utc::now();
    use vigil_ingest::deadman::check;
    assert!(
        check(store, now + TimeDelta::minutes(29), after)
            .unwrap()
            .is_empty()
    );
    let events = check(store, now + TimeDelta::minutes(31), after).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind.as_str(), events[0].phase.as_str()),
        ("app_silent", "start")
    );
    assert_eq!(events[0].patient, fx.own);
    assert!(
        check(store, now + TimeDelta::minutes(40), after)
            .unwrap()
            .is_empty(),
        "raised once"
    );
    let alerts = store
        .alerts_for(&[fx.own], DateTime::<Utc>::MIN_UTC, 100)
        .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert.kind, "app_silent");
    // Contact resumes: the episode ends with the same id.
    let (s, _) = post(
        &format!("{base}/v1/heartbeats"),
        &fx.device,
        "application/json",
        None,
        hb_body,
    )
    .await;
    assert_eq!(s, 204);
    let events2 = check(store, now + TimeDelta::minutes(41), after).unwrap();
    assert_eq!(events2.len(), 1);
    assert_eq!(events2[0].phase, "end");
    assert_eq!(events2[0].alert_id, events[0].alert_id);
    assert!(store.contacts().unwrap()[0].silence.is_none());

    // The spawned switch on the real clock publishes to the live stream.
    let mut stream = open_stream(&base, &fx.clinician).await;
    vigil_ingest::deadman::spawn(
        state,
        vigil_ingest::deadman::DeadManConfig {
            check_every: Duration::from_millis(100),
            silent_after: TimeDelta::seconds(1),
        },
    );
    let seen = expect_event(&mut stream, "app_silent", Duration::from_secs(10)).await;
    assert!(seen.contains("\"start\""), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_agree_with_the_core_over_the_same_readings_held_back_included() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let t0 = now_us() - TimeDelta::hours(10);
    let mut b = batch(&fx, now_us(), &[]);
    let mut samples = Vec::new();
    for i in 0..100u64 {
        let time = t0 + TimeDelta::minutes(5 * i as i64);
        // A zig-zag through low, in range and high.
        let value = 40.0 + ((i * 37) % 230) as f64;
        if i % 3 == 1 {
            b.streams[0].held_back.push(HeldBack { seq: i, time });
        } else {
            b.streams[0].readings.push(WireReading {
                seq: i,
                time,
                value,
                quality: Quality::default(),
                raw: None,
            });
        }
    }
    b.streams[0].tolerance = Some(200.0);
    for (h, v) in b.streams[0].reconstruct_held_back() {
        samples.push(Sample {
            time: h.time,
            value: v.unwrap(),
        });
    }
    for r in &b.streams[0].readings {
        samples.push(Sample {
            time: r.time,
            value: r.value,
        });
    }
    let (s, ack) = post_json_batch(&base, &fx.device, &b).await;
    assert_eq!(s, 200, "{ack}");
    assert_eq!(ranges(&ack), [(0, 99)]);
    let expected = consensus_metrics(&samples, TimeDelta::minutes(5)).unwrap();
    let url = format!(
        "{base}/v1/patients/{}/metrics?from={}&to={}",
        fx.own,
        (t0 - TimeDelta::minutes(1)).format("%Y-%m-%dT%H:%M:%SZ"),
        (now_us() + TimeDelta::minutes(1)).format("%Y-%m-%dT%H:%M:%SZ"),
    );
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(&fx.follower)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got: vigil_model::metrics::GlucoseMetrics = resp.json().await.unwrap();
    assert_eq!(got, expected);
    assert_eq!(got.readings, 100);
    // A foreign clinician may not read them.
    let s = reqwest::Client::new()
        .get(format!("{base}/v1/patients/{}/metrics", fx.own))
        .bearer_auth(&fx.foreign_clinician)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_alerts_and_new_batches_reach_webhooks_once_signed() {
    use std::sync::{Arc, Mutex};
    use vigil_ingest::webhooks::dispatch::{Dispatcher, RetryPolicy};
    let fx = Fixture::new();
    // A receiver that records every delivery.
    type Delivery = (String, String, Vec<u8>);
    let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let record = Arc::clone(&seen);
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let record = Arc::clone(&record);
                async move {
                    let h = |n: &str| headers[n].to_str().unwrap().to_owned();
                    let sig = format!("{}|{}", h("vigil-timestamp"), h("vigil-signature"));
                    record
                        .lock()
                        .unwrap()
                        .push((h("vigil-event"), sig, body.to_vec()));
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let secret =
        vigil_ingest::admin::add_webhook(fx.store.blocking(), &hook, "alert,data").unwrap();

    let state = fx.state(Limits::default());
    let worker = Dispatcher::new(
        state.store.clone(),
        RetryPolicy {
            poll: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        Arc::clone(&state.webhook_wake),
    )
    .unwrap();
    tokio::spawn(worker.run(std::future::pending()));
    let base = common::serve_loopback(state).await;

    let a = alert(&fx, "0123456789abcdef", Phase::Start);
    for _ in 0..2 {
        // The retry is a duplicate: no second delivery.
        let (s, _) = post(
            &format!("{base}/v1/alerts"),
            &fx.device,
            "application/json",
            None,
            wire::json::to_vec(&a).unwrap(),
        )
        .await;
        assert_eq!(s, 200);
    }
    let t = now_us() - TimeDelta::minutes(10);
    let b = batch(
        &fx,
        now_us(),
        &[(1, t, 100.0), (2, t + TimeDelta::minutes(5), 104.0)],
    );
    for _ in 0..2 {
        let (s, _) = post_json_batch(&base, &fx.device, &b).await;
        assert_eq!(s, 200);
    }

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "webhooks not delivered within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = seen.lock().unwrap().clone();
    let kinds: Vec<&str> = seen.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["alert", "data"],
        "one delivery per new event, none for duplicates"
    );
    for (_, sig, body) in &seen {
        let (ts, sig) = sig.split_once('|').unwrap();
        let ts: i64 = ts.parse().unwrap();
        assert!(vigil_ingest::webhooks::verify(
            &secret,
            ts,
            body,
            sig,
            Utc::now().timestamp(),
            60
        ));
    }
    let alert_body: Value = serde_json::from_slice(&seen[0].2).unwrap();
    assert_eq!(alert_body["alert_id"], "0123456789abcdef");
    let data_body: Value = serde_json::from_slice(&seen[1].2).unwrap();
    assert_eq!(data_body["patient"], fx.own);
    assert_eq!(data_body["streams"], serde_json::json!(["glucose"]));
    assert!(
        data_body.get("value").is_none() && !String::from_utf8_lossy(&seen[1].2).contains("104")
    );
}

/// GETs the patient's readings of `stream` from `from` as the clinician;
/// `(value, stream)` of each.
async fn read_stream(
    base: &str,
    fx: &Fixture,
    stream: &str,
    from: DateTime<Utc>,
    resolved: bool,
) -> Vec<(f64, String)> {
    let url = format!(
        "{base}/v1/patients/{}/readings?stream={stream}&resolved={resolved}&from={}",
        fx.own,
        from.to_rfc3339()
    );
    let got: Value = reqwest::Client::new()
        .get(url.replace('+', "%2B"))
        .bearer_auth(&fx.clinician)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    got["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["value"].as_f64().unwrap(),
                r["stream"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_sdk_s_trend_is_still_stored_and_readers_see_the_trend_derived_from_glucose() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let t0 = now_us() - TimeDelta::hours(1);
    let at = |i: i64| t0 + TimeDelta::minutes(5 * i);
    // Rising 2 mg/dL/min, while the sensor (an SDK before issue 14 sends
    // its rate) said 0.5.
    let glucose: Vec<(u64, DateTime<Utc>, f64)> = (0..5)
        .map(|i| (i as u64 + 1, at(i), 100.0 + 10.0 * i as f64))
        .collect();
    let mut b = batch(&fx, now_us(), &glucose);
    let mut trend = StreamReadings::new(Stream::GlucoseTrend, Some(4), 0x2AA7);
    for &(seq, time, _) in &glucose {
        trend.readings.push(WireReading {
            seq,
            time,
            value: 0.5,
            quality: Quality::default(),
            raw: None,
        });
    }
    b.streams.push(trend);
    let (status, ack) = post_json_batch(&base, &fx.device, &b).await;
    assert_eq!(status, 200, "{ack}");
    let ack: BatchAck = serde_json::from_value(ack).unwrap();
    assert!(
        ack.settles(Stream::GlucoseTrend, Some(4), 5),
        "old clients' trend refused"
    );
    assert!(ack.settles(Stream::Glucose, Some(4), 5));

    let from = t0 - TimeDelta::minutes(1);
    // Resolved (the default view): derived, from the third reading on.
    let derived = read_stream(&base, &fx, "glucose_trend", from, true).await;
    assert_eq!(derived.len(), 3, "{derived:?}");
    for (value, stream) in &derived {
        assert_eq!(stream, "glucose_trend");
        assert!((value - 2.0).abs() < 1e-9, "{derived:?}");
    }
    // The originals as the old SDK sent them.
    let stored = read_stream(&base, &fx, "glucose_trend", from, false).await;
    assert_eq!(stored.len(), 5);
    assert!(stored.iter().all(|(v, _)| *v == 0.5));
    // All streams, resolved: the readings, glucose only (the trend is
    // asked for by name; the sensor's originals are not the trend shown).
    let all = read_stream(&base, &fx, "", from, true).await;
    assert_eq!(all.len(), 5, "{all:?}");
    assert!(all.iter().all(|(_, s)| s == "glucose"));
}

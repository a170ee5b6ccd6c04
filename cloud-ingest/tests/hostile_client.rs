//! The service tried as a hostile client would, over loopback: bodies that
//! decode to far more work than their size, times at chrono's range edges
//! on every route that takes one, batch ids reused across tenants, times
//! and values no sensor produces on every intake path, invented HTTP
//! methods, and refusals that must neither leave the documented
//! `{error, detail}` shape nor quote what was sent. Each test is bounded in
//! time by its client's timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::Fixture;
use serde_json::Value;
use vigil_ingest::Limits;
use vigil_ingest::storage::ReadingQuery;
use vigil_model::alerts::{AlertKind, Phase};
use vigil_model::reading::{DeviceId, PatientId, Quality, Stream};
use vigil_model::wire::{
    self, Alert, Batch, BatchId, ContentEncoding, Format, StreamReadings, WireReading,
};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn now_us() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

/// A batch of `n` glucose readings of one value a minute apart, ending
/// now: its binary form is a few dozen bytes whatever `n` is.
fn flat_batch(patient: i64, id: BatchId, sent_at: DateTime<Utc>, n: usize) -> Batch {
    let mut b = Batch::new(
        id,
        PatientId(patient.to_string()),
        DeviceId("cgm-1".into()),
        sent_at,
    );
    let mut g = StreamReadings::new(Stream::Glucose, Some(1), 0x2AA7);
    let t0 = now_us() - TimeDelta::minutes(n as i64);
    for i in 0..n {
        g.readings.push(WireReading {
            seq: i as u64 + 1,
            time: t0 + TimeDelta::minutes(i as i64),
            value: 100.0,
            quality: Quality::default(),
            raw: None,
        });
    }
    b.streams.push(g);
    b
}

fn stored_count(fx: &Fixture, patient: i64) -> usize {
    fx.store
        .blocking()
        .readings(&ReadingQuery {
            patient,
            stream: None,
            from: DateTime::<Utc>::MIN_UTC,
            to: DateTime::<Utc>::MAX_UTC,
            limit: 1_000_000,
        })
        .unwrap()
        .len()
}

async fn send(req: reqwest::RequestBuilder) -> (u16, String) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn post_binary(base: &str, token: &str, b: &Batch) -> (u16, String) {
    let body = wire::encode_batch(b, Format::Binary, ContentEncoding::Identity).unwrap();
    send(
        client()
            .post(format!("{base}/v1/batches"))
            .bearer_auth(token)
            .header("content-type", wire::BINARY_CONTENT_TYPE)
            .body(body),
    )
    .await
}

/// The documented error shape: a JSON object with `error` and `detail`.
fn assert_documented(status: u16, body: &str, what: &str) -> Value {
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|_| panic!("{what}: {status} is not JSON: {body:?}"));
    assert!(
        v["error"].is_string() && v["detail"].is_string(),
        "{what}: {status} {body}"
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_binary_batch_claiming_many_readings_is_refused_with_413_and_stores_nothing() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let b = flat_batch(fx.own, BatchId::random(), now_us(), 200_000);
    let body = wire::encode_batch(&b, Format::Binary, ContentEncoding::Identity).unwrap();
    assert!(
        body.len() < 200,
        "the attack is small: {} bytes",
        body.len()
    );
    let (status, text) = post_binary(&base, &fx.device, &b).await;
    assert_eq!(status, 413, "{text}");
    let v = assert_documented(status, &text, "amplified batch");
    assert_eq!(v["error"], "too_large");
    assert!(v["detail"].as_str().unwrap().contains("readings"), "{v}");
    assert_eq!(stored_count(&fx, fx.own), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_sized_flat_binary_batch_is_still_accepted() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    // The SDK's default batch: 5,000 readings of one stream.
    let b = flat_batch(fx.own, BatchId::random(), now_us(), 5_000);
    let (status, text) = post_binary(&base, &fx.device, &b).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(stored_count(&fx, fx.own), 5_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_batch_over_the_reading_limit_is_refused_with_413() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits {
        max_readings_per_batch: 100,
        ..Limits::default()
    }))
    .await;
    let b = flat_batch(fx.own, BatchId::random(), now_us(), 101);
    let (status, text) = send(
        client()
            .post(format!("{base}/v1/batches"))
            .bearer_auth(&fx.device)
            .header("content-type", "application/json")
            .body(wire::json::to_vec(&b).unwrap()),
    )
    .await;
    assert_eq!(status, 413, "{text}");
    assert_documented(status, &text, "JSON batch over the limit");
    assert_eq!(stored_count(&fx, fx.own), 0);
}

/// Signs `token` in to the dashboard; returns the session cookie.
async fn dashboard_session(base: &str, token: &str) -> String {
    let c = client();
    let form = c
        .get(format!("{base}/dashboard/login"))
        .send()
        .await
        .unwrap();
    let csrf = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            let v = v.to_str().unwrap();
            v.strip_prefix("vigil_login_csrf=")
                .map(|r| r.split(';').next().unwrap().to_owned())
        })
        .unwrap();
    let r = c
        .post(format!("{base}/dashboard/login"))
        .header("cookie", format!("vigil_login_csrf={csrf}"))
        .form(&[("token", token), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            let v = v.to_str().unwrap();
            v.starts_with("vigil_session=")
                .then(|| v.split(';').next().unwrap().to_owned())
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_times_on_every_route_that_takes_one_get_a_json_4xx_not_a_panic() {
    let fx = Fixture::new();
    vigil_ingest::admin::set_nightscout_secret(fx.store.blocking(), fx.own, "a long enough secret")
        .unwrap();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let min = DateTime::<Utc>::MIN_UTC;
    // Whole seconds: the wire carries microseconds.
    let max = DateTime::from_timestamp(DateTime::<Utc>::MAX_UTC.timestamp(), 0).unwrap();
    let enc = |t: DateTime<Utc>| t.to_rfc3339().replace('+', "%2B");
    let (min_s, max_s) = (enc(min), enc(max));
    let p = fx.own;
    let c = client();
    let cookie = dashboard_session(&base, &fx.clinician).await;
    let ns = |r: reqwest::RequestBuilder| r.header("api-secret", "a long enough secret");
    let max_ms = max.timestamp_millis();
    let min_ms = min.timestamp_millis();
    let mut requests: Vec<(String, reqwest::RequestBuilder)> = Vec::new();
    for q in [
        format!("to={min_s}"),
        format!("from={min_s}&to={max_s}"),
        format!("to={max_s}"),
    ] {
        requests.push((
            format!("readings {q}"),
            c.get(format!("{base}/v1/patients/{p}/readings?{q}"))
                .bearer_auth(&fx.clinician),
        ));
        requests.push((
            format!("metrics {q}"),
            c.get(format!("{base}/v1/patients/{p}/metrics?{q}"))
                .bearer_auth(&fx.clinician),
        ));
        requests.push((
            format!("dashboard {q}"),
            c.get(format!("{base}/dashboard/patients/{p}?{q}"))
                .header("cookie", &cookie),
        ));
        requests.push((
            format!("csv export {q}"),
            c.get(format!("{base}/v1/patients/{p}/readings.csv?{q}"))
                .bearer_auth(&fx.clinician),
        ));
        // The same before the patient check: another patient's id.
        requests.push((
            format!("foreign readings {q}"),
            c.get(format!("{base}/v1/patients/{}/readings?{q}", fx.foreign))
                .bearer_auth(&fx.clinician),
        ));
    }
    for q in [
        format!("find[date][$lte]={max_ms}"),
        format!("find[date][$lte]={min_ms}"),
        format!("find[date][$gte]={min_ms}&find[date][$lte]={max_ms}"),
    ] {
        requests.push((
            format!("nightscout entries {q}"),
            ns(c.get(format!("{base}/api/v1/entries.json?{q}"))),
        ));
        requests.push((
            format!("nightscout delete {q}"),
            ns(c.delete(format!("{base}/api/v1/entries?{q}"))),
        ));
    }
    for q in [
        format!("patient={p}&date=le{max_s}"),
        format!("patient={p}&date=gt{max_s}"),
        format!("patient={p}&date=lt{min_s}"),
    ] {
        requests.push((
            format!("fhir observations {q}"),
            c.get(format!("{base}/fhir/Observation?{q}"))
                .bearer_auth(&fx.clinician),
        ));
    }
    for q in [format!("end={min_s}"), format!("start={min_s}&end={max_s}")] {
        requests.push((
            format!("fhir summary {q}"),
            c.get(format!("{base}/fhir/Patient/{p}/$cgm-summary?{q}"))
                .bearer_auth(&fx.clinician),
        ));
    }
    // Batches and alerts: a phone clock at one edge, readings at the other.
    let mut b = flat_batch(p, BatchId::random(), min, 3);
    b.streams[0].readings[0].time = max;
    requests.push((
        "batch sent_at at the minimum".into(),
        c.post(format!("{base}/v1/batches"))
            .bearer_auth(&fx.device)
            .header("content-type", wire::BINARY_CONTENT_TYPE)
            .body(wire::encode_batch(&b, Format::Binary, ContentEncoding::Identity).unwrap()),
    ));
    let mut b = flat_batch(p, BatchId::random(), max, 3);
    b.streams[0].readings[0].time = min;
    requests.push((
        "batch sent_at at the maximum".into(),
        c.post(format!("{base}/v1/batches"))
            .bearer_auth(&fx.device)
            .header("content-type", wire::BINARY_CONTENT_TYPE)
            .body(wire::encode_batch(&b, Format::Binary, ContentEncoding::Identity).unwrap()),
    ));
    for (sent_at, time) in [(min, now_us()), (max, now_us()), (now_us(), max)] {
        let a = Alert {
            v: 1,
            patient: PatientId(p.to_string()),
            device: None,
            sent_at,
            id: "urgent-1".into(),
            kind: AlertKind::UrgentLow,
            phase: Phase::Start,
            time,
            glucose_mg_dl: Some(50.0),
            rate_mg_dl_per_min: None,
            battery_pct: None,
            session_expires_at: None,
        };
        requests.push((
            format!("alert sent_at {sent_at} time {time}"),
            c.post(format!("{base}/v1/alerts"))
                .bearer_auth(&fx.device)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&a).unwrap()),
        ));
    }
    for (what, req) in requests {
        let (status, body) = send(req).await;
        // Batches answer 200 with every reading refused in the ack.
        assert!((200..500).contains(&status), "{what}: {status} {body}");
        if status >= 400 {
            assert_documented(status, &body, &what);
        }
    }
    // Nothing out of range was stored, and the service still answers.
    assert_eq!(stored_count(&fx, p), 0);
    let (status, _) = send(c.get(format!("{base}/healthz"))).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_reusing_another_patients_batch_id_gets_its_own_ack_and_keeps_its_readings() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let id = BatchId::random();
    let (status, text) = post_binary(&base, &fx.device, &flat_batch(fx.own, id, now_us(), 3)).await;
    assert_eq!(status, 200, "{text}");
    let foreign = flat_batch(fx.foreign, id, now_us(), 5);
    let (status, text) = post_binary(&base, &fx.foreign_device, &foreign).await;
    assert_eq!(status, 200, "{text}");
    let ack: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ack["duplicate"], false, "{ack}");
    assert_eq!(ack["streams"][0]["stored"][0]["last"], 5, "{ack}");
    assert_eq!(stored_count(&fx, fx.foreign), 5);
    assert_eq!(stored_count(&fx, fx.own), 3);
    // The same device retrying its own batch is still deduplicated.
    let (status, text) = post_binary(&base, &fx.foreign_device, &foreign).await;
    assert_eq!(status, 200, "{text}");
    let ack: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ack["duplicate"], true, "{ack}");
}

fn heartbeat_json(patient: i64, sent_at: DateTime<Utc>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "v": 1,
        "patient": patient.to_string(),
        "sent_at": sent_at,
        "sdk_version": "0.1.0",
        "app_state": "foreground",
        "buffer": {"unsent_readings": 0, "pending_alerts": 0, "used_bytes": 10,
                   "budget_bytes": 1000, "pressure": "normal"},
        "devices": []
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_dated_years_ahead_is_refused_so_genuine_ones_still_count() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let post = |body: Vec<u8>| {
        send(
            client()
                .post(format!("{base}/v1/heartbeats"))
                .bearer_auth(&fx.device)
                .header("content-type", "application/json")
                .body(body),
        )
    };
    let genuine = now_us();
    let (status, text) = post(heartbeat_json(fx.own, genuine)).await;
    assert_eq!(status, 204, "a genuine heartbeat: {text}");
    let (status, text) = post(heartbeat_json(fx.own, genuine + TimeDelta::days(3 * 365))).await;
    assert_eq!(status, 400, "{text}");
    let v = assert_documented(status, &text, "future heartbeat");
    assert!(v["detail"].as_str().unwrap().contains("future_time"), "{v}");
    let (status, text) = post(heartbeat_json(fx.own, genuine - TimeDelta::days(40 * 365))).await;
    assert_eq!(status, 400, "a heartbeat from before 2000: {text}");
    let later = genuine + TimeDelta::seconds(30);
    let (status, _) = post(heartbeat_json(fx.own, later)).await;
    assert_eq!(status, 204);
    let stored = fx
        .store
        .blocking()
        .latest_heartbeat(fx.own)
        .unwrap()
        .unwrap();
    assert_eq!(stored.sent_at, later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implausible_times_are_refused_on_nightscout_upload_and_csv_import() {
    let fx = Fixture::new();
    vigil_ingest::admin::set_nightscout_secret(fx.store.blocking(), fx.own, "a long enough secret")
        .unwrap();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let c = client();
    let future = (Utc::now() + TimeDelta::days(365)).timestamp_millis();
    let (status, text) = send(
        c.post(format!("{base}/api/v1/entries"))
            .header("api-secret", "a long enough secret")
            .json(&serde_json::json!([{"type": "sgv", "sgv": 120, "date": future}])),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("future_time"), "{text}");
    let (status, text) = send(
        c.post(format!("{base}/api/v1/entries"))
            .header("api-secret", "a long enough secret")
            .json(&serde_json::json!([{"type": "sgv", "sgv": 120, "date": 86_400_000}])),
    )
    .await;
    assert_eq!(status, 400, "1970 is before any CGM: {text}");
    let csv = "time,glucose_mgdl\n1999-12-31T23:00:00Z,120\n2026-01-01T00:00:00Z,120\n";
    let (status, text) = send(
        c.post(format!("{base}/v1/patients/{}/readings.csv", fx.own))
            .bearer_auth(&fx.clinician)
            .body(csv),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let v = assert_documented(status, &text, "csv");
    assert_eq!(v["rows"][0]["line"], 2, "{v}");
    assert_eq!(v["rows"][0]["kind"], "implausible_time", "{v}");
    assert_eq!(stored_count(&fx, fx.own), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nightscout_upload_of_too_many_entries_is_refused_whole() {
    let fx = Fixture::new();
    vigil_ingest::admin::set_nightscout_secret(fx.store.blocking(), fx.own, "a long enough secret")
        .unwrap();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let c = client();
    let start = (Utc::now() - TimeDelta::days(30)).timestamp_millis();
    // Small enough in bytes for the body limit, too many to parse and store
    // in one request.
    let entries: Vec<_> = (0..=vigil_ingest::nightscout::MAX_ENTRIES as i64)
        .map(|i| serde_json::json!({"sgv": 120, "date": start + i * 60_000}))
        .collect();
    let (status, text) = send(
        c.post(format!("{base}/api/v1/entries"))
            .header("api-secret", "a long enough secret")
            .json(&entries),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("at most 10000"), "{text}");
    assert_eq!(stored_count(&fx, fx.own), 0);
    // One fewer is an ordinary upload.
    let (status, text) = send(
        c.post(format!("{base}/api/v1/entries"))
            .header("api-secret", "a long enough secret")
            .json(&entries[1..]),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(stored_count(&fx, fx.own), 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_http_methods_share_one_metrics_label() {
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let c = client();
    for i in 0..200 {
        let name = format!("X{}{i}", "LONGMETHOD".repeat(20));
        let method = reqwest::Method::from_bytes(name.as_bytes()).unwrap();
        let _ = send(c.request(method, format!("{base}/healthz"))).await;
    }
    let (status, text) = send(c.get(format!("{base}/metrics"))).await;
    assert_eq!(status, 200);
    assert!(!text.contains("LONGMETHOD"), "a method name became a label");
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(text.len() < 64 * 1024, "/metrics is {} bytes", text.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_documented_json_and_never_quote_what_was_sent() {
    let fx = Fixture::new();
    vigil_ingest::admin::set_nightscout_secret(fx.store.blocking(), fx.own, "a long enough secret")
        .unwrap();
    let base = common::serve_loopback(fx.state(Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    }))
    .await;
    let c = client();
    const MARK: &str = "SENTVALUE7x7";
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "body over the limit",
            c.post(format!("{base}/v1/batches"))
                .bearer_auth(&fx.device)
                .header("content-type", "application/json")
                .body(format!("{MARK}{}", "x".repeat(4096))),
        ),
        (
            "malformed path id",
            c.get(format!("{base}/v1/patients/{MARK}/readings"))
                .bearer_auth(&fx.clinician),
        ),
        (
            "malformed query",
            c.get(format!("{base}/v1/patients/{}/readings?to={MARK}", fx.own))
                .bearer_auth(&fx.clinician),
        ),
        (
            "nightscout sgv of the wrong type",
            c.post(format!("{base}/api/v1/entries"))
                .header("api-secret", "a long enough secret")
                .json(&serde_json::json!([{"type": "sgv", "sgv": MARK, "date": 1}])),
        ),
        (
            "fhir date",
            c.get(format!(
                "{base}/fhir/Observation?patient={}&date=ge{MARK}",
                fx.own
            ))
            .bearer_auth(&fx.clinician),
        ),
        (
            "wrong method",
            c.put(format!("{base}/v1/batches")).bearer_auth(&fx.device),
        ),
    ];
    for (what, req) in cases {
        let (status, body) = send(req).await;
        assert!((400..500).contains(&status), "{what}: {status} {body}");
        assert_documented(status, &body, what);
        assert!(!body.contains(MARK), "{what} echoed the input: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_connections_are_closed_capped_per_client_and_healthz_keeps_answering() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use vigil_ingest::serve::{ConnectionLimits, serve_plain};

    let fx = Fixture::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(1500),
        total: 1000,
        per_client: 50,
    };
    let app = vigil_ingest::app(fx.state(Limits::default()));
    tokio::spawn(serve_plain(listener, app, limits, std::future::pending()));

    // One anonymous client opens 200 connections, each sending a header
    // line now and then but never finishing its request.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
        slow.push(s);
    }
    let trickle = tokio::spawn(async move {
        let mut open = slow;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for s in &mut open {
                let _ = s.write_all(b"X-Slow: 1\r\n").await;
            }
        }
        open
    });

    // Another client (another loopback address) is served meanwhile.
    let other = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..20 {
        let r = other
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Past the header-read timeout every slow connection has been closed
    // (those over the per-client cap at once): each reads end of stream or
    // a reset, never waits.
    let mut open = trickle.await.unwrap();
    for s in &mut open {
        let mut buf = [0u8; 512];
        let closed = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a slow connection is still open");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_secrets_is_throttled_per_client_address_and_audited() {
    let fx = Fixture::new();
    vigil_ingest::admin::set_nightscout_secret(fx.store.blocking(), fx.own, "a long enough secret")
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = vigil_ingest::app(fx.state(Limits::default()));
    tokio::spawn(vigil_ingest::serve::serve_plain(
        listener,
        app,
        vigil_ingest::serve::ConnectionLimits::default(),
        std::future::pending(),
    ));
    let c = client();
    let mut statuses = Vec::new();
    for i in 0..60 {
        let (status, _) = send(
            c.get(format!("http://{addr}/api/v1/entries.json"))
                .header("api-secret", format!("wrong guess number {i}")),
        )
        .await;
        statuses.push(status);
    }
    assert!(statuses[..20].iter().all(|&s| s == 401), "{statuses:?}");
    assert!(statuses[50..].iter().all(|&s| s == 429), "{statuses:?}");
    // Bearer-token guesses from the same address are throttled too.
    let (status, _) = send(
        c.get(format!("http://{addr}/v1/patients"))
            .bearer_auth(format!("vgl_c_{}", "ab".repeat(32))),
    )
    .await;
    assert_eq!(status, 429);
    // Another client with the right secret is unaffected.
    let other = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (status, text) = send(
        other
            .get(format!("http://{addr}/api/v1/entries.json"))
            .header("api-secret", "a long enough secret"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    // The refusals are in the audit log, without the guesses.
    let audit = fx.store.blocking().audit_entries(0, 1000).unwrap();
    let refused = audit
        .iter()
        .filter(|e| e.action == "auth.refused.nightscout_secret")
        .count();
    assert!(refused >= 20, "{refused} refusals audited");
    // What the secret did is audited as the secret's, not as the CLI's
    // (both have no token id).
    let read = audit
        .iter()
        .rfind(|e| e.action.starts_with("nightscout."))
        .expect("the secret's read is audited");
    assert_eq!(
        read.credential,
        vigil_ingest::domain::CredentialKind::NightscoutSecret
    );
    assert!(
        audit
            .iter()
            .filter(|e| e.action.starts_with("auth.refused.nightscout"))
            .all(|e| e.credential == vigil_ingest::domain::CredentialKind::NightscoutSecret)
    );
    assert!(!format!("{audit:?}").contains("wrong guess"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_links_come_from_the_configured_url_not_the_host_header_and_tls_sends_hsts() {
    let fx = Fixture::new();
    let mut state = fx.state(Limits::default());
    state.public_url = "https://vigil.example.org".into();
    state.hsts = true;
    let base = common::serve_loopback(state).await;
    let resp = client()
        .get(format!("{base}/fhir/Observation?patient={}", fx.own))
        .bearer_auth(&fx.clinician)
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let bundle: Value = resp.json().await.unwrap();
    let urls: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap())
        .collect();
    assert!(!urls.is_empty(), "{bundle}");
    for u in urls {
        assert!(u.starts_with("https://vigil.example.org/fhir/"), "{u}");
    }
}

/// Reads `resp` until its body ends; Err if it is still open after `within`.
async fn ends_within(mut resp: reqwest::Response, within: Duration) -> Result<(), ()> {
    tokio::time::timeout(within, async {
        while let Ok(Some(_)) = resp.chunk().await {}
    })
    .await
    .map_err(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_end_when_their_token_is_revoked_or_their_session_ends() {
    use vigil_ingest::domain::TokenHash;
    let fx = Fixture::new();
    let base = common::serve_loopback(fx.state(Limits::default())).await;
    let c = reqwest::Client::new();

    // A follower's API stream, then its token revoked.
    let resp = c
        .get(format!("{base}/v1/alerts/stream"))
        .bearer_auth(&fx.follower)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let storage = fx.store.blocking();
    let id = storage
        .token_by_hash(&TokenHash::of(&fx.follower))
        .unwrap()
        .unwrap()
        .id;
    assert!(storage.revoke_token(id).unwrap());
    assert!(
        ends_within(resp, Duration::from_secs(8)).await.is_ok(),
        "the stream outlived its revoked token"
    );

    // A clinician's dashboard stream, then the session ended (sign-out).
    let cookie = dashboard_session(&base, &fx.clinician).await;
    let resp = c
        .get(format!("{base}/dashboard/alerts/stream"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let session = cookie.strip_prefix("vigil_session=").unwrap();
    assert!(
        storage
            .delete_session(&TokenHash::of(session), Utc::now())
            .unwrap()
    );
    assert!(
        ends_within(resp, Duration::from_secs(8)).await.is_ok(),
        "the stream outlived its session"
    );
}

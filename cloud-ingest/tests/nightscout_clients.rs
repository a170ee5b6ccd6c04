//! Nightscout clients replayed against the real service over loopback: the
//! request sequence xDrip+ and AndroidAPS make (status, entries,
//! treatments, device status, reads by `count`, `find[date]` and
//! `find[created_at]`), checked field by field against the shapes
//! Nightscout documents, with retries stored once and a bad document
//! leaving the store untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::{Fixture, serve_loopback};
use serde_json::{Value, json};
use vigil_ingest::{Limits, admin, nightscout};

const SECRET: &str = "own patient's nightscout secret";
const FOREIGN_SECRET: &str = "foreign patient's secret";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What AndroidAPS posts after a meal, a temporary basal, a note and a
/// sensor change (numbers sometimes as text, fields Vigil does not keep).
fn aaps_treatments() -> Value {
    json!([
        {"eventType": "Meal Bolus", "created_at": iso(t0()), "insulin": 4.5, "carbs": "40",
         "enteredBy": "AndroidAPS", "isValid": true, "pumpId": 1001, "date": t0().timestamp_millis()},
        {"eventType": "Temp Basal", "created_at": iso(t0() + TimeDelta::minutes(30)), "duration": 60,
         "absolute": 0.4, "rate": 0.4, "percent": -50, "enteredBy": "AndroidAPS"},
        {"eventType": "Note", "created_at": iso(t0() + TimeDelta::hours(1)), "notes": "cycling 45 min",
         "enteredBy": "xDrip+"},
        {"eventType": "Sensor Change", "created_at": iso(t0() + TimeDelta::hours(2)),
         "enteredBy": "Juggluco"}
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaders_post_treatments_and_status_and_followers_read_them_back() {
    let fx = Fixture::new();
    admin::set_nightscout_secret(fx.store.blocking(), fx.own, SECRET).unwrap();
    admin::set_nightscout_secret(fx.store.blocking(), fx.foreign, FOREIGN_SECRET).unwrap();
    let base = serve_loopback(fx.state(Limits::default())).await;
    let c = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let sha1 = nightscout::sha1_hex(SECRET);
    let post = |path: &'static str, body: Value, secret: String| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let r = c
                .post(format!("{base}{path}"))
                .header("api-secret", secret)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let get = |path: String, secret: String| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let r = c
                .get(format!("{base}{path}"))
                .header("api-secret", secret)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Value>().await.unwrap()
        }
    };

    // 1. The status probe every client makes first.
    let status = get("/api/v1/status.json".into(), sha1.clone()).await;
    assert_eq!(status["status"], "ok");

    // 2. Treatments, then the same request again (a retry): stored once.
    let (s, body) = post("/api/v1/treatments", aaps_treatments(), sha1.clone()).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (body["received"].clone(), body["stored"].clone()),
        (json!(4), json!(4))
    );
    let (s, body) = post("/api/v1/treatments", aaps_treatments(), SECRET.into()).await;
    assert_eq!(s, 200);
    assert_eq!(body["stored"], 0, "a retry is stored once");

    // 3. One implausible document refuses the request; nothing is stored.
    let bad = json!([
        {"eventType": "Correction Bolus", "created_at": iso(t0() + TimeDelta::hours(3)), "insulin": 2},
        {"eventType": "Correction Bolus", "created_at": iso(t0() + TimeDelta::hours(4)), "insulin": 900}
    ]);
    let (s, body) = post("/api/v1/treatments", bad, sha1.clone()).await;
    assert_eq!(s, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("document 1"),
        "{body}"
    );

    // 4. Device status from xDrip+ and from AndroidAPS.
    let statuses = json!([
        {"device": "xDrip-DexcomG6", "created_at": iso(t0() + TimeDelta::minutes(5)),
         "uploader": {"battery": 71}},
        {"device": "openaps://samsung SM-G991B", "created_at": iso(t0() + TimeDelta::minutes(6)),
         "uploaderBattery": 64, "pump": {"battery": {"percent": 80}, "reservoir": 120.5},
         "openaps": {"iob": {"iob": 1.2}, "suggested": {"COB": 18}}}
    ]);
    let (s, body) = post("/api/v1/devicestatus", statuses, sha1.clone()).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["stored"], 2);

    // 5. Followers read treatments by day and count, newest first, with the
    //    fields Nightscout's treatment documents carry.
    let t: Value = get(
        "/api/v1/treatments.json?count=10&find%5Bcreated_at%5D%5B%24gte%5D=2026-03-01".into(),
        sha1.clone(),
    )
    .await;
    let t = t.as_array().unwrap();
    assert_eq!(t.len(), 4);
    let kinds: Vec<&str> = t.iter().map(|x| x["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Sensor Change", "Note", "Temp Basal", "Meal Bolus"]);
    let meal = &t[3];
    for k in [
        "_id",
        "eventType",
        "created_at",
        "mills",
        "insulin",
        "carbs",
        "enteredBy",
    ] {
        assert!(meal.get(k).is_some(), "treatment without {k}: {meal}");
    }
    assert_eq!(meal["_id"].as_str().unwrap().len(), 24);
    assert_eq!(meal["carbs"], 40.0);
    assert_eq!(meal["created_at"], iso(t0()));
    assert!(meal.get("pumpId").is_none(), "unknown fields are not kept");
    assert_eq!(t[2]["duration"], 60.0);
    assert_eq!(t[2]["percent"], -50.0);
    // find[created_at] with an upper bound and count=1.
    let upto = (t0() + TimeDelta::minutes(45)).timestamp_millis();
    let one: Value = get(
        format!("/api/v1/treatments.json?count=1&find%5Bcreated_at%5D%5B%24lte%5D={upto}"),
        sha1.clone(),
    )
    .await;
    assert_eq!(one[0]["eventType"], "Temp Basal");
    // Stable ids across reads.
    let again: Value = get("/api/v1/treatments.json?count=10".into(), sha1.clone()).await;
    assert_eq!(again[3]["_id"], meal["_id"]);

    // 6. Device status: newest first, the loop's objects as sent.
    let ds: Value = get("/api/v1/devicestatus.json?count=1".into(), sha1.clone()).await;
    assert_eq!(ds.as_array().unwrap().len(), 1);
    assert_eq!(ds[0]["device"], "openaps://samsung SM-G991B");
    assert_eq!(ds[0]["uploaderBattery"], 64.0);
    assert_eq!(ds[0]["openaps"]["iob"]["iob"], 1.2);

    // 6b. Glucose entries as xDrip+ uploads them, each with the uploader's
    //     own arrow and delta, then a retry of the same request.
    let sgv = |i: i64, v: f64, direction: &str, delta: f64| {
        let at = t0() + TimeDelta::minutes(5 * i);
        json!({"type": "sgv", "sgv": v, "date": at.timestamp_millis(), "dateString": iso(at),
               "direction": direction, "delta": delta, "device": "xDrip-DexcomG6",
               "filtered": v * 1000.0, "unfiltered": v * 1000.0, "rssi": 100, "noise": 1,
               "sysTime": iso(at)})
    };
    let uploaded = json!([
        sgv(0, 150.0, "Flat", 0.5),
        sgv(1, 140.0, "SingleDown", -10.0),
        sgv(2, 141.0, "SingleDown", 1.0),
        sgv(3, 139.0, "a made-up arrow", -2.0)
    ]);
    for _ in 0..2 {
        let (s, body) = post("/api/v1/entries", uploaded.clone(), sha1.clone()).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["received"], 4);
    }
    let from = t0().timestamp_millis();
    let e: Value = get(
        format!("/api/v1/entries/sgv.json?count=10&find%5Bdate%5D%5B%24gte%5D={from}"),
        sha1.clone(),
    )
    .await;
    let e = e.as_array().unwrap();
    assert_eq!(e.len(), 4, "a retry is stored once: {e:?}");
    let arrows: Vec<(&str, f64)> = e
        .iter()
        .map(|x| {
            (
                x["direction"].as_str().unwrap(),
                x["delta"].as_f64().unwrap(),
            )
        })
        .collect();
    // Newest first. The uploader's arrow comes back as sent, even where
    // the stored values alone would say otherwise (141 after 140 reads
    // Flat); an arrow Nightscout does not know is recomputed.
    assert_eq!(
        arrows,
        [
            ("Flat", -2.0),
            ("SingleDown", 1.0),
            ("SingleDown", -10.0),
            ("Flat", 0.5)
        ]
    );
    for x in e {
        for k in [
            "_id",
            "type",
            "sgv",
            "date",
            "dateString",
            "direction",
            "delta",
            "device",
        ] {
            assert!(x.get(k).is_some(), "entry without {k}: {x}");
        }
    }
    let current: Value = get("/api/v1/entries/current.json".into(), sha1.clone()).await;
    assert_eq!(current[0]["sgv"], 139.0);
    // A range that starts late: only its entries come back, and the
    // recomputed arrow still sees the 15 minutes before the range (two
    // readings in range alone would give `NONE`).
    let late = (t0() + TimeDelta::minutes(10)).timestamp_millis();
    let e: Value = get(
        format!("/api/v1/entries/sgv.json?count=10&find%5Bdate%5D%5B%24gte%5D={late}"),
        sha1.clone(),
    )
    .await;
    let e = e.as_array().unwrap();
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0]["direction"], "Flat");

    // 7. Another patient's secret sees none of it.
    let foreign: Value = get(
        "/api/v1/treatments.json?count=10".into(),
        FOREIGN_SECRET.into(),
    )
    .await;
    assert!(foreign.as_array().unwrap().is_empty());
    let foreign: Value = get("/api/v1/devicestatus.json".into(), FOREIGN_SECRET.into()).await;
    assert!(foreign.as_array().unwrap().is_empty());
    let foreign: Value = get("/api/v1/entries.json".into(), FOREIGN_SECRET.into()).await;
    assert!(foreign.as_array().unwrap().is_empty());

    // 8. Writes and reads are audited against the patient.
    let audit = fx.store.blocking().audit_entries(0, 1000).unwrap();
    for action in [
        "nightscout.treatments.write",
        "nightscout.treatments.read",
        "nightscout.devicestatus.write",
        "nightscout.devicestatus.read",
    ] {
        assert!(
            audit
                .iter()
                .any(|a| a.action == action && a.patient_id == Some(fx.own)),
            "no {action}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_malformed_uploads_are_refused_before_anything_is_stored() {
    let fx = Fixture::new();
    admin::set_nightscout_secret(fx.store.blocking(), fx.own, SECRET).unwrap();
    let base = serve_loopback(fx.state(Limits::default())).await;
    let c = reqwest::Client::new();
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"eventType": "Note", "created_at": iso(t0() + TimeDelta::seconds(i))}))
        .collect();
    for (path, body) in [
        ("/api/v1/treatments", json!(many)),
        ("/api/v1/treatments", json!("not a list")),
        ("/api/v1/devicestatus", json!([{"device": "x"}])),
        (
            "/api/v1/devicestatus",
            json!([{"device": "x", "created_at": iso(t0()), "pump": 3}]),
        ),
    ] {
        let r = c
            .post(format!("{base}{path}"))
            .header("api-secret", SECRET)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
    }
    let s = fx.store.blocking();
    let (from, to) = (t0() - TimeDelta::days(1), t0() + TimeDelta::days(1));
    assert!(
        s.ns_documents(fx.own, "treatments", from, to, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        s.ns_documents(fx.own, "devicestatus", from, to, 10)
            .unwrap()
            .is_empty()
    );
}

//! Nightscout v1, CSV and FHIR over real HTTP on loopback against a real
//! SQLite file: uploads shaped like xDrip+ and AndroidAPS join the readings
//! store, and the same readings come back as Nightscout entries, CSV and
//! FHIR Bundles whose structure follows the HL7 CGM IG.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::{Fixture, serve_loopback};
use serde_json::{Value, json};
use vigil_ingest::{Limits, admin, nightscout};

const SECRET: &str = "own patient's nightscout secret";
const FOREIGN_SECRET: &str = "foreign patient's secret";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// `n` xDrip+-shaped sgv entries every 5 minutes from `t0`.
fn xdrip(n: i64, base: f64) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                let t = t0() + TimeDelta::minutes(5 * i);
                json!({
                    "device": "xDrip-DexcomG6", "date": t.timestamp_millis(),
                    "dateString": t.to_rfc3339(), "sgv": base + i as f64, "delta": 1.0,
                    "direction": "Flat", "type": "sgv", "filtered": 120000, "unfiltered": 120000,
                    "rssi": 100, "noise": 1, "sysTime": t.to_rfc3339()
                })
            })
            .collect(),
    )
}

async fn setup() -> (Fixture, String, reqwest::Client) {
    let fx = Fixture::new();
    admin::set_nightscout_secret(fx.store.blocking(), fx.own, SECRET).unwrap();
    admin::set_nightscout_secret(fx.store.blocking(), fx.foreign, FOREIGN_SECRET).unwrap();
    let base = serve_loopback(fx.state(Limits::default())).await;
    let c = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    (fx, base, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightscout_uploads_join_the_store_and_read_back_per_tenant() {
    let (fx, base, c) = setup().await;
    let sha1 = nightscout::sha1_hex(SECRET);
    // xDrip+ sends the SHA-1 hex in api-secret.
    let r = c
        .post(format!("{base}/api/v1/entries"))
        .header("api-secret", &sha1)
        .json(&xdrip(12, 100.0))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["received"], 12);
    // AndroidAPS-style re-upload of the same dates (plain secret, one
    // object plus a treatment-like entry that is ignored): stored once.
    let again = json!([xdrip(12, 100.0)[3].clone(), {"type": "mbg", "mbg": 110, "date": t0().timestamp_millis()}]);
    let r = c
        .post(format!("{base}/api/v1/entries"))
        .header("api-secret", SECRET)
        .json(&again)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["ignored"], 1);

    // The readings joined the same store the metrics read.
    let stored = fx
        .store
        .blocking()
        .readings(&vigil_ingest::storage::ReadingQuery {
            patient: fx.own,
            stream: Some(vigil_model::reading::Stream::Glucose),
            from: t0(),
            to: t0() + TimeDelta::days(1),
            limit: 1000,
        })
        .unwrap();
    assert_eq!(stored.len(), 12, "deduplicated by date");

    // Read back: newest first, count, find[date] bounds, ?token= auth.
    let from = (t0() + TimeDelta::minutes(10)).timestamp_millis();
    let to = (t0() + TimeDelta::minutes(30)).timestamp_millis();
    let url = format!(
        "{base}/api/v1/entries/sgv.json?count=3&find%5Bdate%5D%5B%24gte%5D={from}&find%5Bdate%5D%5B%24lte%5D={to}&token={}",
        sha1
    );
    let e: Vec<Value> = c.get(url).send().await.unwrap().json().await.unwrap();
    let dates: Vec<i64> = e.iter().map(|x| x["date"].as_i64().unwrap()).collect();
    assert_eq!(dates, vec![to, to - 300_000, to - 600_000]);
    for k in [
        "_id",
        "type",
        "sgv",
        "date",
        "dateString",
        "direction",
        "delta",
        "device",
        "noise",
    ] {
        assert!(e[0].get(k).is_some(), "missing {k}");
    }
    assert_eq!(e[0]["sgv"], 106.0);
    assert_eq!(e[0]["delta"], 1.0);
    let cur: Vec<Value> = c
        .get(format!("{base}/api/v1/entries/current.json"))
        .header("api-secret", &sha1)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cur.len(), 1);
    assert_eq!(cur[0]["sgv"], 111.0);
    let status: Value = c
        .get(format!("{base}/api/v1/status.json"))
        .header("api-secret", SECRET)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "ok");

    // The other tenant sees none of it; a wrong secret gets 401.
    let foreign: Vec<Value> = c
        .get(format!("{base}/api/v1/entries.json?count=100"))
        .header("api-secret", FOREIGN_SECRET)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(foreign.is_empty());
    let r = c
        .get(format!("{base}/api/v1/entries.json"))
        .header("api-secret", "not the secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The owner deletes a range; the foreign tenant cannot touch it.
    let del = |secret: &'static str| {
        c.delete(format!("{base}/api/v1/entries?find%5Bdate%5D%5B%24gte%5D={from}&find%5Bdate%5D%5B%24lte%5D={to}")).header("api-secret", secret).send()
    };
    assert_eq!(
        del(FOREIGN_SECRET)
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["n"],
        0
    );
    assert_eq!(
        del(SECRET).await.unwrap().json::<Value>().await.unwrap()["n"],
        5
    );
    let left: Vec<Value> = c
        .get(format!("{base}/api/v1/entries.json?count=100"))
        .header("api-secret", SECRET)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(left.len(), 7);
    let audit = fx.store.blocking().audit_entries(0, 1000).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "nightscout.entries.read" && a.patient_id == Some(fx.own))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_is_all_or_nothing_and_export_round_trips() {
    let (fx, base, c) = setup().await;
    let url = format!("{base}/v1/patients/{}/readings.csv", fx.own);
    let bad = "time,glucose_mgdl\n2026-03-01T00:00:00Z,100\n2026-03-01T00:05:00Z,abc\nnope,90\n";
    let r = c
        .post(&url)
        .bearer_auth(&fx.device)
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_csv");
    assert_eq!(
        body["rows"],
        json!([{"line": 3, "kind": "bad_glucose"}, {"line": 4, "kind": "bad_time"}])
    );
    let q = format!("{url}?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z");
    let empty = c
        .get(&q)
        .bearer_auth(&fx.clinician)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        empty, "time,glucose_mgdl\n",
        "nothing stored from a bad file"
    );

    let good: String = std::iter::once("time,glucose_mgdl\n".to_owned())
        .chain((0..20).map(|i| {
            format!(
                "{},{}\n",
                (t0() + TimeDelta::minutes(5 * i)).format("%Y-%m-%dT%H:%M:%SZ"),
                90 + i
            )
        }))
        .collect();
    let r = c
        .post(&url)
        .bearer_auth(&fx.device)
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["stored"], 20);
    let r = c.get(&q).bearer_auth(&fx.follower).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), good);
    // A foreign device cannot import into this patient.
    let r = c
        .post(&url)
        .bearer_auth(&fx.foreign_device)
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// Every `reference` in the bundle names an entry.
fn assert_references_resolve(b: &Value) {
    let ids: std::collections::BTreeSet<String> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect();
    fn walk(v: &Value, ids: &std::collections::BTreeSet<String>, n: &mut usize) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("reference") {
                    assert!(ids.contains(r), "dangling {r}");
                    *n += 1;
                }
                m.values().for_each(|x| walk(x, ids, n));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, ids, n)),
            _ => {}
        }
    }
    let mut n = 0;
    walk(b, &ids, &mut n);
    assert!(n > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_search_and_summary_follow_the_cgm_ig() {
    let (fx, base, c) = setup().await;
    c.post(format!("{base}/api/v1/entries"))
        .header("api-secret", SECRET)
        .json(&xdrip(288, 60.0))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let url = format!(
        "{base}/fhir/Observation?patient={}&date=ge2026-03-01T01:00:00Z&date=lt2026-03-01T02:00:00Z",
        fx.own
    );
    let r = c.get(&url).bearer_auth(&fx.clinician).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/fhir+json");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "searchset");
    assert_eq!(
        b["total"], 12,
        "one hour of 5-minute readings, end exclusive"
    );
    for e in b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
    {
        let o = &e["resource"];
        assert_eq!(o["code"]["coding"][0]["system"], "http://loinc.org");
        assert_eq!(o["code"]["coding"][0]["code"], "99504-3");
        assert_eq!(o["valueQuantity"]["system"], "http://unitsofmeasure.org");
        assert_eq!(o["valueQuantity"]["code"], "mg/dL");
        assert_eq!(o["subject"]["reference"], format!("Patient/{}", fx.own));
        let t = DateTime::parse_from_rfc3339(o["effectiveDateTime"].as_str().unwrap()).unwrap();
        assert!(t >= t0() + TimeDelta::hours(1) && t < t0() + TimeDelta::hours(2));
    }
    assert_references_resolve(&b);
    // Foreign clinician and device tokens are refused.
    assert_eq!(
        c.get(&url)
            .bearer_auth(&fx.foreign_clinician)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        c.get(&url)
            .bearer_auth(&fx.device)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    let s: Value = c
        .get(format!(
            "{base}/fhir/Patient/{}/$cgm-summary?start=2026-03-01&end=2026-03-02",
            fx.own
        ))
        .bearer_auth(&fx.follower)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = s["entry"].as_array().unwrap();
    let code = |c: &str| {
        entries
            .iter()
            .find(|e| e["resource"]["code"]["coding"][0]["code"] == c)
            .unwrap_or_else(|| panic!("no {c}"))["resource"]
            .clone()
    };
    // 288 readings 60..347: mean 203.5, all known by hand.
    assert_eq!(
        code("mean-glucose-mass-per-volume")["valueQuantity"]["value"],
        203.5
    );
    assert_eq!(code("gmi")["valueQuantity"]["value"], 8.18);
    assert_eq!(
        code("sensor-active-percentage")["valueQuantity"]["value"],
        100.0
    );
    assert_eq!(code("days-of-wear")["valueQuantity"]["code"], "d");
    assert_eq!(
        code("cgm-summary")["hasMember"].as_array().unwrap().len(),
        13
    );
    assert_references_resolve(&s);
    let audit = fx.store.blocking().audit_entries(0, 1000).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "fhir.summary.read" && a.patient_id == Some(fx.own))
    );
}

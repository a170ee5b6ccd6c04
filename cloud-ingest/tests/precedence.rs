//! Source precedence through the real service, on SQLite and PostgreSQL
//! (issue 15): a chest strap with an oximeter, the phone's CGM with a
//! Nightscout uploader sending the same sensor's values with its clock off
//! by up to ±2 minutes, a sensor change overlapping the old sensor's
//! backfill, and a fingerstick during CGM wear. In each, every reader sees
//! one value per moment, the metrics come from that series, and every
//! original stays retrievable with the decision that set it aside.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use common::{Fixture, serve_loopback};
use serde_json::{Value, json};
use vigil_ingest::rate_limit::RateLimit;
use vigil_ingest::{Limits, admin, nightscout};
use vigil_model::metrics::consensus_metrics;
use vigil_model::reading::{DeviceId, PatientId, Quality, Sample, Stream};
use vigil_model::wire::{self, Batch, BatchId, StreamReadings, WireReading};

const SECRET: &str = "uploader secret for precedence";

/// A whole minute a day ago: the start of every scenario.
fn start() -> DateTime<Utc> {
    (Utc::now() - TimeDelta::hours(24))
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap()
}

struct Env {
    fx: Fixture,
    base: String,
    http: reqwest::Client,
}

impl Env {
    async fn new(fx: Fixture) -> Env {
        let (store, own) = (fx.store.clone(), fx.own);
        tokio::task::spawn_blocking(move || {
            admin::set_nightscout_secret(store.blocking(), own, SECRET).unwrap();
        })
        .await
        .unwrap();
        let limits = Limits {
            // The scenarios post a day of data in seconds.
            rate: RateLimit {
                per_second: 10_000.0,
                burst: 10_000,
            },
            ..Limits::default()
        };
        let base = serve_loopback(fx.state(limits)).await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Env { fx, base, http }
    }

    /// Posts one stream of one device as the SDK does, in batches of 500.
    async fn sdk(
        &self,
        device: &str,
        stream: Stream,
        session: Option<i64>,
        readings: &[(u64, DateTime<Utc>, f64)],
    ) {
        let characteristic = match stream {
            Stream::Glucose => 0x2AA7,
            Stream::MeterGlucose => 0x2A18,
            Stream::HeartRate => 0x2A37,
            _ => 0x2A5F,
        };
        for chunk in readings.chunks(500) {
            let mut b = Batch::new(
                BatchId::random(),
                PatientId(self.fx.own.to_string()),
                DeviceId(device.into()),
                Utc::now()
                    .duration_trunc(TimeDelta::milliseconds(1))
                    .unwrap(),
            );
            let mut g = StreamReadings::new(stream, session, characteristic);
            for &(seq, time, value) in chunk {
                g.readings.push(WireReading {
                    seq,
                    time,
                    value,
                    quality: Quality::default(),
                    raw: None,
                });
            }
            b.streams.push(g);
            let resp = self
                .http
                .post(format!("{}/v1/batches", self.base))
                .bearer_auth(&self.fx.device)
                .header("content-type", "application/json")
                .body(wire::json::to_vec(&b).unwrap())
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let body = resp.text().await.unwrap();
            assert_eq!(status, 200, "{body}");
            let ack: Value = serde_json::from_str(&body).unwrap();
            assert!(
                ack["rejected"].as_array().is_none_or(|r| r.is_empty()),
                "{ack}"
            );
        }
    }

    /// Uploads sgv entries as xDrip+ does.
    async fn nightscout(&self, entries: &[(DateTime<Utc>, f64)]) {
        let body: Vec<Value> = entries
            .iter()
            .map(|(t, v)| {
                json!({"device": "xDrip-LibreReceiver", "date": t.timestamp_millis(),
                       "dateString": t.to_rfc3339(), "sgv": v, "type": "sgv",
                       "direction": "Flat"})
            })
            .collect();
        let resp = self
            .http
            .post(format!("{}/api/v1/entries", self.base))
            .header("api-secret", nightscout::sha1_hex(SECRET))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert_eq!(status, 200, "{}", resp.text().await.unwrap());
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    fn range(&self) -> String {
        let from = start() - TimeDelta::hours(1);
        let to = Utc::now() + TimeDelta::minutes(1);
        format!(
            "from={}&to={}",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }

    async fn readings(&self, query: &str) -> Vec<Value> {
        let v = self
            .get(
                &format!(
                    "/v1/patients/{}/readings?{}&{query}",
                    self.fx.own,
                    self.range()
                ),
                &self.fx.clinician,
            )
            .await;
        v["readings"].as_array().unwrap().clone()
    }

    async fn precedence(&self, quantity: &str) -> Value {
        self.get(
            &format!(
                "/v1/patients/{}/precedence?quantity={quantity}&{}",
                self.fx.own,
                self.range()
            ),
            &self.fx.clinician,
        )
        .await
    }
}

fn times(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["time"].as_str().unwrap().to_owned())
        .collect()
}

/// No two resolved values closer than `gap`: one value per moment.
fn one_per_moment(rows: &[Value], gap: TimeDelta) {
    let ts: Vec<DateTime<Utc>> = times(rows).iter().map(|t| t.parse().unwrap()).collect();
    for w in ts.windows(2) {
        assert!(w[1] - w[0] >= gap, "two values at {} and {}", w[0], w[1]);
    }
}

// (1) A chest strap and an oximeter, both every 10 s for 24 h, the
// oximeter 3 s behind: the resolved heart rate is the strap's, once per
// moment; the oximeter's pulse rate is all still there on request.
async fn chest_strap_and_oximeter_for_a_day(fx: Fixture) {
    let env = Env::new(fx).await;
    let t0 = start();
    let n = 24 * 360;
    let strap: Vec<_> = (0..n)
        .map(|i| {
            (
                i as u64,
                t0 + TimeDelta::seconds(10 * i),
                70.0 + (i % 7) as f64,
            )
        })
        .collect();
    let ox: Vec<_> = (0..n)
        .map(|i| {
            (
                i as u64,
                t0 + TimeDelta::seconds(10 * i + 3) - TimeDelta::milliseconds(2_400),
                75.0,
            )
        })
        .collect();
    env.sdk("strap-1", Stream::HeartRate, None, &strap).await;
    env.sdk("ox-1", Stream::PulseRate, None, &ox).await;

    let resolved = env.readings("stream=heart_rate").await;
    assert_eq!(resolved.len(), n as usize);
    assert!(resolved.iter().all(|r| r["device"] == "strap-1"));
    one_per_moment(&resolved, TimeDelta::seconds(1));
    // The pulse rate stream asked for on its own: every moment went to the
    // strap, so nothing of the oximeter stands.
    assert!(env.readings("stream=pulse_rate").await.is_empty());
    let raw = env.readings("stream=pulse_rate&resolved=false").await;
    assert_eq!(raw.len(), n as usize);

    let audit = env.precedence("heart_rate").await;
    assert_eq!(audit["raw"], 2 * n);
    assert_eq!(audit["moments"], n);
    let overridden = audit["overridden"].as_array().unwrap();
    assert_eq!(overridden.len(), n as usize);
    assert!(
        overridden
            .iter()
            .all(|d| d["decided_by"] == "device_rank"
                && d["losers"][0]["reading"]["device"] == "ox-1")
    );
    assert_eq!(audit["sources"].as_array().unwrap().len(), 1);
}

// (2) The phone's CGM and an uploader posting the same sensor's values,
// its clock off by -2 min, then +2 min, then -1:30, ... : one glucose value
// per moment everywhere (readings, metrics, Nightscout, FHIR, CSV), the
// phone's; the uploader's entries are kept and listed as set aside.
async fn phone_cgm_and_a_nightscout_uploader_of_the_same_sensor(fx: Fixture) {
    let env = Env::new(fx).await;
    let t0 = start();
    let n: i64 = 288;
    let value = |i: i64| 100.0 + ((i as f64) / 10.0).sin() * 40.0;
    let phone: Vec<_> = (0..n)
        .map(|i| (i as u64, t0 + TimeDelta::minutes(5 * i), value(i)))
        .collect();
    let offsets = [-120, 120, -90, 90, -30, 0, 60, -119];
    let uploader: Vec<_> = (0..n)
        .map(|i| {
            let off = offsets[(i as usize) % offsets.len()];
            (
                t0 + TimeDelta::minutes(5 * i) + TimeDelta::seconds(off),
                value(i),
            )
        })
        .collect();
    env.sdk("cgm-1", Stream::Glucose, Some(1), &phone).await;
    for chunk in uploader.chunks(100) {
        env.nightscout(chunk).await;
    }

    let raw = env.readings("stream=glucose&resolved=false").await;
    assert_eq!(raw.len(), 2 * n as usize);
    let resolved = env.readings("stream=glucose").await;
    assert_eq!(resolved.len(), n as usize);
    assert!(resolved.iter().all(|r| r["device"] == "cgm-1"));
    one_per_moment(&resolved, TimeDelta::minutes(5));

    // Metrics from the resolved series: the phone's values alone.
    let samples: Vec<Sample> = phone
        .iter()
        .map(|&(_, time, value)| Sample { time, value })
        .collect();
    let expected = consensus_metrics(&samples, TimeDelta::minutes(5)).unwrap();
    let m = env
        .get(
            &format!("/v1/patients/{}/metrics?{}", env.fx.own, env.range()),
            &env.fx.clinician,
        )
        .await;
    assert_eq!(m["readings"], expected.readings);
    assert!((m["mean_mg_dl"].as_f64().unwrap() - expected.mean_mg_dl).abs() < 1e-9);

    // Nightscout's own readers see the one series too.
    let entries: Value = env
        .http
        .get(format!("{}/api/v1/entries.json?count=1000", env.base))
        .header("api-secret", nightscout::sha1_hex(SECRET))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(entries.as_array().unwrap().len(), n as usize);

    // CSV export: one row per moment (plus the header).
    let csv = env
        .http
        .get(format!(
            "{}/v1/patients/{}/readings.csv?{}",
            env.base,
            env.fx.own,
            env.range()
        ))
        .bearer_auth(&env.fx.clinician)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv.lines().filter(|l| !l.trim().is_empty()).count(),
        n as usize + 1
    );

    let audit = env.precedence("glucose").await;
    let overridden = audit["overridden"].as_array().unwrap();
    assert_eq!(overridden.len(), n as usize);
    assert!(
        overridden.iter().all(|d| d["decided_by"] == "device_rank"
            && d["losers"][0]["reading"]["device"] == "nightscout")
    );
}

// (3) A sensor change: session 2 starts while session 1's last two hours
// arrive late as backfill. Session 2 stands minute for minute over the
// overlap; nothing is lost.
async fn a_sensor_change_with_two_hours_of_overlapping_backfill(fx: Fixture) {
    let env = Env::new(fx).await;
    let t0 = start();
    // Old sensor: 0..10 h. New sensor: from 8 h to 12 h, offset 90 s.
    let old: Vec<_> = (0..120)
        .map(|i| (i as u64, t0 + TimeDelta::minutes(5 * i), 150.0))
        .collect();
    let new: Vec<_> = (0..48)
        .map(|i| {
            (
                i as u64,
                t0 + TimeDelta::hours(8) + TimeDelta::minutes(5 * i) + TimeDelta::seconds(90),
                140.0,
            )
        })
        .collect();
    // New session first, then the old session's late backfill.
    env.sdk("cgm-1", Stream::Glucose, Some(2), &new).await;
    env.sdk("cgm-1", Stream::Glucose, Some(1), &old).await;

    let resolved = env.readings("stream=glucose").await;
    // 8 h of the old sensor alone (96), then the new sensor's 48.
    assert_eq!(resolved.len(), 96 + 48);
    one_per_moment(&resolved, TimeDelta::minutes(4));
    let switch = t0 + TimeDelta::hours(8);
    for r in &resolved {
        let t: DateTime<Utc> = r["time"].as_str().unwrap().parse().unwrap();
        let session = r["session"].as_i64().unwrap();
        assert_eq!(session, if t < switch { 1 } else { 2 }, "{r}");
    }
    assert_eq!(
        env.readings("stream=glucose&resolved=false").await.len(),
        168
    );
    let audit = env.precedence("glucose").await;
    let overridden = audit["overridden"].as_array().unwrap();
    assert_eq!(overridden.len(), 24);
    assert!(
        overridden
            .iter()
            .all(|d| d["decided_by"] == "newest_session")
    );
}

// (4) A fingerstick during CGM wear: the CGM keeps the trend, the meter
// reading is kept as a confirmation point (set aside by rank, listed in the
// audit view, returned with `resolved=false`); a fingerstick while no CGM
// value coincides stands.
async fn a_fingerstick_during_cgm_wear(fx: Fixture) {
    let env = Env::new(fx).await;
    let t0 = start();
    let cgm: Vec<_> = (0..24)
        .map(|i| (i as u64, t0 + TimeDelta::minutes(5 * i), 110.0))
        .collect();
    env.sdk("cgm-1", Stream::Glucose, Some(1), &cgm).await;
    env.sdk(
        "meter-1",
        Stream::MeterGlucose,
        None,
        &[
            (1, t0 + TimeDelta::minutes(31), 98.0),
            (2, t0 + TimeDelta::hours(5), 120.0),
        ],
    )
    .await;

    let all = env.readings("").await;
    assert_eq!(all.len(), 25);
    one_per_moment(&all, TimeDelta::minutes(5));
    assert_eq!(
        all.iter()
            .filter(|r| r["stream"] == "meter_glucose")
            .count(),
        1
    );
    assert_eq!(env.readings("stream=glucose").await.len(), 24);
    assert_eq!(env.readings("resolved=false").await.len(), 26);
    let audit = env.precedence("glucose").await;
    let overridden = audit["overridden"].as_array().unwrap();
    assert_eq!(overridden.len(), 1);
    assert_eq!(
        overridden[0]["losers"][0]["reading"]["stream"],
        "meter_glucose"
    );
    assert_eq!(overridden[0]["decided_by"], "device_rank");
    // The dashboard's report says which device stood when, and why.
    let sources = audit["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0]["device"], "cgm-1");
    assert_eq!(sources[0]["overridden"], 1);
    assert_eq!(sources[1]["device"], "meter-1");
}

// A clinician sets a policy that trusts the meter first: the fingerstick
// then wins its moment. A policy that cannot mean anything is refused and
// the one in force stays.
async fn a_clinician_s_policy_changes_the_resolution_and_a_bad_one_changes_nothing(fx: Fixture) {
    let env = Env::new(fx).await;
    let t0 = start();
    let cgm: Vec<_> = (0..12)
        .map(|i| (i as u64, t0 + TimeDelta::minutes(5 * i), 110.0))
        .collect();
    env.sdk("cgm-1", Stream::Glucose, Some(1), &cgm).await;
    env.sdk(
        "meter-1",
        Stream::MeterGlucose,
        None,
        &[(1, t0 + TimeDelta::minutes(31), 98.0)],
    )
    .await;
    let url = format!(
        "{}/v1/patients/{}/precedence-policy?quantity=glucose",
        env.base, env.fx.own
    );
    let current = env
        .get(
            &format!(
                "/v1/patients/{}/precedence-policy?quantity=glucose",
                env.fx.own
            ),
            &env.fx.clinician,
        )
        .await;
    assert_eq!(current["default"], true);
    let mut policy = current.clone();
    policy.as_object_mut().unwrap().remove("default");
    policy["rules"] = json!([
        {"rule": "device_rank", "ranking": ["meter", "cgm"]},
        {"rule": "most_recent"}
    ]);
    let put = |body: Value| {
        env.http
            .put(&url)
            .bearer_auth(&env.fx.clinician)
            .json(&body)
            .send()
    };
    assert_eq!(put(policy.clone()).await.unwrap().status(), 200);
    let glucose = env.readings("").await;
    assert!(glucose.iter().any(|r| r["device"] == "meter-1"));
    assert_eq!(glucose.len(), 12);

    let mut bad = policy.clone();
    bad["rules"] = json!([]);
    assert_eq!(put(bad).await.unwrap().status(), 400);
    let mut other = policy.clone();
    other["quantity"] = json!("spo2");
    assert_eq!(put(other).await.unwrap().status(), 400);
    let now = env
        .get(
            &format!(
                "/v1/patients/{}/precedence-policy?quantity=glucose",
                env.fx.own
            ),
            &env.fx.admin,
        )
        .await;
    assert_eq!(now["default"], false);
    assert_eq!(now["rules"], policy["rules"]);
}

macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(super::Fixture::new()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let fx = tokio::task::spawn_blocking(super::Fixture::postgres)
                        .await
                        .unwrap();
                    super::$check(fx).await;
                }
            )*
        }
    };
}

on_both_backends!(
    chest_strap_and_oximeter_for_a_day,
    phone_cgm_and_a_nightscout_uploader_of_the_same_sensor,
    a_sensor_change_with_two_hours_of_overlapping_backfill,
    a_fingerstick_during_cgm_wear,
    a_clinician_s_policy_changes_the_resolution_and_a_bad_one_changes_nothing,
);

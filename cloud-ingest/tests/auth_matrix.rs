//! Invariant 5, walked exhaustively: every route × every kind of caller ×
//! own and foreign patient, over real HTTP on loopback against a real
//! SQLite file. A new endpoint joins by adding rows to `MATRIX`; the test
//! fails if a route of the router has no rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use common::{Fixture, Who, serve_loopback};
use vigil_ingest::Limits;
use vigil_ingest::views::PatientsView;

/// Which patient a row's `{id}` path parameter names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The route takes no patient id.
    NoPatient,
    /// The fixture's own patient (the one the tokens belong to).
    Own,
    /// The other patient, which no tested token may reach.
    Foreign,
}

struct Row {
    method: &'static str,
    route: &'static str,
    target: Target,
    /// Expected status for Who::ALL in order: device, follower, clinician,
    /// admin, no token, bad token, revoked.
    expect: [u16; 7],
}

const fn row(method: &'static str, route: &'static str, target: Target, expect: [u16; 7]) -> Row {
    Row {
        method,
        route,
        target,
        expect,
    }
}

use Target::NoPatient;

// Least privilege: a device token writes its patient's data and reads
// nothing (the patient's own app reads with a follower token).
//                                                     dev  fol  clin adm  none bad  rev
const MATRIX: &[Row] = &[
    row(
        "GET",
        "/healthz",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/readyz",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/metrics",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/openapi.json",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/v1/patients",
        NoPatient,
        [200, 200, 200, 403, 401, 401, 401],
    ),
    row(
        "GET",
        "/v1/audit",
        NoPatient,
        [403, 403, 403, 200, 401, 401, 401],
    ), // Intake: only device tokens pass; an empty body then gets 415 (no
    // Content-Type), which shows auth let it through. The body's patient
    // against the token's is walked in tests/intake.rs.
    row(
        "POST",
        "/v1/batches",
        NoPatient,
        [415, 403, 403, 403, 401, 401, 401],
    ),
    row(
        "POST",
        "/v1/alerts",
        NoPatient,
        [415, 403, 403, 403, 401, 401, 401],
    ),
    // An empty heartbeat from a device is a contact heartbeat: 204.
    row(
        "POST",
        "/v1/heartbeats",
        NoPatient,
        [204, 403, 403, 403, 401, 401, 401],
    ),
    row(
        "GET",
        "/v1/patients/{id}/readings",
        Target::Own,
        [403, 200, 200, 403, 401, 401, 401],
    ),
    row(
        "GET",
        "/v1/patients/{id}/readings",
        Target::Foreign,
        [403, 403, 403, 403, 401, 401, 401],
    ),
    row(
        "GET",
        "/v1/patients/{id}/metrics",
        Target::Own,
        [403, 200, 200, 403, 401, 401, 401],
    ),
    row(
        "GET",
        "/v1/patients/{id}/metrics",
        Target::Foreign,
        [403, 403, 403, 403, 401, 401, 401],
    ),
    row(
        "GET",
        "/v1/patients/{id}/precedence",
        Target::Own,
        [403, 200, 200, 403, 401, 401, 401],
    ),
    row(
        "GET",
        "/v1/patients/{id}/precedence",
        Target::Foreign,
        [403, 403, 403, 403, 401, 401, 401],
    ),
    // Configuring precedence: assigned clinicians and admins only.
    row(
        "GET",
        "/v1/patients/{id}/precedence-policy",
        Target::Own,
        [403, 403, 200, 200, 401, 401, 401],
    ),
    row(
        "GET",
        "/v1/patients/{id}/precedence-policy",
        Target::Foreign,
        [403, 403, 403, 200, 401, 401, 401],
    ),
    // No body: 400 once the caller may configure, and nothing is stored.
    row(
        "PUT",
        "/v1/patients/{id}/precedence-policy",
        Target::Own,
        [403, 403, 400, 400, 401, 401, 401],
    ),
    row(
        "PUT",
        "/v1/patients/{id}/precedence-policy",
        Target::Foreign,
        [403, 403, 403, 400, 401, 401, 401],
    ),
    row(
        "GET",
        "/v1/alerts/stream",
        NoPatient,
        [403, 200, 200, 403, 401, 401, 401],
    ),
    // `{id}` is an alert id here: the test seeds an alert of each patient
    // whose id is that patient's id.
    row(
        "POST",
        "/v1/alerts/{id}/ack",
        Target::Own,
        [403, 403, 200, 403, 401, 401, 401],
    ),
    row(
        "POST",
        "/v1/alerts/{id}/ack",
        Target::Foreign,
        // Another clinic's alert answers as a missing one (no oracle).
        [403, 403, 404, 403, 401, 401, 401],
    ),
    // Dashboard pages authenticate by session cookie, never by bearer
    // token: every bearer caller is redirected (303, followed by the
    // client) to the sign-in form. The session cases, own and foreign
    // patient, are walked in tests/dashboard.rs.
    row(
        "GET",
        "/dashboard/",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/dashboard/triage",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/dashboard/login",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "POST",
        "/dashboard/login",
        NoPatient,
        [400, 400, 400, 400, 400, 400, 400],
    ),
    row(
        "POST",
        "/dashboard/logout",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    // No session: redirected to the sign-in page, whatever the bearer.
    row(
        "POST",
        "/dashboard/preferences",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/dashboard/patients/{id}",
        Target::Own,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/dashboard/patients/{id}",
        Target::Foreign,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/dashboard/alerts/stream",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "POST",
        "/dashboard/alerts/{id}/ack",
        Target::Own,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "POST",
        "/dashboard/alerts/{id}/ack",
        Target::Foreign,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/dashboard/static/app.css",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/dashboard/static/app.js",
        NoPatient,
        [200, 200, 200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/v1/patients/{id}/readings.csv",
        Target::Own,
        [403, 200, 200, 403, 401, 401, 401],
    ),
    row(
        "GET",
        "/v1/patients/{id}/readings.csv",
        Target::Foreign,
        [403, 403, 403, 403, 401, 401, 401],
    ),
    // Empty body: a device or clinician reaches the parser (400); the
    // follower and admin are refused by role.
    row(
        "POST",
        "/v1/patients/{id}/readings.csv",
        Target::Own,
        [400, 403, 400, 403, 401, 401, 401],
    ),
    row(
        "POST",
        "/v1/patients/{id}/readings.csv",
        Target::Foreign,
        [403, 403, 403, 403, 401, 401, 401],
    ),
    // No `patient` parameter: 400 once the role may read FHIR.
    row(
        "GET",
        "/fhir/Observation",
        NoPatient,
        [403, 400, 400, 403, 401, 401, 401],
    ),
    row(
        "GET",
        "/fhir/Patient/{id}",
        Target::Own,
        [403, 200, 200, 403, 401, 401, 401],
    ),
    row(
        "GET",
        "/fhir/Patient/{id}",
        Target::Foreign,
        [403, 403, 403, 403, 401, 401, 401],
    ),
    // The matrix test seeds readings: 200 once in scope.
    row(
        "GET",
        "/fhir/Patient/{id}/$cgm-summary",
        Target::Own,
        [403, 200, 200, 403, 401, 401, 401],
    ),
    row(
        "GET",
        "/fhir/Patient/{id}/$cgm-summary",
        Target::Foreign,
        [403, 403, 403, 403, 401, 401, 401],
    ),
    // Nightscout authenticates by its own secret, never a bearer token
    // (tenant by secret: tests/nightscout.rs walks own and foreign).
    row(
        "GET",
        "/api/v1/status.json",
        NoPatient,
        [401, 401, 401, 401, 401, 401, 401],
    ),
    row(
        "GET",
        "/api/v1/entries.json",
        NoPatient,
        [401, 401, 401, 401, 401, 401, 401],
    ),
    row(
        "GET",
        "/api/v1/entries/sgv.json",
        NoPatient,
        [401, 401, 401, 401, 401, 401, 401],
    ),
    row(
        "GET",
        "/api/v1/entries/current.json",
        NoPatient,
        [401, 401, 401, 401, 401, 401, 401],
    ),
    row(
        "POST",
        "/api/v1/entries",
        NoPatient,
        [401, 401, 401, 401, 401, 401, 401],
    ),
    row(
        "DELETE",
        "/api/v1/entries",
        NoPatient,
        [401, 401, 401, 401, 401, 401, 401],
    ),
    row(
        "POST",
        "/api/v1/treatments",
        NoPatient,
        [401, 401, 401, 401, 401, 401, 401],
    ),
    row(
        "GET",
        "/api/v1/treatments.json",
        NoPatient,
        [401, 401, 401, 401, 401, 401, 401],
    ),
    row(
        "POST",
        "/api/v1/devicestatus",
        NoPatient,
        [401, 401, 401, 401, 401, 401, 401],
    ),
    row(
        "GET",
        "/api/v1/devicestatus.json",
        NoPatient,
        [401, 401, 401, 401, 401, 401, 401],
    ),
];

/// Gives each patient a glucose reading (metrics need one) and an alert
/// whose id is the patient's id (the ack rows name it).
fn seed(fx: &Fixture) {
    use chrono::{TimeDelta, Utc};
    use vigil_ingest::storage::{NewAlert, NewBatch, NewGroup, NewReading};
    let s = fx.store.blocking();
    let now = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    for (n, p) in [(1u8, fx.own), (2, fx.foreign)] {
        s.store_batch(&NewBatch {
            v: 1,
            id: vigil_model::wire::BatchId([n; 16]),
            patient: p,
            device: "cgm".into(),
            received_at: now,
            groups: vec![NewGroup {
                stream: vigil_model::reading::Stream::Glucose,
                session: None,
                characteristic: 0x2AA7,
                tolerance: None,
                readings: vec![NewReading {
                    seq: 1,
                    time: now - TimeDelta::hours(1),
                    value: 100.0,
                    quality_percent: None,
                    quality_flagged: false,
                    held_back: false,
                    raw: None,
                }],
                rejected: vec![],
            }],
        })
        .unwrap();
        s.store_alert(
            &NewAlert {
                patient: p,
                alert_id: p.to_string(),
                device: None,
                kind: "low".into(),
                phase: "start".into(),
                time: now,
                phone_time: now,
                value: Some(65.0),
                detail: "{}".into(),
                received_at: now,
            },
            false,
        )
        .unwrap();
    }
}

async fn every_route_answers_every_caller_with_the_status_its_role_allows(fx: Fixture) {
    let base = serve_loopback(fx.state(Limits::default())).await;
    let client = reqwest::Client::new();
    let mut failures = Vec::new();
    for r in MATRIX {
        let id = match r.target {
            Target::NoPatient => None,
            Target::Own => Some(fx.own),
            Target::Foreign => Some(fx.foreign),
        };
        let path = match id {
            Some(id) => r.route.replace("{id}", &id.to_string()),
            None => r.route.to_owned(),
        };
        for (who, expect) in Who::ALL.iter().zip(r.expect) {
            let method = reqwest::Method::from_bytes(r.method.as_bytes()).unwrap();
            let mut req = client.request(method, format!("{base}{path}"));
            if let Some(t) = fx.token(*who) {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            if status != expect {
                failures.push(format!(
                    "{} {path} as {who:?}: got {status}, want {expect}",
                    r.method
                ));
                continue;
            }
            if status >= 400 {
                let body: serde_json::Value = resp.json().await.unwrap();
                assert!(body["error"].is_string() && body["detail"].is_string());
            }
        }
    }
    assert!(failures.is_empty(), "auth matrix:\n{}", failures.join("\n"));
}

#[test]
fn matrix_covers_every_route_and_each_patient_route_for_own_and_foreign() {
    for route in vigil_ingest::routes::table() {
        let rows: Vec<&Row> = MATRIX
            .iter()
            .filter(|r| r.method == route.method.as_str() && r.route == route.path)
            .collect();
        assert!(
            !rows.is_empty(),
            "{} {} has no auth matrix rows",
            route.method,
            route.path
        );
        if route.path.contains("{id}") {
            for t in [Target::Own, Target::Foreign] {
                assert!(
                    rows.iter().any(|r| r.target == t),
                    "{} {} lacks a {t:?} row",
                    route.method,
                    route.path
                );
            }
        }
    }
}

async fn patient_list_shows_each_token_only_the_patients_it_may_reach(fx: Fixture) {
    let base = serve_loopback(fx.state(Limits::default())).await;
    let client = reqwest::Client::new();
    let cases: [(&str, &str, i64); 5] = [
        ("device", &fx.device, fx.own),
        ("follower", &fx.follower, fx.own),
        ("clinician", &fx.clinician, fx.own),
        ("foreign device", &fx.foreign_device, fx.foreign),
        ("foreign clinician", &fx.foreign_clinician, fx.foreign),
    ];
    for (name, token, only) in cases {
        let view: PatientsView = client
            .get(format!("{base}/v1/patients"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<i64> = view.patients.iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![only], "{name} sees {ids:?}");
    }
}

async fn reads_of_patient_data_are_audited_with_token_ids_and_visible_to_admins_only(fx: Fixture) {
    let base = serve_loopback(fx.state(Limits::default())).await;
    let client = reqwest::Client::new();
    client
        .get(format!("{base}/v1/patients"))
        .bearer_auth(&fx.clinician)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let audit: serde_json::Value = client
        .get(format!("{base}/v1/audit"))
        .bearer_auth(&fx.admin)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let read = entries
        .iter()
        .find(|e| e["action"] == "patients.read")
        .expect("the clinician's read is audited");
    assert_eq!(read["patient_id"], fx.own);
    assert!(read["token_id"].is_i64());
    assert_eq!(read["credential"], "token");
    // The CLI's setup is audited too, with no token, and says it was the CLI.
    assert!(entries.iter().any(|e| e["action"] == "patient.create"
        && e["token_id"].is_null()
        && e["credential"] == "admin_cli"));
    // Paging: after the last id there is only the audit read itself.
    let last = entries.last().unwrap()["id"].as_i64().unwrap();
    let next: serde_json::Value = client
        .get(format!("{base}/v1/audit?after={last}"))
        .bearer_auth(&fx.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = next["entries"].as_array().unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["action"], "audit.read");
    // A malformed query is a JSON 400 naming the problem.
    let bad = client
        .get(format!("{base}/v1/audit?after=yesterday"))
        .bearer_auth(&fx.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "invalid_input");
}

/// Runs each HTTP-level check above against both backends: SQLite, and a
/// fresh database on this binary's throwaway PostgreSQL server.
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let fx = super::Fixture::new();
                    super::seed(&fx);
                    super::$check(fx).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    // The blocking client must not run on an async worker.
                    let fx = tokio::task::spawn_blocking(|| {
                        let fx = super::Fixture::postgres();
                        super::seed(&fx);
                        fx
                    })
                    .await
                    .unwrap();
                    super::$check(fx).await;
                }
            )*
        }
    };
}

on_both_backends!(
    every_route_answers_every_caller_with_the_status_its_role_allows,
    patient_list_shows_each_token_only_the_patients_it_may_reach,
    reads_of_patient_data_are_audited_with_token_ids_and_visible_to_admins_only,
);

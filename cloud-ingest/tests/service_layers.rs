//! The protective layers every route gets: body size limit, per-token rate
//! limit, request timeout, and request metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::{Fixture, serve_loopback};
use tower::ServiceExt;
use vigil_ingest::rate_limit::RateLimit;
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_ingest::storage::{Storage, Store};
use vigil_ingest::{Limits, Result, ServiceState, app};

/// SQLite whose readiness probe takes 300 ms.
struct SlowPing(SqliteStorage);

impl Storage for SlowPing {
    fn ping(&self) -> Result<()> {
        std::thread::sleep(Duration::from_millis(300));
        self.0.ping()
    }
    fn schema_version(&self) -> Result<u32> {
        self.0.schema_version()
    }
}

/// Every other call goes straight to SQLite (the rules run in the traits'
/// provided methods, so only the row methods are delegated).
mod delegate {
    use super::SlowPing;
    use chrono::{DateTime, Utc};
    use vigil_ingest::Result;
    use vigil_ingest::domain::*;
    use vigil_ingest::storage::rules::{TokenRow, Written};
    use vigil_ingest::storage::*;

    impl Directory for SlowPing {
        fn insert_patient_row(&self, display_name: &str) -> Result<PatientId> {
            self.0.insert_patient_row(display_name)
        }
        fn patient(&self, id: PatientId) -> Result<Option<Patient>> {
            self.0.patient(id)
        }
        fn set_patient_time_zone(&self, id: PatientId, time_zone: &str) -> Result<bool> {
            self.0.set_patient_time_zone(id, time_zone)
        }
        fn insert_clinician_row(&self, name: &str) -> Result<Written<ClinicianId>> {
            self.0.insert_clinician_row(name)
        }
        fn clinician_by_name(&self, name: &str) -> Result<Option<ClinicianId>> {
            self.0.clinician_by_name(name)
        }
        fn insert_assignment_row(
            &self,
            clinician: ClinicianId,
            patient: PatientId,
        ) -> Result<Written> {
            self.0.insert_assignment_row(clinician, patient)
        }
        fn assigned_patients(&self, clinician: ClinicianId) -> Result<Vec<Patient>> {
            self.0.assigned_patients(clinician)
        }
        fn is_assigned(&self, clinician: ClinicianId, patient: PatientId) -> Result<bool> {
            self.0.is_assigned(clinician, patient)
        }
        fn clinician_unit_row(&self, clinician: ClinicianId) -> Result<Option<String>> {
            self.0.clinician_unit_row(clinician)
        }
        fn update_clinician_unit_row(&self, clinician: ClinicianId, unit: &str) -> Result<bool> {
            self.0.update_clinician_unit_row(clinician, unit)
        }
        fn insert_token_row(
            &self,
            token: &NewToken,
            patient: Option<PatientId>,
            clinician: Option<ClinicianId>,
        ) -> Result<Written<TokenId>> {
            self.0.insert_token_row(token, patient, clinician)
        }
        fn token_row(&self, hash: &TokenHash) -> Result<Option<TokenRow>> {
            self.0.token_row(hash)
        }
        fn revoke_token(&self, id: TokenId) -> Result<bool> {
            self.0.revoke_token(id)
        }
        fn insert_session_row(
            &self,
            hash: &TokenHash,
            token: TokenId,
            expires_at: DateTime<Utc>,
        ) -> Result<Written> {
            self.0.insert_session_row(hash, token, expires_at)
        }
        fn session_token_row(
            &self,
            hash: &TokenHash,
            now: DateTime<Utc>,
        ) -> Result<Option<TokenRow>> {
            self.0.session_token_row(hash, now)
        }
        fn delete_session(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<bool> {
            self.0.delete_session(hash, now)
        }
        fn end_clinician_sessions(&self, clinician: ClinicianId) -> Result<u64> {
            self.0.end_clinician_sessions(clinician)
        }
        fn upsert_nightscout_secret_row(
            &self,
            patient: PatientId,
            hash: &SecretHash,
        ) -> Result<Written> {
            self.0.upsert_nightscout_secret_row(patient, hash)
        }
        fn nightscout_patient(&self, hash: &SecretHash) -> Result<Option<PatientId>> {
            self.0.nightscout_patient(hash)
        }
    }

    impl Audit for SlowPing {
        fn insert_audit_row(&self, entry: &NewAuditEntry) -> Result<i64> {
            self.0.insert_audit_row(entry)
        }
        fn insert_audit_rows(&self, entries: &[NewAuditEntry]) -> Result<()> {
            self.0.insert_audit_rows(entries)
        }
        fn audit_entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
            self.0.audit_entries(after, limit)
        }
    }

    impl Readings for SlowPing {
        fn store_batch(&self, batch: &NewBatch) -> Result<vigil_model::wire::BatchAck> {
            self.0.store_batch(batch)
        }
        fn kept_reading_before(
            &self,
            key: &SeriesKey,
            at: DateTime<Utc>,
        ) -> Result<Option<StoredReading>> {
            self.0.kept_reading_before(key, at)
        }
        fn sequences_between(
            &self,
            key: &SeriesKey,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<Vec<(DateTime<Utc>, u64)>> {
            self.0.sequences_between(key, from, to)
        }
        fn readings(&self, query: &ReadingQuery) -> Result<Vec<StoredReading>> {
            self.0.readings(query)
        }
        fn delete_readings(
            &self,
            patient: PatientId,
            device: &str,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<u64> {
            self.0.delete_readings(patient, device, from, to)
        }
        fn precedence_policy(&self, patient: PatientId, quantity: &str) -> Result<Option<String>> {
            self.0.precedence_policy(patient, quantity)
        }
        fn set_precedence_policy(
            &self,
            patient: PatientId,
            quantity: &str,
            policy: &str,
            by: Option<TokenId>,
            at: DateTime<Utc>,
        ) -> Result<bool> {
            self.0
                .set_precedence_policy(patient, quantity, policy, by, at)
        }
        fn store_ns_documents(
            &self,
            patient: PatientId,
            collection: &str,
            documents: &[NsDocument],
        ) -> Result<u64> {
            self.0.store_ns_documents(patient, collection, documents)
        }
        fn ns_documents(
            &self,
            patient: PatientId,
            collection: &str,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
            limit: u32,
        ) -> Result<Vec<NsDocument>> {
            self.0.ns_documents(patient, collection, from, to, limit)
        }
        fn glucose_days(
            &self,
            scope: DayScope,
            from_day: i64,
            to_day: i64,
        ) -> Result<Vec<GlucoseDay>> {
            self.0.glucose_days(scope, from_day, to_day)
        }
        fn stale_glucose_days(
            &self,
            scope: DayScope,
            from_day: i64,
            to_day: i64,
        ) -> Result<Vec<StaleDay>> {
            self.0.stale_glucose_days(scope, from_day, to_day)
        }
        fn put_glucose_day(
            &self,
            patient: PatientId,
            day: i64,
            generation: i64,
            counts: &DayCounts,
            tail: &DayTail,
        ) -> Result<bool> {
            self.0
                .put_glucose_day(patient, day, generation, counts, tail)
        }
    }

    impl Alerts for SlowPing {
        fn store_alert(&self, alert: &NewAlert, contact: bool) -> Result<bool> {
            self.0.store_alert(alert, contact)
        }
        fn alerts_for(
            &self,
            patients: &[PatientId],
            since: DateTime<Utc>,
            limit: u32,
        ) -> Result<Vec<StoredAlert>> {
            self.0.alerts_for(patients, since, limit)
        }
        fn alert_patients(&self, alert_id: &str) -> Result<Vec<PatientId>> {
            self.0.alert_patients(alert_id)
        }
        fn ack_alert(
            &self,
            patient: PatientId,
            alert_id: &str,
            token: TokenId,
            at: DateTime<Utc>,
        ) -> Result<bool> {
            self.0.ack_alert(patient, alert_id, token, at)
        }
        fn alert_acks(&self, patient: PatientId, alert_id: &str) -> Result<Vec<AlertAckRecord>> {
            self.0.alert_acks(patient, alert_id)
        }
        fn store_heartbeat(&self, heartbeat: &NewHeartbeat) -> Result<()> {
            self.0.store_heartbeat(heartbeat)
        }
        fn record_contact(&self, patient: PatientId, at: DateTime<Utc>) -> Result<()> {
            self.0.record_contact(patient, at)
        }
        fn latest_heartbeat(&self, patient: PatientId) -> Result<Option<NewHeartbeat>> {
            self.0.latest_heartbeat(patient)
        }
        fn contacts(&self) -> Result<Vec<Contact>> {
            self.0.contacts()
        }
        fn set_silence(
            &self,
            patient: PatientId,
            expected: Option<&str>,
            silence: Option<&Silence>,
        ) -> Result<bool> {
            self.0.set_silence(patient, expected, silence)
        }
    }

    impl Webhooks for SlowPing {
        fn insert_webhook_row(&self, hook: &NewWebhook) -> Result<WebhookId> {
            self.0.insert_webhook_row(hook)
        }
        fn webhooks(&self) -> Result<Vec<Webhook>> {
            self.0.webhooks()
        }
        fn enqueue_webhook_event(
            &self,
            kind: EventKind,
            body: &str,
            at: DateTime<Utc>,
        ) -> Result<u64> {
            self.0.enqueue_webhook_event(kind, body, at)
        }
        fn due_webhook_deliveries(
            &self,
            now: DateTime<Utc>,
            limit: u32,
        ) -> Result<Vec<DueDelivery>> {
            self.0.due_webhook_deliveries(now, limit)
        }
        fn update_webhook_delivery_row(&self, id: DeliveryId, attempt: &Attempt) -> Result<bool> {
            self.0.update_webhook_delivery_row(id, attempt)
        }
        fn webhook_deliveries(&self, webhook: WebhookId) -> Result<Vec<DeliveryLog>> {
            self.0.webhook_deliveries(webhook)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_with_413_before_any_handler() {
    let fx = Fixture::new();
    let base = serve_loopback(fx.state(Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    }))
    .await;
    let client = reqwest::Client::new();
    let big = client
        .get(format!("{base}/v1/patients"))
        .bearer_auth(&fx.device)
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let small = client
        .get(format!("{base}/v1/patients"))
        .bearer_auth(&fx.device)
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_budget_gets_429_while_other_tokens_are_served() {
    let fx = Fixture::new();
    let base = serve_loopback(fx.state(Limits {
        rate: RateLimit {
            per_second: 0.0,
            burst: 3,
        },
        ..Limits::default()
    }))
    .await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut retry_after = Vec::new();
    for _ in 0..5 {
        let r = client
            .get(format!("{base}/v1/patients"))
            .bearer_auth(&fx.device)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        retry_after.push(
            r.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // Throttled answers tell the phone how long to wait.
    assert_eq!(retry_after[3].as_deref(), Some("1"));
    assert_eq!(retry_after[0], None);
    let other = client
        .get(format!("{base}/v1/patients"))
        .bearer_auth(&fx.follower)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_slower_than_the_timeout_is_answered_408() {
    let state = ServiceState::new(
        Store::new(SlowPing(SqliteStorage::open_in_memory().unwrap())),
        Limits {
            request_timeout: Duration::from_millis(50),
            ..Limits::default()
        },
    );
    let resp = app(state.clone())
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 408);
    // The same state with a generous timeout answers: the 408 came from the
    // timeout, not from the slow storage failing.
    let patient = ServiceState {
        limits: Limits::default(),
        ..state
    };
    let resp = app(patient)
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_template_and_status() {
    let fx = Fixture::new();
    let base = serve_loopback(fx.state(Limits::default())).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        client
            .get(format!("{base}/v1/patients"))
            .send()
            .await
            .unwrap();
    }
    client
        .get(format!("{base}/v1/patients"))
        .bearer_auth(&fx.device)
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/v1/patients/{}", fx.own))
        .send()
        .await
        .unwrap();
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no {needle} in\n{text}"))
            .rsplit_once(' ')
            .unwrap()
            .1
            .to_owned()
    };
    assert_eq!(
        line(r#"vigil_http_requests_total{method="GET",route="/v1/patients",status="401"}"#),
        "3"
    );
    assert_eq!(
        line(r#"vigil_http_requests_total{method="GET",route="/v1/patients",status="200"}"#),
        "1"
    );
    assert_eq!(
        line(r#"vigil_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        "1"
    );
    assert_eq!(
        line(r#"vigil_http_request_duration_seconds_count{route="/v1/patients"}"#),
        "4"
    );
    assert_eq!(
        line(r#"vigil_http_request_duration_seconds_bucket{route="/v1/patients",le="+Inf"}"#),
        "4"
    );
    // Raw paths (which could carry a patient id) never become labels.
    assert!(!text.contains(&format!("/v1/patients/{}", fx.own)));
}

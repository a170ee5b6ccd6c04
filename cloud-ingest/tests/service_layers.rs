//! The protective layers every route gets: body size limit, per-token rate
//! limit, request timeout, and request metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::{Fixture, serve_loopback};
use tower::ServiceExt;
use vigil_ingest::domain;
use vigil_ingest::domain::TokenHash;
use vigil_ingest::domain::{AuditEntry, NewAuditEntry, NewToken, Patient, TokenRecord};
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
    fn add_patient(&self, n: &str) -> Result<i64> {
        self.0.add_patient(n)
    }
    fn patient(&self, id: i64) -> Result<Option<Patient>> {
        self.0.patient(id)
    }
    fn set_patient_time_zone(&self, id: i64, tz: &str) -> Result<bool> {
        self.0.set_patient_time_zone(id, tz)
    }
    fn precedence_policy(&self, p: i64, q: &str) -> Result<Option<String>> {
        self.0.precedence_policy(p, q)
    }
    fn set_precedence_policy(
        &self,
        p: i64,
        q: &str,
        policy: &str,
        by: Option<i64>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        self.0.set_precedence_policy(p, q, policy, by, at)
    }
    fn store_ns_documents(
        &self,
        p: i64,
        c: &str,
        d: &[vigil_ingest::domain::NsDocument],
    ) -> Result<u64> {
        self.0.store_ns_documents(p, c, d)
    }
    fn ns_documents(
        &self,
        p: i64,
        c: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<vigil_ingest::domain::NsDocument>> {
        self.0.ns_documents(p, c, from, to, limit)
    }
    fn add_clinician(&self, n: &str) -> Result<i64> {
        self.0.add_clinician(n)
    }
    fn clinician_by_name(&self, n: &str) -> Result<Option<i64>> {
        self.0.clinician_by_name(n)
    }
    fn assign(&self, c: i64, p: i64) -> Result<()> {
        self.0.assign(c, p)
    }
    fn assigned_patients(&self, c: i64) -> Result<Vec<Patient>> {
        self.0.assigned_patients(c)
    }
    fn is_assigned(&self, c: i64, p: i64) -> Result<bool> {
        self.0.is_assigned(c, p)
    }
    fn clinician_unit(&self, c: i64) -> Result<String> {
        self.0.clinician_unit(c)
    }
    fn set_clinician_unit(&self, c: i64, unit: &str) -> Result<()> {
        self.0.set_clinician_unit(c, unit)
    }
    fn insert_token(&self, t: &NewToken) -> Result<i64> {
        self.0.insert_token(t)
    }
    fn token_by_hash(&self, h: &TokenHash) -> Result<Option<TokenRecord>> {
        self.0.token_by_hash(h)
    }
    fn revoke_token(&self, id: i64) -> Result<bool> {
        self.0.revoke_token(id)
    }
    fn append_audit(&self, e: &NewAuditEntry) -> Result<i64> {
        self.0.append_audit(e)
    }
    fn append_audits(&self, e: &[NewAuditEntry]) -> Result<()> {
        self.0.append_audits(e)
    }
    fn audit_entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        self.0.audit_entries(after, limit)
    }
    fn store_batch(&self, b: &st::NewBatch) -> Result<vigil_model::wire::BatchAck> {
        self.0.store_batch(b)
    }
    fn kept_reading_before(
        &self,
        k: &st::SeriesKey,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<st::StoredReading>> {
        self.0.kept_reading_before(k, at)
    }
    fn readings(&self, q: &st::ReadingQuery) -> Result<Vec<st::StoredReading>> {
        self.0.readings(q)
    }
    fn store_alert(&self, a: &st::NewAlert, c: bool) -> Result<bool> {
        self.0.store_alert(a, c)
    }
    fn alerts_for(
        &self,
        p: &[i64],
        since: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<st::StoredAlert>> {
        self.0.alerts_for(p, since, limit)
    }
    fn alert_patients(&self, id: &str) -> Result<Vec<i64>> {
        self.0.alert_patients(id)
    }
    fn ack_alert(
        &self,
        p: i64,
        id: &str,
        tok: i64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        self.0.ack_alert(p, id, tok, at)
    }
    fn alert_acks(&self, p: i64, id: &str) -> Result<Vec<st::AlertAckRecord>> {
        self.0.alert_acks(p, id)
    }
    fn store_heartbeat(&self, h: &st::NewHeartbeat) -> Result<()> {
        self.0.store_heartbeat(h)
    }
    fn record_contact(&self, p: i64, at: chrono::DateTime<chrono::Utc>) -> Result<()> {
        self.0.record_contact(p, at)
    }
    fn latest_heartbeat(&self, p: i64) -> Result<Option<st::NewHeartbeat>> {
        self.0.latest_heartbeat(p)
    }
    fn contacts(&self) -> Result<Vec<st::Contact>> {
        self.0.contacts()
    }
    fn set_silence(&self, p: i64, e: Option<&str>, s: Option<&st::Silence>) -> Result<bool> {
        self.0.set_silence(p, e, s)
    }
    fn create_session(
        &self,
        h: &TokenHash,
        token: i64,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        self.0.create_session(h, token, expires_at)
    }
    fn session_token(
        &self,
        h: &TokenHash,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<TokenRecord>> {
        self.0.session_token(h, now)
    }
    fn delete_session(&self, h: &TokenHash, now: chrono::DateTime<chrono::Utc>) -> Result<bool> {
        self.0.delete_session(h, now)
    }
    fn end_clinician_sessions(&self, c: i64) -> Result<u64> {
        self.0.end_clinician_sessions(c)
    }
    fn set_nightscout_secret(&self, p: i64, h: &vigil_ingest::domain::SecretHash) -> Result<()> {
        self.0.set_nightscout_secret(p, h)
    }
    fn nightscout_patient(&self, h: &vigil_ingest::domain::SecretHash) -> Result<Option<i64>> {
        self.0.nightscout_patient(h)
    }
    fn delete_readings(
        &self,
        p: i64,
        d: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.0.delete_readings(p, d, from, to)
    }
    fn glucose_days(&self, scope: st::DayScope, from: i64, to: i64) -> Result<Vec<st::GlucoseDay>> {
        self.0.glucose_days(scope, from, to)
    }
    fn stale_glucose_days(
        &self,
        scope: st::DayScope,
        from: i64,
        to: i64,
    ) -> Result<Vec<st::StaleDay>> {
        self.0.stale_glucose_days(scope, from, to)
    }
    fn put_glucose_day(
        &self,
        p: i64,
        day: i64,
        generation: i64,
        c: &st::DayCounts,
    ) -> Result<bool> {
        self.0.put_glucose_day(p, day, generation, c)
    }
    fn add_webhook(&self, h: &domain::NewWebhook) -> Result<i64> {
        self.0.add_webhook(h)
    }
    fn webhooks(&self) -> Result<Vec<domain::Webhook>> {
        self.0.webhooks()
    }
    fn enqueue_webhook_event(
        &self,
        k: domain::EventKind,
        b: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.0.enqueue_webhook_event(k, b, at)
    }
    fn due_webhook_deliveries(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<domain::DueDelivery>> {
        self.0.due_webhook_deliveries(now, limit)
    }
    fn record_webhook_attempt(&self, id: i64, a: &domain::Attempt) -> Result<()> {
        self.0.record_webhook_attempt(id, a)
    }
    fn webhook_deliveries(&self, w: i64) -> Result<Vec<domain::DeliveryLog>> {
        self.0.webhook_deliveries(w)
    }
}

use vigil_ingest::storage as st;

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

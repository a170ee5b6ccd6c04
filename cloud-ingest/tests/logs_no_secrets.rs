//! No secret and no patient data in logs: every log line the service emits
//! at TRACE level, through every auth outcome and an internal error, is
//! captured and searched. One test per binary because the capture is the
//! process-wide subscriber (storage calls log from the blocking pool).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use common::{FOREIGN_NAME, Fixture, OWN_NAME, Who};
use tower::ServiceExt;
use vigil_ingest::domain;
use vigil_ingest::rate_limit::RateLimit;
use vigil_ingest::storage::Store;
use vigil_ingest::{Limits, ServiceState, app};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A storage whose every call fails, to drive the internal-error path.
struct Broken;

use vigil_ingest::storage as st;

impl vigil_ingest::storage::Storage for Broken {
    fn ping(&self) -> vigil_ingest::Result<()> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn schema_version(&self) -> vigil_ingest::Result<u32> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn add_patient(&self, _: &str) -> vigil_ingest::Result<i64> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn patient(&self, _: i64) -> vigil_ingest::Result<Option<vigil_ingest::domain::Patient>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn set_patient_time_zone(&self, _: i64, _: &str) -> vigil_ingest::Result<bool> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn precedence_policy(&self, _: i64, _: &str) -> vigil_ingest::Result<Option<String>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn set_precedence_policy(
        &self,
        _: i64,
        _: &str,
        _: &str,
        _: Option<i64>,
        _: chrono::DateTime<chrono::Utc>,
    ) -> vigil_ingest::Result<bool> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn store_ns_documents(
        &self,
        _: i64,
        _: &str,
        _: &[vigil_ingest::domain::NsDocument],
    ) -> vigil_ingest::Result<u64> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn ns_documents(
        &self,
        _: i64,
        _: &str,
        _: chrono::DateTime<chrono::Utc>,
        _: chrono::DateTime<chrono::Utc>,
        _: u32,
    ) -> vigil_ingest::Result<Vec<vigil_ingest::domain::NsDocument>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn add_clinician(&self, _: &str) -> vigil_ingest::Result<i64> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn clinician_by_name(&self, _: &str) -> vigil_ingest::Result<Option<i64>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn assign(&self, _: i64, _: i64) -> vigil_ingest::Result<()> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn assigned_patients(
        &self,
        _: i64,
    ) -> vigil_ingest::Result<Vec<vigil_ingest::domain::Patient>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn is_assigned(&self, _: i64, _: i64) -> vigil_ingest::Result<bool> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn clinician_unit(&self, _: i64) -> vigil_ingest::Result<String> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn set_clinician_unit(&self, _: i64, _: &str) -> vigil_ingest::Result<()> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn insert_token(&self, _: &vigil_ingest::domain::NewToken) -> vigil_ingest::Result<i64> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn token_by_hash(
        &self,
        _: &vigil_ingest::domain::TokenHash,
    ) -> vigil_ingest::Result<Option<vigil_ingest::domain::TokenRecord>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn revoke_token(&self, _: i64) -> vigil_ingest::Result<bool> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn append_audit(&self, _: &vigil_ingest::domain::NewAuditEntry) -> vigil_ingest::Result<i64> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn append_audits(&self, _: &[vigil_ingest::domain::NewAuditEntry]) -> vigil_ingest::Result<()> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn audit_entries(
        &self,
        _: i64,
        _: u32,
    ) -> vigil_ingest::Result<Vec<vigil_ingest::domain::AuditEntry>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn store_batch(&self, _: &st::NewBatch) -> vigil_ingest::Result<vigil_model::wire::BatchAck> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn kept_reading_before(
        &self,
        _: &st::SeriesKey,
        _: chrono::DateTime<chrono::Utc>,
    ) -> vigil_ingest::Result<Option<st::StoredReading>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn readings(&self, _: &st::ReadingQuery) -> vigil_ingest::Result<Vec<st::StoredReading>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn store_alert(&self, _: &st::NewAlert, _: bool) -> vigil_ingest::Result<bool> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn alerts_for(
        &self,
        _: &[i64],
        _: chrono::DateTime<chrono::Utc>,
        _: u32,
    ) -> vigil_ingest::Result<Vec<st::StoredAlert>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn alert_patients(&self, _: &str) -> vigil_ingest::Result<Vec<i64>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn ack_alert(
        &self,
        _: i64,
        _: &str,
        _: i64,
        _: chrono::DateTime<chrono::Utc>,
    ) -> vigil_ingest::Result<bool> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn alert_acks(&self, _: i64, _: &str) -> vigil_ingest::Result<Vec<st::AlertAckRecord>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn store_heartbeat(&self, _: &st::NewHeartbeat) -> vigil_ingest::Result<()> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn record_contact(&self, _: i64, _: chrono::DateTime<chrono::Utc>) -> vigil_ingest::Result<()> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn latest_heartbeat(&self, _: i64) -> vigil_ingest::Result<Option<st::NewHeartbeat>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn contacts(&self) -> vigil_ingest::Result<Vec<st::Contact>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn set_silence(
        &self,
        _: i64,
        _: Option<&str>,
        _: Option<&st::Silence>,
    ) -> vigil_ingest::Result<bool> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn create_session(
        &self,
        _: &vigil_ingest::domain::TokenHash,
        _: i64,
        _: chrono::DateTime<chrono::Utc>,
    ) -> vigil_ingest::Result<()> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn session_token(
        &self,
        _: &vigil_ingest::domain::TokenHash,
        _: chrono::DateTime<chrono::Utc>,
    ) -> vigil_ingest::Result<Option<vigil_ingest::domain::TokenRecord>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn delete_session(
        &self,
        _: &vigil_ingest::domain::TokenHash,
        _: chrono::DateTime<chrono::Utc>,
    ) -> vigil_ingest::Result<bool> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn end_clinician_sessions(&self, _: i64) -> vigil_ingest::Result<u64> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn set_nightscout_secret(
        &self,
        _: i64,
        _: &vigil_ingest::domain::SecretHash,
    ) -> vigil_ingest::Result<()> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn nightscout_patient(
        &self,
        _: &vigil_ingest::domain::SecretHash,
    ) -> vigil_ingest::Result<Option<i64>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn delete_readings(
        &self,
        _: i64,
        _: &str,
        _: chrono::DateTime<chrono::Utc>,
        _: chrono::DateTime<chrono::Utc>,
    ) -> vigil_ingest::Result<u64> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn glucose_days(
        &self,
        _: st::DayScope,
        _: i64,
        _: i64,
    ) -> vigil_ingest::Result<Vec<st::GlucoseDay>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn stale_glucose_days(
        &self,
        _: st::DayScope,
        _: i64,
        _: i64,
    ) -> vigil_ingest::Result<Vec<st::StaleDay>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn put_glucose_day(
        &self,
        _: i64,
        _: i64,
        _: i64,
        _: &st::DayCounts,
    ) -> vigil_ingest::Result<bool> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn add_webhook(&self, _: &domain::NewWebhook) -> vigil_ingest::Result<i64> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn webhooks(&self) -> vigil_ingest::Result<Vec<domain::Webhook>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn enqueue_webhook_event(
        &self,
        _: domain::EventKind,
        _: &str,
        _: chrono::DateTime<chrono::Utc>,
    ) -> vigil_ingest::Result<u64> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn due_webhook_deliveries(
        &self,
        _: chrono::DateTime<chrono::Utc>,
        _: u32,
    ) -> vigil_ingest::Result<Vec<domain::DueDelivery>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn record_webhook_attempt(&self, _: i64, _: &domain::Attempt) -> vigil_ingest::Result<()> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn webhook_deliveries(&self, _: i64) -> vigil_ingest::Result<Vec<domain::DeliveryLog>> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
}

async fn call(state: &ServiceState, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = Request::get(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app(state.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_a_token_secret_or_a_patient_name() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let fx = Fixture::new();
    let state = fx.state(Limits {
        rate: RateLimit {
            per_second: 0.0,
            burst: 3,
        },
        ..Limits::default()
    });
    for who in Who::ALL {
        let token = fx.token(who);
        call(&state, "/v1/patients", token.as_deref()).await;
        call(&state, "/v1/audit", token.as_deref()).await;
    }
    // Spend the device's budget so the rate-limit path logs too.
    let mut limited = false;
    for _ in 0..5 {
        limited |= call(&state, "/v1/patients", Some(&fx.device)).await.0 == 429;
    }
    assert!(limited);

    // Internal errors are logged, and answered without their text.
    let broken = ServiceState::new(Store::new(Broken), Limits::default());
    let (status, body) = call(&broken, "/v1/patients", Some(&fx.clinician)).await;
    assert_eq!(status, 500);
    assert!(!body.contains("InvalidQuery") && !body.to_lowercase().contains("query"));
    let (status, _) = call(&broken, "/readyz", None).await;
    assert_eq!(status, 500);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The capture works and saw the interesting paths, so the absence
    // checks below are meaningful.
    assert!(logs.contains("authentication failed"), "{logs}");
    assert!(logs.contains("rate limited"), "{logs}");
    assert!(logs.contains("internal error"), "{logs}");
    let bad = fx.token(Who::BadToken).unwrap();
    let mut secrets: Vec<&str> = fx.secrets();
    secrets.push(&bad);
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret is in the logs");
        assert!(
            !logs.contains(&secret[6..]),
            "a secret's hex is in the logs"
        );
    }
    assert!(!logs.contains(OWN_NAME) && !logs.contains(FOREIGN_NAME));
}

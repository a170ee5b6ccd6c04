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

impl vigil_ingest::storage::Storage for Broken {
    fn ping(&self) -> vigil_ingest::Result<()> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
    fn schema_version(&self) -> vigil_ingest::Result<u32> {
        Err(rusqlite::Error::InvalidQuery.into())
    }
}

/// Every other call fails too.
mod broken {
    use super::Broken;
    use chrono::{DateTime, Utc};
    use vigil_ingest::Result;
    use vigil_ingest::domain::*;
    use vigil_ingest::storage::rules::{TokenRow, Written};
    use vigil_ingest::storage::*;

    impl Directory for Broken {
        fn insert_patient_row(&self, _: &str) -> Result<PatientId> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn patient(&self, _: PatientId) -> Result<Option<Patient>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn set_patient_time_zone(&self, _: PatientId, _: &str) -> Result<bool> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn insert_clinician_row(&self, _: &str) -> Result<Written<ClinicianId>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn clinician_by_name(&self, _: &str) -> Result<Option<ClinicianId>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn insert_assignment_row(&self, _: ClinicianId, _: PatientId) -> Result<Written> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn assigned_patients(&self, _: ClinicianId) -> Result<Vec<Patient>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn is_assigned(&self, _: ClinicianId, _: PatientId) -> Result<bool> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn clinician_unit_row(&self, _: ClinicianId) -> Result<Option<String>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn update_clinician_unit_row(&self, _: ClinicianId, _: &str) -> Result<bool> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn insert_token_row(
            &self,
            _: &NewToken,
            _: Option<PatientId>,
            _: Option<ClinicianId>,
        ) -> Result<Written<TokenId>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn token_row(&self, _: &TokenHash) -> Result<Option<TokenRow>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn revoke_token(&self, _: TokenId) -> Result<bool> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn insert_session_row(
            &self,
            _: &TokenHash,
            _: TokenId,
            _: DateTime<Utc>,
        ) -> Result<Written> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn session_token_row(&self, _: &TokenHash, _: DateTime<Utc>) -> Result<Option<TokenRow>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn delete_session(&self, _: &TokenHash, _: DateTime<Utc>) -> Result<bool> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn end_clinician_sessions(&self, _: ClinicianId) -> Result<u64> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn upsert_nightscout_secret_row(&self, _: PatientId, _: &SecretHash) -> Result<Written> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn nightscout_patient(&self, _: &SecretHash) -> Result<Option<PatientId>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
    }

    impl Audit for Broken {
        fn insert_audit_row(&self, _: &NewAuditEntry) -> Result<i64> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn insert_audit_rows(&self, _: &[NewAuditEntry]) -> Result<()> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn audit_entries(&self, _: i64, _: u32) -> Result<Vec<AuditEntry>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
    }

    impl Readings for Broken {
        fn store_batch(&self, _: &NewBatch) -> Result<vigil_model::wire::BatchAck> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn kept_reading_before(
            &self,
            _: &SeriesKey,
            _: DateTime<Utc>,
        ) -> Result<Option<StoredReading>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn sequences_between(
            &self,
            _: &SeriesKey,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<Vec<(DateTime<Utc>, u64)>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn readings(&self, _: &ReadingQuery) -> Result<Vec<StoredReading>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn delete_readings(
            &self,
            _: PatientId,
            _: &str,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<u64> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn precedence_policy(&self, _: PatientId, _: &str) -> Result<Option<String>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn set_precedence_policy(
            &self,
            _: PatientId,
            _: &str,
            _: &str,
            _: Option<TokenId>,
            _: DateTime<Utc>,
        ) -> Result<bool> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn store_ns_documents(&self, _: PatientId, _: &str, _: &[NsDocument]) -> Result<u64> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn ns_documents(
            &self,
            _: PatientId,
            _: &str,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
            _: u32,
        ) -> Result<Vec<NsDocument>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn glucose_days(&self, _: DayScope, _: i64, _: i64) -> Result<Vec<GlucoseDay>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn stale_glucose_days(&self, _: DayScope, _: i64, _: i64) -> Result<Vec<StaleDay>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn put_glucose_day(
            &self,
            _: PatientId,
            _: i64,
            _: i64,
            _: &DayCounts,
            _: &DayTail,
        ) -> Result<bool> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
    }

    impl Alerts for Broken {
        fn store_alert(&self, _: &NewAlert, _: bool) -> Result<bool> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn alerts_for(
            &self,
            _: &[PatientId],
            _: DateTime<Utc>,
            _: u32,
        ) -> Result<Vec<StoredAlert>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn alert_patients(&self, _: &str) -> Result<Vec<PatientId>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn ack_alert(&self, _: PatientId, _: &str, _: TokenId, _: DateTime<Utc>) -> Result<bool> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn alert_acks(&self, _: PatientId, _: &str) -> Result<Vec<AlertAckRecord>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn store_heartbeat(&self, _: &NewHeartbeat) -> Result<()> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn record_contact(&self, _: PatientId, _: DateTime<Utc>) -> Result<()> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn latest_heartbeat(&self, _: PatientId) -> Result<Option<NewHeartbeat>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn contacts(&self) -> Result<Vec<Contact>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn set_silence(&self, _: PatientId, _: Option<&str>, _: Option<&Silence>) -> Result<bool> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
    }

    impl Webhooks for Broken {
        fn insert_webhook_row(&self, _: &NewWebhook) -> Result<WebhookId> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn webhooks(&self) -> Result<Vec<Webhook>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn enqueue_webhook_event(&self, _: EventKind, _: &str, _: DateTime<Utc>) -> Result<u64> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn due_webhook_deliveries(&self, _: DateTime<Utc>, _: u32) -> Result<Vec<DueDelivery>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn update_webhook_delivery_row(&self, _: DeliveryId, _: &Attempt) -> Result<bool> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
        fn webhook_deliveries(&self, _: WebhookId) -> Result<Vec<DeliveryLog>> {
            Err(rusqlite::Error::InvalidQuery.into())
        }
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

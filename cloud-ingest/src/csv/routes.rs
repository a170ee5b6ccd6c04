//! CSV export and import of a patient's glucose, in the `time,glucose_mgdl`
//! shape the `vigil` CLI reads.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::ServiceState;
use crate::access::{PatientAccess, Read, Write};
use crate::auth::Principal;
use crate::domain::PatientId;
use crate::error::{Error, Result};
use crate::{csv, glucose};

/// The device name imported readings are stored under.
pub const DEVICE: &str = "csv-import";

/// Query of the CSV export.
#[derive(Debug, Deserialize)]
pub struct Period {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// `GET /v1/patients/{id}/readings.csv?from=&to=`: glucose of the period
/// (default the last 14 days, at most 90), oldest first. Audited.
pub async fn export(
    State(state): State<ServiceState>,
    who: Principal,
    Path(id): Path<PatientId>,
    q: std::result::Result<Query<Period>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let Query(q) = q.map_err(|_| Error::InvalidInput(crate::error::UNREADABLE_QUERY.into()))?;
    let (from, to) = crate::query::period(q.from, q.to)?;
    let points = state
        .store
        .run(move |s| {
            PatientAccess::<Read>::open(s, &who, id, "readings.csv.read")?.points(s, from, to)
        })
        .await?;
    let mut r = csv::export(&glucose::samples(&points)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"readings.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `POST /v1/patients/{id}/readings.csv`: imports a whole file (device
/// token of the patient, or an assigned clinician). Any bad row: 400
/// listing every bad row, nothing stored.
pub async fn import(
    State(state): State<ServiceState>,
    who: Principal,
    Path(id): Path<PatientId>,
    body: Bytes,
) -> Result<Response> {
    // Access first, so a foreign patient learns nothing from parse errors.
    let access = state
        .store
        .run(move |s| PatientAccess::<Write>::open(s, &who, id, "readings.csv.import"))
        .await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| Error::InvalidInput("the CSV file is not UTF-8".into()))?;
    let samples = csv::import(text, chrono::Utc::now(), state.limits.max_future_skew)?;
    let n = samples.len();
    let ack = state
        .store
        .run(move |s| access.store_glucose(s, DEVICE, &samples))
        .await?;
    let rejected: usize = ack.streams.iter().map(|s| s.rejected.len()).sum();
    Ok(
        axum::Json(json!({"rows": n, "stored": n - rejected, "conflicts": rejected}))
            .into_response(),
    )
}

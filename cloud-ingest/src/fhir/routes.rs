//! FHIR R4 endpoints (clinician or follower tokens): the CGM IG's
//! data-point search, its period summary, and the Patient and Device
//! resources the Observations reference. Every call is audited.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::ServiceState;
use crate::access::{PatientAccess, Read};
use crate::auth::Principal;
use crate::domain::PatientId;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::validate::shift;
use crate::{fhir, glucose, query};

fn fhir_json(v: Value) -> Response {
    let mut r = Json(v).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    r
}

/// The FHIR base from the configured public URL (never the Host header,
/// which the client chooses).
fn base(state: &ServiceState) -> String {
    format!("{}/fhir", state.public_url)
}

fn reader(who: &Principal) -> Result<()> {
    match who.role {
        Role::Clinician | Role::Follower => Ok(()),
        _ => Err(Error::Forbidden(
            "FHIR reads are for clinician and follower tokens",
        )),
    }
}

/// A FHIR date or dateTime: `2026-03-01` or RFC 3339.
fn instant(s: &str) -> Result<DateTime<Utc>> {
    crate::query::instant(s)
        .ok_or_else(|| Error::InvalidInput("a date is not a FHIR date or dateTime".into()))
}

/// Opens the gate for `who` to read `patient` (audited as `action`).
async fn audited(
    state: &ServiceState,
    who: Principal,
    patient: PatientId,
    action: &'static str,
) -> Result<PatientAccess<Read>> {
    state
        .store
        .run(move |s| PatientAccess::open(s, &who, patient, action))
        .await
}

/// `GET /fhir/Observation?patient=<id>&date=ge…&date=le…`: a searchset of
/// the IG's sensor-reading Observations, Patient and Devices included.
pub async fn observations(
    State(state): State<ServiceState>,
    who: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    reader(&who)?;
    let mut patient = None;
    let (mut from, mut to) = (None, None);
    for (k, v) in query::pairs(raw.as_deref())? {
        match k.as_str() {
            "patient" | "subject" => {
                let id = v.trim_start_matches("Patient/");
                patient =
                    Some(id.parse::<PatientId>().map_err(|_| {
                        Error::InvalidInput("`patient` is not a patient id".into())
                    })?);
            }
            "date" => {
                if let Some(x) = v.strip_prefix("ge") {
                    from = Some(instant(x)?);
                } else if let Some(x) = v.strip_prefix("gt") {
                    from = Some(shift(instant(x)?, TimeDelta::milliseconds(1), "date")?);
                } else if let Some(x) = v.strip_prefix("le") {
                    to = Some(shift(instant(x)?, TimeDelta::milliseconds(1), "date")?);
                } else if let Some(x) = v.strip_prefix("lt") {
                    to = Some(instant(x)?);
                } else {
                    return Err(Error::InvalidInput(
                        "`date` takes a ge, gt, le or lt prefix".into(),
                    ));
                }
            }
            "code"
                if v != fhir::LOINC_CGM_MG_DL
                    && v != format!("{}|{}", fhir::LOINC, fhir::LOINC_CGM_MG_DL) =>
            {
                return Err(Error::InvalidInput("only code 99504-3 is served".into()));
            }
            _ => {}
        }
    }
    let patient = patient.ok_or_else(|| Error::InvalidInput("`patient` is required".into()))?;
    let to = to.unwrap_or_else(Utc::now);
    let from = match from {
        Some(from) => from,
        None => shift(to, -TimeDelta::days(14), "date")?,
    };
    if from >= to || to.signed_duration_since(from) > TimeDelta::days(90) {
        return Err(Error::InvalidInput(
            "the date range must be ascending and at most 90 days".into(),
        ));
    }
    let access = audited(&state, who, patient, "fhir.observations.read").await?;
    let points = state.store.run(move |s| access.points(s, from, to)).await?;
    Ok(fhir_json(fhir::observation_bundle(
        &base(&state),
        patient,
        &points,
        from,
        to,
    )))
}

/// `GET /fhir/Patient/{id}/$cgm-summary?start=&end=`: the IG's summary
/// measures of the period (default the last 14 days).
pub async fn summary(
    State(state): State<ServiceState>,
    who: Principal,
    Path(patient): Path<PatientId>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    reader(&who)?;
    let (mut start, mut end) = (None, None);
    for (k, v) in query::pairs(raw.as_deref())? {
        match k.as_str() {
            "start" => start = Some(instant(&v)?),
            "end" => end = Some(instant(&v)?),
            _ => {}
        }
    }
    let end = end.unwrap_or_else(Utc::now);
    let start = match start {
        Some(start) => start,
        None => shift(end, -TimeDelta::days(14), "end")?,
    };
    if start >= end || end.signed_duration_since(start) > TimeDelta::days(90) {
        return Err(Error::InvalidInput(
            "the period must be ascending and at most 90 days".into(),
        ));
    }
    let access = audited(&state, who, patient, "fhir.summary.read").await?;
    let points = state
        .store
        .run(move |s| access.points(s, start, end))
        .await?;
    let m = glucose::period_metrics(&glucose::samples(&points))?;
    let mut devices: Vec<String> = points.iter().map(|p| p.device.clone()).collect();
    devices.sort();
    devices.dedup();
    Ok(fhir_json(fhir::summary_bundle(
        &base(&state),
        patient,
        start,
        end,
        &m,
        &devices,
    )))
}

/// `GET /fhir/Patient/{id}`.
pub async fn patient(
    State(state): State<ServiceState>,
    who: Principal,
    Path(id): Path<PatientId>,
) -> Result<Response> {
    reader(&who)?;
    let access = audited(&state, who, id, "fhir.patient.read").await?;
    Ok(fhir_json(fhir::patient(access.patient())))
}

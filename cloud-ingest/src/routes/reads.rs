//! Patient data reads (readings, metrics), alert acknowledgement, and the
//! live alert stream. Every read of patient data is audited first.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::Stream as FutStream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use vigil_core::metrics::{GlucoseMetrics, consensus_metrics};
use vigil_core::model::{Sample, Stream};

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{Error, Result};
use crate::live::LiveEvent;
use crate::storage::{NewAuditEntry, PatientId, ReadingQuery, StoredReading, TokenScope};

/// Largest page of readings one request returns.
pub const MAX_READINGS: u32 = 100_000;
/// Most glucose readings the metrics of one request cover (a year at
/// 5-minute sampling fits).
pub const MAX_METRIC_READINGS: u32 = 200_000;
/// Sampling interval assumed for the consensus metrics' active time.
pub const CGM_INTERVAL: TimeDelta = TimeDelta::minutes(5);

/// Query of the readings endpoint.
#[derive(Debug, Deserialize)]
pub struct ReadingsParams {
    stream: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<u32>,
}

/// Query of the metrics endpoint.
#[derive(Debug, Deserialize)]
pub struct RangeParams {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// Body of the readings endpoint.
#[derive(Debug, Serialize)]
pub struct ReadingsView {
    /// The readings, by time.
    pub readings: Vec<StoredReading>,
}

/// The default period: the last 24 hours up to now.
fn range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - TimeDelta::days(1));
    if from > to {
        return Err(Error::InvalidInput("`from` is after `to`".into()));
    }
    Ok((from, to))
}

fn audit(
    s: &dyn crate::storage::Storage,
    who: &Principal,
    p: PatientId,
    action: &str,
) -> Result<()> {
    s.append_audit(&NewAuditEntry {
        token_id: Some(who.token_id),
        patient_id: Some(p),
        action: action.into(),
    })?;
    Ok(())
}

/// `GET /v1/patients/{id}/readings?stream=&from=&to=&limit=`.
pub async fn readings(
    State(state): State<AppState>,
    who: Principal,
    Path(patient): Path<PatientId>,
    q: std::result::Result<Query<ReadingsParams>, QueryRejection>,
) -> Result<Json<ReadingsView>> {
    let Query(q) = q.map_err(|e| Error::InvalidInput(e.body_text()))?;
    let stream = match q.stream.as_deref() {
        None | Some("") => None,
        Some(name) => Some(
            Stream::parse(name)
                .ok_or_else(|| Error::InvalidInput(format!("unknown stream `{name}`")))?,
        ),
    };
    let (from, to) = range(q.from, q.to)?;
    let query = ReadingQuery {
        patient,
        stream,
        from,
        to,
        limit: q.limit.unwrap_or(MAX_READINGS).min(MAX_READINGS),
    };
    let readings = state
        .store
        .run(move |s| {
            who.check_patient(s, patient)?;
            audit(s, &who, patient, "readings.read")?;
            s.readings(&query)
        })
        .await?;
    Ok(Json(ReadingsView { readings }))
}

/// `GET /v1/patients/{id}/metrics?from=&to=`: the core's consensus metrics
/// over stored glucose, held-back readings as reconstructed.
pub async fn metrics(
    State(state): State<AppState>,
    who: Principal,
    Path(patient): Path<PatientId>,
    q: std::result::Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<GlucoseMetrics>> {
    let Query(q) = q.map_err(|e| Error::InvalidInput(e.body_text()))?;
    let (from, to) = range(q.from, q.to)?;
    let readings = state
        .store
        .run(move |s| {
            who.check_patient(s, patient)?;
            audit(s, &who, patient, "metrics.read")?;
            s.readings(&ReadingQuery {
                patient,
                stream: Some(Stream::Glucose),
                from,
                to,
                limit: MAX_METRIC_READINGS,
            })
        })
        .await?;
    if readings.is_empty() {
        return Err(Error::NotFound("no glucose readings in that period".into()));
    }
    let samples: Vec<Sample> = readings
        .iter()
        .map(|r| Sample {
            time: r.time,
            value: r.value,
        })
        .collect();
    consensus_metrics(&samples, CGM_INTERVAL)
        .map(Json)
        .map_err(|e| Error::InvalidInput(e.to_string()))
}

/// Body of an acknowledgement.
#[derive(Debug, Serialize)]
pub struct AckView {
    /// The episode acknowledged.
    pub alert_id: String,
    /// Whose.
    pub patient: PatientId,
    /// When this token acknowledged it (now, or its earlier ack).
    pub acknowledged_at: DateTime<Utc>,
    /// False when this token had acknowledged it before.
    pub new: bool,
}

/// `POST /v1/alerts/{id}/ack`: a clinician of an assigned patient
/// acknowledges an alert episode; recorded once per clinician token and
/// broadcast live.
pub async fn ack(
    State(state): State<AppState>,
    who: Principal,
    Path(alert_id): Path<String>,
) -> Result<Json<AckView>> {
    let TokenScope::Clinician(clinician) = who.scope else {
        return Err(Error::Forbidden("clinician token required"));
    };
    let now = Utc::now();
    let id = alert_id.clone();
    let (patient, new, at, kind) = state
        .store
        .run(move |s| {
            let patients = s.alert_patients(&id)?;
            if patients.is_empty() {
                return Err(Error::NotFound("no such alert".into()));
            }
            let mut mine = None;
            for p in patients {
                if s.is_assigned(clinician, p)? {
                    mine = Some(p);
                    break;
                }
            }
            let patient = mine.ok_or(Error::Forbidden("patient outside this token's scope"))?;
            let new = s.ack_alert(patient, &id, who.token_id, now)?;
            audit(s, &who, patient, "alerts.ack")?;
            let at = s
                .alert_acks(patient, &id)?
                .into_iter()
                .find(|a| a.token_id == who.token_id)
                .map_or(now, |a| a.at);
            let kind = s
                .alerts_for(&[patient], DateTime::<Utc>::MIN_UTC, u32::MAX)?
                .into_iter()
                .find(|a| a.alert.alert_id == id)
                .map(|a| a.alert.kind)
                .unwrap_or_default();
            Ok((patient, new, at, kind))
        })
        .await?;
    if new {
        let event = LiveEvent {
            event: "ack".into(),
            patient,
            alert_id: alert_id.clone(),
            kind,
            phase: "ack".into(),
            time: at,
            value: None,
            by_token: Some(who.token_id),
        };
        if let Err(e) = state.fanout.publish(&event) {
            tracing::error!(error = %e, "live fan-out failed");
        }
        crate::webhooks::dispatch::alert_to_webhooks(&state, &event).await;
    }
    Ok(Json(AckView {
        alert_id,
        patient,
        acknowledged_at: at,
        new,
    }))
}

/// `GET /v1/alerts/stream`: server-sent events (`alert`, `ack`) for the
/// token's patients: a clinician's assigned patients (as assigned when the
/// stream opens), a follower's one patient. Devices and admins: 403.
pub async fn stream(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Sse<impl FutStream<Item = std::result::Result<Event, Infallible>>>> {
    // Subscribe before reading the scope, so nothing published meanwhile
    // is missed.
    let rx = state.bus.subscribe();
    let patients: HashSet<PatientId> = state
        .store
        .run(move |s| {
            let patients: Vec<PatientId> = match (who.role, who.scope) {
                (Role::Follower, TokenScope::Patient(p)) => vec![p],
                (Role::Clinician, TokenScope::Clinician(c)) => {
                    s.assigned_patients(c)?.into_iter().map(|p| p.id).collect()
                }
                _ => return Err(Error::Forbidden("clinician or follower token required")),
            };
            for p in &patients {
                audit(s, &who, *p, "alerts.stream")?;
            }
            Ok(patients.into_iter().collect())
        })
        .await?;
    let events = futures_util::stream::unfold((rx, patients), |(mut rx, patients)| async move {
        loop {
            match rx.recv().await {
                Ok(e) if patients.contains(&e.patient) => {
                    let data = serde_json::to_string(&e).unwrap_or_default();
                    let ev = Event::default().event(e.event.clone()).data(data);
                    return Some((Ok(ev), (rx, patients)));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => {
                    let ev = Event::default().event("lagged").data(n.to_string());
                    return Some((Ok(ev), (rx, patients)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

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
use vigil_model::metrics::GlucoseMetrics;
use vigil_model::precedence::{Decision, Quantity};
use vigil_model::reading::Stream;

use crate::ServiceState;
use crate::access::{PatientAccess, Read};
use crate::auth::Principal;
use crate::domain::Role;
use crate::domain::{PatientId, TokenScope};
use crate::error::{Error, Result};
use crate::live::LiveEvent;
use crate::resolved;
use crate::storage::{ReadingQuery, StoredReading};

/// Largest page of readings one request returns.
pub const MAX_READINGS: u32 = 100_000;

/// Query of the readings endpoint.
#[derive(Debug, Deserialize)]
pub struct ReadingsParams {
    stream: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<u32>,
    /// `false` returns every stored original of every source; the default
    /// is one resolved series per quantity.
    resolved: Option<bool>,
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
    let from = match from {
        Some(from) => from,
        None => crate::validate::shift(to, -TimeDelta::days(1), "to")?,
    };
    if from > to {
        return Err(Error::InvalidInput("`from` is after `to`".into()));
    }
    Ok((from, to))
}

/// `GET /v1/patients/{id}/readings?stream=&from=&to=&limit=`.
pub async fn readings(
    State(state): State<ServiceState>,
    who: Principal,
    Path(patient): Path<PatientId>,
    q: std::result::Result<Query<ReadingsParams>, QueryRejection>,
) -> Result<Json<ReadingsView>> {
    let Query(q) = q.map_err(|_| Error::InvalidInput(crate::error::UNREADABLE_QUERY.into()))?;
    let stream = match q.stream.as_deref() {
        None | Some("") => None,
        Some(name) => Some(
            Stream::parse(name)
                .ok_or_else(|| Error::InvalidInput("`stream` is not a known stream name".into()))?,
        ),
    };
    let (from, to) = range(q.from, q.to)?;
    let limit = q.limit.unwrap_or(MAX_READINGS).min(MAX_READINGS);
    let resolved = q.resolved.unwrap_or(true);
    let readings = state
        .store
        .run(move |s| {
            let access = PatientAccess::<Read>::open(s, &who, patient, "readings.read")?;
            let query = access.reading_query(stream, from, to, limit);
            if resolved {
                resolved_readings(s, &access, &query)
            } else {
                s.readings(&query)
            }
        })
        .await?;
    Ok(Json(ReadingsView { readings }))
}

/// The readings `query` names with each quantity resolved across its
/// sources: a stream that measures a quantity (glucose, heart rate, SpO2)
/// is resolved together with the quantity's other streams, then filtered
/// back to the stream asked for; the glucose trend, asked for by name, is
/// derived from the resolved glucose ([`derived_trend`]) and is left out
/// of the all-streams view (a derived series, not readings, and one row
/// per glucose reading that callers listing readings do not expect);
/// every other stream is returned as stored.
fn resolved_readings(
    s: &dyn crate::storage::Storage,
    access: &PatientAccess<Read>,
    query: &ReadingQuery,
) -> Result<Vec<StoredReading>> {
    let raw = match query.stream {
        // Derived below; the sensor rates older SDKs sent stay readable
        // with `resolved=false`.
        Some(Stream::GlucoseTrend) => Vec::new(),
        Some(stream) => match Quantity::of(stream) {
            None => return s.readings(query),
            Some(q) => {
                let mut rows = Vec::new();
                for sibling in q.streams() {
                    rows.extend(s.readings(&ReadingQuery {
                        stream: Some(*sibling),
                        ..query.clone()
                    })?);
                }
                rows
            }
        },
        None => {
            let mut rows = s.readings(query)?;
            rows.retain(|r| r.stream != Stream::GlucoseTrend);
            rows
        }
    };
    let mut by_quantity: std::collections::BTreeMap<Quantity, Vec<StoredReading>> =
        std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for r in raw {
        match Quantity::of(r.stream) {
            Some(q) => by_quantity.entry(q).or_default().push(r),
            None => out.push(r),
        }
    }
    for (q, rows) in by_quantity {
        let policy = access.policy(s, q)?;
        out.extend(resolved::resolve_rows(access.patient(), policy.config, rows)?.series);
    }
    if let Some(stream) = query.stream {
        out.retain(|r| r.stream == stream);
    }
    if query.stream == Some(Stream::GlucoseTrend) {
        out.extend(derived_trend(s, access, query)?);
    }
    out.sort_by(|a, b| {
        a.time
            .cmp(&b.time)
            .then_with(|| a.stream.as_str().cmp(b.stream.as_str()))
            .then_with(|| a.device.cmp(&b.device))
    });
    out.truncate(query.limit as usize);
    Ok(out)
}

/// The glucose trend of `query`'s period, derived from the resolved CGM
/// glucose by the shared rule ([`vigil_model::trend::rate_at`]: the
/// 15-minute least-squares slope, mg/dL per minute): one row per glucose
/// reading that has a rate, under that reading's device and time, with
/// the reading's time in ms as its sequence. The phone stopped sending the
/// sensor's own rate (issue 14), so this is the one trend every reader
/// sees, for new and old phones alike. The 15 minutes before `from` are
/// read so the first rows have a full window.
fn derived_trend(
    s: &dyn crate::storage::Storage,
    access: &PatientAccess<Read>,
    query: &ReadingQuery,
) -> Result<Vec<StoredReading>> {
    let lead_in = query
        .from
        .checked_sub_signed(vigil_model::trend::WINDOW)
        .unwrap_or(query.from);
    let points = access.points(s, lead_in, query.to)?;
    let samples = crate::glucose::samples(&points);
    Ok(points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.time >= query.from)
        .filter_map(|(i, p)| {
            let rate = vigil_model::trend::rate_at(&samples, i)?;
            Some(StoredReading {
                device: p.device.clone(),
                stream: Stream::GlucoseTrend,
                session: None,
                seq: u64::try_from(p.time.timestamp_millis()).unwrap_or(0),
                time: p.time,
                value: rate,
                quality_percent: None,
                quality_flagged: false,
                characteristic: crate::glucose::CGM_MEASUREMENT,
                tolerance: None,
                held_back: false,
            })
        })
        .collect())
}

/// Query of the precedence audit view.
#[derive(Debug, Deserialize)]
pub struct PrecedenceParams {
    quantity: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// Body of the precedence audit view.
#[derive(Debug, Serialize)]
pub struct PrecedenceView {
    /// The quantity resolved.
    pub quantity: Quantity,
    /// The policy in force.
    pub policy: resolved::Policy,
    /// Raw readings that took part.
    pub raw: usize,
    /// Moments in the resolved series.
    pub moments: usize,
    /// Which device stood for the patient when, and why.
    pub sources: Vec<resolved::SourcePeriod>,
    /// Every moment in which a reading was set aside: the winner, each
    /// overridden original (its value, device and sequence, so it can be
    /// fetched with `?resolved=false`) and the rule that set it aside.
    pub overridden: Vec<Decision>,
}

/// `GET /v1/patients/{id}/precedence?quantity=&from=&to=`: the audit view
/// of source precedence over a period (default the last 24 hours).
pub async fn precedence(
    State(state): State<ServiceState>,
    who: Principal,
    Path(patient): Path<PatientId>,
    q: std::result::Result<Query<PrecedenceParams>, QueryRejection>,
) -> Result<Json<PrecedenceView>> {
    let Query(q) = q.map_err(|_| Error::InvalidInput(crate::error::UNREADABLE_QUERY.into()))?;
    let quantity = resolved::quantity(q.quantity.as_deref().unwrap_or("glucose"))?;
    let (from, to) = range(q.from, q.to)?;
    state
        .store
        .run(move |s| {
            let access = PatientAccess::<Read>::open(s, &who, patient, "precedence.read")?;
            let policy = access.policy(s, quantity)?;
            let r = access.resolve(s, quantity, None, from, to)?;
            Ok(Json(PrecedenceView {
                quantity,
                policy,
                raw: r.raw,
                moments: r.series.len(),
                sources: resolved::periods(&r.decisions),
                overridden: r
                    .decisions
                    .into_iter()
                    .filter(|d| !d.losers.is_empty())
                    .collect(),
            }))
        })
        .await
}

/// Query naming a quantity.
#[derive(Debug, Deserialize)]
pub struct QuantityParam {
    quantity: Option<String>,
}

/// `GET /v1/patients/{id}/precedence-policy?quantity=`: the policy in force
/// (the patient's own, or the default with `"default": true`).
pub async fn get_policy(
    State(state): State<ServiceState>,
    who: Principal,
    Path(patient): Path<PatientId>,
    q: std::result::Result<Query<QuantityParam>, QueryRejection>,
) -> Result<Json<resolved::Policy>> {
    let Query(q) = q.map_err(|_| Error::InvalidInput(crate::error::UNREADABLE_QUERY.into()))?;
    let quantity = resolved::quantity(q.quantity.as_deref().unwrap_or("glucose"))?;
    state
        .store
        .run(move |s| {
            may_configure(s, &who, patient)?;
            who.audit(s, Some(patient), "precedence_policy.read")?;
            resolved::policy(s, patient, quantity).map(Json)
        })
        .await
}

/// `PUT /v1/patients/{id}/precedence-policy?quantity=`: an assigned
/// clinician or an admin sets the patient's policy (validated; a policy
/// that cannot mean anything is refused and nothing changes).
pub async fn put_policy(
    State(state): State<ServiceState>,
    who: Principal,
    Path(patient): Path<PatientId>,
    q: std::result::Result<Query<QuantityParam>, QueryRejection>,
    body: axum::body::Bytes,
) -> Result<Json<resolved::Policy>> {
    let Query(q) = q.map_err(|_| Error::InvalidInput(crate::error::UNREADABLE_QUERY.into()))?;
    let quantity = resolved::quantity(q.quantity.as_deref().unwrap_or("glucose"))?;
    state
        .store
        .run(move |s| {
            may_configure(s, &who, patient)?;
            let config = resolved::parse_policy(quantity, &body)?;
            let json = serde_json::to_string(&config)
                .map_err(|e| Error::Internal(format!("precedence policy: {e}")))?;
            if !s.set_precedence_policy(
                patient,
                quantity.as_str(),
                &json,
                Some(who.token_id),
                Utc::now(),
            )? {
                return Err(Error::NotFound("no such patient".into()));
            }
            who.audit(s, Some(patient), "precedence_policy.set")?;
            Ok(Json(resolved::Policy {
                config,
                default: false,
            }))
        })
        .await
}

/// Configuring precedence is clinical work: an assigned clinician, or an
/// admin (who configures but reads no patient data).
fn may_configure(
    s: &dyn crate::storage::Storage,
    who: &Principal,
    patient: PatientId,
) -> Result<()> {
    match who.scope {
        TokenScope::Admin => match s.patient(patient)? {
            Some(_) => Ok(()),
            None => Err(Error::NotFound("no such patient".into())),
        },
        TokenScope::Clinician(c) => {
            if s.is_assigned(c, patient)? {
                Ok(())
            } else {
                Err(Error::Forbidden("patient outside this token's scope"))
            }
        }
        TokenScope::Patient(_) => Err(Error::Forbidden(
            "a clinician or admin token is required to configure precedence",
        )),
    }
}

/// `GET /v1/patients/{id}/metrics?from=&to=`: the core's consensus metrics
/// over stored glucose, held-back readings as reconstructed.
pub async fn metrics(
    State(state): State<ServiceState>,
    who: Principal,
    Path(patient): Path<PatientId>,
    q: std::result::Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<GlucoseMetrics>> {
    let Query(q) = q.map_err(|_| Error::InvalidInput(crate::error::UNREADABLE_QUERY.into()))?;
    let (from, to) = range(q.from, q.to)?;
    let readings = state
        .store
        .run(move |s| {
            PatientAccess::<Read>::open(s, &who, patient, "metrics.read")?.points(s, from, to)
        })
        .await?;
    crate::glucose::period_metrics(&crate::glucose::samples(&readings)).map(Json)
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
    State(state): State<ServiceState>,
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
            // Another clinic's alert answers as a missing one: an alert id
            // proves nothing about who has it.
            let patient = mine.ok_or_else(|| Error::NotFound("no such alert".into()))?;
            let new = s.ack_alert(patient, &id, who.token_id, now)?;
            who.audit(s, Some(patient), "alerts.ack")?;
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
    State(state): State<ServiceState>,
    who: Principal,
    headers: axum::http::HeaderMap,
) -> Result<Sse<impl FutStream<Item = std::result::Result<Event, Infallible>>>> {
    // The extractor authenticated this very header, so it is present.
    let hash = crate::auth::bearer_hash(&headers).ok_or(Error::Unauthenticated)?;
    stream_while(state, who, Credential::Token(hash)).await
}

/// What a live stream was opened with, re-checked while it stays open.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A bearer token (its hash): the stream ends when it is revoked.
    Token(crate::domain::TokenHash),
    /// A dashboard session (its id's hash): the stream ends at sign-out,
    /// at expiry, or when the clinician's token is revoked.
    Session(crate::domain::TokenHash),
}

/// How often an open stream re-checks its credential: the longest a
/// revoked token, a signed-out or expired session keeps receiving.
pub const CREDENTIAL_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

async fn still_valid(state: &ServiceState, credential: &Credential) -> bool {
    let credential = credential.clone();
    let found = state
        .store
        .run(move |s| match &credential {
            Credential::Token(h) => s.token_by_hash(h),
            Credential::Session(h) => s.session_token(h, Utc::now()),
        })
        .await;
    // A failing database ends the stream too: the client reconnects and is
    // authenticated afresh.
    matches!(found, Ok(Some(record)) if record.revoked_at.is_none())
}

/// The live alert stream of `who`'s patients, ended once `credential`
/// no longer holds.
pub async fn stream_while(
    state: ServiceState,
    who: Principal,
    credential: Credential,
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
                who.audit(s, Some(*p), "alerts.stream")?;
            }
            Ok(patients.into_iter().collect())
        })
        .await?;
    let mut recheck = tokio::time::interval(CREDENTIAL_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let seed = (rx, patients, recheck, state, credential);
    let events = futures_util::stream::unfold(seed, |s| async move {
        let (mut rx, patients, mut recheck, state, credential) = s;
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                _ = recheck.tick() => {
                    if still_valid(&state, &credential).await {
                        continue;
                    }
                    return None;
                }
            };
            let ev = match received {
                Ok(e) if patients.contains(&e.patient) => {
                    let data = serde_json::to_string(&e).unwrap_or_default();
                    Event::default().event(e.event.clone()).data(data)
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(ev), (rx, patients, recheck, state, credential)));
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

//! Nightscout v1 endpoints. The caller is a patient picked by the secret
//! it presents (`api-secret` header, SHA-1 hex or plain, or `?token=`);
//! see [`crate::nightscout`] for how the secret is stored.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use vigil_model::reading::Sample;

use crate::ServiceState;
use crate::access::{NightscoutCaller, PatientAccess, Read, Write};
use crate::domain::{CredentialKind, NsDocument};
use crate::error::{Error, Result};
use crate::nightscout::{self, Entry, care, secret_hash};
use crate::query;
use crate::validate::{self, shift};

/// The device name readings uploaded through Nightscout are stored under.
pub const DEVICE: &str = "nightscout";

/// A request authenticated by a Nightscout secret: the patient it opens
/// (through [`NightscoutCaller::open`], which audits and gives the proof the
/// data readers take).
#[derive(Debug, Clone, Copy)]
pub struct NightscoutPatient(pub NightscoutCaller);

impl FromRequestParts<ServiceState> for NightscoutPatient {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &ServiceState) -> Result<Self> {
        let header = parts
            .headers
            .get("api-secret")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let token = query::pairs(parts.uri.query())?
            .into_iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v);
        let presented = header
            .or(token)
            .filter(|s| !s.trim().is_empty())
            .ok_or(Error::Unauthenticated)?;
        let client = crate::rate_limit::client_ip(parts);
        if state.auth_throttle.blocked(client) {
            return Err(Error::RateLimited);
        }
        let hash = secret_hash(&presented);
        let caller = state
            .store
            .run(move |s| NightscoutCaller::authenticate(s, &hash))
            .await?;
        let Some(caller) = caller else {
            crate::auth::refused(state, client, None, CredentialKind::NightscoutSecret).await;
            return Err(Error::Unauthenticated);
        };
        // Rate buckets are keyed by token id; Nightscout callers get the
        // negative patient id, which no token has.
        if !state.rate_limiter.try_acquire(-caller.patient()) {
            return Err(Error::RateLimited);
        }
        Ok(NightscoutPatient(caller))
    }
}

/// `GET /api/v1/status.json`: what Nightscout clients probe first.
pub async fn status(NightscoutPatient(_): NightscoutPatient) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "name": "vigil",
        "version": env!("CARGO_PKG_VERSION"),
        "serverTime": nightscout::date_string(Utc::now()),
        "serverTimeEpoch": Utc::now().timestamp_millis(),
        "apiEnabled": true,
        "careportalEnabled": false,
        "settings": {"units": "mg/dl"},
    }))
}

async fn read(
    state: ServiceState,
    caller: NightscoutCaller,
    raw: Option<String>,
    force_count: Option<usize>,
) -> Result<Json<Vec<Entry>>> {
    let mut q = nightscout::parse_query(&query::pairs(raw.as_deref())?)?;
    if let Some(c) = force_count {
        q.count = c;
    }
    let to = match q.to {
        Some(t) => shift(t, TimeDelta::milliseconds(1), "find[date]")?,
        None => Utc::now() + TimeDelta::minutes(10),
    };
    let explicit_from = q.from;
    // The oldest entries asked for derive their arrows from the 15 minutes
    // before them too; those earlier points are read, never returned.
    let lead_in = explicit_from.map(|f| {
        f.checked_sub_signed(vigil_model::trend::WINDOW)
            .unwrap_or(f)
    });
    let count = q.count;
    let (points, own) = state
        .store
        .run(move |s| {
            let access = caller.open::<Read>(s, "nightscout.entries.read")?;
            let points = newest_points(s, &access, lead_in, to, count)?;
            let own = own_trends(s, &access, &points, count)?;
            Ok((points, own))
        })
        .await?;
    let mut entries = nightscout::entries(&points, q.count, DEVICE, &own);
    // Lead-in points are older than every point in range, so dropping them
    // after taking the newest `count` never drops one that was asked for.
    if let Some(from) = explicit_from {
        entries.retain(|e| e.date >= from.timestamp_millis());
    }
    Ok(Json(entries))
}

/// Stored glucose up to `to`, oldest first: from `from` when the query
/// gave one, else back from `to` far enough to hold `count` entries.
fn newest_points(
    s: &dyn crate::storage::Storage,
    access: &PatientAccess<Read>,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    count: usize,
) -> Result<Vec<crate::domain::DataPoint>> {
    if let Some(from) = from {
        return access.points(s, from, to);
    }
    // No lower bound: widen the window back from `to` until it
    // holds `count` entries (the store reads oldest first, so a
    // narrow window keeps the newest within the read limit).
    let mut points = Vec::new();
    for days in [1, 14, 90, 3650] {
        let from = shift(to, -TimeDelta::days(days), "find[date]")?;
        points = access.points(s, from, to)?;
        if points.len() >= count {
            break;
        }
    }
    Ok(points)
}

/// The uploader's own trends for the newest `count` of `points`, by entry
/// time in ms.
fn own_trends(
    s: &dyn crate::storage::Storage,
    access: &PatientAccess<Read>,
    points: &[crate::domain::DataPoint],
    count: usize,
) -> Result<HashMap<i64, nightscout::OwnTrend>> {
    let shown = &points[points.len().saturating_sub(count)..];
    let (Some(first), Some(last)) = (shown.first(), shown.last()) else {
        return Ok(HashMap::new());
    };
    let to = shift(last.time, TimeDelta::milliseconds(1), "find[date]")?;
    // One trend per uploaded entry time; the uploader's entries in the
    // range can outnumber the shown points where another source stood for
    // some moments, so allow several per point (bounded: count is).
    let limit = u32::try_from(shown.len().saturating_mul(4)).unwrap_or(u32::MAX);
    let docs = access.ns_documents(s, care::ENTRY_TRENDS, first.time, to, limit)?;
    Ok(docs
        .into_iter()
        .filter_map(|d| {
            let trend = serde_json::from_str(&d.document).ok()?;
            Some((d.time.timestamp_millis(), trend))
        })
        .collect())
}

/// `GET /api/v1/entries.json` and `/api/v1/entries/sgv.json`.
pub async fn list(
    State(state): State<ServiceState>,
    NightscoutPatient(p): NightscoutPatient,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<Entry>>> {
    read(state, p, raw, None).await
}

/// `GET /api/v1/entries/current.json`: the newest entry.
pub async fn current(
    State(state): State<ServiceState>,
    NightscoutPatient(p): NightscoutPatient,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<Entry>>> {
    read(state, p, raw, Some(1)).await
}

/// `POST /api/v1/entries`: an array of entries (a single object is
/// accepted too); `sgv` entries are stored, others ignored. Deduplicated
/// by date: the same date uploaded twice is stored once.
pub async fn upload(
    State(state): State<ServiceState>,
    NightscoutPatient(p): NightscoutPatient,
    body: Bytes,
) -> Result<Json<Value>> {
    let items = care::items(&body, nightscout::MAX_ENTRIES)?;
    let mut samples = Vec::new();
    let mut trends = Vec::new();
    let mut ignored = 0usize;
    let now = Utc::now();
    for (i, item) in items.into_iter().enumerate() {
        if item.get("type").and_then(Value::as_str).unwrap_or("sgv") != "sgv" {
            ignored += 1;
            continue;
        }
        let e: Entry = serde_json::from_value(item).map_err(|_| {
            Error::InvalidInput(format!(
                "entry {i}: not an sgv entry (numeric `sgv` and `date` needed)"
            ))
        })?;
        let time = nightscout::from_ms(e.date)
            .ok_or_else(|| Error::InvalidInput(format!("entry {i}: bad date")))?;
        if let Some(reason) = validate::check_time(time, now, state.limits.max_future_skew) {
            return Err(Error::InvalidInput(format!(
                "entry {i}: date {}",
                validate::reason_name(reason)
            )));
        }
        if !(e.sgv.is_finite()
            && (crate::validate::PLAUSIBLE_MG_DL.0..=crate::validate::PLAUSIBLE_MG_DL.1)
                .contains(&e.sgv))
        {
            return Err(Error::InvalidInput(format!("entry {i}: sgv out of range")));
        }
        if let Some(trend) = nightscout::OwnTrend::of(&e) {
            trends.push(NsDocument {
                time,
                kind: "sgv".into(),
                document: serde_json::to_string(&trend)
                    .map_err(|e| Error::Internal(format!("trend document: {e}")))?,
            });
        }
        samples.push(Sample { time, value: e.sgv });
    }
    let stored = samples.len();
    if !samples.is_empty() {
        state
            .store
            .run(move |s| {
                let access = p.open::<Write>(s, "nightscout.entries.write")?;
                access.store_glucose(s, DEVICE, &samples)?;
                // The uploader's arrows, after the readings they belong to:
                // an entry without its trend reads with a computed one.
                access
                    .store_ns_documents(s, care::ENTRY_TRENDS, &trends)
                    .map(drop)
            })
            .await?;
    }
    Ok(Json(
        json!({"ok": true, "received": stored, "ignored": ignored}),
    ))
}

/// `DELETE /api/v1/entries?find[date][$gte]=…&find[date][$lte]=…`: the
/// owner removes entries they uploaded through Nightscout in the range
/// (readings synced by the Vigil SDK are not touched).
pub async fn delete(
    State(state): State<ServiceState>,
    NightscoutPatient(p): NightscoutPatient,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let q = nightscout::parse_query(&query::pairs(raw.as_deref())?)?;
    let (Some(from), Some(to)) = (q.from, q.to) else {
        return Err(Error::InvalidInput(
            "DELETE needs find[date][$gte] and find[date][$lte]".into(),
        ));
    };
    let to = shift(to, TimeDelta::milliseconds(1), "find[date]")?;
    let n = state
        .store
        .run(move |s| {
            p.open::<Write>(s, "nightscout.entries.delete")?
                .delete_readings(s, DEVICE, from, to)
        })
        .await?;
    Ok(Json(json!({"ok": true, "n": n})))
}

/// `POST /api/v1/treatments`: insulin, carbohydrates, notes, sensor changes
/// as uploaders send them; normalised ([`care::treatment`]), stored once per
/// time and event type. The whole request is refused, and nothing stored,
/// when one document is implausible.
pub async fn post_treatments(
    State(state): State<ServiceState>,
    NightscoutPatient(p): NightscoutPatient,
    body: Bytes,
) -> Result<Json<Value>> {
    store_documents(state, p, body, care::TREATMENTS, care::treatment).await
}

/// `POST /api/v1/devicestatus`: the uploader's and pump's state; normalised
/// ([`care::device_status`]), stored once per time and device.
pub async fn post_device_status(
    State(state): State<ServiceState>,
    NightscoutPatient(p): NightscoutPatient,
    body: Bytes,
) -> Result<Json<Value>> {
    store_documents(state, p, body, care::DEVICE_STATUS, care::device_status).await
}

async fn store_documents(
    state: ServiceState,
    p: NightscoutCaller,
    body: Bytes,
    collection: &'static str,
    normalise: fn(usize, &Value, chrono::DateTime<Utc>, TimeDelta) -> Result<NsDocument>,
) -> Result<Json<Value>> {
    let now = Utc::now();
    let documents = care::items(&body, care::MAX_DOCUMENTS)?
        .iter()
        .enumerate()
        .map(|(i, v)| normalise(i, v, now, state.limits.max_future_skew))
        .collect::<Result<Vec<_>>>()?;
    let received = documents.len();
    let stored = state
        .store
        .run(move |s| {
            p.open::<Write>(s, &format!("nightscout.{collection}.write"))?
                .store_ns_documents(s, collection, &documents)
        })
        .await?;
    Ok(Json(
        json!({"ok": true, "received": received, "stored": stored}),
    ))
}

/// `GET /api/v1/treatments.json`: the newest `count` treatments, newest
/// first, in `find[created_at]` (or `find[date]`) range.
pub async fn list_treatments(
    State(state): State<ServiceState>,
    NightscoutPatient(p): NightscoutPatient,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<Value>>> {
    list_documents(state, p, raw, care::TREATMENTS).await
}

/// `GET /api/v1/devicestatus.json`: the newest `count` statuses.
pub async fn list_device_status(
    State(state): State<ServiceState>,
    NightscoutPatient(p): NightscoutPatient,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<Value>>> {
    list_documents(state, p, raw, care::DEVICE_STATUS).await
}

async fn list_documents(
    state: ServiceState,
    p: NightscoutCaller,
    raw: Option<String>,
    collection: &'static str,
) -> Result<Json<Vec<Value>>> {
    let q = nightscout::parse_query(&query::pairs(raw.as_deref())?)?;
    let to = match q.to {
        Some(t) => shift(t, TimeDelta::milliseconds(1), "find[created_at]")?,
        None => Utc::now() + TimeDelta::days(1),
    };
    let from = match q.from {
        Some(f) => f,
        None => shift(to, -TimeDelta::days(3650), "find[created_at]")?,
    };
    let count = u32::try_from(q.count).unwrap_or(u32::MAX);
    let docs = state
        .store
        .run(move |s| {
            p.open::<Read>(s, &format!("nightscout.{collection}.read"))?
                .ns_documents(s, collection, from, to, count)
        })
        .await?;
    Ok(Json(
        docs.iter().map(|d| care::with_id(collection, d)).collect(),
    ))
}

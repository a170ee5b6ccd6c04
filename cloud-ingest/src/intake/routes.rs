//! Intake from phones (device tokens, own patient only): batches, alerts,
//! heartbeats.
//!
//! The rules applied here, once, for every backend: content negotiation
//! and bounded decompression, the body's patient must be the token's,
//! clock-skew correction from `sent_at`, per-reading validation (an invalid
//! reading is listed in the ack and never stored, the valid ones of the
//! same batch are), and reconstruction of held-back readings. A request
//! that fails as a whole (4xx) writes nothing.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use vigil_model::reading::{Sample, Stream};
use vigil_model::wire::{
    self, Alert, AlertAck, Batch, ContentEncoding, Format, Heartbeat, RejectReason, Rejected,
};

use crate::ServiceState;
use crate::auth::Principal;
use crate::domain::Role;
use crate::domain::{PatientId, TokenScope};
use crate::error::{Error, Result};
use crate::live::LiveEvent;
use crate::storage::{NewAlert, NewBatch, NewGroup, NewHeartbeat, NewReading, SeriesKey, Storage};
use crate::validate;

/// A phone clock within this of the server's is trusted as is; beyond it,
/// every time of the message is shifted by the difference.
pub const SKEW_ALLOWANCE: TimeDelta = TimeDelta::seconds(5);
/// The oldest reading an SDK batch may carry, before the server's clock
/// (the phone's buffer never holds older); imports go back to
/// [`validate::EARLIEST`].
pub const MAX_AGE: TimeDelta = TimeDelta::days(400);
/// Readings any binary body may decode to, whatever its size.
pub const FREE_READINGS: usize = 8192;
/// Readings each further byte of a (decompressed) body may decode to: a
/// regular series whose values change costs about a byte a reading, a flat
/// one less; run-length tokens can claim far more, and are refused.
pub const READINGS_PER_BODY_BYTE: usize = 64;

pub use validate::plausible;

/// A core wire error as the HTTP error the protocol names: 415 for an
/// unknown type or coding, 413 for a body that is or expands past the
/// limit, 400 naming the field otherwise.
pub fn wire_error(e: vigil_model::Error) -> Error {
    match e {
        vigil_model::Error::WireUnsupported { field, reason } => {
            Error::UnsupportedMedia(format!("{field}: {reason}"))
        }
        e @ vigil_model::Error::WireTooLarge { .. } => Error::TooLarge(e.to_string()),
        // The one field name the wire gives only to "too many readings".
        vigil_model::Error::Wire {
            field: "readings",
            reason,
            ..
        } => Error::TooLarge(format!("readings: {reason}; send fewer readings per batch")),
        vigil_model::Error::Wire { field, reason, .. } => {
            Error::Malformed(format!("field `{field}`: {reason}"))
        }
        other => Error::Malformed(other.to_string()),
    }
}

fn device_patient(who: &Principal) -> Result<PatientId> {
    match (who.role, who.scope) {
        (Role::Device, TokenScope::Patient(p)) => Ok(p),
        _ => Err(Error::Forbidden("device token required")),
    }
}

fn own_patient(body_patient: &str, patient: PatientId) -> Result<()> {
    if body_patient == patient.to_string() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "the body's patient is not this token's patient",
        ))
    }
}

/// The body's format and coding, then its bytes decompressed within the
/// body limit.
fn negotiate(state: &ServiceState, headers: &HeaderMap, body: &[u8]) -> Result<(Format, Vec<u8>)> {
    let text = |name: header::HeaderName| {
        headers
            .get(&name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| Error::UnsupportedMedia(format!("{name} is not text")))
            })
            .transpose()
    };
    let format = match text(header::CONTENT_TYPE)? {
        Some(ct) => Format::from_content_type(ct).map_err(wire_error)?,
        None => return Err(Error::UnsupportedMedia("no Content-Type".into())),
    };
    let encoding = match text(header::CONTENT_ENCODING)? {
        Some(ce) => ContentEncoding::parse(ce).map_err(wire_error)?,
        None => ContentEncoding::Identity,
    };
    let plain = wire::compress::decompress(body, encoding, state.limits.max_body_bytes)
        .map_err(wire_error)?;
    Ok((format, plain))
}

/// When a JSON batch failed to parse, says whether an unknown stream is
/// why (the core's message gives only a position). The name itself is not
/// repeated: no error quotes what the client sent.
fn unknown_stream(plain: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(plain).ok()?;
    v.get("streams")?.as_array()?.iter().find_map(|g| {
        let name = g.get("stream")?.as_str()?;
        Stream::parse(name)
            .is_none()
            .then(|| "field `stream`: not a stream this server knows".to_owned())
    })
}

fn json_only(format: Format) -> Result<()> {
    match format {
        Format::Json => Ok(()),
        Format::Binary => Err(Error::UnsupportedMedia(
            "the binary form is for batches only".into(),
        )),
    }
}

/// The shift that corrects the phone's clock: zero within the allowance.
/// (A difference of two representable times always fits a `TimeDelta`.)
fn skew(sent_at: DateTime<Utc>, now: DateTime<Utc>) -> TimeDelta {
    let d = now.signed_duration_since(sent_at);
    if d.abs() > SKEW_ALLOWANCE {
        d
    } else {
        TimeDelta::zero()
    }
}

/// A reading's corrected time, or why it is refused: the shared window of
/// [`validate::check_time`], and no older than [`MAX_AGE`]. A shift that
/// leaves chrono's range is a time no clock produced: too far one way.
fn corrected(
    time: DateTime<Utc>,
    shift: TimeDelta,
    now: DateTime<Utc>,
    max_future: TimeDelta,
) -> Result<DateTime<Utc>, RejectReason> {
    let Some(t) = time.checked_add_signed(shift) else {
        return Err(if shift > TimeDelta::zero() {
            RejectReason::FutureTime
        } else {
            RejectReason::TooOld
        });
    };
    if let Some(reason) = validate::check_time(t, now, max_future) {
        return Err(reason);
    }
    match now.checked_sub_signed(MAX_AGE) {
        Some(oldest) if t < oldest => Err(RejectReason::TooOld),
        _ => Ok(t),
    }
}

/// Validates and corrects a decoded batch into what storage stores:
/// invalid readings become rejections, held-back readings get their
/// reconstructed values (from this batch's kept readings and, for the
/// earlier neighbour, the stored ones).
pub fn prepare_batch(
    storage: &dyn Storage,
    batch: &Batch,
    patient: PatientId,
    now: DateTime<Utc>,
    max_future: TimeDelta,
) -> Result<NewBatch> {
    let shift = skew(batch.sent_at, now);
    let mut groups = Vec::with_capacity(batch.streams.len());
    for g in &batch.streams {
        let mut readings = Vec::with_capacity(g.readings.len() + g.held_back.len());
        let mut rejected = Vec::new();
        for r in &g.readings {
            let checked = match validate::check_value(g.stream, r.value) {
                Some(reason) => Err(reason),
                None => corrected(r.time, shift, now, max_future),
            };
            let time = match checked {
                Ok(time) => time,
                Err(reason) => {
                    rejected.push(Rejected { seq: r.seq, reason });
                    continue;
                }
            };
            readings.push(NewReading {
                seq: r.seq,
                time,
                value: r.value,
                quality_percent: r.quality.percent,
                quality_flagged: r.quality.flagged,
                held_back: false,
                raw: r.raw.clone(),
            });
        }
        let mut kept: Vec<Sample> = readings
            .iter()
            .map(|r| Sample {
                time: r.time,
                value: r.value,
            })
            .collect();
        kept.sort_by_key(|s| s.time);
        let key = SeriesKey {
            patient,
            device: batch.device.0.clone(),
            stream: g.stream,
            session: g.session,
        };
        // The stored kept reading before the group's first kept one, looked
        // up once: it is the earlier neighbour of every held-back reading
        // between the two, which is where a phone's held-back readings lie
        // (those since its previous batch's last kept reading).
        let mut before_first: Option<Option<Sample>> = None;
        let stored_before = |at| -> Result<Option<Sample>> {
            Ok(storage.kept_reading_before(&key, at)?.map(|r| Sample {
                time: r.time,
                value: r.value,
            }))
        };
        for h in &g.held_back {
            let time = match corrected(h.time, shift, now, max_future) {
                Ok(time) => time,
                Err(reason) => {
                    rejected.push(Rejected { seq: h.seq, reason });
                    continue;
                }
            };
            let mut value = vigil_model::reduce::interpolate(&kept, time);
            let first = kept.first().map(|k| k.time);
            if let Some(first) = first.filter(|&first| value.is_none() && first > time) {
                let shared = match before_first {
                    Some(found) => found,
                    None => *before_first.insert(stored_before(first)?),
                };
                let prev = match shared {
                    Some(p) if p.time >= time => stored_before(time)?,
                    other => other,
                };
                if let Some(prev) = prev {
                    let mut around = vec![prev];
                    around.extend(kept.iter().copied());
                    value = vigil_model::reduce::interpolate(&around, time);
                }
            }
            match value {
                Some(value) if validate::check_value(g.stream, value).is_some() => {
                    rejected.push(Rejected {
                        seq: h.seq,
                        reason: RejectReason::ImpossibleValue,
                    });
                }
                Some(value) => readings.push(NewReading {
                    seq: h.seq,
                    time,
                    value,
                    quality_percent: None,
                    quality_flagged: false,
                    held_back: true,
                    raw: None,
                }),
                None => rejected.push(Rejected {
                    seq: h.seq,
                    reason: RejectReason::Unreconstructible,
                }),
            }
        }
        if g.stream == Stream::Glucose {
            refuse_repeated_instants(storage, &key, &mut readings, &mut rejected)?;
        }
        groups.push(NewGroup {
            stream: g.stream,
            session: g.session,
            characteristic: g.characteristic,
            tolerance: g.tolerance,
            readings,
            rejected,
        });
    }
    Ok(NewBatch {
        v: batch.v,
        id: batch.id,
        patient,
        device: batch.device.0.clone(),
        received_at: now,
        groups,
    })
}

/// The same-instant rule: a sensor session measures once per instant, so a
/// glucose reading at an instant its series already holds (stored, or
/// earlier in the same group) under another sequence is refused as
/// `conflict`. Without it a device could post the same minutes again and
/// again under new sequence numbers, and the day summaries recomputed over
/// them would grow with every batch (issue 13). One indexed range query per
/// group, bounded by the group's own time span.
fn refuse_repeated_instants(
    storage: &dyn Storage,
    key: &SeriesKey,
    readings: &mut Vec<NewReading>,
    rejected: &mut Vec<Rejected>,
) -> Result<()> {
    let times = readings.iter().map(|r| r.time);
    let (Some(from), Some(to)) = (times.clone().min(), times.max()) else {
        return Ok(());
    };
    let mut at: HashMap<i64, u64> = storage
        .sequences_between(key, from, to)?
        .into_iter()
        .map(|(time, seq)| (time.timestamp_micros(), seq))
        .collect();
    readings.retain(|r| match at.entry(r.time.timestamp_micros()) {
        Entry::Occupied(held) if *held.get() != r.seq => {
            rejected.push(Rejected {
                seq: r.seq,
                reason: RejectReason::Conflict,
            });
            false
        }
        Entry::Occupied(_) => true,
        Entry::Vacant(free) => {
            free.insert(r.seq);
            true
        }
    });
    Ok(())
}

/// `POST /v1/batches`: stores a batch once and answers with what is
/// durably stored per stream: the JSON [`wire::BatchAck`], or, when the phone
/// asked for it with `Prefer: return=minimal` ([`wire::PREFER_MINIMAL`]) and
/// every reading of the batch is stored, `204` with no body (no
/// `Content-Type`, no `Content-Length`: about 70 bytes less per batch).
pub async fn post_batch(
    State(state): State<ServiceState>,
    who: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let patient = device_patient(&who)?;
    let minimal = prefers_minimal(&headers);
    let (format, plain) = negotiate(&state, &headers, &body)?;
    let max_readings = state.limits.max_readings_per_batch;
    let batch = match format {
        Format::Json => wire::json::from_slice::<Batch>(&plain)
            .map_err(|e| unknown_stream(&plain).map_or_else(|| wire_error(e), Error::Malformed)),
        Format::Binary => {
            // Bound the decoded work by the body's size as well as the
            // limit, before any of it is done.
            let budget = READINGS_PER_BODY_BYTE
                .saturating_mul(plain.len())
                .saturating_add(FREE_READINGS)
                .min(max_readings);
            wire::binary::decode_within(&plain, budget).map_err(wire_error)
        }
    }?;
    let total = batch.streams.iter().fold(0usize, |n, g| {
        n.saturating_add(g.readings.len())
            .saturating_add(g.held_back.len())
    });
    if total > max_readings {
        return Err(Error::TooLarge(format!(
            "readings: more than {max_readings} in one batch; send fewer readings per batch"
        )));
    }
    own_patient(&batch.patient.0, patient)?;
    // What a new-data webhook says: who and which streams, never values.
    let streams: Vec<String> = batch
        .streams
        .iter()
        .map(|g| g.stream.as_str().to_owned())
        .collect();
    let batch_id = batch.id;
    let max_future = state.limits.max_future_skew;
    let (ack, queued, all_stored) = state
        .store
        .run(move |s| {
            let new = prepare_batch(s, &batch, patient, Utc::now(), max_future)?;
            // The audit row goes with the batch (one commit on PostgreSQL).
            let ack =
                s.store_batch_audited(&new, &who.audit_entry(Some(patient), "readings.write"))?;
            // The triage list's day summaries of the days just written.
            crate::glucose_days::after_batch(s, &new)?;
            // The new-data webhook is queued in the same trip to the
            // blocking pool as the batch (an empty subscription list
            // costs one indexed query, not a second hop).
            let queued = if ack.duplicate {
                0
            } else {
                let event = serde_json::json!({
                    "event": "data",
                    "patient": patient,
                    "batch": batch_id,
                    "streams": streams,
                    "received_at": Utc::now(),
                });
                crate::webhooks::dispatch::queue_within(s, crate::domain::EventKind::Data, &event)
            };
            let all_stored = ack.stores_all_of(&batch);
            Ok((ack, queued, all_stored))
        })
        .await?;
    if queued > 0 {
        state.webhook_wake.notify_one();
    }
    if minimal && all_stored {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(Json(ack).into_response())
}

/// Whether the request asked for the minimal answer ([`wire::PREFER_MINIMAL`]).
fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(wire::prefers_minimal)
}

fn snake<T: serde::Serialize>(value: &T) -> Result<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(Error::Internal("an enum that is not a JSON string".into())),
    }
}

/// The live event announcing a stored alert event.
pub fn alert_event(a: &NewAlert) -> LiveEvent {
    LiveEvent {
        event: "alert".into(),
        patient: a.patient,
        alert_id: a.alert_id.clone(),
        kind: a.kind.clone(),
        phase: a.phase.clone(),
        time: a.time,
        value: a.value,
        by_token: None,
    }
}

/// `POST /v1/alerts`: stores an alert event once by (id, phase, the phone's
/// own time) and publishes it live when it is new. The phone's time, not
/// the skew-corrected one, is the key: the correction moves with each
/// attempt's latency when the phone's clock is off. Answers with the JSON
/// [`AlertAck`], or `204` when the phone asked with `Prefer:
/// return=minimal` (it needs no more than "stored").
pub async fn post_alert(
    State(state): State<ServiceState>,
    who: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let patient = device_patient(&who)?;
    let (format, plain) = negotiate(&state, &headers, &body)?;
    json_only(format)?;
    let alert: Alert = wire::json::from_slice(&plain).map_err(wire_error)?;
    own_patient(&alert.patient.0, patient)?;
    let now = Utc::now();
    let time = corrected(
        alert.time,
        skew(alert.sent_at, now),
        now,
        state.limits.max_future_skew,
    )
    .map_err(|reason| {
        Error::Malformed(format!(
            "field `time`: {} after clock-skew correction",
            validate::reason_name(reason)
        ))
    })?;
    if let Some(v) = alert.glucose_mg_dl {
        if validate::check_value(Stream::Glucose, v).is_some() {
            return Err(Error::Malformed(
                "field `glucose_mg_dl`: impossible_value".into(),
            ));
        }
    }
    let new_alert = NewAlert {
        patient,
        alert_id: alert.id.clone(),
        device: alert.device.as_ref().map(|d| d.0.clone()),
        kind: snake(&alert.kind)?,
        phase: snake(&alert.phase)?,
        time,
        phone_time: alert.time,
        value: alert.glucose_mg_dl,
        detail: serde_json::to_string(&alert)
            .map_err(|e| Error::Internal(format!("alert to JSON: {e}")))?,
        received_at: now,
    };
    let stored = new_alert.clone();
    let fresh = state
        .store
        .run(move |s| {
            s.store_alert_audited(&stored, &who.audit_entry(Some(patient), "alerts.write"))
        })
        .await?;
    if fresh {
        // Committed and new: publish. A failed publish must not make the
        // phone resend an alert that is stored; it is logged instead.
        let event = alert_event(&new_alert);
        if let Err(e) = state.fanout.publish(&event) {
            tracing::error!(error = %e, "live fan-out failed");
        }
        crate::webhooks::dispatch::alert_to_webhooks(&state, &event).await;
    }
    if prefers_minimal(&headers) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(Json(AlertAck {
        v: alert.v,
        id: alert.id,
        phase: alert.phase,
        time: alert.time,
        duplicate: !fresh,
    })
    .into_response())
}

/// `POST /v1/heartbeats`: keeps the latest heartbeat and records contact
/// for the dead-man's switch. Answers 204.
///
/// An empty body is a contact heartbeat: it only records contact (the
/// phone sends one between stretched batches to keep the switch quiet at
/// a few hundred bytes, headers included), and the latest health report
/// stays as it was.
pub async fn post_heartbeat(
    State(state): State<ServiceState>,
    who: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let patient = device_patient(&who)?;
    if body.is_empty() {
        let now = Utc::now();
        state
            .store
            .run(move |s| {
                s.record_contact_audited(
                    patient,
                    now,
                    &who.audit_entry(Some(patient), "heartbeats.write"),
                )
            })
            .await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let (format, plain) = negotiate(&state, &headers, &body)?;
    json_only(format)?;
    let hb: Heartbeat = wire::json::from_slice(&plain).map_err(wire_error)?;
    own_patient(&hb.patient.0, patient)?;
    let now = Utc::now();
    // A heartbeat dated ahead would win every later comparison by
    // `sent_at` and hide genuine ones: refused, like any implausible time.
    if let Some(reason) = validate::check_time(hb.sent_at, now, state.limits.max_future_skew) {
        return Err(Error::Malformed(format!(
            "field `sent_at`: {}",
            validate::reason_name(reason)
        )));
    }
    let batteries = hb
        .phone_battery_pct
        .iter()
        .chain(hb.devices.iter().filter_map(|d| d.battery_pct.as_ref()));
    for &pct in batteries {
        if validate::check_value(Stream::Battery, pct).is_some() {
            return Err(Error::Malformed(
                "field `battery_pct`: impossible_value".into(),
            ));
        }
    }
    let record = NewHeartbeat {
        patient,
        sent_at: hb.sent_at,
        received_at: now,
        body: serde_json::to_string(&hb)
            .map_err(|e| Error::Internal(format!("heartbeat to JSON: {e}")))?,
    };
    state
        .store
        .run(move |s| {
            s.store_heartbeat_audited(&record, &who.audit_entry(Some(patient), "heartbeats.write"))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

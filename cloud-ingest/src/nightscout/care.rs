//! Nightscout treatments and device status: what uploaders (xDrip+,
//! Juggluco, AndroidAPS) post beside their glucose entries, normalised so
//! that what is stored is bounded and known.
//!
//! Place in the data flow: `POST /api/v1/treatments` and
//! `POST /api/v1/devicestatus` decode here, the storage keeps one row per
//! (patient, collection, time, kind), and `GET .../treatments.json` and
//! `.../devicestatus.json` return the stored documents with an `_id`.
//!
//! Decisions that shaped it:
//! - **Kept fields, not whatever was sent.** A treatment keeps the fields
//!   clinicians and followers read (event type, time, insulin, carbohydrates,
//!   glucose check, duration, temporary basal, notes, who entered it); a
//!   status keeps the device, the uploader's battery, and the pump, loop and
//!   OpenAPS objects followers display, each document at most
//!   [`MAX_DOCUMENT_BYTES`]. Unknown fields are dropped, not refused, so new
//!   uploader versions never trip.
//! - **Plausible or refused.** Times pass the service's one time check;
//!   insulin, carbohydrates and glucose must be finite and within
//!   physiological bounds, or the whole request is refused with the entry's
//!   index and nothing is stored.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::NsDocument;
use crate::error::{Error, Result};
use crate::validate;

/// Most documents one request may carry.
pub const MAX_DOCUMENTS: usize = 1_000;
/// Largest normalised document kept.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// The two collections.
pub const TREATMENTS: &str = "treatments";
/// The device status collection.
pub const DEVICE_STATUS: &str = "devicestatus";
/// Uploaders' own trends of their glucose entries
/// ([`super::OwnTrend`], one per entry time, kind `sgv`).
pub const ENTRY_TRENDS: &str = "entries";

/// The documents of a POST body: an array, or one object, at most `max`
/// of them (the body limit bounds bytes; this bounds the work per request).
pub fn items(body: &[u8], max: usize) -> Result<Vec<Value>> {
    // serde's messages quote what was sent: never echoed.
    let v: Value =
        serde_json::from_slice(body).map_err(|_| Error::InvalidInput("body is not JSON".into()))?;
    let items = match v {
        Value::Array(a) => a,
        o @ Value::Object(_) => vec![o],
        _ => return Err(Error::InvalidInput("expected an array of documents".into())),
    };
    if items.len() > max {
        return Err(Error::InvalidInput(format!(
            "at most {max} documents per request"
        )));
    }
    Ok(items)
}

/// A time as uploaders send it: `created_at` as ISO 8601 (with or without
/// zone, or a bare date), else `date`, `mills` or `timestamp` in ms.
fn time_of(i: usize, o: &Map<String, Value>) -> Result<DateTime<Utc>> {
    if let Some(s) = o.get("created_at").and_then(Value::as_str) {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(t.with_timezone(&Utc));
        }
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
            return Ok(t.and_utc());
        }
        if let Some(t) = crate::query::instant(s) {
            return Ok(t);
        }
        return Err(Error::InvalidInput(format!(
            "document {i}: `created_at` is not a time"
        )));
    }
    for key in ["date", "mills", "timestamp"] {
        if let Some(ms) = o.get(key).and_then(Value::as_f64) {
            if !ms.is_finite() || ms.abs() > 1e15 {
                break;
            }
            return DateTime::from_timestamp_millis(ms as i64).ok_or_else(|| {
                Error::InvalidInput(format!("document {i}: `{key}` is out of range"))
            });
        }
    }
    Err(Error::InvalidInput(format!(
        "document {i}: `created_at` (or `date`) is required"
    )))
}

fn checked_time(
    i: usize,
    o: &Map<String, Value>,
    now: DateTime<Utc>,
    skew: TimeDelta,
) -> Result<DateTime<Utc>> {
    let t = time_of(i, o)?;
    if let Some(reason) = validate::check_time(t, now, skew) {
        return Err(Error::InvalidInput(format!(
            "document {i}: time {}",
            validate::reason_name(reason)
        )));
    }
    Ok(t)
}

fn text(i: usize, o: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(Error::InvalidInput(format!(
            "document {i}: `{key}` is longer than {max} characters"
        ))),
        // Some uploaders send numbers or booleans where text is expected;
        // kept as their text.
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(_) => Err(Error::InvalidInput(format!(
            "document {i}: `{key}` must be text"
        ))),
    }
}

fn number(i: usize, o: &Map<String, Value>, key: &str, range: (f64, f64)) -> Result<Option<f64>> {
    let v = match o.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        // AndroidAPS and Juggluco sometimes send numbers as strings.
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match v {
        Some(x) if x.is_finite() && (range.0..=range.1).contains(&x) => Ok(Some(x)),
        _ => Err(Error::InvalidInput(format!(
            "document {i}: `{key}` must be a number from {} to {}",
            range.0, range.1
        ))),
    }
}

fn finish(
    i: usize,
    time: DateTime<Utc>,
    kind: String,
    mut doc: Map<String, Value>,
) -> Result<NsDocument> {
    doc.insert("created_at".into(), Value::String(super::date_string(time)));
    doc.insert("mills".into(), Value::from(time.timestamp_millis()));
    let document = Value::Object(doc).to_string();
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::InvalidInput(format!(
            "document {i}: larger than {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    Ok(NsDocument {
        time,
        kind,
        document,
    })
}

/// One treatment, normalised.
pub fn treatment(i: usize, v: &Value, now: DateTime<Utc>, skew: TimeDelta) -> Result<NsDocument> {
    let o = v
        .as_object()
        .ok_or_else(|| Error::InvalidInput(format!("document {i}: not an object")))?;
    let time = checked_time(i, o, now, skew)?;
    let kind = text(i, o, "eventType", 64)?.unwrap_or_else(|| "<none>".into());
    let mut doc = Map::new();
    doc.insert("eventType".into(), Value::String(kind.clone()));
    for (key, range) in [
        ("insulin", (0.0, 100.0)),
        ("carbs", (0.0, 1_000.0)),
        ("protein", (0.0, 1_000.0)),
        ("fat", (0.0, 1_000.0)),
        ("glucose", (0.0, 1_000.0)),
        ("duration", (0.0, 43_200.0)),
        ("absolute", (0.0, 50.0)),
        ("rate", (0.0, 50.0)),
        ("percent", (-100.0, 1_000.0)),
    ] {
        if let Some(x) = number(i, o, key, range)? {
            doc.insert(key.into(), Value::from(x));
        }
    }
    for (key, max) in [
        ("notes", 2_000),
        ("enteredBy", 128),
        ("glucoseType", 32),
        ("units", 16),
        ("reason", 256),
    ] {
        if let Some(s) = text(i, o, key, max)? {
            doc.insert(key.into(), Value::String(s));
        }
    }
    finish(i, time, kind, doc)
}

/// One device status, normalised.
pub fn device_status(
    i: usize,
    v: &Value,
    now: DateTime<Utc>,
    skew: TimeDelta,
) -> Result<NsDocument> {
    let o = v
        .as_object()
        .ok_or_else(|| Error::InvalidInput(format!("document {i}: not an object")))?;
    let time = checked_time(i, o, now, skew)?;
    let kind = text(i, o, "device", 128)?.unwrap_or_else(|| "unknown".into());
    let mut doc = Map::new();
    doc.insert("device".into(), Value::String(kind.clone()));
    if let Some(b) = number(i, o, "uploaderBattery", (0.0, 100.0))? {
        doc.insert("uploaderBattery".into(), Value::from(b));
    }
    for key in [
        "uploader",
        "pump",
        "openaps",
        "loop",
        "xdripjs",
        "configuration",
    ] {
        match o.get(key) {
            None | Some(Value::Null) => {}
            Some(v @ Value::Object(_)) => {
                doc.insert(key.into(), v.clone());
            }
            Some(_) => {
                return Err(Error::InvalidInput(format!(
                    "document {i}: `{key}` must be an object"
                )));
            }
        }
    }
    finish(i, time, kind, doc)
}

/// A stored document as GET returns it: the document with an `_id` (24
/// hex digits, the shape of Nightscout's own ids, derived from the
/// collection, time and kind so it is stable across reads).
pub fn with_id(collection: &str, d: &NsDocument) -> Value {
    let mut h = Sha256::new();
    h.update(collection.as_bytes());
    h.update(d.time.timestamp_millis().to_be_bytes());
    h.update(d.kind.as_bytes());
    let id = super::hex(&h.finalize()[..12]);
    let mut v: Value = serde_json::from_str(&d.document).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("_id".into(), Value::String(id));
    }
    v
}

/// The uploader's battery as a status carries it (`uploaderBattery`, or
/// `uploader.battery`), for the patient page.
pub fn uploader_battery(document: &str) -> Option<f64> {
    let v: Value = serde_json::from_str(document).ok()?;
    v.get("uploaderBattery")
        .and_then(Value::as_f64)
        .or_else(|| v.get("uploader")?.get("battery")?.as_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn a_bolus_with_carbs_keeps_its_fields_and_drops_unknown_ones() {
        let v = json!({"eventType": "Meal Bolus", "created_at": "2026-03-01T11:30:00.000Z",
                       "insulin": "4.5", "carbs": 40, "enteredBy": "AndroidAPS",
                       "isValid": true, "pumpId": 12345, "notes": "pasta"});
        let d = treatment(0, &v, now(), TimeDelta::minutes(5)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.kind, "Meal Bolus");
        let doc: Value = serde_json::from_str(&d.document).unwrap_or_default();
        assert_eq!(doc["insulin"], 4.5);
        assert_eq!(doc["carbs"], 40.0);
        assert_eq!(doc["notes"], "pasta");
        assert_eq!(doc["mills"], d.time.timestamp_millis());
        assert!(doc.get("pumpId").is_none());
        assert_eq!(
            with_id(TREATMENTS, &d)["_id"].as_str().map(str::len),
            Some(24)
        );
    }

    #[test]
    fn implausible_or_undated_treatments_are_refused_with_their_index() {
        let skew = TimeDelta::minutes(5);
        for (v, needle) in [
            (
                json!({"eventType": "Bolus", "created_at": "2026-03-01T11:00:00Z", "insulin": 500}),
                "insulin",
            ),
            (
                json!({"eventType": "Carbs", "created_at": "2026-03-01T11:00:00Z", "carbs": -3}),
                "carbs",
            ),
            (json!({"eventType": "Note"}), "required"),
            (
                json!({"eventType": "Note", "created_at": "2099-01-01T00:00:00Z"}),
                "time",
            ),
            (
                json!({"eventType": "Note", "created_at": "yesterday"}),
                "not a time",
            ),
            (json!("a string"), "not an object"),
        ] {
            let e = treatment(3, &v, now(), skew)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("document 3") && e.contains(needle), "{v}: {e}");
        }
    }

    #[test]
    fn a_device_status_keeps_the_uploader_battery_and_loop_objects() {
        let v = json!({"device": "xDrip-DexcomG6", "created_at": "2026-03-01T11:59:00Z",
                       "uploader": {"battery": 71}, "openaps": {"iob": {"iob": 1.2}}});
        let d =
            device_status(0, &v, now(), TimeDelta::minutes(5)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.kind, "xDrip-DexcomG6");
        assert_eq!(uploader_battery(&d.document), Some(71.0));
        let big = json!({"device": "x", "created_at": "2026-03-01T11:59:00Z",
                         "pump": {"blob": "y".repeat(MAX_DOCUMENT_BYTES)}});
        assert!(device_status(0, &big, now(), TimeDelta::minutes(5)).is_err());
    }
}

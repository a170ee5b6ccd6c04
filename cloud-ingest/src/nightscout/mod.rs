//! The Nightscout v1 API for one patient, so Nightscout clients (xDrip+,
//! AndroidAPS, Loop followers, watch faces) can upload to and read from
//! Vigil with nothing but a URL and an API secret.
//!
//! Place in the data flow: both sides. Uploads are a second intake path
//! (validated like SDK readings, stored as glucose of device `nightscout`);
//! reads serve the same resolved glucose every reader sees. The secret
//! opens the patient through [`crate::access::NightscoutCaller`]. Handlers
//! in `routes.rs`.
//!
//! Tenant by credential: each patient may have one Nightscout secret
//! (`vigil-ingest nightscout-secret <patient> <secret>`); the secret a
//! request presents picks the patient, so one URL serves every patient.
//!
//! How the secret is stored: Nightscout clients send the SHA-1 hex of the
//! secret in `api-secret` (some send the secret itself, and `?token=` may
//! carry either). We keep `SHA-256(SHA-1-hex(secret))` only. A presented
//! value is normalised to the SHA-1 hex (hashed first if it is not already
//! 40 hex digits) and then hashed with SHA-256, so both forms verify
//! against one stored value, the plain secret is never kept, and the
//! stored value is not itself a credential (a database leak does not give
//! a value a client could send). It is unsalted on purpose: the secret
//! selects the tenant, so it must be found by an indexed lookup; the
//! 12-character minimum keeps guessing impractical.

pub mod care;
pub(crate) mod routes;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Entries one upload may carry: a month of 5-minute readings, or about
/// a week of 1-minute ones, in one request; uploaders send far fewer.
pub const MAX_ENTRIES: usize = 10_000;

use crate::domain::SecretHash;
use crate::error::{Error, Result};

/// Shortest secret accepted (Nightscout's own minimum).
pub const MIN_SECRET_CHARS: usize = 12;
/// Most entries one GET returns.
pub const MAX_COUNT: usize = 10_000;
/// Entries returned when `count` is absent (Nightscout's default).
pub const DEFAULT_COUNT: usize = 10;

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-1 hex of `s`, as Nightscout clients compute it.
pub fn sha1_hex(s: &str) -> String {
    hex(&Sha1::digest(s.as_bytes()))
}

/// The stored hash of a secret given in either form: the plain secret or
/// its SHA-1 hex (case-insensitive).
pub fn secret_hash(presented: &str) -> SecretHash {
    let p = presented.trim();
    let sha1 = if p.len() == 40 && p.bytes().all(|b| b.is_ascii_hexdigit()) {
        p.to_ascii_lowercase()
    } else {
        sha1_hex(p)
    };
    SecretHash(hex(&Sha256::digest(sha1.as_bytes())))
}

/// Checks a new secret: at least [`MIN_SECRET_CHARS`] characters, and not
/// itself 40 hex digits (it would be taken for a SHA-1 when presented).
pub fn validate_secret(secret: &str) -> Result<()> {
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Err(Error::InvalidInput(format!(
            "a Nightscout secret needs at least {MIN_SECRET_CHARS} characters"
        )));
    }
    if secret.len() == 40 && secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidInput(
            "a Nightscout secret may not be 40 hex digits (it would read as a SHA-1)".into(),
        ));
    }
    Ok(())
}

/// One Nightscout `sgv` entry, as clients send and read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Stable id (ours: patient, device and time; clients' ids are ignored).
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `sgv` here.
    #[serde(rename = "type", default = "sgv")]
    pub kind: String,
    /// Glucose, mg/dL.
    pub sgv: f64,
    /// Measurement time, ms since the Unix epoch.
    pub date: i64,
    /// The same time as ISO 8601.
    #[serde(
        rename = "dateString",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub date_string: Option<String>,
    /// Trend name (`Flat`, `FortyFiveDown`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// Change from the previous entry, mg/dL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// Uploader's device name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Nightscout noise level (1 clean … 4 heavy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<u8>,
}

fn sgv() -> String {
    "sgv".into()
}

/// Formats a time as Nightscout's `dateString`.
pub fn date_string(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time from Nightscout's `date` (ms since the epoch).
pub fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// Nightscout's trend name for a rate of change in mg/dL per minute, by
/// the one rule every reader shares ([`vigil_model::trend::Arrow`],
/// Dexcom's thresholds: 1, 2 and 3 mg/dL/min); `NOT COMPUTABLE` for a rate
/// that is not a number.
pub fn direction(rate_per_min: f64) -> &'static str {
    vigil_model::trend::Arrow::of(rate_per_min).map_or("NOT COMPUTABLE", |a| a.nightscout_name())
}

/// The range and size of a GET, parsed from `count` and
/// `find[date|created_at][$gte|$gt|$lte|$lt]` (ms since the epoch, or an
/// ISO 8601 time or day).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Query {
    /// Inclusive lower bound.
    pub from: Option<DateTime<Utc>>,
    /// Inclusive upper bound.
    pub to: Option<DateTime<Utc>>,
    /// How many, newest first.
    pub count: usize,
}

/// Parses the query string pairs of a GET. Unknown keys are ignored, as
/// Nightscout does; a bad value of a known key is an error.
pub fn parse_query(pairs: &[(String, String)]) -> Result<Query> {
    let mut q = Query {
        from: None,
        to: None,
        count: DEFAULT_COUNT,
    };
    let ms = |k: &str, v: &str| -> Result<i64> {
        // Clients send ms, sometimes with a fraction, sometimes an ISO date.
        if let Ok(n) = v.parse::<f64>() {
            if n.is_finite() {
                return Ok(n as i64);
            }
        }
        // Treatment queries often name a day: `find[created_at][$gte]=2026-03-01`.
        crate::query::instant(v)
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| Error::InvalidInput(format!("`{k}` is not a time")))
    };
    let at = |k: &str, n: i64| {
        from_ms(n).ok_or_else(|| Error::InvalidInput(format!("`{k}` is out of range")))
    };
    for (k, v) in pairs {
        match k.as_str() {
            "count" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| Error::InvalidInput("`count` is not a number".into()))?;
                q.count = n.min(MAX_COUNT);
            }
            "find[date][$gte]" | "find[created_at][$gte]" => q.from = Some(at(k, ms(k, v)?)?),
            "find[date][$gt]" | "find[created_at][$gt]" => {
                q.from = Some(at(k, ms(k, v)?.saturating_add(1))?)
            }
            "find[date][$lte]" | "find[created_at][$lte]" => q.to = Some(at(k, ms(k, v)?)?),
            "find[date][$lt]" | "find[created_at][$lt]" => {
                q.to = Some(at(k, ms(k, v)?.saturating_sub(1))?)
            }
            _ => {}
        }
    }
    Ok(q)
}

/// Nightscout's trend names: the seven arrows and the three "no arrow"
/// values uploaders send.
pub const DIRECTIONS: [&str; 10] = [
    "DoubleUp",
    "SingleUp",
    "FortyFiveUp",
    "Flat",
    "FortyFiveDown",
    "SingleDown",
    "DoubleDown",
    "NONE",
    "NOT COMPUTABLE",
    "RATE OUT OF RANGE",
];

/// Largest delta kept from an uploader, mg/dL (a 5-minute change beyond it
/// is not physiological; the entry is kept, the delta dropped).
const MAX_DELTA: f64 = 400.0;

/// An uploader's own trend for one entry: its `direction` when it is one
/// of [`DIRECTIONS`] (anything else is dropped, as Nightscout clients send
/// free text here only by mistake), and its `delta` when finite and
/// plausible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnTrend {
    /// The uploader's arrow.
    pub direction: String,
    /// The uploader's change from its previous entry, mg/dL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
}

impl OwnTrend {
    /// The trend `e` carries, if it names a known direction.
    pub fn of(e: &Entry) -> Option<OwnTrend> {
        let direction = e.direction.as_deref()?;
        DIRECTIONS.contains(&direction).then(|| OwnTrend {
            direction: direction.to_owned(),
            delta: e.delta.filter(|d| d.is_finite() && d.abs() <= MAX_DELTA),
        })
    }
}

/// Nightscout entries from stored glucose (`points` oldest first): the
/// newest `count`, newest first. An entry an uploader posted carries the
/// uploader's own `direction` and `delta` (`own`, keyed by entry time in
/// ms, for points of `own_device`); any other takes its `delta` from its
/// predecessor in `points` (`0` for the first) and its `direction` from the
/// trend derived over the 15 minutes of `points` up to it
/// ([`vigil_model::trend::rate_at`]; `NONE` while too few readings are
/// there, as after a gap). The phone no longer sends the sensor's trend,
/// so the derived one is the only one; a caller that wants the oldest
/// entries' arrows passes 15 minutes of earlier points too.
pub fn entries(
    points: &[crate::domain::DataPoint],
    count: usize,
    own_device: &str,
    own: &std::collections::HashMap<i64, OwnTrend>,
) -> Vec<Entry> {
    let mut out = Vec::with_capacity(count.min(points.len()));
    let samples = crate::glucose::samples(points);
    for (i, p) in points.iter().enumerate().rev().take(count) {
        let prev = i.checked_sub(1).and_then(|j| points.get(j));
        let uploaded = (p.device == own_device)
            .then(|| own.get(&p.time.timestamp_millis()))
            .flatten();
        // No earlier reading to compare with: Nightscout's own "no trend"
        // values, never a missing field (clients compute `delta / 18` on
        // every entry and fail on a null).
        let computed_delta = match prev {
            Some(q) if p.time > q.time => ((p.mg_dl - q.mg_dl) * 10.0).round() / 10.0,
            _ => 0.0,
        };
        let computed = vigil_model::trend::rate_at(&samples, i)
            .map_or("NONE", direction)
            .to_owned();
        let (delta, direction) = match uploaded {
            Some(t) => (
                Some(t.delta.unwrap_or(computed_delta)),
                Some(t.direction.clone()),
            ),
            None => (Some(computed_delta), Some(computed)),
        };
        out.push(Entry {
            id: Some(format!(
                "{}-{}",
                crate::fhir::fhir_id(&p.device),
                p.time.timestamp_millis()
            )),
            kind: "sgv".into(),
            sgv: p.mg_dl.round(),
            date: p.time.timestamp_millis(),
            date_string: Some(date_string(p.time)),
            direction,
            delta,
            device: Some(p.device.clone()),
            noise: Some(1),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_newest_first_with_delta_and_direction() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let pts: Vec<crate::domain::DataPoint> = [100.0, 104.0, 120.0, 119.0]
            .iter()
            .enumerate()
            .map(|(i, v)| crate::domain::DataPoint {
                time: t0 + chrono::TimeDelta::minutes(5 * i as i64),
                mg_dl: *v,
                device: "dev".into(),
                held_back: false,
            })
            .collect();
        let none = std::collections::HashMap::new();
        let e = entries(&pts, 3, "nightscout", &none);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].sgv, 119.0);
        // The delta is the last step; the direction the 15-minute slope:
        // a step down after a rise is still rising (1.46 mg/dL/min).
        assert_eq!(e[0].delta, Some(-1.0));
        assert_eq!(e[0].direction.as_deref(), Some("FortyFiveUp"));
        assert_eq!(e[1].delta, Some(16.0));
        assert_eq!(e[1].direction.as_deref(), Some("SingleUp"));
        // Two readings, 5 minutes: too little for a rate.
        assert_eq!(e[2].direction.as_deref(), Some("NONE"));
        assert!(e[0].date > e[1].date);
        assert_eq!(
            e[0].date_string.as_deref(),
            Some("2026-03-01T00:15:00.000Z")
        );
        let oldest = &entries(&pts, 10, "nightscout", &none)[3];
        assert_eq!(
            (oldest.delta, oldest.direction.as_deref()),
            (Some(0.0), Some("NONE")),
            "the oldest has no predecessor, and still carries both fields"
        );
        let json = serde_json::to_value(&e[0]).unwrap();
        for k in [
            "_id",
            "type",
            "sgv",
            "date",
            "dateString",
            "direction",
            "delta",
            "device",
            "noise",
        ] {
            assert!(json.get(k).is_some(), "missing {k}");
        }
    }

    /// 5-minute points of device `cgm-1` with these values.
    fn series(values: &[f64]) -> Vec<crate::domain::DataPoint> {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| crate::domain::DataPoint {
                time: t0 + chrono::TimeDelta::minutes(5 * i as i64),
                mg_dl: *v,
                device: "cgm-1".into(),
                held_back: false,
            })
            .collect()
    }

    #[test]
    fn the_direction_is_derived_from_glucose_rising_falling_and_flat() {
        let none = std::collections::HashMap::new();
        let newest = |values: &[f64]| {
            entries(&series(values), 1, "nightscout", &none)
                .first()
                .and_then(|e| e.direction.clone())
        };
        // 2.4 mg/dL/min up, 1.2 down, and noise around a level.
        assert_eq!(
            newest(&[100.0, 112.0, 124.0, 136.0]).as_deref(),
            Some("SingleUp")
        );
        assert_eq!(
            newest(&[150.0, 144.0, 138.0, 132.0]).as_deref(),
            Some("FortyFiveDown")
        );
        assert_eq!(
            newest(&[110.0, 114.0, 108.0, 112.0]).as_deref(),
            Some("Flat")
        );
        assert_eq!(
            newest(&[200.0, 180.0, 160.0, 140.0]).as_deref(),
            Some("DoubleDown")
        );
    }

    #[test]
    fn an_uploader_s_own_arrow_and_delta_come_back_as_sent() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let pts: Vec<crate::domain::DataPoint> = [120.0, 120.0, 120.0]
            .iter()
            .enumerate()
            .map(|(i, v)| crate::domain::DataPoint {
                time: t0 + chrono::TimeDelta::minutes(5 * i as i64),
                mg_dl: *v,
                device: if i == 0 { "cgm-1" } else { "nightscout" }.into(),
                held_back: false,
            })
            .collect();
        let ms = |i: i64| (t0 + chrono::TimeDelta::minutes(5 * i)).timestamp_millis();
        let mut own = std::collections::HashMap::new();
        own.insert(
            ms(2),
            OwnTrend {
                direction: "SingleDown".into(),
                delta: Some(-12.0),
            },
        );
        own.insert(
            ms(1),
            OwnTrend {
                direction: "FortyFiveDown".into(),
                delta: None,
            },
        );
        // A trend stored for the CGM's moment is not the CGM's to carry.
        own.insert(
            ms(0),
            OwnTrend {
                direction: "DoubleUp".into(),
                delta: Some(30.0),
            },
        );
        let e = entries(&pts, 3, "nightscout", &own);
        assert_eq!(
            (e[0].direction.as_deref(), e[0].delta),
            (Some("SingleDown"), Some(-12.0))
        );
        // No delta sent: the computed one, never a missing field.
        assert_eq!(
            (e[1].direction.as_deref(), e[1].delta),
            (Some("FortyFiveDown"), Some(0.0))
        );
        assert_eq!(
            (e[2].direction.as_deref(), e[2].delta),
            (Some("NONE"), Some(0.0))
        );
    }

    #[test]
    fn only_known_directions_and_plausible_deltas_are_kept() {
        let entry = |d: &str, delta: Option<f64>| Entry {
            id: None,
            kind: "sgv".into(),
            sgv: 100.0,
            date: 0,
            date_string: None,
            direction: Some(d.into()),
            delta,
            device: None,
            noise: None,
        };
        assert_eq!(
            OwnTrend::of(&entry("NOT COMPUTABLE", Some(f64::NAN))),
            Some(OwnTrend {
                direction: "NOT COMPUTABLE".into(),
                delta: None
            })
        );
        assert_eq!(OwnTrend::of(&entry("<script>", Some(1.0))), None);
        assert_eq!(
            OwnTrend::of(&entry("Flat", Some(9_999.0))).unwrap().delta,
            None
        );
    }

    #[test]
    fn both_secret_forms_verify_against_one_hash() {
        let secret = "correct horse battery";
        let h = secret_hash(secret);
        assert_eq!(h.0.len(), 64);
        assert_eq!(secret_hash(&sha1_hex(secret)), h);
        assert_eq!(secret_hash(&sha1_hex(secret).to_uppercase()), h);
        assert_ne!(secret_hash("correct horse batterz"), h);
        // Known SHA-1 vector: the stored value is not the SHA-1 itself.
        assert_eq!(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_ne!(h.0, sha1_hex(secret));
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(validate_secret("short").is_err());
        assert!(validate_secret(&sha1_hex("x")).is_err());
        assert!(validate_secret("twelve chars").is_ok());
    }

    #[test]
    fn query_bounds_and_count() {
        let p = |k: &str, v: &str| (k.to_string(), v.to_string());
        let q = parse_query(&[
            p("count", "3"),
            p("find[date][$gt]", "1000"),
            p("find[date][$lt]", "5000"),
        ])
        .unwrap();
        assert_eq!(q.count, 3);
        assert_eq!(q.from.unwrap().timestamp_millis(), 1001);
        assert_eq!(q.to.unwrap().timestamp_millis(), 4999);
        let q = parse_query(&[
            p("find[date][$gte]", "2026-03-01T00:00:00Z"),
            p("count", "999999"),
        ])
        .unwrap();
        assert_eq!(q.count, MAX_COUNT);
        assert_eq!(q.from.unwrap().timestamp(), 1_772_323_200);
        assert_eq!(parse_query(&[]).unwrap().count, DEFAULT_COUNT);
        assert!(parse_query(&[p("count", "x")]).is_err());
        assert!(parse_query(&[p("find[date][$gte]", "soon")]).is_err());
    }

    #[test]
    fn directions_follow_rate_thresholds() {
        assert_eq!(direction(0.0), "Flat");
        assert_eq!(direction(-1.5), "FortyFiveDown");
        assert_eq!(direction(-3.5), "DoubleDown");
        assert_eq!(direction(2.2), "SingleUp");
    }

    #[test]
    fn xdrip_shaped_entry_parses() {
        let body = r#"[{"device":"xDrip-DexcomG6","date":1772323200000,"dateString":"2026-03-01T00:00:00.000Z","sgv":123,"delta":-1.5,"direction":"Flat","type":"sgv","filtered":123000,"unfiltered":123000,"rssi":100,"noise":1,"sysTime":"2026-03-01T00:00:00.000Z"}]"#;
        let e: Vec<Entry> = serde_json::from_str(body).unwrap();
        assert_eq!(e[0].sgv, 123.0);
        assert_eq!(e[0].kind, "sgv");
        assert_eq!(from_ms(e[0].date).unwrap().timestamp(), 1_772_323_200);
    }
}

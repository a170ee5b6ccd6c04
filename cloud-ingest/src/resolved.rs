//! Source precedence on the read side: every reader of patient data sees one
//! resolved series per quantity, whatever path its readings came in on.
//!
//! Place in the data flow: between the readings store and every reader
//! (`/v1/patients/{id}/readings`, metrics, the dashboard, FHIR, Nightscout,
//! CSV). Intake stores every original unchanged; this module reads them back
//! and applies `vigil_model::precedence` — the same resolver the phone runs —
//! with the patient's stored policy or the product default.
//!
//! Decisions that shaped it:
//! - **Resolved on read, originals kept.** A decision is a pure function of
//!   the stored originals and the policy, so it is computed when read rather
//!   than written beside the readings: a late reading (an uploader's
//!   backfill, a phone back from a week offline) or a policy change then
//!   re-decides its moments instead of leaving a stale decision behind. The
//!   policy in force is stored per patient and every change is audited, so
//!   any decision shown can be re-derived.
//! - **How the cloud classifies a source.** A Nightscout uploader's readings
//!   are filed under the device `nightscout` and a CSV import under
//!   `csv-import`; both get classes of those names, so the default policy
//!   ranks the phone's own CGM over them. Every other device takes the class
//!   its stream implies (Bluetooth profile: CGM, meter, strap, oximeter).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigil_model::precedence::{
    Decision, DeviceClass, Precedence, PrecedenceConfig, Quantity, RuleName,
};
use vigil_model::reading::{DeviceId, Provenance, Quality, Reading, Stream};

use crate::domain::PatientId;
use crate::error::{Error, Result};
use crate::storage::{ReadingQuery, Storage, StoredReading};

/// Most raw readings one resolution reads per stream (90 days of one-second
/// heart rate would not fit; 90 days of one-minute glucose does).
pub const MAX_RAW: u32 = 200_000;

/// The quantity named `name` (`heart_rate`, `glucose`, `spo2`).
pub fn quantity(name: &str) -> Result<Quantity> {
    Quantity::ALL
        .into_iter()
        .find(|q| q.as_str() == name)
        .ok_or_else(|| Error::InvalidInput("`quantity` must be heart_rate, glucose or spo2".into()))
}

/// `patient`'s policy for `quantity`: the stored one, else the default.
pub fn policy(s: &dyn Storage, patient: PatientId, quantity: Quantity) -> Result<Policy> {
    match s.precedence_policy(patient, quantity.as_str())? {
        Some(json) => {
            // Stored policies were validated when set; a row that no longer
            // parses (a downgrade) is an internal error, not a silent default.
            let config: PrecedenceConfig = serde_json::from_str(&json).map_err(|e| {
                Error::Internal(format!("stored precedence policy does not parse: {e}"))
            })?;
            Ok(Policy {
                config,
                default: false,
            })
        }
        None => Ok(Policy {
            config: PrecedenceConfig::default_for(quantity),
            default: true,
        }),
    }
}

/// A policy and whether it is the product default.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    /// The policy document.
    #[serde(flatten)]
    pub config: PrecedenceConfig,
    /// True when the patient has no policy of their own.
    pub default: bool,
}

/// Checks a policy document sent to be stored for `quantity`.
pub fn parse_policy(quantity: Quantity, body: &[u8]) -> Result<PrecedenceConfig> {
    let config: PrecedenceConfig = serde_json::from_slice(body)
        .map_err(|e| Error::InvalidInput(format!("precedence policy: {e}")))?;
    if config.quantity != quantity {
        return Err(Error::InvalidInput(format!(
            "precedence policy: the document is for `{}`, the request for `{}`",
            config.quantity.as_str(),
            quantity.as_str()
        )));
    }
    Precedence::new(config.clone())
        .map_err(|e| Error::InvalidInput(format!("precedence policy: {e}")))?;
    Ok(config)
}

/// One quantity of one patient over a period, resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The resolved series: one stored reading per moment, time order.
    pub series: Vec<StoredReading>,
    /// Every moment's decision, time order.
    pub decisions: Vec<Decision>,
    /// How many raw readings took part.
    pub raw: usize,
}

/// Resolves `patient`'s `quantity` in `[from, to)` from the given streams
/// (all of the quantity's streams when `streams` is `None`).
pub fn resolve(
    s: &dyn Storage,
    patient: PatientId,
    quantity: Quantity,
    streams: Option<&[Stream]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Resolved> {
    let mut raw = Vec::new();
    for stream in streams.unwrap_or(quantity.streams()) {
        raw.extend(s.readings(&ReadingQuery {
            patient,
            stream: Some(*stream),
            from,
            to,
            limit: MAX_RAW,
        })?);
    }
    let policy = policy(s, patient, quantity)?;
    resolve_rows(patient, policy.config, raw)
}

/// Resolves rows already read.
pub fn resolve_rows(
    patient: PatientId,
    config: PrecedenceConfig,
    rows: Vec<StoredReading>,
) -> Result<Resolved> {
    let who = vigil_model::reading::PatientId(patient.to_string());
    let mut precedence =
        Precedence::new(config).map_err(|e| Error::Internal(format!("precedence: {e}")))?;
    for device in [DeviceClass::NIGHTSCOUT, DeviceClass::IMPORT] {
        precedence =
            precedence.with_device_class(DeviceId(device.into()), DeviceClass::new(device));
    }
    let readings: Vec<Reading> = rows.iter().map(|r| reading(&who, r)).collect();
    let resolution = precedence
        .resolve(&who, &readings)
        .map_err(|e| Error::Internal(format!("precedence: {e}")))?;
    let by_key: HashMap<Key<'_>, &StoredReading> = rows.iter().map(|r| (key(r), r)).collect();
    let series = resolution
        .series
        .iter()
        .filter_map(|p| {
            let r = &p.reading;
            by_key
                .get(&(
                    r.provenance.device.0.as_str(),
                    r.stream,
                    r.provenance.session,
                    r.sequence,
                ))
                .map(|row| (*row).clone())
        })
        .collect();
    Ok(Resolved {
        series,
        decisions: resolution.decisions,
        raw: rows.len(),
    })
}

type Key<'a> = (&'a str, Stream, Option<i64>, u64);

fn key(r: &StoredReading) -> Key<'_> {
    (r.device.as_str(), r.stream, r.session, r.seq)
}

fn reading(patient: &vigil_model::reading::PatientId, r: &StoredReading) -> Reading {
    Reading {
        patient: patient.clone(),
        stream: r.stream,
        value: r.value,
        sensor_time: r.time,
        receive_time: r.time,
        sequence: r.seq,
        quality: Quality {
            percent: r.quality_percent,
            flagged: r.quality_flagged,
        },
        provenance: Provenance {
            device: DeviceId(r.device.clone()),
            characteristic: r.characteristic,
            raw: Vec::new(),
            session: r.session,
        },
    }
}

/// One stretch of time during which one source stood for the patient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourcePeriod {
    /// The device whose readings were used.
    pub device: String,
    /// Its class as the policy saw it.
    pub class: String,
    /// First moment of the stretch.
    pub from: DateTime<Utc>,
    /// Last moment of the stretch.
    pub to: DateTime<Utc>,
    /// Moments it stood for.
    pub moments: usize,
    /// Readings of other sources it was chosen over.
    pub overridden: usize,
    /// The rule that decided most of its contested moments (`uncontested`
    /// when no other source coincided).
    pub why: RuleName,
}

/// Which device stood for the patient when, from a resolution's decisions.
pub fn periods(decisions: &[Decision]) -> Vec<SourcePeriod> {
    let mut out: Vec<(SourcePeriod, HashMap<RuleName, usize>)> = Vec::new();
    for d in decisions {
        let Some(w) = &d.winner else { continue };
        let same = out
            .last()
            .is_some_and(|(p, _)| p.device == w.device.0 && p.class == w.class.0);
        if !same {
            out.push((
                SourcePeriod {
                    device: w.device.0.clone(),
                    class: w.class.0.clone(),
                    from: d.time,
                    to: d.time,
                    moments: 0,
                    overridden: 0,
                    why: RuleName::Uncontested,
                },
                HashMap::new(),
            ));
        }
        if let Some((p, rules)) = out.last_mut() {
            p.to = d.time;
            p.moments += 1;
            p.overridden += d.losers.len();
            if !d.losers.is_empty() {
                *rules.entry(d.decided_by).or_default() += 1;
            }
        }
    }
    out.into_iter()
        .map(|(mut p, rules)| {
            // Most frequent rule; ties by name so the answer is stable.
            if let Some((rule, _)) = rules.into_iter().max_by(|a, b| {
                a.1.cmp(&b.1)
                    .then_with(|| rule_key(b.0).cmp(&rule_key(a.0)))
            }) {
                p.why = rule;
            }
            p
        })
        .collect()
}

fn rule_key(r: RuleName) -> String {
    serde_json::to_string(&r).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn row(device: &str, stream: Stream, minute: i64, value: f64) -> StoredReading {
        StoredReading {
            device: device.into(),
            stream,
            session: None,
            seq: u64::try_from(minute).unwrap_or(0),
            time: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(minute),
            value,
            quality_percent: None,
            quality_flagged: false,
            characteristic: 0x2AA7,
            tolerance: None,
            held_back: false,
        }
    }

    #[test]
    fn the_phone_s_cgm_stands_over_an_uploader_s_copy_and_the_periods_say_so() {
        let mut rows = Vec::new();
        for i in 0..12 {
            rows.push(row("cgm-1", Stream::Glucose, i * 5, 100.0));
            rows.push(row(
                DeviceClass::NIGHTSCOUT,
                Stream::Glucose,
                i * 5 + 2,
                104.0,
            ));
        }
        // The phone goes quiet for the last hour; the uploader carries on.
        for i in 12..24 {
            rows.push(row(
                DeviceClass::NIGHTSCOUT,
                Stream::Glucose,
                i * 5 + 2,
                104.0,
            ));
        }
        let r = resolve_rows(
            7,
            PrecedenceConfig::default_for(Quantity::Glucose),
            rows.clone(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.series.len(), 24);
        assert!(r.series[..12].iter().all(|x| x.device == "cgm-1"));
        assert!(r.series[12..].iter().all(|x| x.device == "nightscout"));
        let p = periods(&r.decisions);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].moments, p[0].overridden), (12, 12));
        assert_eq!(p[0].why, RuleName::DeviceRank);
        assert_eq!((p[1].moments, p[1].overridden), (12, 0));
        assert_eq!(p[1].why, RuleName::Uncontested);
        rows.reverse();
        let again = resolve_rows(7, PrecedenceConfig::default_for(Quantity::Glucose), rows)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.series, r.series);
    }

    #[test]
    fn a_policy_for_another_quantity_or_without_rules_is_refused() {
        let hr = serde_json::to_vec(&PrecedenceConfig::default_for(Quantity::HeartRate))
            .unwrap_or_default();
        assert!(parse_policy(Quantity::Glucose, &hr).is_err());
        assert!(parse_policy(Quantity::HeartRate, &hr).is_ok());
        let mut empty = PrecedenceConfig::default_for(Quantity::HeartRate);
        empty.rules.clear();
        let empty = serde_json::to_vec(&empty).unwrap_or_default();
        assert!(parse_policy(Quantity::HeartRate, &empty).is_err());
        assert!(parse_policy(Quantity::HeartRate, b"{").is_err());
    }
}

//! FHIR R4 views of a patient's glucose, shaped per the HL7 FHIR
//! Continuous Glucose Monitoring IG (STU 1, `http://hl7.org/fhir/uv/cgm`).
//!
//! Place in the data flow: read side only. Readings (and the consensus
//! metrics computed by `vigil_model::metrics`, the same numbers the
//! dashboard shows) become a `searchset` Bundle of data-point Observations,
//! or a summary Bundle, each with the Patient and Device it references
//! included, so every reference resolves inside the Bundle.
//!
//! Decisions:
//! - Data points carry LOINC 99504-3 (glucose in interstitial fluid, mg/dL)
//!   and UCUM `mg/dL`, as the IG's sensor-reading profile requires.
//! - Summary Observations carry the IG's CGM summary code (checked against
//!   the IG's `cgm-summary-codes-temporary` list), plus the LOINC code
//!   wherever the IG's ConceptMap or its STU 1 examples name a published
//!   one (days of wear 104636-6, sensor active 104637-4, CV 104638-2, the
//!   panel 107931-8); UCUM `%`, `mg/dL` and `d`. GRI and time in tight
//!   range are extra members coded in Vigil's own code system
//!   ([`VIGIL_METRICS_CS`]); GRI is a pure number, UCUM `1` (shown as
//!   "score"): an annotation such as `{score}` is ignored when units are
//!   compared, which HAPI's validator flags as a trap.
//! - Data points name the Patient as performer: the reading is the
//!   patient's own, sent by their app or uploader. Summary measures have no
//!   performer: software computes them, and no R4 performer type fits.
//! - Summary Observations carry a generated narrative (what an EHR shows
//!   when it renders rather than reads them); data points do not: a feed of
//!   up to 90 days of five-minute readings would grow by a third and say
//!   nothing the value does not.
//! - Ids are derived from the stored reading (patient, device, time), so
//!   the same reading has the same id in every response.

pub(crate) mod routes;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::DataPoint;
use serde_json::{Value, json};
use vigil_model::metrics::GlucoseMetrics;

/// LOINC's system URI.
pub const LOINC: &str = "http://loinc.org";
/// UCUM's system URI.
pub const UCUM: &str = "http://unitsofmeasure.org";
/// The IG's code system for summary measures.
pub const CGM_SUMMARY_CS: &str =
    "http://hl7.org/fhir/uv/cgm/CodeSystem/cgm-summary-codes-temporary";
/// LOINC code of the summary panel, as the IG's STU 1 examples code it
/// (the ballot's code system stays first, for readers of either version).
pub const LOINC_CGM_SUMMARY: &str = "107931-8";
/// Vigil's own code system for summary measures that neither the IG's code
/// list nor LOINC names yet (GRI, time in tight range); stated in
/// `docs/architecture.md`. The IG's member slicing is open, so they travel
/// as extra members of the summary panel.
pub const VIGIL_METRICS_CS: &str = "https://example.invalid/vigil/fhir/CodeSystem/cgm-metrics";
/// LOINC code of the times-in-ranges panel, as the IG's STU 1 example
/// codes it.
pub const LOINC_TIMES_IN_RANGES: &str = "106793-3";
/// LOINC code of a CGM glucose data point in mg/dL.
pub const LOINC_CGM_MG_DL: &str = "99504-3";
/// The IG's profile of one data point in mg/dL.
pub const PROFILE_READING: &str =
    "http://hl7.org/fhir/uv/cgm/StructureDefinition/cgm-sensor-reading-mg-dl";

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A FHIR id may hold `[A-Za-z0-9-.]{1,64}`; anything else becomes `-`.
pub fn fhir_id(raw: &str) -> String {
    let id: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if id.is_empty() { "unknown".into() } else { id }
}

/// The Patient resource (no name or other identifiers: the service keeps
/// only a display name, and a FHIR export must not spread it further).
pub fn patient(patient_id: i64) -> Value {
    json!({
        "resourceType": "Patient",
        "id": patient_id.to_string(),
        "active": true,
    })
}

/// The Device resource for a stored device id.
pub fn device(device: &str) -> Value {
    json!({
        "resourceType": "Device",
        "id": fhir_id(device),
        "type": {"text": "Continuous glucose monitor"},
        "serialNumber": device,
    })
}

/// One data-point Observation per the IG's sensor-reading profile.
pub fn reading(patient_id: i64, p: &DataPoint) -> Value {
    json!({
        "resourceType": "Observation",
        "id": fhir_id(&format!("g-{patient_id}-{}-{}", fhir_id(&p.device), p.time.timestamp())),
        "meta": {"profile": [PROFILE_READING]},
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory"
        }]}],
        "code": {"coding": [{
            "system": LOINC,
            "code": LOINC_CGM_MG_DL,
            "display": "Glucose [Mass/volume] in Interstitial fluid"
        }]},
        "subject": {"reference": format!("Patient/{patient_id}")},
        "performer": [{"reference": format!("Patient/{patient_id}")}],
        "device": {"reference": format!("Device/{}", fhir_id(&p.device))},
        "effectiveDateTime": instant(p.time),
        "valueQuantity": {"value": p.mg_dl, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
    })
}

fn entry(base: &str, resource: Value, mode: &str) -> Value {
    let url = format!(
        "{base}/{}/{}",
        resource["resourceType"].as_str().unwrap_or("Resource"),
        resource["id"].as_str().unwrap_or("unknown")
    );
    json!({"fullUrl": url, "resource": resource, "search": {"mode": mode}})
}

fn included(base: &str, patient_id: i64, devices: &[String]) -> Vec<Value> {
    let mut out = vec![entry(base, patient(patient_id), "include")];
    let mut seen = std::collections::BTreeSet::new();
    for d in devices {
        if seen.insert(fhir_id(d)) {
            out.push(entry(base, device(d), "include"));
        }
    }
    out
}

/// The `searchset` Bundle answering `GET /fhir/Observation?patient=…`:
/// matches first (`mode: match`), then the Patient and Devices they
/// reference (`mode: include`). `base` is the server base URL.
///
/// `search` is the search as the server ran it (patient, code and the
/// resolved date range), for the Bundle's `self` link, so a client can page
/// or repeat exactly this answer.
pub fn observation_bundle(
    base: &str,
    patient_id: i64,
    points: &[DataPoint],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Value {
    let self_url = format!(
        "{base}/Observation?patient={patient_id}&code={}%7C{LOINC_CGM_MG_DL}&date=ge{}&date=lt{}",
        LOINC.replace(':', "%3A").replace('/', "%2F"),
        from.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        to.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    );
    let mut entries: Vec<Value> = points
        .iter()
        .map(|p| entry(base, reading(patient_id, p), "match"))
        .collect();
    let devices: Vec<String> = points.iter().map(|p| p.device.clone()).collect();
    entries.extend(included(base, patient_id, &devices));
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "self", "url": self_url}],
        "total": points.len(),
        "entry": entries,
    })
}

struct Measure {
    /// The code system of `code`: the IG's, or Vigil's own.
    system: &'static str,
    code: &'static str,
    display: &'static str,
    loinc: Option<&'static str>,
    value: f64,
    /// The UCUM code.
    ucum: &'static str,
    /// The unit as a person reads it (the UCUM code, except for GRI).
    unit: &'static str,
}

/// Escapes text for an XHTML narrative.
fn xhtml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A generated narrative holding one paragraph of plain text.
fn narrative(text: &str) -> Value {
    json!({
        "status": "generated",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{}</p></div>", xhtml_text(text)),
    })
}

fn period_text(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    format!("{} to {}", instant(start), instant(end))
}

fn summary_observation(
    patient_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    m: &Measure,
) -> Value {
    let mut coding = vec![json!({"system": m.system, "code": m.code, "display": m.display})];
    if let Some(l) = m.loinc {
        coding.push(json!({"system": LOINC, "code": l}));
    }
    let text = format!(
        "{}: {} {}, {}",
        m.display,
        round2(m.value),
        m.unit,
        period_text(start, end)
    );
    json!({
        "resourceType": "Observation",
        "id": fhir_id(&format!("s-{patient_id}-{}-{}-{}", start.timestamp(), end.timestamp(), m.code)),
        "text": narrative(&text),
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory"
        }]}],
        "code": {"coding": coding},
        "subject": {"reference": format!("Patient/{patient_id}")},
        "effectivePeriod": {"start": instant(start), "end": instant(end)},
        "valueQuantity": {"value": round2(m.value), "unit": m.unit, "system": UCUM, "code": m.ucum},
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The summary of a period (`$cgm-summary`): one Observation per consensus
/// measure, and a `cgm-summary` panel Observation whose `hasMember` points
/// at each of them, with the Patient and Devices included. A
/// `collection` Bundle, as it is computed, not searched.
pub fn summary_bundle(
    base: &str,
    patient_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    m: &GlucoseMetrics,
    devices: &[String],
) -> Value {
    let measures = [
        Measure {
            system: CGM_SUMMARY_CS,
            code: "mean-glucose-mass-per-volume",
            display: "Mean Glucose (Mass per Volume)",
            loinc: Some("97507-8"),
            value: m.mean_mg_dl,
            ucum: "mg/dL",
            unit: "mg/dL",
        },
        Measure {
            system: CGM_SUMMARY_CS,
            code: "gmi",
            display: "Glucose Management Indicator (GMI)",
            loinc: Some("97506-0"),
            value: m.gmi_pct,
            ucum: "%",
            unit: "%",
        },
        Measure {
            system: CGM_SUMMARY_CS,
            code: "cv",
            display: "Coefficient of Variation (CV)",
            loinc: Some("104638-2"),
            value: m.cv_pct,
            ucum: "%",
            unit: "%",
        },
        Measure {
            system: CGM_SUMMARY_CS,
            code: "time-in-very-low",
            display: "Time in Very Low Range (%)",
            loinc: Some("104642-4"),
            value: m.tbr_lt54_pct,
            ucum: "%",
            unit: "%",
        },
        Measure {
            system: CGM_SUMMARY_CS,
            code: "time-in-low",
            display: "Time in Low Range (%)",
            loinc: Some("104641-6"),
            value: m.tbr_lt70_pct - m.tbr_lt54_pct,
            ucum: "%",
            unit: "%",
        },
        Measure {
            system: CGM_SUMMARY_CS,
            code: "time-in-target",
            display: "Time in Target Range (%)",
            loinc: Some("97510-2"),
            value: m.tir_70_180_pct,
            ucum: "%",
            unit: "%",
        },
        Measure {
            system: CGM_SUMMARY_CS,
            code: "time-in-high",
            display: "Time in High Range (%)",
            loinc: Some("104640-8"),
            value: m.tar_gt180_pct - m.tar_gt250_pct,
            ucum: "%",
            unit: "%",
        },
        Measure {
            system: CGM_SUMMARY_CS,
            code: "time-in-very-high",
            display: "Time in Very High Range (%)",
            loinc: Some("104639-0"),
            value: m.tar_gt250_pct,
            ucum: "%",
            unit: "%",
        },
        Measure {
            system: CGM_SUMMARY_CS,
            code: "days-of-wear",
            display: "Days of Wear",
            loinc: Some("104636-6"),
            value: m.days,
            ucum: "d",
            unit: "d",
        },
        Measure {
            system: CGM_SUMMARY_CS,
            code: "sensor-active-percentage",
            display: "Sensor Active Percentage",
            loinc: Some("104637-4"),
            value: m.active_pct,
            ucum: "%",
            unit: "%",
        },
        Measure {
            system: VIGIL_METRICS_CS,
            code: "time-in-tight-range",
            display: "Time in Tight Range 70-140 mg/dL (%)",
            loinc: None,
            value: m.titr_70_140_pct,
            ucum: "%",
            unit: "%",
        },
        Measure {
            system: VIGIL_METRICS_CS,
            code: "glycemia-risk-index",
            display: "Glycemia Risk Index (GRI)",
            loinc: None,
            value: m.gri,
            ucum: "1",
            unit: "score",
        },
    ];
    let mut members: Vec<Value> = measures
        .iter()
        .map(|x| summary_observation(patient_id, start, end, x))
        .collect();
    // The five ranges once more as the IG's times-in-ranges panel (LOINC
    // 106793-3, one component per range), the shape its STU 1 example and
    // EHR importers read; the single Observations above stay for clients of
    // the earlier ballot.
    let ranges: Vec<Value> = measures
        .iter()
        .filter(|x| x.code.starts_with("time-in-") && x.system == CGM_SUMMARY_CS)
        .map(|x| {
            let mut coding = vec![json!({"system": x.system, "code": x.code, "display": x.display})];
            if let Some(l) = x.loinc {
                coding.push(json!({"system": LOINC, "code": l}));
            }
            json!({
                "code": {"coding": coding},
                "valueQuantity": {"value": round2(x.value), "unit": "%", "system": UCUM, "code": "%"},
            })
        })
        .collect();
    let ranges_text = measures
        .iter()
        .filter(|x| x.code.starts_with("time-in-") && x.system == CGM_SUMMARY_CS)
        .map(|x| format!("{}: {}", x.display, round2(x.value)))
        .collect::<Vec<_>>()
        .join("; ");
    members.push(json!({
        "resourceType": "Observation",
        "id": fhir_id(&format!("s-{patient_id}-{}-{}-times-in-ranges", start.timestamp(), end.timestamp())),
        "text": narrative(&format!("Times in Glucose Ranges, {}: {ranges_text}", period_text(start, end))),
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory"
        }]}],
        "code": {"coding": [
            {"system": CGM_SUMMARY_CS, "code": "times-in-ranges", "display": "Times in Glucose Ranges"},
            {"system": LOINC, "code": LOINC_TIMES_IN_RANGES},
        ]},
        "subject": {"reference": format!("Patient/{patient_id}")},
        "effectivePeriod": {"start": instant(start), "end": instant(end)},
        "component": ranges,
    }));
    let panel = json!({
        "resourceType": "Observation",
        "id": fhir_id(&format!("s-{patient_id}-{}-{}-panel", start.timestamp(), end.timestamp())),
        "text": narrative(&format!(
            "CGM Summary Report, {}: {} measures",
            period_text(start, end),
            members.len()
        )),
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory"
        }]}],
        "code": {"coding": [
            {"system": CGM_SUMMARY_CS, "code": "cgm-summary", "display": "CGM Summary Report"},
            {"system": LOINC, "code": LOINC_CGM_SUMMARY},
        ]},
        "subject": {"reference": format!("Patient/{patient_id}")},
        "effectivePeriod": {"start": instant(start), "end": instant(end)},
        "hasMember": members.iter().map(|o| json!({"reference": format!("Observation/{}", o["id"].as_str().unwrap_or(""))})).collect::<Vec<_>>(),
    });
    let mut entries = vec![entry(base, panel, "match")];
    entries.extend(members.into_iter().map(|o| entry(base, o, "match")));
    entries.extend(included(base, patient_id, devices));
    for e in &mut entries {
        if let Some(obj) = e.as_object_mut() {
            obj.remove("search");
        }
    }
    json!({"resourceType": "Bundle", "type": "collection", "timestamp": instant(Utc::now()), "entry": entries})
}

#[cfg(test)]
mod tests;

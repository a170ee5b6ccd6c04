use super::*;
use chrono::{TimeDelta, TimeZone};
use vigil_model::metrics::consensus_metrics;
use vigil_model::reading::Sample;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

fn points() -> Vec<DataPoint> {
    (0..288)
        .map(|i| DataPoint {
            time: t0() + TimeDelta::minutes(5 * i),
            mg_dl: 60.0 + (i % 200) as f64,
            device: if i < 100 {
                "SN 1/A".into()
            } else {
                "SN-2".into()
            },
            held_back: i % 3 != 0,
        })
        .collect()
}

/// Every `reference` anywhere in the bundle names an entry's
/// `resourceType/id`.
fn assert_references_resolve(bundle: &Value) {
    let ids: std::collections::BTreeSet<String> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let r = &e["resource"];
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            )
        })
        .collect();
    fn walk(v: &Value, ids: &std::collections::BTreeSet<String>, n: &mut usize) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("reference") {
                    assert!(ids.contains(r), "dangling reference {r}");
                    *n += 1;
                }
                m.values().for_each(|x| walk(x, ids, n));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, ids, n)),
            _ => {}
        }
    }
    let mut n = 0;
    walk(bundle, &ids, &mut n);
    assert!(n > 0, "no references checked");
}

#[test]
fn searchset_matches_the_ig_data_point_profile() {
    let pts = points();
    let (from, to) = (t0(), t0() + TimeDelta::days(1));
    let b = observation_bundle("http://x/fhir", 7, &pts, from, to);
    assert_eq!(b["link"][0]["relation"], "self");
    assert_eq!(
        b["link"][0]["url"],
        format!(
            "http://x/fhir/Observation?patient=7&code=http%3A%2F%2Floinc.org%7C99504-3&date=ge{}&date=lt{}",
            instant(from),
            instant(to)
        )
    );
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "searchset");
    assert_eq!(b["total"], 288);
    let entries = b["entry"].as_array().unwrap();
    let matches: Vec<&Value> = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .collect();
    assert_eq!(matches.len(), 288);
    for (e, p) in matches.iter().zip(&pts) {
        let o = &e["resource"];
        assert_eq!(o["resourceType"], "Observation");
        assert_eq!(o["status"], "final");
        assert_eq!(o["code"]["coding"][0]["system"], LOINC);
        assert_eq!(o["code"]["coding"][0]["code"], "99504-3");
        assert_eq!(o["valueQuantity"]["system"], UCUM);
        assert_eq!(o["valueQuantity"]["code"], "mg/dL");
        assert_eq!(o["valueQuantity"]["value"].as_f64().unwrap(), p.mg_dl);
        assert_eq!(o["effectiveDateTime"], instant(p.time));
        assert_eq!(o["subject"]["reference"], "Patient/7");
        // The patient's own reading: HAPI's validator asks every
        // Observation for a performer.
        assert_eq!(o["performer"][0]["reference"], "Patient/7");
        assert!(o.get("text").is_none(), "data points carry no narrative");
        assert!(
            o["device"]["reference"]
                .as_str()
                .unwrap()
                .starts_with("Device/")
        );
        assert!(
            e["fullUrl"]
                .as_str()
                .unwrap()
                .ends_with(o["id"].as_str().unwrap())
        );
    }
    // Ids are unique and FHIR-valid.
    let ids: std::collections::BTreeSet<&str> = entries
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), entries.len());
    for id in &ids {
        assert!(
            id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        );
    }
    // One Patient and two Devices included.
    let includes: Vec<&str> = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(includes, vec!["Patient", "Device", "Device"]);
    assert_references_resolve(&b);
}

#[test]
fn summary_bundle_carries_every_measure_with_units_and_resolvable_members() {
    let pts = points();
    let samples: Vec<Sample> = pts
        .iter()
        .map(|p| Sample {
            time: p.time,
            value: p.mg_dl,
        })
        .collect();
    let m = consensus_metrics(&samples, TimeDelta::minutes(5)).unwrap();
    let devices = vec!["SN-2".to_string()];
    let b = summary_bundle(
        "http://x/fhir",
        7,
        t0(),
        t0() + TimeDelta::days(1),
        &m,
        &devices,
    );
    assert_eq!(b["type"], "collection");
    let entries = b["entry"].as_array().unwrap();
    let panel = &entries[0]["resource"];
    assert_eq!(panel["code"]["coding"][0]["code"], "cgm-summary");
    assert_eq!(panel["hasMember"].as_array().unwrap().len(), 13);
    // The times-in-ranges panel: LOINC 106793-3, one component per range,
    // each with its LOINC code, the values those of the single ones.
    let tir = &entries
        .iter()
        .find(|e| e["resource"]["code"]["coding"][1]["code"] == "106793-3")
        .expect("times-in-ranges panel")["resource"];
    let components = tir["component"].as_array().unwrap();
    let loinc: Vec<&str> = components
        .iter()
        .map(|c| c["code"]["coding"][1]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        loinc,
        ["104642-4", "104641-6", "97510-2", "104640-8", "104639-0"]
    );
    let in_target = components[2]["valueQuantity"]["value"].as_f64().unwrap();
    assert!((in_target - m.tir_70_180_pct).abs() < 0.006);
    let by_code = |code: &str| -> &Value {
        &entries
            .iter()
            .find(|e| e["resource"]["code"]["coding"][0]["code"] == code)
            .unwrap_or_else(|| panic!("no {code}"))["resource"]
    };
    let mean = by_code("mean-glucose-mass-per-volume");
    assert_eq!(mean["valueQuantity"]["code"], "mg/dL");
    assert_eq!(mean["code"]["coding"][1]["code"], "97507-8");
    assert!((mean["valueQuantity"]["value"].as_f64().unwrap() - m.mean_mg_dl).abs() < 0.01);
    assert_eq!(by_code("gmi")["code"]["coding"][1]["code"], "97506-0");
    assert_eq!(by_code("days-of-wear")["valueQuantity"]["code"], "d");
    // Codes checked against the IG's code list (cgm-summary-codes-temporary)
    // and the LOINC codes its STU 1 examples use.
    let summary_codes = [
        "mean-glucose-mass-per-volume",
        "gmi",
        "cv",
        "time-in-very-low",
        "time-in-low",
        "time-in-target",
        "time-in-high",
        "time-in-very-high",
        "days-of-wear",
        "sensor-active-percentage",
    ];
    for code in summary_codes {
        let coding = &by_code(code)["code"]["coding"][0];
        assert_eq!(coding["system"], CGM_SUMMARY_CS, "{code}");
    }
    assert_eq!(
        by_code("days-of-wear")["code"]["coding"][1]["code"],
        "104636-6"
    );
    // CV as the IG's example codes it; GRI and tight range in Vigil's own
    // code system, with the core's figures.
    assert_eq!(by_code("cv")["code"]["coding"][1]["code"], "104638-2");
    assert_eq!(by_code("cv")["valueQuantity"]["code"], "%");
    let gri = by_code("glycemia-risk-index");
    assert_eq!(gri["code"]["coding"][0]["system"], VIGIL_METRICS_CS);
    assert!((gri["valueQuantity"]["value"].as_f64().unwrap() - m.gri).abs() < 0.006);
    // A pure number is UCUM `1`; an annotation like `{score}` is ignored
    // when units are compared, which the validator warns about.
    assert_eq!(gri["valueQuantity"]["code"], "1");
    assert_eq!(gri["valueQuantity"]["unit"], "score");
    let titr = by_code("time-in-tight-range");
    assert_eq!(titr["code"]["coding"][0]["system"], VIGIL_METRICS_CS);
    assert_eq!(titr["valueQuantity"]["code"], "%");
    assert!((titr["valueQuantity"]["value"].as_f64().unwrap() - m.titr_70_140_pct).abs() < 0.006);
    assert_eq!(
        by_code("sensor-active-percentage")["code"]["coding"][1]["code"],
        "104637-4"
    );
    assert_eq!(
        by_code("sensor-active-percentage")["valueQuantity"]["code"],
        "%"
    );
    assert_eq!(panel["code"]["coding"][1]["system"], LOINC);
    assert_eq!(panel["code"]["coding"][1]["code"], "107931-8");
    // The five ranges partition the readings.
    let sum: f64 = [
        "time-in-very-low",
        "time-in-low",
        "time-in-target",
        "time-in-high",
        "time-in-very-high",
    ]
    .iter()
    .map(|c| by_code(c)["valueQuantity"]["value"].as_f64().unwrap())
    .sum();
    assert!((sum - 100.0).abs() < 0.06, "ranges sum to {sum}");
    for e in entries
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
    {
        // Each summary Observation renders by itself in an EHR.
        let text = &e["resource"]["text"];
        assert_eq!(text["status"], "generated");
        let div = text["div"].as_str().unwrap();
        assert!(
            div.starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\">")
                && div.contains("2026-03-01T00:00:00Z to 2026-03-02T00:00:00Z"),
            "{div}"
        );
        assert!(e["resource"].get("performer").is_none());
        let p = &e["resource"]["effectivePeriod"];
        assert_eq!(p["start"], "2026-03-01T00:00:00Z");
        assert_eq!(p["end"], "2026-03-02T00:00:00Z");
    }
    assert_references_resolve(&b);
}

#[test]
fn narrative_text_is_escaped() {
    assert_eq!(
        narrative("a < b & c > d")["div"],
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>a &lt; b &amp; c &gt; d</p></div>"
    );
}

#[test]
fn ids_are_sanitised() {
    assert_eq!(fhir_id("SN 1/A"), "SN-1-A");
    assert_eq!(fhir_id(""), "unknown");
    assert_eq!(fhir_id(&"x".repeat(100)).len(), 64);
}

//! Nightscout treatments (boluses, meals, notes) as marks on the report's
//! daily charts: which ones a clinician reads off a glucose chart and how
//! each is labelled. The stored documents come from the Nightscout slice's
//! upload path; this is the dashboard's rule for drawing them.

use serde_json::Value;

use crate::dashboard::svg::{Mark, MarkKind};
use crate::domain::NsDocument;

/// A stored treatment as a marker for the report's daily charts, or
/// `None` for what a clinician does not read off a glucose chart (temporary
/// basal rates and profile switches a pump posts many times a day).
pub fn treatment_mark(d: &NsDocument) -> Option<Mark> {
    let v: Value = serde_json::from_str(&d.document).ok()?;
    let amount = |key: &str| v.get(key).and_then(Value::as_f64).filter(|x| *x > 0.0);
    let (insulin, carbs) = (amount("insulin"), amount("carbs"));
    let kind = match (insulin, carbs) {
        (Some(_), _) => MarkKind::Insulin,
        (None, Some(_)) => MarkKind::Carbs,
        (None, None) => {
            let event = d.kind.to_ascii_lowercase();
            let shown = [
                "note",
                "site change",
                "sensor",
                "exercise",
                "bg check",
                "announcement",
            ];
            if !shown.iter().any(|s| event.contains(s)) {
                return None;
            }
            MarkKind::Other
        }
    };
    let mut words = d.kind.clone();
    let mut parts = Vec::new();
    if let Some(u) = insulin {
        parts.push(format!("{u:.1} U insulin"));
    }
    if let Some(g) = carbs {
        parts.push(format!("{g:.0} g carbs"));
    }
    if let Some(n) = v.get("notes").and_then(Value::as_str) {
        // A note is the patient's words: kept short on a chart.
        parts.push(n.chars().take(80).collect());
    }
    if !parts.is_empty() {
        words = format!("{words}: {}", parts.join(", "));
    }
    Some(Mark {
        at: d.time,
        kind,
        words,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn treatments_become_chart_marks_and_temporary_basals_do_not() {
        let doc = |kind: &str, body: serde_json::Value| NsDocument {
            time: now(),
            kind: kind.into(),
            document: body.to_string(),
        };
        let bolus = treatment_mark(&doc(
            "Meal Bolus",
            json!({"eventType": "Meal Bolus", "insulin": 4.5, "carbs": 40, "notes": "pasta"}),
        ))
        .unwrap();
        assert_eq!(bolus.kind, MarkKind::Insulin);
        assert_eq!(bolus.words, "Meal Bolus: 4.5 U insulin, 40 g carbs, pasta");
        let meal = treatment_mark(&doc("Carb Correction", json!({"carbs": 15}))).unwrap();
        assert_eq!(meal.kind, MarkKind::Carbs);
        let change = treatment_mark(&doc("Sensor Change", json!({}))).unwrap();
        assert_eq!(change.words, "Sensor Change");
        assert!(treatment_mark(&doc("Temp Basal", json!({"rate": 0.8, "duration": 30}))).is_none());
        let long = "x".repeat(500);
        let note = treatment_mark(&doc("Note", json!({"notes": long}))).unwrap();
        assert_eq!(note.words.len(), "Note: ".len() + 80);
    }
}

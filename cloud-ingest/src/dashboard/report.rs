//! The patient report for a period (default 14 days): AGP, consensus
//! metrics with the time-in-ranges bar, daily overlays, the alert
//! timeline and the completeness ledger, laid out to print the AGP on one
//! page.
//!
//! Every number comes from `vigil_model::metrics`, the implementation the
//! phone uses, so patient and clinician never see two different figures.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use vigil_model::metrics::{GlucoseMetrics, agp_profile, consensus_metrics};
use vigil_model::precedence::RuleName;
use vigil_model::reading::Sample;

use crate::resolved::SourcePeriod;

use super::pages::layout;
use super::svg::{self, esc};

/// Expected CGM sampling interval.
pub const INTERVAL: TimeDelta = TimeDelta::minutes(5);

/// One alert on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertLine {
    /// When it was raised.
    pub at: DateTime<Utc>,
    /// Its kind (`urgent_low`, …).
    pub kind: String,
    /// Who acknowledged it and when, if anyone did.
    pub acked: Option<(String, DateTime<Utc>)>,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// Patient id.
    pub patient_id: i64,
    /// Display name.
    pub name: &'a str,
    /// Period start (inclusive).
    pub from: DateTime<Utc>,
    /// Period end (exclusive).
    pub to: DateTime<Utc>,
    /// Glucose readings of the period, mg/dL, time order.
    pub samples: &'a [Sample],
    /// Times of the readings among `samples` that the phone held back and
    /// the cloud reconstructed (within the reduction's tolerance).
    pub held_back: &'a [DateTime<Utc>],
    /// Alerts of the period.
    pub alerts: &'a [AlertLine],
    /// The patient's UTC offset (the AGP is by local time of day).
    pub offset: FixedOffset,
    /// Which glucose source stood for the patient when (source precedence).
    pub sources: &'a [SourcePeriod],
    /// The newest status a Nightscout uploader posted in the last week.
    pub uploader: Option<&'a Uploader>,
}

/// What an uploader (xDrip+, AndroidAPS, ...) last said about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploader {
    /// Its device name.
    pub device: String,
    /// The phone's battery, percent, when it said.
    pub battery: Option<f64>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Plain words for the rule that chose a source.
fn why(rule: RuleName) -> &'static str {
    match rule {
        RuleName::Uncontested => "only source at the time",
        RuleName::Validity => "the other readings were flagged or impossible",
        RuleName::Fresh => "the other source had gone stale",
        RuleName::DeviceRank => "ranks above the other sources in the patient's policy",
        RuleName::NewestSession => "newer sensor session than the overlapping backfill",
        RuleName::MostRecent => "most recent reading",
        RuleName::MostSevere => "lowest value near hypoglycaemia",
        RuleName::TieBreak => "tie broken by device id",
    }
}

fn day_label(t: DateTime<Utc>, offset: FixedOffset) -> String {
    // Year first, so the days sort in date order.
    t.with_timezone(&offset).format("%Y-%m-%d (%a)").to_string()
}

/// Days and wear of the period in words, for the sufficiency warning.
fn sufficiency(m: &GlucoseMetrics) -> String {
    let mut parts = Vec::new();
    if !m.enough_days {
        parts.push(format!("{} days with data (14 needed)", m.days_with_data));
    }
    if !m.enough_wear {
        parts.push(format!(
            "sensor active {:.0} % of the time (70 % needed)",
            m.active_pct
        ));
    }
    parts.join("; ")
}

/// One consensus measure: name, achieved value, target in words, and
/// whether the target is met (`None`: no consensus target).
type Target = (&'static str, String, &'static str, Option<bool>);

/// The consensus targets (Battelino et al., 2019; GRI: Klonoff et al.,
/// 2022) beside what the patient achieved, met or not in words as well as
/// colour.
fn targets(m: &GlucoseMetrics) -> String {
    let pct = |v: f64| format!("{v:.1} %");
    let rows: [Target; 10] = [
        (
            "Time in range 70–180 mg/dL",
            pct(m.tir_70_180_pct),
            "over 70 %",
            Some(m.tir_70_180_pct > 70.0),
        ),
        (
            "Time below 70 mg/dL",
            pct(m.tbr_lt70_pct),
            "under 4 %",
            Some(m.tbr_lt70_pct < 4.0),
        ),
        (
            "Time below 54 mg/dL",
            pct(m.tbr_lt54_pct),
            "under 1 %",
            Some(m.tbr_lt54_pct < 1.0),
        ),
        (
            "Time above 180 mg/dL",
            pct(m.tar_gt180_pct),
            "under 25 %",
            Some(m.tar_gt180_pct < 25.0),
        ),
        (
            "Time above 250 mg/dL",
            pct(m.tar_gt250_pct),
            "under 5 %",
            Some(m.tar_gt250_pct < 5.0),
        ),
        (
            "Time in tight range 70–140 mg/dL",
            pct(m.titr_70_140_pct),
            "no consensus target",
            None,
        ),
        (
            "Coefficient of variation",
            pct(m.cv_pct),
            "36 % or less",
            Some(m.cv_pct <= 36.0),
        ),
        (
            "Glycemia Risk Index",
            format!(
                "{:.0} (zone {:?}; hypo {:.1}, hyper {:.1})",
                m.gri, m.gri_zone, m.gri_hypo, m.gri_hyper
            ),
            "lower is better; zone A is 0–20",
            None,
        ),
        (
            "Sensor active",
            pct(m.active_pct),
            "70 % or more",
            Some(m.enough_wear),
        ),
        (
            "Days with data",
            m.days_with_data.to_string(),
            "14 or more",
            Some(m.enough_days),
        ),
    ];
    let mut out = String::from(
        r#"<table class="targets"><caption>Achieved against the consensus targets</caption><thead><tr><th scope="col">Measure</th><th scope="col">Achieved</th><th scope="col">Target</th><th scope="col">Met</th></tr></thead><tbody>"#,
    );
    for (name, achieved, target, met) in rows {
        let (class, word) = match met {
            Some(true) => ("met", "met"),
            Some(false) => ("unmet", "not met"),
            None => ("info", "—"),
        };
        let _ = write!(
            out,
            r#"<tr class="{class}"><th scope="row">{name}</th><td>{}</td><td>{target}</td><td>{word}</td></tr>"#,
            esc(&achieved)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// An alert kind in words, as a clinician reads it.
pub fn kind_words(kind: &str) -> String {
    match vigil_model::alerts::AlertKind::parse(kind) {
        Some(k) => {
            use vigil_model::alerts::AlertKind as K;
            match k {
                K::UrgentLow => "Urgent low",
                K::Low => "Low",
                K::High => "High",
                K::FastFall => "Fast fall",
                K::FastRise => "Fast rise",
                K::PredictedUrgentLow => "Urgent low soon",
                K::SignalLoss => "Signal loss",
                K::SensorSessionEnding => "Sensor session ending",
                K::BatteryLow => "Battery low",
            }
            .to_string()
        }
        None if kind == "app_silent" => "App silent".to_string(),
        None => capitalised(kind),
    }
}

fn capitalised(kind: &str) -> String {
    let words = kind.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

/// The report page's HTML.
pub fn render(r: &Report<'_>, csrf: &str) -> String {
    let mut main = String::new();
    let days_in_period = ((r.to - r.from).num_minutes() as f64 / 1440.0).max(0.0);
    let _ = write!(
        main,
        r#"<p class="period">{} — {} ({days_in_period:.0} days) · <a href="/v1/patients/{id}/readings.csv?from={f}&amp;to={t}">Download CSV</a></p>"#,
        esc(&r.from.format("%Y-%m-%d").to_string()),
        esc(&r.to.format("%Y-%m-%d").to_string()),
        id = r.patient_id,
        f = r.from.format("%Y-%m-%dT%H:%M:%SZ"),
        t = r.to.format("%Y-%m-%dT%H:%M:%SZ"),
    );
    if let Some(u) = r.uploader {
        let battery = u
            .battery
            .map(|b| format!(", phone battery {b:.0} %"))
            .unwrap_or_default();
        let _ = write!(
            main,
            r#"<p class="uploader">Uploader: {}{battery}, reported <time datetime="{}">{}</time></p>"#,
            esc(&u.device),
            u.at.to_rfc3339(),
            u.at.with_timezone(&r.offset).format("%Y-%m-%d %H:%M"),
        );
    }
    match consensus_metrics(r.samples, INTERVAL) {
        Err(_) => main.push_str(r#"<p class="empty">No glucose readings in this period.</p>"#),
        Ok(m) => {
            if !(m.enough_days && m.enough_wear) {
                let _ = write!(
                    main,
                    r#"<p class="warning" role="note"><strong>Limited data:</strong> {}. The consensus asks for at least 14 days with at least 70 % sensor wear before these figures describe the patient.</p>"#,
                    sufficiency(&m)
                );
            }
            let _ = write!(
                main,
                r#"<section class="metrics" aria-labelledby="m-h"><h2 id="m-h">Glucose statistics</h2><dl>
<dt>Mean glucose</dt><dd>{:.0} mg/dL</dd><dt>GMI</dt><dd>{:.1} %</dd><dt>Coefficient of variation</dt><dd>{:.1} %</dd>
<dt>Sensor active</dt><dd>{:.1} %</dd><dt>Readings</dt><dd>{}</dd></dl>{}{}</section>"#,
                m.mean_mg_dl,
                m.gmi_pct,
                m.cv_pct,
                m.active_pct,
                m.readings,
                svg::tir_bar(&m),
                targets(&m)
            );
            if let Ok(slots) = agp_profile(r.samples, TimeDelta::minutes(15), r.offset) {
                let _ = write!(
                    main,
                    r#"<section class="agp" aria-labelledby="agp-h"><h2 id="agp-h">Ambulatory glucose profile</h2>{}<p class="legend">Median line; dark band 25–75 %; light band 5–95 %; shaded target 70–180 mg/dL.</p></section>"#,
                    svg::agp(&slots)
                );
            }
        }
    }
    // Daily overlays and completeness ledger, by local day.
    let mut by_day: BTreeMap<String, Vec<(DateTime<Utc>, f64)>> = BTreeMap::new();
    for s in r.samples {
        by_day
            .entry(day_label(s.time, r.offset))
            .or_default()
            .push((s.time, s.value));
    }
    let days: Vec<svg::Day> = by_day.into_iter().collect();
    if !days.is_empty() {
        let _ = write!(
            main,
            r#"<section class="daily" aria-labelledby="d-h"><h2 id="d-h">Daily glucose</h2>{}</section>"#,
            svg::daily(&days, r.offset)
        );
        let mut held: BTreeMap<String, usize> = BTreeMap::new();
        for t in r.held_back {
            *held.entry(day_label(*t, r.offset)).or_default() += 1;
        }
        main.push_str(r#"<section class="ledger" aria-labelledby="l-h"><h2 id="l-h">Completeness</h2><table><caption>Readings per day (288 expected): sent as measured, and held back by the phone's reduction and reconstructed here within its tolerance (3 mg/dL)</caption><thead><tr><th scope="col">Day</th><th scope="col">Readings</th><th scope="col">Sent as measured</th><th scope="col">Held back and reconstructed within tolerance</th><th scope="col">Complete</th></tr></thead><tbody>"#);
        for (label, pts) in &days {
            let h = held.get(label).copied().unwrap_or(0).min(pts.len());
            let _ = write!(
                main,
                r#"<tr><th scope="row">{}</th><td>{}</td><td>{}</td><td>{h}</td><td>{:.0} %</td></tr>"#,
                esc(label),
                pts.len(),
                pts.len() - h,
                (pts.len() as f64 / 288.0 * 100.0).min(100.0)
            );
        }
        main.push_str("</tbody></table></section>");
    }
    if !r.sources.is_empty() {
        let _ = write!(
            main,
            r#"<section class="sources" aria-labelledby="s-h"><h2 id="s-h">Glucose sources</h2><table><caption>One value per moment, chosen by the patient's precedence policy; every set-aside reading is kept (<a href="/v1/patients/{id}/precedence?from={f}&amp;to={t}">audit view</a>)</caption><thead><tr><th scope="col">Device</th><th scope="col">Kind</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Values used</th><th scope="col">Readings set aside</th><th scope="col">Why</th></tr></thead><tbody>"#,
            id = r.patient_id,
            f = r.from.format("%Y-%m-%dT%H:%M:%SZ"),
            t = r.to.format("%Y-%m-%dT%H:%M:%SZ"),
        );
        for p in r.sources {
            let _ = write!(
                main,
                r#"<tr><th scope="row">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                esc(&p.device),
                esc(&p.class),
                p.from.with_timezone(&r.offset).format("%Y-%m-%d %H:%M"),
                p.to.with_timezone(&r.offset).format("%Y-%m-%d %H:%M"),
                p.moments,
                p.overridden,
                why(p.why),
            );
        }
        main.push_str("</tbody></table></section>");
    }
    main.push_str(r#"<section class="timeline" aria-labelledby="t-h"><h2 id="t-h">Alerts</h2>"#);
    if r.alerts.is_empty() {
        main.push_str("<p>No alerts in this period.</p>");
    } else {
        main.push_str("<ol>");
        for a in r.alerts {
            let ack = match &a.acked {
                Some((who, at)) => format!(
                    "acknowledged by {} at {}",
                    esc(who),
                    at.format("%Y-%m-%d %H:%M")
                ),
                None => "not acknowledged".into(),
            };
            let _ = write!(
                main,
                "<li><time datetime=\"{}\">{}</time> {} — {ack}</li>",
                a.at.to_rfc3339(),
                a.at.with_timezone(&r.offset).format("%Y-%m-%d %H:%M"),
                esc(&kind_words(&a.kind))
            );
        }
        main.push_str("</ol>");
    }
    main.push_str("</section>");
    layout(&format!("Report: {}", r.name), Some(csrf), &main)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn report_shows_metrics_agp_days_ledger_and_acks() {
        let from = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let samples: Vec<Sample> = (0..(2 * 288 - 10))
            .map(|i| Sample {
                time: from + INTERVAL * i,
                value: 100.0 + (i % 50) as f64,
            })
            .collect();
        // Day one: 200 of its 288 readings were held back on the phone.
        let held: Vec<DateTime<Utc>> = samples.iter().take(200).map(|s| s.time).collect();
        let alerts = vec![AlertLine {
            at: from + TimeDelta::hours(3),
            kind: "urgent_low".into(),
            acked: Some((
                "dr-own".into(),
                from + TimeDelta::hours(3) + TimeDelta::minutes(2),
            )),
        }];
        let r = Report {
            patient_id: 4,
            name: "Ada",
            from,
            to: from + TimeDelta::days(2),
            samples: &samples,
            held_back: &held,
            alerts: &alerts,
            offset: FixedOffset::east_opt(0).unwrap(),
            sources: &[],
            uploader: None,
        };
        let uploader = Uploader {
            device: "xDrip-DexcomG6".into(),
            battery: Some(71.0),
            at: from + TimeDelta::hours(40),
        };
        let r = Report {
            uploader: Some(&uploader),
            ..r
        };
        let page = render(&r, "c");
        assert!(page.contains("Uploader: xDrip-DexcomG6, phone battery 71 %, reported"));
        assert!(page.contains("agp-title"));
        assert!(page.contains("tir-title"));
        assert_eq!(page.matches("class=\"chart day\"").count(), 2);
        assert!(page.contains("<td>288</td><td>88</td><td>200</td><td>100 %</td>"));
        assert!(page.contains("<td>278</td><td>278</td><td>0</td><td>97 %</td>"));
        assert!(page.contains("acknowledged by dr-own at 2026-03-01 03:02"));
        assert!(page.contains("</time> Urgent low — "));
        // Two days: the sufficiency warning names the days, not the wear.
        assert!(page.contains("2 days with data (14 needed)"));
        assert!(!page.contains("sensor active"));
        assert!(page.contains("<th scope=\"row\">Time in range 70–180 mg/dL</th>"));
        let m = consensus_metrics(&samples, INTERVAL).unwrap();
        assert!(page.contains(&format!("<dd>{:.0} mg/dL</dd>", m.mean_mg_dl)));
    }

    #[test]
    fn empty_period_says_so() {
        let from = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let r = Report {
            patient_id: 4,
            name: "Ada",
            from,
            to: from + TimeDelta::days(14),
            samples: &[],
            held_back: &[],
            alerts: &[],
            offset: FixedOffset::east_opt(0).unwrap(),
            sources: &[],
            uploader: None,
        };
        let page = render(&r, "c");
        assert!(page.contains("No glucose readings in this period."));
        assert!(!page.contains("agp-title"));
    }
}

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
use vigil_model::metrics::{GlucoseMetrics, agp_profile};
use vigil_model::precedence::RuleName;
use vigil_model::reading::Sample;

use crate::resolved::SourcePeriod;

use super::pages::layout;
use super::svg::{self, esc};
use super::units::GlucoseUnit;
use super::words::{kind_words, moment, offset_label};

use crate::glucose::period_metrics;

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
    /// The patient's UTC offset (the AGP is by local time of day, and every
    /// moment on the report is shown at it).
    pub offset: FixedOffset,
    /// When the report is drawn: moments on this day (at `offset`) show
    /// their time alone.
    pub now: DateTime<Utc>,
    /// Which glucose source stood for the patient when (source precedence).
    pub sources: &'a [SourcePeriod],
    /// The newest status a Nightscout uploader posted in the last week.
    pub uploader: Option<&'a Uploader>,
    /// The unit the clinic reads glucose in.
    pub unit: GlucoseUnit,
    /// Glucose of the period of the same length just before, for the
    /// comparison column (empty: no column).
    pub previous: &'a [Sample],
    /// Treatments (meals, insulin, notes, site and sensor changes) an
    /// uploader posted for the period, marked on the daily charts.
    pub treatments: &'a [svg::Mark],
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

/// One consensus measure: name, what a period achieved, target in words,
/// and whether a period met it (`None`: no consensus target).
struct Target {
    name: String,
    achieved: fn(&GlucoseMetrics) -> String,
    target: &'static str,
    met: fn(&GlucoseMetrics) -> Option<bool>,
}

fn pct(v: f64) -> String {
    format!("{v:.1} %")
}

/// The consensus targets (Battelino et al., 2019; GRI: Klonoff et al.,
/// 2022) beside what the patient achieved, met or not in words as well as
/// colour, and, when there is one, what the period before achieved: the
/// comparison a clinician makes at every visit.
fn targets(m: &GlucoseMetrics, previous: Option<&GlucoseMetrics>, unit: GlucoseUnit) -> String {
    let v = |mg: f64| unit.value(mg);
    let u = unit.label();
    let rows = [
        Target {
            name: format!("Time in range {}–{} {u}", v(70.0), v(180.0)),
            achieved: |m| pct(m.tir_70_180_pct),
            target: "over 70 %",
            met: |m| Some(m.tir_70_180_pct > 70.0),
        },
        Target {
            name: format!("Time below {} {u}", v(70.0)),
            achieved: |m| pct(m.tbr_lt70_pct),
            target: "under 4 %",
            met: |m| Some(m.tbr_lt70_pct < 4.0),
        },
        Target {
            name: format!("Time below {} {u}", v(54.0)),
            achieved: |m| pct(m.tbr_lt54_pct),
            target: "under 1 %",
            met: |m| Some(m.tbr_lt54_pct < 1.0),
        },
        Target {
            name: format!("Time above {} {u}", v(180.0)),
            achieved: |m| pct(m.tar_gt180_pct),
            target: "under 25 %",
            met: |m| Some(m.tar_gt180_pct < 25.0),
        },
        Target {
            name: format!("Time above {} {u}", v(250.0)),
            achieved: |m| pct(m.tar_gt250_pct),
            target: "under 5 %",
            met: |m| Some(m.tar_gt250_pct < 5.0),
        },
        Target {
            name: format!("Time in tight range {}–{} {u}", v(70.0), v(140.0)),
            achieved: |m| pct(m.titr_70_140_pct),
            target: "no consensus target",
            met: |_| None,
        },
        Target {
            name: "Coefficient of variation".into(),
            achieved: |m| pct(m.cv_pct),
            target: "36 % or less",
            met: |m| Some(m.cv_pct <= 36.0),
        },
        Target {
            name: "Glycemia Risk Index".into(),
            achieved: |m| {
                format!(
                    "{:.0} (zone {:?}; hypo {:.1}, hyper {:.1})",
                    m.gri, m.gri_zone, m.gri_hypo, m.gri_hyper
                )
            },
            target: "lower is better; zone A is 0–20",
            met: |_| None,
        },
        Target {
            name: "Sensor active".into(),
            achieved: |m| pct(m.active_pct),
            target: "70 % or more",
            met: |m| Some(m.enough_wear),
        },
        Target {
            name: "Days with data".into(),
            achieved: |m| m.days_with_data.to_string(),
            target: "14 or more",
            met: |m| Some(m.enough_days),
        },
    ];
    let before = if previous.is_some() {
        r#"<th scope="col">Period before</th>"#
    } else {
        ""
    };
    let mut out = format!(
        r#"<table class="targets"><caption>Achieved against the consensus targets</caption><thead><tr><th scope="col">Measure</th><th scope="col">Achieved</th><th scope="col">Target</th><th scope="col">Met</th>{before}</tr></thead><tbody>"#,
    );
    for row in rows {
        let (class, word) = match (row.met)(m) {
            Some(true) => ("met", "met"),
            Some(false) => ("unmet", "not met"),
            None => ("info", "—"),
        };
        let before = previous
            .map(|p| {
                let met = match (row.met)(p) {
                    Some(true) => " (met)",
                    Some(false) => " (not met)",
                    None => "",
                };
                format!("<td>{}{met}</td>", esc(&(row.achieved)(p)))
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<tr class="{class}"><th scope="row">{}</th><td>{}</td><td>{}</td><td class="verdict">{word}</td>{before}</tr>"#,
            esc(&row.name),
            esc(&(row.achieved)(m)),
            row.target,
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// Report lengths the chooser offers, in days.
pub const PERIOD_DAYS: [i64; 4] = [7, 14, 30, 90];

/// A small GET form: the period's length (ending now) or custom dates
/// (the end date included), and the unit.
fn chooser(patient: i64, days: i64, unit: GlucoseUnit) -> String {
    let mut out = format!(
        r#"<form class="chooser" method="get" action="/dashboard/patients/{patient}"><label>Period <select name="days">"#
    );
    for d in PERIOD_DAYS {
        let selected = if d == days { " selected" } else { "" };
        let _ = write!(
            out,
            r#"<option value="{d}"{selected}>last {d} days</option>"#
        );
    }
    out.push_str(r#"</select></label> <label>or from <input type="date" name="from"></label> <label>to <input type="date" name="to"></label> <label>Unit <select name="units">"#);
    out.push_str(&GlucoseUnit::options(unit));
    out.push_str(r#"</select></label> <button type="submit">Show</button></form>"#);
    out
}

/// The report page's HTML.
pub fn render(r: &Report<'_>, csrf: &str) -> String {
    let mut main = String::new();
    let days_in_period = ((r.to - r.from).num_minutes() as f64 / 1440.0).max(0.0);
    let _ = write!(
        main,
        r#"<p class="period">{} — {} ({days_in_period:.0} days) · times in the patient's local time ({zone}) · <a href="/v1/patients/{id}/readings.csv?from={f}&amp;to={t}">Download CSV</a></p>"#,
        esc(&r.from.format("%Y-%m-%d").to_string()),
        // The period ends before `to`: its last day is the one before a
        // midnight end.
        esc(&(r.to - TimeDelta::microseconds(1))
            .format("%Y-%m-%d")
            .to_string()),
        id = r.patient_id,
        zone = offset_label(r.offset),
        f = r.from.format("%Y-%m-%dT%H:%M:%SZ"),
        t = r.to.format("%Y-%m-%dT%H:%M:%SZ"),
    );
    main.push_str(&chooser(
        r.patient_id,
        days_in_period.round() as i64,
        r.unit,
    ));
    if let Some(u) = r.uploader {
        let battery = u
            .battery
            .map(|b| format!(", phone battery {b:.0} %"))
            .unwrap_or_default();
        let _ = write!(
            main,
            r#"<p class="uploader">Uploader: {}{battery}, reported {}</p>"#,
            esc(&u.device),
            moment(u.at, r.now, r.offset),
        );
    }
    let previous = period_metrics(r.previous).ok();
    match period_metrics(r.samples) {
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
<dt>Mean glucose</dt><dd>{}</dd><dt>GMI</dt><dd>{:.1} %</dd><dt>Coefficient of variation</dt><dd>{:.1} %</dd>
<dt>Sensor active</dt><dd>{:.1} %</dd><dt>Readings</dt><dd>{}</dd></dl>{}{}</section>"#,
                r.unit.with_unit(m.mean_mg_dl),
                m.gmi_pct,
                m.cv_pct,
                m.active_pct,
                m.readings,
                svg::tir_bar(&m, r.unit),
                targets(&m, previous.as_ref(), r.unit)
            );
            let _ = write!(
                main,
                r#"<section class="gri" aria-labelledby="g-h"><h2 id="g-h">Glycemia Risk Index</h2>{}<p class="legend">Hyperglycaemia component (up) against hypoglycaemia component (across); zones A (lowest risk) to E.{}</p></section>"#,
                svg::gri_grid(&m, previous.as_ref()),
                if previous.is_some() {
                    " The ring is the period before."
                } else {
                    ""
                }
            );
            if let Ok(slots) = agp_profile(r.samples, TimeDelta::minutes(15), r.offset) {
                let _ = write!(
                    main,
                    r#"<section class="agp" aria-labelledby="agp-h"><h2 id="agp-h">Ambulatory glucose profile</h2>{}<p class="legend">Median line; dark band 25–75 %; light band 5–95 %; shaded target {}–{} {}.</p></section>"#,
                    svg::agp(&slots, r.unit),
                    r.unit.value(70.0),
                    r.unit.value(180.0),
                    r.unit.label()
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
        let mut marks: Vec<Vec<svg::Mark>> = vec![Vec::new(); days.len()];
        for t in r.treatments {
            let label = day_label(t.at, r.offset);
            if let Ok(i) = days.binary_search_by(|(l, _)| l.as_str().cmp(&label)) {
                marks[i].push(t.clone());
            }
        }
        let legend = if r.treatments.is_empty() {
            ""
        } else {
            r#"<p class="legend">Treatments along the top: ▲ carbohydrates, ▼ insulin, ◆ other (notes, site and sensor changes); hover for details.</p>"#
        };
        let _ = write!(
            main,
            r#"<section class="daily" aria-labelledby="d-h"><h2 id="d-h">Daily glucose</h2>{}{legend}</section>"#,
            svg::daily(&days, &marks, r.offset)
        );
        let mut held: BTreeMap<String, usize> = BTreeMap::new();
        for t in r.held_back {
            *held.entry(day_label(*t, r.offset)).or_default() += 1;
        }
        let _ = write!(
            main,
            r#"<section class="ledger" aria-labelledby="l-h"><h2 id="l-h">Completeness</h2><table><caption>Readings per day (288 expected): sent as measured, and held back by the phone's reduction and reconstructed here within its tolerance ({})</caption><thead><tr><th scope="col">Day</th><th scope="col">Readings</th><th scope="col">Sent as measured</th><th scope="col">Held back and reconstructed within tolerance</th><th scope="col">Complete</th></tr></thead><tbody>"#,
            r.unit.with_unit(3.0)
        );
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
                moment(p.from, r.now, r.offset),
                moment(p.to, r.now, r.offset),
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
                    moment(*at, r.now, r.offset)
                ),
                None => "not acknowledged".into(),
            };
            let _ = write!(
                main,
                "<li>{} {} — {ack}</li>",
                moment(a.at, r.now, r.offset),
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
    use crate::glucose::CGM_INTERVAL as INTERVAL;
    use chrono::TimeZone;
    use vigil_model::metrics::consensus_metrics;

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
            now: Utc::now(),
            sources: &[],
            uploader: None,
            unit: GlucoseUnit::MgDl,
            previous: &[],
            treatments: &[],
        };
        let uploader = Uploader {
            device: "xDrip-DexcomG6".into(),
            battery: Some(71.0),
            at: from + TimeDelta::hours(40),
        };
        let meal = svg::Mark {
            at: from + TimeDelta::hours(7),
            kind: svg::MarkKind::Carbs,
            words: "Meal Bolus: 40 g carbs".into(),
        };
        let treatments = [meal];
        let r = Report {
            uploader: Some(&uploader),
            treatments: &treatments,
            ..r
        };
        let page = render(&r, "c");
        assert!(page.contains("Uploader: xDrip-DexcomG6, phone battery 71 %, reported"));
        // The meal sits on day one's chart only, at 07:00.
        assert_eq!(page.matches("class=\"t-carbs\"").count(), 1);
        assert!(page.contains("<title>07:00 Meal Bolus: 40 g carbs</title>"));
        assert!(page.contains("▲ carbohydrates"));
        assert!(page.contains("agp-title"));
        assert!(page.contains("tir-title"));
        assert_eq!(page.matches("class=\"chart day\"").count(), 2);
        assert!(page.contains("<td>288</td><td>88</td><td>200</td><td>100 %</td>"));
        assert!(page.contains("<td>278</td><td>278</td><td>0</td><td>97 %</td>"));
        assert!(page.contains(
            r#"acknowledged by dr-own at <time datetime="2026-03-01T03:02:00Z">2026-03-01 03:02</time>"#
        ));
        assert!(page.contains("</time> Urgent low — "));
        // Every moment at the patient's offset, the date left off on the
        // day the report is drawn (the acknowledgement was shown in UTC).
        let east = Report {
            offset: FixedOffset::east_opt(3600).unwrap(),
            now: "2026-03-01T20:00:00Z".parse().unwrap(),
            ..r.clone()
        };
        let page = render(&east, "c");
        assert!(page.contains(
            r#"acknowledged by dr-own at <time datetime="2026-03-01T03:02:00Z">04:02</time>"#
        ));
        assert!(page.contains("patient's local time (UTC+01:00)"));
        // Two days: the sufficiency warning names the days, not the wear.
        assert!(page.contains("2 days with data (14 needed)"));
        assert!(!page.contains("sensor active"));
        assert!(page.contains("<th scope=\"row\">Time in range 70–180 mg/dL</th>"));
        let m = consensus_metrics(&samples, INTERVAL).unwrap();
        assert!(page.contains(&format!("<dd>{:.0} mg/dL</dd>", m.mean_mg_dl)));
        // No period before: no comparison column.
        assert!(!page.contains("Period before"));
        assert!(page.contains(r#"<option value="mgdl" selected>mg/dL</option>"#));
    }

    #[test]
    fn mmol_and_the_period_before_read_as_a_clinic_outside_the_us_expects() {
        let from = Utc.with_ymd_and_hms(2026, 3, 15, 0, 0, 0).unwrap();
        let day = |start: DateTime<Utc>, level: f64| -> Vec<Sample> {
            (0..288 * 14)
                .map(|i| Sample {
                    time: start + INTERVAL * i,
                    value: level + (i % 20) as f64,
                })
                .collect()
        };
        // This fortnight in range; the one before mostly high.
        let samples = day(from, 110.0);
        let before = day(from - TimeDelta::days(14), 200.0);
        let r = Report {
            patient_id: 4,
            name: "Ada",
            from,
            to: from + TimeDelta::days(14),
            samples: &samples,
            held_back: &[],
            alerts: &[],
            offset: FixedOffset::east_opt(0).unwrap(),
            now: Utc::now(),
            sources: &[],
            uploader: None,
            unit: GlucoseUnit::MmolL,
            previous: &before,
            treatments: &[],
        };
        let page = render(&r, "c");
        assert!(page.contains("<th scope=\"row\">Time in range 3.9–10.0 mmol/L</th>"));
        assert!(page.contains("<th scope=\"row\">Time below 3.0 mmol/L</th>"));
        assert!(page.contains("<th scope=\"row\">Time above 13.9 mmol/L</th>"));
        // No mg/dL left on an mmol/L page but the chooser's way back.
        assert_eq!(page.matches("mg/dL").count(), 1);
        assert!(page.contains(r#"<option value="mgdl">mg/dL</option>"#));
        let m = consensus_metrics(&samples, INTERVAL).unwrap();
        assert!(page.contains(&format!(
            "<dd>{:.1} mmol/L</dd>",
            m.mean_mg_dl / super::super::units::MG_DL_PER_MMOL_L
        )));
        // The comparison column: met now, not met before.
        assert!(page.contains("<th scope=\"col\">Period before</th>"));
        let p = consensus_metrics(&before, INTERVAL).unwrap();
        assert!(page.contains(&format!(
            "<td>{:.1} %</td><td>over 70 %</td><td class=\"verdict\">met</td><td>{:.1} % (not met)</td>",
            m.tir_70_180_pct, p.tir_70_180_pct
        )));
        assert!(page.contains(r#"<option value="mmol" selected>mmol/L</option>"#));
        assert!(page.contains(r#"<option value="14" selected>last 14 days</option>"#));
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
            now: Utc::now(),
            sources: &[],
            uploader: None,
            unit: GlucoseUnit::MgDl,
            previous: &[],
            treatments: &[],
        };
        let page = render(&r, "c");
        assert!(page.contains("No glucose readings in this period."));
        assert!(!page.contains("agp-title"));
    }
}

//! The dashboard's HTML pages, rendered on the server.
//!
//! Every page: `lang="en"`, one `h1`, a skip link, labelled form controls,
//! the live-alerts region (`aria-live`) filled by `app.js`, and no inline
//! script or style, so the Content-Security-Policy can forbid both.

use std::fmt::Write;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::svg::esc;
use super::units::GlucoseUnit;
use super::words;

/// The Content-Security-Policy of every dashboard response: only this
/// origin's script, style and connections; no framing, no plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML response with the dashboard's security headers.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    r
}

/// Adds CSP, no-sniff, no-referrer and no-store (pages hold PHI).
pub fn secure_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// A 303 to `to` (after a form POST, or to the sign-in page).
pub fn redirect(to: &'static str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    secure_headers(r.headers_mut());
    r
}

/// The page frame. `csrf` is `Some` when signed in: then the header holds
/// the sign-out form and the live-alerts region.
pub fn layout(title: &str, csrf: Option<&str>, main: &str) -> String {
    let mut out = String::with_capacity(main.len() + 2048);
    let _ = write!(
        out,
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · Vigil</title><link rel="stylesheet" href="/dashboard/static/app.css"><script src="/dashboard/static/app.js" defer></script></head>
<body><a class="skip" href="#main">Skip to content</a>
<header class="top"><p class="brand"><a href="/dashboard/">Vigil</a></p>"##,
        esc(title)
    );
    if let Some(csrf) = csrf {
        out.push_str(r#"<nav class="nav" aria-label="Dashboard"><a href="/dashboard/">Patients</a><a href="/dashboard/triage">Triage list</a></nav>"#);
        let _ = write!(
            out,
            r#"<form method="post" action="/dashboard/logout" class="signout"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">Sign out</button></form>"#
        );
    }
    out.push_str("</header>");
    if let Some(csrf) = csrf {
        let _ = write!(
            out,
            r#"<section id="live-alerts" class="live" aria-labelledby="live-h" data-csrf="{csrf}"><h2 id="live-h">Live alerts</h2><ul id="live-list" aria-live="assertive"></ul><p id="live-state" class="muted">Connecting…</p>{words}</section>"#,
            words = super::words::kind_words_list(),
        );
    }
    let _ = write!(
        out,
        r#"<main id="main" tabindex="-1"><h1>{}</h1>{main}</main></body></html>"#,
        esc(title)
    );
    out
}

/// The sign-in page; `error` is shown above the form.
pub fn login(login_csrf: &str, error: Option<&str>) -> String {
    let mut main = String::new();
    if let Some(e) = error {
        let _ = write!(main, r#"<p class="error" role="alert">{}</p>"#, esc(e));
    }
    let _ = write!(
        main,
        r#"<form method="post" action="/dashboard/login" class="login"><input type="hidden" name="csrf" value="{login_csrf}"><label for="token">Clinician token</label><input id="token" name="token" type="password" autocomplete="current-password" required><button type="submit">Sign in</button></form>"#
    );
    layout("Sign in", None, &main)
}

/// How recently a patient's phone was heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Heartbeat {
    /// Heard from recently.
    Live,
    /// Quiet for longer than expected.
    Silent,
    /// Not heard from for a long time, or never.
    Offline,
}

impl Heartbeat {
    fn label(self) -> &'static str {
        match self {
            Heartbeat::Live => "live",
            Heartbeat::Silent => "silent",
            Heartbeat::Offline => "offline",
        }
    }
}

/// One row of the patient list.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientRow {
    /// Patient id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Latest glucose: time, mg/dL, trend in mg/dL per minute.
    pub latest: Option<(DateTime<Utc>, f64, Option<f64>)>,
    /// Unacknowledged alerts.
    pub active_alerts: u32,
    /// Heartbeat state.
    pub heartbeat: Heartbeat,
    /// Share of expected 5-minute readings present over 14 days, percent.
    pub completeness_pct: Option<f64>,
}

/// Urgency for sorting: active alerts first, then lows, then silence.
pub fn urgency(r: &PatientRow) -> (u32, u8, u8) {
    let low = match r.latest {
        Some((_, v, _)) if v < 54.0 => 2,
        Some((_, v, _)) if v < 70.0 => 1,
        _ => 0,
    };
    let hb = match r.heartbeat {
        Heartbeat::Offline => 2,
        Heartbeat::Silent => 1,
        Heartbeat::Live => 0,
    };
    (r.active_alerts, low, hb)
}

/// An arrow for a trend in mg/dL per minute, and its spoken name: the
/// shared rule's thresholds ([`vigil_model::trend::Arrow`]), with 45° and
/// one-arrow steps shown, two-arrow rates under the one arrow.
pub fn arrow(rate: f64) -> (&'static str, &'static str) {
    match rate {
        r if r >= 2.0 => ("↑", "rising fast"),
        r if r >= 1.0 => ("↗", "rising"),
        r if r > -1.0 => ("→", "steady"),
        r if r > -2.0 => ("↘", "falling"),
        _ => ("↓", "falling fast"),
    }
}

/// The form that saves the clinician's glucose unit.
fn unit_form(csrf: &str, unit: GlucoseUnit) -> String {
    format!(
        r#"<form method="post" action="/dashboard/preferences" class="prefs"><input type="hidden" name="csrf" value="{csrf}"><label for="pref-unit">Glucose unit</label> <select id="pref-unit" name="units">{}</select> <button type="submit">Save</button></form>"#,
        GlucoseUnit::options(unit)
    )
}

/// The patient list, most urgent first, glucose in `unit`, with the form
/// that changes the clinician's unit.
pub fn patient_list(
    mut rows: Vec<PatientRow>,
    now: DateTime<Utc>,
    csrf: &str,
    unit: GlucoseUnit,
) -> String {
    rows.sort_by(|a, b| urgency(b).cmp(&urgency(a)).then(a.id.cmp(&b.id)));
    let mut main = String::from(
        r#"<table class="patients"><caption>Your patients, most urgent first</caption><thead><tr><th scope="col">Patient</th><th scope="col">Latest glucose</th><th scope="col">Active alerts</th><th scope="col">Phone</th><th scope="col">14-day completeness</th></tr></thead><tbody>"#,
    );
    for r in &rows {
        let latest = match r.latest {
            Some((t, v, rate)) => {
                let (a, spoken) = rate.map(arrow).unwrap_or(("", "trend unknown"));
                format!(
                    r#"{} <span aria-label="{spoken}" title="{spoken}">{a}</span> <time class="muted" datetime="{}">{}</time>"#,
                    unit.with_unit(v),
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    words::ago(t, now)
                )
            }
            None => "no readings".into(),
        };
        let completeness = r
            .completeness_pct
            .map(|c| format!("{c:.0} %"))
            .unwrap_or_else(|| "–".into());
        let _ = write!(
            main,
            r#"<tr class="hb-{hb}"><th scope="row"><a href="/dashboard/patients/{id}">{name}</a></th><td>{latest}</td><td>{alerts}</td><td>{hb}</td><td>{completeness}</td></tr>"#,
            hb = r.heartbeat.label(),
            id = r.id,
            name = esc(&r.name),
            alerts = r.active_alerts,
        );
    }
    main.push_str("</tbody></table>");
    if rows.is_empty() {
        main.push_str(r#"<p>No patients are assigned to you.</p>"#);
    }
    main.push_str(&unit_form(csrf, unit));
    layout("Patients", Some(csrf), &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, alerts: u32, v: Option<f64>, hb: Heartbeat) -> PatientRow {
        PatientRow {
            id,
            name: format!("P{id} <b>"),
            latest: v.map(|v| (Utc::now(), v, Some(-1.5))),
            active_alerts: alerts,
            heartbeat: hb,
            completeness_pct: Some(93.4),
        }
    }

    #[test]
    fn list_is_sorted_by_urgency_and_escaped() {
        let page = patient_list(
            vec![
                row(1, 0, Some(120.0), Heartbeat::Live),
                row(2, 0, Some(60.0), Heartbeat::Live),
                row(3, 2, Some(150.0), Heartbeat::Live),
                row(4, 0, None, Heartbeat::Offline),
            ],
            Utc::now(),
            "tok",
            GlucoseUnit::MgDl,
        );
        let pos = |id: i64| page.find(&format!("/dashboard/patients/{id}\"")).unwrap();
        assert!(pos(3) < pos(2) && pos(2) < pos(4) && pos(4) < pos(1));
        assert!(page.contains("P1 &lt;b&gt;") && !page.contains("P1 <b>"));
        assert!(page.contains("aria-label=\"falling\""));
        assert!(page.contains("93 %"));
        assert!(page.starts_with("<!doctype html>\n<html lang=\"en\">"));
        assert!(page.contains("name=\"csrf\" value=\"tok\""));
        assert!(!page.contains("<script>"), "no inline script");
        assert!(page.contains("120 mg/dL"));
        assert!(page.contains(r#"<option value="mgdl" selected>mg/dL</option>"#));
    }

    #[test]
    fn the_list_reads_in_the_clinician_s_unit() {
        let page = patient_list(
            vec![row(1, 0, Some(126.0), Heartbeat::Live)],
            Utc::now(),
            "tok",
            GlucoseUnit::MmolL,
        );
        assert!(page.contains("7.0 mmol/L"), "{page}");
        assert!(page.contains(r#"<option value="mmol" selected>mmol/L</option>"#));
        assert!(page.contains(r#"<label for="pref-unit">"#));
    }

    #[test]
    fn login_form_labels_its_input() {
        let page = login("c", Some("Unknown token"));
        assert!(page.contains(r#"<label for="token">"#) && page.contains(r#"id="token""#));
        assert!(page.contains("role=\"alert\""));
        assert!(
            !page.contains("live-alerts"),
            "no live region before sign-in"
        );
    }
}

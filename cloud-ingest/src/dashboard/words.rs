//! How the dashboard says things: alert kinds in words, and one format for
//! a moment on every page.
//!
//! A moment is its clock time when it falls on the reader's today and the
//! date and clock time otherwise, always inside a `<time>` element that
//! carries the exact instant (screen readers and copy-paste get the full
//! value). The live-alert script formats the same way from the same kind
//! words, which every signed-in page lists for it ([`kind_words_list`]).

use std::fmt::Write;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use vigil_model::alerts::AlertKind;

use super::svg::esc;

/// An alert kind in words, as a clinician reads it.
pub fn kind_words(kind: &str) -> String {
    match AlertKind::parse(kind) {
        Some(k) => known(k).to_string(),
        None if kind == APP_SILENT => "App silent".to_string(),
        None => capitalised(kind),
    }
}

/// How long ago `t` was, rounded down to minutes, hours or days: the
/// glance a list needs ("12 min ago"); the exact instant stays on the
/// patient's page. A future `t` (a skewed phone clock) reads "0 min ago".
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let m = (now - t).num_minutes().max(0);
    if m < 60 {
        format!("{m} min ago")
    } else if m < 48 * 60 {
        format!("{} h ago", m / 60)
    } else {
        format!("{} d ago", m / 1440)
    }
}

/// The cloud's own alert (the dead-man's switch), beside the SDK's kinds.
const APP_SILENT: &str = "app_silent";

fn known(k: AlertKind) -> &'static str {
    match k {
        AlertKind::UrgentLow => "Urgent low",
        AlertKind::Low => "Low",
        AlertKind::High => "High",
        AlertKind::FastFall => "Fast fall",
        AlertKind::FastRise => "Fast rise",
        AlertKind::PredictedUrgentLow => "Urgent low soon",
        AlertKind::SignalLoss => "Signal loss",
        AlertKind::SensorSessionEnding => "Sensor session ending",
        AlertKind::BatteryLow => "Battery low",
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

/// A hidden list of every alert kind and its words, for the live-alert
/// script: the words are written once, here, not again in JavaScript.
pub fn kind_words_list() -> String {
    let mut out = String::from(r#"<ul id="kind-words" hidden>"#);
    let kinds = AlertKind::ALL
        .iter()
        .map(|k| k.as_str())
        .chain([APP_SILENT]);
    for kind in kinds {
        let _ = write!(
            out,
            r#"<li data-kind="{}">{}</li>"#,
            esc(kind),
            esc(&kind_words(kind))
        );
    }
    out.push_str("</ul>");
    out
}

/// `at` as the dashboard shows a moment, at `offset` (the patient's, on a
/// report): `14:05` on `now`'s day there, `2026-12-03 14:05` on any other.
pub fn moment(at: DateTime<Utc>, now: DateTime<Utc>, offset: FixedOffset) -> String {
    let local = at.with_timezone(&offset);
    let shown = if local.date_naive() == now.with_timezone(&offset).date_naive() {
        local.format("%H:%M")
    } else {
        local.format("%Y-%m-%d %H:%M")
    };
    format!(
        r#"<time datetime="{}">{shown}</time>"#,
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// The offset as a reader sees it stated once per page: `UTC+01:00`.
pub fn offset_label(offset: FixedOffset) -> String {
    format!("UTC{offset}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn ago_rounds_down_to_the_unit_a_list_reads_and_clamps_the_future() {
        let now = utc(2026, 12, 6, 9, 0);
        assert_eq!(ago(utc(2026, 12, 6, 8, 1), now), "59 min ago");
        assert_eq!(ago(utc(2026, 12, 6, 8, 0), now), "1 h ago");
        assert_eq!(ago(utc(2026, 12, 4, 9, 1), now), "47 h ago");
        assert_eq!(ago(utc(2026, 12, 4, 9, 0), now), "2 d ago");
        assert_eq!(ago(utc(2026, 12, 6, 10, 0), now), "0 min ago");
    }

    #[test]
    fn a_moment_today_shows_its_time_and_any_other_its_date_too() {
        let zero = FixedOffset::east_opt(0).unwrap();
        let now = utc(2026, 12, 6, 9, 0);
        assert_eq!(
            moment(utc(2026, 12, 6, 8, 5), now, zero),
            r#"<time datetime="2026-12-06T08:05:00Z">08:05</time>"#
        );
        assert_eq!(
            moment(utc(2026, 12, 5, 23, 55), now, zero),
            r#"<time datetime="2026-12-05T23:55:00Z">2026-12-05 23:55</time>"#
        );
    }

    #[test]
    fn today_is_the_reader_s_today_at_the_offset() {
        // 23:30 UTC on the 5th is 00:30 on the 6th in UTC+1: today there.
        let plus_one = FixedOffset::east_opt(3600).unwrap();
        let now = utc(2026, 12, 6, 9, 0);
        assert!(moment(utc(2026, 12, 5, 23, 30), now, plus_one).ends_with(">00:30</time>"));
        assert_eq!(offset_label(plus_one), "UTC+01:00");
    }

    #[test]
    fn every_kind_has_words_and_the_list_names_them_all() {
        let list = kind_words_list();
        for k in AlertKind::ALL {
            let words = kind_words(k.as_str());
            assert!(!words.contains('_'), "{words}");
            assert!(list.contains(&format!(r#"data-kind="{}">{words}<"#, k.as_str())));
        }
        assert!(list.contains(r#"data-kind="app_silent">App silent<"#));
        assert_eq!(kind_words("new_kind"), "New kind");
    }
}

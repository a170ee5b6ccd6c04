//! The triage list (issue 17): every assigned patient on one page, sortable
//! and filterable by the consensus risk markers, from the per-day glucose
//! summaries (`crate::glucose_days`), never from the readings.
//!
//! Plain GET links and one GET form (no script: the CSP forbids inline
//! script and the page needs none). Sortable columns are links in their
//! `th`, the sorted one carries `aria-sort`. A figure that misses its
//! consensus target (Battelino et al., 2019) is bold and dark red and says
//! so in words for screen readers.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::glucose_days::Figures;

use super::pages::layout;
use super::svg::esc;
use super::words;

/// What the list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Display name.
    Patient,
    /// Percent below 54 mg/dL.
    Tbr54,
    /// Percent below 70 mg/dL.
    Tbr70,
    /// Glycemia Risk Index.
    Gri,
    /// Drop in time in range against the previous period.
    TirDrop,
    /// Percent of 5-minute slots with a reading.
    Wear,
    /// Time since the phone was last heard from.
    Contact,
}

impl SortKey {
    const ALL: [SortKey; 7] = [
        SortKey::Patient,
        SortKey::Tbr54,
        SortKey::Tbr70,
        SortKey::Gri,
        SortKey::TirDrop,
        SortKey::Wear,
        SortKey::Contact,
    ];

    fn query(self) -> &'static str {
        match self {
            SortKey::Patient => "patient",
            SortKey::Tbr54 => "tbr54",
            SortKey::Tbr70 => "tbr70",
            SortKey::Gri => "gri",
            SortKey::TirDrop => "tir_drop",
            SortKey::Wear => "wear",
            SortKey::Contact => "contact",
        }
    }

    /// The order a click on the column asks for first: the riskier end.
    fn first_order(self) -> Order {
        match self {
            SortKey::Patient | SortKey::Wear => Order::Asc,
            _ => Order::Desc,
        }
    }
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

impl Order {
    fn query(self) -> &'static str {
        match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        }
    }
}

/// Which patients the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Show {
    /// Everyone.
    All,
    /// Any consensus time-in-ranges target missed.
    Unmet,
    /// Time below 54 mg/dL at 1 % or more.
    Tbr54,
    /// Time below 70 mg/dL at 4 % or more.
    Tbr70,
    /// GRI above 40 (zone C or worse).
    Gri,
    /// Time in range down 5 points or more against the previous period.
    TirDrop,
    /// Sensor wear below 70 %.
    LowWear,
    /// The phone has gone silent.
    Silent,
}

impl Show {
    const ALL: [(Show, &'static str); 8] = [
        (Show::All, "all patients"),
        (Show::Unmet, "any time-in-ranges target missed"),
        (Show::Tbr54, "time below 54 mg/dL 1 % or more"),
        (Show::Tbr70, "time below 70 mg/dL 4 % or more"),
        (Show::Gri, "GRI above 40 (zone C–E)"),
        (Show::TirDrop, "time in range down 5 points or more"),
        (Show::LowWear, "sensor wear under 70 %"),
        (Show::Silent, "phone silent"),
    ];

    fn query(self) -> &'static str {
        match self {
            Show::All => "all",
            Show::Unmet => "unmet",
            Show::Tbr54 => "tbr54",
            Show::Tbr70 => "tbr70",
            Show::Gri => "gri",
            Show::TirDrop => "tir_drop",
            Show::LowWear => "low_wear",
            Show::Silent => "silent",
        }
    }
}

/// The page's query, as a form or a link sends it.
#[derive(Debug, Deserialize)]
pub struct TriageQuery {
    /// Period length in days, ending today (UTC); default 14.
    pub days: Option<u16>,
    /// Sort column; default `gri`.
    pub sort: Option<SortKey>,
    /// Sort order; default the column's riskier end first.
    pub order: Option<Order>,
    /// Filter; default `all`.
    pub show: Option<Show>,
}

/// The one message for a query that does not parse (never echoes it).
pub const BAD_QUERY: &str = "`days` must be 1 to 90, `sort` one of patient, tbr54, tbr70, gri, tir_drop, wear, contact, `order` asc or desc, `show` one of all, unmet, tbr54, tbr70, gri, tir_drop, low_wear, silent";

/// The query resolved to its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Period length in days.
    pub days: i64,
    /// Sort column.
    pub sort: SortKey,
    /// Sort order.
    pub order: Order,
    /// Filter.
    pub show: Show,
}

impl View {
    /// Checks `q` and fills in the defaults.
    pub fn of(q: &TriageQuery) -> Result<View> {
        let days = i64::from(q.days.unwrap_or(14));
        if !(1..=90).contains(&days) {
            return Err(Error::InvalidInput(BAD_QUERY.into()));
        }
        let sort = q.sort.unwrap_or(SortKey::Gri);
        Ok(View {
            days,
            sort,
            order: q.order.unwrap_or(sort.first_order()),
            show: q.show.unwrap_or(Show::All),
        })
    }

    fn href(&self, sort: SortKey, order: Order) -> String {
        format!(
            "/dashboard/triage?days={}&amp;show={}&amp;sort={}&amp;order={}",
            self.days,
            self.show.query(),
            sort.query(),
            order.query()
        )
    }
}

/// One patient's row.
#[derive(Debug, Clone, PartialEq)]
pub struct TriageRow {
    /// Patient id.
    pub id: i64,
    /// Display name (PHI: escaped, never logged).
    pub name: String,
    /// The period's figures; `None` without readings.
    pub figures: Option<Figures>,
    /// Percent of the period's 5-minute slots (up to now) with a reading.
    pub wear_pct: f64,
    /// Time in range of the previous period minus this one's, points
    /// (positive: a drop); `None` when either period has no readings.
    pub tir_drop: Option<f64>,
    /// When the phone was last heard from (batch or heartbeat), if ever.
    pub last_contact: Option<DateTime<Utc>>,
    /// Whether the phone counts as silent (the dead-man's switch).
    pub silent: bool,
}

/// Which consensus targets the figures miss: (below 54, below 70, in
/// range, above 180, above 250).
fn misses(f: &Figures) -> [bool; 5] {
    [
        f.tbr_lt54_pct >= 1.0,
        f.tbr_lt70_pct >= 4.0,
        f.tir_70_180_pct <= 70.0,
        f.tar_gt180_pct >= 25.0,
        f.tar_gt250_pct >= 5.0,
    ]
}

fn shown(r: &TriageRow, show: Show) -> bool {
    match show {
        Show::All => true,
        Show::Unmet => r.figures.is_some_and(|f| misses(&f).iter().any(|m| *m)),
        Show::Tbr54 => r.figures.is_some_and(|f| f.tbr_lt54_pct >= 1.0),
        Show::Tbr70 => r.figures.is_some_and(|f| f.tbr_lt70_pct >= 4.0),
        Show::Gri => r.figures.is_some_and(|f| f.gri > 40.0),
        Show::TirDrop => r.tir_drop.is_some_and(|d| d >= 5.0),
        Show::LowWear => r.wear_pct < 70.0,
        Show::Silent => r.silent,
    }
}

/// The sort value of a row; `None` sorts last in either order.
fn key(r: &TriageRow, sort: SortKey, now: DateTime<Utc>) -> Option<f64> {
    match sort {
        SortKey::Patient => None,
        SortKey::Tbr54 => r.figures.map(|f| f.tbr_lt54_pct),
        SortKey::Tbr70 => r.figures.map(|f| f.tbr_lt70_pct),
        SortKey::Gri => r.figures.map(|f| f.gri),
        SortKey::TirDrop => r.tir_drop,
        SortKey::Wear => Some(r.wear_pct),
        // Minutes of silence: "descending" is the longest silence first.
        SortKey::Contact => Some(
            r.last_contact
                .map_or(f64::INFINITY, |t| (now - t).num_seconds() as f64),
        ),
    }
}

/// Filters and sorts the rows as `view` asks (ties by name, then id).
pub fn arrange(mut rows: Vec<TriageRow>, view: &View, now: DateTime<Utc>) -> Vec<TriageRow> {
    rows.retain(|r| shown(r, view.show));
    let by_name = |a: &TriageRow, b: &TriageRow| a.name.cmp(&b.name).then(a.id.cmp(&b.id));
    rows.sort_by(|a, b| {
        let primary = if view.sort == SortKey::Patient {
            by_name(a, b)
        } else {
            match (key(a, view.sort, now), key(b, view.sort, now)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => return std::cmp::Ordering::Less,
                (None, Some(_)) => return std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        };
        let primary = match view.order {
            Order::Asc => primary,
            Order::Desc => primary.reverse(),
        };
        primary.then_with(|| by_name(a, b))
    });
    rows
}

/// The small stacked time-in-ranges bar of one row (very low to very
/// high, left to right), in the report's colours.
pub fn bar(f: &Figures) -> String {
    let parts = [
        ("very-low", "very low <54", f.tbr_lt54_pct),
        ("low", "low 54–69", f.tbr_lt70_pct - f.tbr_lt54_pct),
        ("target", "target 70–180", f.tir_70_180_pct),
        ("high", "high 181–250", f.tar_gt180_pct - f.tar_gt250_pct),
        ("very-high", "very high >250", f.tar_gt250_pct),
    ];
    let words = parts
        .iter()
        .map(|(_, name, pct)| format!("{name}: {pct:.1} %"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="tir-mini" viewBox="0 0 100 12" preserveAspectRatio="none" role="img"><title>Time in ranges: {}</title>"#,
        esc(&words)
    );
    let mut x = 0.0;
    for (class, _, pct) in parts {
        let w = pct.max(0.0);
        if w > 0.0 {
            let _ = write!(
                out,
                r#"<rect class="r-{class}" x="{x:.2}" y="0" width="{w:.2}" height="12"/>"#
            );
        }
        x += w;
    }
    out.push_str("</svg>");
    out
}

fn pct_cell(value: f64, missed: bool, target: &str) -> String {
    if missed {
        format!(
            r#"<td class="miss"><strong>{value:.1} %</strong><span class="sr"> (target {target}: not met)</span></td>"#
        )
    } else {
        format!("<td>{value:.1} %</td>")
    }
}

/// The page's HTML. `rows` are every assigned patient; `view` filters and
/// sorts them.
pub fn render(rows: Vec<TriageRow>, view: &View, now: DateTime<Utc>, csrf: &str) -> String {
    let total = rows.len();
    let rows = arrange(rows, view, now);
    let mut main = String::with_capacity(2048 + rows.len() * 1600);
    let _ = write!(
        main,
        r#"<form class="chooser" method="get" action="/dashboard/triage"><label>Period <select name="days">"#
    );
    for d in super::report::PERIOD_DAYS {
        let selected = if d == view.days { " selected" } else { "" };
        let _ = write!(
            main,
            r#"<option value="{d}"{selected}>last {d} days</option>"#
        );
    }
    main.push_str(r#"</select></label> <label>Show <select name="show">"#);
    for (s, words) in Show::ALL {
        let selected = if s == view.show { " selected" } else { "" };
        let _ = write!(
            main,
            r#"<option value="{}"{selected}>{words}</option>"#,
            s.query()
        );
    }
    let _ = write!(
        main,
        r#"</select></label><input type="hidden" name="sort" value="{}"><input type="hidden" name="order" value="{}"> <button type="submit">Show</button></form>"#,
        view.sort.query(),
        view.order.query()
    );
    let _ = write!(
        main,
        r#"<p class="muted">{} of {total} patients. The last {} days (UTC) against the {} days before. A figure in bold misses its consensus target (time in range over 70 %, below 70 under 4 %, below 54 under 1 %, above 180 under 25 %, above 250 under 5 %).</p>"#,
        rows.len(),
        view.days,
        view.days
    );
    let filter = Show::ALL
        .iter()
        .find(|(s, _)| *s == view.show)
        .map_or("", |(_, w)| w);
    let _ = write!(
        main,
        r#"<table class="triage"><caption>Triage: {filter}, sorted by {} ({})</caption><thead><tr>"#,
        column_name(view.sort),
        match view.order {
            Order::Asc => "ascending",
            Order::Desc => "descending",
        }
    );
    for (i, sort) in SortKey::ALL.iter().enumerate() {
        if i == 1 {
            main.push_str(r#"<th scope="col">Time in ranges</th>"#);
        }
        if i == 3 {
            main.push_str(r#"<th scope="col">In range 70–180</th><th scope="col">Above 180</th><th scope="col">Above 250</th>"#);
        }
        let (aria, next) = if *sort == view.sort {
            match view.order {
                Order::Asc => (r#" aria-sort="ascending""#, Order::Desc),
                Order::Desc => (r#" aria-sort="descending""#, Order::Asc),
            }
        } else {
            ("", sort.first_order())
        };
        let _ = write!(
            main,
            r#"<th scope="col"{aria}><a href="{}">{}</a></th>"#,
            view.href(*sort, next),
            column_name(*sort)
        );
    }
    main.push_str("</tr></thead><tbody>");
    for r in &rows {
        let _ = write!(
            main,
            r#"<tr><th scope="row"><a href="/dashboard/patients/{}?days={}">{}</a></th>"#,
            r.id,
            view.days,
            esc(&r.name)
        );
        match r.figures {
            Some(f) => {
                let m = misses(&f);
                let _ = write!(
                    main,
                    "<td>{}</td>{}{}{}{}{}<td>{:.0}</td>",
                    bar(&f),
                    pct_cell(f.tbr_lt54_pct, m[0], "under 1 %"),
                    pct_cell(f.tbr_lt70_pct, m[1], "under 4 %"),
                    pct_cell(f.tir_70_180_pct, m[2], "over 70 %"),
                    pct_cell(f.tar_gt180_pct, m[3], "under 25 %"),
                    pct_cell(f.tar_gt250_pct, m[4], "under 5 %"),
                    f.gri
                );
            }
            None => main.push_str(r#"<td colspan="7">no readings</td>"#),
        }
        match r.tir_drop {
            Some(d) if d >= 5.0 => {
                let _ = write!(
                    main,
                    r#"<td class="miss"><strong>{d:.1} points down</strong></td>"#
                );
            }
            Some(d) if d > 0.0 => {
                let _ = write!(main, "<td>{d:.1} points down</td>");
            }
            Some(d) => {
                let _ = write!(main, "<td>{:.1} points up</td>", -d);
            }
            None => main.push_str("<td>–</td>"),
        }
        if r.wear_pct < 70.0 {
            let _ = write!(
                main,
                r#"<td class="miss"><strong>{:.0} %</strong><span class="sr"> (under 70 %)</span></td>"#,
                r.wear_pct
            );
        } else {
            let _ = write!(main, "<td>{:.0} %</td>", r.wear_pct);
        }
        let contact = r
            .last_contact
            .map_or_else(|| "never".to_string(), |t| words::ago(t, now));
        if r.silent {
            let _ = write!(
                main,
                r#"<td class="miss"><strong>silent</strong>, {contact}</td>"#
            );
        } else {
            let _ = write!(main, "<td>{contact}</td>");
        }
        main.push_str("</tr>");
    }
    main.push_str("</tbody></table>");
    if rows.is_empty() {
        main.push_str("<p>No patient matches.</p>");
    }
    layout("Triage list", Some(csrf), &main)
}

fn column_name(sort: SortKey) -> &'static str {
    match sort {
        SortKey::Patient => "Patient",
        SortKey::Tbr54 => "Below 54",
        SortKey::Tbr70 => "Below 70",
        SortKey::Gri => "GRI",
        SortKey::TirDrop => "Change in time in range",
        SortKey::Wear => "Sensor wear",
        SortKey::Contact => "Phone last heard",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, gri: Option<f64>, tbr54: f64, wear: f64) -> TriageRow {
        TriageRow {
            id,
            name: format!("P{id} <b>"),
            figures: gri.map(|gri| Figures {
                tbr_lt54_pct: tbr54,
                tbr_lt70_pct: tbr54 + 1.0,
                tir_70_180_pct: 75.0,
                titr_70_140_pct: 50.0,
                tar_gt180_pct: 24.0 - tbr54,
                tar_gt250_pct: 2.0,
                gri,
                mean_mg_dl: 140.0,
                readings: 4032,
            }),
            wear_pct: wear,
            tir_drop: Some(1.0),
            last_contact: None,
            silent: false,
        }
    }

    fn view(sort: SortKey, order: Order, show: Show) -> View {
        View {
            days: 14,
            sort,
            order,
            show,
        }
    }

    #[test]
    fn rows_sort_both_ways_with_no_data_last_and_filter() {
        let rows = vec![
            row(1, Some(10.0), 0.5, 90.0),
            row(2, None, 0.0, 0.0),
            row(3, Some(50.0), 2.0, 60.0),
            row(4, Some(30.0), 0.0, 95.0),
        ];
        let ids = |v: &View| -> Vec<i64> {
            arrange(rows.clone(), v, Utc::now())
                .iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(
            ids(&view(SortKey::Gri, Order::Desc, Show::All)),
            [3, 4, 1, 2]
        );
        assert_eq!(
            ids(&view(SortKey::Gri, Order::Asc, Show::All)),
            [1, 4, 3, 2]
        );
        assert_eq!(
            ids(&view(SortKey::Wear, Order::Asc, Show::All)),
            [2, 3, 1, 4]
        );
        assert_eq!(ids(&view(SortKey::Tbr54, Order::Desc, Show::Tbr54)), [3]);
        assert_eq!(
            ids(&view(SortKey::Patient, Order::Asc, Show::LowWear)),
            [2, 3]
        );
    }

    #[test]
    fn the_page_marks_misses_sort_state_and_escapes() {
        let v = view(SortKey::Gri, Order::Desc, Show::All);
        let page = render(
            vec![row(1, Some(10.0), 0.5, 90.0), row(3, Some(50.0), 2.0, 60.0)],
            &v,
            Utc::now(),
            "tok",
        );
        assert!(page.contains(r#"<th scope="col" aria-sort="descending"><a href="/dashboard/triage?days=14&amp;show=all&amp;sort=gri&amp;order=asc">GRI</a></th>"#));
        assert_eq!(page.matches("aria-sort").count(), 1);
        assert!(page.contains("P1 &lt;b&gt;") && !page.contains("P1 <b>"));
        assert!(
            page.contains(r#"<strong>2.0 %</strong><span class="sr"> (target under 1 %: not met)"#)
        );
        assert!(page.contains(r#"href="/dashboard/patients/3?days=14""#));
        assert_eq!(page.matches("<svg").count(), 2);
        assert!(page.contains("<caption>"));
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn a_bad_query_is_refused_without_echo() {
        let q = TriageQuery {
            days: Some(91),
            sort: None,
            order: None,
            show: None,
        };
        let e = View::of(&q).unwrap_err().to_string();
        assert!(!e.contains("91"), "{e}");
    }
}

//! Server-rendered SVG charts for the clinician report: the AGP, the
//! stacked time-in-ranges bar, and daily overlays.
//!
//! Decision: plain SVG strings built here, no JavaScript charting and no
//! external assets, so the report prints, works under a strict
//! Content-Security-Policy, and every figure on it is the server's own
//! number (each chart has a `<title>` and `<desc>` for screen readers).

use std::fmt::Write;

use chrono::{DateTime, FixedOffset, Timelike, Utc};
use vigil_model::metrics::{AgpSlot, GlucoseMetrics};

/// The y axis of every glucose chart, mg/dL.
const Y_MAX: f64 = 350.0;
/// Target range drawn behind the AGP, mg/dL.
pub const TARGET: (f64, f64) = (70.0, 180.0);

const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 20.0;

fn x_of(minute: f64) -> f64 {
    LEFT + (W - LEFT) * minute / 1440.0
}

fn y_of(mg_dl: f64) -> f64 {
    (H - BOTTOM) * (1.0 - mg_dl.clamp(0.0, Y_MAX) / Y_MAX)
}

/// Escapes text for XML content and attributes.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn axes(out: &mut String) {
    for mg in [54.0, 70.0, 180.0, 250.0] {
        let y = y_of(mg);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{W}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{:.1}" y="{:.1}">{mg}</text>"#,
            LEFT - 4.0,
            y + 4.0
        );
    }
    for h in (0..=24).step_by(3) {
        let x = x_of(f64::from(h) * 60.0);
        let _ = write!(
            out,
            r#"<text class="axis" x="{x:.1}" y="{:.1}" text-anchor="middle">{h:02}:00</text>"#,
            H - 4.0
        );
    }
}

fn band(slots: &[AgpSlot], lo: usize, hi: usize, slot_min: f64) -> String {
    let mut upper = Vec::new();
    let mut lower = Vec::new();
    for s in slots {
        if let Some(p) = s.percentiles {
            let x = x_of(f64::from(s.start_minute) + slot_min / 2.0);
            upper.push(format!("{x:.1},{:.1}", y_of(p[hi])));
            lower.push(format!("{x:.1},{:.1}", y_of(p[lo])));
        }
    }
    lower.reverse();
    upper.extend(lower);
    upper.join(" ")
}

/// The AGP: 5–95 % and 25–75 % bands and the median by time of day over
/// the shaded target range. `slots` as `vigil_model::metrics::agp_profile`
/// returns them.
pub fn agp(slots: &[AgpSlot]) -> String {
    let slot_min = 1440.0 / slots.len().max(1) as f64;
    let mut out = String::with_capacity(8 * 1024);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart agp" viewBox="0 0 {W} {H}" role="img" aria-labelledby="agp-title agp-desc"><title id="agp-title">Ambulatory glucose profile</title><desc id="agp-desc">Median, 25th to 75th and 5th to 95th percentiles of glucose by time of day, mg/dL, over the 70 to 180 target range.</desc>"#
    );
    let _ = write!(
        out,
        r#"<rect class="target" x="{LEFT}" width="{}" y="{:.1}" height="{:.1}"/>"#,
        W - LEFT,
        y_of(TARGET.1),
        y_of(TARGET.0) - y_of(TARGET.1)
    );
    axes(&mut out);
    let _ = write!(
        out,
        r#"<polygon class="p5-95" points="{}"/>"#,
        band(slots, 0, 4, slot_min)
    );
    let _ = write!(
        out,
        r#"<polygon class="p25-75" points="{}"/>"#,
        band(slots, 1, 3, slot_min)
    );
    let median: Vec<String> = slots
        .iter()
        .filter_map(|s| {
            s.percentiles.map(|p| {
                format!(
                    "{:.1},{:.1}",
                    x_of(f64::from(s.start_minute) + slot_min / 2.0),
                    y_of(p[2])
                )
            })
        })
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="median" points="{}"/></svg>"#,
        median.join(" ")
    );
    out
}

/// The stacked time-in-ranges bar (very low, low, target, high, very
/// high), each segment labelled with its percentage.
pub fn tir_bar(m: &GlucoseMetrics) -> String {
    let parts = [
        ("very-high", "Very high >250", m.tar_gt250_pct),
        ("high", "High 181–250", m.tar_gt180_pct - m.tar_gt250_pct),
        ("target", "Target 70–180", m.tir_70_180_pct),
        ("low", "Low 54–69", m.tbr_lt70_pct - m.tbr_lt54_pct),
        ("very-low", "Very low <54", m.tbr_lt54_pct),
    ];
    let (bw, bh) = (60.0, 240.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart tir" viewBox="0 0 260 {bh}" role="img" aria-labelledby="tir-title"><title id="tir-title">Time in ranges</title>"#
    );
    let heights: Vec<f64> = parts
        .iter()
        .map(|(_, _, pct)| bh * pct.max(0.0) / 100.0)
        .collect();
    let labels = label_positions(&heights, bh);
    let mut y = 0.0;
    for ((class, label, pct), (h, ly)) in parts.iter().zip(heights.iter().zip(labels)) {
        let _ = write!(
            out,
            r#"<rect class="r-{class}" x="0" y="{y:.1}" width="{bw}" height="{h:.1}"><title>{label}: {pct:.1} %</title></rect><text class="axis" x="{:.1}" y="{ly:.1}">{label}: {pct:.1} %</text>"#,
            bw + 8.0,
        );
        y += h;
    }
    out.push_str("</svg>");
    out
}

/// Baselines for the labels of stacked bands of `heights` in a bar `total`
/// high: each at its band's middle, then pushed apart so no two are closer
/// than a line (bands near 0 % would otherwise print on top of each other),
/// and the whole column kept inside the bar.
fn label_positions(heights: &[f64], total: f64) -> Vec<f64> {
    const LINE: f64 = 14.0;
    let mut top = 0.0;
    let mut ys: Vec<f64> = heights
        .iter()
        .map(|h| {
            let mid = top + h / 2.0 + 4.0;
            top += h;
            mid
        })
        .collect();
    for i in 0..ys.len() {
        let floor = if i == 0 { LINE - 2.0 } else { ys[i - 1] + LINE };
        ys[i] = ys[i].max(floor);
    }
    // Pushed past the bottom: shift the overflowing tail back up.
    let mut ceiling = total - 2.0;
    for y in ys.iter_mut().rev() {
        if *y > ceiling {
            *y = ceiling;
        }
        ceiling = *y - LINE;
    }
    ys
}

/// One local day of readings for [`daily`]: its label and (time, mg/dL).
pub type Day = (String, Vec<(DateTime<Utc>, f64)>);

/// One small chart per local day, the day's readings as a line over the
/// target range. `days` are (label, readings) in order.
pub fn daily(days: &[Day], offset: FixedOffset) -> String {
    let mut out = String::new();
    for (label, pts) in days {
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart day" viewBox="0 0 {W} 120" role="img"><title>Glucose on {}</title><rect class="target" x="{LEFT}" width="{}" y="{:.1}" height="{:.1}"/><text class="axis" x="0" y="14">{}</text>"#,
            esc(label),
            W - LEFT,
            y_of(TARGET.1) * 120.0 / H,
            (y_of(TARGET.0) - y_of(TARGET.1)) * 120.0 / H,
            esc(label)
        );
        let line: Vec<String> = pts
            .iter()
            .map(|(t, v)| {
                let l = t.with_timezone(&offset);
                let minute = f64::from(l.hour() * 60 + l.minute()) + f64::from(l.second()) / 60.0;
                format!("{:.1},{:.1}", x_of(minute), y_of(*v) * 120.0 / H)
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="median" points="{}"/></svg>"#,
            line.join(" ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_in_range_labels_never_overlap_even_when_bands_are_empty() {
        for heights in [
            vec![0.0, 0.0, 240.0, 0.0, 0.0],
            vec![240.0, 0.0, 0.0, 0.0, 0.0],
            vec![0.0, 0.0, 0.0, 0.0, 240.0],
            vec![1.0, 2.0, 230.0, 5.0, 2.0],
        ] {
            let ys = label_positions(&heights, 240.0);
            for w in ys.windows(2) {
                assert!(w[1] - w[0] >= 14.0 - 1e-9, "{heights:?}: {ys:?}");
            }
            assert!(ys.iter().all(|y| (10.0..=238.0).contains(y)), "{ys:?}");
        }
    }
    use chrono::{TimeDelta, TimeZone};
    use vigil_model::metrics::{agp_profile, consensus_metrics};
    use vigil_model::reading::Sample;

    fn samples() -> Vec<Sample> {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        (0..(14 * 288))
            .map(|i| Sample {
                time: t0 + TimeDelta::minutes(5 * i),
                value: 120.0
                    + 60.0 * ((i % 288) as f64 / 288.0 * std::f64::consts::TAU).sin()
                    + (i % 7) as f64,
            })
            .collect()
    }

    #[test]
    fn agp_draws_bands_and_median_for_every_slot() {
        let slots = agp_profile(
            &samples(),
            TimeDelta::minutes(15),
            FixedOffset::east_opt(0).unwrap(),
        )
        .unwrap();
        let svg = agp(&slots);
        assert!(svg.contains("<title id=\"agp-title\">"));
        let median = svg.split("class=\"median\" points=\"").nth(1).unwrap();
        let n = median.split('"').next().unwrap().split(' ').count();
        assert_eq!(n, 96);
        // The median at 06:00 (peak of the sine, ~180) is drawn above the
        // 18:00 one (trough, ~60): smaller y is higher on screen.
        let ys: Vec<f64> = median
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(ys[24] < ys[72]);
    }

    #[test]
    fn tir_segments_sum_to_the_bar() {
        let m = consensus_metrics(&samples(), TimeDelta::minutes(5)).unwrap();
        let svg = tir_bar(&m);
        let total: f64 = svg
            .split("height=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert!((total - 240.0).abs() < 0.5, "{total}");
        assert!(svg.contains(&format!("Target 70–180: {:.1} %", m.tir_70_180_pct)));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
    }
}

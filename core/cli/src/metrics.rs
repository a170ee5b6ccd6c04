//! `vigil metrics`: the consensus CGM metrics of a glucose trace, computed by
//! the same core code the SDK and the cloud use, printed as one JSON object.
//!
//! Numbers are rounded to two decimals (half away from zero) for reading; the
//! core keeps full precision. `readings` and `days_with_data` are exact
//! counts, `gri_zone` is the letter of the unrounded GRI's zone, and
//! `enough_days` / `enough_wear` say whether the trace meets the consensus'
//! 14 days and 70 % wear. SD and CV are the sample SD (n − 1). `--agp` adds
//! one extra key, `agp`: the AGP percentile profile by time-of-day slot.

use std::path::PathBuf;

use chrono::{FixedOffset, TimeDelta};
use serde::Serialize;
use vigil_core::metrics::{AgpSlot, GlucoseMetrics, agp_profile, consensus_metrics};

use crate::{Failure, trace};

/// Arguments of `vigil metrics`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Glucose trace CSV (`time`, `glucose_mgdl` columns); `-` for stdin.
    #[arg(long)]
    pub input: PathBuf,
    /// The sensor's expected sampling interval in minutes (for active %).
    #[arg(long, default_value_t = 5.0)]
    pub interval_min: f64,
    /// Also print the AGP profile (key `agp`).
    #[arg(long)]
    pub agp: bool,
    /// AGP slot width in minutes (must divide 24 h).
    #[arg(long, default_value_t = 15)]
    pub agp_slot_min: i64,
    /// The patient's UTC offset in minutes, for the AGP's time of day.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub utc_offset_min: i32,
}

/// One AGP slot as printed; percentiles are null for a slot without data.
#[derive(Debug, Serialize)]
struct PrintedSlot {
    start_minute: u32,
    readings: usize,
    p5: Option<f64>,
    p25: Option<f64>,
    p50: Option<f64>,
    p75: Option<f64>,
    p95: Option<f64>,
}

impl From<&AgpSlot> for PrintedSlot {
    fn from(s: &AgpSlot) -> Self {
        let p = |i: usize| s.percentiles.and_then(|p| p.get(i).copied()).map(round2);
        PrintedSlot {
            start_minute: s.start_minute,
            readings: s.readings,
            p5: p(0),
            p25: p(1),
            p50: p(2),
            p75: p(3),
            p95: p(4),
        }
    }
}

/// The printed object; field order is the order of the key list.
#[derive(Debug, Serialize)]
struct Printed {
    mean_mg_dl: f64,
    sd_mg_dl: f64,
    cv_pct: f64,
    gmi_pct: f64,
    tbr_lt54_pct: f64,
    tbr_lt70_pct: f64,
    tir_70_180_pct: f64,
    tar_gt180_pct: f64,
    tar_gt250_pct: f64,
    titr_70_140_pct: f64,
    gri: f64,
    gri_hypo: f64,
    gri_hyper: f64,
    gri_zone: &'static str,
    active_pct: f64,
    days: f64,
    days_with_data: usize,
    enough_days: bool,
    enough_wear: bool,
    readings: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    agp: Option<Vec<PrintedSlot>>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl From<&GlucoseMetrics> for Printed {
    fn from(m: &GlucoseMetrics) -> Self {
        Printed {
            mean_mg_dl: round2(m.mean_mg_dl),
            sd_mg_dl: round2(m.sd_mg_dl),
            cv_pct: round2(m.cv_pct),
            gmi_pct: round2(m.gmi_pct),
            tbr_lt54_pct: round2(m.tbr_lt54_pct),
            tbr_lt70_pct: round2(m.tbr_lt70_pct),
            tir_70_180_pct: round2(m.tir_70_180_pct),
            tar_gt180_pct: round2(m.tar_gt180_pct),
            tar_gt250_pct: round2(m.tar_gt250_pct),
            titr_70_140_pct: round2(m.titr_70_140_pct),
            gri: round2(m.gri),
            gri_hypo: round2(m.gri_hypo),
            gri_hyper: round2(m.gri_hyper),
            gri_zone: m.gri_zone.letter(),
            active_pct: round2(m.active_pct),
            days: round2(m.days),
            days_with_data: m.days_with_data,
            enough_days: m.enough_days,
            enough_wear: m.enough_wear,
            readings: m.readings,
            agp: None,
        }
    }
}

/// Runs `vigil metrics`.
pub fn run(args: Args) -> Result<(), Failure> {
    let interval_ms = args.interval_min * 60_000.0;
    if !(interval_ms.is_finite() && interval_ms >= 1.0) {
        return Err(Failure::Input(format!(
            "--interval-min must be a positive number of minutes, got {}",
            args.interval_min
        )));
    }
    let trace = trace::read_path(&args.input)?;
    let metrics = consensus_metrics(
        &trace.samples,
        TimeDelta::milliseconds(interval_ms.round() as i64),
    )
    .map_err(|e| Failure::Input(e.to_string()))?;
    let mut printed = Printed::from(&metrics);
    if args.agp {
        let offset =
            FixedOffset::east_opt(args.utc_offset_min.saturating_mul(60)).ok_or_else(|| {
                Failure::Input(format!(
                    "--utc-offset-min {} is out of range",
                    args.utc_offset_min
                ))
            })?;
        let agp = agp_profile(
            &trace.samples,
            TimeDelta::minutes(args.agp_slot_min),
            offset,
        )
        .map_err(|e| Failure::Input(e.to_string()))?;
        printed.agp = Some(agp.iter().map(PrintedSlot::from).collect());
    }
    let line = serde_json::to_string(&printed)
        .map_err(|e| Failure::Other(format!("cannot encode JSON: {e}")))?;
    println!("{line}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_metrics_round_to_two_decimals_and_keep_the_count() {
        let samples = match trace::read(
            "time,glucose_mgdl\n2026-01-05T00:00:00Z,100\n2026-01-05T00:05:00Z,101\n2026-01-05T00:10:00Z,50\n"
                .as_bytes(),
        ) {
            Ok(t) => t.samples,
            Err(e) => panic!("{e:?}"),
        };
        let m = consensus_metrics(&samples, TimeDelta::minutes(5)).unwrap();
        let v = serde_json::to_value(Printed::from(&m)).unwrap();
        // Mean 251 / 3 = 83.666…; one of three readings below 54 = 33.333…%.
        assert_eq!(v["mean_mg_dl"], 83.67);
        assert_eq!(v["tbr_lt54_pct"], 33.33);
        assert_eq!(v["readings"], 3);
        // 50 is very low: hypo 33.33, GRI 3 × 33.33 = 100 (zone E); 100 and
        // 101 are in tight range.
        assert_eq!(v["gri_hypo"], 33.33);
        assert_eq!(v["gri_hyper"], 0.0);
        assert_eq!(v["gri"], 100.0);
        assert_eq!(v["gri_zone"], "E");
        assert_eq!(v["titr_70_140_pct"], 66.67);
        assert_eq!(v["days_with_data"], 1);
        assert_eq!(v["enough_days"], false);
        assert_eq!(v["enough_wear"], true);
        let keys = [
            "mean_mg_dl",
            "sd_mg_dl",
            "cv_pct",
            "gmi_pct",
            "tbr_lt54_pct",
            "tbr_lt70_pct",
            "tir_70_180_pct",
            "tar_gt180_pct",
            "tar_gt250_pct",
            "titr_70_140_pct",
            "gri",
            "gri_hypo",
            "gri_hyper",
            "gri_zone",
            "active_pct",
            "days",
            "days_with_data",
            "enough_days",
            "enough_wear",
            "readings",
        ];
        assert_eq!(v.as_object().unwrap().len(), keys.len());
        for k in keys {
            assert!(v.get(k).is_some(), "{k}");
        }
    }
}

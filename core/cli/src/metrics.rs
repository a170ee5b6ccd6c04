//! `vigil metrics`: the consensus CGM metrics of a glucose trace, computed by
//! the same core code the SDK and the cloud use, printed as one JSON object.
//!
//! Numbers are rounded to two decimals (half away from zero) for reading; the
//! core keeps full precision. `readings` is an exact count.

use std::path::PathBuf;

use chrono::TimeDelta;
use serde::Serialize;
use vigil_core::metrics::{GlucoseMetrics, consensus_metrics};

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
    active_pct: f64,
    days: f64,
    readings: usize,
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
            active_pct: round2(m.active_pct),
            days: round2(m.days),
            readings: m.readings,
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
    let line = serde_json::to_string(&Printed::from(&metrics))
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
            "active_pct",
            "days",
            "readings",
        ];
        assert_eq!(v.as_object().unwrap().len(), keys.len());
        for k in keys {
            assert!(v.get(k).is_some(), "{k}");
        }
    }
}

//! `vigil reduce`: the bounded-error reducer over a glucose trace CSV.
//!
//! Reads the trace with the shared reader (`trace.rs`), runs the same
//! offline reduction batch assembly uses, and writes the kept rows with
//! every original column, so the output is itself a valid trace. The
//! summary goes to stderr to keep stdout pipeable.

use std::io::Write;
use std::path::PathBuf;

use chrono::TimeDelta;
use vigil_core::model::Sample;
use vigil_core::reduce::{Policy, ReducerConfig, max_error, reduce};

use crate::{Failure, trace};

/// Arguments of `vigil reduce`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Glucose trace CSV (`time`, `glucose_mgdl`; `-` for stdin).
    #[arg(long)]
    input: PathBuf,
    /// Largest allowed reconstruction error, mg/dL.
    #[arg(long, default_value_t = 3.0)]
    tolerance: f64,
    /// Longest time between kept readings, minutes.
    #[arg(long = "max-silence-min", default_value_t = 60)]
    max_silence_min: u32,
    /// Expected time between readings, minutes (gaps are over 1.5 of it).
    #[arg(long = "interval-min", default_value_t = 5)]
    interval_min: u32,
}

/// Runs `vigil reduce`.
pub fn run(args: Args) -> Result<(), Failure> {
    let trace = trace::read_path(&args.input)?;
    let stdout = std::io::stdout().lock();
    let summary = reduce_trace(&trace, &args, stdout)?;
    eprintln!("{summary}");
    Ok(())
}

/// Reduces `trace`, writes the kept rows to `out`, returns the summary line.
fn reduce_trace(trace: &trace::Trace, args: &Args, out: impl Write) -> Result<String, Failure> {
    let config = ReducerConfig {
        tolerance: args.tolerance,
        max_silence: TimeDelta::minutes(i64::from(args.max_silence_min)),
        ..ReducerConfig::glucose(TimeDelta::minutes(i64::from(args.interval_min)))
    };
    let kept = reduce(&trace.samples, &[], &Policy::BoundedError(config))
        .map_err(|e| Failure::Input(e.to_string()))?;
    let kept_samples: Vec<Sample> = kept
        .iter()
        .filter_map(|&i| trace.samples.get(i).copied())
        .collect();
    let error = max_error(&trace.samples, &kept_samples).unwrap_or(0.0);
    trace::write_rows(out, trace, kept.iter().copied())?;
    Ok(format!(
        "kept {} of {} readings, max error {error:.3} mg/dL",
        kept.len(),
        trace.samples.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(tolerance: f64) -> Args {
        Args {
            input: PathBuf::from("-"),
            tolerance,
            max_silence_min: 60,
            interval_min: 5,
        }
    }

    #[test]
    fn kept_rows_keep_every_column_and_the_summary_counts_them() {
        let csv = "note,glucose_mgdl,time\n\
                   a,100,2026-03-02T00:00:00Z\n\
                   b,102,2026-03-02T00:05:00Z\n\
                   c,104,2026-03-02T00:10:00Z\n\
                   d,150,2026-03-02T00:15:00Z\n";
        let trace = trace::read(csv.as_bytes()).unwrap();
        let mut out = Vec::new();
        let summary = reduce_trace(&trace, &args(3.0), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "note,glucose_mgdl,time\n\
             a,100,2026-03-02T00:00:00Z\n\
             c,104,2026-03-02T00:10:00Z\n\
             d,150,2026-03-02T00:15:00Z\n"
        );
        assert_eq!(summary, "kept 3 of 4 readings, max error 0.000 mg/dL");
    }

    #[test]
    fn out_of_order_times_are_an_input_error() {
        let csv = "time,glucose_mgdl\n2026-03-02T00:05:00Z,100\n2026-03-02T00:00:00Z,101\n";
        let trace = trace::read(csv.as_bytes()).unwrap();
        let result = reduce_trace(&trace, &args(3.0), Vec::new());
        assert!(matches!(result, Err(Failure::Input(_))));
        let result = reduce_trace(&trace, &args(-1.0), Vec::new());
        assert!(matches!(result, Err(Failure::Input(_))));
    }
}

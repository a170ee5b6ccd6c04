//! `vigil alerts`: runs the core alert engine over a glucose trace, one row
//! at a time exactly as the phone feeds it, and prints every alert start and
//! end as one JSON object per line:
//! `{"id", "kind", "phase", "time", "glucose_mg_dl"}`.
//!
//! A re-alert (the engine's `realert` phase) is printed as `"start"` with the
//! episode's id, because to a listener it is the alarm sounding again; a
//! consumer that wants one line per episode keeps the first line of each id.
//! A gap between rows longer than the signal-loss time prints `signal_loss`
//! starting when that time ran out (`glucose_mg_dl` null: no reading then),
//! and its end at the next row. `--now` also ticks the clock at the end of
//! the file, so a trace that simply stops can raise signal loss.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigil_core::alerts::{AlertConfig, AlertEngine, AlertEvent, Phase};
use vigil_core::clock::Seconds;
use vigil_core::model::Sample;

use crate::{Failure, trace};

/// Arguments of `vigil alerts`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Glucose trace CSV (`time`, `glucose_mgdl` columns); `-` for stdin.
    #[arg(long)]
    pub input: PathBuf,
    /// Patient or device key the alert ids are derived from.
    #[arg(long, default_value = "trace")]
    pub key: String,
    /// Urgent low threshold, mg/dL.
    #[arg(long, default_value_t = 54.0)]
    pub urgent_low: f64,
    /// Low threshold, mg/dL.
    #[arg(long, default_value_t = 70.0)]
    pub low: f64,
    /// High threshold, mg/dL.
    #[arg(long, default_value_t = 250.0)]
    pub high: f64,
    /// Hysteresis margin before a glucose alert ends, mg/dL.
    #[arg(long, default_value_t = 5.0)]
    pub hysteresis: f64,
    /// Fast fall/rise rate threshold, mg/dL/min.
    #[arg(long, default_value_t = 2.0)]
    pub fast_rate: f64,
    /// Minutes without a reading before signal loss.
    #[arg(long, default_value_t = 20)]
    pub signal_loss_min: u32,
    /// Re-alert interval of lows, minutes.
    #[arg(long, default_value_t = 30)]
    pub realert_low_min: u32,
    /// Re-alert interval of highs, minutes.
    #[arg(long, default_value_t = 120)]
    pub realert_high_min: u32,
    /// Tick the clock at this time (RFC 3339) after the last row.
    #[arg(long)]
    pub now: Option<String>,
}

/// One printed line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    id: &'a str,
    kind: &'static str,
    phase: &'static str,
    time: String,
    glucose_mg_dl: Option<f64>,
}

impl<'a> From<&'a AlertEvent> for Line<'a> {
    fn from(e: &'a AlertEvent) -> Self {
        Line {
            id: &e.id,
            kind: e.kind.as_str(),
            phase: match e.phase {
                Phase::Start | Phase::Realert => "start",
                Phase::End => "end",
            },
            time: trace::format_time(e.time),
            glucose_mg_dl: e.glucose_mg_dl,
        }
    }
}

fn config(args: &Args) -> AlertConfig {
    AlertConfig {
        urgent_low_mg_dl: args.urgent_low,
        low_mg_dl: args.low,
        high_mg_dl: args.high,
        hysteresis_mg_dl: args.hysteresis,
        fast_rate_mg_dl_per_min: args.fast_rate,
        signal_loss_after: Seconds::minutes(args.signal_loss_min),
        realert_low: Seconds::minutes(args.realert_low_min),
        realert_high: Seconds::minutes(args.realert_high_min),
        ..AlertConfig::default()
    }
}

/// Every event the engine raises over `samples`, in order, then at `now`.
fn events(
    engine: &mut AlertEngine,
    samples: &[Sample],
    now: Option<DateTime<Utc>>,
) -> Result<Vec<AlertEvent>, Failure> {
    let mut all = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        let events = engine
            .on_glucose(*sample)
            // Line 1 is the header.
            .map_err(|e| Failure::Input(format!("line {}: {e}", i + 2)))?;
        all.extend(events);
    }
    if let Some(now) = now {
        all.extend(engine.on_tick(now));
    }
    Ok(all)
}

/// Runs `vigil alerts`.
pub fn run(args: Args) -> Result<(), Failure> {
    let now = args
        .now
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Failure::Input(format!("--now `{s}` is not RFC 3339")))
        })
        .transpose()?;
    let mut engine = AlertEngine::new(config(&args), args.key.clone())
        .map_err(|e| Failure::Input(e.to_string()))?;
    let trace = trace::read_path(&args.input)?;
    let events = events(&mut engine, &trace.samples, now)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| Failure::Other(format!("cannot write: {e}"));
    for e in &events {
        let line = serde_json::to_string(&Line::from(e))
            .map_err(|e| Failure::Other(format!("cannot encode JSON: {e}")))?;
        writeln!(out, "{line}").map_err(io)?;
    }
    out.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(csv: &str) -> Vec<Sample> {
        match trace::read(csv.as_bytes()) {
            Ok(t) => t.samples,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn lines(csv: &str) -> Vec<serde_json::Value> {
        let mut engine = AlertEngine::new(AlertConfig::default(), "trace").unwrap();
        events(&mut engine, &samples(csv), None)
            .unwrap()
            .iter()
            .map(|e| serde_json::to_value(Line::from(e)).unwrap())
            .collect()
    }

    #[test]
    fn a_gap_in_the_file_prints_signal_loss_when_20_minutes_ran_out() {
        let out = lines("time,glucose_mgdl\n2026-01-05T00:00:00Z,100\n2026-01-05T00:25:00Z,101\n");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["kind"], "signal_loss");
        assert_eq!(out[0]["phase"], "start");
        assert_eq!(out[0]["time"], "2026-01-05T00:20:00Z");
        assert!(out[0]["glucose_mg_dl"].is_null());
        assert_eq!(out[1]["phase"], "end");
        assert_eq!(out[1]["time"], "2026-01-05T00:25:00Z");
        assert_eq!(out[1]["glucose_mg_dl"], 101.0);
        assert_eq!(out[0]["id"], out[1]["id"]);
        // Exactly the keys.
        let keys: Vec<_> = out[0].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 5);
        for k in ["id", "kind", "phase", "time", "glucose_mg_dl"] {
            assert!(keys.iter().any(|x| x == k), "{k}");
        }
    }

    #[test]
    fn a_realert_prints_as_start_with_the_episodes_id() {
        let mut csv = String::from("time,glucose_mgdl\n");
        for m in (0..=30).step_by(5) {
            csv += &format!("2026-01-05T00:{m:02}:00Z,65\n");
        }
        let out = lines(&csv);
        let phases: Vec<_> = out
            .iter()
            .map(|l| (l["phase"].clone(), l["time"].clone()))
            .collect();
        assert_eq!(
            phases,
            vec![
                ("start".into(), "2026-01-05T00:00:00Z".into()),
                ("start".into(), "2026-01-05T00:30:00Z".into()),
            ]
        );
        assert_eq!(out[0]["id"], out[1]["id"]);
    }

    #[test]
    fn rows_out_of_time_order_are_an_input_error_naming_the_line() {
        let mut engine = AlertEngine::new(AlertConfig::default(), "trace").unwrap();
        let csv = "time,glucose_mgdl\n2026-01-05T00:05:00Z,100\n2026-01-05T00:00:00Z,100\n";
        match events(&mut engine, &samples(csv), None) {
            Err(Failure::Input(msg)) => assert!(msg.starts_with("line 3:"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
}

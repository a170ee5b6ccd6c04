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

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use vigil_core::alerts::{AlertConfig, AlertEngine, AlertEvent, Phase};

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
    pub signal_loss_min: i64,
    /// Re-alert interval of lows, minutes.
    #[arg(long, default_value_t = 30)]
    pub realert_low_min: i64,
    /// Re-alert interval of highs, minutes.
    #[arg(long, default_value_t = 120)]
    pub realert_high_min: i64,
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
        signal_loss_after: TimeDelta::minutes(args.signal_loss_min),
        realert_low: TimeDelta::minutes(args.realert_low_min),
        realert_high: TimeDelta::minutes(args.realert_high_min),
        ..AlertConfig::default()
    }
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
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut print = |events: Vec<AlertEvent>| -> Result<(), Failure> {
        for e in &events {
            let line = serde_json::to_string(&Line::from(e))
                .map_err(|e| Failure::Other(format!("cannot encode JSON: {e}")))?;
            writeln!(out, "{line}").map_err(|e| Failure::Other(format!("cannot write: {e}")))?;
        }
        Ok(())
    };
    for (i, sample) in trace.samples.iter().enumerate() {
        let events = engine
            .on_glucose(*sample)
            // Line 1 is the header.
            .map_err(|e| Failure::Input(format!("line {}: {e}", i + 2)))?;
        print(events)?;
    }
    if let Some(now) = now {
        print(engine.on_tick(now))?;
    }
    out.flush()
        .map_err(|e| Failure::Other(format!("cannot write: {e}")))
}

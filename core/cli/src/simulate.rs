//! `vigil simulate`: the readings a simulated device produces, decoded
//! through the real codecs and session.
//!
//! The whole phone-side path runs: a seeded simulated peripheral speaks
//! GATT bytes over the simulated transport, the session connects, reads,
//! subscribes, backfills and decodes, and what reaches the sink is printed.
//! It runs on tokio's paused clock, so a simulated day takes a fraction of
//! a second and a seed always prints the same trace. Output is streamed as
//! the session produces it, so a two-week heart-rate trace needs no memory
//! to speak of.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;
use vigil_core::clock::{Clock, TokioClock};
use vigil_core::model::{DeviceId, PatientId, Reading, Stream};
use vigil_core::session::{Cursor, DeviceKind, Session, SessionConfig, SessionOutput, SessionSink};
use vigil_core::transport::simulated::physiology::SampleInterval;
use vigil_core::transport::simulated::{
    CgmConfig, FaultPlan, HeartRateConfig, MeterConfig, OximeterConfig, Radio, RandomFaults,
    SimulatedCgm, SimulatedHeartRate, SimulatedMeter, SimulatedOximeter, SimulatedTransport,
};

use crate::Failure;
use crate::trace::{GLUCOSE, TIME, format_time};

/// Which simulated device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// Continuous glucose monitor.
    Cgm,
    /// Heart-rate strap.
    Hr,
    /// Pulse oximeter.
    Spo2,
    /// Blood glucose meter.
    Bgm,
}

/// Arguments of `vigil simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Device to simulate.
    #[arg(long, value_enum)]
    device: Device,
    /// Simulated time to run, e.g. `90m`, `24h`, `14d` (units s, m, h, d).
    #[arg(long, default_value = "24h")]
    duration: String,
    /// Seed of the physiology.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start of the simulation (RFC 3339).
    #[arg(long, default_value = "2026-01-05T00:00:00Z")]
    start: String,
    /// CGM measurement interval in minutes (1 or 5).
    #[arg(long, default_value_t = 5)]
    interval: u32,
    /// One JSON object per line with every field of every reading (all
    /// streams), instead of the CSV trace.
    #[arg(long)]
    json: bool,
    /// Seeded random faults (disconnects, out-of-range periods, dropped,
    /// duplicated and corrupt notifications), drawn from `--seed`.
    #[arg(long)]
    faults: bool,
}

/// Fault rates of `--faults`: a bad-but-plausible day for a phone in a
/// pocket.
const RANDOM_FAULTS: RandomFaults = RandomFaults {
    disconnects_per_hour: 0.25,
    out_of_range_per_day: 2.0,
    drops_per_day: 4.0,
    duplicates_per_day: 4.0,
    corruptions_per_day: 4.0,
};

/// Parses `90m`, `24h`, `14d`, `30s`.
pub fn parse_duration(s: &str) -> Result<TimeDelta, Failure> {
    let bad = || Failure::Input(format!("bad duration `{s}`: use e.g. 90m, 24h, 14d"));
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let total = n.checked_mul(secs).filter(|t| *t > 0).ok_or_else(bad)?;
    // A century of simulated time is far past any use and keeps chrono in
    // range.
    if total > 100 * 365 * 86_400 {
        return Err(bad());
    }
    Ok(TimeDelta::seconds(total))
}

/// One reading as `--json` prints it.
#[derive(Serialize)]
struct JsonReading<'a> {
    patient: &'a str,
    device: &'a str,
    stream: &'static str,
    value: f64,
    unit: &'static str,
    sensor_time: String,
    receive_time: String,
    sequence: u64,
    quality_percent: Option<f64>,
    flagged: bool,
    characteristic: String,
    session: Option<i64>,
    raw: String,
}

/// A sink that prints as it goes.
struct PrintSink<W: Write> {
    out: csv::Writer<W>,
    device: Device,
    json: bool,
    cursors: HashMap<(DeviceId, Stream), Cursor>,
    /// SpO2 waits for the pulse rate decoded from the same notification.
    spo2: Option<Reading>,
    error: Option<String>,
}

impl<W: Write + Send> PrintSink<W> {
    fn new(out: W, device: Device, json: bool) -> Result<Self, Failure> {
        let mut out = csv::WriterBuilder::new()
            .has_headers(false)
            .quote_style(csv::QuoteStyle::Never)
            .from_writer(out);
        if !json {
            let header: &[&str] = match device {
                Device::Cgm | Device::Bgm => &[TIME, GLUCOSE],
                Device::Hr => &[TIME, "bpm"],
                Device::Spo2 => &[TIME, "spo2_pct", "pulse_rate_bpm"],
            };
            out.write_record(header).map_err(io)?;
        }
        Ok(Self {
            out,
            device,
            json,
            cursors: HashMap::new(),
            spo2: None,
            error: None,
        })
    }

    fn print(&mut self, r: &Reading) -> Result<(), csv::Error> {
        if self.json {
            let line = JsonReading {
                patient: &r.patient.0,
                device: &r.provenance.device.0,
                stream: r.stream.as_str(),
                value: r.value,
                unit: r.ucum(),
                sensor_time: r.sensor_time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                receive_time: r.receive_time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                sequence: r.sequence,
                quality_percent: r.quality.percent,
                flagged: r.quality.flagged,
                characteristic: format!("0x{:04X}", r.provenance.characteristic),
                session: r.provenance.session,
                raw: r
                    .provenance
                    .raw
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            };
            let text = serde_json::to_string(&line)
                .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))?;
            return self.out.write_record([text]);
        }
        let time = format_time(r.sensor_time);
        match (self.device, r.stream) {
            (Device::Cgm, Stream::Glucose)
            | (Device::Bgm, Stream::MeterGlucose)
            | (Device::Hr, Stream::HeartRate) => self.out.write_record([time, r.value.to_string()]),
            (Device::Spo2, Stream::Spo2) => {
                self.spo2 = Some(r.clone());
                Ok(())
            }
            (Device::Spo2, Stream::PulseRate) => match self.spo2.take() {
                Some(s) if s.provenance.raw == r.provenance.raw => {
                    self.out
                        .write_record([time, s.value.to_string(), r.value.to_string()])
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

fn io(e: csv::Error) -> Failure {
    Failure::Other(format!("cannot write output: {e}"))
}

impl<W: Write + Send> SessionSink for PrintSink<W> {
    fn cursor(&self, device: &DeviceId, stream: Stream) -> Option<Cursor> {
        self.cursors.get(&(device.clone(), stream)).copied()
    }

    fn accept(&mut self, output: SessionOutput) -> vigil_core::Result<()> {
        let SessionOutput::Reading(r) = output else {
            return Ok(());
        };
        self.cursors.insert(
            (r.provenance.device.clone(), r.stream),
            Cursor {
                session: r.provenance.session,
                sequence: r.sequence,
                time: r.sensor_time,
            },
        );
        if self.error.is_none() {
            if let Err(e) = self.print(&r) {
                self.error = Some(e.to_string());
            }
        }
        Ok(())
    }
}

/// Runs `vigil simulate`.
pub fn run(args: Args) -> Result<(), Failure> {
    let duration = parse_duration(&args.duration)?;
    let start = DateTime::parse_from_rfc3339(&args.start)
        .map_err(|e| Failure::Input(format!("bad --start: {e}")))?
        .with_timezone(&Utc);
    let interval = match args.interval {
        1 => SampleInterval::OneMinute,
        5 => SampleInterval::FiveMinutes,
        n => {
            return Err(Failure::Input(format!(
                "--interval must be 1 or 5, not {n}"
            )));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Failure::Other(format!("cannot start the runtime: {e}")))?;
    let stdout = std::io::stdout();
    let sink = PrintSink::new(std::io::BufWriter::new(stdout), args.device, args.json)?;
    let faults = if args.faults {
        FaultPlan::random(args.seed, start, duration, RANDOM_FAULTS)
    } else {
        FaultPlan::none()
    };
    let run = Run {
        device: args.device,
        seed: args.seed,
        start,
        duration,
        interval,
        faults,
    };
    let mut sink = runtime.block_on(simulate(run, sink))?;
    if let Some(e) = sink.error.take() {
        return Err(Failure::Other(format!("cannot write output: {e}")));
    }
    sink.out
        .flush()
        .map_err(|e| Failure::Other(format!("cannot write output: {e}")))
}

/// What to simulate.
struct Run {
    device: Device,
    seed: u64,
    start: DateTime<Utc>,
    duration: TimeDelta,
    interval: SampleInterval,
    faults: FaultPlan,
}

async fn simulate<W: Write + Send>(run: Run, sink: PrintSink<W>) -> Result<PrintSink<W>, Failure> {
    let Run {
        device,
        seed,
        start,
        duration,
        interval,
        faults,
    } = run;
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(start));
    let fail = |e: vigil_core::Error| Failure::Other(e.to_string());
    let mut radio = Radio::new();
    let (kind, id) = match device {
        Device::Cgm => {
            let mut cfg = CgmConfig::new("sim-cgm", seed, start);
            cfg.interval = interval;
            cfg.faults = faults;
            (
                DeviceKind::Cgm,
                radio.add(Box::new(SimulatedCgm::new(cfg).map_err(fail)?)),
            )
        }
        Device::Hr => {
            let mut cfg = HeartRateConfig::new("sim-hr", seed, start);
            cfg.faults = faults;
            let dev = SimulatedHeartRate::new(cfg).map_err(fail)?;
            (DeviceKind::HeartRate, radio.add(Box::new(dev)))
        }
        Device::Spo2 => {
            let mut cfg = OximeterConfig::new("sim-spo2", seed, start);
            cfg.faults = faults;
            let dev = SimulatedOximeter::new(cfg).map_err(fail)?;
            (DeviceKind::PulseOximeter, radio.add(Box::new(dev)))
        }
        Device::Bgm => {
            let mut cfg = MeterConfig::new("sim-bgm", seed, start);
            cfg.faults = faults;
            let dev = SimulatedMeter::new(cfg).map_err(fail)?;
            (DeviceKind::GlucoseMeter, radio.add(Box::new(dev)))
        }
    };
    let transport = Arc::new(SimulatedTransport::start(
        radio,
        clock.clone(),
        Duration::from_secs(1),
    ));
    let mut cfg = SessionConfig::new(kind, id, PatientId("sim-patient".into()));
    cfg.jitter_seed = seed;
    let mut session = Session::new(cfg, transport, clock, sink);
    session.run_until(start + duration).await.map_err(fail)?;
    Ok(session.into_sink())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_duration("90m").unwrap(), TimeDelta::minutes(90));
        assert_eq!(parse_duration("24h").unwrap(), TimeDelta::hours(24));
        assert_eq!(parse_duration("14d").unwrap(), TimeDelta::days(14));
        for bad in ["", "h", "10", "5w", "-3h", "0m", "99999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    fn run_to_string(device: Device, json: bool, duration: &str) -> String {
        run_with(device, json, duration, false)
    }

    fn run_with(device: Device, json: bool, duration: &str, faults: bool) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let start = DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let sink = PrintSink::new(Vec::new(), device, json).unwrap();
        let duration = parse_duration(duration).unwrap();
        let run = Run {
            device,
            seed: 3,
            start,
            duration,
            interval: SampleInterval::FiveMinutes,
            faults: if faults {
                FaultPlan::random(3, start, duration, RANDOM_FAULTS)
            } else {
                FaultPlan::none()
            },
        };
        let sink = runtime.block_on(simulate(run, sink)).unwrap();
        String::from_utf8(sink.out.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn cgm_csv_is_a_trace_the_other_commands_read() {
        let text = run_to_string(Device::Cgm, false, "6h");
        let trace = crate::trace::read(text.as_bytes()).unwrap();
        // One reading every five minutes, first and last included.
        assert!(
            (72..=73).contains(&trace.samples.len()),
            "{}",
            trace.samples.len()
        );
        assert!(
            trace
                .samples
                .windows(2)
                .all(|w| w[1].time - w[0].time == TimeDelta::minutes(5))
        );
        assert!(
            trace
                .samples
                .iter()
                .all(|s| (40.0..=400.0).contains(&s.value))
        );
        // Same seed, same trace.
        assert_eq!(text, run_to_string(Device::Cgm, false, "6h"));
    }

    #[test]
    fn with_random_faults_a_cgm_trace_still_loses_nothing() {
        // The sensor holds two weeks, so every fault is recovered by
        // backfill: the trace equals the fault-free one.
        let clean = run_with(Device::Cgm, false, "24h", false);
        let faulty = run_with(Device::Cgm, false, "24h", true);
        assert_eq!(clean, faulty);
        // Not vacuous: the faults happened, so backfilled readings arrived
        // later than they would have live.
        assert_ne!(
            run_with(Device::Cgm, true, "24h", false),
            run_with(Device::Cgm, true, "24h", true)
        );
    }

    #[test]
    fn json_lines_carry_every_field() {
        let text = run_to_string(Device::Spo2, true, "2m");
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        for field in [
            "stream",
            "unit",
            "sequence",
            "sensor_time",
            "receive_time",
            "raw",
        ] {
            assert!(first.get(field).is_some(), "{field}");
        }
        let spo2 = text
            .lines()
            .filter(|l| l.contains("\"stream\":\"spo2\""))
            .count();
        assert!((110..=121).contains(&spo2), "{spo2}");
    }

    #[test]
    fn spo2_and_hr_csv_have_their_columns() {
        let spo2 = run_to_string(Device::Spo2, false, "1m");
        assert!(spo2.starts_with("time,spo2_pct,pulse_rate_bpm\n"));
        assert!(spo2.lines().count() > 50);
        let hr = run_to_string(Device::Hr, false, "1m");
        assert!(hr.starts_with("time,bpm\n"));
    }
}

//! `vigil simulate`: the readings a simulated device produces, decoded
//! through the real codecs and session, as an app would receive them.
//!
//! The run goes through the SDK facade every app embeds, on its simulated
//! clock: a seeded simulated peripheral speaks GATT bytes over the
//! simulated transport, the session connects, reads, subscribes, backfills
//! and decodes, and the facade routes every reading through the alert
//! engine into a buffer in a temporary directory. Then what the buffer
//! holds is printed, page by page in the order it arrived, so a two-week
//! heart-rate trace needs no memory to speak of. Paused time makes a
//! simulated day take a fraction of a second, and a seed always prints the
//! same trace.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;
use vigil_core::api::{
    AlertEvent, BufferEvent, ClockMode, DeviceEvent, DeviceKind, HostRequest, Listener,
    ReadingEvent, Simulation, SyncEvent, VigilConfig,
};
use vigil_core::model::{Reading, Stream};
use vigil_core::store::{Buffer, BufferConfig, StoredReading};

use crate::Failure;
use crate::sdk_run::run_to_end;
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
    /// Seeded random field faults (disconnects, out-of-range periods,
    /// dropped, duplicated and corrupt notifications, a few a day of each),
    /// drawn from `--seed`.
    #[arg(long)]
    faults: bool,
}

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

/// Prints readings as the trace or JSON lines.
struct Printer<W: Write> {
    out: csv::Writer<W>,
    device: Device,
    json: bool,
    /// SpO2 waits for the pulse rate decoded from the same notification.
    spo2: Option<Reading>,
}

impl<W: Write> Printer<W> {
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
            spo2: None,
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

/// Runs `vigil simulate`.
pub fn run(args: Args) -> Result<(), Failure> {
    let duration = parse_duration(&args.duration)?;
    let start = DateTime::parse_from_rfc3339(&args.start)
        .map_err(|e| Failure::Input(format!("bad --start: {e}")))?
        .with_timezone(&Utc);
    if args.interval != 1 && args.interval != 5 {
        return Err(Failure::Input(format!(
            "--interval must be 1 or 5, not {}",
            args.interval
        )));
    }
    let run = Run {
        device: args.device,
        seed: args.seed,
        start,
        duration,
        one_minute: args.interval == 1,
        faults: args.faults,
    };
    let out = std::io::BufWriter::new(std::io::stdout());
    simulate(&run, Printer::new(out, args.device, args.json)?)?
        .flush()
        .map_err(|e| Failure::Other(format!("cannot write output: {e}")))
}

/// What to simulate.
struct Run {
    device: Device,
    seed: u64,
    start: DateTime<Utc>,
    duration: TimeDelta,
    /// A CGM reports every minute instead of every five.
    one_minute: bool,
    /// Seeded random field faults.
    faults: bool,
}

/// Quiet: the trace is read from the buffer once the run ended.
struct Unheard;

impl Listener for Unheard {
    fn on_reading(&self, _: ReadingEvent) {}
    fn on_alert(&self, _: AlertEvent) {}
    fn on_device_event(&self, _: DeviceEvent) {}
    fn on_sync_event(&self, _: SyncEvent) {}
    fn on_buffer_event(&self, _: BufferEvent) {}
    fn on_host_request(&self, _: HostRequest) {}
}

/// Runs the device through the SDK into a temporary buffer, then prints
/// what it stored; returns the printer's writer.
fn simulate<W: Write>(run: &Run, mut printer: Printer<W>) -> Result<W, Failure> {
    let dir = tempfile::tempdir()
        .map_err(|e| Failure::Other(format!("cannot create a temporary directory: {e}")))?;
    let path = dir.path().join("simulate.db");
    let (name, kind) = match run.device {
        Device::Cgm => ("sim-cgm", DeviceKind::Cgm),
        Device::Hr => ("sim-hr", DeviceKind::HeartRate),
        Device::Spo2 => ("sim-spo2", DeviceKind::PulseOximeter),
        Device::Bgm => ("sim-bgm", DeviceKind::GlucoseMeter),
    };
    let mut config = VigilConfig::new(&path, "sim-patient");
    config.clock = ClockMode::Simulated {
        start_ms: run.start.timestamp_millis(),
        run_for: run
            .duration
            .to_std()
            .map_err(|e| Failure::Input(format!("bad duration: {e}")))?,
    };
    config.simulation_seed = run.seed;
    config.simulation = Some(Simulation {
        cgm_one_minute: run.one_minute,
        field_faults: run.faults,
        ..Simulation::default()
    });
    // A trace keeps every reading: no budget to evict by.
    config.buffer_budget_bytes = Some(1 << 40);
    run_to_end(config, &[(name, kind)], Arc::new(Unheard))?;
    print_stored(&path, &mut printer)?;
    printer
        .out
        .into_inner()
        .map_err(|e| Failure::Other(format!("cannot write output: {e}")))
}

/// Readings the buffer stored, a page at a time, in the order they were
/// stored within one data class (the buffer numbers trend and record
/// readings apart), through the buffer's export cursor.
struct Pages {
    target: &'static str,
    streams: Vec<Stream>,
    page: VecDeque<StoredReading>,
}

impl Pages {
    const SIZE: usize = 4096;

    fn new(target: &'static str, trend: bool) -> Pages {
        let streams = Stream::ALL
            .into_iter()
            .filter(|s| (s.profile() == vigil_core::model::Profile::Trend) == trend)
            .collect();
        Pages {
            target,
            streams,
            page: VecDeque::new(),
        }
    }

    fn peek(&mut self, buffer: &mut Buffer) -> vigil_core::Result<Option<&StoredReading>> {
        if self.page.is_empty() {
            let page = buffer.readings_to_export(self.target, &self.streams, Self::SIZE)?;
            if let Some(last) = page.last() {
                buffer.advance_export_cursor(self.target, last.id)?;
            }
            self.page = page.into();
        }
        Ok(self.page.front())
    }
}

/// Prints every stored reading in the order the session produced it: the
/// trend and record pages merged by receive time (a trend reading first
/// when a notification carried both, as the session decodes it).
fn print_stored<W: Write>(path: &Path, printer: &mut Printer<W>) -> Result<(), Failure> {
    let store = |e: vigil_core::Error| Failure::Other(format!("buffer: {e}"));
    let mut buffer = Buffer::open(path, BufferConfig::default()).map_err(store)?;
    let mut trend = Pages::new("vigil-simulate-trend", true);
    let mut record = Pages::new("vigil-simulate-record", false);
    loop {
        let t = trend
            .peek(&mut buffer)
            .map_err(store)?
            .map(|r| r.reading.receive_time);
        let r = record
            .peek(&mut buffer)
            .map_err(store)?
            .map(|r| r.reading.receive_time);
        let next = match (t, r) {
            (Some(t), Some(r)) if r < t => record.page.pop_front(),
            (Some(_), _) => trend.page.pop_front(),
            (None, Some(_)) => record.page.pop_front(),
            (None, None) => return Ok(()),
        };
        if let Some(s) = next {
            printer
                .print(&s.reading)
                .map_err(|e| Failure::Other(format!("cannot write output: {e}")))?;
        }
    }
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
        let start = DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let printer = Printer::new(Vec::new(), device, json).unwrap();
        let run = Run {
            device,
            seed: 3,
            start,
            duration: parse_duration(duration).unwrap(),
            one_minute: false,
            faults,
        };
        String::from_utf8(simulate(&run, printer).unwrap()).unwrap()
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

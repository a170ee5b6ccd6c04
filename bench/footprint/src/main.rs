//! Resident memory of a running SDK with one simulated CGM and one
//! heart-rate strap, through the same facade the bindings wrap.
//!
//! ```text
//! cargo run --profile mobile -p vigil-footprint -- [--hours 24]
//! ```
//!
//! Runs `--hours` of simulated time (both devices, real GATT bytes, real
//! SQLite buffer in a temporary directory) and prints VmRSS before the SDK
//! exists, while it runs, and after, and VmHWM (the peak), read from
//! `/proc/self/status` (Linux only).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigil_core::api::{
    AlertEvent, BufferEvent, ClockMode, DeviceEvent, DeviceEventKind, DeviceKind, HostRequest,
    Listener, ReadingEvent, SyncEvent, TransportMode, Vigil, VigilConfig,
};

/// What can stop a measurement.
#[derive(Debug, thiserror::Error)]
enum FootprintError {
    /// The SDK refused a call.
    #[error("sdk: {0}")]
    Sdk(#[from] vigil_core::api::SdkError),
    /// /proc or the temporary directory.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A bad argument.
    #[error("usage: footprint-rss [--hours N] ({0})")]
    Usage(String),
    /// The devices did not finish their simulated run in time.
    #[error("the simulated run did not finish within {0:?}")]
    Timeout(Duration),
}

/// Counts what the SDK reports; keeps no values (readings are PHI).
#[derive(Default)]
struct Counter {
    readings: AtomicU64,
    alerts: AtomicU64,
    finished: AtomicU64,
}

impl Listener for Counter {
    fn on_reading(&self, _: ReadingEvent) {
        self.readings.fetch_add(1, Ordering::Relaxed);
    }
    fn on_alert(&self, _: AlertEvent) {
        self.alerts.fetch_add(1, Ordering::Relaxed);
    }
    fn on_device_event(&self, event: DeviceEvent) {
        if matches!(
            event.kind,
            DeviceEventKind::Stopped | DeviceEventKind::Failed
        ) {
            self.finished.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn on_sync_event(&self, _: SyncEvent) {}
    fn on_buffer_event(&self, _: BufferEvent) {}
    fn on_host_request(&self, _: HostRequest) {}
}

/// (VmRSS, VmHWM) in KiB.
fn memory() -> Result<(u64, u64), FootprintError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

fn hours_arg() -> Result<u64, FootprintError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(24),
        [flag, n] if flag == "--hours" => n
            .parse()
            .map_err(|_| FootprintError::Usage(format!("not a number of hours: {n}"))),
        other => Err(FootprintError::Usage(format!("unexpected {other:?}"))),
    }
}

fn run() -> Result<(), FootprintError> {
    let hours = hours_arg()?;
    let dir = std::env::temp_dir().join(format!("vigil-footprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(hours, dir.join("buffer.sqlite"));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(hours: u64, path: PathBuf) -> Result<(), FootprintError> {
    let (baseline, _) = memory()?;
    let mut config = VigilConfig::new(path, "footprint-patient");
    config.transport = TransportMode::Simulated;
    config.clock = ClockMode::Simulated {
        start_ms: 1_767_225_600_000,
        run_for: Duration::from_secs(hours * 3600),
    };
    let counter = Arc::new(Counter::default());
    let mut sdk = Vigil::new(config, counter.clone(), None)?;
    sdk.pair("cgm-1", DeviceKind::Cgm)?;
    sdk.pair("hr-1", DeviceKind::HeartRate)?;
    let (idle, _) = memory()?;
    let started = Instant::now();
    sdk.start()?;
    let limit = Duration::from_secs(300);
    let mut running_max = 0;
    while counter.finished.load(Ordering::Relaxed) < 2 {
        if started.elapsed() > limit {
            return Err(FootprintError::Timeout(limit));
        }
        running_max = running_max.max(memory()?.0);
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    let (after_run, _) = memory()?;
    sdk.stop()?;
    sdk.close()?;
    drop(sdk);
    let (after_close, peak) = memory()?;
    println!("simulated hours:        {hours} (CGM + heart-rate strap), {elapsed:.1?} wall");
    println!(
        "readings / alerts:      {} / {}",
        counter.readings.load(Ordering::Relaxed),
        counter.alerts.load(Ordering::Relaxed)
    );
    println!("VmRSS before the SDK:   {baseline} KiB");
    println!("VmRSS configured, idle: {idle} KiB");
    println!("VmRSS running (max):    {running_max} KiB");
    println!("VmRSS after the run:    {after_run} KiB");
    println!("VmRSS after close:      {after_close} KiB");
    println!("VmHWM (peak):           {peak} KiB");
    println!(
        "SDK cost while running: {} KiB over the process baseline",
        running_max.saturating_sub(baseline)
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("footprint-rss: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

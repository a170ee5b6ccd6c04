//! `e2e-strap BUFFER START_MS`: an SDK process for the kill-during-a-burst
//! scenario. It runs the facade on simulated time with a 1 Hz heart-rate
//! strap and a CGM (simulated peripherals speaking the GATT bytes), and
//! prints one line per reading its listener hears, at the moment it hears
//! it: `heard DEVICE STREAM SEQUENCE SENSOR_TIME_MS`. The parent kills it
//! mid-run and checks that the buffer holds every reading printed.
//!
//! Prints `started` once collecting and `done` if the simulated day ends
//! before it is killed.

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vigil_core::api::{
    AlertEvent, BufferEvent, ClockMode, DeviceEvent, DeviceEventKind, DeviceKind, HostRequest,
    Listener, ReadingEvent, SyncEvent, Vigil, VigilConfig,
};

/// Prints what it hears; stdout is flushed per line so a line the parent
/// read was printed before the kill.
struct Printer {
    stopped: Mutex<usize>,
}

impl Printer {
    fn say(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        // The parent reading the pipe is the whole point; if it is gone
        // there is nobody to tell.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

impl Listener for Printer {
    fn on_reading(&self, r: ReadingEvent) {
        self.say(&format!(
            "heard {} {} {} {}",
            r.device, r.stream, r.sequence, r.sensor_time_ms
        ));
    }
    fn on_alert(&self, _: AlertEvent) {}
    fn on_device_event(&self, e: DeviceEvent) {
        if matches!(e.kind, DeviceEventKind::Stopped | DeviceEventKind::Failed) {
            let mut n = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            if *n == 2 {
                self.say("done");
            }
        }
    }
    fn on_sync_event(&self, _: SyncEvent) {}
    fn on_buffer_event(&self, _: BufferEvent) {}
    fn on_host_request(&self, _: HostRequest) {}
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(buffer), Some(start_ms)) = (
        args.first(),
        args.get(1).and_then(|s| s.parse::<i64>().ok()),
    ) else {
        eprintln!("usage: e2e-strap BUFFER START_MS");
        return ExitCode::from(2);
    };
    let mut config = VigilConfig::new(buffer, "patient-1");
    config.clock = ClockMode::Simulated {
        start_ms,
        run_for: Duration::from_secs(24 * 3600),
    };
    let printer = Arc::new(Printer {
        stopped: Mutex::new(0),
    });
    let sdk = match Vigil::new(config, printer.clone(), None) {
        Ok(sdk) => sdk,
        Err(e) => {
            eprintln!("e2e-strap: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = sdk
        .pair("strap-1", DeviceKind::HeartRate)
        .and_then(|()| sdk.pair("cgm-1", DeviceKind::Cgm))
        .and_then(|()| sdk.start());
    if let Err(e) = started {
        eprintln!("e2e-strap: {e}");
        return ExitCode::FAILURE;
    }
    printer.say("started");
    // Runs until killed (or the day ends; then the parent sees `done`).
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

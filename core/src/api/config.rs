//! How an app configures the SDK.

use std::path::PathBuf;
use std::time::Duration;

use crate::alerts::AlertConfig;
pub use crate::clock::Seconds;

pub use crate::session::DeviceKind;
pub use crate::sync::{Network, Power};

/// Where the SDK's devices are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum TransportMode {
    /// Simulated peripherals that speak the exact GATT bytes: demos, tests,
    /// app development without hardware.
    Simulated,
    /// The app runs Bluetooth through the platform's own stack and feeds
    /// the bytes in (`Vigil::feed_host_bytes`, host requests).
    HostFed,
    /// The core talks to the radio itself through btleplug (Linux, macOS;
    /// needs the `btleplug` feature). Device ids are the platform's
    /// peripheral ids.
    Btleplug,
}

/// Which time the SDK runs on.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ClockMode {
    /// The phone's wall clock and real waiting (production).
    Wall,
    /// Simulated time starting at `start_ms` (Unix ms) that runs as fast as
    /// the machine allows, each session stopping by itself after
    /// `run_for`: demos and tests see hours of readings in a moment.
    /// Requests to the server run on real time and carry the wall clock's
    /// `sent_at`, so the server takes the simulated reading times as they
    /// are: start at least `run_for` before now if they are to be synced
    /// (the server refuses readings from its future).
    Simulated {
        /// Start of simulated time, Unix milliseconds UTC.
        start_ms: i64,
        /// How much simulated time each started device runs.
        run_for: Duration,
    },
    /// Simulated time starting at `start_ms` that runs `factor` times
    /// faster than the wall clock until [`crate::api::Vigil::stop`], and at
    /// real speed once it has caught up with the wall clock: live demos,
    /// where days of history fill in while people watch, then go on live.
    /// Requests to the server run on real time.
    Accelerated {
        /// Start of simulated time, Unix milliseconds UTC.
        start_ms: i64,
        /// Simulated seconds per wall second (at least 1).
        factor: f64,
    },
}

impl ClockMode {
    /// Whether time is simulated (so requests need the wall-clock network
    /// runtime).
    pub(crate) fn simulated(&self) -> bool {
        !matches!(self, ClockMode::Wall)
    }
}

// The facade speaks the session's `DeviceKind` (one definition of the
// concept); what pairing a kind means to precedence and the registry
// lives here, next to the facade that pairs.
impl DeviceKind {
    /// The precedence class of a device paired as this kind (the names
    /// precedence rankings are written in).
    pub(crate) fn class(self) -> crate::precedence::DeviceClass {
        crate::precedence::DeviceClass::new(match self {
            DeviceKind::Cgm => "cgm",
            DeviceKind::HeartRate => "heart_rate_strap",
            DeviceKind::PulseOximeter => "oximeter",
            DeviceKind::GlucoseMeter => "meter",
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Cgm => "cgm",
            DeviceKind::HeartRate => "heart_rate",
            DeviceKind::PulseOximeter => "pulse_oximeter",
            DeviceKind::GlucoseMeter => "glucose_meter",
        }
    }
}

/// Everything the SDK needs to start.
///
/// Also the record Kotlin and Swift start the SDK with (one definition of
/// the configuration, no mirror in the bindings): every field an app
/// needn't set has a default argument, equal to what
/// [`VigilConfig::new`] sets; an app names the buffer file, the patient,
/// the transport and the clock (uniffi gives enums no default argument).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct VigilConfig {
    /// The SQLite buffer file (created if missing).
    pub storage_path: PathBuf,
    /// Whose readings these are.
    pub patient_id: String,
    /// The ingest server; `None` keeps everything on the phone.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub server_url: Option<String>,
    /// A fixed device token, when the app has no token provider.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub token: Option<String>,
    /// Batch sync interval (default 15 minutes).
    #[cfg_attr(feature = "uniffi", uniffi(default = 900))]
    pub sync_interval: Seconds,
    /// Batch sync interval while glucose is steady (80–250 mg/dL, moving
    /// under 1 mg/dL a minute) and no alert fired lately: 60 minutes by
    /// default, so the clinician's view of a steady patient is up to an
    /// hour old (alerts never wait). Equal to `sync_interval` turns the
    /// stretch off.
    #[cfg_attr(feature = "uniffi", uniffi(default = 3600))]
    pub sync_interval_when_stable: Seconds,
    /// The longest the phone stays silent toward the service: when no
    /// request has been acknowledged for this long, a body-less contact
    /// goes (or the due batch goes early). 28 minutes by default, under
    /// the service's dead-man's switch (`--app-silent-after`, 30 minutes by
    /// default) with room for a late timer; change the two together.
    #[cfg_attr(feature = "uniffi", uniffi(default = 1680))]
    pub contact_interval: Seconds,
    /// Batches wait for an unmetered network (alerts never wait).
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub wait_for_unmetered: bool,
    /// Alert thresholds (default [`AlertConfig::default`]).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub alerts: AlertConfig,
    /// Buffer byte budget; `None` for the default (72 hours of the worst
    /// case).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub buffer_budget_bytes: Option<u64>,
    /// Where the devices are.
    pub transport: TransportMode,
    /// Which time to run on.
    pub clock: ClockMode,
    /// Seed of simulated devices (their physiology and jitter).
    #[cfg_attr(feature = "uniffi", uniffi(default = 1))]
    pub simulation_seed: u64,
    /// What simulated devices do: the simulated patient, out-of-range
    /// periods (simulated transport only). `None` for the default: a
    /// healthy sensor on a well-controlled patient, always in range.
    /// Optional rather than a record with defaults because uniffi gives
    /// the patient (an enum) no default argument.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub simulation: Option<super::simulation::Simulation>,
}

impl VigilConfig {
    /// A configuration with defaults: no server, default alerts and budget,
    /// simulated devices on the wall clock.
    pub fn new(storage_path: impl Into<PathBuf>, patient_id: impl Into<String>) -> VigilConfig {
        VigilConfig {
            storage_path: storage_path.into(),
            patient_id: patient_id.into(),
            server_url: None,
            token: None,
            sync_interval: Seconds::minutes(15),
            sync_interval_when_stable: Seconds::minutes(60),
            contact_interval: Seconds::minutes(28),
            wait_for_unmetered: false,
            alerts: AlertConfig::default(),
            buffer_budget_bytes: None,
            transport: TransportMode::Simulated,
            clock: ClockMode::Wall,
            simulation_seed: 1,
            simulation: None,
        }
    }

    /// What simulated devices do: [`VigilConfig::simulation`], or the
    /// default when it is `None`.
    pub fn simulation(&self) -> super::simulation::Simulation {
        self.simulation.clone().unwrap_or_default()
    }
}

// The buffer file's path crosses as a string. Lowering back to a string
// (only ever for a configuration handed back to the app) replaces bytes
// that are not UTF-8, which no path an app passed in contains.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(PathBuf, String, {
    remote,
    lower: |p| p.to_string_lossy().into_owned(),
    try_lift: |s| Ok(PathBuf::from(s)),
});

//! The configuration an app passes across the FFI, and the one place it
//! becomes the facade's [`api::VigilConfig`].
//!
//! This record is not a copy of the facade's: it is the subset a phone app
//! sets (no simulated-patient scripting), in FFI-friendly units, with the
//! defaults Kotlin and Swift get as default arguments. Everything it
//! names (transport, clock) is the facade's own type.

use std::time::Duration;

use vigil_core::alerts::AlertConfig;
use vigil_core::api::{self, ClockMode, TransportMode};

/// Alert thresholds the app may change; the rest keep the core's defaults.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AlertSettings {
    /// Urgent low below, mg/dL (54).
    pub urgent_low_mg_dl: f64,
    /// Low below, mg/dL (70).
    pub low_mg_dl: f64,
    /// High above, mg/dL (250).
    pub high_mg_dl: f64,
    /// Fast fall/rise at, mg/dL/min (2).
    pub fast_rate_mg_dl_per_min: f64,
    /// Signal loss after, minutes (20).
    pub signal_loss_after_min: u32,
}

/// Everything the SDK needs to start. Kotlin and Swift get the defaults
/// below as default arguments, so an app names only what it changes:
/// the buffer file, the patient, the transport and the clock.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct VigilConfig {
    /// The SQLite buffer file (created if missing).
    pub storage_path: String,
    /// Whose readings these are.
    pub patient_id: String,
    /// The ingest server; none keeps everything on the phone.
    #[uniffi(default = None)]
    pub server_url: Option<String>,
    /// A fixed device token, when there is no token provider.
    #[uniffi(default = None)]
    pub token: Option<String>,
    /// Batch sync interval, seconds (15 minutes by default).
    #[uniffi(default = 900)]
    pub sync_interval_seconds: u64,
    /// Batch sync interval while glucose is steady and no alert fired
    /// lately, seconds (60 minutes by default: a steady patient's data
    /// reaches the clinician up to an hour late; alerts never wait).
    /// Equal to `sync_interval_seconds` turns the stretch off.
    #[uniffi(default = 3600)]
    pub sync_interval_when_stable_seconds: u64,
    /// Batches wait for Wi-Fi (alerts never wait).
    #[uniffi(default = false)]
    pub wait_for_unmetered: bool,
    /// Alert thresholds; none for the defaults.
    #[uniffi(default = None)]
    pub alerts: Option<AlertSettings>,
    /// Buffer byte budget; none for the default.
    #[uniffi(default = None)]
    pub buffer_budget_bytes: Option<u64>,
    /// Where the devices are.
    pub transport: TransportMode,
    /// Which time to run on.
    pub clock: ClockMode,
    /// Seed of simulated devices.
    #[uniffi(default = 1)]
    pub simulation_seed: u64,
}

impl From<VigilConfig> for api::VigilConfig {
    fn from(c: VigilConfig) -> api::VigilConfig {
        let mut out = api::VigilConfig::new(c.storage_path, c.patient_id);
        out.server_url = c.server_url;
        out.token = c.token;
        out.sync_interval = Duration::from_secs(c.sync_interval_seconds);
        out.sync_interval_when_stable = Duration::from_secs(c.sync_interval_when_stable_seconds);
        out.wait_for_unmetered = c.wait_for_unmetered;
        out.buffer_budget_bytes = c.buffer_budget_bytes;
        out.simulation_seed = c.simulation_seed;
        out.transport = c.transport;
        out.clock = c.clock;
        if let Some(a) = c.alerts {
            out.alerts = AlertConfig {
                urgent_low_mg_dl: a.urgent_low_mg_dl,
                low_mg_dl: a.low_mg_dl,
                high_mg_dl: a.high_mg_dl,
                fast_rate_mg_dl_per_min: a.fast_rate_mg_dl_per_min,
                signal_loss_after: chrono::TimeDelta::minutes(i64::from(a.signal_loss_after_min)),
                ..AlertConfig::default()
            };
        }
        out
    }
}

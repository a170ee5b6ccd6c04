//! Vigil's uniffi bindings: a thin layer over [`vigil_core::api`] that
//! Kotlin and Swift are generated from (proc-macros, no UDL).
//!
//! Everything here is a one-to-one mapping of the facade's plain types;
//! there is no logic that belongs in the core. Generate the bindings from
//! the built library (see `bindings/README.md`):
//!
//! ```text
//! cargo build -p vigil-bindings
//! cargo run -p vigil-bindings --bin uniffi-bindgen -- generate \
//!     --library target/debug/libvigil_bindings.so --language kotlin --out-dir target/uniffi/kotlin
//! ```
//!
//! Threading contract: every method may be called from any thread (the
//! SDK owns its runtime); methods block briefly and must not be called
//! from inside an async runtime thread of the SDK. Listener callbacks
//! arrive on one SDK-owned thread, `vigil-callbacks`, in order; they may
//! call back into the SDK.

mod convert;

use std::sync::{Arc, RwLock};

use vigil_core::api;

uniffi::setup_scaffolding!();

/// The one public error: few variants, each actionable; the message never
/// carries patient data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum VigilError {
    /// The on-phone buffer failed or is full.
    #[error("{0}")]
    Storage(String),
    /// The server could not be reached or refused the request.
    #[error("{0}")]
    Network(String),
    /// The server refused the token.
    #[error("{0}")]
    Auth(String),
    /// An argument or setting is invalid.
    #[error("{0}")]
    InvalidInput(String),
    /// A device or the Bluetooth stack failed.
    #[error("{0}")]
    Device(String),
    /// Not configured for this call, or not valid in the SDK's state.
    #[error("{0}")]
    NotAvailable(String),
}

impl From<api::SdkError> for VigilError {
    fn from(e: api::SdkError) -> VigilError {
        let message = e.to_string();
        match e {
            api::SdkError::Storage { .. } => VigilError::Storage(message),
            api::SdkError::Network { .. } => VigilError::Network(message),
            api::SdkError::Auth { .. } => VigilError::Auth(message),
            api::SdkError::InvalidInput { .. } => VigilError::InvalidInput(message),
            api::SdkError::Device { .. } => VigilError::Device(message),
            api::SdkError::NotAvailable { .. } => VigilError::NotAvailable(message),
        }
    }
}

/// Where the devices are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TransportMode {
    /// Simulated peripherals speaking the exact GATT bytes.
    Simulated,
    /// The app's own Bluetooth stack feeds the bytes in.
    HostFed,
    /// The core drives the radio through btleplug (desktop, tests).
    Btleplug,
}

/// Which time the SDK runs on.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Enum)]
pub enum ClockMode {
    /// The phone's clock (production).
    Wall,
    /// Simulated time from `start_ms`, as fast as the machine allows; each
    /// started device runs `run_for_ms` of simulated time.
    Simulated {
        /// Start, Unix milliseconds UTC.
        start_ms: i64,
        /// Simulated run length per start, milliseconds.
        run_for_ms: u64,
    },
    /// Simulated time from `start_ms` running `factor` times faster than
    /// the wall clock until stopped (live demos); the network stays on
    /// real time.
    Accelerated {
        /// Start, Unix milliseconds UTC.
        start_ms: i64,
        /// Simulated seconds per wall second, 1 to 1,000,000.
        factor: f64,
    },
}

/// What kind of device is paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DeviceKind {
    /// Continuous glucose monitor.
    Cgm,
    /// Heart-rate strap.
    HeartRate,
    /// Pulse oximeter.
    PulseOximeter,
    /// Blood glucose meter.
    GlucoseMeter,
}

/// The phone's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Network {
    /// Offline.
    None,
    /// Unmetered (Wi-Fi).
    Wifi,
    /// Cellular.
    Cellular,
    /// Other metered link.
    Metered,
}

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

/// One decoded reading.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Reading {
    /// Device id.
    pub device: String,
    /// Stream name (`glucose`, `heart_rate`, ...).
    pub stream: String,
    /// Value in `unit`.
    pub value: f64,
    /// UCUM unit.
    pub unit: String,
    /// Sensor time, Unix ms.
    pub sensor_time_ms: i64,
    /// Receive time, Unix ms.
    pub receive_time_ms: i64,
    /// Per-device, per-stream sequence.
    pub sequence: u64,
}

/// Readings for an export target (the phone's health store), oldest
/// first, and the cursor that confirms them.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ExportBatch {
    /// Not yet confirmed by the target, held-back readings included.
    pub readings: Vec<Reading>,
    /// Pass to `confirm_export` once the target stored them all; opaque,
    /// 0 for an empty batch.
    pub cursor: u64,
}

/// An alert raised, repeated or ended.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Alert {
    /// Stable id.
    pub id: String,
    /// Device id.
    pub device: String,
    /// `urgent_low`, `low`, `high`, `fast_fall`, `signal_loss`, ...
    pub kind: String,
    /// `start`, `realert` or `end`.
    pub phase: String,
    /// When, Unix ms.
    pub time_ms: i64,
    /// Triggering glucose, mg/dL.
    pub glucose_mg_dl: Option<f64>,
}

/// A device event.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DeviceEvent {
    /// Device id.
    pub device: String,
    /// `connected`, `disconnected`, `reconnecting`, `stopped`, `failed`, ...
    pub kind: String,
    /// Detail for logs.
    pub detail: String,
    /// When, Unix ms.
    pub time_ms: i64,
}

/// A sync event.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncEvent {
    /// What happened.
    pub kind: String,
    /// Detail for logs.
    pub detail: String,
}

/// A buffer pressure or eviction event.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct BufferEvent {
    /// `normal`, `high` or `critical`.
    pub pressure: String,
    /// Bytes in use.
    pub used_bytes: u64,
    /// Byte budget.
    pub budget_bytes: u64,
    /// Readings evicted.
    pub evicted: u64,
}

/// A request to the app's Bluetooth stack (host-fed transport).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HostRequest {
    /// Pass back with the answer.
    pub token: u64,
    /// `connect`, `discover`, `read`, `write`, `subscribe`, ...
    pub command: String,
    /// Device id.
    pub device: Option<String>,
    /// Characteristic UUID (128-bit form).
    pub characteristic: Option<String>,
    /// Bytes to write.
    pub value: Vec<u8>,
}

/// One discovered characteristic.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HostCharacteristic {
    /// Service UUID.
    pub service: String,
    /// Characteristic UUID.
    pub uuid: String,
    /// GATT property bits.
    pub properties: u8,
}

/// The app's answer to a [`HostRequest`].
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum HostReply {
    /// Done.
    Done,
    /// The value read.
    Value {
        /// Bytes.
        value: Vec<u8>,
    },
    /// Characteristics discovered.
    Characteristics {
        /// Them.
        characteristics: Vec<HostCharacteristic>,
    },
    /// The platform failed.
    Failed {
        /// For logs.
        message: String,
    },
}

/// Completeness over every paired device and stream.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LedgerSummary {
    /// Delivered by sensors.
    pub received: u64,
    /// Stored.
    pub stored: u64,
    /// Reported missing.
    pub reported_missing: u64,
    /// Acknowledged by the cloud.
    pub acknowledged: u64,
    /// Evicted before the cloud had them.
    pub evicted_unsent: u64,
}

/// The SDK at a glance.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Status {
    /// Paired devices.
    pub devices: Vec<String>,
    /// Collecting.
    pub running: bool,
    /// Not yet acknowledged by the cloud.
    pub unsent_readings: u64,
    /// Stored in total.
    pub stored_readings: u64,
    /// Alerts not yet delivered to the cloud.
    pub pending_alerts: u64,
    /// Buffer bytes in use.
    pub buffer_used_bytes: u64,
    /// Buffer budget.
    pub buffer_budget_bytes: u64,
    /// `normal`, `high` or `critical`.
    pub buffer_pressure: String,
    /// Last acknowledged sync, Unix ms.
    pub last_sync_ms: Option<i64>,
    /// Last device contact, Unix ms.
    pub last_device_contact_ms: Option<i64>,
    /// Network last reported.
    pub network: Network,
    /// Completeness.
    pub ledger: LedgerSummary,
}

/// Everything the SDK tells the app. Called on the SDK's
/// `vigil-callbacks` thread, in order; keep each call short.
#[uniffi::export(with_foreign)]
pub trait VigilListener: Send + Sync {
    /// A reading was decoded.
    fn on_reading(&self, reading: Reading);
    /// An alert was raised (heard before the outbox write, so a local
    /// alarm never waits for the disk).
    fn on_alert(&self, alert: Alert);
    /// A device event.
    fn on_device_event(&self, event: DeviceEvent);
    /// A sync event.
    fn on_sync_event(&self, event: SyncEvent);
    /// A buffer event.
    fn on_buffer_event(&self, event: BufferEvent);
    /// The host-fed transport needs the app's Bluetooth stack.
    fn on_host_request(&self, request: HostRequest);
}

/// Supplies the cloud token; asked again after a 401.
#[uniffi::export(with_foreign)]
pub trait TokenProvider: Send + Sync {
    /// The current token.
    fn token(&self) -> Option<String>;
    /// A fresh token after a refusal.
    fn refresh(&self) -> Option<String>;
}

/// The SDK object apps hold: one per patient and buffer file.
#[derive(uniffi::Object)]
pub struct VigilSdk {
    inner: RwLock<Option<api::Vigil>>,
}

impl std::fmt::Debug for VigilSdk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VigilSdk").finish_non_exhaustive()
    }
}

impl VigilSdk {
    fn with<T>(&self, f: impl FnOnce(&api::Vigil) -> api::SdkResult<T>) -> Result<T, VigilError> {
        let guard = self.inner.read().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(v) => f(v).map_err(VigilError::from),
            None => Err(VigilError::NotAvailable("the SDK is closed".into())),
        }
    }
}

#[uniffi::export]
impl VigilSdk {
    /// Opens the buffer and starts the SDK's runtime and callback thread.
    #[uniffi::constructor]
    pub fn new(
        config: VigilConfig,
        listener: Arc<dyn VigilListener>,
        token_provider: Option<Arc<dyn TokenProvider>>,
    ) -> Result<Arc<VigilSdk>, VigilError> {
        let config = convert::config(config)?;
        let listener = Arc::new(convert::ListenerAdapter(listener));
        let tokens = token_provider
            .map(|t| Arc::new(convert::TokenAdapter(t)) as Arc<dyn api::TokenProvider>);
        let vigil = api::Vigil::new(config, listener, tokens)?;
        Ok(Arc::new(VigilSdk {
            inner: RwLock::new(Some(vigil)),
        }))
    }

    /// Pairs a device to the patient.
    pub fn pair(&self, device: String, kind: DeviceKind) -> Result<(), VigilError> {
        self.with(|v| v.pair(&device, convert::kind(kind)))
    }

    /// Stops and forgets a device (its history stays).
    pub fn forget(&self, device: String) -> Result<(), VigilError> {
        self.with(|v| v.forget(&device))
    }

    /// Paired devices.
    pub fn devices(&self) -> Result<Vec<String>, VigilError> {
        self.with(|v| Ok(v.devices()))
    }

    /// Starts collecting from every paired device.
    pub fn start(&self) -> Result<(), VigilError> {
        self.with(|v| v.start())
    }

    /// Stops collecting; returns once every session has let go.
    pub fn stop(&self) -> Result<(), VigilError> {
        self.with(|v| v.stop())
    }

    /// Whether any device is collecting.
    pub fn is_running(&self) -> Result<bool, VigilError> {
        self.with(|v| Ok(v.is_running()))
    }

    /// Notification bytes from the app's Bluetooth stack.
    pub fn feed_host_bytes(
        &self,
        device: String,
        characteristic: String,
        bytes: Vec<u8>,
    ) -> Result<(), VigilError> {
        self.with(|v| v.feed_host_bytes(&device, &characteristic, bytes))
    }

    /// The platform's link to `device` went up or down.
    pub fn host_connection(&self, device: String, connected: bool) -> Result<(), VigilError> {
        self.with(|v| v.host_connection(&device, connected))
    }

    /// Answers a host request.
    pub fn complete_host_request(&self, token: u64, reply: HostReply) -> Result<(), VigilError> {
        let reply = convert::reply(reply);
        self.with(|v| v.complete_host_request(token, reply))
    }

    /// The phone's network changed.
    pub fn set_network(&self, network: Network) -> Result<(), VigilError> {
        self.with(|v| {
            v.set_network(convert::network(network));
            Ok(())
        })
    }

    /// The phone's battery changed.
    pub fn set_power(&self, percent: u8, charging: bool) -> Result<(), VigilError> {
        self.with(|v| {
            v.set_power(api::Power { percent, charging });
            Ok(())
        })
    }

    /// Sends what the sync policy allows now; returns readings sent.
    pub fn sync_now(&self) -> Result<u64, VigilError> {
        self.with(|v| v.sync_now())
    }

    /// The SDK at a glance.
    pub fn status(&self) -> Result<Status, VigilError> {
        self.with(|v| v.status().map(convert::status))
    }

    /// Up to `limit` (1 to 10,000) stored readings of `streams` that
    /// `target` has not confirmed, oldest first; the same batch again
    /// until it is confirmed. Readings evicted before export are gone.
    pub fn export_batch(
        &self,
        target: String,
        streams: Vec<String>,
        limit: u32,
    ) -> Result<ExportBatch, VigilError> {
        self.with(|v| {
            v.export_batch(&target, &streams, limit)
                .map(convert::export_batch)
        })
    }

    /// `target` stored the batch that came with `cursor`; the next batch
    /// starts after it. Never moves the cursor back.
    pub fn confirm_export(&self, target: String, cursor: u64) -> Result<(), VigilError> {
        self.with(|v| v.confirm_export(&target, cursor))
    }

    /// The series that stands for the patient: of every stored reading of
    /// `quantity` (`glucose`, `heart_rate`, `spo2`) measured in
    /// `from_ms..to_ms` (at most 24 h), one reading per coincident moment,
    /// the one the precedence policy picks (devices ranked by the kind
    /// they were paired as), unchanged, in time order. `on_reading` and
    /// `export_batch` stay raw.
    pub fn resolved_readings(
        &self,
        quantity: String,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Reading>, VigilError> {
        self.with(|v| {
            v.resolved_readings(&quantity, from_ms, to_ms)
                .map(|rs| rs.into_iter().map(convert::reading).collect())
        })
    }

    /// Stops everything and releases the runtime; the object is unusable
    /// afterwards. Also happens when the object is destroyed.
    pub fn shutdown(&self) -> Result<(), VigilError> {
        let taken = self.inner.write().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(mut v) => v.close().map_err(VigilError::from),
            None => Ok(()),
        }
    }
}

/// The library's version, for bug reports.
#[uniffi::export]
pub fn vigil_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

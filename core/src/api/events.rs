//! What the facade tells the app: plain values (strings, numbers, Unix
//! milliseconds, typed enums) that cross the FFI as they are (with the
//! `uniffi` feature they are the bindings' own types), and one [`Listener`].

use chrono::{DateTime, Utc};

pub use crate::alerts::{AlertKind, Phase};
pub use crate::store::capacity::PressureLevel;

use crate::model;

/// One decoded reading, as the app sees it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ReadingEvent {
    /// The device that measured it.
    pub device: String,
    /// Stream name, e.g. `glucose`, `heart_rate`.
    pub stream: String,
    /// Value in `unit`.
    pub value: f64,
    /// UCUM unit, e.g. `mg/dL`.
    pub unit: String,
    /// Sensor time, Unix milliseconds UTC.
    pub sensor_time_ms: i64,
    /// Phone receive time, Unix milliseconds UTC.
    pub receive_time_ms: i64,
    /// Per-device, per-stream sequence.
    pub sequence: u64,
}

impl ReadingEvent {
    pub(crate) fn from_reading(r: &model::Reading) -> ReadingEvent {
        ReadingEvent {
            device: r.provenance.device.0.clone(),
            stream: r.stream.as_str().to_string(),
            value: r.value,
            unit: r.ucum().to_string(),
            sensor_time_ms: r.sensor_time.timestamp_millis(),
            receive_time_ms: r.receive_time.timestamp_millis(),
            sequence: r.sequence,
        }
    }
}

/// An alert raised, repeated or ended on a raw reading.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct AlertEvent {
    /// Stable id (the cloud deduplicates on it).
    pub id: String,
    /// Which device's readings raised it.
    pub device: String,
    /// What the alert is about.
    pub kind: AlertKind,
    /// Start, re-alert or end of its episode.
    pub phase: Phase,
    /// When, Unix milliseconds UTC.
    pub time_ms: i64,
    /// The glucose value that triggered it, when there is one.
    pub glucose_mg_dl: Option<f64>,
}

/// Something that happened to a device (connected, disconnected, ...).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct DeviceEvent {
    /// Which device.
    pub device: String,
    /// What happened.
    pub kind: DeviceEventKind,
    /// A short detail for logs (never a reading value): the disconnect
    /// reason, the reconnect attempt, the failure, ...
    pub detail: String,
    /// When, Unix milliseconds UTC.
    pub time_ms: i64,
}

/// What happened to a device: the session's events, and the end of its
/// run in the facade ([`DeviceEventKind::Stopped`], [`DeviceEventKind::Failed`]).
/// Their details (reason, attempt, drift) are in [`DeviceEvent::detail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum DeviceEventKind {
    /// The link is up.
    Connected,
    /// The link went down; the session reconnects by itself.
    Disconnected,
    /// A reconnection is scheduled (attempt and delay in the detail).
    Reconnecting,
    /// The sensor's clock differs from the phone's (drift in the detail).
    ClockDrift,
    /// A sensor session the phone had not seen began.
    NewSession,
    /// The sensor session runs but has produced no reading yet.
    WarmingUp,
    /// The first reading after a warm-up arrived.
    WarmUpComplete,
    /// The sensor session stopped (expired or stopped on request).
    SessionStopped,
    /// The device reports a low battery (level in the detail, if known).
    BatteryLow,
    /// A frame failed its CRC or framing and was dropped (backfill
    /// recovers the record where the device stores records).
    CorruptFrame,
    /// Collection from the device ended: stopped, forgotten or its
    /// simulated run is over.
    Stopped,
    /// Collection from the device ended on an error (in the detail).
    Failed,
}

impl DeviceEventKind {
    /// Stable lowercase name, for logs and command-line output.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceEventKind::Connected => "connected",
            DeviceEventKind::Disconnected => "disconnected",
            DeviceEventKind::Reconnecting => "reconnecting",
            DeviceEventKind::ClockDrift => "clock_drift",
            DeviceEventKind::NewSession => "new_session",
            DeviceEventKind::WarmingUp => "warming_up",
            DeviceEventKind::WarmUpComplete => "warm_up_complete",
            DeviceEventKind::SessionStopped => "session_stopped",
            DeviceEventKind::BatteryLow => "battery_low",
            DeviceEventKind::CorruptFrame => "corrupt_frame",
            DeviceEventKind::Stopped => "stopped",
            DeviceEventKind::Failed => "failed",
        }
    }
}

/// Progress of the cloud sync.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SyncEvent {
    /// `batch_acknowledged`, `alert_delivered`, `retrying`, `unauthorized`, ...
    pub kind: String,
    /// A short detail for logs.
    pub detail: String,
}

/// The buffer's fill level changed or readings were evicted.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct BufferEvent {
    /// How full the buffer is now (`Critical` for an eviction).
    pub pressure: PressureLevel,
    /// Bytes in use.
    pub used_bytes: u64,
    /// The byte budget.
    pub budget_bytes: u64,
    /// Readings evicted by this event (0 for a pure pressure change).
    pub evicted: u64,
}

/// A request from the core to the app's own Bluetooth stack (host-fed
/// transport only). Answer it with `Vigil::complete_host_request`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HostRequest {
    /// Pass it back with the answer.
    pub token: u64,
    /// `start_scan`, `stop_scan`, `connect`, `disconnect`, `discover`,
    /// `read`, `write`, `subscribe`, `unsubscribe`.
    pub command: String,
    /// The device, for device commands.
    pub device: Option<String>,
    /// The characteristic UUID (128-bit form), for characteristic commands.
    pub characteristic: Option<String>,
    /// Bytes to write, for `write`.
    pub value: Vec<u8>,
}

/// The app's answer to a [`HostRequest`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum HostReply {
    /// Done (connect, disconnect, write, subscribe, scan).
    Done,
    /// The value read.
    Value {
        /// The characteristic's bytes.
        value: Vec<u8>,
    },
    /// Characteristics discovered.
    Characteristics {
        /// Every characteristic of the device's services.
        characteristics: Vec<HostCharacteristic>,
    },
    /// The platform failed.
    Failed {
        /// What failed, for logs.
        message: String,
    },
}

/// One discovered characteristic.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HostCharacteristic {
    /// Service UUID.
    pub service: String,
    /// Characteristic UUID.
    pub uuid: String,
    /// GATT properties bits (0x02 read, 0x04 write without response, 0x08
    /// write, 0x10 notify, 0x20 indicate).
    pub properties: u8,
}

/// Everything the SDK tells the app.
///
/// Threading contract: every callback arrives on one thread the SDK owns
/// (`vigil-callbacks`), never on the caller's thread, in the order the
/// core produced them. A callback may call back into the SDK (also
/// blocking calls such as `stop`); it should return quickly, because later
/// callbacks wait for it. A panic in a callback is caught and the
/// callback thread goes on.
pub trait Listener: Send + Sync {
    /// A reading was decoded (before it is stored).
    fn on_reading(&self, reading: ReadingEvent);
    /// An alert was raised. Called before the outbox write, so a local
    /// alarm never waits for the disk; the alert is durable (and on its
    /// way to the cloud) a moment later.
    fn on_alert(&self, alert: AlertEvent);
    /// A device event.
    fn on_device_event(&self, event: DeviceEvent);
    /// A sync event.
    fn on_sync_event(&self, event: SyncEvent);
    /// A buffer pressure or eviction event.
    fn on_buffer_event(&self, event: BufferEvent);
    /// The host-fed transport needs the app's Bluetooth stack.
    fn on_host_request(&self, request: HostRequest);
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

//! What the facade tells the app: plain values (strings, numbers, Unix
//! milliseconds) so the bindings map them one to one, and one [`Listener`].

use chrono::{DateTime, Utc};

use crate::model;

/// One decoded reading, as the app sees it.
#[derive(Debug, Clone, PartialEq)]
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
pub struct AlertEvent {
    /// Stable id (the cloud deduplicates on it).
    pub id: String,
    /// Which device's readings raised it.
    pub device: String,
    /// `urgent_low`, `low`, `high`, `fast_fall`, `signal_loss`, ...
    pub kind: String,
    /// `start`, `realert` or `end`.
    pub phase: String,
    /// When, Unix milliseconds UTC.
    pub time_ms: i64,
    /// The glucose value that triggered it, when there is one.
    pub glucose_mg_dl: Option<f64>,
}

/// Something that happened to a device (connected, disconnected, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEvent {
    /// Which device.
    pub device: String,
    /// `connected`, `disconnected`, `reconnecting`, `new_session`,
    /// `battery_low`, `corrupt_frame`, `stopped`, ...
    pub kind: String,
    /// A short detail for logs (never a reading value).
    pub detail: String,
    /// When, Unix milliseconds UTC.
    pub time_ms: i64,
}

/// Progress of the cloud sync.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncEvent {
    /// `batch_acknowledged`, `alert_delivered`, `retrying`, `unauthorized`, ...
    pub kind: String,
    /// A short detail for logs.
    pub detail: String,
}

/// The buffer's fill level changed or readings were evicted.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferEvent {
    /// `normal`, `high` or `critical`.
    pub pressure: String,
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
pub enum HostReply {
    /// Done (connect, disconnect, write, subscribe, scan).
    Done,
    /// The value read.
    Value(Vec<u8>),
    /// Characteristics discovered: (service UUID, characteristic UUID,
    /// properties bit field as in the GATT declaration).
    Characteristics(Vec<HostCharacteristic>),
    /// The platform failed; the message is for logs.
    Failed(String),
}

/// One discovered characteristic.
#[derive(Debug, Clone, PartialEq)]
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

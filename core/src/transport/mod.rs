//! Talking to devices: the one interface every transport implements.
//!
//! Second stage of the data flow, right after the radio: a transport finds
//! devices, connects, discovers their GATT services, reads, writes and
//! subscribes, and reports what happens as [`TransportEvent`]s. It hands
//! over characteristic *bytes*; decoding is the codec's job and deciding what
//! to do with them is the session's. A transport never knows about SQLite or
//! HTTP.
//!
//! Three implementations share this trait, so one session state machine and
//! one test suite serve them all: btleplug (the OS Bluetooth stack), host-fed
//! (the app runs CoreBluetooth / `BluetoothGatt` and pushes bytes in through
//! the bindings), and [`simulated`] peripherals that speak the exact GATT
//! bytes of real devices.
//!
//! Notifications travel on the same ordered event channel as connection
//! events, so a session always sees a disconnect *after* every notification
//! that arrived before it. The channel is unbounded on purpose: a bounded or
//! broadcast channel drops or blocks under a burst (a RACP backfill of a
//! day's records), and a dropped notification is a lost reading.

#[cfg(feature = "btleplug")]
pub mod btleplug;
pub mod host_fed;
#[cfg(feature = "simulation")]
pub mod simulated;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::Result;

/// A GATT UUID, stored in its 128-bit form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GattUuid(pub u128);

impl GattUuid {
    /// The Bluetooth Base UUID (`0000xxxx-0000-1000-8000-00805F9B34FB`).
    const BASE: u128 = 0x0000_0000_0000_1000_8000_0080_5F9B_34FB;

    /// Expands a 16-bit SIG-assigned UUID (e.g. `0x2AA7`) onto the Base UUID.
    pub const fn from_u16(short: u16) -> Self {
        GattUuid(Self::BASE | ((short as u128) << 96))
    }

    /// The 16-bit form, when this UUID is a SIG-assigned one.
    pub fn as_u16(self) -> Option<u16> {
        let short = (self.0 >> 96) as u16;
        (GattUuid::from_u16(short) == self).then_some(short)
    }
}

impl std::fmt::Display for GattUuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0.to_be_bytes();
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_be_bytes([b[4], b[5]]),
            u16::from_be_bytes([b[6], b[7]]),
            u16::from_be_bytes([b[8], b[9]]),
            self.0 & 0xFFFF_FFFF_FFFF
        )
    }
}

/// Opaque, transport-assigned identifier of a peripheral (a BLE address, a
/// CoreBluetooth UUID, a D-Bus path, a simulator handle).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeripheralId(pub String);

/// What a characteristic allows, from its GATT properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Properties {
    /// Readable.
    pub read: bool,
    /// Writable with response.
    pub write: bool,
    /// Writable without response.
    pub write_without_response: bool,
    /// Sends notifications.
    pub notify: bool,
    /// Sends indications (acknowledged notifications: RACP, control points).
    pub indicate: bool,
}

/// One characteristic found by discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Characteristic {
    /// Its UUID.
    pub uuid: GattUuid,
    /// The service it belongs to.
    pub service: GattUuid,
    /// What it allows.
    pub properties: Properties,
}

/// How to write a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteKind {
    /// Wait for the peripheral's acknowledgement (control points).
    WithResponse,
    /// Fire and forget.
    WithoutResponse,
}

/// A device seen while scanning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advertisement {
    /// Who it is.
    pub id: PeripheralId,
    /// Advertised local name, if any.
    pub name: Option<String>,
    /// Advertised service UUIDs.
    pub services: Vec<GattUuid>,
    /// Signal strength in dBm, if known.
    pub rssi: Option<i16>,
}

/// Everything a transport reports, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransportEvent {
    /// A device was seen while scanning.
    Discovered(Advertisement),
    /// A connection is up.
    Connected(PeripheralId),
    /// A connection is gone (peer, range, or local disconnect).
    Disconnected(PeripheralId),
    /// A notification or indication arrived.
    Value {
        /// From whom.
        id: PeripheralId,
        /// On which characteristic.
        characteristic: GattUuid,
        /// The value bytes exactly as received.
        value: Vec<u8>,
    },
}

/// The receiving end of a transport's event stream.
pub type EventReceiver = mpsc::UnboundedReceiver<TransportEvent>;

/// One way of talking to BLE devices.
///
/// Every method may fail with [`crate::Error::Device`] (the device or the
/// stack refused or timed out); none of them panics.
#[async_trait]
pub trait Transport: Send + Sync {
    /// A new subscriber to every event from now on. Each call gets its own
    /// complete, ordered stream.
    fn events(&self) -> EventReceiver;

    /// Starts scanning for devices advertising any of `services` (all
    /// devices when empty); results arrive as [`TransportEvent::Discovered`].
    async fn start_scan(&self, services: &[GattUuid]) -> Result<()>;

    /// Stops scanning.
    async fn stop_scan(&self) -> Result<()>;

    /// Connects; returns once the link is up.
    async fn connect(&self, id: &PeripheralId) -> Result<()>;

    /// Disconnects; returns once the link is down.
    async fn disconnect(&self, id: &PeripheralId) -> Result<()>;

    /// Discovers services and lists every characteristic.
    async fn discover(&self, id: &PeripheralId) -> Result<Vec<Characteristic>>;

    /// Reads a characteristic's current value.
    async fn read(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<Vec<u8>>;

    /// Writes a characteristic.
    async fn write(
        &self,
        id: &PeripheralId,
        characteristic: GattUuid,
        value: &[u8],
        kind: WriteKind,
    ) -> Result<()>;

    /// Enables notifications or indications (whichever it supports); values
    /// arrive as [`TransportEvent::Value`]. After a reconnect the session
    /// subscribes again: subscriptions do not survive a disconnect.
    async fn subscribe(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<()>;

    /// Disables notifications or indications.
    async fn unsubscribe(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_uuids_expand_onto_the_base_uuid() {
        let cgm = GattUuid::from_u16(0x2AA7);
        assert_eq!(cgm.to_string(), "00002aa7-0000-1000-8000-00805f9b34fb");
        assert_eq!(cgm.as_u16(), Some(0x2AA7));
        assert_eq!(GattUuid(1).as_u16(), None);
    }
}

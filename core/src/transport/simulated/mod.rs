//! Simulated peripherals that speak the exact GATT bytes of real devices,
//! and the seeded physiology that drives them.
//!
//! A [`Peripheral`] is the device side of a GATT connection: it answers
//! reads and writes with the same bytes a real sensor would, and produces
//! notifications and indications as its (simulated) time advances. The same
//! peripherals are served to the core three ways: directly by the simulated
//! transport, as bytes pushed through the host-fed transport, and over an
//! emulated BlueZ on D-Bus to the real btleplug transport.
//!
//! Time is injected, never read from the wall clock, so a simulated day runs
//! in well under a second and every run with the same seed is identical.

pub mod cgm;
pub mod faults;
pub mod heart_rate;
pub mod host_app;
pub mod meter;
pub mod oximeter;
pub mod physiology;
pub mod record_store;
pub mod transport;

pub use cgm::{CgmConfig, SimulatedCgm};
pub use faults::{Fault, FaultPlan, RandomFaults};
pub use heart_rate::{HeartRateConfig, SimulatedHeartRate};
pub use host_app::HostApp;
pub use meter::{MeterConfig, SimulatedMeter};
pub use oximeter::{OximeterConfig, SimulatedOximeter};
pub use transport::{Radio, SimulatedTransport};

use chrono::{DateTime, Utc};

use super::{Advertisement, Characteristic, GattUuid, Properties};

/// An ATT-level refusal, as a real peripheral would answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttError {
    /// The characteristic does not exist.
    AttributeNotFound,
    /// The characteristic cannot be read.
    ReadNotPermitted,
    /// The characteristic cannot be written.
    WriteNotPermitted,
    /// A control point is busy with an earlier procedure (ATT 0xFE).
    ProcedureAlreadyInProgress,
    /// Indications are not enabled on a control point (ATT 0xFD).
    ClientCharacteristicConfigurationImproperlyConfigured,
    /// The value has the wrong length or bad content.
    InvalidAttributeValueLength,
}

/// A notification or indication a peripheral sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emission {
    /// When it was sent (simulated time).
    pub at: DateTime<Utc>,
    /// On which characteristic.
    pub characteristic: GattUuid,
    /// The value bytes.
    pub value: Vec<u8>,
}

/// The device side of a GATT connection.
pub trait Peripheral: Send {
    /// What the device advertises.
    fn advertisement(&self) -> Advertisement;

    /// Its GATT table.
    fn characteristics(&self) -> Vec<Characteristic>;

    /// Whether a central could connect at `now` (out of range, switched
    /// off, or a scripted disconnect make it unreachable).
    fn reachable(&self, now: DateTime<Utc>) -> bool;

    /// Answers a read.
    fn read(&mut self, now: DateTime<Utc>, characteristic: GattUuid) -> Result<Vec<u8>, AttError>;

    /// Takes a write; any response (a control point indication) is
    /// returned by the next [`Peripheral::advance`].
    fn write(
        &mut self,
        now: DateTime<Utc>,
        characteristic: GattUuid,
        value: &[u8],
    ) -> Result<(), AttError>;

    /// Enables or disables notifications/indications on a characteristic.
    fn set_subscribed(&mut self, characteristic: GattUuid, on: bool) -> Result<(), AttError>;

    /// The central connected (`true`) or the link dropped (`false`);
    /// subscriptions end with the link.
    fn set_connected(&mut self, now: DateTime<Utc>, connected: bool);

    /// Runs the device up to `now` (measuring, storing records, answering
    /// queued control-point requests) and returns what it sends over the
    /// link, in order. Records measured while disconnected are stored, not
    /// sent, exactly as a real sensor would.
    fn advance(&mut self, now: DateTime<Utc>) -> Vec<Emission>;
}

/// The 128-bit form of a SIG-assigned 16-bit UUID.
pub fn uuid(short: u16) -> GattUuid {
    GattUuid::from_u16(short)
}

/// One characteristic of a simulated GATT table.
pub(crate) fn chr(service: u16, characteristic: u16, properties: Properties) -> Characteristic {
    Characteristic {
        uuid: uuid(characteristic),
        service: uuid(service),
        properties,
    }
}

/// Enables or disables notifications on `characteristic` of `table`, as a
/// real device answers a CCCD write: an unknown characteristic is not
/// found, and one that neither notifies nor indicates refuses the write.
pub(crate) fn set_cccd(
    table: &[Characteristic],
    subscribed: &mut std::collections::HashSet<GattUuid>,
    characteristic: GattUuid,
    on: bool,
) -> Result<(), AttError> {
    let c = table
        .iter()
        .find(|c| c.uuid == characteristic)
        .ok_or(AttError::AttributeNotFound)?;
    if !(c.properties.notify || c.properties.indicate) {
        return Err(AttError::WriteNotPermitted);
    }
    if on {
        subscribed.insert(characteristic);
    } else {
        subscribed.remove(&characteristic);
    }
    Ok(())
}

/// The answer of a device with nothing writable to a write on `table`.
pub(crate) fn refuse_write(table: &[Characteristic], characteristic: GattUuid) -> AttError {
    if table.iter().any(|c| c.uuid == characteristic) {
        AttError::WriteNotPermitted
    } else {
        AttError::AttributeNotFound
    }
}

/// The Battery Level characteristic (read, notify) every simulated device
/// has.
pub(crate) fn battery_char() -> Characteristic {
    chr(
        crate::codec::service::BATTERY,
        crate::codec::uuid::BATTERY_LEVEL,
        props::join(props::READ, props::NOTIFY),
    )
}

/// Property sets for GATT tables.
pub(crate) mod props {
    use crate::transport::Properties;

    /// Readable.
    pub const READ: Properties = Properties {
        read: true,
        write: false,
        write_without_response: false,
        notify: false,
        indicate: false,
    };
    /// Writable with response.
    pub const WRITE: Properties = Properties {
        write: true,
        read: false,
        write_without_response: false,
        notify: false,
        indicate: false,
    };
    /// Notifies.
    pub const NOTIFY: Properties = Properties {
        notify: true,
        read: false,
        write: false,
        write_without_response: false,
        indicate: false,
    };
    /// Indicates.
    pub const INDICATE: Properties = Properties {
        indicate: true,
        read: false,
        write: false,
        write_without_response: false,
        notify: false,
    };

    /// Both property sets.
    pub const fn join(a: Properties, b: Properties) -> Properties {
        Properties {
            read: a.read || b.read,
            write: a.write || b.write,
            write_without_response: a.write_without_response || b.write_without_response,
            notify: a.notify || b.notify,
            indicate: a.indicate || b.indicate,
        }
    }
}

/// A peripheral shared with a test or a demo, which keeps a handle to
/// inspect it (what a sensor still holds) while a transport drives it.
impl<P: Peripheral> Peripheral for std::sync::Arc<std::sync::Mutex<P>> {
    fn advertisement(&self) -> Advertisement {
        lock(self).advertisement()
    }

    fn characteristics(&self) -> Vec<Characteristic> {
        lock(self).characteristics()
    }

    fn reachable(&self, now: DateTime<Utc>) -> bool {
        lock(self).reachable(now)
    }

    fn read(&mut self, now: DateTime<Utc>, characteristic: GattUuid) -> Result<Vec<u8>, AttError> {
        lock(self).read(now, characteristic)
    }

    fn write(
        &mut self,
        now: DateTime<Utc>,
        characteristic: GattUuid,
        value: &[u8],
    ) -> Result<(), AttError> {
        lock(self).write(now, characteristic, value)
    }

    fn set_subscribed(&mut self, characteristic: GattUuid, on: bool) -> Result<(), AttError> {
        lock(self).set_subscribed(characteristic, on)
    }

    fn set_connected(&mut self, now: DateTime<Utc>, connected: bool) {
        lock(self).set_connected(now, connected)
    }

    fn advance(&mut self, now: DateTime<Utc>) -> Vec<Emission> {
        lock(self).advance(now)
    }
}

/// Locks a shared peripheral; a poisoned lock still holds a usable device.
pub fn lock<P>(p: &std::sync::Mutex<P>) -> std::sync::MutexGuard<'_, P> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

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

pub mod physiology;

use chrono::{DateTime, Utc};

use super::{Advertisement, Characteristic, GattUuid};

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

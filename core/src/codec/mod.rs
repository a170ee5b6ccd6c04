//! Byte-exact codecs for the Bluetooth SIG characteristics Vigil speaks.
//!
//! First stage of the data flow: the transport hands over the value bytes of
//! one notification, indication or read, and a codec turns them into typed
//! values, or the other way round for what the phone writes (RACP, CGM
//! Specific Ops Control Point). Codecs do no I/O and hold no state.
//!
//! Two rules shape every decoder: it never panics on any input (all reads go
//! through [`bytes::Reader`], which is bounds-checked), and it never guesses:
//! a truncated, oversized, reserved or inconsistent field is a typed
//! [`crate::Error`] naming the field and byte offset. Every encoder is the
//! exact inverse of its decoder (round-trip property tests).

#![deny(clippy::indexing_slicing)]

pub mod battery;
pub mod bytes;
pub mod cgm;
pub mod cgm_ops;
pub mod crc;
pub mod float;
pub mod glucose;
pub mod heart_rate;
pub mod plx;
pub mod racp;

pub use float::{Float32, SFloat, Special};

/// 16-bit UUIDs of the services Vigil talks to.
pub mod service {
    /// Continuous Glucose Monitoring Service.
    pub const CGM: u16 = 0x181F;
    /// Glucose Service (blood glucose meters).
    pub const GLUCOSE: u16 = 0x1808;
    /// Heart Rate Service.
    pub const HEART_RATE: u16 = 0x180D;
    /// Pulse Oximeter Service.
    pub const PULSE_OXIMETER: u16 = 0x1822;
    /// Battery Service.
    pub const BATTERY: u16 = 0x180F;
}

/// 16-bit UUIDs of the characteristics Vigil decodes.
pub mod uuid {
    /// CGM Measurement.
    pub const CGM_MEASUREMENT: u16 = 0x2AA7;
    /// CGM Feature.
    pub const CGM_FEATURE: u16 = 0x2AA8;
    /// CGM Status.
    pub const CGM_STATUS: u16 = 0x2AA9;
    /// CGM Session Start Time.
    pub const CGM_SESSION_START_TIME: u16 = 0x2AAA;
    /// CGM Session Run Time.
    pub const CGM_SESSION_RUN_TIME: u16 = 0x2AAB;
    /// CGM Specific Ops Control Point.
    pub const CGM_SPECIFIC_OPS_CONTROL_POINT: u16 = 0x2AAC;
    /// Record Access Control Point.
    pub const RECORD_ACCESS_CONTROL_POINT: u16 = 0x2A52;
    /// Glucose Measurement.
    pub const GLUCOSE_MEASUREMENT: u16 = 0x2A18;
    /// Glucose Measurement Context.
    pub const GLUCOSE_MEASUREMENT_CONTEXT: u16 = 0x2A34;
    /// Heart Rate Measurement.
    pub const HEART_RATE_MEASUREMENT: u16 = 0x2A37;
    /// PLX Continuous Measurement.
    pub const PLX_CONTINUOUS_MEASUREMENT: u16 = 0x2A5F;
    /// Battery Level.
    pub const BATTERY_LEVEL: u16 = 0x2A19;
}

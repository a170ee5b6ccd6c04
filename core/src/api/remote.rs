//! uniffi declarations of the shared vocabulary the facade's events carry:
//! alert kind and phase ([`crate::alerts`]) and buffer pressure
//! ([`crate::store::capacity`]).
//!
//! Those types belong to the vocabulary shared with the cloud, which is
//! moving into its own crate (`vigil-model`); declaring them here with
//! `#[uniffi::remote]` keeps that code free of FFI concerns meanwhile. A
//! declaration is no second definition: the macro generates the lifting
//! and lowering against the real type, so a variant added there and
//! missed here fails to compile. Once the shared crate has a `uniffi`
//! feature of its own, these become derives there.

use crate::alerts::{AlertKind, Phase};
use crate::store::capacity::PressureLevel;

/// What an alert is about.
#[uniffi::remote(Enum)]
pub enum AlertKind {
    /// Glucose below the urgent-low threshold (default < 54 mg/dL).
    UrgentLow,
    /// Glucose below the low threshold (default < 70 mg/dL).
    Low,
    /// Glucose above the high threshold (default > 250 mg/dL).
    High,
    /// Glucose falling faster than the rate threshold (default 2 mg/dL/min).
    FastFall,
    /// Glucose rising faster than the rate threshold (default 2 mg/dL/min).
    FastRise,
    /// Glucose projected below the urgent-low threshold within the horizon
    /// (default 20 min).
    PredictedUrgentLow,
    /// No glucose reading for the signal-loss time (default 20 min).
    SignalLoss,
    /// The sensor session ends within the warning time (default 24 h).
    SensorSessionEnding,
    /// Device battery below the threshold (default 20 %).
    BatteryLow,
}

/// Where in its episode an alert event stands.
#[uniffi::remote(Enum)]
pub enum Phase {
    /// First raise of the episode: sound the alarm.
    Start,
    /// A repeat raise while the condition lasts (every re-alert interval):
    /// a softer sound may do.
    Realert,
    /// The condition is over: the alarm may be cleared.
    End,
}

/// How full the on-phone buffer is relative to its budget.
#[uniffi::remote(Enum)]
pub enum PressureLevel {
    /// Below 80 % of the budget.
    Normal,
    /// At or above 80 %.
    High,
    /// At or above 95 %: eviction is near.
    Critical,
}

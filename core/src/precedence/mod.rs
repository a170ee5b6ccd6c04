//! Source precedence on the phone.
//!
//! The resolver over stored readings is shared with the cloud and lives in
//! `vigil-model` (re-exported here); what only the phone needs is [`live`],
//! the gate that picks, reading by reading, which source the alert engine
//! follows.

pub mod live;

pub use vigil_model::precedence::*;

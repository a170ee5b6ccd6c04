//! Vigil's core: the part of the SDK that runs inside the phone app.
//!
//! A reading walks forward through these modules, in this order:
//!
//! 1. [`codec`] turns the exact bytes of a Bluetooth SIG characteristic into
//!    typed values, and back (no I/O, never panics).
//! 2. [`model`] is the canonical [`model::Reading`] every later stage speaks:
//!    one unit per stream, sensor and receive time, sequence, quality and
//!    provenance with the raw bytes kept for audit.
//!
//! Sessions, transports, the SQLite buffer, reduction, alerts and sync build
//! on these two (see `docs/architecture.md`).

pub mod codec;
pub mod error;
pub mod model;

pub use error::{Error, Result};

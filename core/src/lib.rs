//! Vigil's core: the part of the SDK that runs inside the phone app.
//!
//! A reading walks forward through these modules, in this order:
//!
//! 1. [`transport`] talks to a device (simulated peripherals for now) and
//!    hands over characteristic bytes.
//! 2. [`codec`] turns the exact bytes of a Bluetooth SIG characteristic into
//!    typed values, and back (no I/O, never panics).
//! 3. [`model`] is the canonical [`model::Reading`] every later stage speaks:
//!    one unit per stream, sensor and receive time, sequence, quality and
//!    provenance with the raw bytes kept for audit.
//! 4. [`alerts`] sees every raw reading; [`store`] keeps every reading in
//!    SQLite; [`reduce`] chooses what the cloud needs within a bounded error.
//! 5. [`metrics`] and [`precedence`] are shared with the cloud.
//!
//! See `docs/architecture.md` for the whole flow.

pub mod alerts;
pub mod clock;
pub mod codec;
pub mod error;
pub mod metrics;
pub mod model;
pub mod precedence;
pub mod reduce;
pub mod session;
pub mod store;
pub mod transport;

pub use error::{Error, Result};

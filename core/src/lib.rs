//! Vigil's core: the part of the SDK that runs inside the phone app.
//!
//! A reading walks forward through these modules, in this order:
//!
//! 1. [`transport`] talks to a device (simulated peripherals, or the app's
//!    own Bluetooth stack through the host-fed transport) and hands over
//!    characteristic bytes.
//! 2. [`codec`] turns the exact bytes of a Bluetooth SIG characteristic into
//!    typed values, and back (no I/O, never panics).
//! 3. [`session`] runs one device's life (connect, RACP backfill, dedupe,
//!    gaps, reconnect with backoff) on an injected [`clock`], and hands
//!    readings, gaps and device events to a sink.
//! 4. [`model`] is the canonical [`model::Reading`] every later stage speaks:
//!    one unit per stream, sensor and receive time, sequence, quality and
//!    provenance with the raw bytes kept for audit.
//! 5. [`alerts`] sees every raw reading; [`store`] keeps every reading in
//!    SQLite; [`reduce`] chooses what the cloud needs within a bounded error.
//! 6. [`metrics`], [`precedence`] and [`wire`] (the versioned protocol
//!    between the SDK and the ingest service) are shared with the cloud.
//!
//! Everything the cloud must agree on (the reading model, the wire
//! protocol, reduction and reconstruction, metrics, the precedence
//! resolver, the alert vocabulary) is defined once in the `vigil-model`
//! crate and re-exported here at the same paths; this crate adds what only
//! a phone does.
//!
//! [`energy`] counts what the SDK costs the phone: timer wake-ups, disk
//! flushes and radio requests.
//!
//! See `docs/architecture.md` for the whole flow.

pub mod alerts;
pub mod api;
pub mod clock;
pub mod codec;
pub mod energy;
pub mod error;
pub mod precedence;
pub mod session;
pub mod store;
pub mod sync;
pub mod transport;

// What the cloud shares lives in `vigil-model`; the phone's code and its
// users keep reaching it at the paths they always did.
pub use vigil_model::metrics;
pub use vigil_model::reading as model;
pub use vigil_model::reduce;
pub use vigil_model::wire;

pub use error::{Error, Result};

// The facade's types derive their uniffi traits here, so this crate is a
// uniffi component of its own (namespace `vigil_core`); `vigil-bindings`
// links it in and the generated Kotlin and Swift reach its types from there.
#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();

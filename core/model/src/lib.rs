//! What Vigil's phone SDK and its cloud ingest service must agree on.
//!
//! Both sides link this crate and nothing else of each other's: the phone
//! (`vigil-core`) produces readings, reduces them and encodes batches; the
//! cloud (`vigil-ingest`) decodes the same batches, reconstructs what was
//! reduced away, resolves sources and computes the clinical metrics with the
//! same code. A rule changed here changes on both sides at once, and the
//! compiler keeps anything phone-only (SQLite, HTTP, Bluetooth, simulators)
//! out of the cloud.
//!
//! - [`reading`]: the canonical [`reading::Reading`], its streams, units,
//!   quality and provenance.
//! - [`wire`]: the versioned protocol (batches, alerts, heartbeats and
//!   their acknowledgements) in JSON and the columnar binary form.
//! - [`reduce`]: bounded-error trend reduction, its bands, and the
//!   reconstruction the cloud applies to what the phone held back.
//! - [`metrics`]: the consensus glycaemic metrics and the AGP.
//! - [`precedence`]: one resolved series when several devices report the
//!   same quantity.
//! - [`alerts`]: the alert vocabulary (kinds, phases, events, stable ids);
//!   the engine that raises them runs on the phone.
//! - [`bytes`]: bounds-checked little-endian cursors for binary input.
//!
//! Nothing here does I/O, reads a clock, or logs.

pub mod alerts;
pub mod bytes;
pub mod error;
pub mod metrics;
pub mod precedence;
pub mod reading;
pub mod reduce;
pub mod trend;
pub mod wire;

pub use error::{Error, Result};

// The alert vocabulary and buffer pressure derive their uniffi traits here,
// so this crate is a uniffi component of its own (namespace `vigil_model`)
// when the phone's bindings link it; the cloud never turns this on.
#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();

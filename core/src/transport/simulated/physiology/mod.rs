//! Seeded, realistic glucose and heart-rate physiology: the signal source
//! behind the simulated peripherals, and the traces that reduction, metrics
//! and alert tests run on.
//!
//! Two decisions shaped it:
//!
//! - **Deterministic and fast.** Every random draw comes from one
//!   `ChaCha8Rng` per model, seeded by the caller, and the clock is
//!   simulated (fixed one-minute steps for glucose, one-second steps for the
//!   heart), so a seed always yields the same trace on every platform and a
//!   simulated day costs well under a millisecond of CPU for glucose.
//! - **Truth and sensor kept apart.** Glucose models blood glucose and the
//!   interstitial glucose a CGM actually sees (first-order lag), then adds
//!   correlated sensor noise, night-time compression artefacts and the
//!   40-400 mg/dL reporting range. The heart model draws beat-to-beat RR
//!   intervals and reports heart rate the way a chest strap does, averaged
//!   over the last few beats, so tests can compare what the device said
//!   with what the body did.
//!
//! The models are compact phenomenological ones (gamma-shaped carbohydrate
//! appearance and insulin action, glucose effectiveness, dawn phenomenon),
//! not a validated metabolic simulator: they aim at traces whose shape and
//! consensus metrics look like real ones, not at predicting a patient.

mod glucose;
mod heart;
mod noise;

pub use glucose::{GlucoseModel, GlucosePoint, GlucoseProfile, SampleInterval};
pub use heart::{Activity, HeartModel, HeartPoint, HeartProfile};

#[cfg(test)]
mod tests;

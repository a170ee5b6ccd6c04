//! The alert engine: rules evaluated on every raw reading, at once.
//!
//! Place in the data flow: the session hands each decoded glucose reading
//! (and device events: battery level, sensor session expiry) to the
//! [`AlertEngine`] *before* the reading is buffered, reduced or batched; the
//! engine's [`AlertEvent`]s go to the alert outbox and the host's callback.
//! Alerts must never wait for a batch, so the engine is a pure, synchronous
//! state machine: no I/O, no clock of its own (time comes in with readings and
//! [`AlertEngine::on_tick`]), microseconds per reading.
//!
//! Decisions that shaped it:
//! - **Episodes, not readings.** An alert *episode* starts on the first
//!   reading that meets its rule ([`Phase::Start`]), is raised again only
//!   every re-alert interval while its rule still holds ([`Phase::Realert`],
//!   a distinct phase so the host can choose a softer sound; `vigil alerts`
//!   prints it as `start` with the same id), and ends when the value is back
//!   past the threshold by a hysteresis margin ([`Phase::End`]). Every raise
//!   happens on a reading (or a time) that meets the rule itself, never in the
//!   hysteresis band.
//! - **Stable ids.** An episode's id is derived only from the engine's key
//!   (patient or device), the alert kind and the time of its start event (see
//!   [`alert_id`]). A phone that restarts and replays the same readings
//!   produces the same ids, so the cloud deduplicates an event by
//!   `(id, phase, time)`.
//! - **Silencing.** A snooze silences one kind until a set time; urgent low
//!   silences low (and predicted urgent low) for as long as its episode lasts.
//!   Silencing suppresses raises only: an episode already announced still gets
//!   its end, so every start has its end.

pub mod config;
pub mod engine;
pub mod rules;

pub use config::AlertConfig;
#[cfg(feature = "uniffi")]
#[doc(hidden)]
pub use config::UNIFFI_META_VIGIL_CORE_RECORD_ALERTCONFIG;
pub use engine::AlertEngine;
pub use vigil_model::alerts::{AlertEvent, AlertKind, Phase, alert_id};

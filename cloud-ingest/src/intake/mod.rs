//! Intake: the write side of the data flow. Phones (device tokens, own
//! patient only) post batches, alerts and heartbeats; this slice decodes
//! them, applies the validation point ([`crate::validate`]) and stores
//! them, then tells live streams, webhooks and the glucose-day cache.

pub(crate) mod routes;

pub use routes::{alert_event, plausible, prepare_batch, wire_error};

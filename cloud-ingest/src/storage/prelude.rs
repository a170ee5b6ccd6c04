//! The storage traits in one import: calling a concern's method on a
//! `&dyn Storage` needs that concern's trait in scope.

pub use super::{Alerts, Audit, Directory, Readings, Storage, Webhooks};

//! Reads: the JSON read side of the data flow. Clinicians and followers
//! read what intake stored (readings, metrics, precedence), list their
//! patients, acknowledge alerts and follow the live alert stream; each
//! read of one patient's data passes the gate in [`crate::access`] first.

pub(crate) mod patients;
pub(crate) mod routes;

pub use routes::MAX_READINGS;

//! End-to-end test support: the real ingest service started in-process on
//! a loopback port ([`service`]), a fault-injecting TCP proxy ([`proxy`])
//! to put between it and SDK cores, a deterministic phone workload
//! ([`feed`]) and the one checker of the fault suite's invariants
//! ([`check`]). The binaries `e2e-ingest` and `e2e-phone` run the service
//! and a phone as processes the suite can kill.

pub mod check;
pub mod feed;
pub mod phone;
pub mod procs;
pub mod proxy;
pub mod service;

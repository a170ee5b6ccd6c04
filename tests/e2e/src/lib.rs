//! End-to-end test support: the real ingest service started in-process on
//! a loopback port ([`service`]), and a fault-injecting TCP proxy
//! ([`proxy`]) to put between it and SDK cores. The fault suite of issue 6
//! builds on both.

pub mod proxy;
pub mod service;

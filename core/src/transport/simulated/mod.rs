//! Simulated peripherals that speak the exact GATT bytes, and the physiology
//! that drives them.

pub mod physiology;

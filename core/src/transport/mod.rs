//! Talking to devices: btleplug, host-fed bytes, and simulated peripherals.

pub mod simulated;

//! Seeded, realistic glucose and heart-rate physiology.

//! The clinician web dashboard.
pub mod svg;

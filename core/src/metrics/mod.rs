//! Consensus CGM metrics and the AGP profile: the one implementation that the
//! phone (SDK) and the cloud (clinician reports) share, so a patient and a
//! clinician never see two different "time in range" for the same days.
//!
//! Place in the data flow: downstream of the buffer; the input is a slice of
//! glucose [`crate::model::Sample`]s in mg/dL (the raw readings, not the
//! reduced ones, whenever they are available).
//!
//! Decisions that shaped it:
//! - Range percentages are percent of *readings*, as the international
//!   consensus on time in range (Battelino et al., Diabetes Care 2019) defines
//!   them, with its boundary conventions (see [`consensus`]).
//! - The standard deviation is the *population* SD (divide by n): it describes
//!   the readings of the period themselves, and stays defined (0) for a single
//!   reading. With the thousands of readings of a 14-day report the difference
//!   from the sample SD is below 0.02 %.
//! - Percentiles of the AGP use linear interpolation between closest ranks
//!   (Hyndman & Fan type 7, the default of R and NumPy), so a clinician can
//!   check a figure in a spreadsheet.

pub mod agp;
pub mod consensus;

pub use agp::{AgpSlot, agp_profile, percentile};
pub use consensus::{GlucoseMetrics, consensus_metrics};

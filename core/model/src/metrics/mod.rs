//! Consensus CGM metrics and the AGP profile: the one implementation that the
//! phone (SDK) and the cloud (clinician reports) share, so a patient and a
//! clinician never see two different "time in range" for the same days.
//!
//! Place in the data flow: downstream of the buffer; the input is a slice of
//! glucose [`crate::reading::Sample`]s in mg/dL (the raw readings, not the
//! reduced ones, whenever they are available).
//!
//! Decisions that shaped it:
//! - Every "time in" figure (the five consensus bands, time in tight range
//!   70–140 and the Glycemia Risk Index built on them) is the percent of
//!   *readings* in the band, with the band edges of the consensus on time in
//!   range (Battelino et al., Diabetes Care 2019); see [`consensus`].
//! - The standard deviation is the *sample* SD (divide by n − 1), as R's
//!   `sd` and iglu compute it, so SD and CV match the tools research uses; a
//!   single reading reports 0. The SDK, the cloud's reports and FHIR, and the
//!   CLI all print this one figure.
//! - Percentiles of the AGP use linear interpolation between closest ranks
//!   (Hyndman & Fan type 7, the default of R and NumPy), so a clinician can
//!   check a figure in a spreadsheet.

pub mod agp;
pub mod consensus;

pub use agp::{AgpSlot, agp_profile, percentile};
pub use consensus::{Band, GlucoseMetrics, Gri, GriZone, consensus_metrics};

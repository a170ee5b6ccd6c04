//! Consensus CGM metrics and the AGP profile, shared with the cloud (issue 4).

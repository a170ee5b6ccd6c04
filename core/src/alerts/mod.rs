//! The alert engine: rules on every raw reading (issue 4).

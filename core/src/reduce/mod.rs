//! Bounded-error trend reduction (issue 4).

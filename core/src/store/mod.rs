//! The on-phone SQLite buffer (issue 4).

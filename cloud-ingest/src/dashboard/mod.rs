//! The clinician web dashboard: server-rendered pages, SVG charts, a
//! cookie session, and a little vanilla JavaScript for live alerts.
//!
//! Place in the data flow: read side, for people. A signed-in clinician's
//! session becomes a [`crate::auth::Principal`]; the triage list reads the
//! glucose-day cache, a patient's report passes the gate
//! ([`crate::access`]) and reads resolved glucose, alerts and Nightscout
//! treatments through its proof. Handlers in [`routes`].

pub mod pages;
pub mod report;
pub(crate) mod routes;
pub mod sign_in;
pub mod svg;
pub mod treatments;
pub mod triage;
pub mod units;
pub mod words;

/// The stylesheet, embedded: no build step, no CDN.
pub const APP_CSS: &str = include_str!("static/app.css");
/// The live-alerts script, embedded.
pub const APP_JS: &str = include_str!("static/app.js");

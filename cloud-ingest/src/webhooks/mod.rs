//! Webhooks: the service pushes alert and new-data events to the clinic's
//! other systems (an EHR inbox, a paging service).
//!
//! Place in the data flow: intake stores an alert or a batch → an event is
//! queued in the database ([`crate::storage::Storage::enqueue_webhook_event`],
//! one delivery per subscribed webhook) → the [`dispatch::Dispatcher`] posts
//! it, signed, and retries with backoff until the receiver answers 2xx or
//! the attempts run out. Decisions:
//!
//! - **The queue is a table**, not memory, so a restart loses no delivery
//!   and every attempt is logged (status, error, time) for the clinic to
//!   audit. Delivery is at least once; receivers dedupe by `Vigil-Delivery`.
//! - **Signature**: `Vigil-Signature: v1=<hex HMAC-SHA256(secret,
//!   "<timestamp>.<body>")>` with `Vigil-Timestamp: <unix seconds>`, so a
//!   receiver can reject both forged and replayed deliveries ([`verify`]).
//! - **HTTPS only**, except loopback receivers (tests, a sidecar): event
//!   bodies name patients by id and carry alert values.
//! - **Bodies are small**: an alert event carries the alert; a data event
//!   says which patient, streams and time span arrived, and the receiver
//!   reads the readings through the authenticated API if it needs them.

pub mod dispatch;
pub mod sign;

use std::net::IpAddr;

pub use sign::{sign, verify};

use crate::error::{Error, Result};

/// Accepts `https://` URLs, and `http://` only to loopback addresses.
pub fn check_url(url: &str) -> Result<()> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| Error::InvalidInput(format!("webhook url: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback =
                host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(Error::InvalidInput(
                    "webhook url: plain http is allowed only to loopback; use https".into(),
                ))
            }
        }
        other => Err(Error::InvalidInput(format!(
            "webhook url: scheme {other:?} is not https"
        ))),
    }
}

/// A new signing secret: 256 random bits from the operating system, hex,
/// prefixed `vgl_w_` so a leaked one is recognisable in a secret scanner.
pub fn generate_secret() -> Result<String> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Config(format!("operating system RNG failed: {e}")))?;
    let mut s = String::from("vgl_w_");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    Ok(s)
}

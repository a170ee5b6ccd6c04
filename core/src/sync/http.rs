//! The transport under sync: one trait, one reqwest implementation.
//!
//! The engine only needs "post these bytes to this route with this token
//! and tell me the status, `Retry-After` and body"; everything else
//! (retries, 401 refresh, ack parsing) is the engine's. Keeping the trait
//! that small lets the engine's timer tests run on tokio's paused clock
//! with an in-memory poster, and the end-to-end tests run the real
//! [`HttpPoster`] against the real service.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SyncConfig;
use super::tls::client_config;
use crate::error::{Error, Result};
use crate::wire::PREFER_MINIMAL;

/// An intake route of the ingest service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /v1/batches`.
    Batches,
    /// `POST /v1/alerts`.
    Alerts,
    /// `POST /v1/heartbeats`.
    Heartbeats,
}

impl Route {
    /// The path under the server URL.
    pub fn path(self) -> &'static str {
        match self {
            Route::Batches => "/v1/batches",
            Route::Alerts => "/v1/alerts",
            Route::Heartbeats => "/v1/heartbeats",
        }
    }
}

/// The parts of an HTTP answer the engine reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// The `Retry-After` header, if present and readable.
    pub retry_after: Option<Duration>,
    /// The body.
    pub body: Vec<u8>,
}

/// Posts one request. An `Err` means no HTTP answer arrived (connection
/// refused or cut, timeout, TLS failure, a pin mismatch); its text never
/// carries the token.
#[async_trait]
pub trait Poster: Send + Sync {
    /// Posts `body` to `route` with the given `Content-Type`, optional
    /// `Content-Encoding` and bearer `token`.
    async fn post(
        &self,
        route: Route,
        content_type: &'static str,
        content_encoding: Option<&'static str>,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> Result<HttpReply>;
}

/// [`Poster`] over reqwest with rustls: WebPKI roots plus the configured
/// extra roots, and SPKI pinning when pins are configured.
///
/// It sends only the headers the service reads (Host, Authorization,
/// Content-Type and Content-Encoding when there is a body,
/// Content-Length, and reqwest's `Accept: */*`), and on batches and alerts
/// asks for the minimal answer (`Prefer: return=minimal`, a `204`).
#[derive(Debug, Clone)]
pub struct HttpPoster {
    client: reqwest::Client,
    base: String,
}

impl HttpPoster {
    /// A client for `config.server_url`. Fails with
    /// [`Error::InvalidSetting`] on an unreadable extra root.
    pub fn new(config: &SyncConfig) -> Result<HttpPoster> {
        let tls = client_config(&config.spki_pins, &config.extra_roots_pem)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            // No User-Agent: the service reads none, and the health
            // heartbeat carries the SDK version; every request would pay
            // its 28 bytes.
            .build()
            .map_err(|e| Error::InvalidSetting {
                setting: "server_url",
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(HttpPoster {
            client,
            base: config.server_url.trim_end_matches('/').to_string(),
        })
    }
}

#[async_trait]
impl Poster for HttpPoster {
    async fn post(
        &self,
        route: Route,
        content_type: &'static str,
        content_encoding: Option<&'static str>,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> Result<HttpReply> {
        let url = format!("{}{}", self.base, route.path());
        let mut req = self.client.post(url);
        // No body (a contact heartbeat), no Content-Type.
        if !body.is_empty() {
            req = req.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        if matches!(route, Route::Batches | Route::Alerts) {
            // The engine reads both answers; a 204 saves the JSON
            // acknowledgement and its two headers, about 70 bytes on a
            // batch and 170 on an alert.
            req = req.header("prefer", PREFER_MINIMAL);
        }
        let mut req = req.body(body);
        if let Some(enc) = content_encoding {
            req = req.header(reqwest::header::CONTENT_ENCODING, enc);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(describe)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, Utc::now()));
        let body = resp.bytes().await.map_err(describe)?.to_vec();
        Ok(HttpReply {
            status,
            retry_after,
            body,
        })
    }
}

/// A reqwest error as text without the URL's query or any header (so no
/// token), keeping the causes that tell a pin mismatch from a refused
/// connection.
fn describe(e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    Error::Network(format!("{kind}: {}", causes.join(": ")))
}

/// Parses a `Retry-After` value: delay-seconds, or an HTTP date (relative
/// to `now`; a date in the past is zero).
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    let delta = date.with_timezone(&Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Mon, 02 Mar 2026 08:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Mon, 02 Mar 2026 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }
}

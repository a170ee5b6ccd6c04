//! vigil-ingest: the cloud end of Vigil's data path.
//!
//! Phones running the SDK post batches and alerts here; clinicians and
//! followers read them back. This crate is the foundation every endpoint
//! plugs into: [`app`] builds the whole HTTP service from an [`AppState`]
//! (so tests drive it without a socket), [`auth`] turns a bearer token into
//! a [`auth::Principal`] scoped to its patients, [`storage`] hides the
//! database behind one trait, and [`serve`] binds it to a socket, plain or
//! TLS, with graceful shutdown.
//!
//! Decision: every layer that protects the process (body size, time per
//! request, per-token rate) is applied here, once, to every route, so a new
//! endpoint cannot forget one.

pub mod admin;
pub mod auth;
pub mod csv;
pub mod dashboard;
pub mod deadman;
pub mod error;
pub mod fhir;
pub mod glucose;
pub mod live;
pub mod metrics;
pub mod nightscout;
pub mod query;
pub mod rate_limit;
pub mod routes;
pub mod serve;
pub mod storage;
pub mod views;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::{Error, Result};

use metrics::Metrics;
use rate_limit::{RateLimit, RateLimiter};
use storage::Store;

/// Limits applied to every request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered with 408.
    pub request_timeout: Duration,
    /// Per-token request budget (per replica).
    pub rate: RateLimit,
}

impl Default for Limits {
    /// 4 MiB bodies (a day of one-minute CGM readings in JSON is well under
    /// 1 MiB), 30 s per request, and [`RateLimit::default`].
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            rate: RateLimit::default(),
        }
    }
}

/// Everything a request handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Request metrics for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Per-token rate limiting.
    pub rate_limiter: Arc<RateLimiter>,
    /// The limits `app` applies.
    pub limits: Limits,
    /// Mark dashboard cookies `Secure`: true when served over TLS or behind
    /// a TLS proxy (browsers drop Secure cookies on plain-HTTP loopback).
    pub cookie_secure: bool,
    /// This process's live-event bus (SSE clients read it).
    pub bus: live::LiveBus,
    /// Where live events are published (this process or every replica).
    pub fanout: Arc<dyn live::Fanout>,
    /// Wakes the webhook worker when an event is queued
    /// ([`webhooks::dispatch::publish`]).
    pub webhook_wake: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// State over a store, with fresh metrics and rate buckets.
    pub fn new(store: Store, limits: Limits) -> Self {
        let bus = live::LiveBus::default();
        Self {
            store,
            metrics: Arc::new(Metrics::default()),
            rate_limiter: Arc::new(RateLimiter::new(limits.rate)),
            limits,
            cookie_secure: false,
            fanout: Arc::new(live::LocalFanout::new(bus.clone())),
            bus,
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The same state publishing through another fan-out (several
    /// replicas); that fan-out must feed [`AppState::bus`] on every replica.
    pub fn with_fanout(mut self, fanout: Arc<dyn live::Fanout>) -> Self {
        self.fanout = fanout;
        self
    }
}

/// The whole HTTP service: every route of [`routes::table`], a JSON 404 for
/// anything else, request metrics, a body size limit and a request timeout.
pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    let mut router = Router::new();
    for r in routes::table() {
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(|| async { Error::NotFound("no such route".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .with_state(state)
}

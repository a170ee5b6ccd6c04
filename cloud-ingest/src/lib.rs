//! vigil-ingest: the cloud end of Vigil's data path.
//!
//! Phones running the SDK post batches and alerts here; clinicians and
//! followers read them back. This crate is the foundation every endpoint
//! plugs into: [`app`] builds the whole HTTP service from an [`ServiceState`]
//! (so tests drive it without a socket), [`auth`] turns a bearer token into
//! a [`auth::Principal`] scoped to its patients, [`storage`] hides the
//! database behind one trait, and [`serve`] binds it to a socket, plain or
//! TLS, with graceful shutdown.
//!
//! Decision: every layer that protects the process (body size, time per
//! request, per-token rate) is applied here, once, to every route, so a new
//! endpoint cannot forget one.

pub mod access;
pub mod admin;
pub mod auth;
pub mod csv;
pub mod dashboard;
pub mod deadman;
pub mod domain;
pub mod error;
pub mod fhir;
pub mod glucose;
pub mod glucose_days;
pub mod health;
pub mod intake;
pub mod live;
pub mod nightscout;
pub mod query;
pub mod rate_limit;
pub mod reads;
pub mod resolved;
pub mod routes;
pub mod serve;
pub mod storage;
pub mod telemetry;
pub mod upkeep;
pub mod validate;
pub mod views;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::{Error, Result};

use rate_limit::{RateLimit, RateLimiter};
use storage::Store;
use telemetry::Telemetry;

/// Limits applied to every request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered with 408.
    pub request_timeout: Duration,
    /// Per-token request budget (per replica).
    pub rate: RateLimit,
    /// Most readings (held-back included) one batch may carry; more is a
    /// 413, which makes the SDK halve its batch. Bounds the time one batch
    /// holds the database writer, so one device cannot stall the others.
    pub max_readings_per_batch: usize,
    /// How far past the server's clock a (skew-corrected) reading or alert
    /// time, or a heartbeat, may lie ([`validate::check_time`]).
    pub max_future_skew: chrono::TimeDelta,
}

impl Default for Limits {
    /// 4 MiB bodies (a day of one-minute CGM readings in JSON is well under
    /// 1 MiB), 30 s per request, [`RateLimit::default`], 20,000 readings per
    /// batch (four times the SDK's default batch) and 5 minutes of clock
    /// skew into the future.
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            rate: RateLimit::default(),
            max_readings_per_batch: 20_000,
            max_future_skew: chrono::TimeDelta::minutes(5),
        }
    }
}

/// Everything a request handler may use. Cheap to clone.
#[derive(Clone)]
pub struct ServiceState {
    /// The database.
    pub store: Store,
    /// Request counters and latencies (Prometheus) for `/metrics`; not the
    /// glycaemic metrics of `vigil_model::metrics`.
    pub telemetry: Arc<Telemetry>,
    /// Per-token rate limiting.
    pub rate_limiter: Arc<RateLimiter>,
    /// Failed authentication per client address.
    pub auth_throttle: Arc<rate_limit::AuthThrottle>,
    /// The limits `app` applies.
    pub limits: Limits,
    /// Mark dashboard cookies `Secure`: true when served over TLS or behind
    /// a TLS proxy (browsers drop Secure cookies on plain-HTTP loopback).
    pub cookie_secure: bool,
    /// The URL clients reach the service at, without a trailing slash:
    /// absolute links (FHIR `fullUrl`) are built from it, never from the
    /// client's Host header.
    pub public_url: String,
    /// Send `Strict-Transport-Security` (served over TLS).
    pub hsts: bool,
    /// This process's live-event bus (SSE clients read it).
    pub bus: live::LiveBus,
    /// Where live events are published (this process or every replica).
    pub fanout: Arc<dyn live::Fanout>,
    /// Wakes the webhook worker when an event is queued
    /// ([`webhooks::dispatch::publish`]).
    pub webhook_wake: Arc<tokio::sync::Notify>,
}

impl ServiceState {
    /// State over a store, with fresh metrics and rate buckets.
    pub fn new(store: Store, limits: Limits) -> Self {
        let bus = live::LiveBus::default();
        Self {
            store,
            telemetry: Arc::new(Telemetry::default()),
            rate_limiter: Arc::new(RateLimiter::new(limits.rate)),
            auth_throttle: Arc::new(rate_limit::AuthThrottle::new(
                rate_limit::AuthThrottle::LIMIT,
            )),
            limits,
            cookie_secure: false,
            public_url: "http://localhost".into(),
            hsts: false,
            fanout: Arc::new(live::LocalFanout::new(bus.clone())),
            bus,
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The same state publishing through another fan-out (several
    /// replicas); that fan-out must feed [`ServiceState::bus`] on every replica.
    pub fn with_fanout(mut self, fanout: Arc<dyn live::Fanout>) -> Self {
        self.fanout = fanout;
        self
    }
}

/// The whole HTTP service: every route of [`routes::table`], a JSON 404 for
/// anything else, request metrics, a body size limit and a request timeout.
pub fn app(state: ServiceState) -> Router {
    let limits = state.limits;
    let mut router = Router::new();
    for r in routes::table() {
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(|| async { Error::NotFound("no such route".into()) })
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::track,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), hsts))
        .with_state(state)
}

/// Adds `Strict-Transport-Security` to every answer when served over TLS,
/// so a browser that once reached the dashboard over HTTPS never sends a
/// session cookie in clear.
async fn hsts(
    axum::extract::State(state): axum::extract::State<ServiceState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(req).await;
    if state.hsts {
        response.headers_mut().insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            axum::http::HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

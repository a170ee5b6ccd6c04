//! Operations endpoints: liveness, readiness, metrics, the API document.
//! None needs a token: they carry no patient data, and probes and scrapers
//! should not hold secrets. `/metrics` labels are route templates only.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::ServiceState;
use crate::error::Result;

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the database answers; 500 (logged) when it does not.
pub async fn readyz(State(state): State<ServiceState>) -> Result<&'static str> {
    state.store.run(|s| s.ping()).await?;
    Ok("ready")
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<ServiceState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.telemetry.render(),
    )
}

/// `GET /openapi.json`: the API document (kept true by a test).
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// The OpenAPI 3.1 document describing [`crate::routes::table`].
pub const OPENAPI: &str = include_str!("../openapi.json");

//! Routes: the HTTP surface, declared once in [`table`]. Only the table
//! lives here; each handler lives in its slice (`intake/`, `reads/`,
//! `dashboard/`, `fhir/`, `nightscout/`, `csv/`, `admin/`, `health`).
//!
//! The router is built only from this table, and the OpenAPI test compares
//! the table with `openapi.json` both ways and then calls every documented
//! operation on the real router: a route added here without documenting it,
//! or documented without existing, fails that test.

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::ServiceState;
use crate::admin::audit;
use crate::csv::routes as csv;
use crate::dashboard::routes as dashboard;
use crate::fhir::routes as fhir;
use crate::health;
use crate::intake::routes as intake;
use crate::nightscout::routes as nightscout;
use crate::reads::patients;
use crate::reads::routes as reads;

/// One route: method, path template (axum syntax, the same as OpenAPI's),
/// and its handler.
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path template, e.g. `/v1/patients/{id}`.
    pub path: &'static str,
    /// The handler.
    pub handler: MethodRouter<ServiceState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<ServiceState>) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

/// Every route the service serves.
pub fn table() -> Vec<Route> {
    vec![
        route(Method::GET, "/healthz", get(health::healthz)),
        route(Method::GET, "/readyz", get(health::readyz)),
        route(Method::GET, "/metrics", get(health::metrics)),
        route(Method::GET, "/openapi.json", get(health::openapi)),
        route(Method::GET, "/v1/patients", get(patients::list)),
        route(Method::GET, "/v1/audit", get(audit::list)),
        route(Method::GET, "/dashboard/", get(dashboard::home)),
        route(Method::GET, "/dashboard/triage", get(dashboard::triage)),
        route(Method::GET, "/dashboard/login", get(dashboard::login_form)),
        route(Method::POST, "/dashboard/login", post(dashboard::login)),
        route(Method::POST, "/dashboard/logout", post(dashboard::logout)),
        route(
            Method::POST,
            "/dashboard/preferences",
            post(dashboard::preferences),
        ),
        route(
            Method::GET,
            "/dashboard/patients/{id}",
            get(dashboard::patient),
        ),
        route(
            Method::GET,
            "/dashboard/static/app.css",
            get(dashboard::css),
        ),
        route(Method::GET, "/dashboard/static/app.js", get(dashboard::js)),
        route(
            Method::GET,
            "/dashboard/alerts/stream",
            get(dashboard::alerts_stream),
        ),
        route(
            Method::POST,
            "/dashboard/alerts/{id}/ack",
            post(dashboard::alerts_ack),
        ),
        route(
            Method::GET,
            "/v1/patients/{id}/readings.csv",
            get(csv::export),
        ),
        route(
            Method::POST,
            "/v1/patients/{id}/readings.csv",
            post(csv::import),
        ),
        route(Method::GET, "/fhir/Observation", get(fhir::observations)),
        route(Method::GET, "/fhir/Patient/{id}", get(fhir::patient)),
        route(
            Method::GET,
            "/fhir/Patient/{id}/$cgm-summary",
            get(fhir::summary),
        ),
        route(Method::GET, "/api/v1/status.json", get(nightscout::status)),
        route(Method::GET, "/api/v1/entries.json", get(nightscout::list)),
        route(
            Method::GET,
            "/api/v1/entries/sgv.json",
            get(nightscout::list),
        ),
        route(
            Method::GET,
            "/api/v1/entries/current.json",
            get(nightscout::current),
        ),
        route(Method::POST, "/api/v1/entries", post(nightscout::upload)),
        route(
            Method::POST,
            "/api/v1/treatments",
            post(nightscout::post_treatments),
        ),
        route(
            Method::GET,
            "/api/v1/treatments.json",
            get(nightscout::list_treatments),
        ),
        route(
            Method::POST,
            "/api/v1/devicestatus",
            post(nightscout::post_device_status),
        ),
        route(
            Method::GET,
            "/api/v1/devicestatus.json",
            get(nightscout::list_device_status),
        ),
        route(
            Method::DELETE,
            "/api/v1/entries",
            delete(nightscout::delete),
        ),
        route(Method::POST, "/v1/batches", post(intake::post_batch)),
        route(Method::POST, "/v1/alerts", post(intake::post_alert)),
        route(Method::POST, "/v1/heartbeats", post(intake::post_heartbeat)),
        route(
            Method::GET,
            "/v1/patients/{id}/readings",
            get(reads::readings),
        ),
        route(
            Method::GET,
            "/v1/patients/{id}/metrics",
            get(reads::metrics),
        ),
        route(
            Method::GET,
            "/v1/patients/{id}/precedence",
            get(reads::precedence),
        ),
        route(
            Method::GET,
            "/v1/patients/{id}/precedence-policy",
            get(reads::get_policy),
        ),
        route(
            Method::PUT,
            "/v1/patients/{id}/precedence-policy",
            put(reads::put_policy),
        ),
        route(Method::GET, "/v1/alerts/stream", get(reads::stream)),
        route(Method::POST, "/v1/alerts/{id}/ack", post(reads::ack)),
    ]
}

/// The OpenAPI 3.1 document describing [`table`] (served by
/// [`crate::health::openapi`]).
pub use crate::health::OPENAPI;

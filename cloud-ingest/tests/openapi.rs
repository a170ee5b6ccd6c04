//! `/openapi.json` is kept true: the document and the router's route table
//! list the same operations, and every documented operation is routed by
//! the real router (not 404/405). Adding a route without documenting it, or
//! documenting one that does not exist, fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request};
use common::Fixture;
use tower::ServiceExt;
use vigil_ingest::{Limits, app, routes};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn documented() -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(routes::OPENAPI).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (key, op) in item.as_object().unwrap() {
            if METHODS.contains(&key.as_str()) {
                assert!(op["responses"].is_object(), "{key} {path} has no responses");
                ops.insert((key.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn openapi_document_lists_exactly_the_routes_of_the_router() {
    let routed: BTreeSet<(String, String)> = routes::table()
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler_and_others_get_json_404() {
    let fx = Fixture::new();
    let state = fx.state(Limits::default());
    for (method, path) in documented() {
        // Path parameters get a plausible value; auth may refuse, but the
        // router must have matched (404 and 405 are what no route gives).
        let concrete = path.replace("{id}", &fx.own.to_string());
        let resp = app(state.clone())
            .oneshot(
                Request::builder()
                    .method(Method::from_bytes(method.as_bytes()).unwrap())
                    .uri(&concrete)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let s = resp.status().as_u16();
        assert!(s != 404 && s != 405, "{method} {path}: {s}");
    }
    let resp = app(state)
        .oneshot(Request::get("/v1/nowhere").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn served_document_is_the_checked_one() {
    let fx = Fixture::new();
    let resp = app(fx.state(Limits::default()))
        .oneshot(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(body, routes::OPENAPI.as_bytes());
}

//! The real binary on PostgreSQL: the admin CLI and `serve` given a
//! `postgres://` URL use the same database, and shut down cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use std::path::Path;

use common::{Server, pg_server, run_cli};

#[test]
fn admin_cli_and_serve_share_one_postgres_database() {
    let url = pg_server().fresh_database().unwrap();
    let db = Path::new(&url);
    let (ok, out, err) = run_cli(db, &["patient", "add", "Ada Lovelace"]);
    assert!(ok, "{err}");
    let patient = out.trim().to_owned();
    patient.parse::<i64>().unwrap();
    let (ok, out, _) = run_cli(db, &["clinician", "add", "dr-who"]);
    assert!(ok);
    let clinician = out.trim().to_owned();
    assert!(run_cli(db, &["clinician", "assign", "dr-who", &patient]).0);
    let (ok, _, err) = run_cli(db, &["clinician", "add", "dr-who"]);
    assert!(!ok && err.contains("conflict"), "{err}");

    let server = Server::start(db, &["--listen", "127.0.0.1:0"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body: serde_json::Value = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/v1/patients", server.url))
            .bearer_auth(&clinician)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(body["patients"][0]["id"].to_string(), patient);
    assert_eq!(body["patients"].as_array().unwrap().len(), 1);
    let ready = rt.block_on(async {
        reqwest::get(format!("{}/readyz", server.url))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(ready, 200);
    assert!(server.terminate().success(), "clean exit on SIGTERM");
}

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

/// Two `serve` processes over one PostgreSQL: a clinician streaming from
/// replica A sees, exactly once, an alert a phone posted to replica B (and
/// B's own stream sees it once too).
#[test]
fn an_alert_posted_to_one_replica_reaches_a_clinician_on_the_other_once() {
    let url = pg_server().fresh_database().unwrap();
    let db = Path::new(&url);
    let patient = run_cli(db, &["patient", "add", "Grace Hopper"])
        .1
        .trim()
        .to_owned();
    let device = run_cli(
        db,
        &["token", "add", "--patient", &patient, "--role", "device"],
    )
    .1
    .trim()
    .to_owned();
    let clinician = run_cli(db, &["clinician", "add", "dr-a"])
        .1
        .trim()
        .to_owned();
    assert!(run_cli(db, &["clinician", "assign", "dr-a", &patient]).0);
    let a = Server::start(db, &["--listen", "127.0.0.1:0"]);
    let b = Server::start(db, &["--listen", "127.0.0.1:0"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (on_a, on_b) = rt.block_on(async {
        let client = reqwest::Client::new();
        let open = |base: String| {
            let client = client.clone();
            let clinician = clinician.clone();
            async move {
                let resp = client
                    .get(format!("{base}/v1/alerts/stream"))
                    .bearer_auth(&clinician)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                resp
            }
        };
        let mut sa = open(a.url.clone()).await;
        let mut sb = open(b.url.clone()).await;
        // Let both replicas' LISTEN connections settle before posting.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0).unwrap();
        let alert = serde_json::json!({
            "v": 1, "patient": patient, "device": "cgm-1", "sent_at": now,
            "id": "a1b2c3d4e5f60718", "kind": "urgent_low", "phase": "start",
            "time": now, "glucose_mg_dl": 48.0
        });
        for _ in 0..2 {
            // The second post is a duplicate: stored and published once.
            let resp = client
                .post(format!("{}/v1/alerts", b.url))
                .bearer_auth(&device)
                .json(&alert)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        }
        let on_a = collect(&mut sa).await;
        let on_b = collect(&mut sb).await;
        (on_a, on_b)
    });
    assert_eq!(
        on_a.matches("a1b2c3d4e5f60718").count(),
        1,
        "replica A: {on_a}"
    );
    assert_eq!(
        on_b.matches("a1b2c3d4e5f60718").count(),
        1,
        "replica B: {on_b}"
    );
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

/// Everything an SSE response sends within 3 s.
async fn collect(resp: &mut reqwest::Response) -> String {
    let mut seen = String::new();
    let end = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(end, resp.chunk()).await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

//! The fault proxy in front of the real ingest service: each fault happens
//! as asked, and a clean proxy is transparent (keep-alive and bodies too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use vigil_e2e::proxy::{FaultProxy, Faults};
use vigil_e2e::service::Service;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_proxy_is_transparent_and_each_fault_happens_as_asked() {
    let service = Service::start().await;
    let proxy = FaultProxy::start(service.addr, Faults::default(), 1)
        .await
        .unwrap();
    let c = client();
    let health = format!("{}/healthz", proxy.url());

    // Clean: every request answered, on one kept-alive connection, with
    // bodies framed by Content-Length both ways.
    for _ in 0..10 {
        let r = c.get(&health).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let r = c
        .post(format!("{}/v1/patients", proxy.url()))
        .body(vec![b'x'; 100_000])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let s = proxy.stats();
    assert_eq!((s.requests, s.forwarded), (11, 11));

    // Dropped: the server never sees the request, the client gets an error.
    proxy.set_faults(Faults {
        drop: 1.0,
        ..Faults::default()
    });
    assert!(client().get(&health).send().await.is_err());
    assert_eq!(proxy.stats().forwarded, 11);
    assert_eq!(proxy.stats().dropped, 1);

    // Duplicated: the server answers twice, the client once.
    proxy.set_faults(Faults {
        duplicate: 1.0,
        ..Faults::default()
    });
    let r = client().get(&health).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(proxy.stats().forwarded, 13);
    assert_eq!(proxy.stats().duplicated, 1);

    // Cut: the server answered (committed), the client never hears.
    proxy.set_faults(Faults {
        cut_response: 1.0,
        ..Faults::default()
    });
    assert!(client().get(&health).send().await.is_err());
    assert_eq!(proxy.stats().forwarded, 14);
    assert_eq!(proxy.stats().cut, 1);

    // Mixed at 10 % each over many requests: the rates come out near the
    // asked ones (seeded, so the exact counts repeat run to run).
    proxy.set_faults(Faults {
        drop: 0.1,
        duplicate: 0.1,
        cut_response: 0.1,
    });
    let before = proxy.stats();
    let mut ok = 0;
    for _ in 0..300 {
        if let Ok(r) = client().get(&health).send().await {
            if r.status() == 200 {
                ok += 1;
            }
        }
    }
    let after = proxy.stats();
    let n = (after.requests - before.requests) as f64;
    assert_eq!(n, 300.0);
    for (what, k) in [
        ("dropped", after.dropped - before.dropped),
        ("duplicated", after.duplicated - before.duplicated),
        ("cut", after.cut - before.cut),
    ] {
        let rate = k as f64 / n;
        assert!((0.04..=0.18).contains(&rate), "{what}: {rate}");
    }
    assert_eq!(
        ok as u64,
        300 - (after.dropped - before.dropped) - (after.cut - before.cut)
    );
}

/// A 204 answer has no body and no length: the proxy must pass it on at
/// once rather than wait for the server to close the connection (a
/// heartbeat's answer hung every sync pass for the client's timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_content_answer_passes_at_once_on_a_kept_alive_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/nc",
        axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let proxy = FaultProxy::start(upstream, Faults::default(), 1)
        .await
        .unwrap();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = c
            .post(format!("{}/nc", proxy.url()))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
}

//! HTTPS with rustls: the binary serves a self-signed certificate made in
//! the test, and a rustls client that trusts only that certificate talks to
//! it. No OpenSSL on either side.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use common::{Server, run_cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_speaks_https_with_the_given_certificate_and_authenticates_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = cert.cert.pem();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();

    let (_, out, _) = run_cli(&db, &["patient", "add", "Ada"]);
    let patient = out.trim().to_owned();
    let (_, out, _) = run_cli(
        &db,
        &["token", "add", "--patient", &patient, "--role", "device"],
    );
    let device = out.trim().to_owned();

    let server = Server::start(
        &db,
        &[
            // Off loopback is allowed with TLS and no proxy flag.
            "--listen",
            "0.0.0.0:0",
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let port = server.addr().port();

    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let health = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let patients = client
        .get(format!("https://localhost:{port}/v1/patients"))
        .bearer_auth(&device)
        .send()
        .await
        .unwrap();
    assert_eq!(patients.status(), 200);

    // A client that does not trust the certificate is refused the handshake.
    let stranger = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    assert!(
        stranger
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .is_err()
    );
    // Plain HTTP to the TLS port gets no HTTP answer.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_err()
    );
    assert!(server.terminate().success());
}

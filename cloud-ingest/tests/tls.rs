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

/// The HTTPS listener keeps the plain listener's connection limits: a
/// client that opens connections and never starts a handshake holds at most
/// `per_client` of them, each closed when the handshake time runs out, while
/// a well-behaved client still gets HTTPS answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_are_capped_per_client_and_stalled_handshakes_closed() {
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use tokio::io::AsyncReadExt;
    use vigil_ingest::serve::{ConnectionLimits, serve_tls};

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let fx = common::Fixture::new();
    let router = vigil_ingest::app(fx.state(vigil_ingest::Limits::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(600),
        total: 64,
        per_client: 3,
    };
    tokio::spawn(serve_tls(
        listener,
        router,
        limits,
        std::future::pending(),
        Arc::new(config),
    ));

    // Three silent connections are held; the fourth is closed at once.
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_millis(400), extra.read(&mut buf))
        .await
        .expect("the connection over the cap is closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);

    // The held ones are closed when the handshake time runs out.
    let started = Instant::now();
    for s in &mut silent {
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
            .await
            .expect("a stalled handshake is closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    // Slots freed: a real HTTPS client is answered.
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_der(cert.cert.der()).unwrap())
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = client
        .get(format!("https://localhost:{}/healthz", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

//! Certificate pinning over real TLS on loopback: a private CA issues the
//! server's certificate (rcgen), a tokio-rustls server answers one HTTP
//! request, and sync's [`HttpPoster`] connects with the CA as an extra root.
//! The right SPKI pin connects; a wrong pin fails the handshake even though
//! the chain itself is valid; an untrusted CA fails without any pin.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_core::sync::{HttpPoster, Poster, Route, SyncConfig, spki_sha256};

struct Pki {
    ca_pem: String,
    leaf_der: Vec<u8>,
    leaf_key: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf_der: leaf.der().to_vec(),
        leaf_key: leaf_key.serialize_der(),
    }
}

/// Serves TLS on 127.0.0.1:0; every connection that completes the handshake
/// gets `202 Accepted`. Returns the port.
async fn serve(pki: &Pki) -> u16 {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(pki.leaf_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key.clone())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                // Read the headers and the (small) body, then answer.
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn config(port: u16, roots: Vec<String>, pins: Vec<[u8; 32]>) -> SyncConfig {
    SyncConfig {
        server_url: format!("https://127.0.0.1:{port}"),
        extra_roots_pem: roots,
        spki_pins: pins,
        request_timeout: Duration::from_secs(10),
        ..SyncConfig::default()
    }
}

async fn post(config: &SyncConfig) -> vigil_core::Result<u16> {
    let poster = HttpPoster::new(config)?;
    let reply = tokio::time::timeout(
        Duration::from_secs(20),
        poster.post(
            Route::Heartbeats,
            "application/json",
            None,
            b"{}".to_vec(),
            Some("t"),
        ),
    )
    .await
    .expect("bounded")?;
    Ok(reply.status)
}

#[tokio::test]
async fn the_right_spki_pin_connects_and_a_wrong_one_fails_the_handshake() {
    let pki = pki();
    let port = serve(&pki).await;
    let pin = spki_sha256(&pki.leaf_der).unwrap();

    // The CA alone (no pins): normal verification passes.
    assert_eq!(
        post(&config(port, vec![pki.ca_pem.clone()], vec![]))
            .await
            .unwrap(),
        202
    );
    // The leaf's key pinned (beside a backup pin): passes.
    let right = config(port, vec![pki.ca_pem.clone()], vec![[7; 32], pin]);
    assert_eq!(post(&right).await.unwrap(), 202);
    // A valid chain whose key is not pinned: refused.
    let mut wrong_pin = pin;
    wrong_pin[0] ^= 1;
    let wrong = config(port, vec![pki.ca_pem.clone()], vec![wrong_pin]);
    match post(&wrong).await {
        Err(vigil_core::Error::Network(msg)) => {
            assert!(
                msg.contains("certificate") || msg.contains("connect"),
                "{msg}"
            )
        }
        other => panic!("a wrong pin must fail the connection: {other:?}"),
    }
    // The right pin does not rescue an untrusted chain: verification
    // comes first.
    let untrusted = config(port, vec![], vec![pin]);
    assert!(matches!(
        post(&untrusted).await,
        Err(vigil_core::Error::Network(_))
    ));
}

//! TLS to a PostgreSQL host off loopback: the binary verifies the server's
//! certificate (rustls, no OpenSSL) and refuses to go without TLS.
//!
//! The server is a throwaway one with `ssl=on` and a certificate for
//! `db.test`; the URL names that host and pins the address to 127.0.0.1
//! with `hostaddr`, so the client treats it as a remote host (TLS required,
//! certificate checked against `db.test`) while no packet leaves loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use std::process::Command;

use vigil_pg_harness::PgServer;

fn add_patient(url: &str, ca: Option<&std::path::Path>) -> (bool, String) {
    let mut cmd = Command::new(common::bin());
    cmd.args(["--database", url, "patient", "add", "Ada"]);
    cmd.env_remove("VIGIL_DATABASE_CA");
    if let Some(ca) = ca {
        cmd.env("VIGIL_DATABASE_CA", ca);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_remote_host_is_reached_over_verified_tls_only() {
    let cert = rcgen::generate_simple_self_signed(vec!["db.test".to_owned()]).unwrap();
    let server = PgServer::start_tls(&cert.cert.pem(), &cert.key_pair.serialize_pem())
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let port = server.port();
    let url = format!("postgres://postgres@db.test:{port}/postgres?hostaddr=127.0.0.1");

    // Trusting the server's certificate: the command works.
    let (ok, err) = add_patient(&url, Some(&ca));
    assert!(ok, "{err}\n{}", server.log());
    // Without that trust the handshake fails: TLS was really in use and
    // the certificate really checked.
    let (ok, err) = add_patient(&url, None);
    assert!(!ok, "connected without trusting the certificate");
    assert!(
        err.contains("PostgreSQL") && err.contains("certificate"),
        "{err}"
    );
    // Plain text to a remote host is refused before connecting.
    let (ok, err) = add_patient(&format!("{url}&sslmode=disable"), Some(&ca));
    assert!(!ok && err.contains("sslmode=disable"), "{err}");
}

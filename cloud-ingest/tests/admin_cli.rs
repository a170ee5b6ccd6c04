//! The admin CLI and `serve`, run as the operator runs them: the real binary
//! as a subprocess against a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Server, run_cli};
use vigil_ingest::domain::TokenHash;

fn one_line(out: &str) -> &str {
    let mut lines = out.lines();
    let line = lines.next().expect("one line of output");
    assert_eq!(lines.next(), None, "more than one line: {out:?}");
    line
}

fn is_secret(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|b64| {
        // 160 bits in base64url without padding.
        b64.len() == 27
            && b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[test]
fn admin_commands_each_print_one_line_and_the_tokens_they_issue_work() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("clinic.db");

    let (ok, out, _) = run_cli(&db, &["patient", "add", "Ada Lovelace"]);
    assert!(ok);
    let patient: i64 = one_line(&out).parse().unwrap();
    let (ok, out, _) = run_cli(&db, &["patient", "add", "Bob"]);
    assert!(ok);
    let other: i64 = one_line(&out).parse().unwrap();
    assert_ne!(patient, other);

    let p = patient.to_string();
    let (ok, out, _) = run_cli(&db, &["patient", "time-zone", &p, "America/New_York"]);
    assert!(ok);
    assert_eq!(one_line(&out), "updated");
    let (ok, _, err) = run_cli(&db, &["patient", "time-zone", &p, "Mars/Olympus_Mons"]);
    assert!(!ok);
    assert!(err.contains("unknown time zone"), "{err}");
    let (ok, _, _) = run_cli(&db, &["patient", "time-zone", "999999", "Europe/Paris"]);
    assert!(!ok, "an unknown patient is refused");
    let (ok, out, _) = run_cli(&db, &["token", "add", "--patient", &p, "--role", "device"]);
    assert!(ok);
    let device = one_line(&out).to_owned();
    assert!(is_secret(&device, "vgl_d_"), "{device}");
    let (ok, out, _) = run_cli(
        &db,
        &["token", "add", "--patient", &p, "--role", "follower"],
    );
    assert!(ok);
    assert!(is_secret(one_line(&out), "vgl_f_"));

    let (ok, out, _) = run_cli(&db, &["clinician", "add", "dr-who"]);
    assert!(ok);
    let clinician = one_line(&out).to_owned();
    assert!(is_secret(&clinician, "vgl_c_"));
    let (ok, out, _) = run_cli(&db, &["clinician", "assign", "dr-who", &p]);
    assert!(ok);
    assert_eq!(one_line(&out), "assigned");

    let (ok, out, _) = run_cli(&db, &["admin", "add", "root"]);
    assert!(ok);
    let admin = one_line(&out).to_owned();
    assert!(is_secret(&admin, "vgl_a_"));

    // A postgres:// URL picks PostgreSQL (tests/postgres_service.rs runs
    // these commands against a real one); an unreachable one fails clearly
    // and never creates a SQLite file of that name.
    let (ok, out, err) = run_cli(
        std::path::Path::new("postgres://postgres@127.0.0.1:1/vigil?connect_timeout=5"),
        &["patient", "add", "X"],
    );
    assert!(!ok && out.is_empty() && err.contains("PostgreSQL"), "{err}");
    assert!(!std::path::Path::new("postgres:").exists());

    // Failures: exit non-zero, nothing on stdout, a reason on stderr.
    for args in [
        &["token", "add", "--patient", "999", "--role", "device"][..],
        &["token", "add", "--patient", &p, "--role", "clinician"][..],
        &["clinician", "assign", "dr-nobody", &p][..],
        &["clinician", "assign", "dr-who", "999"][..],
        &["clinician", "add", "dr-who"][..],
    ] {
        let (ok, out, err) = run_cli(&db, args);
        assert!(!ok, "{args:?} succeeded");
        assert!(out.is_empty(), "{args:?} printed {out:?}");
        assert!(!err.is_empty());
    }

    // The database the CLI wrote is the one the service reads: the issued
    // tokens authenticate with the right scope.
    let server = Server::start(&db, &["--listen", "127.0.0.1:0"]);
    let get = |path: &str, token: &str| {
        let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp
    };
    let as_clinician = get("/v1/patients", &clinician);
    assert!(as_clinician.starts_with("HTTP/1.1 200"), "{as_clinician}");
    assert!(as_clinician.contains(&format!("\"id\":{patient}")));
    assert!(!as_clinician.contains(&format!("\"id\":{other}")));
    assert!(get("/v1/audit", &admin).starts_with("HTTP/1.1 200"));
    assert!(get("/v1/audit", &device).starts_with("HTTP/1.1 403"));
    assert!(server.terminate().success());
}

#[test]
fn issued_secrets_never_reach_the_database_file_only_their_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("clinic.db");
    let (_, out, _) = run_cli(&db, &["patient", "add", "Ada"]);
    let p = one_line(&out).to_owned();
    let mut secrets = Vec::new();
    for args in [
        &["token", "add", "--patient", &p, "--role", "device"][..],
        &["token", "add", "--patient", &p, "--role", "follower"][..],
        &["clinician", "add", "dr-a"][..],
        &["admin", "add", "root"][..],
    ] {
        let (ok, out, _) = run_cli(&db, args);
        assert!(ok);
        secrets.push(one_line(&out).to_owned());
    }
    // WAL mode: recent pages may live in the -wal file, so read both.
    let mut bytes = std::fs::read(&db).unwrap();
    let wal = dir.path().join("clinic.db-wal");
    if wal.exists() {
        bytes.extend(std::fs::read(wal).unwrap());
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    for secret in &secrets {
        let random_part = &secret[6..];
        assert!(!contains(secret.as_bytes()), "secret stored in clear");
        assert!(!contains(random_part.as_bytes()), "secret's hex stored");
        // The check can fail: the hash is what is stored, and it is found.
        assert!(contains(TokenHash::of(secret).as_bytes()), "hash not found");
    }
}

#[test]
fn serve_refuses_plain_http_off_loopback_unless_behind_a_proxy_and_bad_limits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let out = std::process::Command::new(common::bin())
        .arg("--database")
        .arg(&db)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it must not have started listening");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--insecure-behind-proxy"), "{err}");

    let bad_rate = std::process::Command::new(common::bin())
        .arg("--database")
        .arg(&db)
        .args(["serve", "--rate-per-second=-1"])
        .output()
        .unwrap();
    assert!(!bad_rate.status.success() && bad_rate.stdout.is_empty());

    let server = Server::start(&db, &["--listen", "0.0.0.0:0", "--insecure-behind-proxy"]);
    assert!(server.url.starts_with("http://0.0.0.0:"));
    assert!(server.terminate().success());
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let server = Server::start(&db, &["--listen", "127.0.0.1:0"]);
    // A request whose head has begun arriving is in flight when the signal
    // lands; it must still get its answer.
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(b"Connection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    assert!(resp.ends_with("ok"));
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn nightscout_secret_is_stored_hashed_and_weak_or_unknown_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("clinic.db");
    let (_, out, _) = run_cli(&db, &["patient", "add", "Ada"]);
    let p = one_line(&out).to_owned();
    let secret = "a long nightscout secret";
    let (ok, out, _) = run_cli(&db, &["nightscout-secret", &p, secret]);
    assert!(ok);
    assert_eq!(one_line(&out), "nightscout secret set");
    for bad in [
        &["nightscout-secret", &p, "too short"][..],
        &["nightscout-secret", "999", "another long secret"][..],
    ] {
        let (ok, out, err) = run_cli(&db, bad);
        assert!(!ok, "{bad:?} succeeded");
        assert!(out.is_empty());
        assert!(!err.contains("secret!") && !err.is_empty());
    }
    let mut bytes = std::fs::read(&db).unwrap();
    let wal = dir.path().join("clinic.db-wal");
    if wal.exists() {
        bytes.extend(std::fs::read(wal).unwrap());
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(secret.as_bytes()), "secret stored in clear");
    let sha1 = vigil_ingest::nightscout::sha1_hex(secret);
    assert!(
        !contains(sha1.as_bytes()),
        "the SHA-1 form (a usable credential) is stored"
    );
    let stored = vigil_ingest::nightscout::secret_hash(secret).0;
    assert!(contains(stored.as_bytes()), "hash not found");
}

#[test]
fn token_revoke_and_clinician_end_sessions_act_at_once_and_are_audited() {
    let fx = common::Fixture::new();
    let storage = fx.store.blocking();
    let follower = storage
        .token_by_hash(&TokenHash::of(&fx.follower))
        .unwrap()
        .unwrap();
    let id = follower.id.to_string();
    let (ok, out, _) = run_cli(&fx.db, &["token", "revoke", &id]);
    assert!(ok);
    assert_eq!(out.trim(), "revoked");
    let after = storage
        .token_by_hash(&TokenHash::of(&fx.follower))
        .unwrap()
        .unwrap();
    assert!(after.revoked_at.is_some());
    // Again, or an unknown id: an error, never a silent success.
    let (ok, _, err) = run_cli(&fx.db, &["token", "revoke", &id]);
    assert!(!ok, "{err}");
    let (ok, _, _) = run_cli(&fx.db, &["token", "revoke", "999999"]);
    assert!(!ok);

    let clinician = storage
        .token_by_hash(&TokenHash::of(&fx.clinician))
        .unwrap()
        .unwrap();
    let session = TokenHash::of("a session id of sixty-four characters is what the cookie holds..");
    let later = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    storage
        .create_session(&session, clinician.id, later)
        .unwrap();
    assert!(
        storage
            .session_token(&session, chrono::Utc::now())
            .unwrap()
            .is_some()
    );
    let (ok, out, _) = run_cli(&fx.db, &["clinician", "end-sessions", "dr-own"]);
    assert!(ok);
    assert_eq!(out.trim(), "ended 1 session(s)");
    assert!(
        storage
            .session_token(&session, chrono::Utc::now())
            .unwrap()
            .is_none()
    );
    let actions: Vec<String> = storage
        .audit_entries(0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"token.revoke".to_owned()), "{actions:?}");
    assert!(
        actions.contains(&"clinician.end_sessions".to_owned()),
        "{actions:?}"
    );
}

#[test]
fn a_patient_s_precedence_policy_is_shown_set_and_a_meaningless_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    let (ok, out, _) = run_cli(&db, &["patient", "add", "Ada"]);
    assert!(ok);
    let patient = one_line(&out).to_owned();
    let (ok, shown, err) = run_cli(&db, &["patient", "precedence", &patient]);
    assert!(ok, "{err}");
    let mut policy: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(policy["default"], true);
    assert_eq!(policy["quantity"], "glucose");
    policy["rules"] = serde_json::json!([{"rule": "most_recent"}]);
    let file = dir.path().join("policy.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    let (ok, out, err) = run_cli(
        &db,
        &[
            "patient",
            "precedence",
            &patient,
            "--set",
            file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(one_line(&out), "updated");
    let (_, shown, _) = run_cli(&db, &["patient", "precedence", &patient]);
    let now: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(now["default"], false);
    assert_eq!(now["rules"], policy["rules"]);
    // No rules: refused, and the policy in force stays.
    policy["rules"] = serde_json::json!([]);
    std::fs::write(&file, policy.to_string()).unwrap();
    let (ok, _, err) = run_cli(
        &db,
        &[
            "patient",
            "precedence",
            &patient,
            "--set",
            file.to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("rules"), "{err}");
    let (_, shown, _) = run_cli(&db, &["patient", "precedence", &patient]);
    let still: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(still["rules"], now["rules"]);
    // Unknown quantity and unknown patient are named.
    let (ok, _, err) = run_cli(
        &db,
        &["patient", "precedence", &patient, "--quantity", "mood"],
    );
    assert!(!ok && err.contains("quantity"), "{err}");
    let (ok, _, err) = run_cli(&db, &["patient", "precedence", "999"]);
    assert!(!ok && err.contains("patient"), "{err}");
}

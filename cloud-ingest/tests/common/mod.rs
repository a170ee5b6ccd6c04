//! Shared fixtures for the ingest tests: a real SQLite file seeded through
//! the same admin functions the CLI uses, the service on a loopback socket,
//! and the binary as a subprocess.
#![allow(dead_code)] // each test binary uses a different part of this
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

pub mod cdp;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;
use vigil_ingest::domain::{Role, TokenHash};
use vigil_ingest::storage::Store;
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_ingest::{Limits, ServiceState, admin, app};

/// Who makes a request in the auth tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Who {
    Device,
    Follower,
    Clinician,
    Admin,
    NoToken,
    BadToken,
    Revoked,
}

impl Who {
    pub const ALL: [Who; 7] = [
        Who::Device,
        Who::Follower,
        Who::Clinician,
        Who::Admin,
        Who::NoToken,
        Who::BadToken,
        Who::Revoked,
    ];
}

/// Two patients: `own` has a device, a follower, an assigned clinician and a
/// revoked device token; `foreign` has its own device and an unrelated
/// clinician, so every token of `own` has a foreign patient to fail on.
pub struct Fixture {
    pub dir: TempDir,
    pub db: PathBuf,
    pub store: Store,
    pub own: i64,
    pub foreign: i64,
    pub device: String,
    pub follower: String,
    pub clinician: String,
    pub admin: String,
    pub revoked: String,
    pub foreign_device: String,
    pub foreign_clinician: String,
}

/// Display names used by the fixture: tests assert they never reach logs.
pub const OWN_NAME: &str = "Ada Own-Patient";
pub const FOREIGN_NAME: &str = "Bob Foreign-Patient";

impl Fixture {
    /// The fixture on a fresh SQLite file.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("vigil.db");
        let store = Store::new(SqliteStorage::open(&db).unwrap());
        Self::on(store, db, dir)
    }

    /// The fixture on a fresh PostgreSQL database of this test binary's
    /// throwaway server (`db` is then its URL).
    pub fn postgres() -> Self {
        let url = pg_server().fresh_database().unwrap();
        let store = vigil_ingest::storage::open(std::path::Path::new(&url)).unwrap();
        Self::on(store, PathBuf::from(url), tempfile::tempdir().unwrap())
    }

    /// The fixture seeded into `store`.
    pub fn on(store: Store, db: PathBuf, dir: TempDir) -> Self {
        let storage = store.blocking();
        let own = admin::add_patient(storage, OWN_NAME).unwrap();
        let foreign = admin::add_patient(storage, FOREIGN_NAME).unwrap();
        let device = admin::add_patient_token(storage, own, Role::Device).unwrap();
        let follower = admin::add_patient_token(storage, own, Role::Follower).unwrap();
        let revoked = admin::add_patient_token(storage, own, Role::Device).unwrap();
        let foreign_device = admin::add_patient_token(storage, foreign, Role::Device).unwrap();
        let clinician = admin::add_clinician(storage, "dr-own").unwrap();
        admin::assign(storage, "dr-own", own).unwrap();
        let foreign_clinician = admin::add_clinician(storage, "dr-foreign").unwrap();
        admin::assign(storage, "dr-foreign", foreign).unwrap();
        let admin_secret = admin::add_admin(storage, "root").unwrap();
        let revoked_id = storage
            .token_by_hash(&TokenHash::of(revoked.expose()))
            .unwrap()
            .unwrap()
            .id;
        assert!(storage.revoke_token(revoked_id).unwrap());
        Fixture {
            db,
            store: store.clone(),
            own,
            foreign,
            device: device.expose().to_owned(),
            follower: follower.expose().to_owned(),
            clinician: clinician.expose().to_owned(),
            admin: admin_secret.expose().to_owned(),
            revoked: revoked.expose().to_owned(),
            foreign_device: foreign_device.expose().to_owned(),
            foreign_clinician: foreign_clinician.expose().to_owned(),
            dir,
        }
    }

    /// The bearer secret `who` presents, if any. The bad token is well
    /// formed (right prefix and length) but was never issued.
    pub fn token(&self, who: Who) -> Option<String> {
        match who {
            Who::Device => Some(self.device.clone()),
            Who::Follower => Some(self.follower.clone()),
            Who::Clinician => Some(self.clinician.clone()),
            Who::Admin => Some(self.admin.clone()),
            Who::NoToken => None,
            Who::BadToken => Some(format!("vgl_d_{}", "0f".repeat(32))),
            Who::Revoked => Some(self.revoked.clone()),
        }
    }

    /// Every secret the fixture issued.
    pub fn secrets(&self) -> Vec<&str> {
        vec![
            &self.device,
            &self.follower,
            &self.clinician,
            &self.admin,
            &self.revoked,
            &self.foreign_device,
            &self.foreign_clinician,
        ]
    }

    pub fn state(&self, limits: Limits) -> ServiceState {
        ServiceState::new(self.store.clone(), limits)
    }
}

/// This test binary's throwaway PostgreSQL server, started on first use and
/// stopped when the binary exits. Fails (never skips) when PostgreSQL is not
/// installed, naming the Debian package.
pub fn pg_server() -> &'static vigil_pg_harness::PgServer {
    static SERVER: std::sync::OnceLock<vigil_pg_harness::PgServer> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| vigil_pg_harness::PgServer::start().unwrap_or_else(|e| panic!("{e}")))
}

/// Serves `app(state)` on a loopback port; returns its base URL.
pub async fn serve_loopback(state: ServiceState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app(state)).await.unwrap();
    });
    format!("http://{addr}")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vigil-ingest")
}

/// Runs an admin command against `db`; returns (success, stdout, stderr).
pub fn run_cli(db: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .arg("--database")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A `vigil-ingest serve` subprocess, killed on drop if still running.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// Starts `serve` with extra args and waits (at most 30 s) for its
    /// `listening <url>` line.
    pub fn start(db: &std::path::Path, extra: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .arg("--database")
            .arg(db)
            .arg("serve")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server { child, url }
    }

    pub fn addr(&self) -> SocketAddr {
        self.url.rsplit_once("://").unwrap().1.parse().unwrap()
    }

    /// Sends SIGTERM and waits (at most 30 s) for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not stop within 30 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

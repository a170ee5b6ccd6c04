//! The suite's real processes: the ingest service (`e2e-ingest`) on a fixed
//! loopback port, so it can be killed and restarted under the same URL, and
//! helpers to start a binary and wait for a line it prints.
#![allow(clippy::expect_used)] // Test support: a failed setup should stop the test loudly.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use vigil_ingest::admin;
use vigil_ingest::domain::Role;

/// A loopback port free right now (the service binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Lines a child prints on stdout, read on a thread of their own.
pub fn lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits up to `within` for a line starting with `prefix`.
pub fn wait_for(rx: &mpsc::Receiver<String>, prefix: &str, within: Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with(prefix) => return Some(l),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Seeds a patient and a device token into `database` (a SQLite path or a
/// PostgreSQL URL) with the service's own admin functions.
pub fn seed(database: &Path) -> (i64, String) {
    let store = vigil_ingest::storage::open(database).expect("open storage");
    let patient = admin::add_patient(store.blocking(), "E2E Patient").expect("patient");
    let token = admin::add_patient_token(store.blocking(), patient, Role::Device).expect("token");
    (patient, token.expose().to_owned())
}

/// The `e2e-ingest` process on a fixed address.
pub struct Ingest {
    bin: PathBuf,
    database: PathBuf,
    /// Where it listens, across restarts.
    pub addr: SocketAddr,
    child: Option<Child>,
    /// Starts so far.
    pub starts: u32,
}

impl Ingest {
    /// Starts `bin` (the `e2e-ingest` binary) on `database` at a free port.
    pub fn start(bin: &Path, database: &Path) -> Ingest {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut ingest = Ingest {
            bin: bin.to_path_buf(),
            database: database.to_path_buf(),
            addr,
            child: None,
            starts: 0,
        };
        ingest.restart();
        ingest
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the process with SIGKILL (no graceful shutdown) and waits.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same address (after a kill), waiting until it
    /// listens. The port may linger for a moment: retried for 10 s.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = Command::new(&self.bin)
                .arg(&self.database)
                .arg(self.addr.to_string())
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn e2e-ingest");
            let rx = lines(child.stdout.take().expect("stdout"));
            if wait_for(&rx, "listening", Duration::from_secs(10)).is_some() {
                self.child = Some(child);
                self.starts += 1;
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                std::time::Instant::now() < deadline,
                "e2e-ingest did not come up on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.kill();
    }
}

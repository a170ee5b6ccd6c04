//! `vigil-ingest serve` as its own process for the benchmarks that measure
//! the service over loopback (`load`, `capacity`): the clients run in the
//! bench process, the service in another, so each side's CPU is its own.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running service; stopped (SIGTERM, then waited for) on drop.
pub struct Server {
    child: Child,
    /// Its base URL (`http://127.0.0.1:port`).
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `vigil-ingest --database db serve --listen 127.0.0.1:0` plus
    /// `extra` arguments, and waits (30 s at most) for the address it
    /// prints.
    pub fn start(db: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil-ingest"))
            .arg("--database")
            .arg(db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vigil-ingest serve");
        let stdout = child.stdout.take().expect("the service's stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the service printed its address within 30 s");
        let url = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server { child, url }
    }

    /// The service's process id (its CPU time is read from `/proc`).
    #[allow(dead_code)] // Not every bench reads it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

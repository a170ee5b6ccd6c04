//! A private, throw-away system bus: one `dbus-daemon` per test.
//!
//! btleplug's Linux backend only ever talks to the *system* bus, found
//! through `DBUS_SYSTEM_BUS_ADDRESS`. A private daemon with an allow-all
//! policy lets a test own `org.bluez` without root and without touching the
//! machine's real Bluetooth stack. The daemon runs in its own temporary
//! directory and is killed when the [`PrivateBus`] is dropped, so a failed
//! test leaves nothing behind.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::FakeError;

/// How long the daemon may take to print its address before the test fails.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running private `dbus-daemon`, configured like a system bus that
/// allows everything.
#[derive(Debug)]
pub struct PrivateBus {
    child: Child,
    address: String,
    dir: PathBuf,
}

impl PrivateBus {
    /// Starts a daemon and waits (at most ten seconds) for its address.
    ///
    /// Fails with [`FakeError::Daemon`] when `dbus-daemon` is not installed
    /// (Debian package `dbus-daemon`) or does not come up: a test that needs
    /// the bus must fail then, never skip.
    pub fn start() -> Result<Self, FakeError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigil-fake-bluez-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        Self::start_in(dir)
    }

    /// Starts a daemon listening in `dir` (created if needed, removed when
    /// the bus is dropped), so its address is the same every time.
    ///
    /// libdbus reads `DBUS_SYSTEM_BUS_ADDRESS` once per process and keeps
    /// it, so a test binary that wants a fresh daemon per test must bring
    /// each one up at the same address, one after the other.
    pub fn start_in(dir: PathBuf) -> Result<Self, FakeError> {
        // A socket left by a killed predecessor would make the bind fail.
        let _ = std::fs::remove_file(dir.join("bus"));
        std::fs::create_dir_all(&dir).map_err(|e| FakeError::Daemon(format!("temp dir: {e}")))?;
        let config = dir.join("system.conf");
        // A system-type bus (so clients treat it as one) whose policy lets
        // any local user own any name and call anything: it is private to
        // this test, so nothing needs protecting.
        let xml = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"#,
            dir.display()
        );
        std::fs::write(&config, xml).map_err(|e| FakeError::Daemon(format!("config: {e}")))?;

        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .arg("--nopidfile")
            .arg("--print-address=1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                FakeError::Daemon(format!(
                    "cannot run dbus-daemon (Debian package `dbus-daemon`): {e}"
                ))
            })?;

        // Read the address on a helper thread so the wait is bounded even if
        // the daemon hangs without printing anything.
        let stdout = child.stdout.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let line = stdout.map(|out| {
                let mut line = String::new();
                let _ = BufReader::new(out).read_line(&mut line);
                line
            });
            let _ = tx.send(line.unwrap_or_default());
        });
        // The printed address carries the daemon's GUID; libdbus would
        // refuse the next daemon at the same path because of it, so the
        // address handed out is the bare socket path.
        let address = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(line) if !line.trim().is_empty() => format!("unix:path={}/bus", dir.display()),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FakeError::Daemon(format!(
                    "dbus-daemon printed no address within {STARTUP_TIMEOUT:?} ({other:?})"
                )));
            }
        };
        Ok(PrivateBus {
            child,
            address,
            dir,
        })
    }

    /// The bus address, for `DBUS_SYSTEM_BUS_ADDRESS` and for the fake.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

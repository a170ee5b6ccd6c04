//! A throwaway PostgreSQL server for tests and benchmarks, never a shared one.
//!
//! [`PgServer::start`] runs `initdb` in a fresh temporary directory, starts
//! the server on a free loopback port with its socket in that directory, and
//! waits (bounded) until it accepts connections; dropping it stops the server
//! and removes the directory. A small watchdog process does the same when the
//! test process exits without dropping (a `static` server, a kill), so no
//! server outlives its tests.
//!
//! Decisions: it is a crate of its own, not a module under `tests/`, so the
//! ingest service's integration tests and its benchmarks (which cannot share
//! `tests/common`) use the same code, and nothing of it is linked into the
//! service binary. PostgreSQL refuses to run as root, so under root the
//! server binaries run as the `postgres` user that Debian's package creates,
//! through `runuser`, with the temporary directory handed to that user.
//! `fsync=off` by default: a test server's data is disposable. Benchmarks
//! that claim a database figure start one with [`PgServer::start_durable`]
//! instead (PostgreSQL's own defaults: `fsync`, `synchronous_commit` and
//! `full_page_writes` on), since a figure without them is not what an
//! operator runs.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The Debian package that provides the server binaries.
pub const DEBIAN_PACKAGE: &str = "postgresql";

/// How long a server may take to accept its first connection.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a throwaway server could not be had.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No `initdb`/`pg_ctl`/`postgres` found: PostgreSQL is not installed.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under \
         /usr/lib/postgresql/*/bin or on PATH: install the Debian package \
         '{DEBIAN_PACKAGE}' (apt-get install {DEBIAN_PACKAGE}; xtask/test.sh does this as root)"
    )]
    NotInstalled,
    /// Running as root but there is no `postgres` system user to run as.
    #[error(
        "running as root, and PostgreSQL refuses root: no 'postgres' user to run it as \
         (the Debian package '{DEBIAN_PACKAGE}' creates it)"
    )]
    NoPostgresUser,
    /// A server command failed; the text has its output.
    #[error("{0}")]
    Command(String),
    /// File system or process trouble.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server started but a query failed.
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
}

/// A running throwaway server. Stopped, and its directory removed, on drop.
pub struct PgServer {
    dir: Option<TempDir>,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
    // Held open for the watchdog: its end of the pipe closes when this
    // process exits, however it exits.
    watchdog: Option<(Child, ChildStdin)>,
    tls: bool,
    durable: bool,
    profiled: bool,
}

/// Where the server binaries are: the newest `/usr/lib/postgresql/*/bin`
/// holding `initdb`, else the directory of `initdb` on PATH.
pub fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

impl PgServer {
    /// Starts a fresh server. Fails (never skips) with a message naming the
    /// Debian package when PostgreSQL is not installed.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_inner(None, false)
    }

    /// Starts a fresh server with durable settings (every commit flushed to
    /// disk, full-page writes), for benchmarks whose figures must hold for
    /// an operator's server. Slower than [`PgServer::start`].
    pub fn start_durable() -> Result<Self, HarnessError> {
        Self::start_inner(None, true)
    }

    /// [`PgServer::start_durable`] with `pg_stat_statements` loaded and I/O
    /// timing on, so a benchmark can say which statements its database
    /// time goes to (`CREATE EXTENSION pg_stat_statements` in the database
    /// it reads them from). Tracking costs a little CPU per statement.
    pub fn start_durable_profiled() -> Result<Self, HarnessError> {
        Self::start_inner_with(None, true, true)
    }

    /// Whether this server flushes its commits (see [`PgServer::start_durable`]).
    pub fn durable(&self) -> bool {
        self.durable
    }

    /// Starts a fresh server that also accepts TLS (`ssl=on`) with this PEM
    /// certificate chain and key, to test clients that must use TLS.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Result<Self, HarnessError> {
        Self::start_inner(Some((cert_pem, key_pem)), false)
    }

    fn start_inner(tls: Option<(&str, &str)>, durable: bool) -> Result<Self, HarnessError> {
        Self::start_inner_with(tls, durable, false)
    }

    fn start_inner_with(
        tls: Option<(&str, &str)>,
        durable: bool,
        profiled: bool,
    ) -> Result<Self, HarnessError> {
        let bin = find_bin_dir().ok_or(HarnessError::NotInstalled)?;
        if !bin.join("pg_ctl").is_file() || !bin.join("postgres").is_file() {
            return Err(HarnessError::NotInstalled);
        }
        let as_postgres = is_root();
        if as_postgres {
            let known = Command::new("id")
                .arg("postgres")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if !known.success() {
                return Err(HarnessError::NoPostgresUser);
            }
        }
        let dir = tempfile::Builder::new().prefix("vigil-pg-").tempdir()?;
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()))?;
        }
        let mut server = PgServer {
            dir: Some(dir),
            bin,
            as_postgres,
            port: 0,
            watchdog: None,
            tls: false,
            durable,
            profiled,
        };
        server.initdb()?;
        if let Some((cert, key)) = tls {
            server.install_tls(cert, key)?;
        }
        server.watchdog = Some(server.spawnwatchdog()?);
        // A free port can be taken between asking and binding (other tests,
        // other helpers): try a few.
        let mut last = None;
        for _ in 0..5 {
            server.port = free_port()?;
            match server.pg_ctl_start() {
                Ok(()) => {
                    server.wait_ready()?;
                    return Ok(server);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::Command("server did not start".into())))
    }

    fn dir(&self) -> &Path {
        match &self.dir {
            Some(d) => d.path(),
            None => Path::new("/nonexistent"),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir().join("data")
    }

    /// A command running server binary `name`, as `postgres` under root.
    fn tool(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn initdb(&self) -> Result<(), HarnessError> {
        run(self
            .tool("initdb")
            .arg("-D")
            .arg(self.data())
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .arg("--locale=C"))
    }

    fn install_tls(&mut self, cert: &str, key: &str) -> Result<(), HarnessError> {
        use std::os::unix::fs::PermissionsExt;
        let (cert_path, key_path) = (self.dir().join("server.crt"), self.dir().join("server.key"));
        std::fs::write(&cert_path, cert)?;
        std::fs::write(&key_path, key)?;
        // The server refuses a key others can read.
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
        if self.as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(&cert_path)
                .arg(&key_path))?;
        }
        self.tls = true;
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<(), HarnessError> {
        let durability = if self.durable {
            "-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
        } else {
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 {durability} -c max_connections=200",
            self.port,
            quote(self.dir())
        );
        if self.profiled {
            opts.push_str(
                " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c track_io_timing=on",
            );
        }
        if self.tls {
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                quote(&self.dir().join("server.crt")),
                quote(&self.dir().join("server.key"))
            ));
        }
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir().join("server.log"))
            .args([
                "-o",
                &opts,
                "-w",
                "-t",
                &START_TIMEOUT.as_secs().to_string(),
            ])
            .arg("start"))
    }

    fn wait_ready(&self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match postgres::Client::connect(&self.url("postgres"), postgres::NoTls) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e.into()),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn stop_script(&self) -> String {
        let pg_ctl = quote(&self.bin.join("pg_ctl"));
        let runas = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        format!(
            "{runas}{pg_ctl} -D {} -m immediate -w -t 30 stop >/dev/null 2>&1; rm -rf {}",
            quote(&self.data()),
            quote(self.dir())
        )
    }

    fn spawnwatchdog(&self) -> Result<(Child, ChildStdin), HarnessError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("cat >/dev/null; {}", self.stop_script()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| HarnessError::Command("watchdog has no stdin".into()))?;
        Ok((child, stdin))
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for database `db` as the superuser, over TCP on
    /// loopback (no password: the throwaway cluster trusts loopback).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a new, empty database with a unique name and returns its URL:
    /// one per test keeps tests independent on one server.
    pub fn fresh_database(&self) -> Result<String, HarnessError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "vigil_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)?;
        admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    /// The postmaster's process id, from the first line of its
    /// `postmaster.pid`: benchmarks add up the server's CPU time (the
    /// postmaster and its backends) beside the client's.
    pub fn postmaster_pid(&self) -> Result<u32, HarnessError> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid"))?;
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| HarnessError::Command("postmaster.pid has no process id".into()))
    }

    /// The server's log so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(self.stop_script())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some((mut child, mut stdin)) = self.watchdog.take() {
            let _ = stdin.write_all(b"");
            drop(stdin);
            let _ = child.wait();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

fn run(cmd: &mut Command) -> Result<(), HarnessError> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::Command(format!(
            "{:?} failed ({}): {}{}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_server_starts_answers_and_is_gone_after_drop() {
        let server = PgServer::start().unwrap_or_else(|e| panic!("{e}"));
        let url = server.fresh_database().unwrap();
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1);
        drop(c);
        let dir = server.dir().to_owned();
        let port = server.port();
        drop(server);
        assert!(!dir.exists(), "the data directory is removed");
        assert!(
            postgres::Client::connect(
                &format!("postgres://postgres@127.0.0.1:{port}/postgres?connect_timeout=2"),
                postgres::NoTls
            )
            .is_err(),
            "the server is stopped"
        );
    }
}

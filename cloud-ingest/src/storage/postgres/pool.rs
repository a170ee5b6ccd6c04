//! Connections to PostgreSQL: the parsed target with its TLS choice, and a
//! bounded r2d2 pool of blocking clients, each with its prepared statements
//! ([`Conn`]).

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::{Client, Config, NoTls};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conn::Conn;
use crate::error::{Error, Result};

/// Connections a replica opens at most. The blocking pool runs many more
/// threads; beyond this they queue for a connection.
pub const POOL_SIZE: u32 = 16;

/// How long a call waits for a free connection before failing.
pub const POOL_WAIT: Duration = Duration::from_secs(10);

/// How connections are made: plain on loopback, rustls elsewhere.
#[derive(Clone)]
pub enum Connector {
    /// Loopback host or Unix socket: no TLS.
    Plain,
    /// Any other host: TLS required.
    Tls(MakeRustlsConnect),
}

/// A parsed database URL and its connector: everything needed to open one
/// more connection (the pool, the LISTEN thread).
#[derive(Clone)]
pub struct Target {
    config: Config,
    connector: Connector,
}

impl Target {
    /// Parses a `postgres://` URL and picks the connector. Off loopback, TLS
    /// is required; `sslmode=disable` there is refused.
    pub fn parse(url: &str) -> Result<Self> {
        let mut config =
            Config::from_str(url).map_err(|e| Error::Config(format!("bad PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("vigil-ingest");
        }
        let connector = if all_loopback(config.get_hosts()) {
            Connector::Plain
        } else {
            if config.get_ssl_mode() == SslMode::Disable {
                return Err(Error::Config(
                    "sslmode=disable is refused for a PostgreSQL host off loopback".into(),
                ));
            }
            config.ssl_mode(SslMode::Require);
            Connector::Tls(MakeRustlsConnect::new(tls_config()?))
        };
        Ok(Self { config, connector })
    }

    /// Whether connections use TLS.
    pub fn uses_tls(&self) -> bool {
        matches!(self.connector, Connector::Tls(_))
    }

    /// Opens one new connection.
    pub fn connect(&self) -> Result<Client> {
        Self::connect_with(&self.config, &self.connector)
    }

    /// Opens one new connection that names itself `application_name` in
    /// `pg_stat_activity` (operators can tell the LISTEN connection apart).
    pub fn connect_as(&self, application_name: &str) -> Result<Client> {
        let mut config = self.config.clone();
        config.application_name(application_name);
        Self::connect_with(&config, &self.connector)
    }

    fn connect_with(config: &Config, connector: &Connector) -> Result<Client> {
        Ok(match connector {
            Connector::Plain => config.connect(NoTls)?,
            Connector::Tls(tls) => config.connect(tls.clone())?,
        })
    }
}

fn all_loopback(hosts: &[Host]) -> bool {
    !hosts.is_empty()
        && hosts.iter().all(|h| match h {
            Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .trim_matches(|c| c == '[' || c == ']')
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            #[cfg(unix)]
            Host::Unix(_) => true,
        })
}

fn tls_config() -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = std::env::var_os("VIGIL_DATABASE_CA") {
        for cert in CertificateDer::pem_file_iter(&path)
            .map_err(|e| Error::Config(format!("reading VIGIL_DATABASE_CA: {e}")))?
        {
            let cert = cert.map_err(|e| Error::Config(format!("VIGIL_DATABASE_CA: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::Config(format!("VIGIL_DATABASE_CA: {e}")))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Config(format!("TLS configuration: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Opens connections for r2d2 and tells it which are broken.
pub struct Manager(Target);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = Error;

    fn connect(&self) -> Result<Conn> {
        Ok(Conn::new(self.0.connect()?))
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<()> {
        conn.simple_query("")?;
        Ok(())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.is_closed()
    }
}

/// A bounded pool of blocking connections to one [`Target`].
pub struct Pool {
    target: Target,
    // Always `Some` until drop, which hands it to a plain thread.
    inner: Option<r2d2::Pool<Manager>>,
}

/// A connection borrowed from the [`Pool`]; returned on drop unless broken.
pub type Pooled = r2d2::PooledConnection<Manager>;

impl Pool {
    /// A pool of at most `max` connections to `target`; opens none yet (the
    /// first call connects, so a server that is down fails that call with
    /// its own error rather than the constructor with a timeout).
    pub fn new(target: Target, max: u32) -> Self {
        let inner = r2d2::Pool::builder()
            .max_size(max.max(1))
            .min_idle(Some(0))
            // A checkout costs no round trip: a connection the server closed
            // shows as closed and is dropped, and the failed call's error
            // reaches its caller like any other database error.
            .test_on_check_out(false)
            .connection_timeout(POOL_WAIT)
            .error_handler(Box::new(LogConnectError))
            .build_unchecked(Manager(target.clone()));
        Self {
            target,
            inner: Some(inner),
        }
    }

    /// The target the pool connects to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A connection: an idle one, a new one while under the limit, or the
    /// next one returned within [`POOL_WAIT`].
    pub fn get(&self) -> Result<Pooled> {
        let Some(pool) = &self.inner else {
            return Err(Error::Postgres("the connection pool is closed".into()));
        };
        pool.get().map_err(|e| {
            Error::Postgres(format!("no database connection within the pool wait ({e})"))
        })
    }
}

/// Logs a failed connection attempt through `tracing` (r2d2's own handler
/// writes to the `log` facade, which this service does not collect). The
/// error is the driver's, naming no credentials.
#[derive(Debug)]
struct LogConnectError;

impl r2d2::HandleError<Error> for LogConnectError {
    fn handle_error(&self, error: Error) {
        tracing::warn!(%error, "PostgreSQL connection attempt failed");
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing a blocking client runs its own small runtime, which tokio
        // forbids on an async worker thread (where the last `Store` clone is
        // often dropped, at shutdown). Drop the pool on a plain thread.
        if let Some(pool) = self.inner.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_connect_plainly_and_others_require_tls() {
        for url in [
            "postgres://u@127.0.0.1:5/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5/db",
            "postgresql://u@%2Ftmp%2Fpg/db",
        ] {
            assert!(!Target::parse(url).unwrap().uses_tls(), "{url}");
        }
        for url in ["postgres://u@db.example.org/db", "postgres://u@10.0.0.5/db"] {
            assert!(Target::parse(url).unwrap().uses_tls(), "{url}");
        }
        assert!(matches!(
            Target::parse("postgres://u@db.example.org/db?sslmode=disable"),
            Err(Error::Config(_))
        ));
    }
}

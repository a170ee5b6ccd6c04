//! Binding the service to a socket: plain HTTP on loopback (or behind a
//! TLS-terminating proxy, said explicitly), or HTTPS with rustls.
//!
//! Decisions: plain HTTP on a non-loopback address is refused unless the
//! operator passes `--insecure-behind-proxy`, because bearer tokens and
//! patient data must never cross a network in clear by accident. TLS uses
//! rustls with the ring provider, so the binary links no OpenSSL and builds
//! without a C crypto toolchain beyond ring's own.
//!
//! Connections are bounded before any request exists, since a client needs
//! no token to open one: a header must arrive within
//! [`ConnectionLimits::header_read_timeout`] (which also ends a keep-alive
//! connection idle that long), and beyond [`ConnectionLimits::per_client`]
//! open connections from one address, or [`ConnectionLimits::total`] in
//! all, a new connection is closed at accept. So one anonymous client
//! holding many slow connections cannot take the file descriptors that
//! `/healthz` and everyone else need.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};
use crate::{ServiceState, app};

/// How long the HTTPS listener waits for in-flight requests after a
/// shutdown signal before closing its connections (open live-alert streams
/// never finish by themselves).
pub const TLS_DRAIN: Duration = Duration::from_secs(30);

/// Certificate chain and private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Bounds on connections, applied before any request is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest wait for a request's headers, counted from when the
    /// connection is ready for one (so also the keep-alive idle timeout).
    pub header_read_timeout: Duration,
    /// Most open connections in all; more are closed at accept.
    pub total: usize,
    /// Most open connections from one client address.
    pub per_client: usize,
}

impl Default for ConnectionLimits {
    /// 10 s for headers or idleness, 4,096 connections (below a typical
    /// 8,192 descriptor limit, leaving room for the database and files),
    /// 128 per client address (a NAT of phones shares one address).
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            total: 4096,
            per_client: 128,
        }
    }
}

/// Open connections, in all and per client address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// Counts open connections against [`ConnectionLimits`]; a slot is given
/// back when its [`Slot`] drops.
#[derive(Debug, Clone)]
pub struct ConnectionGate {
    limits: ConnectionLimits,
    open: Arc<std::sync::Mutex<Open>>,
}

/// One admitted connection.
#[derive(Debug)]
pub struct Slot {
    gate: ConnectionGate,
    client: IpAddr,
}

impl ConnectionGate {
    /// A gate with nothing open.
    pub fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            open: Arc::default(),
        }
    }

    /// Admits a connection from `client`, or `None` when it would pass a
    /// limit.
    pub fn admit(&self, client: IpAddr) -> Option<Slot> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mine = open.by_client.get(&client).copied().unwrap_or(0);
        if open.total >= self.limits.total || mine >= self.limits.per_client {
            return None;
        }
        open.total += 1;
        open.by_client.insert(client, mine + 1);
        Some(Slot {
            gate: self.clone(),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .gate
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

/// Where and how to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Address to bind (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Serve HTTPS with these files; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Allow plain HTTP off loopback (a proxy terminates TLS in front).
    pub insecure_behind_proxy: bool,
    /// Bounds on connections.
    pub connections: ConnectionLimits,
}

/// Ok unless the options would serve plain HTTP on a non-loopback address
/// without `insecure_behind_proxy`.
pub fn check_listen(opts: &ServeOptions) -> Result<()> {
    if opts.tls.is_none() && !opts.listen.ip().is_loopback() && !opts.insecure_behind_proxy {
        return Err(Error::Config(format!(
            "refusing plain HTTP on non-loopback address {}: give --tls-cert/--tls-key, \
             or --insecure-behind-proxy if a TLS proxy fronts this service",
            opts.listen
        )));
    }
    Ok(())
}

fn rustls_config(files: &TlsFiles) -> Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Config(format!("reading --tls-cert: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config("--tls-cert holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| Error::Config(format!("reading --tls-key: {e}")))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| Error::Config(format!("TLS configuration: {e}")))
}

/// Serves `app(state)` until `shutdown` resolves, then stops accepting and
/// finishes in-flight requests. `on_bound` is told the bound address (and
/// whether it is TLS) once the socket listens. Refuses unsafe options
/// ([`check_listen`]) before binding anything.
pub async fn serve(
    state: ServiceState,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr, bool),
) -> Result<()> {
    check_listen(&opts)?;
    // The webhook worker lives as long as the listener. A delivery cut off
    // by shutdown stays due in the queue and goes at the next start.
    let worker = crate::webhooks::dispatch::Dispatcher::new(
        state.store.clone(),
        crate::webhooks::dispatch::RetryPolicy::default(),
        Arc::clone(&state.webhook_wake),
    )?;
    let worker = tokio::spawn(worker.run(std::future::pending()));
    let result = serve_router(state, opts, shutdown, on_bound).await;
    worker.abort();
    result
}

async fn serve_router(
    state: ServiceState,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr, bool),
) -> Result<()> {
    let router = app(state);
    match &opts.tls {
        None => {
            let listener = tokio::net::TcpListener::bind(opts.listen).await?;
            on_bound(listener.local_addr()?, false);
            serve_plain(listener, router, opts.connections, shutdown).await;
        }
        Some(files) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(rustls_config(files)?));
            let listener = tokio::net::TcpListener::bind(opts.listen).await?;
            on_bound(listener.local_addr()?, true);
            serve_connections(listener, router, opts.connections, shutdown, Some(acceptor)).await;
        }
    }
    Ok(())
}

/// Serves `router` over plain HTTP/1.1 on `listener` within `limits` until
/// `shutdown` resolves, then stops accepting and lets open connections
/// finish their requests. Public so tests and benchmarks serve exactly
/// what `serve` does.
pub async fn serve_plain(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    serve_connections(listener, router, limits, shutdown, None).await;
}

/// The HTTPS twin of [`serve_plain`]: the same connection limits, counted
/// from the moment a connection is accepted (before its handshake), and a
/// TLS handshake bounded by the header-read timeout, so a client that opens
/// connections and never finishes a handshake holds no more than its share.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    tls: Arc<rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    serve_connections(listener, router, limits, shutdown, Some(acceptor)).await;
}

async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let gate = ConnectionGate::new(limits);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut refused: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a reset before accept: wait a
                    // moment rather than spin, then go on serving.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = gate.admit(peer.ip()) else {
            refused += 1;
            // Closed at once; counted, logged now and then, never per
            // connection (that would let a client flood the log).
            if refused.is_power_of_two() {
                tracing::warn!(refused, "connections refused at the connection limits");
            }
            drop(stream);
            continue;
        };
        // Handlers see the client's address (failed-authentication
        // throttling is keyed by it).
        let with_peer = tower::ServiceExt::map_request(
            router.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        );
        let service = TowerToHyperService::new(with_peer);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            // No route upgrades a connection (SSE is a plain response). A
            // client that vanishes or times out ends its connection; that
            // is not the service's failure.
            let ended = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                            .await;
                    match handshake {
                        Ok(Ok(tls_stream)) => {
                            let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                            watcher.watch(conn).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tls.is_some() {
        if tokio::time::timeout(TLS_DRAIN, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::info!("connections still open after the drain period: closed");
        }
    } else {
        graceful.shutdown().await;
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM: the signals an operator or a
/// container runtime sends to stop the service.
///
/// The handlers are installed by this call, not at the future's first
/// poll: a SIGTERM that lands while the server is still starting (just
/// after it printed its address) must stop it gracefully, not kill it.
/// Call it inside the runtime that will poll the future.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>, name: &'static str| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for {name}");
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                () = wait(interrupt, "Ctrl-C") => {},
                () = wait(term, "SIGTERM") => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown signal received; finishing in-flight requests");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(listen: &str, tls: bool, insecure: bool) -> ServeOptions {
        ServeOptions {
            listen: listen.parse().unwrap(),
            tls: tls.then(|| TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into(),
            }),
            insecure_behind_proxy: insecure,
            connections: ConnectionLimits::default(),
        }
    }

    #[test]
    fn plain_http_is_refused_off_loopback_unless_said_to_be_behind_a_proxy() {
        assert!(check_listen(&opts("127.0.0.1:8080", false, false)).is_ok());
        assert!(check_listen(&opts("[::1]:8080", false, false)).is_ok());
        assert!(check_listen(&opts("0.0.0.0:8080", false, false)).is_err());
        assert!(check_listen(&opts("10.1.2.3:8080", false, false)).is_err());
        assert!(check_listen(&opts("[::]:8080", false, false)).is_err());
        assert!(check_listen(&opts("0.0.0.0:8080", false, true)).is_ok());
        assert!(check_listen(&opts("0.0.0.0:8443", true, false)).is_ok());
    }

    #[test]
    fn the_gate_admits_up_to_each_limit_and_frees_a_slot_on_drop() {
        let gate = ConnectionGate::new(ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            total: 3,
            per_client: 2,
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert!(gate.admit(a).is_none(), "per client");
        let _b1 = gate.admit(b).unwrap();
        assert!(gate.admit(b).is_none(), "in all");
        drop(a1);
        assert!(gate.admit(a).is_some());
    }
}

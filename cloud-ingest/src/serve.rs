//! Binding the service to a socket: plain HTTP on loopback (or behind a
//! TLS-terminating proxy, said explicitly), or HTTPS with rustls.
//!
//! Decisions: plain HTTP on a non-loopback address is refused unless the
//! operator passes `--insecure-behind-proxy`, because bearer tokens and
//! patient data must never cross a network in clear by accident. TLS uses
//! rustls with the ring provider, so the binary links no OpenSSL and builds
//! without a C crypto toolchain beyond ring's own.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};
use crate::{AppState, app};

/// How long a TLS server waits for in-flight requests after a shutdown
/// signal before closing connections.
pub const TLS_DRAIN: Duration = Duration::from_secs(30);

/// Certificate chain and private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
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
    state: AppState,
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
    state: AppState,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr, bool),
) -> Result<()> {
    let router = app(state);
    match &opts.tls {
        None => {
            let listener = tokio::net::TcpListener::bind(opts.listen).await?;
            on_bound(listener.local_addr()?, false);
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
        Some(files) => {
            let config =
                axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(rustls_config(files)?));
            let listener = std::net::TcpListener::bind(opts.listen)?;
            listener.set_nonblocking(true)?;
            let addr = listener.local_addr()?;
            let handle = axum_server::Handle::new();
            let trigger = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                trigger.graceful_shutdown(Some(TLS_DRAIN));
            });
            on_bound(addr, true);
            axum_server::from_tcp_rustls(listener, config)
                .handle(handle)
                .serve(router.into_make_service())
                .await?;
        }
    }
    Ok(())
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
}

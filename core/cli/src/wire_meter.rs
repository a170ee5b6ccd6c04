//! A byte meter on the wire: a loopback TCP relay in front of the ingest
//! service that counts every byte each way, so `vigil reduction-check`
//! reports what a phone really sends and receives per patient-day, HTTP
//! request lines, headers (the bearer token included) and responses
//! included, not body bytes alone.
//!
//! Plain HTTP on loopback: off loopback TLS adds its record overhead and
//! handshakes on top, to Vigil and to the uploader it is compared with
//! alike.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Byte counts of everything relayed so far.
#[derive(Debug, Default)]
pub struct Counts {
    /// Client to server.
    pub up: AtomicU64,
    /// Server to client.
    pub down: AtomicU64,
    /// TCP connections opened by clients.
    pub connections: AtomicU64,
}

impl Counts {
    /// Bytes both ways.
    pub fn total(&self) -> u64 {
        self.up.load(Ordering::Relaxed) + self.down.load(Ordering::Relaxed)
    }
}

/// A running relay.
pub struct Meter {
    /// Where clients connect instead of the service.
    pub addr: SocketAddr,
    /// What went through.
    pub counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a relay to `target` on a free loopback port.
pub async fn start(target: SocketAddr) -> std::io::Result<Meter> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            c.connections.fetch_add(1, Ordering::Relaxed);
            let c = c.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(target).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = pump(cr, sw, c.clone(), true);
                let down = pump(sr, cw, c, false);
                let _ = tokio::join!(up, down);
            });
        }
    });
    Ok(Meter { addr, counts, task })
}

async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    counts: Arc<Counts>,
    up: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let counter = if up { &counts.up } else { &counts.down };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        let Some(chunk) = buf.get(..n) else { break };
        if to.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

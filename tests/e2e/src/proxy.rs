//! A fault-injecting HTTP/1.1 proxy at the TCP level, for putting between
//! SDK cores and the ingest service.
//!
//! It reads each request whole (headers and a `Content-Length` body) from
//! the client, then, by a seeded dice roll per request:
//!
//! - **drop**: closes the client connection; the server never sees it;
//! - **duplicate**: sends the request to the server twice (two upstream
//!   connections, one after the other) and answers the client with the
//!   second answer, as a retransmitting network would;
//! - **cut**: sends it to the server, reads the whole answer (the server
//!   has committed), and closes the client connection without it: the
//!   acknowledgement is lost.
//!
//! Otherwise the request and its answer pass unchanged. Faults can be
//! changed while the proxy runs ([`FaultProxy::set_faults`]), and every
//! decision is counted ([`FaultProxy::stats`]), so a test can assert that
//! the faults it asked for really happened.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Probabilities (0-1) of each fault per request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Close the client connection before forwarding.
    pub drop: f64,
    /// Forward twice; answer with the second answer.
    pub duplicate: f64,
    /// Forward, read the answer, close without answering.
    pub cut_response: f64,
}

/// Counts of what the proxy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Requests read whole from clients.
    pub requests: u64,
    /// Requests dropped before the server.
    pub dropped: u64,
    /// Requests sent twice.
    pub duplicated: u64,
    /// Answers withheld after the server answered.
    pub cut: u64,
    /// Requests the server received (duplicates count twice).
    pub forwarded: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    cut: AtomicU64,
    forwarded: AtomicU64,
}

struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    rng: Mutex<ChaCha8Rng>,
    counters: Counters,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (an ephemeral port) and forwards to `upstream`
    /// with `faults`, drawing decisions from `seed`.
    pub async fn start(upstream: SocketAddr, faults: Faults, seed: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(faults),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            counters: Counters::default(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve_client(client, s.clone()));
            }
        });
        Ok(FaultProxy { addr, shared, task })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the fault probabilities (for the next requests).
    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut f) = self.shared.faults.lock() {
            *f = faults;
        }
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            requests: c.requests.load(Ordering::SeqCst),
            dropped: c.dropped.load(Ordering::SeqCst),
            duplicated: c.duplicated.load(Ordering::SeqCst),
            cut: c.cut.load(Ordering::SeqCst),
            forwarded: c.forwarded.load(Ordering::SeqCst),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Fate {
    Pass,
    Drop,
    Duplicate,
    Cut,
}

fn roll(shared: &Shared) -> Fate {
    let faults = shared.faults.lock().map(|f| *f).unwrap_or_default();
    let Ok(mut rng) = shared.rng.lock() else {
        return Fate::Pass;
    };
    let x: f64 = rng.random();
    if x < faults.drop {
        Fate::Drop
    } else if x < faults.drop + faults.duplicate {
        Fate::Duplicate
    } else if x < faults.drop + faults.duplicate + faults.cut_response {
        Fate::Cut
    } else {
        Fate::Pass
    }
}

async fn serve_client(mut client: TcpStream, shared: Arc<Shared>) {
    let mut pending = Vec::new();
    loop {
        let Some(request) = read_message(&mut client, &mut pending, false).await else {
            return;
        };
        let c = &shared.counters;
        c.requests.fetch_add(1, Ordering::SeqCst);
        let fate = roll(&shared);
        if fate == Fate::Drop {
            c.dropped.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let Some(mut answer) = forward(&shared, &request).await else {
            return;
        };
        if fate == Fate::Duplicate {
            c.duplicated.fetch_add(1, Ordering::SeqCst);
            match forward(&shared, &request).await {
                Some(second) => answer = second,
                None => return,
            }
        }
        if fate == Fate::Cut {
            c.cut.fetch_add(1, Ordering::SeqCst);
            return;
        }
        if client.write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// Sends one request on a fresh upstream connection and reads its answer.
async fn forward(shared: &Shared, request: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(shared.upstream).await.ok()?;
    up.write_all(request).await.ok()?;
    shared.counters.forwarded.fetch_add(1, Ordering::SeqCst);
    let mut pending = Vec::new();
    read_message(&mut up, &mut pending, true).await
}

/// Reads one HTTP/1.1 message (headers, then a `Content-Length` or chunked
/// body; an answer with neither runs to end of stream). `pending` carries
/// bytes read past the message for the next call.
async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    pending: &mut Vec<u8>,
    is_response: bool,
) -> Option<Vec<u8>> {
    let mut buf = [0u8; 16 * 1024];
    let header_end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        pending.extend_from_slice(buf.get(..n)?);
    };
    let head = String::from_utf8_lossy(pending.get(..header_end)?).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    // 1xx, 204 and 304 answers have no body whatever their headers say
    // (RFC 9112 §6.3); reading one "to end of stream" would wait for the
    // server to close a keep-alive connection.
    let bodiless = is_response
        && head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .is_some_and(|code| (100..200).contains(&code) || code == 204 || code == 304);
    let total = if bodiless {
        header_end
    } else if let Some(len) = header("content-length:") {
        header_end + len.parse::<usize>().ok()?
    } else if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        loop {
            if let Some(end) = chunked_end(pending.get(header_end..)?) {
                break header_end + end;
            }
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            pending.extend_from_slice(buf.get(..n)?);
        }
    } else if is_response {
        loop {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                break pending.len();
            }
            pending.extend_from_slice(buf.get(..n)?);
        }
    } else {
        header_end
    };
    while pending.len() < total {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        pending.extend_from_slice(buf.get(..n)?);
    }
    let rest = pending.split_off(total);
    Some(std::mem::replace(pending, rest))
}

/// Where a complete chunked body ends in `body`, if it is complete.
fn chunked_end(body: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    loop {
        let line_end = at + body.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(body.get(at..line_end)?).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailers end with an empty line.
            let end = at + body.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
            if end == at {
                return Some(at + 2);
            }
            at = end + 2;
            continue;
        }
        at = at.checked_add(size)?.checked_add(2)?;
        if at > body.len() {
            return None;
        }
    }
}

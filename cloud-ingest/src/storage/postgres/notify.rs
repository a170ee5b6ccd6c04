//! Live events between replicas over PostgreSQL's LISTEN/NOTIFY: the wire
//! under the PostgreSQL fan-out, so a clinician connected to replica A sees
//! an alert posted to replica B.
//!
//! Decisions:
//! - [`publish`] is `pg_notify` on the caller's connection, meant to run in
//!   the same transaction as the write it announces: PostgreSQL delivers a
//!   notification only when that transaction commits, so no replica hears
//!   of an alert that was rolled back, and none hears of it before it can
//!   be read.
//! - Each process runs one [`Listener`]: a dedicated thread with its own
//!   connection (outside the pool), which hands every payload to a callback
//!   (the process's local live bus). The publishing process hears its own
//!   notification through its listener too, so a publisher must *not* also
//!   feed its local bus directly: every replica delivers each event once.
//! - On a lost connection the thread reconnects with capped backoff and
//!   LISTENs again. Events published while it is away are not replayed
//!   (NOTIFY is not a queue); they are stored, and clients catch up through
//!   the read API. [`Listener::reconnects`] counts these gaps.
//! - Payloads are text under PostgreSQL's 8000-byte limit; [`publish`]
//!   refuses a larger one rather than let the server fail the transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::GenericClient;
use postgres::fallible_iterator::FallibleIterator;

use super::{Pool, Target};
use crate::error::{Error, Result};

/// The channel every replica LISTENs on.
pub const CHANNEL: &str = "vigil_live";

/// Largest payload [`publish`] accepts (PostgreSQL's limit is 8000 bytes
/// including the channel name).
pub const MAX_PAYLOAD: usize = 7900;

/// The `application_name` of the listening connection.
pub const LISTENER_APPLICATION_NAME: &str = "vigil-ingest-listen";

/// How long the listener waits between checks of its stop flag.
const POLL: Duration = Duration::from_millis(250);

/// Announces `payload` to every replica's [`Listener`], on commit of the
/// transaction `conn` is in (at once when it is in none).
pub fn publish(conn: &mut impl GenericClient, payload: &str) -> Result<()> {
    if payload.len() > MAX_PAYLOAD {
        return Err(Error::InvalidInput(format!(
            "live event of {} bytes exceeds the {MAX_PAYLOAD}-byte NOTIFY limit",
            payload.len()
        )));
    }
    conn.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])?;
    Ok(())
}

/// Connections a [`PgFanout`] keeps for publishing.
const PUBLISH_POOL: u32 = 2;

/// One replica's end of the fan-out: publishes events to every replica and
/// hears every replica's events (its own included) through one
/// [`Listener`]. The live bus plugs in as `deliver`; it must not also be fed
/// locally by the publisher, or local clients would see events twice.
pub struct PgFanout {
    publisher: Pool,
    listener: Listener,
}

impl PgFanout {
    /// Starts listening and readies a small publishing pool.
    pub fn start(target: Target, deliver: impl Fn(String) + Send + 'static) -> Result<Self> {
        Ok(Self {
            publisher: Pool::new(target.clone(), PUBLISH_POOL),
            listener: Listener::spawn(target, deliver)?,
        })
    }

    /// Publishes an event that is already committed (blocking: call it from
    /// the blocking pool). Every replica's `deliver` gets it once, unless
    /// its listener is reconnecting at that moment.
    pub fn publish(&self, payload: &str) -> Result<()> {
        publish(&mut **self.publisher.get()?, payload)
    }

    /// The listener, for its reconnect count.
    pub fn listener(&self) -> &Listener {
        &self.listener
    }
}

/// The process's one LISTEN connection, on its own thread. Stops (and
/// joins its thread, bounded by the poll interval) on drop.
pub struct Listener {
    stop: Arc<AtomicBool>,
    reconnects: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Starts listening on [`CHANNEL`]; `deliver` gets every payload, in
    /// the order PostgreSQL sends them, on the listener's thread.
    pub fn spawn(target: Target, deliver: impl Fn(String) + Send + 'static) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let reconnects = Arc::new(AtomicU64::new(0));
        let thread = std::thread::Builder::new()
            .name("pg-listen".into())
            .spawn({
                let stop = Arc::clone(&stop);
                let reconnects = Arc::clone(&reconnects);
                move || run(&target, &deliver, &stop, &reconnects)
            })?;
        Ok(Self {
            stop,
            reconnects,
            thread: Some(thread),
        })
    }

    /// How many times the connection was lost and made again.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(target: &Target, deliver: &dyn Fn(String), stop: &AtomicBool, reconnects: &AtomicU64) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        match listen_until_lost(target, deliver, stop, &mut backoff, &mut first, reconnects) {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "live LISTEN connection lost; reconnecting");
            }
        }
        // Sleep in short steps so a stop is noticed quickly.
        let mut slept = Duration::ZERO;
        while slept < backoff && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(POLL.min(backoff));
            slept += POLL.min(backoff);
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Ok when asked to stop; Err when the connection failed.
fn listen_until_lost(
    target: &Target,
    deliver: &dyn Fn(String),
    stop: &AtomicBool,
    backoff: &mut Duration,
    first: &mut bool,
    reconnects: &AtomicU64,
) -> Result<()> {
    let mut client = target.connect_as(LISTENER_APPLICATION_NAME)?;
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    if !*first {
        reconnects.fetch_add(1, Ordering::Relaxed);
        tracing::info!("live LISTEN connection restored");
    }
    *first = false;
    *backoff = Duration::from_millis(100);
    while !stop.load(Ordering::Relaxed) {
        {
            let mut notifications = client.notifications();
            let mut batch = notifications.timeout_iter(POLL);
            while let Some(n) = batch.next()? {
                deliver(n.payload().to_owned());
            }
        }
        if client.is_closed() {
            return Err(Error::Postgres("LISTEN connection closed".into()));
        }
    }
    Ok(())
}

/// The live-alert [`crate::live::Fanout`] for replicas over one PostgreSQL:
/// each event goes out as `pg_notify` (its JSON: ids, kind, phase, time and
/// the glucose value, a few hundred bytes, all of which the database holds
/// anyway), and this replica's [`Listener`] feeds every event from every
/// replica, its own included, into the local bus exactly once.
///
/// `publish` is called from async handlers, and the PostgreSQL client
/// blocks; so it only queues the payload for one publishing thread, which
/// keeps events in the order they were committed by this replica.
pub struct PgLiveFanout {
    queue: std::sync::Mutex<std::sync::mpsc::Sender<String>>,
    _fanout: Arc<PgFanout>,
}

impl PgLiveFanout {
    /// Starts the listener (feeding `bus`) and the publishing thread.
    pub fn start(target: Target, bus: crate::live::LiveBus) -> Result<Self> {
        let fanout = Arc::new(PgFanout::start(
            target,
            move |payload| match serde_json::from_str::<crate::live::LiveEvent>(&payload) {
                Ok(event) => bus.deliver(event),
                Err(e) => tracing::error!(error = %e, "unreadable live event from PostgreSQL"),
            },
        )?);
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let publisher = Arc::clone(&fanout);
        std::thread::Builder::new()
            .name("pg-publish".into())
            .spawn(move || {
                for payload in rx {
                    if let Err(e) = publisher.publish(&payload) {
                        tracing::error!(error = %e, "live event not published to PostgreSQL");
                    }
                }
            })?;
        Ok(Self {
            queue: std::sync::Mutex::new(tx),
            _fanout: fanout,
        })
    }
}

impl crate::live::Fanout for PgLiveFanout {
    fn publish(&self, event: &crate::live::LiveEvent) -> Result<()> {
        let payload = serde_json::to_string(event)
            .map_err(|e| Error::Internal(format!("live event: {e}")))?;
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::InvalidInput(format!(
                "live event of {} bytes exceeds the {MAX_PAYLOAD}-byte NOTIFY limit",
                payload.len()
            )));
        }
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(payload)
            .map_err(|_| Error::Internal("the PostgreSQL publishing thread stopped".into()))
    }
}

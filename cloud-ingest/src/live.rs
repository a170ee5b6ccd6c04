//! Live events: alert starts, ends and acknowledgements, pushed to SSE
//! clients as they happen.
//!
//! Decision: every publish goes through a [`Fanout`], and every SSE client
//! reads the process-local [`LiveBus`]. One replica uses [`LocalFanout`],
//! which feeds the bus directly; several replicas over one PostgreSQL use a
//! fan-out that sends the event to every replica (e.g. `pg_notify`) whose
//! listener feeds each replica's bus, so a clinician connected to replica A
//! sees an alert posted to replica B. Callers publish only after the event
//! is committed, and only when it was new.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::domain::PatientId;
use crate::error::Result;

/// How many events a slow SSE client may fall behind before it misses
/// some (it is told with a `lagged` event and can re-read the history).
pub const BUS_CAPACITY: usize = 1024;

/// One live event, as SSE clients receive it (the `data:` JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveEvent {
    /// `alert` (an alert event was stored) or `ack` (a clinician
    /// acknowledged an alert episode).
    pub event: String,
    /// Whose alert.
    pub patient: PatientId,
    /// The episode's stable id.
    pub alert_id: String,
    /// The alert's kind (`urgent_low`, ..., `app_silent`).
    pub kind: String,
    /// `start`, `realert`, `end`; `ack` for an acknowledgement.
    pub phase: String,
    /// When it happened (the acknowledgement's time for `ack`).
    pub time: chrono::DateTime<chrono::Utc>,
    /// The glucose behind it, mg/dL, when any.
    pub value: Option<f64>,
    /// The acknowledging token's id, for `ack`.
    pub by_token: Option<i64>,
}

/// The process-local bus every SSE client subscribes to.
#[derive(Clone)]
pub struct LiveBus {
    tx: broadcast::Sender<LiveEvent>,
}

impl Default for LiveBus {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(BUS_CAPACITY);
        Self { tx }
    }
}

impl LiveBus {
    /// Delivers to every current subscriber of this process (none is fine).
    pub fn deliver(&self, event: LiveEvent) {
        // An error only means nobody is listening right now.
        let _ = self.tx.send(event);
    }

    /// A new subscription: events delivered from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }
}

/// Where published events go: this process only, or every replica.
pub trait Fanout: Send + Sync {
    /// Sends a committed, new event to every SSE client that may see it.
    fn publish(&self, event: &LiveEvent) -> Result<()>;
}

/// The single-replica fan-out: straight onto the local bus.
pub struct LocalFanout {
    bus: LiveBus,
}

impl LocalFanout {
    /// A fan-out feeding `bus`.
    pub fn new(bus: LiveBus) -> Self {
        Self { bus }
    }
}

impl Fanout for LocalFanout {
    fn publish(&self, event: &LiveEvent) -> Result<()> {
        self.bus.deliver(event.clone());
        Ok(())
    }
}

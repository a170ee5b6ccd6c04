//! The alert outbox: alerts waiting to reach the cloud.
//!
//! Place in the data flow: the alert engine raises an alert on a raw reading
//! and enqueues it here before (or while) the host's local callback fires;
//! sync posts pending alerts at once over any network and marks them
//! delivered when the server acknowledged. Rows are kept independent of the
//! alert engine's types (an opaque JSON payload plus the fields the buffer
//! needs), so the engine can evolve without a schema change. The capacity
//! policy never evicts the outbox.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Buffer, from_micros, to_micros};
use crate::error::Result;

/// One alert phase (raised, re-alerted, cleared, ...) awaiting delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxAlert {
    /// The alert's identifier, stable across its phases.
    pub id: String,
    /// Rule that raised it (e.g. `"urgent_low"`).
    pub kind: String,
    /// Phase of the alert's life this row reports (e.g. `"raised"`).
    pub phase: String,
    /// When the phase happened.
    pub time: DateTime<Utc>,
    /// The triggering value in the stream's canonical unit, if any.
    pub value: Option<f64>,
    /// The engine's full alert, serialised (opaque to the buffer).
    pub payload: Vec<u8>,
}

impl Buffer {
    /// Enqueues `alert` durably. Idempotent by (id, phase, time), the
    /// protocol's key for an alert event: enqueuing the same event again
    /// (a replay after a restart) is a no-op and returns `false`; a new
    /// event, each re-alert of an episode among them, returns `true`.
    pub fn enqueue_alert(&mut self, alert: &OutboxAlert) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO alert_outbox (id, phase, kind, time, value, payload, enqueued_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id, phase, time) DO NOTHING",
            )?
            .execute(params![
                alert.id,
                alert.phase,
                alert.kind,
                to_micros(alert.time),
                alert.value,
                alert.payload,
                to_micros(Utc::now()),
            ])?;
        Ok(n == 1)
    }

    /// Alerts not yet delivered, oldest first.
    pub fn pending_alerts(&self) -> Result<Vec<OutboxAlert>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, kind, phase, time, value, payload FROM alert_outbox \
             WHERE delivered_at IS NULL ORDER BY time, id, phase",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(id, kind, phase, time, value, payload)| {
                Ok(OutboxAlert {
                    id,
                    kind,
                    phase,
                    time: from_micros(time)?,
                    value,
                    payload,
                })
            })
            .collect()
    }

    /// Times of every alert event in the outbox (delivered or not) between
    /// `from` and `to` inclusive: sync keeps the readings at these times
    /// when it reduces, so an alert's reading always reaches the cloud as
    /// measured.
    pub fn alert_times(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT time FROM alert_outbox WHERE time BETWEEN ?1 AND ?2",
        )?;
        let rows = stmt
            .query_map(params![to_micros(from), to_micros(to)], |r| {
                r.get::<_, i64>(0)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(from_micros).collect()
    }

    /// Marks one alert event delivered (the server acknowledged it).
    /// Returns `false` if it was unknown or already delivered.
    pub fn mark_alert_delivered(
        &mut self,
        id: &str,
        phase: &str,
        time: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE alert_outbox SET delivered_at = ?3 \
                 WHERE id = ?1 AND phase = ?2 AND time = ?4 AND delivered_at IS NULL",
            )?
            .execute(params![id, phase, to_micros(at), to_micros(time)])?;
        Ok(n == 1)
    }
}

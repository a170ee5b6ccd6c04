//! Webhooks: rows for [`crate::storage::Webhooks`].

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::SqliteStorage;
use crate::domain::{
    Attempt, DeliveryId, DeliveryLog, DueDelivery, EventKind, NewWebhook, Webhook, WebhookId,
};
use crate::error::Result;
use crate::storage::Webhooks;

impl Webhooks for SqliteStorage {
    fn insert_webhook_row(&self, hook: &NewWebhook) -> Result<WebhookId> {
        let events = EventKind::join_list(&hook.events);
        let conn = self.conn();
        conn.execute(
            "INSERT INTO webhooks (url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![hook.url, events, hook.secret, Utc::now()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn webhooks(&self) -> Result<Vec<Webhook>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, url, events, created_at FROM webhooks
              WHERE disabled_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, DateTime<Utc>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, url, events, created_at) = row?;
            out.push(Webhook {
                id,
                url,
                events: EventKind::parse_list(&events)?,
                created_at,
            });
        }
        Ok(out)
    }

    fn enqueue_webhook_event(&self, kind: EventKind, body: &str, at: DateTime<Utc>) -> Result<u64> {
        // The subscriptions are read on a read connection: with none (the
        // common case, on every batch) the writer is not taken at all.
        let targets: Vec<(i64, String)> = {
            let conn = self.reader();
            let mut stmt =
                conn.prepare_cached("SELECT id, events FROM webhooks WHERE disabled_at IS NULL")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut wanted = Vec::new();
        for (id, events) in targets {
            if EventKind::parse_list(&events)?.contains(&kind) {
                wanted.push(id);
            }
        }
        if wanted.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut queued = 0;
        for id in wanted {
            tx.execute(
                "INSERT INTO webhook_deliveries (webhook_id, event, body, created_at, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![id, kind.as_str(), body, at],
            )?;
            queued += 1;
        }
        tx.commit()?;
        Ok(queued)
    }

    fn due_webhook_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueDelivery>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT d.id, d.event, d.body, d.attempts, w.url, w.secret
               FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
              WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?1
                AND w.disabled_at IS NULL
              ORDER BY d.next_attempt_at, d.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, event, body, attempts, url, secret) = row?;
            out.push(DueDelivery {
                id,
                event: EventKind::parse(&event)?,
                body,
                attempts,
                url,
                secret,
            });
        }
        Ok(out)
    }

    fn update_webhook_delivery_row(&self, id: DeliveryId, attempt: &Attempt) -> Result<bool> {
        let conn = self.conn();
        let changed = match attempt {
            Attempt::Delivered { status, at } => conn.execute(
                "UPDATE webhook_deliveries
                    SET attempts = attempts + 1, delivered_at = ?2, next_attempt_at = NULL,
                        last_status = ?3, last_error = NULL
                  WHERE id = ?1",
                params![id, at, status],
            )?,
            Attempt::Failed {
                status,
                error,
                at,
                retry_at,
            } => conn.execute(
                "UPDATE webhook_deliveries
                    SET attempts = attempts + 1, next_attempt_at = ?2,
                        gave_up_at = CASE WHEN ?2 IS NULL THEN ?3 END,
                        last_status = ?4, last_error = ?5
                  WHERE id = ?1",
                params![id, retry_at, at, status, error],
            )?,
        };
        Ok(changed > 0)
    }

    fn webhook_deliveries(&self, webhook: WebhookId) -> Result<Vec<DeliveryLog>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, event, attempts, delivered_at, gave_up_at, last_status, last_error
               FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([webhook], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, Option<DateTime<Utc>>>(3)?,
                r.get::<_, Option<DateTime<Utc>>>(4)?,
                r.get::<_, Option<u16>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, event, attempts, delivered_at, gave_up_at, last_status, last_error) = row?;
            out.push(DeliveryLog {
                id,
                event: EventKind::parse(&event)?,
                attempts,
                delivered_at,
                gave_up_at,
                last_status,
                last_error,
            });
        }
        Ok(out)
    }
}

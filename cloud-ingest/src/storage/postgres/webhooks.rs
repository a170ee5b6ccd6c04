//! Webhooks: rows for [`crate::storage::Webhooks`].

use chrono::{DateTime, Utc};

use super::PostgresStorage;
use crate::domain::{
    Attempt, DeliveryId, DeliveryLog, DueDelivery, EventKind, NewWebhook, Webhook, WebhookId,
};
use crate::error::Result;
use crate::storage::Webhooks;

impl Webhooks for PostgresStorage {
    fn insert_webhook_row(&self, hook: &NewWebhook) -> Result<WebhookId> {
        let events = EventKind::join_list(&hook.events);
        Ok(self
            .conn()?
            .query_one(
                "INSERT INTO webhooks (url, events, secret, created_at)
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&hook.url, &events, &hook.secret, &Utc::now()],
            )?
            .get(0))
    }

    fn webhooks(&self) -> Result<Vec<Webhook>> {
        let rows = self.conn()?.query(
            "SELECT id, url, events, created_at FROM webhooks
              WHERE disabled_at IS NULL ORDER BY id",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Webhook {
                    id: r.get(0),
                    url: r.get(1),
                    events: EventKind::parse_list(r.get(2))?,
                    created_at: r.get(3),
                })
            })
            .collect()
    }

    fn enqueue_webhook_event(&self, kind: EventKind, body: &str, at: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.conn()?;
        // Every batch asks; most deployments have no webhook. One cached
        // look-up outside a transaction answers that in one round trip, and
        // only a match opens the transaction that queues the deliveries.
        let mut targets = Vec::new();
        for row in conn.rows(
            "SELECT id, events FROM webhooks WHERE disabled_at IS NULL",
            &[],
        )? {
            if EventKind::parse_list(row.get(1))?.contains(&kind) {
                targets.push(row.get::<_, i64>(0));
            }
        }
        if targets.is_empty() {
            return Ok(0);
        }
        let mut tx = conn.begin()?;
        for id in &targets {
            tx.exec(
                "INSERT INTO webhook_deliveries (webhook_id, event, body, created_at, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $4)",
                &[id, &kind.as_str(), &body, &at],
            )?;
        }
        tx.commit()?;
        Ok(targets.len() as u64)
    }

    fn due_webhook_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueDelivery>> {
        let rows = self.conn()?.query(
            "SELECT d.id, d.event, d.body, d.attempts, w.url, w.secret
               FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
              WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $1
                AND w.disabled_at IS NULL
              ORDER BY d.next_attempt_at, d.id LIMIT $2",
            &[&now, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                let attempts: i32 = r.get(3);
                Ok(DueDelivery {
                    id: r.get(0),
                    event: EventKind::parse(r.get(1))?,
                    body: r.get(2),
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    url: r.get(4),
                    secret: r.get(5),
                })
            })
            .collect()
    }

    fn update_webhook_delivery_row(&self, id: DeliveryId, attempt: &Attempt) -> Result<bool> {
        let mut conn = self.conn()?;
        let changed = match attempt {
            Attempt::Delivered { status, at } => conn.execute(
                "UPDATE webhook_deliveries
                    SET attempts = attempts + 1, delivered_at = $2, next_attempt_at = NULL,
                        last_status = $3, last_error = NULL
                  WHERE id = $1",
                &[&id, at, &i32::from(*status)],
            )?,
            Attempt::Failed {
                status,
                error,
                at,
                retry_at,
            } => {
                let gave_up = if retry_at.is_none() { Some(*at) } else { None };
                conn.execute(
                    "UPDATE webhook_deliveries
                        SET attempts = attempts + 1, next_attempt_at = $2, gave_up_at = $3,
                            last_status = $4, last_error = $5
                      WHERE id = $1",
                    &[&id, retry_at, &gave_up, &status.map(i32::from), error],
                )?
            }
        };
        Ok(changed > 0)
    }

    fn webhook_deliveries(&self, webhook: WebhookId) -> Result<Vec<DeliveryLog>> {
        let rows = self.conn()?.query(
            "SELECT id, event, attempts, delivered_at, gave_up_at, last_status, last_error
               FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id",
            &[&webhook],
        )?;
        rows.iter()
            .map(|r| {
                let attempts: i32 = r.get(2);
                let status: Option<i32> = r.get(5);
                Ok(DeliveryLog {
                    id: r.get(0),
                    event: EventKind::parse(r.get(1))?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    delivered_at: r.get(3),
                    gave_up_at: r.get(4),
                    last_status: status.and_then(|s| u16::try_from(s).ok()),
                    last_error: r.get(6),
                })
            })
            .collect()
    }
}

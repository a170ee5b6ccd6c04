//! Outgoing webhooks: registrations and the delivery queue.

use chrono::{DateTime, Utc};

use crate::domain::{
    Attempt, DeliveryId, DeliveryLog, DueDelivery, EventKind, NewWebhook, Webhook, WebhookId,
};
use crate::error::{Error, Result};

/// Registering webhooks and queueing their deliveries.
pub trait Webhooks: Send + Sync {
    /// Registers a webhook; [`crate::Error::InvalidInput`] for an empty
    /// event list.
    fn add_webhook(&self, hook: &NewWebhook) -> Result<WebhookId> {
        if hook.events.is_empty() {
            return Err(Error::InvalidInput("webhook: no events".into()));
        }
        self.insert_webhook_row(hook)
    }
    /// Row mapping of [`Self::add_webhook`]; the event list is not empty.
    fn insert_webhook_row(&self, hook: &NewWebhook) -> Result<WebhookId>;
    /// The registered, enabled webhooks, by id.
    fn webhooks(&self) -> Result<Vec<Webhook>>;
    /// Queues one delivery of `body` per enabled webhook subscribed to
    /// `kind`, due at `at`; returns how many.
    fn enqueue_webhook_event(&self, kind: EventKind, body: &str, at: DateTime<Utc>) -> Result<u64>;
    /// Deliveries due at `now`, oldest first, at most `limit`.
    fn due_webhook_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueDelivery>>;
    /// Records an attempt: delivered, or failed with its next time (none:
    /// given up). [`crate::Error::NotFound`] for an unknown delivery.
    fn record_webhook_attempt(&self, id: DeliveryId, attempt: &Attempt) -> Result<()> {
        if self.update_webhook_delivery_row(id, attempt)? {
            Ok(())
        } else {
            Err(Error::NotFound(format!("webhook delivery {id}")))
        }
    }
    /// Row mapping of [`Self::record_webhook_attempt`]: false when no
    /// delivery has that id.
    fn update_webhook_delivery_row(&self, id: DeliveryId, attempt: &Attempt) -> Result<bool>;
    /// A webhook's deliveries, oldest first: the delivery log.
    fn webhook_deliveries(&self, webhook: WebhookId) -> Result<Vec<DeliveryLog>>;
}

//! The delivery worker: takes due deliveries from the queue, posts them
//! signed, and records each attempt.
//!
//! One worker per process is enough: deliveries are small and the receiver's
//! latency, not ours, bounds throughput. With several replicas on one
//! PostgreSQL, each replica's worker may pick the same due delivery; the
//! receiver sees it twice and dedupes by `Vigil-Delivery`, which the
//! at-least-once contract already asks of it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rand::Rng;
use serde::Serialize;
use tokio::sync::Notify;

use crate::domain::{Attempt, DueDelivery, EventKind};
use crate::error::{Error, Result};
use crate::storage::{Storage, Store};

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The wait after the first failure; doubled after each next one.
    pub first_retry: Duration,
    /// The longest wait between attempts.
    pub max_retry: Duration,
    /// Attempts before giving up (the log keeps the failure).
    pub max_attempts: u32,
    /// Time allowed for one POST.
    pub timeout: Duration,
    /// How often the worker looks for due deliveries when not woken.
    pub poll: Duration,
}

impl Default for RetryPolicy {
    /// 10 s doubling to at most 1 h, 12 attempts (about 10 hours in all),
    /// 10 s per POST, a look every second.
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(10),
            max_retry: Duration::from_secs(3600),
            max_attempts: 12,
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts, with ±20 % jitter so a
    /// receiver that comes back is not hit by every queued delivery at once.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let base = self
            .first_retry
            .saturating_mul(1u32 << exp)
            .min(self.max_retry);
        let jitter = rand::rng().random_range(0.8..1.2);
        base.mul_f64(jitter)
    }
}

/// Queues `payload` as a `kind` event for every webhook subscribed to it and
/// wakes the worker. Returns how many deliveries were queued.
pub async fn publish(
    store: &Store,
    waker: &Notify,
    kind: EventKind,
    payload: &impl Serialize,
) -> Result<u64> {
    let body = payload_text(payload)?;
    let queued = store
        .run(move |s| s.enqueue_webhook_event(kind, &body, Utc::now()))
        .await?;
    if queued > 0 {
        waker.notify_one();
    }
    Ok(queued)
}

/// Queues `payload` from inside a storage call a route already makes, so
/// the request needs no second hop to the blocking pool; the caller wakes
/// the worker when this returns more than zero. A failure is logged and
/// counts as nothing queued: what the route stored stays stored and
/// acknowledged.
pub fn queue_within(s: &dyn Storage, kind: EventKind, payload: &impl Serialize) -> u64 {
    let queued =
        payload_text(payload).and_then(|body| s.enqueue_webhook_event(kind, &body, Utc::now()));
    queued.unwrap_or_else(|e| {
        tracing::error!(error = %e, "webhook queue failed");
        0
    })
}

fn payload_text(payload: &impl Serialize) -> Result<String> {
    serde_json::to_string(payload).map_err(|e| Error::InvalidInput(format!("webhook payload: {e}")))
}

/// The worker.
pub struct Dispatcher {
    store: Store,
    client: reqwest::Client,
    policy: RetryPolicy,
    wake: Arc<Notify>,
}

impl Dispatcher {
    /// A worker over `store`'s queue, woken by `wake` (the one
    /// [`crate::ServiceState::webhook_wake`] holds).
    pub fn new(store: Store, policy: RetryPolicy, wake: Arc<Notify>) -> Result<Dispatcher> {
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("webhook client: {e}")))?;
        Ok(Dispatcher {
            store,
            client,
            policy,
            wake,
        })
    }

    /// Attempts every delivery due now; returns how many were attempted.
    pub async fn run_once(&self) -> Result<usize> {
        let due = self
            .store
            .run(|s| s.due_webhook_deliveries(Utc::now(), 100))
            .await?;
        let n = due.len();
        for delivery in due {
            let attempt = self.attempt(&delivery).await;
            let id = delivery.id;
            match &attempt {
                Attempt::Delivered { status, .. } => {
                    tracing::info!(delivery = id, status, "webhook delivered");
                }
                Attempt::Failed {
                    status,
                    error,
                    retry_at,
                    ..
                } => {
                    tracing::warn!(
                        delivery = id,
                        status = status.unwrap_or(0),
                        error = %error,
                        gave_up = retry_at.is_none(),
                        "webhook delivery failed"
                    );
                }
            }
            self.store
                .run(move |s| s.record_webhook_attempt(id, &attempt))
                .await?;
        }
        Ok(n)
    }

    async fn attempt(&self, d: &DueDelivery) -> Attempt {
        let timestamp = Utc::now().timestamp();
        let signature = super::sign(&d.secret, timestamp, d.body.as_bytes());
        let answer = self
            .client
            .post(&d.url)
            .header("content-type", "application/json")
            .header("vigil-event", d.event.as_str())
            .header("vigil-delivery", d.id.to_string())
            .header("vigil-timestamp", timestamp.to_string())
            .header("vigil-signature", signature)
            .body(d.body.clone())
            .send()
            .await;
        let at = Utc::now();
        let attempts = d.attempts + 1;
        let retry_at = (attempts < self.policy.max_attempts).then(|| {
            at + TimeDelta::from_std(self.policy.backoff(attempts)).unwrap_or(TimeDelta::hours(1))
        });
        match answer {
            Ok(resp) if resp.status().is_success() => Attempt::Delivered {
                status: resp.status().as_u16(),
                at,
            },
            Ok(resp) => Attempt::Failed {
                status: Some(resp.status().as_u16()),
                error: format!("receiver answered {}", resp.status()),
                at,
                retry_at,
            },
            Err(e) => Attempt::Failed {
                status: None,
                // reqwest's message names the URL and the failure, never
                // the body.
                error: e.without_url().to_string(),
                at,
                retry_at,
            },
        }
    }

    /// Runs until `shutdown` completes: attempts what is due whenever woken
    /// or every [`RetryPolicy::poll`].
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::error!(error = %e, "webhook worker");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.policy.poll) => {}
            }
        }
    }
}

/// Queues a live alert event for the webhooks, logging (not returning) a
/// failure: the alert is stored and on the live stream already, and a
/// webhook problem must not make the phone resend it.
pub async fn alert_to_webhooks(state: &crate::ServiceState, event: &crate::live::LiveEvent) {
    if let Err(e) = publish(&state.store, &state.webhook_wake, EventKind::Alert, event).await {
        tracing::error!(error = %e, "webhook queue failed");
    }
}

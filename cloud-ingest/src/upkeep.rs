//! Daily storage upkeep: keeps the months ahead of now ready on backends
//! that need it ([`crate::storage::Storage::ensure_partitions`]; on
//! PostgreSQL the readings partitions of this month and the next two).
//!
//! Decisions: opening the store already did it once, so the first pass
//! runs a day after start; a day is far shorter than the two months of
//! partitions kept ahead, so a missed or failed pass (logged, retried the
//! next day) never leaves intake without its month. Replicas all run it;
//! the backend makes each partition once.

use std::time::Duration;

use chrono::Utc;

use crate::storage::Store;

/// How often the upkeep runs.
pub const EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// Runs [`crate::storage::Storage::ensure_partitions`] every [`EVERY`] on
/// the real clock until the runtime shuts down.
pub fn spawn(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.run(|s| s.ensure_partitions(Utc::now())).await {
                Ok(made) => {
                    for name in &made {
                        tracing::info!(partition = %name, "made a readings partition");
                    }
                }
                // The error carries a SQLSTATE and message, never row
                // values (see `Error::Postgres`).
                Err(e) => tracing::error!(error = %e, "storage upkeep failed"),
            }
        }
    })
}

//! The facade's side of the sync engine: starts it on the SDK's runtime
//! and turns its events into listener callbacks.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::config::VigilConfig;
use super::dispatch::{Callback, Dispatch};
use super::error::{SdkError, SdkResult};
use super::events::SyncEvent;
use super::runtime;
use crate::clock::{Clock, SystemClock};
use crate::model::PatientId;
use crate::sync::{
    self as engine, HttpPoster, Poster, StaticToken, SyncConfig, SyncHandle, TokenProvider,
    WallClockPoster,
};

/// Starts the engine; events go to the listener, acknowledged batches set
/// `last_sync`.
pub(crate) fn start(
    runtime: &runtime::Owned,
    config: &VigilConfig,
    url: &str,
    tokens: Option<Arc<dyn TokenProvider>>,
    clock: Arc<dyn Clock>,
    dispatch: Dispatch,
    last_sync: Arc<Mutex<Option<i64>>>,
) -> SdkResult<Arc<SyncHandle>> {
    let tokens: Arc<dyn TokenProvider> = match (tokens, &config.token) {
        (Some(t), _) => t,
        (None, Some(t)) => Arc::new(StaticToken(t.clone())),
        (None, None) => {
            return Err(SdkError::invalid(
                "server_url needs a token or a token provider",
            ));
        }
    };
    let sync_config = SyncConfig {
        server_url: url.to_string(),
        interval: config.sync_interval.duration(),
        // Never below the sync interval: an app that shortens the interval
        // past the stretched one gets no stretch.
        stable_interval: config
            .sync_interval_when_stable
            .duration()
            .max(config.sync_interval.duration()),
        wait_for_unmetered: config.wait_for_unmetered,
        contact_interval: config.contact_interval.duration(),
        // Offline until the app reports its network.
        initial_network: engine::Network::None,
        ..SyncConfig::default()
    };
    let poster = HttpPoster::new(&sync_config)?;
    let poster: Arc<dyn Poster> = if config.clock.simulated() {
        Arc::new(WallClockPoster::new(poster)?)
    } else {
        Arc::new(poster)
    };
    let path = config.storage_path.clone();
    let patient = PatientId(config.patient_id.clone());
    let (tx, mut rx) = mpsc::unbounded_channel::<engine::SyncEvent>();
    let events_clock = clock.clone();
    // Under simulated time the requests run on real time, so they say
    // when they were really sent; a simulated `sent_at` would make the
    // server "correct" every batch by the gap between the two clocks.
    let clock: Arc<dyn Clock> = if config.clock.simulated() {
        Arc::new(SystemClock)
    } else {
        clock
    };
    let handle = runtime.run(async move {
        let handle = engine::SyncEngine::start_with_poster(
            path,
            patient,
            sync_config,
            tokens,
            tx,
            clock,
            poster,
        )?;
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                if matches!(e, engine::SyncEvent::BatchAcknowledged { .. }) {
                    *last_sync.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(events_clock.now().timestamp_millis());
                }
                dispatch.send(Callback::Sync(event(e)));
            }
        });
        Ok::<_, crate::Error>(handle)
    })??;
    Ok(Arc::new(handle))
}

fn event(e: engine::SyncEvent) -> SyncEvent {
    let (kind, detail) = match e {
        engine::SyncEvent::BatchAcknowledged {
            stream,
            stored,
            rejected,
        } => (
            "batch_acknowledged",
            format!("{}: {stored} stored, {rejected} rejected", stream.as_str()),
        ),
        engine::SyncEvent::AlertDelivered { id, phase } => {
            ("alert_delivered", format!("{id} {phase}"))
        }
        engine::SyncEvent::HeartbeatSent => ("heartbeat_sent", String::new()),
        engine::SyncEvent::Refused { stream, reason } => {
            ("refused", format!("{}: {reason}", stream.as_str()))
        }
        engine::SyncEvent::Retrying { after, reason } => {
            ("retrying", format!("in {} ms: {reason}", after.as_millis()))
        }
        engine::SyncEvent::Unauthorized => ("unauthorized", String::new()),
        engine::SyncEvent::Waiting(w) => ("waiting", format!("{w:?}")),
    };
    SyncEvent {
        kind: kind.to_string(),
        detail,
    }
}

//! The one facade apps use (through the bindings): configure, pair and
//! forget devices, start and stop collection, feed host bytes, report the
//! network and battery, sync now, read the status, export to the phone's
//! health store through a cursor in the buffer, and hear everything
//! through one [`Listener`].
//!
//! [`Vigil`] owns its own tokio runtime, so the app calls it from any
//! thread; every call is blocking and short (it waits for the runtime, not
//! for a device). Callbacks arrive on the SDK's `vigil-callbacks` thread
//! (see [`Listener`]). Nothing internal crosses this boundary: the types
//! here are plain values and one error, [`SdkError`].

mod config;
mod dispatch;
mod error;
mod events;
mod export;
mod host;
mod pipeline;
mod resolved;
mod runtime;
mod simulation;
mod status;
mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use tokio::sync::oneshot;

pub use crate::alerts::AlertConfig;
pub use crate::sync::TokenProvider;
pub use config::{ClockMode, DeviceKind, Network, Power, Seconds, TransportMode, VigilConfig};
pub use error::{SdkError, SdkResult};
pub use events::{
    AlertEvent, AlertKind, BufferEvent, DeviceEvent, DeviceEventKind, HostCharacteristic,
    HostReply, HostRequest, Listener, Phase, PressureLevel, ReadingEvent, SyncEvent,
};
pub use export::{ExportBatch, MAX_EXPORT_BATCH};
pub use resolved::MAX_RESOLVED_RANGE_MS;
pub use simulation::{DeviceOutOfRange, OutOfRange, SimulatedGlucose, Simulation};
pub use status::{LedgerSummary, Status};

// The uniffi metadata of the configuration records, which the bindings'
// tests read to check the default arguments Kotlin and Swift get against
// `VigilConfig::new`, `AlertConfig::default` and `Simulation::default`.
#[cfg(feature = "uniffi")]
#[doc(hidden)]
pub use crate::alerts::UNIFFI_META_VIGIL_CORE_RECORD_ALERTCONFIG;
#[cfg(feature = "uniffi")]
#[doc(hidden)]
pub use config::UNIFFI_META_VIGIL_CORE_RECORD_VIGILCONFIG;
#[cfg(feature = "uniffi")]
#[doc(hidden)]
pub use simulation::UNIFFI_META_VIGIL_CORE_RECORD_SIMULATION;

use crate::alerts::AlertEngine;
use crate::clock::{Clock, SystemClock, TokioClock};
use crate::model::{DeviceId, PatientId};
use crate::session::{Session, SessionConfig};
use crate::store::{Buffer, BufferConfig, BufferSink, CapacityPolicy};
use crate::transport::Transport;
#[cfg(feature = "simulation")]
use crate::transport::simulated::{Radio, SimulatedTransport};
use dispatch::{Callback, Dispatch};
use pipeline::{Contact, GlucoseAlerts, Pipeline};

/// How long a session's buffer holds readings before one commit (one
/// fsync at the default durability): a 1 Hz heart-rate strap costs 4 a
/// minute instead of 60, a CGM's five-minute readings each commit at once.
/// The app hears a reading only once it is committed, so this is also how
/// late a strap's readings can reach the listener.
const COMMIT_WINDOW: TimeDelta = TimeDelta::seconds(15);

/// A running device: how to stop it.
struct Running {
    stop: oneshot::Sender<()>,
    done: oneshot::Receiver<()>,
}

struct State {
    paired: HashMap<String, DeviceKind>,
    running: HashMap<String, Running>,
    network: Network,
    power: Option<Power>,
}

/// The SDK: one per patient and buffer file.
pub struct Vigil {
    config: VigilConfig,
    runtime: runtime::Owned,
    clock: Arc<dyn Clock>,
    dispatch: Option<Dispatch>,
    callback_thread: Option<JoinHandle<()>>,
    /// The facade's own connection: registry, status and outbox queries.
    buffer: Mutex<Buffer>,
    transport: Arc<dyn Transport>,
    #[cfg(feature = "simulation")]
    simulated: Option<Arc<SimulatedTransport>>,
    host: Option<host::HostBridge>,
    state: Mutex<State>,
    /// The patient's glucose alert engine and its source gate, shared by
    /// every running session; renewed when collection starts from stopped.
    glucose: Arc<Mutex<GlucoseAlerts>>,
    contact: Arc<Mutex<Contact>>,
    sync: Option<Arc<crate::sync::SyncHandle>>,
    last_sync: Arc<Mutex<Option<i64>>>,
}

impl std::fmt::Debug for Vigil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vigil")
            .field("transport", &self.config.transport)
            .finish_non_exhaustive()
    }
}

impl Vigil {
    /// Opens the buffer, starts the runtime and the callback thread.
    ///
    /// Errors: [`SdkError::InvalidInput`] for a bad setting,
    /// [`SdkError::Storage`] when the buffer cannot be opened.
    pub fn new(
        config: VigilConfig,
        listener: Arc<dyn Listener>,
        tokens: Option<Arc<dyn TokenProvider>>,
    ) -> SdkResult<Vigil> {
        if config.patient_id.trim().is_empty() {
            return Err(SdkError::invalid("patient_id must not be empty"));
        }
        config.alerts.validate()?;
        config.simulation().check()?;
        if let Some(url) = &config.server_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(SdkError::invalid(
                    "server_url must start with https:// (or http:// for loopback tests)",
                ));
            }
        }
        let buffer = Buffer::open(&config.storage_path, buffer_config(&config))?;
        let runtime = runtime::Owned::start(&config.clock)?;
        let clock: Arc<dyn Clock> = match config.clock {
            ClockMode::Wall => Arc::new(SystemClock),
            ClockMode::Simulated { start_ms, .. } | ClockMode::Accelerated { start_ms, .. } => {
                let start = epoch(start_ms)?;
                runtime.run(async move { Arc::new(TokioClock::new(start)) as Arc<dyn Clock> })?
            }
        };
        let (dispatch, callback_thread) = Dispatch::start(listener)
            .map_err(|e| SdkError::unavailable(format!("cannot start the callback thread: {e}")))?;
        let (transport, simulated, host): (Arc<dyn Transport>, _, _) = match config.transport {
            TransportMode::Simulated => {
                let sim = simulated_transport(&runtime, &clock)?;
                (sim.clone(), Some(sim), None)
            }
            TransportMode::HostFed => {
                let d = dispatch.clone();
                let (transport, bridge) = runtime.run(async move { host::HostBridge::start(d) })?;
                (transport, None, Some(bridge))
            }
            TransportMode::Btleplug => (btleplug_transport(&runtime)?, None, None),
        };
        // Without the feature the middle slot is always `None`: no field.
        #[cfg(not(feature = "simulation"))]
        let _: Option<Arc<dyn Transport>> = simulated;
        let glucose = Arc::new(Mutex::new(glucose_alerts(&config, &HashMap::new())?));
        let last_sync = Arc::new(Mutex::new(None));
        let sync = match &config.server_url {
            None => None,
            Some(url) => Some(sync::start(
                &runtime,
                &config,
                url,
                tokens,
                clock.clone(),
                dispatch.clone(),
                last_sync.clone(),
            )?),
        };
        Ok(Vigil {
            config,
            runtime,
            clock,
            dispatch: Some(dispatch),
            callback_thread: Some(callback_thread),
            buffer: Mutex::new(buffer),
            transport,
            #[cfg(feature = "simulation")]
            simulated,
            host,
            state: Mutex::new(State {
                paired: HashMap::new(),
                running: HashMap::new(),
                network: Network::None,
                power: None,
            }),
            glucose,
            contact: Arc::new(Mutex::new(Contact::default())),
            sync,
            last_sync,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The SDK's time. Read on the runtime: a simulated clock is tokio's
    /// paused time, which the app's threads do not see.
    fn now(&self) -> SdkResult<DateTime<Utc>> {
        if !self.config.clock.simulated() {
            return Ok(self.clock.now());
        }
        let clock = self.clock.clone();
        self.runtime.run(async move { clock.now() })
    }

    fn dispatch(&self) -> SdkResult<&Dispatch> {
        self.dispatch
            .as_ref()
            .ok_or_else(|| SdkError::unavailable("the SDK is closed"))
    }

    /// Pairs a device to this patient (recorded in the buffer's registry).
    /// With simulated devices, this also puts a simulated device of `kind`
    /// on the air under `device` as its name.
    pub fn pair(&self, device: &str, kind: DeviceKind) -> SdkResult<()> {
        if device.trim().is_empty() {
            return Err(SdkError::invalid("device id must not be empty"));
        }
        let now = self.now()?;
        self.buffer().pair(
            &DeviceId(device.to_string()),
            kind.as_str(),
            &PatientId(self.config.patient_id.clone()),
            now,
        )?;
        self.glucose
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .gate
            .declare(DeviceId(device.to_string()), kind.class());
        let mut state = self.state();
        let newly = state.paired.insert(device.to_string(), kind).is_none();
        if newly {
            self.put_on_air(&mut state, device, kind, now)?;
        }
        Ok(())
    }

    /// With simulated devices, puts a simulated device of `kind` on the
    /// air as `device`, newly paired in `state` (taken back out if the
    /// simulation cannot build it).
    #[cfg(feature = "simulation")]
    fn put_on_air(
        &self,
        state: &mut State,
        device: &str,
        kind: DeviceKind,
        now: DateTime<Utc>,
    ) -> SdkResult<()> {
        let Some(sim) = &self.simulated else {
            return Ok(());
        };
        let seed = self
            .config
            .simulation_seed
            .wrapping_add(u64::try_from(state.paired.len()).unwrap_or(0));
        let run_for = match self.config.clock {
            ClockMode::Simulated { run_for, .. } => Some(run_for),
            ClockMode::Wall | ClockMode::Accelerated { .. } => None,
        };
        let peripheral = match self
            .config
            .simulation()
            .peripheral(kind, device, seed, now, run_for)
        {
            Ok(p) => p,
            Err(e) => {
                state.paired.remove(device);
                return Err(e);
            }
        };
        sim.with_radio(|radio| radio.add(peripheral));
        Ok(())
    }

    /// Without the `simulation` feature nothing is simulated: a device is
    /// only recorded.
    #[cfg(not(feature = "simulation"))]
    fn put_on_air(&self, _: &mut State, _: &str, _: DeviceKind, _: DateTime<Utc>) -> SdkResult<()> {
        Ok(())
    }

    /// Stops and forgets a device; its history stays in the buffer.
    pub fn forget(&self, device: &str) -> SdkResult<()> {
        self.stop_device(device)?;
        if self.state().paired.remove(device).is_none() {
            return Err(SdkError::invalid("unknown device: pair it first"));
        }
        let now = self.now()?;
        self.buffer().forget(&DeviceId(device.to_string()), now)?;
        Ok(())
    }

    /// The paired devices.
    pub fn devices(&self) -> Vec<String> {
        let mut v: Vec<String> = self.state().paired.keys().cloned().collect();
        v.sort();
        v
    }

    /// Starts collecting from every paired device that is not running yet:
    /// one session per device, reconnecting by itself until [`Vigil::stop`].
    /// Under [`ClockMode::Simulated`] the simulated clock stands at
    /// `start_ms` until the first call (or [`Vigil::sync_now`]), so a run
    /// begins where it was configured to, however long pairing took.
    pub fn start(&self) -> SdkResult<()> {
        let paired: Vec<(String, DeviceKind)> = {
            let s = self.state();
            s.paired
                .iter()
                .filter(|(d, _)| !s.running.contains_key(*d))
                .map(|(d, k)| (d.clone(), *k))
                .collect()
        };
        if paired.is_empty() && self.state().running.is_empty() {
            return Err(SdkError::unavailable("no device paired: call pair first"));
        }
        if self.state().running.is_empty() {
            // A stop is deliberate: the silence since is no signal loss, and
            // the source followed before may not come back.
            let fresh = glucose_alerts(&self.config, &self.state().paired)?;
            *self.glucose.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        }
        for (device, kind) in paired {
            let running = self.start_device(&device, kind)?;
            self.state().running.insert(device, running);
        }
        // Simulated time begins with collection, at `start_ms`.
        self.runtime.release_time();
        Ok(())
    }

    fn start_device(&self, device: &str, kind: DeviceKind) -> SdkResult<Running> {
        let dispatch = self.dispatch()?.clone();
        let buffer = Buffer::open_shared(&self.config.storage_path, buffer_config(&self.config))?;
        let device_id = DeviceId(device.to_string());
        // The device's own alerts (battery); glucose goes to the shared one.
        let engine = Arc::new(Mutex::new(AlertEngine::new(
            self.config.alerts.clone(),
            device.to_string(),
        )?));
        let mut session_cfg = SessionConfig::new(
            kind,
            crate::transport::PeripheralId(device.to_string()),
            PatientId(self.config.patient_id.clone()),
        );
        session_cfg.jitter_seed = self.config.simulation_seed;
        // Alerts are posted at once, not with the next batch: those raised
        // by readings and those raised by time (signal loss) alike.
        let alert_posted: Arc<dyn Fn() + Send + Sync> = match &self.sync {
            Some(h) => {
                let h = h.clone();
                Arc::new(move || h.alert_enqueued())
            }
            None => Arc::new(|| {}),
        };
        let rearm = Arc::new(tokio::sync::Notify::new());
        let sink = Pipeline {
            buffer: BufferSink::with_commit_window(buffer, COMMIT_WINDOW),
            rearm: rearm.clone(),
            unheard: Vec::new(),
            engine,
            glucose: self.glucose.clone(),
            dispatch: dispatch.clone(),
            contact: self.contact.clone(),
            alert_posted: alert_posted.clone(),
        };
        let until = match self.config.clock {
            ClockMode::Wall | ClockMode::Accelerated { .. } => DateTime::<Utc>::MAX_UTC,
            ClockMode::Simulated { run_for, .. } => {
                self.now()? + TimeDelta::from_std(run_for).unwrap_or(TimeDelta::MAX)
            }
        };
        let glucose = self.glucose.clone();
        let transport = self.transport.clone();
        let clock = self.clock.clone();
        let ticker_path = self.config.storage_path.clone();
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let make: runtime::Maker = Box::new(move || {
            Box::pin(async move {
                let mut session = Session::new(session_cfg, transport.clone(), clock.clone(), sink);
                let ticker = signal_timer(
                    glucose,
                    clock.clone(),
                    rearm,
                    dispatch.clone(),
                    device_id.clone(),
                    ticker_path,
                    alert_posted,
                );
                let outcome = tokio::select! {
                    r = session.run_until(until) => Some(r),
                    _ = ticker => None,
                    _ = &mut stop_rx => None,
                };
                // A stopped run still commits what it holds (its
                // listener has not heard of it yet).
                let flushed = session.flush_sink();
                drop(session);
                let outcome = match (outcome, flushed) {
                    (None, Err(e)) => Some(Err(e)),
                    (o, _) => o,
                };
                let (kind, detail) = match outcome {
                    Some(Err(e)) => (DeviceEventKind::Failed, SdkError::from(e).to_string()),
                    _ => (DeviceEventKind::Stopped, String::new()),
                };
                // The link may be up; a failure to drop it changes nothing.
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    transport.disconnect(&crate::transport::PeripheralId(device_id.0.clone())),
                )
                .await;
                dispatch.send(Callback::Device(DeviceEvent {
                    device: device_id.0.clone(),
                    kind,
                    detail,
                    time_ms: clock.now().timestamp_millis(),
                }));
                let _ = done_tx.send(());
            })
        });
        self.runtime.spawn_local(make)?;
        Ok(Running {
            stop: stop_tx,
            done: done_rx,
        })
    }

    fn stop_device(&self, device: &str) -> SdkResult<()> {
        let running = self.state().running.remove(device);
        if let Some(r) = running {
            let _ = r.stop.send(());
            self.runtime.wait(r.done)?;
        }
        Ok(())
    }

    /// Stops every session and waits until each has let go of its device
    /// and the buffer. Readings already reported are stored.
    pub fn stop(&self) -> SdkResult<()> {
        let running: Vec<String> = self.state().running.keys().cloned().collect();
        for device in running {
            self.stop_device(&device)?;
        }
        Ok(())
    }

    /// Whether any device is collecting.
    pub fn is_running(&self) -> bool {
        !self.state().running.is_empty()
    }

    /// Bytes the app's own Bluetooth stack received for `device` on
    /// `characteristic` (a notification or indication). Host-fed only.
    pub fn feed_host_bytes(
        &self,
        device: &str,
        characteristic: &str,
        bytes: Vec<u8>,
    ) -> SdkResult<()> {
        let uuid = host::parse_uuid(characteristic)?;
        self.host_bridge()?.value(device, uuid, bytes);
        Ok(())
    }

    /// The platform reports the link to `device` up (`true`) or down.
    pub fn host_connection(&self, device: &str, connected: bool) -> SdkResult<()> {
        self.host_bridge()?.connection(device, connected);
        Ok(())
    }

    /// Answers a [`HostRequest`].
    pub fn complete_host_request(&self, token: u64, reply: HostReply) -> SdkResult<()> {
        self.host_bridge()?.complete(token, reply)
    }

    fn host_bridge(&self) -> SdkResult<&host::HostBridge> {
        self.host.as_ref().ok_or_else(|| {
            SdkError::unavailable("host-fed calls need transport = HostFed in the configuration")
        })
    }

    /// The phone's network changed.
    pub fn set_network(&self, network: Network) {
        self.state().network = network;
        if let Some(h) = &self.sync {
            h.set_network(network);
        }
    }

    /// The phone's battery changed.
    pub fn set_power(&self, power: Power) {
        self.state().power = Some(power);
        if let Some(h) = &self.sync {
            h.set_power(Power {
                percent: power.percent.min(100),
                charging: power.charging,
            });
        }
    }

    /// Sends what the sync policy allows now (alerts, then batches) and
    /// returns how many readings the server stored.
    ///
    /// Errors: [`SdkError::NotAvailable`] without a server in the
    /// configuration; [`SdkError::Auth`] when the server refused the token
    /// (after one refresh); [`SdkError::Network`] when nothing could be
    /// sent because the server failed or could not be reached.
    pub fn sync_now(&self) -> SdkResult<u64> {
        let Some(h) = self.sync.clone() else {
            return Err(SdkError::unavailable(
                "sync is not configured: set server_url to sync to the cloud",
            ));
        };
        // A sync waits on timers (timeouts, backoff): time must move.
        self.runtime.release_time();
        let report = self.runtime.run(async move { h.sync_now().await })??;
        match report.failure {
            Some(reason) if report.readings_stored == 0 && report.alerts_delivered == 0 => {
                if report.unauthorized {
                    Err(SdkError::Auth {
                        message: format!("the server refused the token: {reason}"),
                    })
                } else {
                    Err(SdkError::Network { message: reason })
                }
            }
            _ => Ok(report.readings_stored),
        }
    }

    /// The buffer and devices at a glance.
    pub fn status(&self) -> SdkResult<Status> {
        let last_contact = self
            .contact
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last
            .map(|t| t.timestamp_millis());
        let devices: Vec<String> = self.devices();
        let running = self.is_running();
        let network = self.state().network;
        let last_sync = *self.last_sync.lock().unwrap_or_else(|e| e.into_inner());
        let mut status = status::read(&self.buffer(), &devices, running, last_contact, network)?;
        status.last_sync_ms = last_sync;
        Ok(status)
    }

    /// Up to `limit` stored readings of `streams` (names such as
    /// `glucose`) that `target` (e.g. `health_connect`) has not confirmed,
    /// oldest first, held-back readings included, and the cursor that
    /// confirms them. Readings the buffer evicted before they were exported
    /// cannot be exported. Reads only: until [`Vigil::confirm_export`], the
    /// next call returns the same batch.
    ///
    /// Errors: [`SdkError::InvalidInput`] for an empty target, no or an
    /// unknown stream, or a limit of 0 or above [`MAX_EXPORT_BATCH`].
    pub fn export_batch(
        &self,
        target: &str,
        streams: &[String],
        limit: u32,
    ) -> SdkResult<ExportBatch> {
        export::batch(&self.buffer(), target, streams, limit)
    }

    /// Records that `target` stored the batch [`Vigil::export_batch`]
    /// returned `cursor` with; durable when this returns, and never moves
    /// the target's cursor back (confirming an older batch again changes
    /// nothing).
    ///
    /// Errors: [`SdkError::InvalidInput`] for an empty target or a cursor
    /// no batch returned.
    pub fn confirm_export(&self, target: &str, cursor: u64) -> SdkResult<()> {
        export::confirm(&mut self.buffer(), target, cursor)
    }

    /// The series that stands for the patient: of every stored reading of
    /// `quantity` (`glucose`, `heart_rate` or `spo2`, whichever device and
    /// stream measured it) in `from_ms..to_ms` (sensor time, Unix ms), one
    /// reading per coincident moment, chosen by the default precedence
    /// policy with each device ranked by the kind it was paired as. Each is
    /// the winning reading unchanged (device, stream, value, time), in time
    /// order. The listener and [`Vigil::export_batch`] stay raw.
    ///
    /// Errors: [`SdkError::InvalidInput`] for an unknown quantity or a range
    /// that is empty or longer than [`MAX_RESOLVED_RANGE_MS`].
    pub fn resolved_readings(
        &self,
        quantity: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> SdkResult<Vec<ReadingEvent>> {
        let paired = self.state().paired.clone();
        resolved::resolved(
            &self.buffer(),
            &self.config.patient_id,
            &paired,
            quantity,
            from_ms,
            to_ms,
        )
    }

    /// Stops everything and releases the runtime and the callback thread;
    /// also done on drop. Callbacks queued before it still arrive.
    pub fn close(&mut self) -> SdkResult<()> {
        self.stop()?;
        if let Some(h) = &self.host {
            h.close();
        }
        if let Some(h) = self.sync.take().and_then(|h| Arc::try_unwrap(h).ok()) {
            // Lets the engine finish a request in flight; a failure to stop
            // cleanly leaves the batch in flight, returned at the next open.
            let _ = self.runtime.run(async move { h.stop().await });
        }
        self.dispatch = None;
        self.runtime.shutdown();
        if let Some(t) = self.callback_thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        Ok(())
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(feature = "simulation")]
fn simulated_transport(
    runtime: &runtime::Owned,
    clock: &Arc<dyn Clock>,
) -> SdkResult<Arc<SimulatedTransport>> {
    let c = clock.clone();
    runtime.run(async move {
        Arc::new(SimulatedTransport::start(
            Radio::new(),
            c,
            std::time::Duration::from_secs(1),
        ))
    })
}

/// Without the `simulation` feature (phone builds) there are no simulated
/// peripherals: the same typed refusal as a missing btleplug.
#[cfg(not(feature = "simulation"))]
fn simulated_transport(_: &runtime::Owned, _: &Arc<dyn Clock>) -> SdkResult<Arc<dyn Transport>> {
    Err(SdkError::unavailable(
        "this build has no simulated transport (feature `simulation`)",
    ))
}

#[cfg(feature = "btleplug")]
fn btleplug_transport(runtime: &runtime::Owned) -> SdkResult<Arc<dyn Transport>> {
    let t = runtime.run(crate::transport::btleplug::BtleplugTransport::new())??;
    Ok(Arc::new(t))
}

#[cfg(not(feature = "btleplug"))]
fn btleplug_transport(_: &runtime::Owned) -> SdkResult<Arc<dyn Transport>> {
    Err(SdkError::unavailable(
        "this build has no btleplug transport (feature `btleplug`)",
    ))
}

fn buffer_config(config: &VigilConfig) -> BufferConfig {
    let mut b = BufferConfig::default();
    if let Some(budget) = config.buffer_budget_bytes {
        b.capacity = CapacityPolicy {
            budget_bytes: budget,
        };
    }
    b
}

fn epoch(ms: i64) -> SdkResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| SdkError::invalid("simulated clock start is out of range"))
}

/// Raises time-driven alerts (signal loss, its re-alerts, a sensor
/// session warning) while no reading arrives; never ends by itself.
///
/// It sleeps until the engine's next deadline ([`AlertEngine::next_deadline`])
/// and is re-armed by `rearm` whenever a reading changed that deadline, so
/// a phone whose sensor reports on time is never woken by it: the timer
/// costs wake-ups only when a signal is actually being lost. (A ticker
/// polling every minute cost 60 wake-ups an hour.)
async fn signal_timer(
    glucose: Arc<Mutex<GlucoseAlerts>>,
    clock: Arc<dyn Clock>,
    rearm: Arc<tokio::sync::Notify>,
    dispatch: Dispatch,
    device: DeviceId,
    path: std::path::PathBuf,
    alert_posted: Arc<dyn Fn() + Send + Sync>,
) {
    let mut buffer: Option<Buffer> = None;
    loop {
        let deadline = glucose
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .engine
            .next_deadline();
        let Some(deadline) = deadline else {
            rearm.notified().await;
            continue;
        };
        // `on_tick` raises what is due strictly before its time: wake just
        // after the deadline.
        let wait = (deadline - clock.now())
            .to_std()
            .unwrap_or_default()
            .saturating_add(std::time::Duration::from_millis(1));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = rearm.notified() => continue,
        }
        crate::energy::timer_woke();
        // Every session runs a timer over the shared engine; the first to
        // wake raises what is due, the others find nothing left. The alert
        // names the source the engine followed, whichever timer woke.
        let (events, followed) = {
            let mut g = glucose.lock().unwrap_or_else(|e| e.into_inner());
            let events = g.engine.on_tick(clock.now());
            (events, g.gate.followed().map(|s| s.device.clone()))
        };
        if events.is_empty() {
            continue;
        }
        let device = followed.unwrap_or_else(|| device.clone());
        if buffer.is_none() {
            buffer = Buffer::open_shared(&path, BufferConfig::default()).ok();
        }
        // The app hears the alert even when the buffer cannot be opened;
        // a failed write is the session's to report with its own writes.
        let _ = pipeline::raise(buffer.as_mut(), &dispatch, &device, events, &*alert_posted);
    }
}

/// A fresh glucose engine for the patient and the gate in front of it,
/// with the classes of the devices paired so far.
///
/// The hold is the gate's default (two 5-minute moments) but never more
/// than half the signal-loss time: when the followed CGM goes quiet and
/// another is talking, the other takes over before a signal loss could be
/// raised for a patient who is still being measured.
fn glucose_alerts(
    config: &VigilConfig,
    paired: &HashMap<String, DeviceKind>,
) -> SdkResult<GlucoseAlerts> {
    use crate::precedence::live::LiveSource;
    use crate::precedence::{Precedence, PrecedenceConfig, Quantity};
    let mut precedence = Precedence::new(PrecedenceConfig::default_for(Quantity::Glucose))
        .map_err(crate::Error::from)?;
    for (device, kind) in paired {
        precedence = precedence.with_device_class(DeviceId(device.clone()), kind.class());
    }
    let hold =
        LiveSource::default_hold(&precedence).min(config.alerts.signal_loss_after.time_delta() / 2);
    Ok(GlucoseAlerts {
        engine: AlertEngine::new(config.alerts.clone(), config.patient_id.clone())?,
        gate: LiveSource::new(precedence, hold),
    })
}

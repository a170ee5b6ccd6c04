//! The simulated radio and the simulated transport.
//!
//! [`Radio`] is the air between the phone and a set of [`Peripheral`]s:
//! connection state, ATT errors, reachability, and turning what a
//! peripheral emits into [`TransportEvent`]s. It is synchronous and knows
//! nothing about tokio, so the same radio serves the [`SimulatedTransport`]
//! (the core talks to it directly) and the [`super::HostApp`] harness (which
//! plays a phone app feeding the host-fed transport).
//!
//! [`SimulatedTransport`] runs a pump task that ticks the radio on tokio
//! time, so on a paused runtime a simulated day costs milliseconds. Events
//! are published while the radio's lock is held, so every subscriber sees
//! them in the order they happened.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::{AttError, Peripheral};
use crate::clock::Clock;
use crate::transport::{
    Characteristic, EventReceiver, GattUuid, PeripheralId, Transport, TransportEvent, WriteKind,
};
use crate::{Error, Result};

struct Slot {
    id: PeripheralId,
    device: Box<dyn Peripheral>,
    connected: bool,
}

/// The air between the phone and simulated peripherals; see the module
/// docs.
#[derive(Default)]
pub struct Radio {
    slots: Vec<Slot>,
}

impl std::fmt::Debug for Radio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.slots.iter().map(|s| &s.id))
            .finish()
    }
}

fn att(id: &PeripheralId, characteristic: GattUuid, e: AttError) -> Error {
    Error::Device(format!("{}: {characteristic}: ATT error {e:?}", id.0))
}

impl Radio {
    /// An empty radio.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a peripheral; returns the id it advertises.
    pub fn add(&mut self, device: Box<dyn Peripheral>) -> PeripheralId {
        let id = device.advertisement().id;
        self.slots.push(Slot {
            id: id.clone(),
            device,
            connected: false,
        });
        id
    }

    fn slot(&mut self, id: &PeripheralId) -> Result<&mut Slot> {
        self.slots
            .iter_mut()
            .find(|s| &s.id == id)
            .ok_or_else(|| Error::Device(format!("{}: no such peripheral", id.0)))
    }

    fn linked(&mut self, now: DateTime<Utc>, id: &PeripheralId) -> Result<&mut Slot> {
        let slot = self.slot(id)?;
        if !slot.connected || !slot.device.reachable(now) {
            return Err(Error::Device(format!("{}: not connected", id.0)));
        }
        Ok(slot)
    }

    /// Advertisements of the reachable devices offering any of `services`
    /// (every device when empty).
    pub fn scan(&self, now: DateTime<Utc>, services: &[GattUuid]) -> Vec<TransportEvent> {
        self.slots
            .iter()
            .filter(|s| s.device.reachable(now))
            .map(|s| s.device.advertisement())
            .filter(|a| services.is_empty() || a.services.iter().any(|u| services.contains(u)))
            .map(TransportEvent::Discovered)
            .collect()
    }

    /// Connects; fails when the device is unreachable.
    pub fn connect(
        &mut self,
        now: DateTime<Utc>,
        id: &PeripheralId,
    ) -> Result<Vec<TransportEvent>> {
        let slot = self.slot(id)?;
        if slot.connected {
            return Ok(Vec::new());
        }
        if !slot.device.reachable(now) {
            return Err(Error::Device(format!("{}: unreachable", id.0)));
        }
        slot.device.set_connected(now, true);
        slot.connected = true;
        Ok(vec![TransportEvent::Connected(id.clone())])
    }

    /// Disconnects (a no-op when not connected).
    pub fn disconnect(
        &mut self,
        now: DateTime<Utc>,
        id: &PeripheralId,
    ) -> Result<Vec<TransportEvent>> {
        let slot = self.slot(id)?;
        if !slot.connected {
            return Ok(Vec::new());
        }
        slot.device.set_connected(now, false);
        slot.connected = false;
        Ok(vec![TransportEvent::Disconnected(id.clone())])
    }

    /// The GATT table of a connected device.
    pub fn discover(
        &mut self,
        now: DateTime<Utc>,
        id: &PeripheralId,
    ) -> Result<Vec<Characteristic>> {
        Ok(self.linked(now, id)?.device.characteristics())
    }

    /// Reads a characteristic of a connected device.
    pub fn read(
        &mut self,
        now: DateTime<Utc>,
        id: &PeripheralId,
        characteristic: GattUuid,
    ) -> Result<Vec<u8>> {
        let slot = self.linked(now, id)?;
        slot.device
            .read(now, characteristic)
            .map_err(|e| att(id, characteristic, e))
    }

    /// Writes a characteristic and returns what the device sends at once
    /// in reply (a control point's indications).
    pub fn write(
        &mut self,
        now: DateTime<Utc>,
        id: &PeripheralId,
        characteristic: GattUuid,
        value: &[u8],
    ) -> Result<Vec<TransportEvent>> {
        let slot = self.linked(now, id)?;
        slot.device
            .write(now, characteristic, value)
            .map_err(|e| att(id, characteristic, e))?;
        let emissions = slot.device.advance(now);
        Ok(emissions
            .into_iter()
            .map(|e| TransportEvent::Value {
                id: id.clone(),
                characteristic: e.characteristic,
                value: e.value,
            })
            .collect())
    }

    /// Enables or disables notifications/indications.
    pub fn subscribe(
        &mut self,
        now: DateTime<Utc>,
        id: &PeripheralId,
        characteristic: GattUuid,
        on: bool,
    ) -> Result<()> {
        let slot = self.linked(now, id)?;
        slot.device
            .set_subscribed(characteristic, on)
            .map_err(|e| att(id, characteristic, e))
    }

    /// Runs every device up to `now`: links of unreachable devices drop,
    /// connected devices' notifications become events.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<TransportEvent> {
        let mut events = Vec::new();
        for slot in &mut self.slots {
            if slot.connected && !slot.device.reachable(now) {
                slot.device.set_connected(now, false);
                slot.connected = false;
                events.push(TransportEvent::Disconnected(slot.id.clone()));
            }
            let emissions = slot.device.advance(now);
            if slot.connected {
                events.extend(emissions.into_iter().map(|e| TransportEvent::Value {
                    id: slot.id.clone(),
                    characteristic: e.characteristic,
                    value: e.value,
                }));
            }
        }
        events
    }
}

struct Shared {
    radio: Mutex<Radio>,
    clock: Arc<dyn Clock>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<TransportEvent>>>,
}

impl Shared {
    fn radio(&self) -> MutexGuard<'_, Radio> {
        // A panic while holding the lock cannot leave the radio half
        // updated in a way later calls would misread; keep going.
        self.radio.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, events: Vec<TransportEvent>) {
        if events.is_empty() {
            return;
        }
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|tx| events.iter().all(|e| tx.send(e.clone()).is_ok()));
    }

    /// Runs `f` on the radio at the current time and publishes its events
    /// under the same lock, so they stay in order with the pump's.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Radio, DateTime<Utc>) -> Result<(T, Vec<TransportEvent>)>,
    ) -> Result<T> {
        let mut radio = self.radio();
        let now = self.clock.now();
        let (out, events) = f(&mut radio, now)?;
        self.publish(events);
        Ok(out)
    }
}

/// The [`Transport`] over simulated peripherals; see the module docs.
pub struct SimulatedTransport {
    shared: Arc<Shared>,
    pump: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SimulatedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedTransport").finish_non_exhaustive()
    }
}

impl SimulatedTransport {
    /// Starts the transport over `radio`, ticking it every `tick` of tokio
    /// time (1 s suits every simulated device; notifications are stamped
    /// with the tick that delivers them). Must be called inside a tokio
    /// runtime.
    pub fn start(radio: Radio, clock: Arc<dyn Clock>, tick: Duration) -> Self {
        let shared = Arc::new(Shared {
            radio: Mutex::new(radio),
            clock,
            subscribers: Mutex::new(Vec::new()),
        });
        let pump_shared = Arc::clone(&shared);
        let pump = tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let _ = pump_shared.with(|radio, now| Ok(((), radio.tick(now))));
            }
        });
        Self { shared, pump }
    }

    /// Runs `f` on the radio (tests use it to inspect peripherals).
    pub fn with_radio<T>(&self, f: impl FnOnce(&mut Radio) -> T) -> T {
        f(&mut self.shared.radio())
    }
}

impl Drop for SimulatedTransport {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

#[async_trait]
impl Transport for SimulatedTransport {
    fn events(&self) -> EventReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    async fn start_scan(&self, services: &[GattUuid]) -> Result<()> {
        self.shared.with(|r, now| Ok(((), r.scan(now, services))))
    }

    async fn stop_scan(&self) -> Result<()> {
        Ok(())
    }

    async fn connect(&self, id: &PeripheralId) -> Result<()> {
        self.shared.with(|r, now| Ok(((), r.connect(now, id)?)))
    }

    async fn disconnect(&self, id: &PeripheralId) -> Result<()> {
        self.shared.with(|r, now| Ok(((), r.disconnect(now, id)?)))
    }

    async fn discover(&self, id: &PeripheralId) -> Result<Vec<Characteristic>> {
        self.shared
            .with(|r, now| Ok((r.discover(now, id)?, Vec::new())))
    }

    async fn read(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<Vec<u8>> {
        self.shared
            .with(|r, now| Ok((r.read(now, id, characteristic)?, Vec::new())))
    }

    async fn write(
        &self,
        id: &PeripheralId,
        characteristic: GattUuid,
        value: &[u8],
        _kind: WriteKind,
    ) -> Result<()> {
        self.shared
            .with(|r, now| Ok(((), r.write(now, id, characteristic, value)?)))
    }

    async fn subscribe(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<()> {
        self.shared.with(|r, now| {
            Ok((
                (),
                r.subscribe(now, id, characteristic, true)
                    .map(|_| Vec::new())?,
            ))
        })
    }

    async fn unsubscribe(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<()> {
        self.shared.with(|r, now| {
            Ok((
                (),
                r.subscribe(now, id, characteristic, false)
                    .map(|_| Vec::new())?,
            ))
        })
    }
}

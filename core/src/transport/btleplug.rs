//! The btleplug transport: the operating system's own Bluetooth stack
//! (BlueZ on Linux, CoreBluetooth on macOS and iOS, WinRT on Windows, the
//! Android stack) behind the one [`Transport`] trait.
//!
//! Place in the data flow: first stage after the radio, on platforms where
//! the core drives Bluetooth itself rather than the host app feeding bytes
//! in. It hands over characteristic bytes exactly as received; decoding is
//! the codec's job.
//!
//! Decisions that shaped it:
//! - **One ordered channel.** btleplug reports connection changes on the
//!   adapter's event stream and notifications on a separate stream per
//!   peripheral. One task owns both and forwards them onto the transport's
//!   event channel. Before it forwards a disconnect it drains every
//!   notification already delivered, so a session never sees a value that
//!   the device sent before the link dropped arrive *after* the
//!   [`TransportEvent::Disconnected`]. (On BlueZ both streams are fed from
//!   one D-Bus connection in arrival order, so everything sent before the
//!   disconnect signal is already queued when the disconnect is seen.)
//! - **Disconnects arrive only through the adapter's event stream.** A
//!   peer disconnect is never an error on a call; the session learns of it
//!   from [`TransportEvent::Disconnected`] and reconnects.
//! - **A fresh peripheral handle on every connect.** On Apple platforms a
//!   handle kept across a disconnect may stop delivering notifications
//!   (btleplug issue #413), so [`Transport::connect`] always asks the
//!   adapter for a new handle, rediscovers the services on it, and opens a
//!   new notification stream. This costs one service lookup per connection
//!   on the other platforms and keeps one code path for all.
//! - **Subscriptions do not survive a disconnect.** After a reconnect the
//!   session subscribes again, as with every transport.
//! - Errors become [`Error::Device`] with the operation and the stack's
//!   message; they never carry characteristic values (which may be
//!   protected health information).
//!
//! On Android btleplug needs its JNI side initialised by the host app
//! (`btleplug::platform::init`) before [`BtleplugTransport::new`]; apps
//! that prefer their own `BluetoothGatt` code use the host-fed transport.
//!
//! On Linux btleplug talks to BlueZ over the D-Bus *system* bus; the test
//! suite runs it unmodified against an emulated BlueZ on a private bus
//! (`tests/fake-bluez`).

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use ::btleplug::api::{
    Central, CentralEvent, CharPropFlags, Manager as _, Peripheral as _, ScanFilter,
    ValueNotification, WriteType,
};
use ::btleplug::platform::{self, Adapter, Manager};
use async_trait::async_trait;
use futures_util::future::poll_fn;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{
    Advertisement, Characteristic, EventReceiver, GattUuid, PeripheralId, Properties, Transport,
    TransportEvent, WriteKind,
};
use crate::{Error, Result};

type Notifications = Pin<Box<dyn Stream<Item = ValueNotification> + Send>>;
type CentralEvents = Pin<Box<dyn Stream<Item = CentralEvent> + Send>>;

/// Hands a peripheral's new notification stream to the forwarding task.
struct Watch {
    id: String,
    stream: Notifications,
}

/// What scanning currently asks for.
#[derive(Default)]
struct Scan {
    active: bool,
    services: Vec<GattUuid>,
    /// Devices already reported during this scan: each is reported once.
    seen: HashSet<String>,
}

/// State shared by the transport's methods and its forwarding task.
#[derive(Default)]
struct Shared {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<TransportEvent>>>,
    handles: Mutex<HashMap<String, platform::Peripheral>>,
    scan: Mutex<Scan>,
}

/// Locks a mutex. No code path panics while holding one of these locks,
/// so a poisoned lock still guards consistent data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Sends to every live subscriber and forgets the ones that hung up.
    fn publish(&self, event: TransportEvent) {
        lock(&self.subscribers).retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// A [`Transport`] over btleplug, bound to one Bluetooth adapter.
///
/// Must be created and used inside a Tokio runtime: it runs one task that
/// forwards the stack's events, stopped when the transport is dropped.
pub struct BtleplugTransport {
    adapter: Adapter,
    shared: Arc<Shared>,
    watch: mpsc::UnboundedSender<Watch>,
    forwarder: tokio::task::JoinHandle<()>,
}

impl Drop for BtleplugTransport {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

fn device(op: &'static str) -> impl FnOnce(::btleplug::Error) -> Error {
    move |e| Error::Device(format!("{op}: {e}"))
}

fn to_uuid(u: GattUuid) -> Uuid {
    Uuid::from_u128(u.0)
}

fn from_uuid(u: Uuid) -> GattUuid {
    GattUuid(u.as_u128())
}

impl BtleplugTransport {
    /// Opens the system's first Bluetooth adapter.
    ///
    /// Fails with [`Error::Device`] when the stack is unreachable (on Linux:
    /// no system D-Bus or no BlueZ) or has no adapter.
    pub async fn new() -> Result<Self> {
        let manager = Manager::new().await.map_err(device("open the stack"))?;
        let adapter = manager
            .adapters()
            .await
            .map_err(device("list adapters"))?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Device("no Bluetooth adapter".into()))?;
        Self::with_adapter(adapter).await
    }

    /// Uses the given adapter. Subscribes to its events before returning, so
    /// nothing that happens afterwards is missed.
    pub async fn with_adapter(adapter: Adapter) -> Result<Self> {
        let central = adapter.events().await.map_err(device("adapter events"))?;
        let shared = Arc::new(Shared::default());
        let (watch, watches) = mpsc::unbounded_channel();
        let forwarder = tokio::spawn(forward(adapter.clone(), shared.clone(), central, watches));
        Ok(BtleplugTransport {
            adapter,
            shared,
            watch,
            forwarder,
        })
    }

    /// The handle last seen for `id`, or one found among the adapter's
    /// known devices.
    async fn known_handle(&self, id: &PeripheralId) -> Result<platform::Peripheral> {
        if let Some(h) = lock(&self.shared.handles).get(&id.0) {
            return Ok(h.clone());
        }
        let found = self
            .adapter
            .peripherals()
            .await
            .map_err(device("list devices"))?
            .into_iter()
            .find(|p| p.id().to_string() == id.0)
            .ok_or_else(|| Error::Device(format!("unknown device {}", id.0)))?;
        lock(&self.shared.handles).insert(id.0.clone(), found.clone());
        Ok(found)
    }

    /// The characteristic with `uuid` on the device, rediscovering services
    /// once if the handle does not know it yet.
    async fn characteristic(
        &self,
        id: &PeripheralId,
        uuid: GattUuid,
    ) -> Result<(platform::Peripheral, ::btleplug::api::Characteristic)> {
        let handle = self.known_handle(id).await?;
        let wanted = to_uuid(uuid);
        let find =
            |h: &platform::Peripheral| h.characteristics().into_iter().find(|c| c.uuid == wanted);
        if let Some(c) = find(&handle) {
            return Ok((handle, c));
        }
        handle
            .discover_services()
            .await
            .map_err(device("discover services"))?;
        let c = find(&handle)
            .ok_or_else(|| Error::Device(format!("characteristic {uuid} not found")))?;
        Ok((handle, c))
    }
}

#[async_trait]
impl Transport for BtleplugTransport {
    fn events(&self) -> EventReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.shared.subscribers).push(tx);
        rx
    }

    async fn start_scan(&self, services: &[GattUuid]) -> Result<()> {
        {
            let mut scan = lock(&self.shared.scan);
            scan.active = true;
            scan.services = services.to_vec();
            scan.seen.clear();
        }
        let filter = ScanFilter {
            services: services.iter().copied().map(to_uuid).collect(),
        };
        self.adapter
            .start_scan(filter)
            .await
            .map_err(device("start scan"))
    }

    async fn stop_scan(&self) -> Result<()> {
        lock(&self.shared.scan).active = false;
        self.adapter.stop_scan().await.map_err(device("stop scan"))
    }

    async fn connect(&self, id: &PeripheralId) -> Result<()> {
        let old = self.known_handle(id).await?;
        // A fresh handle every time: see the module docs (btleplug #413).
        let handle = self
            .adapter
            .peripheral(&old.id())
            .await
            .map_err(device("find device"))?;
        handle.connect().await.map_err(device("connect"))?;
        handle
            .discover_services()
            .await
            .map_err(device("discover services"))?;
        let stream = handle
            .notifications()
            .await
            .map_err(device("open notifications"))?;
        lock(&self.shared.handles).insert(id.0.clone(), handle);
        self.watch
            .send(Watch {
                id: id.0.clone(),
                stream,
            })
            .map_err(|_| Error::Device("transport event task has stopped".into()))
    }

    async fn disconnect(&self, id: &PeripheralId) -> Result<()> {
        let handle = self.known_handle(id).await?;
        handle.disconnect().await.map_err(device("disconnect"))
    }

    async fn discover(&self, id: &PeripheralId) -> Result<Vec<Characteristic>> {
        let handle = self.known_handle(id).await?;
        if handle.characteristics().is_empty() {
            handle
                .discover_services()
                .await
                .map_err(device("discover services"))?;
        }
        Ok(handle
            .characteristics()
            .into_iter()
            .map(|c| Characteristic {
                uuid: from_uuid(c.uuid),
                service: from_uuid(c.service_uuid),
                properties: Properties {
                    read: c.properties.contains(CharPropFlags::READ),
                    write: c.properties.contains(CharPropFlags::WRITE),
                    write_without_response: c
                        .properties
                        .contains(CharPropFlags::WRITE_WITHOUT_RESPONSE),
                    notify: c.properties.contains(CharPropFlags::NOTIFY),
                    indicate: c.properties.contains(CharPropFlags::INDICATE),
                },
            })
            .collect())
    }

    async fn read(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<Vec<u8>> {
        let (handle, c) = self.characteristic(id, characteristic).await?;
        handle.read(&c).await.map_err(device("read"))
    }

    async fn write(
        &self,
        id: &PeripheralId,
        characteristic: GattUuid,
        value: &[u8],
        kind: WriteKind,
    ) -> Result<()> {
        let (handle, c) = self.characteristic(id, characteristic).await?;
        let kind = match kind {
            WriteKind::WithResponse => WriteType::WithResponse,
            WriteKind::WithoutResponse => WriteType::WithoutResponse,
        };
        handle.write(&c, value, kind).await.map_err(device("write"))
    }

    async fn subscribe(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<()> {
        let (handle, c) = self.characteristic(id, characteristic).await?;
        handle.subscribe(&c).await.map_err(device("subscribe"))
    }

    async fn unsubscribe(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<()> {
        let (handle, c) = self.characteristic(id, characteristic).await?;
        handle.unsubscribe(&c).await.map_err(device("unsubscribe"))
    }
}

/// What the forwarding task woke up for.
enum Step {
    Watch(Option<Watch>),
    Value(String, Option<ValueNotification>),
    Central(Option<CentralEvent>),
}

/// Waits for the next notification from any watched peripheral; `None`
/// as the value means that peripheral's stream ended.
async fn next_value(
    streams: &mut HashMap<String, Notifications>,
) -> (String, Option<ValueNotification>) {
    poll_fn(|cx| {
        for (id, stream) in streams.iter_mut() {
            if let Poll::Ready(v) = stream.as_mut().poll_next(cx) {
                return Poll::Ready((id.clone(), v));
            }
        }
        Poll::Pending
    })
    .await
}

fn value_event(id: &str, n: ValueNotification) -> TransportEvent {
    TransportEvent::Value {
        id: PeripheralId(id.to_owned()),
        characteristic: from_uuid(n.uuid),
        value: n.value,
    }
}

/// The one task that turns btleplug's streams into the ordered event
/// channel. Ends when the transport is dropped or the stack goes away.
async fn forward(
    adapter: Adapter,
    shared: Arc<Shared>,
    mut central: CentralEvents,
    mut watches: mpsc::UnboundedReceiver<Watch>,
) {
    let mut streams: HashMap<String, Notifications> = HashMap::new();
    loop {
        // Biased: a new stream is registered before anything else is
        // handled, and notifications go before adapter events.
        let step = tokio::select! {
            biased;
            w = watches.recv() => Step::Watch(w),
            (id, v) = next_value(&mut streams) => Step::Value(id, v),
            e = central.next() => Step::Central(e),
        };
        match step {
            Step::Watch(None) | Step::Central(None) => break,
            Step::Watch(Some(w)) => {
                streams.insert(w.id, w.stream);
            }
            Step::Value(id, Some(n)) => shared.publish(value_event(&id, n)),
            Step::Value(id, None) => {
                streams.remove(&id);
            }
            Step::Central(Some(event)) => {
                handle_central(&adapter, &shared, &mut streams, event).await;
            }
        }
    }
}

async fn handle_central(
    adapter: &Adapter,
    shared: &Shared,
    streams: &mut HashMap<String, Notifications>,
    event: CentralEvent,
) {
    match event {
        CentralEvent::DeviceDiscovered(id)
        | CentralEvent::DeviceUpdated(id)
        | CentralEvent::ServicesAdvertisement { id, .. }
        | CentralEvent::RssiUpdate { id, .. } => discovered(adapter, shared, id).await,
        CentralEvent::DeviceConnected(id) => {
            shared.publish(TransportEvent::Connected(PeripheralId(id.to_string())));
        }
        CentralEvent::DeviceDisconnected(id) => {
            // Everything the device sent before the link dropped is already
            // queued on the notification streams: deliver it first.
            for (sid, stream) in streams.iter_mut() {
                while let Some(Some(n)) = stream.next().now_or_never() {
                    shared.publish(value_event(sid, n));
                }
            }
            shared.publish(TransportEvent::Disconnected(PeripheralId(id.to_string())));
        }
        _ => {}
    }
}

/// Reports a device seen while scanning, once per scan, when it advertises
/// one of the wanted services (or any device when none were named).
async fn discovered(adapter: &Adapter, shared: &Shared, id: platform::PeripheralId) {
    let key = id.to_string();
    {
        let scan = lock(&shared.scan);
        if !scan.active || scan.seen.contains(&key) {
            return;
        }
    }
    // A device that vanished between the event and this lookup is simply
    // not reported; the next advertisement reports it.
    let Ok(handle) = adapter.peripheral(&id).await else {
        return;
    };
    let Ok(Some(props)) = handle.properties().await else {
        return;
    };
    let services: Vec<GattUuid> = props.services.iter().copied().map(from_uuid).collect();
    {
        let mut scan = lock(&shared.scan);
        let wanted = scan.services.is_empty() || services.iter().any(|s| scan.services.contains(s));
        if !scan.active || !wanted || !scan.seen.insert(key.clone()) {
            return;
        }
    }
    lock(&shared.handles).entry(key.clone()).or_insert(handle);
    shared.publish(TransportEvent::Discovered(Advertisement {
        id: PeripheralId(key),
        name: props.local_name,
        services,
        rssi: props.rssi,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_uuids_cross_into_btleplug_and_back_unchanged() {
        let battery_level = GattUuid::from_u16(0x2A19);
        let theirs = to_uuid(battery_level);
        assert_eq!(theirs.to_string(), "00002a19-0000-1000-8000-00805f9b34fb");
        assert_eq!(theirs, ::btleplug::api::bleuuid::uuid_from_u16(0x2A19));
        assert_eq!(from_uuid(theirs), battery_level);
    }
}

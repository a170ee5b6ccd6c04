//! An emulated BlueZ that serves Vigil's simulated [`Peripheral`]s on a
//! private D-Bus, so the real btleplug transport runs unmodified against the
//! same simulated devices the other transport suites use.
//!
//! Place in the data flow: this sits where the radio and `bluetoothd` would
//! be. The btleplug transport speaks D-Bus to it exactly as it would to
//! BlueZ; the fake turns each D-Bus call into a [`Peripheral`] call and each
//! [`vigil_core::transport::simulated::Emission`] into the
//! `PropertiesChanged(Value)` signal BlueZ sends for a notification.
//!
//! Decisions that shaped it:
//! - Written with zbus (pure Rust) rather than python-dbusmock, so it serves
//!   our Rust peripherals directly and needs no second language at test time.
//! - Only the surface btleplug 0.13 (through bluez-async) uses is emulated:
//!   `ObjectManager.GetManagedObjects` and `InterfacesAdded` at `/`,
//!   `Adapter1` (discovery, filter, power), `Device1` (connect, disconnect),
//!   `GattService1` and `GattCharacteristic1` (read, write, notify) found by
//!   `Introspect` under `serviceNNNN/charNNNN` nodes. zbus writes a node's
//!   `<interface>`s before its child `<node>`s, which bluez-async's parser
//!   needs.
//! - Time is injected: the test moves the fake's clock with
//!   [`FakeBluez::advance_to`], so a simulated hour runs in milliseconds and
//!   every run is the same. Control-point answers queued by a write go out at
//!   once, as a real sensor answers within a connection interval.
//! - The peer can drop the link ([`FakeBluez::drop_link`]): `Connected`
//!   turns false exactly as BlueZ reports a supervision timeout.

mod bus;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use vigil_core::clock::Clock;
use vigil_core::transport::simulated::{AttError, Peripheral};
use vigil_core::transport::{Characteristic, GattUuid};
use zbus::fdo::{ObjectManager, Properties};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedObjectPath, Value};
use zbus::{Connection, interface, names::InterfaceName};

pub use bus::PrivateBus;

/// The adapter's object path: `hci0`, as on almost every Linux machine.
pub const ADAPTER_PATH: &str = "/org/bluez/hci0";

const DEVICE_IFACE: &str = "org.bluez.Device1";
const ADAPTER_IFACE: &str = "org.bluez.Adapter1";
const CHAR_IFACE: &str = "org.bluez.GattCharacteristic1";

/// What can go wrong setting up or driving the fake.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// The private `dbus-daemon` could not be started.
    #[error("dbus-daemon: {0}")]
    Daemon(String),
    /// A D-Bus operation failed.
    #[error("d-bus: {0}")]
    Bus(#[from] zbus::Error),
    /// The test named a device the fake does not serve.
    #[error("unknown device {0}")]
    UnknownDevice(String),
}

/// Errors as BlueZ names them on the bus, so clients see the error names
/// they would see from `bluetoothd`.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.bluez.Error")]
enum BluezError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// Connecting failed or the device is gone.
    Failed(String),
    /// The device is not connected.
    NotConnected(String),
    /// The attribute refused the operation.
    NotPermitted(String),
    /// The arguments or the value are wrong.
    InvalidArguments(String),
    /// The characteristic does not exist.
    NotFound(String),
    /// A procedure is already running.
    InProgress(String),
}

impl From<AttError> for BluezError {
    fn from(e: AttError) -> Self {
        let text = format!("{e:?}");
        match e {
            AttError::AttributeNotFound => BluezError::NotFound(text),
            AttError::ReadNotPermitted | AttError::WriteNotPermitted => {
                BluezError::NotPermitted(text)
            }
            AttError::ProcedureAlreadyInProgress => BluezError::InProgress(text),
            AttError::ClientCharacteristicConfigurationImproperlyConfigured => {
                BluezError::NotPermitted(text)
            }
            AttError::InvalidAttributeValueLength => BluezError::InvalidArguments(text),
        }
    }
}

/// One served device and its link state.
struct Device {
    peripheral: Box<dyn Peripheral>,
    address: String,
    /// `Device1` is on the bus (after the first scan that saw it).
    exported: bool,
    /// The GATT objects are on the bus (after the first connection; BlueZ
    /// keeps them cached afterwards, and so does the fake).
    gatt_exported: bool,
    connected: bool,
    /// Characteristic object path for each UUID.
    char_paths: BTreeMap<GattUuid, String>,
    /// The last value read or notified, for the `Value` property.
    values: HashMap<GattUuid, Vec<u8>>,
    notifying: BTreeMap<GattUuid, bool>,
}

struct Shared {
    now: DateTime<Utc>,
    /// When set, time follows this clock (shared with the session under
    /// test); otherwise only [`FakeBluez::advance_to`] moves it.
    clock: Option<Arc<dyn Clock>>,
    discovering: bool,
    powered: bool,
    devices: BTreeMap<String, Device>,
}

type SharedRef = Arc<Mutex<Shared>>;

impl Shared {
    /// The current time, never going backwards.
    fn now(&mut self) -> DateTime<Utc> {
        if let Some(clock) = &self.clock {
            let t = clock.now();
            if t > self.now {
                self.now = t;
            }
        }
        self.now
    }
}

/// Locks the shared state. A panic while holding the lock can only come
/// from a test assertion, so the state is still usable afterwards.
fn lock(shared: &SharedRef) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The emulated BlueZ daemon, serving on one D-Bus connection that owns
/// `org.bluez`.
pub struct FakeBluez {
    conn: Connection,
    shared: SharedRef,
}

impl FakeBluez {
    /// Connects to the bus at `address`, owns `org.bluez`, and exports the
    /// object manager and one powered adapter `hci0`. The fake's clock
    /// starts at `start`.
    pub async fn serve(address: &str, start: DateTime<Utc>) -> Result<Self, FakeError> {
        Self::serve_inner(address, start, None).await
    }

    /// Like [`FakeBluez::serve`], but the fake's time is `clock`'s (the
    /// same clock the session under test reads), so device time and phone
    /// time agree. Devices run when [`FakeBluez::tick`] is called.
    pub async fn serve_with_clock(address: &str, clock: Arc<dyn Clock>) -> Result<Self, FakeError> {
        let start = clock.now();
        Self::serve_inner(address, start, Some(clock)).await
    }

    async fn serve_inner(
        address: &str,
        start: DateTime<Utc>,
        clock: Option<Arc<dyn Clock>>,
    ) -> Result<Self, FakeError> {
        let shared = Arc::new(Mutex::new(Shared {
            now: start,
            clock,
            discovering: false,
            powered: true,
            devices: BTreeMap::new(),
        }));
        let conn = zbus::connection::Builder::address(address)?
            .serve_at("/", ObjectManager)?
            .serve_at(
                ADAPTER_PATH,
                Adapter1 {
                    shared: shared.clone(),
                },
            )?
            .name("org.bluez")?
            .build()
            .await?;
        Ok(FakeBluez { conn, shared })
    }

    /// Adds a device; it appears on the bus at the next scan that finds it
    /// reachable. Returns its object path (`/org/bluez/hci0/dev_…`).
    pub fn add_peripheral(&self, peripheral: Box<dyn Peripheral>) -> String {
        let mut shared = lock(&self.shared);
        let n = shared.devices.len() + 1;
        let address = format!("C0:FF:EE:00:{:02X}:{:02X}", (n >> 8) & 0xFF, n & 0xFF);
        let path = format!("{ADAPTER_PATH}/dev_{}", address.replace(':', "_"));
        shared.devices.insert(
            path.clone(),
            Device {
                peripheral,
                address,
                exported: false,
                gatt_exported: false,
                connected: false,
                char_paths: BTreeMap::new(),
                values: HashMap::new(),
                notifying: BTreeMap::new(),
            },
        );
        path
    }

    /// The fake's current (simulated) time.
    pub fn now(&self) -> DateTime<Utc> {
        lock(&self.shared).now()
    }

    /// Runs every device up to the clock's time (see
    /// [`FakeBluez::serve_with_clock`]) and sends what they emit; drops the
    /// links of devices that became unreachable. Returns how many
    /// notifications and indications went out.
    pub async fn tick(&self) -> Result<usize, FakeError> {
        let now = self.now();
        self.advance_to(now).await
    }

    /// Whether the device at `path` is connected.
    pub fn is_connected(&self, path: &str) -> bool {
        lock(&self.shared)
            .devices
            .get(path)
            .is_some_and(|d| d.connected)
    }

    /// Moves the clock to `now` (never backwards), runs every device up to
    /// it and sends what they emit. Returns how many notifications and
    /// indications went out.
    pub async fn advance_to(&self, now: DateTime<Utc>) -> Result<usize, FakeError> {
        let paths: Vec<String> = {
            let mut shared = lock(&self.shared);
            if now > shared.now() {
                shared.now = now;
            }
            shared.devices.keys().cloned().collect()
        };
        let mut sent = 0;
        for path in paths {
            sent += pump(&self.conn, &self.shared, &path).await?;
        }
        Ok(sent)
    }

    /// The peer drops the link (out of range, battery, supervision
    /// timeout): the device learns it is disconnected and BlueZ reports
    /// `Connected = false`, as it would.
    pub async fn drop_link(&self, path: &str) -> Result<(), FakeError> {
        {
            let mut shared = lock(&self.shared);
            let now = shared.now();
            let device = shared
                .devices
                .get_mut(path)
                .ok_or_else(|| FakeError::UnknownDevice(path.to_owned()))?;
            if !device.connected {
                return Ok(());
            }
            device.connected = false;
            device.notifying.clear();
            device.peripheral.set_connected(now, false);
        }
        emit_link_down(&self.conn, path).await?;
        Ok(())
    }
}

/// Sends the device's pending emissions as `PropertiesChanged(Value)`
/// signals, in order. Only a connected device sends anything: a sensor
/// stores what it measures while the link is down.
async fn pump(conn: &Connection, shared: &SharedRef, path: &str) -> Result<usize, FakeError> {
    // Decided under the lock, sent after it: the lock is never held
    // across an await.
    let (link_dropped, emissions) = {
        let mut guard = lock(shared);
        let now = guard.now();
        match guard.devices.get_mut(path) {
            None => (false, Vec::new()),
            Some(device) if device.connected && !device.peripheral.reachable(now) => {
                // Out of range or switched off: the link drops, as BlueZ
                // reports a supervision timeout; the device keeps measuring.
                device.connected = false;
                device.notifying.clear();
                device.peripheral.set_connected(now, false);
                let _ = device.peripheral.advance(now);
                (true, Vec::new())
            }
            Some(device) if !device.connected => {
                // Still run the device so it keeps measuring and storing.
                let _ = device.peripheral.advance(now);
                (false, Vec::new())
            }
            Some(device) => {
                let out = device.peripheral.advance(now);
                let mut routed = Vec::with_capacity(out.len());
                for e in out {
                    if let Some(char_path) = device.char_paths.get(&e.characteristic) {
                        device.values.insert(e.characteristic, e.value.clone());
                        routed.push((char_path.clone(), e));
                    }
                }
                (false, routed)
            }
        }
    };
    if link_dropped {
        emit_link_down(conn, path).await?;
        return Ok(0);
    }
    let sent = emissions.len();
    for (char_path, e) in emissions {
        let mut changed = HashMap::new();
        changed.insert("Value", Value::from(e.value));
        emit_props(conn, &char_path, CHAR_IFACE, changed).await?;
    }
    Ok(sent)
}

async fn emit_props(
    conn: &Connection,
    path: &str,
    iface: &'static str,
    changed: HashMap<&str, Value<'_>>,
) -> Result<(), zbus::Error> {
    let emitter = SignalEmitter::new(conn, path.to_owned())?;
    Properties::properties_changed(
        &emitter,
        InterfaceName::from_static_str_unchecked(iface),
        changed,
        Cow::Borrowed(&[]),
    )
    .await
}

async fn emit_link_down(conn: &Connection, path: &str) -> Result<(), zbus::Error> {
    let mut changed = HashMap::new();
    changed.insert("ServicesResolved", Value::from(false));
    changed.insert("Connected", Value::from(false));
    emit_props(conn, path, DEVICE_IFACE, changed).await
}

/// `org.bluez.Adapter1` on `/org/bluez/hci0`.
struct Adapter1 {
    shared: SharedRef,
}

#[interface(name = "org.bluez.Adapter1")]
impl Adapter1 {
    /// Scanning finds every reachable device: a new one is exported
    /// (`InterfacesAdded`, which btleplug reports as discovered), a known
    /// one reports a fresh RSSI, as BlueZ does for cached devices.
    async fn start_discovery(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> Result<(), BluezError> {
        let (to_export, to_refresh) = {
            let mut shared = lock(&self.shared);
            shared.discovering = true;
            let now = shared.now();
            let mut to_export = Vec::new();
            let mut to_refresh = Vec::new();
            for (path, d) in shared.devices.iter_mut() {
                if !d.peripheral.reachable(now) {
                    continue;
                }
                if d.exported {
                    to_refresh.push(path.clone());
                } else {
                    d.exported = true;
                    to_export.push(path.clone());
                }
            }
            (to_export, to_refresh)
        };
        let mut changed = HashMap::new();
        changed.insert("Discovering", Value::from(true));
        emit_props(conn, ADAPTER_PATH, ADAPTER_IFACE, changed).await?;
        for path in to_export {
            server
                .at(
                    path.as_str(),
                    Device1 {
                        shared: self.shared.clone(),
                        path: path.clone(),
                    },
                )
                .await?;
        }
        for path in to_refresh {
            let mut changed = HashMap::new();
            changed.insert("RSSI", Value::from(RSSI));
            emit_props(conn, &path, DEVICE_IFACE, changed).await?;
        }
        Ok(())
    }

    async fn stop_discovery(
        &self,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), BluezError> {
        lock(&self.shared).discovering = false;
        let mut changed = HashMap::new();
        changed.insert("Discovering", Value::from(false));
        emit_props(conn, ADAPTER_PATH, ADAPTER_IFACE, changed).await?;
        Ok(())
    }

    /// Accepted and ignored: the fake's devices are few and the transport
    /// filters by service itself.
    fn set_discovery_filter(&self, _filter: HashMap<String, zbus::zvariant::OwnedValue>) {}

    #[zbus(property)]
    fn address(&self) -> String {
        "C0:FF:EE:00:00:00".into()
    }

    #[zbus(property)]
    fn address_type(&self) -> String {
        "public".into()
    }

    #[zbus(property)]
    fn name(&self) -> String {
        "vigil-fake-bluez".into()
    }

    #[zbus(property)]
    fn alias(&self) -> String {
        "vigil-fake-bluez".into()
    }

    #[zbus(property)]
    fn modalias(&self) -> String {
        "usb:v1D6Bp0246d0540".into()
    }

    #[zbus(property)]
    fn powered(&self) -> bool {
        lock(&self.shared).powered
    }

    #[zbus(property)]
    fn set_powered(&mut self, on: bool) {
        lock(&self.shared).powered = on;
    }

    #[zbus(property)]
    fn discovering(&self) -> bool {
        lock(&self.shared).discovering
    }

    #[zbus(property, name = "UUIDs")]
    fn uuids(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The signal strength the fake reports for every device, in dBm.
const RSSI: i16 = -60;

/// `org.bluez.Device1` on `/org/bluez/hci0/dev_…`.
struct Device1 {
    shared: SharedRef,
    path: String,
}

impl Device1 {
    fn with<T>(&self, f: impl FnOnce(&Device) -> T) -> Option<T> {
        lock(&self.shared).devices.get(&self.path).map(f)
    }
}

#[interface(name = "org.bluez.Device1")]
impl Device1 {
    /// Connects: the device learns the link is up, its GATT table is
    /// exported (first time only), then `Connected` and `ServicesResolved`
    /// turn true, in that order, as BlueZ reports them.
    async fn connect(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> Result<(), BluezError> {
        let (table, export) = {
            let mut shared = lock(&self.shared);
            let now = shared.now();
            let device = shared
                .devices
                .get_mut(&self.path)
                .ok_or_else(|| BluezError::Failed("device removed".into()))?;
            if device.connected {
                return Ok(());
            }
            if !device.peripheral.reachable(now) {
                return Err(BluezError::Failed("le-connection-abort-by-local".into()));
            }
            device.peripheral.set_connected(now, true);
            device.connected = true;
            let export = !device.gatt_exported;
            device.gatt_exported = true;
            (device.peripheral.characteristics(), export)
        };
        if export {
            export_gatt(server, &self.shared, &self.path, &table).await?;
        }
        let mut changed = HashMap::new();
        changed.insert("Connected", Value::from(true));
        emit_props(conn, &self.path, DEVICE_IFACE, changed).await?;
        let mut changed = HashMap::new();
        changed.insert("ServicesResolved", Value::from(true));
        emit_props(conn, &self.path, DEVICE_IFACE, changed).await?;
        Ok(())
    }

    /// Disconnects at the central's request.
    async fn disconnect(&self, #[zbus(connection)] conn: &Connection) -> Result<(), BluezError> {
        {
            let mut shared = lock(&self.shared);
            let now = shared.now();
            let device = shared
                .devices
                .get_mut(&self.path)
                .ok_or_else(|| BluezError::Failed("device removed".into()))?;
            if !device.connected {
                return Ok(());
            }
            device.connected = false;
            device.notifying.clear();
            device.peripheral.set_connected(now, false);
        }
        emit_link_down(conn, &self.path).await?;
        Ok(())
    }

    #[zbus(property)]
    fn address(&self) -> String {
        self.with(|d| d.address.clone()).unwrap_or_default()
    }

    #[zbus(property)]
    fn address_type(&self) -> String {
        "random".into()
    }

    #[zbus(property)]
    fn name(&self) -> String {
        self.with(|d| d.peripheral.advertisement().name.unwrap_or_default())
            .unwrap_or_default()
    }

    #[zbus(property)]
    fn alias(&self) -> String {
        self.name()
    }

    #[zbus(property)]
    fn adapter(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(ADAPTER_PATH).unwrap_or_default()
    }

    #[zbus(property, name = "UUIDs")]
    fn uuids(&self) -> Vec<String> {
        self.with(|d| {
            d.peripheral
                .advertisement()
                .services
                .iter()
                .map(|u| u.to_string())
                .collect()
        })
        .unwrap_or_default()
    }

    #[zbus(property, name = "RSSI")]
    fn rssi(&self) -> i16 {
        RSSI
    }

    #[zbus(property)]
    fn paired(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn trusted(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn blocked(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn legacy_pairing(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn connected(&self) -> bool {
        self.with(|d| d.connected).unwrap_or(false)
    }

    #[zbus(property)]
    fn services_resolved(&self) -> bool {
        self.connected()
    }
}

/// Exports one `serviceNNNN` per distinct service and one `charNNNN` per
/// characteristic under it, numbered in GATT-table order as BlueZ numbers
/// them by handle.
async fn export_gatt(
    server: &zbus::ObjectServer,
    shared: &SharedRef,
    device_path: &str,
    table: &[Characteristic],
) -> Result<(), BluezError> {
    let mut services: Vec<GattUuid> = Vec::new();
    for c in table {
        if !services.contains(&c.service) {
            services.push(c.service);
        }
    }
    let mut handle = 0x0010u16;
    for service in services {
        let service_path = format!("{device_path}/service{handle:04x}");
        handle += 1;
        let mut chars = Vec::new();
        for c in table.iter().filter(|c| c.service == service) {
            let char_path = format!("{service_path}/char{handle:04x}");
            handle += 2;
            chars.push((char_path, c.clone()));
        }
        handle += 1;
        {
            let mut guard = lock(shared);
            if let Some(d) = guard.devices.get_mut(device_path) {
                for (p, c) in &chars {
                    d.char_paths.insert(c.uuid, p.clone());
                }
            }
        }
        // Characteristics first, so the service node is complete when its
        // own InterfacesAdded goes out.
        for (char_path, c) in chars {
            server
                .at(
                    char_path.as_str(),
                    GattCharacteristic1 {
                        shared: shared.clone(),
                        device_path: device_path.to_owned(),
                        service_path: service_path.clone(),
                        characteristic: c,
                    },
                )
                .await?;
        }
        server
            .at(
                service_path.as_str(),
                GattService1 {
                    uuid: service,
                    device_path: device_path.to_owned(),
                },
            )
            .await?;
    }
    Ok(())
}

/// `org.bluez.GattService1` on `…/serviceNNNN`.
struct GattService1 {
    uuid: GattUuid,
    device_path: String,
}

#[interface(name = "org.bluez.GattService1")]
impl GattService1 {
    #[zbus(property, name = "UUID")]
    fn uuid(&self) -> String {
        self.uuid.to_string()
    }

    #[zbus(property)]
    fn primary(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn device(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(self.device_path.as_str()).unwrap_or_default()
    }
}

/// `org.bluez.GattCharacteristic1` on `…/serviceNNNN/charNNNN`.
struct GattCharacteristic1 {
    shared: SharedRef,
    device_path: String,
    service_path: String,
    characteristic: Characteristic,
}

impl GattCharacteristic1 {
    /// Runs `f` on the connected device, or answers `NotConnected`.
    fn on_device<T>(
        &self,
        f: impl FnOnce(&mut Device, DateTime<Utc>) -> Result<T, BluezError>,
    ) -> Result<T, BluezError> {
        let mut guard = lock(&self.shared);
        let now = guard.now();
        let device = guard
            .devices
            .get_mut(&self.device_path)
            .ok_or_else(|| BluezError::Failed("device removed".into()))?;
        if !device.connected {
            return Err(BluezError::NotConnected("not connected".into()));
        }
        f(device, now)
    }
}

#[interface(name = "org.bluez.GattCharacteristic1")]
impl GattCharacteristic1 {
    async fn read_value(
        &self,
        _options: HashMap<String, zbus::zvariant::OwnedValue>,
    ) -> Result<Vec<u8>, BluezError> {
        let uuid = self.characteristic.uuid;
        self.on_device(|d, now| {
            let value = d.peripheral.read(now, uuid)?;
            d.values.insert(uuid, value.clone());
            Ok(value)
        })
    }

    /// Takes the write, then sends at once whatever the device answers (a
    /// control point's indication), as a sensor does within a connection
    /// interval.
    async fn write_value(
        &self,
        value: Vec<u8>,
        _options: HashMap<String, zbus::zvariant::OwnedValue>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), BluezError> {
        let uuid = self.characteristic.uuid;
        self.on_device(|d, now| Ok(d.peripheral.write(now, uuid, &value)?))?;
        pump(conn, &self.shared, &self.device_path)
            .await
            .map_err(|e| BluezError::Failed(e.to_string()))?;
        Ok(())
    }

    async fn start_notify(&self) -> Result<(), BluezError> {
        let uuid = self.characteristic.uuid;
        self.on_device(|d, _| {
            d.peripheral.set_subscribed(uuid, true)?;
            d.notifying.insert(uuid, true);
            Ok(())
        })
    }

    async fn stop_notify(&self) -> Result<(), BluezError> {
        let uuid = self.characteristic.uuid;
        self.on_device(|d, _| {
            d.peripheral.set_subscribed(uuid, false)?;
            d.notifying.insert(uuid, false);
            Ok(())
        })
    }

    #[zbus(property, name = "UUID")]
    fn uuid(&self) -> String {
        self.characteristic.uuid.to_string()
    }

    #[zbus(property)]
    fn service(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(self.service_path.as_str()).unwrap_or_default()
    }

    #[zbus(property)]
    fn flags(&self) -> Vec<String> {
        let p = self.characteristic.properties;
        let mut flags = Vec::new();
        for (on, name) in [
            (p.read, "read"),
            (p.write_without_response, "write-without-response"),
            (p.write, "write"),
            (p.notify, "notify"),
            (p.indicate, "indicate"),
        ] {
            if on {
                flags.push(name.to_owned());
            }
        }
        flags
    }

    #[zbus(property)]
    fn value(&self) -> Vec<u8> {
        lock(&self.shared)
            .devices
            .get(&self.device_path)
            .and_then(|d| d.values.get(&self.characteristic.uuid).cloned())
            .unwrap_or_default()
    }

    #[zbus(property)]
    fn notifying(&self) -> bool {
        lock(&self.shared)
            .devices
            .get(&self.device_path)
            .and_then(|d| d.notifying.get(&self.characteristic.uuid).copied())
            .unwrap_or(false)
    }
}

//! The real btleplug transport against the emulated BlueZ, with a tiny
//! battery peripheral: discover, connect, discover services, read,
//! subscribe, receive notifications, see a peer disconnect, reconnect.

mod common;

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use common::{Rig, drain, next_event, wait_for};
use vigil_core::transport::btleplug::BtleplugTransport;
use vigil_core::transport::simulated::{AttError, Emission, Peripheral};
use vigil_core::transport::{
    Advertisement, Characteristic, GattUuid, PeripheralId, Properties, Transport, TransportEvent,
    WriteKind,
};

const BATTERY_SERVICE: GattUuid = GattUuid::from_u16(0x180F);
const BATTERY_LEVEL: GattUuid = GattUuid::from_u16(0x2A19);

/// A battery that loses one percent a minute from 100 and, while a central
/// is subscribed, notifies its level at every whole minute.
struct Battery {
    t0: DateTime<Utc>,
    /// Last minute whose level was dealt with (sent or, offline, skipped).
    minute: i64,
    connected: bool,
    subscribed: bool,
}

impl Battery {
    fn new(t0: DateTime<Utc>) -> Self {
        Battery {
            t0,
            minute: 0,
            connected: false,
            subscribed: false,
        }
    }

    fn level_at(&self, minute: i64) -> u8 {
        (100 - minute).clamp(0, 100) as u8
    }
}

impl Peripheral for Battery {
    fn advertisement(&self) -> Advertisement {
        Advertisement {
            id: PeripheralId("battery".into()),
            name: Some("Vigil Battery".into()),
            services: vec![BATTERY_SERVICE],
            rssi: None,
        }
    }

    fn characteristics(&self) -> Vec<Characteristic> {
        vec![Characteristic {
            uuid: BATTERY_LEVEL,
            service: BATTERY_SERVICE,
            properties: Properties {
                read: true,
                notify: true,
                ..Properties::default()
            },
        }]
    }

    fn reachable(&self, _now: DateTime<Utc>) -> bool {
        true
    }

    fn read(&mut self, now: DateTime<Utc>, c: GattUuid) -> Result<Vec<u8>, AttError> {
        if c != BATTERY_LEVEL {
            return Err(AttError::AttributeNotFound);
        }
        Ok(vec![self.level_at((now - self.t0).num_minutes())])
    }

    fn write(&mut self, _now: DateTime<Utc>, _c: GattUuid, _v: &[u8]) -> Result<(), AttError> {
        Err(AttError::WriteNotPermitted)
    }

    fn set_subscribed(&mut self, c: GattUuid, on: bool) -> Result<(), AttError> {
        if c != BATTERY_LEVEL {
            return Err(AttError::AttributeNotFound);
        }
        self.subscribed = on;
        Ok(())
    }

    fn set_connected(&mut self, _now: DateTime<Utc>, connected: bool) {
        self.connected = connected;
        if !connected {
            self.subscribed = false;
        }
    }

    fn advance(&mut self, now: DateTime<Utc>) -> Vec<Emission> {
        let target = (now - self.t0).num_minutes();
        let mut out = Vec::new();
        while self.minute < target {
            self.minute += 1;
            if self.connected && self.subscribed {
                out.push(Emission {
                    at: self.t0 + Span::minutes(self.minute),
                    characteristic: BATTERY_LEVEL,
                    value: vec![self.level_at(self.minute)],
                });
            }
        }
        out
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
}

fn values(events: &[TransportEvent]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            TransportEvent::Value {
                characteristic,
                value,
                ..
            } if *characteristic == BATTERY_LEVEL => value.first().copied(),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btleplug_reads_notifies_and_reconnects_through_emulated_bluez() {
    let rig = Rig::start(t0()).await;
    let path = rig.fake.add_peripheral(Box::new(Battery::new(t0())));
    let transport = BtleplugTransport::new().await.unwrap();
    let mut rx = transport.events();

    // Discover by service.
    transport.start_scan(&[BATTERY_SERVICE]).await.unwrap();
    let found = wait_for(&mut rx, |e| matches!(e, TransportEvent::Discovered(_))).await;
    let TransportEvent::Discovered(adv) = found else {
        unreachable!()
    };
    assert_eq!(adv.name.as_deref(), Some("Vigil Battery"));
    assert!(adv.services.contains(&BATTERY_SERVICE));
    assert!(path.ends_with(adv.id.0.rsplit('/').next().unwrap()));
    transport.stop_scan().await.unwrap();
    let id = adv.id;

    // Connect and discover services.
    transport.connect(&id).await.unwrap();
    assert_eq!(
        wait_for(&mut rx, |e| matches!(e, TransportEvent::Connected(_))).await,
        TransportEvent::Connected(id.clone())
    );
    assert!(rig.fake.is_connected(&path));
    let table = transport.discover(&id).await.unwrap();
    let level = table
        .iter()
        .find(|c| c.uuid == BATTERY_LEVEL)
        .expect("Battery Level discovered");
    assert_eq!(level.service, BATTERY_SERVICE);
    assert!(level.properties.read && level.properties.notify && !level.properties.write);

    // Read.
    assert_eq!(transport.read(&id, BATTERY_LEVEL).await.unwrap(), vec![100]);

    // A write the device refuses is a typed error, not a panic.
    let refused = transport
        .write(&id, BATTERY_LEVEL, &[1], WriteKind::WithResponse)
        .await;
    assert!(
        matches!(refused, Err(vigil_core::Error::Device(_))),
        "{refused:?}"
    );

    // Subscribe; three minutes pass; three notifications, in order. Then
    // the peer drops the link right away: the disconnect comes after them.
    transport.subscribe(&id, BATTERY_LEVEL).await.unwrap();
    assert_eq!(
        rig.fake.advance_to(t0() + Span::minutes(3)).await.unwrap(),
        3
    );
    rig.fake.drop_link(&path).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let e = next_event(&mut rx).await;
        let done = e == TransportEvent::Disconnected(id.clone());
        seen.push(e);
        if done {
            break;
        }
    }
    assert_eq!(values(&seen), vec![99, 98, 97], "events: {seen:?}");

    // With the link down, calls fail with a typed error.
    let offline = transport.read(&id, BATTERY_LEVEL).await;
    assert!(
        matches!(offline, Err(vigil_core::Error::Device(_))),
        "{offline:?}"
    );

    // Offline minute: measured, not sent.
    assert_eq!(
        rig.fake.advance_to(t0() + Span::minutes(4)).await.unwrap(),
        0
    );

    // Reconnect, subscribe again, and notifications flow again.
    transport.connect(&id).await.unwrap();
    wait_for(&mut rx, |e| *e == TransportEvent::Connected(id.clone())).await;
    transport.subscribe(&id, BATTERY_LEVEL).await.unwrap();
    assert_eq!(
        rig.fake.advance_to(t0() + Span::minutes(6)).await.unwrap(),
        2
    );
    let after = drain(&mut rx, std::time::Duration::from_millis(500)).await;
    assert_eq!(values(&after), vec![95, 94], "events: {after:?}");

    // Local disconnect is reported too.
    transport.disconnect(&id).await.unwrap();
    wait_for(&mut rx, |e| *e == TransportEvent::Disconnected(id.clone())).await;
    assert!(!rig.fake.is_connected(&path));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btleplug_scan_ignores_devices_without_the_wanted_service() {
    let rig = Rig::start(t0()).await;
    rig.fake.add_peripheral(Box::new(Battery::new(t0())));
    let transport = BtleplugTransport::new().await.unwrap();
    let mut rx = transport.events();

    transport
        .start_scan(&[GattUuid::from_u16(0x181F)])
        .await
        .unwrap();
    let events = drain(&mut rx, std::time::Duration::from_millis(700)).await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, TransportEvent::Discovered(_))),
        "a battery is not a CGM: {events:?}"
    );

    // The same device is found when scanning for everything.
    transport.stop_scan().await.unwrap();
    transport.start_scan(&[]).await.unwrap();
    wait_for(&mut rx, |e| matches!(e, TransportEvent::Discovered(_))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btleplug_connect_to_unknown_device_is_a_device_error() {
    let _rig = Rig::start(t0()).await;
    let transport = BtleplugTransport::new().await.unwrap();
    let err = transport
        .connect(&PeripheralId("hci0/dev_00_00_00_00_00_01".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, vigil_core::Error::Device(_)), "{err:?}");
}

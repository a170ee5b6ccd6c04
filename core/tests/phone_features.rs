//! The phone feature set (`--no-default-features`: no btleplug, no
//! simulation): the facade is the same, and the transports a phone build
//! leaves out answer the same typed `NotAvailable` instead of being
//! silently something else, while the host-fed transport phones run works.
//!
//! Run it as phones build the core:
//!
//! ```text
//! cargo test -p vigil-core --no-default-features --test phone_features
//! ```
//!
//! With the default features the file is empty (the simulated transport is
//! there, and `api_facade` tests it).

#![cfg(not(feature = "simulation"))]
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use vigil_core::api::{
    AlertEvent, BufferEvent, DeviceEvent, DeviceKind, HostRequest, Listener, ReadingEvent,
    SdkError, SyncEvent, TransportMode, Vigil, VigilConfig,
};

struct Quiet;

impl Listener for Quiet {
    fn on_reading(&self, _: ReadingEvent) {}
    fn on_alert(&self, _: AlertEvent) {}
    fn on_device_event(&self, _: DeviceEvent) {}
    fn on_sync_event(&self, _: SyncEvent) {}
    fn on_buffer_event(&self, _: BufferEvent) {}
    fn on_host_request(&self, _: HostRequest) {}
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-phone-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn open(dir: &std::path::Path, transport: TransportMode) -> Result<Vigil, SdkError> {
    let mut config = VigilConfig::new(dir.join("buffer.db"), "patient-1");
    config.transport = transport;
    Vigil::new(config, Arc::new(Quiet), None)
}

#[test]
fn simulated_transport_is_not_available_without_the_simulation_feature() {
    let dir = tempdir("simulated");
    match open(&dir, TransportMode::Simulated) {
        Err(SdkError::NotAvailable { message }) => {
            assert!(message.contains("simulation"), "{message}");
        }
        other => panic!("expected NotAvailable, got {other:?}"),
    }
}

#[cfg(not(feature = "btleplug"))]
#[test]
fn btleplug_transport_is_not_available_without_the_btleplug_feature() {
    let dir = tempdir("btleplug");
    assert!(matches!(
        open(&dir, TransportMode::Btleplug),
        Err(SdkError::NotAvailable { .. })
    ));
}

#[test]
fn host_fed_transport_pairs_devices_in_the_phone_build() {
    let dir = tempdir("host-fed");
    let sdk = open(&dir, TransportMode::HostFed).unwrap();
    sdk.pair("AA:BB", DeviceKind::HeartRate).unwrap();
    assert_eq!(sdk.devices(), vec!["AA:BB".to_string()]);
}

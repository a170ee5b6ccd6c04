//! Vigil's uniffi bindings: a thin layer over [`vigil_core::api`] that
//! Kotlin and Swift are generated from (proc-macros, no UDL).
//!
//! The facade's values (the configuration with its default arguments,
//! readings, alerts, device, sync and buffer events, status, the enums they
//! carry and [`SdkError`]) are the core's own types, made uniffi types by
//! the core's `uniffi` feature: one definition per concept, no mirror to
//! keep in step. Here live only what the FFI itself needs: the SDK object
//! and the two traits the app implements. Generate the bindings
//! from the built library (see `bindings/README.md`):
//!
//! ```text
//! cargo build -p vigil-bindings
//! cargo run -p vigil-bindings --bin uniffi-bindgen -- generate \
//!     --library target/debug/libvigil_bindings.so --language kotlin --out-dir target/uniffi/kotlin
//! ```
//!
//! Threading contract: every method may be called from any thread (the
//! SDK owns its runtime); methods block briefly and must not be called
//! from inside an async runtime thread of the SDK. Listener callbacks
//! arrive on one SDK-owned thread, `vigil-callbacks`, in order; they may
//! call back into the SDK.

use std::sync::{Arc, RwLock};

use vigil_core::api;

pub use vigil_core::api::{
    AlertConfig, AlertEvent, AlertKind, BufferEvent, ClockMode, DeviceEvent, DeviceEventKind,
    DeviceKind, DeviceOutOfRange, ExportBatch, HostCharacteristic, HostReply, HostRequest,
    LedgerSummary, Network, OutOfRange, Phase, PressureLevel, ReadingEvent, SdkError, Seconds,
    SimulatedGlucose, Simulation, Status, SyncEvent, TransportMode, VigilConfig,
};

uniffi::setup_scaffolding!();

/// Everything the SDK tells the app. Called on the SDK's
/// `vigil-callbacks` thread, in order; keep each call short.
#[uniffi::export(with_foreign)]
pub trait VigilListener: Send + Sync {
    /// A reading was decoded.
    fn on_reading(&self, reading: ReadingEvent);
    /// An alert was raised, repeated or ended (heard before the outbox
    /// write, so a local alarm never waits for the disk).
    fn on_alert(&self, alert: AlertEvent);
    /// A device event.
    fn on_device_event(&self, event: DeviceEvent);
    /// A sync event.
    fn on_sync_event(&self, event: SyncEvent);
    /// A buffer event.
    fn on_buffer_event(&self, event: BufferEvent);
    /// The host-fed transport needs the app's Bluetooth stack.
    fn on_host_request(&self, request: HostRequest);
}

/// Supplies the cloud token; asked again after a 401.
#[uniffi::export(with_foreign)]
pub trait TokenProvider: Send + Sync {
    /// The current token.
    fn token(&self) -> Option<String>;
    /// A fresh token after a refusal.
    fn refresh(&self) -> Option<String>;
}

/// The facade's listener, handing each event to the foreign one as it is.
struct ListenerAdapter(Arc<dyn VigilListener>);

impl api::Listener for ListenerAdapter {
    fn on_reading(&self, r: ReadingEvent) {
        self.0.on_reading(r);
    }
    fn on_alert(&self, a: AlertEvent) {
        self.0.on_alert(a);
    }
    fn on_device_event(&self, e: DeviceEvent) {
        self.0.on_device_event(e);
    }
    fn on_sync_event(&self, e: SyncEvent) {
        self.0.on_sync_event(e);
    }
    fn on_buffer_event(&self, e: BufferEvent) {
        self.0.on_buffer_event(e);
    }
    fn on_host_request(&self, r: HostRequest) {
        self.0.on_host_request(r);
    }
}

/// The facade's token provider, asking the foreign one.
struct TokenAdapter(Arc<dyn TokenProvider>);

impl api::TokenProvider for TokenAdapter {
    fn token(&self) -> Option<String> {
        self.0.token()
    }
    fn refresh(&self) -> Option<String> {
        self.0.refresh()
    }
}

/// The SDK object apps hold: one per patient and buffer file.
#[derive(uniffi::Object)]
pub struct VigilSdk {
    inner: RwLock<Option<api::Vigil>>,
}

impl std::fmt::Debug for VigilSdk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VigilSdk").finish_non_exhaustive()
    }
}

impl VigilSdk {
    fn with<T>(&self, f: impl FnOnce(&api::Vigil) -> api::SdkResult<T>) -> Result<T, SdkError> {
        let guard = self.inner.read().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(v) => f(v),
            None => Err(SdkError::NotAvailable {
                message: "the SDK is closed".into(),
            }),
        }
    }
}

#[uniffi::export]
impl VigilSdk {
    /// Opens the buffer and starts the SDK's runtime and callback thread.
    #[uniffi::constructor]
    pub fn new(
        config: VigilConfig,
        listener: Arc<dyn VigilListener>,
        token_provider: Option<Arc<dyn TokenProvider>>,
    ) -> Result<Arc<VigilSdk>, SdkError> {
        let listener = Arc::new(ListenerAdapter(listener));
        let tokens =
            token_provider.map(|t| Arc::new(TokenAdapter(t)) as Arc<dyn api::TokenProvider>);
        let vigil = api::Vigil::new(config, listener, tokens)?;
        Ok(Arc::new(VigilSdk {
            inner: RwLock::new(Some(vigil)),
        }))
    }

    /// Pairs a device to the patient.
    pub fn pair(&self, device: String, kind: DeviceKind) -> Result<(), SdkError> {
        self.with(|v| v.pair(&device, kind))
    }

    /// Stops and forgets a device (its history stays).
    pub fn forget(&self, device: String) -> Result<(), SdkError> {
        self.with(|v| v.forget(&device))
    }

    /// Paired devices.
    pub fn devices(&self) -> Result<Vec<String>, SdkError> {
        self.with(|v| Ok(v.devices()))
    }

    /// Starts collecting from every paired device.
    pub fn start(&self) -> Result<(), SdkError> {
        self.with(|v| v.start())
    }

    /// Stops collecting; returns once every session has let go.
    pub fn stop(&self) -> Result<(), SdkError> {
        self.with(|v| v.stop())
    }

    /// Whether any device is collecting.
    pub fn is_running(&self) -> Result<bool, SdkError> {
        self.with(|v| Ok(v.is_running()))
    }

    /// Notification bytes from the app's Bluetooth stack.
    pub fn feed_host_bytes(
        &self,
        device: String,
        characteristic: String,
        bytes: Vec<u8>,
    ) -> Result<(), SdkError> {
        self.with(|v| v.feed_host_bytes(&device, &characteristic, bytes))
    }

    /// The platform's link to `device` went up or down.
    pub fn host_connection(&self, device: String, connected: bool) -> Result<(), SdkError> {
        self.with(|v| v.host_connection(&device, connected))
    }

    /// Answers a host request.
    pub fn complete_host_request(&self, token: u64, reply: HostReply) -> Result<(), SdkError> {
        self.with(|v| v.complete_host_request(token, reply))
    }

    /// The phone's network changed.
    pub fn set_network(&self, network: Network) -> Result<(), SdkError> {
        self.with(|v| {
            v.set_network(network);
            Ok(())
        })
    }

    /// The phone's battery changed.
    pub fn set_power(&self, percent: u8, charging: bool) -> Result<(), SdkError> {
        self.with(|v| {
            v.set_power(api::Power { percent, charging });
            Ok(())
        })
    }

    /// Sends what the sync policy allows now; returns readings sent.
    pub fn sync_now(&self) -> Result<u64, SdkError> {
        self.with(|v| v.sync_now())
    }

    /// The SDK at a glance.
    pub fn status(&self) -> Result<Status, SdkError> {
        self.with(|v| v.status())
    }

    /// Up to `limit` (1 to 10,000) stored readings of `streams` that
    /// `target` has not confirmed, oldest first; the same batch again
    /// until it is confirmed. Readings evicted before export are gone.
    pub fn export_batch(
        &self,
        target: String,
        streams: Vec<String>,
        limit: u32,
    ) -> Result<ExportBatch, SdkError> {
        self.with(|v| v.export_batch(&target, &streams, limit))
    }

    /// `target` stored the batch that came with `cursor`; the next batch
    /// starts after it. Never moves the cursor back.
    pub fn confirm_export(&self, target: String, cursor: u64) -> Result<(), SdkError> {
        self.with(|v| v.confirm_export(&target, cursor))
    }

    /// The series that stands for the patient: of every stored reading of
    /// `quantity` (`glucose`, `heart_rate`, `spo2`) measured in
    /// `from_ms..to_ms` (at most 24 h), one reading per coincident moment,
    /// the one the precedence policy picks (devices ranked by the kind
    /// they were paired as), unchanged, in time order. `on_reading` and
    /// `export_batch` stay raw.
    pub fn resolved_readings(
        &self,
        quantity: String,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ReadingEvent>, SdkError> {
        self.with(|v| v.resolved_readings(&quantity, from_ms, to_ms))
    }

    /// Stops everything and releases the runtime; the object is unusable
    /// afterwards. Also happens when the object is destroyed.
    pub fn shutdown(&self) -> Result<(), SdkError> {
        let taken = self.inner.write().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(mut v) => v.close(),
            None => Ok(()),
        }
    }
}

/// The library's version, for bug reports.
#[uniffi::export]
pub fn vigil_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    //! The default arguments Kotlin and Swift get are written once, as
    //! `#[uniffi(default = …)]` on the core's records, next to the Rust
    //! constructors they must agree with; these tests read them back from
    //! the uniffi metadata (what uniffi-bindgen generates from) and compare.

    use serde_json::{Value, json};
    use uniffi_meta::{DefaultValueMetadata, LiteralMetadata, Metadata};
    use vigil_core::api;

    use super::*;

    /// Checks every field of the record in `metadata`: the ones in
    /// `required` have no default argument, every other one has one equal
    /// to `expected[field]` (a field defaulting to its record's own
    /// defaults expects an object, checked by that record's test).
    fn check_defaults(metadata: &[u8], expected: &Value, required: &[&str]) {
        let Metadata::Record(record) = uniffi_meta::read_metadata(metadata).unwrap() else {
            panic!("not a record");
        };
        for field in &record.fields {
            let name = field.name.as_str();
            let Some(default) = &field.default else {
                assert!(
                    required.contains(&name),
                    "{}.{name} has no default argument",
                    record.name
                );
                continue;
            };
            assert!(
                !required.contains(&name),
                "{}.{name} should be required",
                record.name
            );
            let want = expected
                .get(name)
                .unwrap_or_else(|| panic!("{}.{name}: no expected default", record.name));
            let ok = match default {
                DefaultValueMetadata::Default => want.is_object(),
                DefaultValueMetadata::Literal(literal) => match literal {
                    LiteralMetadata::Boolean(b) => want.as_bool() == Some(*b),
                    LiteralMetadata::UInt(n, ..) => want.as_u64() == Some(*n),
                    LiteralMetadata::Int(n, ..) => want.as_i64() == Some(*n),
                    LiteralMetadata::Float(s, _) => want.as_f64() == s.parse::<f64>().ok(),
                    LiteralMetadata::String(s) => want.as_str() == Some(s.as_str()),
                    LiteralMetadata::None => want.is_null(),
                    LiteralMetadata::EmptySequence => want == &json!([]),
                    other => panic!("{}.{name}: unexpected literal {other:?}", record.name),
                },
            };
            assert!(
                ok,
                "{}.{name}: default argument {default:?}, Rust default {want}",
                record.name
            );
        }
    }

    #[test]
    fn config_default_arguments_are_what_vigil_config_new_sets() {
        let c = VigilConfig::new("buffer.db", "patient-1");
        assert_eq!(c.alerts, AlertConfig::default());
        let expected = json!({
            "server_url": c.server_url,
            "token": c.token,
            "sync_interval": c.sync_interval.0,
            "sync_interval_when_stable": c.sync_interval_when_stable.0,
            "contact_interval": c.contact_interval.0,
            "wait_for_unmetered": c.wait_for_unmetered,
            "alerts": serde_json::to_value(&c.alerts).unwrap(),
            "buffer_budget_bytes": c.buffer_budget_bytes,
            "simulation_seed": c.simulation_seed,
            "simulation": c.simulation.is_some().then_some("set"),
        });
        check_defaults(
            &api::UNIFFI_META_VIGIL_CORE_RECORD_VIGILCONFIG,
            &expected,
            &["storage_path", "patient_id", "transport", "clock"],
        );
    }

    #[test]
    fn alert_default_arguments_are_alert_config_default() {
        let expected = serde_json::to_value(AlertConfig::default()).unwrap();
        check_defaults(
            &api::UNIFFI_META_VIGIL_CORE_RECORD_ALERTCONFIG,
            &expected,
            &[],
        );
    }

    #[test]
    fn simulation_default_arguments_are_simulation_default() {
        let s = Simulation::default();
        // The only list default there is: `[]`.
        let list = |empty: bool| if empty { json!([]) } else { json!("non-empty") };
        let expected = json!({
            "cgm_out_of_range_ms": list(s.cgm_out_of_range_ms.is_empty()),
            "cgm_one_minute": s.cgm_one_minute,
            "device_out_of_range_ms": list(s.device_out_of_range_ms.is_empty()),
            "field_faults": s.field_faults,
        });
        check_defaults(
            &api::UNIFFI_META_VIGIL_CORE_RECORD_SIMULATION,
            &expected,
            &["glucose"],
        );
    }
}

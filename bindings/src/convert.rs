//! One-to-one conversions between the binding records and the facade.

use std::sync::Arc;
use std::time::Duration;

use vigil_core::alerts::AlertConfig;
use vigil_core::api;

use super::*;

pub(crate) fn config(c: VigilConfig) -> Result<api::VigilConfig, VigilError> {
    let mut out = api::VigilConfig::new(c.storage_path, c.patient_id);
    out.server_url = c.server_url;
    out.token = c.token;
    out.sync_interval = Duration::from_secs(c.sync_interval_seconds);
    out.wait_for_unmetered = c.wait_for_unmetered;
    out.buffer_budget_bytes = c.buffer_budget_bytes;
    out.simulation_seed = c.simulation_seed;
    out.transport = match c.transport {
        TransportMode::Simulated => api::TransportMode::Simulated,
        TransportMode::HostFed => api::TransportMode::HostFed,
        TransportMode::Btleplug => api::TransportMode::Btleplug,
    };
    out.clock = match c.clock {
        ClockMode::Wall => api::ClockMode::Wall,
        ClockMode::Simulated {
            start_ms,
            run_for_ms,
        } => api::ClockMode::Simulated {
            start_ms,
            run_for: Duration::from_millis(run_for_ms),
        },
        ClockMode::Accelerated { start_ms, factor } => {
            api::ClockMode::Accelerated { start_ms, factor }
        }
    };
    if let Some(a) = c.alerts {
        out.alerts = AlertConfig {
            urgent_low_mg_dl: a.urgent_low_mg_dl,
            low_mg_dl: a.low_mg_dl,
            high_mg_dl: a.high_mg_dl,
            fast_rate_mg_dl_per_min: a.fast_rate_mg_dl_per_min,
            signal_loss_after: chrono::TimeDelta::minutes(i64::from(a.signal_loss_after_min)),
            ..AlertConfig::default()
        };
    }
    Ok(out)
}

pub(crate) fn kind(k: DeviceKind) -> api::DeviceKind {
    match k {
        DeviceKind::Cgm => api::DeviceKind::Cgm,
        DeviceKind::HeartRate => api::DeviceKind::HeartRate,
        DeviceKind::PulseOximeter => api::DeviceKind::PulseOximeter,
        DeviceKind::GlucoseMeter => api::DeviceKind::GlucoseMeter,
    }
}

pub(crate) fn network(n: Network) -> api::Network {
    match n {
        Network::None => api::Network::None,
        Network::Wifi => api::Network::Wifi,
        Network::Cellular => api::Network::Cellular,
        Network::Metered => api::Network::Metered,
    }
}

fn network_back(n: api::Network) -> Network {
    match n {
        api::Network::None => Network::None,
        api::Network::Wifi => Network::Wifi,
        api::Network::Cellular => Network::Cellular,
        api::Network::Metered => Network::Metered,
    }
}

pub(crate) fn reply(r: HostReply) -> api::HostReply {
    match r {
        HostReply::Done => api::HostReply::Done,
        HostReply::Value { value } => api::HostReply::Value(value),
        HostReply::Failed { message } => api::HostReply::Failed(message),
        HostReply::Characteristics { characteristics } => api::HostReply::Characteristics(
            characteristics
                .into_iter()
                .map(|c| api::HostCharacteristic {
                    service: c.service,
                    uuid: c.uuid,
                    properties: c.properties,
                })
                .collect(),
        ),
    }
}

pub(crate) fn status(s: api::Status) -> Status {
    Status {
        devices: s.devices,
        running: s.running,
        unsent_readings: s.unsent_readings,
        stored_readings: s.stored_readings,
        pending_alerts: s.pending_alerts,
        buffer_used_bytes: s.buffer_used_bytes,
        buffer_budget_bytes: s.buffer_budget_bytes,
        buffer_pressure: s.buffer_pressure,
        last_sync_ms: s.last_sync_ms,
        last_device_contact_ms: s.last_device_contact_ms,
        network: network_back(s.network),
        ledger: LedgerSummary {
            received: s.ledger.received,
            stored: s.ledger.stored,
            reported_missing: s.ledger.reported_missing,
            acknowledged: s.ledger.acknowledged,
            evicted_unsent: s.ledger.evicted_unsent,
        },
    }
}

pub(crate) fn reading(r: api::ReadingEvent) -> Reading {
    Reading {
        device: r.device,
        stream: r.stream,
        value: r.value,
        unit: r.unit,
        sensor_time_ms: r.sensor_time_ms,
        receive_time_ms: r.receive_time_ms,
        sequence: r.sequence,
    }
}

pub(crate) fn export_batch(b: api::ExportBatch) -> ExportBatch {
    ExportBatch {
        readings: b.readings.into_iter().map(reading).collect(),
        cursor: b.cursor,
    }
}

/// The facade's listener, forwarding to the foreign one.
pub(crate) struct ListenerAdapter(pub(crate) Arc<dyn VigilListener>);

impl api::Listener for ListenerAdapter {
    fn on_reading(&self, r: api::ReadingEvent) {
        self.0.on_reading(reading(r));
    }
    fn on_alert(&self, a: api::AlertEvent) {
        self.0.on_alert(Alert {
            id: a.id,
            device: a.device,
            kind: a.kind,
            phase: a.phase,
            time_ms: a.time_ms,
            glucose_mg_dl: a.glucose_mg_dl,
        });
    }
    fn on_device_event(&self, e: api::DeviceEvent) {
        self.0.on_device_event(DeviceEvent {
            device: e.device,
            kind: e.kind,
            detail: e.detail,
            time_ms: e.time_ms,
        });
    }
    fn on_sync_event(&self, e: api::SyncEvent) {
        self.0.on_sync_event(SyncEvent {
            kind: e.kind,
            detail: e.detail,
        });
    }
    fn on_buffer_event(&self, e: api::BufferEvent) {
        self.0.on_buffer_event(BufferEvent {
            pressure: e.pressure,
            used_bytes: e.used_bytes,
            budget_bytes: e.budget_bytes,
            evicted: e.evicted,
        });
    }
    fn on_host_request(&self, r: api::HostRequest) {
        self.0.on_host_request(HostRequest {
            token: r.token,
            command: r.command,
            device: r.device,
            characteristic: r.characteristic,
            value: r.value,
        });
    }
}

/// The facade's token provider, forwarding to the foreign one.
pub(crate) struct TokenAdapter(pub(crate) Arc<dyn TokenProvider>);

impl api::TokenProvider for TokenAdapter {
    fn token(&self) -> Option<String> {
        self.0.token()
    }
    fn refresh(&self) -> Option<String> {
        self.0.refresh()
    }
}

//! The phone's side of a session: every raw reading goes through the alert
//! engine first (alarms never wait for storage or a batch: they are written
//! to the outbox and handed to the app at once), then into the SQLite
//! buffer; buffer pressure and device events go to the app.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::dispatch::{Callback, Dispatch};
use super::events::{AlertEvent, BufferEvent, DeviceEvent, ReadingEvent, millis};
use crate::alerts::{self, AlertEngine};
use crate::model::{DeviceId, Sample, Stream};
use crate::session::{Cursor, DeviceEventKind, SessionOutput, SessionSink};
use crate::store::{BufferSink, OutboxAlert, PressureLevel};
use crate::{Error, Result};

/// What the facade reads back for `status()`.
#[derive(Debug, Default)]
pub(crate) struct Contact {
    /// Last time any device was heard from (reading or connection).
    pub(crate) last: Option<DateTime<Utc>>,
}

/// The sink a facade session writes into.
pub(crate) struct Pipeline {
    pub(crate) buffer: BufferSink,
    pub(crate) engine: Arc<Mutex<AlertEngine>>,
    pub(crate) dispatch: Dispatch,
    pub(crate) contact: Arc<Mutex<Contact>>,
    pub(crate) alert_posted: Arc<dyn Fn() + Send + Sync>,
}

impl Pipeline {
    fn touch(&self, at: DateTime<Utc>) {
        let mut c = self.contact.lock().unwrap_or_else(|e| e.into_inner());
        if c.last.is_none_or(|l| l < at) {
            c.last = Some(at);
        }
    }
}

/// Writes alerts to the outbox, then hands them to the app.
pub(crate) fn raise(
    buffer: &mut crate::store::Buffer,
    dispatch: &Dispatch,
    device: &DeviceId,
    events: Vec<alerts::AlertEvent>,
    alert_posted: &(dyn Fn() + Send + Sync),
) -> Result<()> {
    for mut e in events {
        e.device = Some(device.0.clone());
        let payload = serde_json::to_vec(&e)
            .map_err(|err| Error::InvalidInput(format!("alert payload: {err}")))?;
        let phase = match e.phase {
            alerts::Phase::Start => "start",
            alerts::Phase::Realert => "realert",
            alerts::Phase::End => "end",
        };
        buffer.enqueue_alert(&OutboxAlert {
            id: e.id.clone(),
            kind: e.kind.as_str().to_string(),
            phase: phase.to_string(),
            time: e.time,
            value: e.glucose_mg_dl,
            payload,
        })?;
        alert_posted();
        dispatch.send(Callback::Alert(AlertEvent {
            id: e.id,
            device: device.0.clone(),
            kind: e.kind.as_str().to_string(),
            phase: phase.to_string(),
            time_ms: millis(e.time),
            glucose_mg_dl: e.glucose_mg_dl,
        }));
    }
    Ok(())
}

impl SessionSink for Pipeline {
    fn cursor(&self, device: &DeviceId, stream: Stream) -> Option<Cursor> {
        self.buffer.cursor(device, stream)
    }

    fn accept(&mut self, output: SessionOutput) -> Result<()> {
        match &output {
            SessionOutput::Reading(r) => {
                self.touch(r.receive_time);
                let events = {
                    let mut engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
                    match r.stream {
                        Stream::Glucose => engine.on_glucose(Sample {
                            time: r.sensor_time,
                            value: r.value,
                        })?,
                        Stream::Battery => engine.on_battery(r.sensor_time, r.value)?,
                        _ => Vec::new(),
                    }
                };
                self.dispatch
                    .send(Callback::Reading(ReadingEvent::from_reading(r)));
                let device = r.provenance.device.clone();
                raise(
                    self.buffer.buffer_mut(),
                    &self.dispatch,
                    &device,
                    events,
                    &*self.alert_posted,
                )?;
            }
            SessionOutput::Event(e) => {
                if matches!(e.kind, DeviceEventKind::Connected) {
                    self.touch(e.at);
                }
                self.dispatch.send(Callback::Device(device_event(e)));
            }
            SessionOutput::Gap(_) => {}
        }
        self.buffer.accept(output)?;
        for event in self.buffer.take_buffer_events() {
            self.dispatch.send(Callback::Buffer(buffer_event(event)));
        }
        Ok(())
    }
}

fn device_event(e: &crate::session::DeviceEvent) -> DeviceEvent {
    let (kind, detail) = match &e.kind {
        DeviceEventKind::Connected => ("connected", String::new()),
        DeviceEventKind::Disconnected { reason } => ("disconnected", reason.clone()),
        DeviceEventKind::Reconnecting { attempt, delay_ms } => (
            "reconnecting",
            format!("attempt {attempt}, next in {delay_ms} ms"),
        ),
        DeviceEventKind::ClockDrift { drift_ms } => ("clock_drift", format!("{drift_ms} ms")),
        DeviceEventKind::NewSession { session, .. } => ("new_session", session.to_string()),
        DeviceEventKind::WarmingUp => ("warming_up", String::new()),
        DeviceEventKind::WarmUpComplete => ("warm_up_complete", String::new()),
        DeviceEventKind::SessionStopped => ("session_stopped", String::new()),
        DeviceEventKind::BatteryLow { percent } => (
            "battery_low",
            percent.map(|p| format!("{p} %")).unwrap_or_default(),
        ),
        DeviceEventKind::CorruptFrame { characteristic } => {
            ("corrupt_frame", format!("{characteristic:#06x}"))
        }
    };
    DeviceEvent {
        device: e.device.0.clone(),
        kind: kind.to_string(),
        detail,
        time_ms: millis(e.at),
    }
}

fn buffer_event(e: crate::store::BufferEvent) -> BufferEvent {
    match e {
        crate::store::BufferEvent::Pressure {
            level,
            used_bytes,
            budget_bytes,
            ..
        } => BufferEvent {
            pressure: pressure_name(level).to_string(),
            used_bytes,
            budget_bytes,
            evicted: 0,
        },
        crate::store::BufferEvent::Evicted(ev) => BufferEvent {
            pressure: "critical".to_string(),
            used_bytes: 0,
            budget_bytes: 0,
            evicted: ev.acknowledged.saturating_add(ev.unsent),
        },
    }
}

pub(crate) fn pressure_name(level: PressureLevel) -> &'static str {
    match level {
        PressureLevel::Normal => "normal",
        PressureLevel::High => "high",
        PressureLevel::Critical => "critical",
    }
}

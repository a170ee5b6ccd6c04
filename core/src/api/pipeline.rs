//! The phone's side of a session: every raw reading goes through the alert
//! engine first (alarms never wait for storage or a batch: they are written
//! to the outbox and handed to the app at once), then into the SQLite
//! buffer; buffer pressure and device events go to the app.
//!
//! Glucose alerts are the patient's, not a device's: one engine per SDK,
//! fed by a [`LiveSource`] gate that lets it follow one glucose source at a
//! time, so two CGMs (or a new sensor and the old one's backfill) raise
//! each episode once and never draw a slope across two sensors. Every
//! reading is still buffered and heard by the app, fed or not.
//!
//! Readings reach the app's listener only once committed: the buffer
//! batches commits in a short window (see `store::sink`), and a reading
//! the app has heard of must survive a kill of the app at any moment.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::dispatch::{Callback, Dispatch};
use super::events::{AlertEvent, BufferEvent, DeviceEvent, DeviceEventKind, ReadingEvent, millis};
use crate::alerts::{self, AlertEngine};
use crate::model::{DeviceId, Reading, Sample, Stream};
use crate::precedence::live::{Admission, LiveSource};
use crate::session::{Cursor, DeviceEventKind as SessionEvent, SessionOutput, SessionSink};
use crate::store::{BufferSink, OutboxAlert, PressureLevel};
use crate::{Error, Result};

/// What the facade reads back for `status()`.
#[derive(Debug, Default)]
pub(crate) struct Contact {
    /// Last time any device was heard from (reading or connection).
    pub(crate) last: Option<DateTime<Utc>>,
}

/// The patient's glucose alerting: the engine and the gate that chooses
/// which source it hears. Shared by every device session of the SDK.
#[derive(Debug)]
pub(crate) struct GlucoseAlerts {
    pub(crate) engine: AlertEngine,
    pub(crate) gate: LiveSource,
}

impl GlucoseAlerts {
    /// Feeds `r` to the engine if the gate admits it; a reading the gate
    /// holds back raises nothing and fails nothing.
    fn on_glucose(&mut self, r: &Reading) -> Result<Vec<alerts::AlertEvent>> {
        let sample = Sample {
            time: r.sensor_time,
            value: r.value,
        };
        match self.gate.admit(r) {
            Admission::Follow => self.engine.on_glucose(sample),
            Admission::TakeOver { previous } => {
                if previous.is_some() {
                    self.engine.on_source_change();
                }
                self.engine.on_glucose(sample)
            }
            Admission::NotAfterLast
            | Admission::Standby
            | Admission::Unusable
            | Admission::OtherQuantity => Ok(Vec::new()),
        }
    }
}

/// The sink a facade session writes into.
pub(crate) struct Pipeline {
    pub(crate) buffer: BufferSink,
    /// This device's own alerts (battery).
    pub(crate) engine: Arc<Mutex<AlertEngine>>,
    /// The patient's glucose alerts, shared with the other sessions.
    pub(crate) glucose: Arc<Mutex<GlucoseAlerts>>,
    /// Re-arms the signal timer: a reading moves the engine's next
    /// deadline (see `signal_timer` in the facade).
    pub(crate) rearm: Arc<tokio::sync::Notify>,
    pub(crate) dispatch: Dispatch,
    pub(crate) contact: Arc<Mutex<Contact>>,
    pub(crate) alert_posted: Arc<dyn Fn() + Send + Sync>,
    /// Readings accepted but not yet committed: the listener hears them
    /// after the commit.
    pub(crate) unheard: Vec<ReadingEvent>,
}

impl Pipeline {
    /// Tells the listener what the buffer committed, in order.
    fn after_commit(&mut self) {
        if self.buffer.pending() == 0 {
            for r in self.unheard.drain(..) {
                self.dispatch.send(Callback::Reading(r));
            }
        }
        for event in self.buffer.take_buffer_events() {
            self.dispatch.send(Callback::Buffer(buffer_event(event)));
        }
    }

    fn touch(&self, at: DateTime<Utc>) {
        let mut c = self.contact.lock().unwrap_or_else(|e| e.into_inner());
        if c.last.is_none_or(|l| l < at) {
            c.last = Some(at);
        }
    }
}

/// Hands alerts to the app, then writes them to the outbox.
///
/// The app hears first, so its local alarm never waits for the disk (an
/// fsync on a busy phone can take tens of milliseconds; the budget is
/// 10 ms) and still sounds when the write fails: a full or failing disk
/// must not silence an urgent low. The write follows at once, before
/// the sync engine is told, so the cloud copy is as durable as before.
pub(crate) fn raise(
    mut buffer: Option<&mut crate::store::Buffer>,
    dispatch: &Dispatch,
    device: &DeviceId,
    events: Vec<alerts::AlertEvent>,
    alert_posted: &(dyn Fn() + Send + Sync),
) -> Result<()> {
    let mut failed = None;
    for mut e in events {
        e.device = Some(device.0.clone());
        // The outbox's stored name of the phase.
        let phase = match e.phase {
            alerts::Phase::Start => "start",
            alerts::Phase::Realert => "realert",
            alerts::Phase::End => "end",
        };
        dispatch.send(Callback::Alert(AlertEvent {
            id: e.id.clone(),
            device: device.0.clone(),
            kind: e.kind,
            phase: e.phase,
            time_ms: millis(e.time),
            glucose_mg_dl: e.glucose_mg_dl,
        }));
        let queued = serde_json::to_vec(&e)
            .map_err(|err| Error::InvalidInput(format!("alert payload: {err}")))
            .and_then(|payload| {
                let Some(buffer) = buffer.as_deref_mut() else {
                    return Err(Error::InvalidInput(
                        "alert outbox: the buffer could not be opened".into(),
                    ));
                };
                buffer.enqueue_alert(&OutboxAlert {
                    id: e.id.clone(),
                    kind: e.kind.as_str().to_string(),
                    phase: phase.to_string(),
                    time: e.time,
                    value: e.glucose_mg_dl,
                    payload,
                })
            });
        match queued {
            Ok(_) => alert_posted(),
            // Every alert of the batch is still heard; the first failure
            // is reported once they all were.
            Err(err) => {
                failed.get_or_insert(err);
            }
        }
    }
    if let Some(err) = failed {
        return Err(err);
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
                // An engine refusal must not cost the reading its place in
                // the buffer: it is reported once the reading is stored.
                let events = match r.stream {
                    Stream::Glucose => self
                        .glucose
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .on_glucose(r),
                    Stream::Battery => self
                        .engine
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .on_battery(r.sensor_time, r.value),
                    _ => Ok(Vec::new()),
                };
                let (events, refused) = match events {
                    Ok(events) => (events, None),
                    Err(e) => (Vec::new(), Some(e)),
                };
                if r.stream == Stream::Glucose {
                    self.rearm.notify_one();
                }
                self.unheard.push(ReadingEvent::from_reading(r));
                let device = r.provenance.device.clone();
                let raised = raise(
                    Some(self.buffer.buffer_mut()),
                    &self.dispatch,
                    &device,
                    events,
                    &*self.alert_posted,
                );
                let accepted = self.buffer.accept(output);
                self.after_commit();
                return accepted.and(raised).and(refused.map_or(Ok(()), Err));
            }
            SessionOutput::Event(e) => {
                if matches!(e.kind, SessionEvent::Connected) {
                    self.touch(e.at);
                }
                self.dispatch.send(Callback::Device(device_event(e)));
            }
            SessionOutput::Gap(_) => {}
        }
        let accepted = self.buffer.accept(output);
        self.after_commit();
        accepted
    }

    fn flush_due(&self) -> Option<DateTime<Utc>> {
        self.buffer.flush_due()
    }

    fn flush(&mut self) -> Result<()> {
        let flushed = self.buffer.flush();
        self.after_commit();
        flushed
    }
}

fn device_event(e: &crate::session::DeviceEvent) -> DeviceEvent {
    let (kind, detail) = match &e.kind {
        SessionEvent::Connected => (DeviceEventKind::Connected, String::new()),
        SessionEvent::Disconnected { reason } => (DeviceEventKind::Disconnected, reason.clone()),
        SessionEvent::Reconnecting { attempt, delay_ms } => (
            DeviceEventKind::Reconnecting,
            format!("attempt {attempt}, next in {delay_ms} ms"),
        ),
        SessionEvent::ClockDrift { drift_ms } => {
            (DeviceEventKind::ClockDrift, format!("{drift_ms} ms"))
        }
        SessionEvent::NewSession { session, .. } => {
            (DeviceEventKind::NewSession, session.to_string())
        }
        SessionEvent::WarmingUp => (DeviceEventKind::WarmingUp, String::new()),
        SessionEvent::WarmUpComplete => (DeviceEventKind::WarmUpComplete, String::new()),
        SessionEvent::SessionStopped => (DeviceEventKind::SessionStopped, String::new()),
        SessionEvent::BatteryLow { percent } => (
            DeviceEventKind::BatteryLow,
            percent.map(|p| format!("{p} %")).unwrap_or_default(),
        ),
        SessionEvent::CorruptFrame { characteristic } => (
            DeviceEventKind::CorruptFrame,
            format!("{characteristic:#06x}"),
        ),
    };
    DeviceEvent {
        device: e.device.0.clone(),
        kind,
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
            pressure: level,
            used_bytes,
            budget_bytes,
            evicted: 0,
        },
        crate::store::BufferEvent::Evicted(ev) => BufferEvent {
            pressure: PressureLevel::Critical,
            used_bytes: 0,
            budget_bytes: 0,
            evicted: ev
                .acknowledged
                .saturating_add(ev.unsent)
                .saturating_add(ev.local),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::events::{BufferEvent, DeviceEvent, HostRequest, Listener, SyncEvent};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Heard(Mutex<Vec<String>>);

    impl Listener for Heard {
        fn on_reading(&self, _: ReadingEvent) {}
        fn on_alert(&self, a: AlertEvent) {
            self.0.lock().unwrap().push(a.id);
        }
        fn on_device_event(&self, _: DeviceEvent) {}
        fn on_sync_event(&self, _: SyncEvent) {}
        fn on_buffer_event(&self, _: BufferEvent) {}
        fn on_host_request(&self, _: HostRequest) {}
    }

    fn glucose(device: &str, session: i64, min: i64, value: f64) -> crate::model::Reading {
        let t0 = chrono::DateTime::from_timestamp(1_767_571_200, 0).unwrap();
        crate::model::Reading {
            patient: crate::model::PatientId("p".into()),
            stream: Stream::Glucose,
            value,
            sensor_time: t0 + chrono::TimeDelta::minutes(min),
            receive_time: t0 + chrono::TimeDelta::minutes(min),
            sequence: u64::try_from(min).unwrap(),
            quality: crate::model::Quality::default(),
            provenance: crate::model::Provenance {
                device: DeviceId(device.into()),
                characteristic: 0x2AA7,
                raw: Vec::new(),
                session: Some(session),
            },
        }
    }

    fn glucose_alerts() -> GlucoseAlerts {
        use crate::precedence::{Precedence, PrecedenceConfig, Quantity};
        let p = Precedence::new(PrecedenceConfig::default_for(Quantity::Glucose)).unwrap();
        let hold = LiveSource::default_hold(&p);
        GlucoseAlerts {
            engine: AlertEngine::new(alerts::AlertConfig::default(), "p").unwrap(),
            gate: LiveSource::new(p, hold),
        }
    }

    #[test]
    fn readings_the_gate_holds_back_raise_nothing_and_fail_nothing() {
        let mut g = glucose_alerts();
        // Two CGMs 40 mg/dL apart, interleaved, then a late backfill of
        // both: the engine was refusing such readings with an error.
        let mut events = Vec::new();
        for m in (0..60).step_by(5) {
            events.extend(g.on_glucose(&glucose("a", 1, m, 100.0)).unwrap());
            events.extend(g.on_glucose(&glucose("b", 1, m + 1, 140.0)).unwrap());
        }
        for m in (0..60).step_by(5) {
            events.extend(g.on_glucose(&glucose("a", 1, m, 100.0)).unwrap());
            events.extend(g.on_glucose(&glucose("b", 7, m, 40.0)).unwrap());
        }
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn the_app_hears_an_alert_even_when_the_outbox_cannot_take_it() {
        let heard = Arc::new(Heard::default());
        let (dispatch, thread) = Dispatch::start(heard.clone()).unwrap();
        let event = alerts::AlertEvent {
            id: "00000000000000ab".into(),
            kind: alerts::AlertKind::UrgentLow,
            phase: alerts::Phase::Start,
            time: chrono::DateTime::from_timestamp(1_767_571_200, 0).unwrap(),
            glucose_mg_dl: Some(48.0),
            rate_mg_dl_per_min: None,
            battery_pct: None,
            session_expires_at: None,
            device: None,
        };
        let posted = std::sync::atomic::AtomicUsize::new(0);
        let result = raise(
            None,
            &dispatch,
            &DeviceId("cgm-1".into()),
            vec![event],
            &|| {
                posted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            },
        );
        assert!(result.is_err(), "the failed write is reported");
        // Nothing durable: the sync engine is not told.
        assert_eq!(posted.load(std::sync::atomic::Ordering::SeqCst), 0);
        drop(dispatch);
        thread.join().unwrap();
        assert_eq!(*heard.0.lock().unwrap(), vec!["00000000000000ab"]);
    }
}

//! An in-process phone for the fault suite: simulated peripherals speaking
//! exact GATT bytes, one session per device writing through the alert
//! engine into the SQLite buffer (as the facade's pipeline does), and the
//! real sync engine posting over HTTP.
//!
//! Decisions: devices and sessions run on tokio's paused clock (hours of
//! 1 Hz readings in seconds), so the sessions are awaited on one
//! current-thread runtime; the engine's requests go out on the wall-clock
//! network runtime ([`WallClockPoster`]) and its `sent_at` comes from the
//! wall clock (plus the scenario's phone-clock error), as the facade does in
//! simulated time, so the server corrects only a really wrong phone clock.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use vigil_core::Result;
use vigil_core::alerts::{AlertConfig, AlertEngine, Phase};
use vigil_core::clock::Clock;
use vigil_core::model::{DeviceId, Sample, Stream};
use vigil_core::session::{Cursor, SessionOutput, SessionSink};
use vigil_core::store::{BufferEvent, BufferSink, OutboxAlert};
use vigil_core::sync::SyncHandle;

/// A clock a fixed amount off another: the phone whose time is wrong.
#[derive(Clone)]
pub struct Offset {
    /// The true clock.
    pub inner: Arc<dyn Clock>,
    /// How far the phone is off (positive: ahead).
    pub by: TimeDelta,
}

impl Clock for Offset {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now() + self.by
    }
}

/// What every sink of one phone shares: the alerts raised (`(id, phase)`)
/// and the buffer events the host would hear.
#[derive(Default, Clone)]
pub struct Heard {
    /// Alerts raised, in order.
    pub alerts: Arc<Mutex<Vec<(String, String)>>>,
    /// Pressure and eviction events.
    pub buffer_events: Arc<Mutex<Vec<BufferEvent>>>,
}

/// A session's sink: alerts first (outbox, then the engine is told to post
/// at once), then the buffer.
pub struct PhoneSink {
    /// The buffer connection of this session.
    pub buffer: BufferSink,
    engine: AlertEngine,
    heard: Heard,
    sync: Option<Arc<SyncHandle>>,
}

impl PhoneSink {
    /// A sink over `buffer` for `device`, raising alerts by `alerts`.
    pub fn new(
        buffer: BufferSink,
        device: &str,
        alerts: AlertConfig,
        heard: Heard,
        sync: Option<Arc<SyncHandle>>,
    ) -> Result<PhoneSink> {
        Ok(PhoneSink {
            buffer,
            engine: AlertEngine::new(alerts, device)?,
            heard,
            sync,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SessionSink for PhoneSink {
    fn cursor(&self, device: &DeviceId, stream: Stream) -> Option<Cursor> {
        self.buffer.cursor(device, stream)
    }

    fn accept(&mut self, output: SessionOutput) -> Result<()> {
        if let SessionOutput::Reading(r) = &output {
            if r.stream == Stream::Glucose {
                let events = self.engine.on_glucose(Sample {
                    time: r.sensor_time,
                    value: r.value,
                })?;
                for e in events {
                    let phase = match e.phase {
                        Phase::Start => "start",
                        Phase::Realert => "realert",
                        Phase::End => "end",
                    };
                    let payload = serde_json::to_vec(&e).map_err(|err| {
                        vigil_core::Error::InvalidInput(format!("alert payload: {err}"))
                    })?;
                    let new = self.buffer.buffer_mut().enqueue_alert(&OutboxAlert {
                        id: e.id.clone(),
                        kind: e.kind.as_str().to_string(),
                        phase: phase.to_string(),
                        time: e.time,
                        value: e.glucose_mg_dl,
                        payload,
                    })?;
                    if new {
                        lock(&self.heard.alerts).push((e.id.clone(), phase.to_string()));
                    }
                    if let Some(s) = &self.sync {
                        s.alert_enqueued();
                    }
                }
            }
        }
        let reading = matches!(output, SessionOutput::Reading(_));
        self.buffer.accept(output)?;
        lock(&self.heard.buffer_events).extend(self.buffer.take_buffer_events());
        if let (true, Some(s)) = (reading, &self.sync) {
            s.readings_stored(1);
        }
        Ok(())
    }
}

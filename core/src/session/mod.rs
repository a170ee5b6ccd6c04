//! One device's life: connect, discover, read, subscribe, backfill, stream,
//! and reconnect, turning GATT bytes into deduplicated readings, explicit
//! gaps and device events.
//!
//! Third stage of the data flow: the transport hands over bytes, the codecs
//! decode them, and the session decides what they mean. It never touches
//! storage directly: everything goes to a [`SessionSink`], whose
//! [`SessionSink::cursor`] (the newest record already held) is where a
//! backfill starts and what makes duplicates recognisable.
//!
//! ```text
//!                 ┌──────────── connect fails ───────────┐
//!                 ▼                                       │
//!   start ──▶ Connecting ──ok──▶ Discovering ──▶ Reading ─┼─▶ Subscribing
//!                 ▲   wait backoff(attempt) ± jitter      │     │ (measurement, RACP,
//!                 │                                       │     │  SOCP, battery)
//!                 │                                       │     ▼
//!            Backoff ◀──── link lost / ATT error / ───── Backfilling ◀──────────┐
//!                 ▲         timeout in any state          │ RACP "≥ cursor+1"   │ hole, corrupt
//!                 │                                       │ (all, if none)      │ frame, older
//!                 │                                       ▼                     │ offset (new
//!                 └────────────────────────────────── Streaming ────────────────┘ session?)
//!                                                         │
//!                                            `until` reached: disconnect, done
//! ```
//!
//! - **Reading** (CGM): Feature (E2E-CRC on or off), Session Start Time and
//!   CGM Status, which anchor time offsets to UTC and measure the drift
//!   between the sensor's clock and the phone's ([`time`]); a Session Start
//!   Time the session has not seen means a new sensor session.
//! - **Backfilling** happens after every (re)connect and whenever streaming
//!   reveals a hole: a record offset beyond the next expected one (a dropped
//!   notification), a corrupt frame (bad CRC: never a reading, but still in
//!   the sensor's store), or an offset older than the cursor (a new
//!   session). Records are collected until the RACP response code, sorted,
//!   deduplicated against the cursor and handed over in order. Offsets the
//!   sensor no longer holds become a [`Gap`] with [`GapReason::NotHeld`].
//! - **Backoff**: exponential from 1 s to 5 min with ±30 % seeded jitter,
//!   reset by a successful connection.
//! - **A sink failure stops the run.** When [`SessionSink::accept`] fails
//!   (a full disk, [`Error::BufferFull`]), the session hands the sink
//!   nothing more, forgets its cached cursors, disconnects and returns the
//!   error from [`Session::run_until`]. Retrying inside the session would
//!   hide a condition only the app can fix (free space, sync), and going
//!   on would store later records past one that was not kept, moving the
//!   cursor beyond a hole. Stopping is lossless for devices that store
//!   records: the next run (same session or a new one over the same sink)
//!   backfills from the sink's cursor and fetches the failed record again.
//!   A heart-rate strap or oximeter stores nothing, so what they sent
//!   while the sink failed is lost, as it is while out of range.
//!
//! Dedupe keys: (device, sensor session, time offset) for a CGM, (device,
//! sequence number) for a meter. A heart-rate strap and an oximeter store
//! nothing and number nothing: the session numbers their readings itself
//! (monotonic per stream across reconnects) and nothing is backfilled for
//! them; what they measure while the phone is away is lost, and a
//! duplicated notification of theirs cannot be told from a repeated value.
//!
//! Where each part lives: `link` the life cycle every kind shares
//! (connect, serve, reconnect with [`Backoff`]) and its GATT calls;
//! `output` what goes to the sink and the cursors; `battery` the
//! Battery Level any device may have; then one module per protocol:
//! `cgm` (RACP backfill, SOCP, time anchoring with [`time`]),
//! `glucose_meter` (RACP by sequence number), and the store-less
//! `streaming` devices, `heart_rate` and `pulse_oximeter`.

mod backoff;
mod battery;
mod cgm;
mod glucose_meter;
mod heart_rate;
mod link;
mod output;
mod pulse_oximeter;
mod sink;
mod streaming;
pub mod time;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand_chacha::ChaCha8Rng;

pub use backoff::Backoff;
pub use sink::{
    Cursor, DeviceEvent, DeviceEventKind, Gap, GapReason, MemorySink, SessionOutput, SessionSink,
};
pub use time::Anchor;

use crate::Error;
use crate::clock::Clock;
use crate::model::{DeviceId, PatientId, Stream};
use crate::transport::{EventReceiver, PeripheralId, Transport};

/// Battery level below which a device counts as low.
pub const LOW_BATTERY_PERCENT: u8 = 10;

/// Which protocol the session speaks; also the kind an app pairs a device as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum DeviceKind {
    /// Continuous glucose monitor (CGM Service, RACP backfill).
    Cgm,
    /// Heart-rate strap (no store, no backfill).
    HeartRate,
    /// Pulse oximeter (no store, no backfill).
    PulseOximeter,
    /// Blood glucose meter (Glucose Service, RACP backfill).
    GlucoseMeter,
}

/// How a session behaves.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Which protocol.
    pub kind: DeviceKind,
    /// The transport's handle for the device.
    pub peripheral: PeripheralId,
    /// The stable device identity readings carry.
    pub device: DeviceId,
    /// Whose readings they are.
    pub patient: PatientId,
    /// Reconnect policy.
    pub backoff: Backoff,
    /// Seed of the backoff jitter.
    pub jitter_seed: u64,
    /// How long to wait for a control point's response.
    pub response_timeout: Duration,
    /// CGM measurement interval assumed when the sensor does not answer
    /// Get Communication Interval.
    pub default_interval_min: u16,
    /// The meter's local time offset from UTC (Glucose Measurement base
    /// times carry no zone), minutes.
    pub meter_utc_offset_min: i32,
    /// How often a connected meter is asked for new records.
    pub meter_poll: Duration,
}

impl SessionConfig {
    /// Defaults: backoff 1 s to 5 min ±30 %, 30 s control point timeout,
    /// 5-minute CGM interval, meter at UTC+1 polled every 5 minutes.
    pub fn new(kind: DeviceKind, peripheral: PeripheralId, patient: PatientId) -> Self {
        Self {
            kind,
            device: DeviceId(peripheral.0.clone()),
            peripheral,
            patient,
            backoff: Backoff::default(),
            jitter_seed: 0,
            response_timeout: Duration::from_secs(30),
            default_interval_min: 5,
            meter_utc_offset_min: 60,
            meter_poll: Duration::from_secs(300),
        }
    }
}

/// One device's session; see the module docs.
pub struct Session<T: Transport + ?Sized, S: SessionSink> {
    cfg: SessionConfig,
    transport: Arc<T>,
    clock: Arc<dyn Clock>,
    sink: S,
    events: EventReceiver,
    rng: ChaCha8Rng,
    until: DateTime<Utc>,
    cursors: HashMap<Stream, Option<Cursor>>,
    // CGM state.
    crc: bool,
    anchor: Option<Anchor>,
    interval_min: u16,
    session_ended: bool,
    warming: bool,
    drift_reported: bool,
    // Any device.
    last_battery: Option<u8>,
    battery_low_reported: bool,
    /// The first failure of the sink in this run; once set, nothing more
    /// is handed to the sink and the run stops at the next await.
    sink_error: Option<Error>,
}

impl<T: Transport + ?Sized, S: SessionSink> std::fmt::Debug for Session<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

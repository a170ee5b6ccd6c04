//! The protocol's messages as plain data: what a batch, an alert, a
//! heartbeat and the server's acknowledgements contain, independent of how
//! they travel (JSON or the binary batch form).
//!
//! Field names are the JSON names (serde derives), so the JSON form is this
//! file; `docs/protocol.md` is the same contract for third parties.
//! [`Batch::validate`] is the one set of rules both encodings enforce, so a
//! batch that encodes in one form encodes in the other and decodes to the
//! same value.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{MAX_READINGS_PER_BATCH, MAX_TEXT_BYTES, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use crate::alerts::{AlertEvent, AlertKind, Phase};
use crate::error::{Error, Result};
use crate::reading::{DeviceId, PatientId, Quality, Reading, Stream};

/// Largest raw characteristic value a reading may carry: the longest
/// attribute value ATT allows (Core Specification, Vol 3, Part F, 3.2.9).
pub const MAX_RAW_BYTES: usize = 512;

fn wire(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Wire {
        field,
        offset: None,
        reason: reason.into(),
    }
}

/// Refuses a message version this build cannot read.
///
/// A server implementing version N reads every version from
/// [`MIN_PROTOCOL_VERSION`] to N: versions only add optional fields, so an
/// older client's message is a valid newer message with those fields
/// absent. A version above N is refused rather than half-understood.
pub fn check_version(v: u16) -> Result<()> {
    if v < MIN_PROTOCOL_VERSION {
        return Err(wire(
            "v",
            format!("protocol version {v} is below the oldest supported ({MIN_PROTOCOL_VERSION})"),
        ));
    }
    if v > PROTOCOL_VERSION {
        return Err(wire(
            "v",
            format!("protocol version {v} is newer than this build's ({PROTOCOL_VERSION})"),
        ));
    }
    Ok(())
}

fn check_text(field: &'static str, text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(wire(field, "must not be empty"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(wire(
            field,
            format!("{} bytes, at most {MAX_TEXT_BYTES} allowed", text.len()),
        ));
    }
    Ok(())
}

/// Both encodings carry times as whole microseconds since the Unix epoch
/// (the buffer's resolution; RR intervals need better than milliseconds).
fn check_time(field: &'static str, t: DateTime<Utc>) -> Result<()> {
    if t.timestamp_subsec_nanos() % 1_000 != 0 {
        return Err(wire(field, "finer than a microsecond"));
    }
    Ok(())
}

fn check_finite(field: &'static str, v: f64) -> Result<()> {
    if !v.is_finite() {
        return Err(wire(field, "not a finite number"));
    }
    Ok(())
}

/// A batch's idempotency key: 128 bits, written as a UUID
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase hex) in JSON and as
/// 16 bytes in the binary form.
///
/// Any 128-bit value is accepted; [`BatchId::random`] draws a UUIDv4 so
/// that two phones never collide in practice (122 random bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub [u8; 16]);

impl BatchId {
    /// A fresh random UUIDv4 from the operating system's generator (through
    /// `rand`'s thread-local generator, seeded from it).
    pub fn random() -> BatchId {
        let mut b = rand::random::<u128>().to_be_bytes();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        BatchId(b)
    }

    /// Parses the hyphenated UUID form (either case).
    pub fn parse(text: &str) -> Result<BatchId> {
        let bytes = text.as_bytes();
        let bad = || wire("id", "not a hyphenated UUID (8-4-4-4-12 hex digits)");
        if bytes.len() != 36 {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &c) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(bad());
                }
                continue;
            }
            let n = (c as char).to_digit(16).ok_or_else(bad)?;
            let byte = out.get_mut(nibbles / 2).ok_or_else(bad)?;
            // `to_digit(16)` is below 16, so the cast keeps every bit.
            *byte = (*byte << 4) | n as u8;
            nibbles += 1;
        }
        Ok(BatchId(out))
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for BatchId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BatchId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        BatchId::parse(&text).map_err(|_| serde::de::Error::custom("invalid batch id"))
    }
}

/// Raw characteristic bytes as lowercase hex in JSON (readable, and exact).
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        raw: &Option<Vec<u8>>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match raw {
            None => s.serialize_none(),
            Some(bytes) => {
                let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                s.serialize_some(&text)
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<Vec<u8>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let bad = || serde::de::Error::custom("raw: not an even number of hex digits");
        if text.len() % 2 != 0 {
            return Err(bad());
        }
        text.as_bytes()
            .chunks(2)
            .map(|pair| {
                let [hi, lo] = pair else { return Err(bad()) };
                let hi = (*hi as char).to_digit(16).ok_or_else(bad)?;
                let lo = (*lo as char).to_digit(16).ok_or_else(bad)?;
                // Two hex digits are at most 255.
                Ok((hi * 16 + lo) as u8)
            })
            .collect::<std::result::Result<Vec<u8>, D::Error>>()
            .map(Some)
    }
}

/// One reading of a [`StreamReadings`] group as it travels.
///
/// Its idempotency key is (patient, device, stream, session, `seq`): the
/// first four come from the batch and the group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireReading {
    /// Per-device, per-stream sequence (the CGM time offset or record
    /// number, or the session's counter).
    pub seq: u64,
    /// When the sensor measured it (absolute UTC, whole microseconds).
    pub time: DateTime<Utc>,
    /// Value in the stream's canonical unit (finite).
    pub value: f64,
    /// Trust in the value.
    #[serde(default)]
    pub quality: Quality,
    /// The characteristic value bytes it was decoded from, when the phone
    /// sends them (for audit; optional to save bytes).
    #[serde(default, with = "hex_bytes", skip_serializing_if = "Option::is_none")]
    pub raw: Option<Vec<u8>>,
}

/// A reading reduction held back: the cloud knows it existed and
/// reconstructs its value on the straight line between the kept readings
/// around it, within the group's [`StreamReadings::tolerance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBack {
    /// Its sequence (part of its idempotency key, like a kept reading's).
    pub seq: u64,
    /// When it was measured: the time the cloud interpolates at.
    pub time: DateTime<Utc>,
}

/// The readings of one stream from one sensor session and characteristic.
///
/// A batch may hold several groups of the same stream (a session change
/// inside the batch, say).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamReadings {
    /// Which quantity; values are in its canonical unit.
    pub stream: Stream,
    /// Sensor session, when the device has sessions (CGM).
    #[serde(default)]
    pub session: Option<i64>,
    /// 16-bit UUID of the characteristic the readings arrived on
    /// (provenance, e.g. 0x2AA7 = 10919).
    pub characteristic: u16,
    /// The reduction tolerance that applied, in the stream's unit; `None`
    /// for a group sent losslessly (then `held_back` is empty).
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// Kept readings, in the order the phone sends them.
    pub readings: Vec<WireReading>,
    /// Readings held back by reduction, each between two kept readings of
    /// this stream and session (in this batch or an earlier one).
    #[serde(default)]
    pub held_back: Vec<HeldBack>,
}

impl StreamReadings {
    /// An empty group.
    pub fn new(stream: Stream, session: Option<i64>, characteristic: u16) -> StreamReadings {
        StreamReadings {
            stream,
            session,
            characteristic,
            tolerance: None,
            readings: Vec::new(),
            held_back: Vec::new(),
        }
    }

    /// The cloud's reconstruction of each held-back reading from this
    /// group's kept readings: the value on the straight line between the
    /// kept readings around it ([`crate::reduce::interpolate`]), or `None`
    /// when its neighbours are not both in this group (an earlier batch
    /// holds one: the cloud interpolates over what it has stored).
    pub fn reconstruct_held_back(&self) -> Vec<(HeldBack, Option<f64>)> {
        let mut kept: Vec<crate::reading::Sample> = self
            .readings
            .iter()
            .map(|r| crate::reading::Sample {
                time: r.time,
                value: r.value,
            })
            .collect();
        kept.sort_by_key(|s| s.time);
        self.held_back
            .iter()
            .map(|h| (*h, crate::reduce::interpolate(&kept, h.time)))
            .collect()
    }
}

/// A batch of readings from one device of one patient: `POST /v1/batches`.
///
/// Its idempotency key is `id`: the same batch sent twice is stored once
/// and acknowledged again with the same [`BatchAck`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Protocol version the sender speaks.
    pub v: u16,
    /// The batch's idempotency key.
    pub id: BatchId,
    /// Whose readings.
    pub patient: PatientId,
    /// The device that measured them.
    pub device: DeviceId,
    /// The phone's clock when it sent the batch. The server compares it
    /// with its own clock at receipt and shifts every time in the batch by
    /// the difference when it exceeds its skew allowance.
    pub sent_at: DateTime<Utc>,
    /// The readings, one group per (stream, session, characteristic).
    pub streams: Vec<StreamReadings>,
}

impl Batch {
    /// An empty batch of the current protocol version.
    pub fn new(id: BatchId, patient: PatientId, device: DeviceId, sent_at: DateTime<Utc>) -> Batch {
        Batch {
            v: PROTOCOL_VERSION,
            id,
            patient,
            device,
            sent_at,
            streams: Vec::new(),
        }
    }

    fn group_for(&mut self, reading: &Reading) -> Result<&mut StreamReadings> {
        if reading.patient != self.patient {
            return Err(Error::InvalidInput(
                "batch: reading of another patient".into(),
            ));
        }
        if reading.provenance.device != self.device {
            return Err(Error::InvalidInput(
                "batch: reading of another device".into(),
            ));
        }
        let key = (
            reading.stream,
            reading.provenance.session,
            reading.provenance.characteristic,
        );
        let found = self
            .streams
            .iter()
            .position(|g| (g.stream, g.session, g.characteristic) == key);
        let index = match found {
            Some(i) => i,
            None => {
                self.streams.push(StreamReadings::new(key.0, key.1, key.2));
                self.streams.len() - 1
            }
        };
        self.streams
            .get_mut(index)
            .ok_or_else(|| Error::InvalidInput("batch: group vanished".into()))
    }

    /// Adds a kept reading to its group (created on first use). `keep_raw`
    /// sends the characteristic bytes along. Fails with
    /// [`Error::InvalidInput`] for a reading of another patient or device.
    pub fn push_reading(&mut self, reading: &Reading, keep_raw: bool) -> Result<()> {
        let group = self.group_for(reading)?;
        group.readings.push(WireReading {
            seq: reading.sequence,
            time: reading.sensor_time,
            value: reading.value,
            quality: reading.quality,
            raw: keep_raw.then(|| reading.provenance.raw.clone()),
        });
        Ok(())
    }

    /// Records a reading that reduction held back under `tolerance` (in the
    /// stream's unit). Fails like [`Batch::push_reading`], and when the
    /// group already states a different tolerance.
    pub fn push_held_back(&mut self, reading: &Reading, tolerance: f64) -> Result<()> {
        let group = self.group_for(reading)?;
        match group.tolerance {
            Some(t) if t.to_bits() != tolerance.to_bits() => {
                return Err(Error::InvalidInput(
                    "batch: two tolerances for one stream group".into(),
                ));
            }
            _ => group.tolerance = Some(tolerance),
        }
        group.held_back.push(HeldBack {
            seq: reading.sequence,
            time: reading.sensor_time,
        });
        Ok(())
    }

    /// Kept readings in the batch, over all groups.
    pub fn reading_count(&self) -> usize {
        self.streams.iter().map(|g| g.readings.len()).sum()
    }

    /// The rules both encodings enforce, on encode and on decode: a
    /// supported version; non-empty patient and device of at most
    /// [`MAX_TEXT_BYTES`]; times in whole microseconds; finite values,
    /// quality percents and tolerances (a tolerance not negative); raw
    /// bytes of at most [`MAX_RAW_BYTES`]; held-back readings only with a
    /// tolerance; at most [`MAX_READINGS_PER_BATCH`] readings and held-back
    /// readings in all.
    pub fn validate(&self) -> Result<()> {
        check_version(self.v)?;
        check_text("patient", &self.patient.0)?;
        check_text("device", &self.device.0)?;
        check_time("sent_at", self.sent_at)?;
        let mut total = 0usize;
        for g in &self.streams {
            if let Some(t) = g.tolerance {
                check_finite("tolerance", t)?;
                if t < 0.0 {
                    return Err(wire("tolerance", "negative"));
                }
            } else if !g.held_back.is_empty() {
                return Err(wire("held_back", "held-back readings without a tolerance"));
            }
            total = total
                .saturating_add(g.readings.len())
                .saturating_add(g.held_back.len());
            if total > MAX_READINGS_PER_BATCH {
                return Err(wire(
                    "readings",
                    format!("more than {MAX_READINGS_PER_BATCH} readings in one batch"),
                ));
            }
            for r in &g.readings {
                check_time("time", r.time)?;
                check_finite("value", r.value)?;
                if let Some(p) = r.quality.percent {
                    check_finite("quality.percent", p)?;
                }
                if let Some(raw) = &r.raw {
                    if raw.len() > MAX_RAW_BYTES {
                        return Err(wire(
                            "raw",
                            format!("{} bytes, at most {MAX_RAW_BYTES} allowed", raw.len()),
                        ));
                    }
                }
            }
            for h in &g.held_back {
                check_time("held_back.time", h.time)?;
            }
        }
        Ok(())
    }
}

/// An alert event for the cloud: `POST /v1/alerts`, sent at once over any
/// network and retried until acknowledged.
///
/// Its idempotency key is (`id`, `phase`, `time`): the episode's stable id
/// ([`crate::alerts::alert_id`]) with the phase and the event's time, so a
/// re-alert of the same episode is a new event and a retry is not. Absent
/// optional fields are left out rather than sent as `null` (a phone sends
/// one per alert; 70 bytes each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Protocol version the sender speaks.
    pub v: u16,
    /// Whose alert.
    pub patient: PatientId,
    /// The device whose reading raised it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    /// The phone's clock when it sent the alert (for skew correction).
    pub sent_at: DateTime<Utc>,
    /// The episode's stable id.
    pub id: String,
    /// What the alert is about.
    pub kind: AlertKind,
    /// Start, re-alert or end.
    pub phase: Phase,
    /// When it happened (see [`AlertEvent::time`]).
    pub time: DateTime<Utc>,
    /// Glucose of the reading that raised or ended it, mg/dL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glucose_mg_dl: Option<f64>,
    /// Glucose rate of change behind a rate or prediction alert, mg/dL/min.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_mg_dl_per_min: Option<f64>,
    /// Battery level behind a battery alert, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<f64>,
    /// Sensor session expiry behind a session-ending alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expires_at: Option<DateTime<Utc>>,
}

impl Alert {
    /// The wire form of an engine event.
    pub fn from_event(
        patient: PatientId,
        device: Option<DeviceId>,
        sent_at: DateTime<Utc>,
        event: &AlertEvent,
    ) -> Alert {
        Alert {
            v: PROTOCOL_VERSION,
            patient,
            device: device.or_else(|| event.device.clone().map(DeviceId)),
            sent_at,
            id: event.id.clone(),
            kind: event.kind,
            phase: event.phase,
            time: event.time,
            glucose_mg_dl: event.glucose_mg_dl,
            rate_mg_dl_per_min: event.rate_mg_dl_per_min,
            battery_pct: event.battery_pct,
            session_expires_at: event.session_expires_at,
        }
    }

    /// The engine event this alert carries.
    pub fn event(&self) -> AlertEvent {
        AlertEvent {
            id: self.id.clone(),
            kind: self.kind,
            phase: self.phase,
            time: self.time,
            glucose_mg_dl: self.glucose_mg_dl,
            rate_mg_dl_per_min: self.rate_mg_dl_per_min,
            battery_pct: self.battery_pct,
            session_expires_at: self.session_expires_at,
            device: self.device.as_ref().map(|d| d.0.clone()),
        }
    }

    /// Version supported, patient and id non-empty and short, numbers
    /// finite.
    pub fn validate(&self) -> Result<()> {
        check_version(self.v)?;
        check_text("patient", &self.patient.0)?;
        check_text("id", &self.id)?;
        if let Some(d) = &self.device {
            check_text("device", &d.0)?;
        }
        for (field, v) in [
            ("glucose_mg_dl", self.glucose_mg_dl),
            ("rate_mg_dl_per_min", self.rate_mg_dl_per_min),
            ("battery_pct", self.battery_pct),
        ] {
            if let Some(v) = v {
                check_finite(field, v)?;
            }
        }
        Ok(())
    }
}

/// What the app was doing when it sent a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppState {
    /// On screen.
    Foreground,
    /// Running without being shown.
    Background,
    /// Woken by the operating system for a short task (background fetch,
    /// a Bluetooth event).
    BackgroundTask,
    /// Reported by a newer SDK and unknown to this build.
    #[serde(other)]
    Unknown,
}

/// The buffer's health as the heartbeat reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BufferHealth {
    /// Readings not yet acknowledged by the server.
    pub unsent_readings: u64,
    /// Alerts waiting in the outbox.
    pub pending_alerts: u64,
    /// Bytes the buffer occupies.
    pub used_bytes: u64,
    /// The byte budget the app set.
    pub budget_bytes: u64,
    /// Pressure relative to the budget.
    pub pressure: PressureLevel,
}

/// How full the phone's buffer is relative to its byte budget: the phone's
/// buffer computes it, the heartbeat carries it, the dashboard shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum PressureLevel {
    /// Below 80 % of the budget.
    Normal,
    /// At or above 80 %.
    High,
    /// At or above 95 %: eviction is near.
    Critical,
}

/// One paired device as the heartbeat reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceHealth {
    /// Which device.
    pub device: DeviceId,
    /// Connected right now.
    pub connected: bool,
    /// Last time the phone heard from it (any notification or response).
    #[serde(default)]
    pub last_contact: Option<DateTime<Utc>>,
    /// Its battery level, percent, if it reports one.
    #[serde(default)]
    pub battery_pct: Option<f64>,
}

/// SDK health: `POST /v1/heartbeats`, sent on a timer. Feeds the cloud's
/// dead-man's switch (an app that went silent is not a sensor gap).
///
/// Not idempotent by key: the latest heartbeat (by `sent_at`) wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Protocol version the sender speaks.
    pub v: u16,
    /// Whose phone.
    pub patient: PatientId,
    /// The phone's clock when it sent it.
    pub sent_at: DateTime<Utc>,
    /// SDK version (semantic version of the core).
    pub sdk_version: String,
    /// What the app was doing.
    pub app_state: AppState,
    /// The phone's battery, percent, when the platform tells.
    #[serde(default)]
    pub phone_battery_pct: Option<f64>,
    /// The buffer.
    pub buffer: BufferHealth,
    /// Paired devices.
    #[serde(default)]
    pub devices: Vec<DeviceHealth>,
}

impl Heartbeat {
    /// Version supported, texts non-empty and short, percents finite.
    pub fn validate(&self) -> Result<()> {
        check_version(self.v)?;
        check_text("patient", &self.patient.0)?;
        check_text("sdk_version", &self.sdk_version)?;
        if let Some(p) = self.phone_battery_pct {
            check_finite("phone_battery_pct", p)?;
        }
        for d in &self.devices {
            check_text("device", &d.device.0)?;
            if let Some(p) = d.battery_pct {
                check_finite("battery_pct", p)?;
            }
        }
        Ok(())
    }
}

/// An inclusive range of sequences, `first <= last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeqRange {
    /// First sequence in the range.
    pub first: u64,
    /// Last sequence in the range (inclusive).
    pub last: u64,
}

impl SeqRange {
    /// The fewest ranges covering exactly `seqs` (any order, duplicates
    /// allowed), ascending.
    pub fn coalesce(seqs: impl IntoIterator<Item = u64>) -> Vec<SeqRange> {
        let mut sorted: Vec<u64> = seqs.into_iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut out: Vec<SeqRange> = Vec::new();
        for s in sorted {
            match out.last_mut() {
                Some(r) if r.last.checked_add(1) == Some(s) => r.last = s,
                _ => out.push(SeqRange { first: s, last: s }),
            }
        }
        out
    }

    /// The fewest ranges covering the `stored` sequences of one batch group
    /// and none of its `refused` ones: runs of the group's own readings, in
    /// sequence order, broken only where the group carried a refused one.
    ///
    /// Why not [`SeqRange::coalesce`]: CGM sequences step by the sampling
    /// interval (the time offset in minutes), so exact coalescing gives one
    /// range per reading and the acknowledgement grows with the batch. A
    /// range here may span sequences the group did not carry; it claims only
    /// the batch's own readings, which is all a phone settles from it (it
    /// settles the rows it sent, by their sequences).
    pub fn runs(stored: &[u64], refused: &[u64]) -> Vec<SeqRange> {
        let refused: std::collections::BTreeSet<u64> = refused.iter().copied().collect();
        // A sequence both stored and refused (two groups of one stream) is
        // left to the refusal: it breaks the run.
        let mut all: Vec<(u64, bool)> = stored
            .iter()
            .filter(|s| !refused.contains(s))
            .map(|s| (*s, true))
            .chain(refused.iter().map(|s| (*s, false)))
            .collect();
        all.sort_unstable();
        all.dedup();
        let mut out: Vec<SeqRange> = Vec::new();
        let mut open = false;
        for (seq, ok) in all {
            match out.last_mut() {
                _ if !ok => open = false,
                Some(r) if open => r.last = seq,
                _ => {
                    out.push(SeqRange {
                        first: seq,
                        last: seq,
                    });
                    open = true;
                }
            }
        }
        out
    }

    /// Whether `seq` lies in the range.
    pub fn contains(&self, seq: u64) -> bool {
        self.first <= seq && seq <= self.last
    }
}

/// Why the server refused a reading. A refused reading is final: the phone
/// must not send it again (and reports it to the app).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The value is physiologically impossible for the stream.
    ImpossibleValue,
    /// The time is too far in the future even after skew correction.
    FutureTime,
    /// The time is older than the server accepts.
    TooOld,
    /// A reading with the same key but a different value is stored, or (for
    /// glucose) another reading of the same sensor session at the same
    /// instant; the stored one stands.
    Conflict,
    /// A held-back reading has no kept reading on one side to interpolate
    /// from.
    Unreconstructible,
    /// A reason added by a newer server; treated like any other refusal.
    #[serde(other)]
    Unknown,
}

/// One refused reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// Its sequence.
    pub seq: u64,
    /// Why.
    pub reason: RejectReason,
}

/// What the server holds durably of one stream group after a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamAck {
    /// The stream.
    pub stream: Stream,
    /// The sensor session, as in the batch's group.
    #[serde(default)]
    pub session: Option<i64>,
    /// Sequences now durably stored (kept readings stored as sent,
    /// held-back readings stored as reconstructible), whether by this
    /// request or an earlier one.
    pub stored: Vec<SeqRange>,
    /// Readings refused for good.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

impl StreamAck {
    /// Whether the server answered for `seq`, stored or refused: either
    /// way the phone is done with it.
    pub fn settles(&self, seq: u64) -> bool {
        self.stored.iter().any(|r| r.contains(seq)) || self.rejected.iter().any(|r| r.seq == seq)
    }
}

/// The server's answer to a batch (the body of a 200 response).
///
/// The phone marks a reading synced only when an ack covers it; a reading
/// of the batch that no ack covers stays unsent and goes again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchAck {
    /// Protocol version of the answer: the request's.
    pub v: u16,
    /// The batch answered.
    pub batch: BatchId,
    /// `true` when this batch id had been stored before (a retry).
    #[serde(default)]
    pub duplicate: bool,
    /// Per stream group, what is stored and what was refused.
    pub streams: Vec<StreamAck>,
}

impl BatchAck {
    /// Whether this ack stores every reading (kept and held back) of
    /// `batch` and refuses none: exactly when the minimal answer
    /// ([`PREFER_MINIMAL`](super::PREFER_MINIMAL), a `204`) says all this
    /// one says to the phone that sent `batch`.
    pub fn stores_all_of(&self, batch: &Batch) -> bool {
        if self.batch != batch.id || self.streams.iter().any(|s| !s.rejected.is_empty()) {
            return false;
        }
        batch.streams.iter().all(|g| {
            let stored = |seq: u64| {
                self.streams
                    .iter()
                    .filter(|s| s.stream == g.stream && s.session == g.session)
                    .any(|s| s.stored.iter().any(|r| r.contains(seq)))
            };
            g.readings.iter().all(|r| stored(r.seq)) && g.held_back.iter().all(|h| stored(h.seq))
        })
    }

    /// The ack a minimal answer (`204` to a batch sent with
    /// [`PREFER_MINIMAL`](super::PREFER_MINIMAL)) stands for: every reading
    /// of `batch` stored, none refused.
    pub fn stored_whole(batch: &Batch) -> BatchAck {
        let streams = batch
            .streams
            .iter()
            .map(|g| StreamAck {
                stream: g.stream,
                session: g.session,
                stored: SeqRange::runs(
                    &g.readings
                        .iter()
                        .map(|r| r.seq)
                        .chain(g.held_back.iter().map(|h| h.seq))
                        .collect::<Vec<_>>(),
                    &[],
                ),
                rejected: Vec::new(),
            })
            .collect();
        BatchAck {
            v: batch.v,
            batch: batch.id,
            duplicate: false,
            streams,
        }
    }

    /// Whether the ack settles the reading (stream, session, seq).
    pub fn settles(&self, stream: Stream, session: Option<i64>, seq: u64) -> bool {
        self.streams
            .iter()
            .filter(|s| s.stream == stream && s.session == session)
            .any(|s| s.settles(seq))
    }

    /// Version supported.
    pub fn validate(&self) -> Result<()> {
        check_version(self.v)?;
        for s in &self.streams {
            if s.stored.iter().any(|r| r.first > r.last) {
                return Err(wire("stored", "a range whose first exceeds its last"));
            }
        }
        Ok(())
    }
}

/// The server's answer to an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertAck {
    /// Protocol version of the answer: the request's.
    pub v: u16,
    /// The alert's id.
    pub id: String,
    /// Its phase.
    pub phase: Phase,
    /// Its time.
    pub time: DateTime<Utc>,
    /// `true` when the event had been stored before (a retry).
    #[serde(default)]
    pub duplicate: bool,
}

impl AlertAck {
    /// Version supported, id non-empty and short.
    pub fn validate(&self) -> Result<()> {
        check_version(self.v)?;
        check_text("id", &self.id)
    }
}

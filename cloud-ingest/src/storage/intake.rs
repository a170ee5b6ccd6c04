//! The intake data model every backend stores: validated batches, alert
//! events, heartbeats and the dead-man's switch state, plus the one piece
//! of logic both backends share, [`assemble_ack`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigil_model::reading::Stream;
use vigil_model::wire::{BatchAck, BatchId, Rejected, SeqRange, StreamAck};

use crate::domain::{PatientId, TokenId};

/// The session column's value for a stream without sensor sessions: the
/// unique key then needs no NULL semantics (which differ between backends).
pub const NO_SESSION: i64 = -1;

/// A session as stored: [`NO_SESSION`] for `None`.
pub fn session_column(session: Option<i64>) -> i64 {
    session.unwrap_or(NO_SESSION)
}

/// A stored session column back to the wire's form.
pub fn session_from_column(column: i64) -> Option<i64> {
    (column != NO_SESSION).then_some(column)
}

/// A sequence as stored: the u64's two's-complement i64 (BIGINT).
pub fn seq_column(seq: u64) -> i64 {
    i64::from_ne_bytes(seq.to_ne_bytes())
}

/// A stored sequence back to the wire's u64.
pub fn seq_from_column(column: i64) -> u64 {
    u64::from_ne_bytes(column.to_ne_bytes())
}

/// Microseconds since the Unix epoch: how intake tables store times.
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`micros`]; out-of-range values clamp to the epoch.
pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// One reading ready to store (validated, skew-corrected; a held-back
/// reading carries its reconstructed value).
#[derive(Debug, Clone, PartialEq)]
pub struct NewReading {
    /// Per-device, per-stream sequence.
    pub seq: u64,
    /// When it was measured (after skew correction).
    pub time: DateTime<Utc>,
    /// Its value (reconstructed when `held_back`).
    pub value: f64,
    /// Sensor-reported quality percent.
    pub quality_percent: Option<f64>,
    /// Whether the sensor flagged the value.
    pub quality_flagged: bool,
    /// Held back by the phone's reduction; `value` is the cloud's
    /// reconstruction within the group's tolerance.
    pub held_back: bool,
    /// The characteristic bytes, when the phone sent them.
    pub raw: Option<Vec<u8>>,
}

/// One group of a batch: the readings to store and those already refused.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGroup {
    /// The stream.
    pub stream: Stream,
    /// The sensor session.
    pub session: Option<i64>,
    /// The characteristic's 16-bit UUID.
    pub characteristic: u16,
    /// The reduction tolerance that applied.
    pub tolerance: Option<f64>,
    /// Readings that passed validation.
    pub readings: Vec<NewReading>,
    /// Readings refused by validation (listed in the ack, never stored).
    pub rejected: Vec<Rejected>,
}

/// A validated batch for [`super::Storage::store_batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewBatch {
    /// The protocol version of the request (the ack answers in it).
    pub v: u16,
    /// The idempotency key.
    pub id: BatchId,
    /// The (authenticated) patient.
    pub patient: PatientId,
    /// The device that measured every reading.
    pub device: String,
    /// The server's clock at receipt.
    pub received_at: DateTime<Utc>,
    /// The groups, in the batch's order.
    pub groups: Vec<NewGroup>,
}

impl NewBatch {
    /// The key a batch is stored once by: its id within its patient and
    /// device (the first 16 bytes of a SHA-256 over the three,
    /// length-prefixed), so a device reusing another's batch id neither
    /// receives that batch's acknowledgement nor loses its own readings.
    /// Derived here, above the backends, so both key alike; it fits the
    /// 16-byte `batch_key` column without a migration. (A batch stored
    /// before this key and retried after is stored again, reading by
    /// reading, as already stored: nothing is duplicated.)
    pub fn idempotency_key(&self) -> [u8; 16] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"vigil batch key v1");
        h.update(self.patient.to_le_bytes());
        h.update((self.device.len() as u64).to_le_bytes());
        h.update(self.device.as_bytes());
        h.update(self.id.0);
        let digest = h.finalize();
        let mut key = [0u8; 16];
        for (k, d) in key.iter_mut().zip(digest.iter()) {
            *k = *d;
        }
        key
    }
}

/// What storing one reading found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingOutcome {
    /// Stored by this call.
    Inserted,
    /// Stored before with the same value: counts as stored.
    AlreadyStored,
    /// Stored before with another value: the stored one stands.
    Conflict,
}

/// The ack for a newly stored batch: per group, the stored sequences
/// coalesced into ranges, and validation refusals plus conflicts.
/// `outcomes[g][i]` is the outcome of `batch.groups[g].readings[i]`.
pub fn assemble_ack(batch: &NewBatch, outcomes: &[Vec<ReadingOutcome>]) -> BatchAck {
    let streams = batch
        .groups
        .iter()
        .zip(outcomes)
        .map(|(g, out)| {
            let mut stored = Vec::new();
            let mut rejected = g.rejected.clone();
            for (r, o) in g.readings.iter().zip(out) {
                match o {
                    ReadingOutcome::Inserted | ReadingOutcome::AlreadyStored => stored.push(r.seq),
                    ReadingOutcome::Conflict => rejected.push(Rejected {
                        seq: r.seq,
                        reason: vigil_model::wire::RejectReason::Conflict,
                    }),
                }
            }
            rejected.sort_by_key(|r| r.seq);
            let refused: Vec<u64> = rejected.iter().map(|r| r.seq).collect();
            StreamAck {
                stream: g.stream,
                session: g.session,
                stored: SeqRange::runs(&stored, &refused),
                rejected,
            }
        })
        .collect();
    BatchAck {
        v: batch.v,
        batch: batch.id,
        duplicate: false,
        streams,
    }
}

/// One stream of one device of one patient in one sensor session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesKey {
    /// The patient.
    pub patient: PatientId,
    /// The device.
    pub device: String,
    /// The stream.
    pub stream: Stream,
    /// The sensor session.
    pub session: Option<i64>,
}

/// A reading as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredReading {
    /// The device that measured it.
    pub device: String,
    /// The stream.
    pub stream: Stream,
    /// The sensor session.
    pub session: Option<i64>,
    /// Its sequence.
    pub seq: u64,
    /// When it was measured.
    pub time: DateTime<Utc>,
    /// Its value (reconstructed when `held_back`).
    pub value: f64,
    /// Sensor-reported quality percent.
    pub quality_percent: Option<f64>,
    /// Whether the sensor flagged it.
    pub quality_flagged: bool,
    /// The characteristic it arrived on.
    pub characteristic: u16,
    /// The reduction tolerance that applied.
    pub tolerance: Option<f64>,
    /// Held back by reduction and reconstructed here.
    pub held_back: bool,
}

/// A readings query: one patient, a half-open time range, a page size.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingQuery {
    /// Whose readings.
    pub patient: PatientId,
    /// Only this stream, when set.
    pub stream: Option<Stream>,
    /// From (inclusive).
    pub from: DateTime<Utc>,
    /// To (exclusive).
    pub to: DateTime<Utc>,
    /// At most this many.
    pub limit: u32,
}

/// An alert event to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// Whose alert.
    pub patient: PatientId,
    /// The episode's stable id.
    pub alert_id: String,
    /// The device whose reading raised it.
    pub device: Option<String>,
    /// `urgent_low`, ..., or the service's own `app_silent`.
    pub kind: String,
    /// `start`, `realert` or `end`.
    pub phase: String,
    /// When it happened (skew-corrected).
    pub time: DateTime<Utc>,
    /// When it happened as the phone stated it (uncorrected): the same on
    /// every retry, so the event is stored once by (patient, id, phase,
    /// this). Equal to `time` for the service's own alerts.
    pub phone_time: DateTime<Utc>,
    /// The glucose behind it, mg/dL, when any.
    pub value: Option<f64>,
    /// The whole event as JSON (rates, battery, expiry), for readers.
    pub detail: String,
    /// The server's clock at receipt.
    pub received_at: DateTime<Utc>,
}

/// A stored alert event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    /// The event as stored.
    pub alert: NewAlert,
    /// Acknowledgements of its episode so far.
    pub acks: Vec<AlertAckRecord>,
}

/// One acknowledgement of an alert episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertAckRecord {
    /// Who (a clinician token's id).
    pub token_id: TokenId,
    /// When.
    pub at: DateTime<Utc>,
    /// Who, as people know them: the clinician's name (or the token's
    /// label or role for other tokens), so a timeline never shows ids.
    pub by: String,
}

/// A heartbeat to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHeartbeat {
    /// Whose phone.
    pub patient: PatientId,
    /// The phone's clock at send (the latest wins).
    pub sent_at: DateTime<Utc>,
    /// The server's clock at receipt (the contact time).
    pub received_at: DateTime<Utc>,
    /// The heartbeat as JSON.
    pub body: String,
}

/// An open `app_silent` episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    /// The episode's alert id.
    pub alert_id: String,
    /// When the silence began (last contact plus the threshold).
    pub since: DateTime<Utc>,
}

/// What the dead-man's switch knows of one patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The patient.
    pub patient: PatientId,
    /// When the service last heard from the patient's SDK.
    pub last_contact: DateTime<Utc>,
    /// The open `app_silent` episode, if any.
    pub silence: Option<Silence>,
}

/// Microseconds in a UTC day: `time / DAY_MICROS` is a reading's day.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// The UTC day (whole days since 1970-01-01) holding `t`.
pub fn day_of(t: DateTime<Utc>) -> i64 {
    micros(t).div_euclid(DAY_MICROS)
}

/// The first moment of UTC day `day`.
pub fn day_start(day: i64) -> DateTime<Utc> {
    from_micros(day.saturating_mul(DAY_MICROS))
}

/// The distinct UTC days of a batch's interstitial glucose: the days whose
/// summary (`glucose_days`) the batch can change.
pub fn glucose_days_of(b: &NewBatch) -> Vec<i64> {
    let mut days: Vec<i64> = b
        .groups
        .iter()
        .filter(|g| g.stream == Stream::Glucose)
        .flat_map(|g| g.readings.iter().map(|r| day_of(r.time)))
        .collect();
    days.sort_unstable();
    days.dedup();
    days
}

/// One UTC day of one patient's resolved glucose, counted by consensus
/// band (the bands of `vigil_model::metrics`; see `glucose_days.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DayCounts {
    /// Readings of the resolved series.
    pub readings: i64,
    /// Below 54 mg/dL.
    pub very_low: i64,
    /// 54 up to (not including) 70.
    pub low: i64,
    /// 70 to 180 inclusive.
    pub in_range: i64,
    /// 70 to 140 inclusive (inside `in_range`).
    pub tight: i64,
    /// Above 180 up to 250 inclusive.
    pub high: i64,
    /// Above 250.
    pub very_high: i64,
    /// Five-minute slots (aligned to the epoch) holding a reading.
    pub slots: i64,
    /// Sum of the values, mg/dL (for the mean).
    pub sum_mg_dl: f64,
}

/// A stored day summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlucoseDay {
    /// The patient.
    pub patient: PatientId,
    /// Whole days since 1970-01-01 UTC.
    pub day: i64,
    /// The counts as last computed.
    pub counts: DayCounts,
    /// Whether the counts are current (no write since they were computed).
    pub current: bool,
}

/// What a day summary keeps beside its counts so that a batch appending to
/// the day's one sensor series can update the counts without reading the
/// day again (`glucose_days::append`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayTail {
    /// The one series every reading of the day came from
    /// (`glucose_days::series_key`); `None` when there are several, or it is
    /// not known.
    pub series: Option<String>,
    /// The latest reading's time (microseconds), counted or not.
    pub last_raw: Option<i64>,
    /// The latest counted point's time (microseconds).
    pub last_point: Option<i64>,
}

/// A day summary row as intake reads it inside the transaction that just
/// bumped its generation.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRow {
    /// Whole days since 1970-01-01 UTC.
    pub day: i64,
    /// The generation after this transaction's bump.
    pub stale: i64,
    /// The generation the counts were computed at (`None`: never).
    pub fresh: Option<i64>,
    /// The counts as last computed.
    pub counts: DayCounts,
    /// What the counts were computed over.
    pub tail: DayTail,
}

/// A day summary that needs computing: its generation when it was read
/// (pass it back to [`super::Storage::put_glucose_day`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleDay {
    /// The patient.
    pub patient: PatientId,
    /// Whole days since 1970-01-01 UTC.
    pub day: i64,
    /// The row's `stale` generation when read.
    pub generation: i64,
}

/// Whose day summaries a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayScope {
    /// One patient's.
    Patient(PatientId),
    /// Every patient assigned to this clinician.
    Clinician(crate::domain::ClinicianId),
}

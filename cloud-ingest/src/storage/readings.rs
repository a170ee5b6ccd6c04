//! Readings and what is derived from them: batches, reading queries,
//! Nightscout deletes and documents, glucose day summaries and the
//! per-patient precedence policies that decide which reading counts.

use chrono::{DateTime, Utc};

use super::{
    DayCounts, DayScope, DayTail, GlucoseDay, NewBatch, ReadingQuery, SeriesKey, StaleDay,
    StoredReading,
};
use crate::domain::{NsDocument, PatientId, TokenId};
use crate::error::Result;

/// Storing and reading a patient's readings.
pub trait Readings: Send + Sync {
    /// Stores a validated batch in one transaction and answers with what is
    /// durably stored. A batch id seen before returns the ack stored with it
    /// (`duplicate: true`) and writes nothing; a reading whose key is stored
    /// counts as stored when its value is the same and is rejected as
    /// `conflict` otherwise. Build the answer with [`super::assemble_ack`].
    /// Also records the patient's last contact (the dead-man's switch).
    fn store_batch(&self, batch: &NewBatch) -> Result<vigil_model::wire::BatchAck>;
    /// The latest stored kept reading of one stream and session strictly
    /// before `at` (reconstructing a held-back reading whose earlier
    /// neighbour arrived in an earlier batch).
    fn kept_reading_before(
        &self,
        key: &SeriesKey,
        at: DateTime<Utc>,
    ) -> Result<Option<StoredReading>>;
    /// The (time, sequence) of every stored reading of one series with time
    /// in `[from, to]` (the same-instant rule of batch intake: a sensor
    /// session measures once per instant).
    fn sequences_between(
        &self,
        key: &SeriesKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, u64)>>;
    /// Readings of a patient in `[from, to)`, by time then id, at most
    /// `limit`; `stream` narrows to one stream.
    fn readings(&self, query: &ReadingQuery) -> Result<Vec<StoredReading>>;
    /// Deletes `patient`'s readings from `device` with time in `[from,
    /// to)`; returns how many (Nightscout's DELETE: an owner removes what
    /// they uploaded through Nightscout, nothing a phone synced).
    fn delete_readings(
        &self,
        patient: PatientId,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64>;

    /// `patient`'s stored precedence policy for `quantity` (its JSON
    /// document), or `None` for the product default.
    fn precedence_policy(&self, patient: PatientId, quantity: &str) -> Result<Option<String>>;
    /// Stores `patient`'s precedence policy for `quantity` (already
    /// validated), replacing any earlier one; false when no such patient.
    fn set_precedence_policy(
        &self,
        patient: PatientId,
        quantity: &str,
        policy: &str,
        by: Option<TokenId>,
        at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Stores Nightscout documents of `collection` (`treatments` or
    /// `devicestatus`) for `patient` in one transaction; one already stored
    /// (same time and kind) is skipped. Returns how many were new.
    fn store_ns_documents(
        &self,
        patient: PatientId,
        collection: &str,
        documents: &[NsDocument],
    ) -> Result<u64>;
    /// `patient`'s documents of `collection` with a time in `[from, to)`,
    /// newest first, at most `limit`.
    fn ns_documents(
        &self,
        patient: PatientId,
        collection: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NsDocument>>;

    /// Day summaries of `scope` for days in `[from_day, to_day)`, current or
    /// not (`GlucoseDay::current`), by patient then day.
    fn glucose_days(&self, scope: DayScope, from_day: i64, to_day: i64) -> Result<Vec<GlucoseDay>>;
    /// The day summaries of `scope` in `[from_day, to_day)` that are not
    /// current (a write since they were computed, or never computed).
    fn stale_glucose_days(
        &self,
        scope: DayScope,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<StaleDay>>;
    /// Stores the counts computed for a stale day read at `generation`, and
    /// what they were computed over; a write since then leaves the row
    /// stale and returns false.
    fn put_glucose_day(
        &self,
        patient: PatientId,
        day: i64,
        generation: i64,
        counts: &DayCounts,
        tail: &DayTail,
    ) -> Result<bool>;
}

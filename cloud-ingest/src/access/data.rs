//! One patient's data, as handlers read and add it: each function takes
//! the gate's proof ([`PatientAccess<Read>`] or [`PatientAccess<Write>`])
//! instead of a patient id, so a handler that has not opened the gate has
//! nothing to call them with.
//!
//! A thin layer above [`Storage`] and the shared rules ([`crate::glucose`],
//! [`crate::resolved`]): it adds no rule of its own, only the patient from
//! the proof. Internal work that is not a caller's request (the glucose-day
//! cache, the dead-man's switch, intake from the device token) calls the
//! layers below directly.

use chrono::{DateTime, Utc};
use vigil_model::precedence::Quantity;
use vigil_model::reading::{Sample, Stream};
use vigil_model::wire::BatchAck;

use super::{PatientAccess, Read, Write};
use crate::domain::{DataPoint, NsDocument, Patient};
use crate::error::{Error, Result};
use crate::resolved::{self, Policy, Resolved};
use crate::storage::{ReadingQuery, Storage, StoredAlert, StoredReading};

impl PatientAccess<Read> {
    /// The patient's record. A patient removed since the gate opened
    /// answers as the gate does for a missing one.
    pub fn record(&self, s: &dyn Storage) -> Result<Patient> {
        s.patient(self.patient)?
            .ok_or(Error::Forbidden(super::OUT_OF_SCOPE))
    }

    /// Glucose in `[from, to)`, resolved across sources
    /// ([`crate::glucose::points`]).
    pub fn points(
        &self,
        s: &dyn Storage,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DataPoint>> {
        crate::glucose::points(s, self.patient, from, to)
    }

    /// Readings as stored in `[from, to)`, at most `limit`; `stream`
    /// narrows to one stream.
    pub fn readings(
        &self,
        s: &dyn Storage,
        stream: Option<Stream>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredReading>> {
        s.readings(&self.reading_query(stream, from, to, limit))
    }

    /// The query [`PatientAccess::readings`] runs, for readers that narrow
    /// it further (the resolved readings of one quantity).
    pub fn reading_query(
        &self,
        stream: Option<Stream>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> ReadingQuery {
        ReadingQuery {
            patient: self.patient,
            stream,
            from,
            to,
            limit,
        }
    }

    /// The precedence policy in force for `quantity`.
    pub fn policy(&self, s: &dyn Storage, quantity: Quantity) -> Result<Policy> {
        resolved::policy(s, self.patient, quantity)
    }

    /// `quantity` in `[from, to)` resolved across its sources
    /// ([`resolved::resolve`]).
    pub fn resolve(
        &self,
        s: &dyn Storage,
        quantity: Quantity,
        streams: Option<&[Stream]>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Resolved> {
        resolved::resolve(s, self.patient, quantity, streams, from, to)
    }

    /// Nightscout documents of `collection` in `[from, to)`, newest first,
    /// at most `limit`.
    pub fn ns_documents(
        &self,
        s: &dyn Storage,
        collection: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NsDocument>> {
        s.ns_documents(self.patient, collection, from, to, limit)
    }

    /// Alert events at or after `since`, oldest first, at most `limit`.
    pub fn alerts(
        &self,
        s: &dyn Storage,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>> {
        s.alerts_for(&[self.patient], since, limit)
    }
}

impl PatientAccess<Write> {
    /// Stores glucose `samples` from `device` as one batch
    /// ([`crate::glucose::store`]).
    pub fn store_glucose(
        &self,
        s: &dyn Storage,
        device: &str,
        samples: &[Sample],
    ) -> Result<BatchAck> {
        crate::glucose::store(s, self.patient, device, samples)
    }

    /// Stores Nightscout documents of `collection`; returns how many were
    /// new.
    pub fn store_ns_documents(
        &self,
        s: &dyn Storage,
        collection: &str,
        documents: &[NsDocument],
    ) -> Result<u64> {
        s.store_ns_documents(self.patient, collection, documents)
    }

    /// Deletes readings from `device` in `[from, to)`; returns how many.
    pub fn delete_readings(
        &self,
        s: &dyn Storage,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64> {
        s.delete_readings(self.patient, device, from, to)
    }
}

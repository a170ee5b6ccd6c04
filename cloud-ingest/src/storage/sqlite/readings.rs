//! Readings: rows for [`crate::storage::Readings`].

use chrono::{DateTime, Utc};
use rusqlite::params;
use vigil_model::wire::BatchAck;

use super::{SqliteStorage, intake};
use crate::domain::{NsDocument, PatientId, TokenId};
use crate::error::{Error, Result};
use crate::storage::{
    DayCounts, DayScope, DayTail, GlucoseDay, NewBatch, ReadingQuery, Readings, SeriesKey,
    StaleDay, StoredReading, rules,
};

impl Readings for SqliteStorage {
    fn precedence_policy(&self, patient: PatientId, quantity: &str) -> Result<Option<String>> {
        intake::precedence_policy(&self.reader(), patient, quantity)
    }

    fn set_precedence_policy(
        &self,
        patient: PatientId,
        quantity: &str,
        policy: &str,
        by: Option<TokenId>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM patients WHERE id = ?1)",
            [patient],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO precedence_policies (patient_id, quantity, policy, updated_at, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (patient_id, quantity) DO UPDATE SET
                 policy = excluded.policy, updated_at = excluded.updated_at,
                 updated_by = excluded.updated_by",
            params![patient, quantity, policy, at, by],
        )?;
        // Another policy re-decides every moment: every day summary of the
        // patient's glucose is stale.
        if rules::policy_stales_days(quantity) {
            tx.execute(
                "UPDATE glucose_days SET stale = stale + 1 WHERE patient_id = ?1",
                [patient],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    fn store_ns_documents(
        &self,
        patient: PatientId,
        collection: &str,
        documents: &[NsDocument],
    ) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut new = 0u64;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO nightscout_documents (patient_id, collection, time_ms, kind, document)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (patient_id, collection, time_ms, kind) DO NOTHING",
            )?;
            for d in documents {
                new += insert.execute(params![
                    patient,
                    collection,
                    d.time.timestamp_millis(),
                    d.kind,
                    d.document
                ])? as u64;
            }
        }
        tx.commit()?;
        Ok(new)
    }

    fn ns_documents(
        &self,
        patient: PatientId,
        collection: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NsDocument>> {
        let conn = self.reader();
        let mut q = conn.prepare_cached(
            "SELECT time_ms, kind, document FROM nightscout_documents
             WHERE patient_id = ?1 AND collection = ?2 AND time_ms >= ?3 AND time_ms < ?4
             ORDER BY time_ms DESC, kind LIMIT ?5",
        )?;
        let rows = q.query_map(
            params![
                patient,
                collection,
                from.timestamp_millis(),
                to.timestamp_millis(),
                limit
            ],
            |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (ms, kind, document) = row?;
            let time = DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| Error::Internal("stored document time out of range".into()))?;
            out.push(NsDocument {
                time,
                kind,
                document,
            });
        }
        Ok(out)
    }

    fn delete_readings(
        &self,
        patient: PatientId,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM readings WHERE patient_id = ?1 AND device = ?2 AND time >= ?3 AND time < ?4",
            params![patient, device, crate::storage::micros(from), crate::storage::micros(to)],
        )?;
        if n > 0 {
            let (first, last) = rules::days_touched(from, to);
            tx.execute(
                "UPDATE glucose_days SET stale = stale + 1
                  WHERE patient_id = ?1 AND day >= ?2 AND day <= ?3",
                params![patient, first, last],
            )?;
        }
        tx.commit()?;
        Ok(n as u64)
    }

    fn glucose_days(&self, scope: DayScope, from_day: i64, to_day: i64) -> Result<Vec<GlucoseDay>> {
        intake::glucose_days(&self.reader(), scope, from_day, to_day)
    }

    fn stale_glucose_days(
        &self,
        scope: DayScope,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<StaleDay>> {
        intake::stale_glucose_days(&self.reader(), scope, from_day, to_day)
    }

    fn put_glucose_day(
        &self,
        patient: PatientId,
        day: i64,
        generation: i64,
        counts: &DayCounts,
        tail: &DayTail,
    ) -> Result<bool> {
        intake::put_glucose_day(&self.conn(), patient, day, generation, counts, tail)
    }

    fn store_batch(&self, batch: &NewBatch) -> Result<BatchAck> {
        intake::store_batch(|| self.conn(), batch)
    }

    fn kept_reading_before(
        &self,
        key: &SeriesKey,
        at: DateTime<Utc>,
    ) -> Result<Option<StoredReading>> {
        intake::kept_reading_before(&self.reader(), key, at)
    }

    fn sequences_between(
        &self,
        key: &SeriesKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, u64)>> {
        intake::sequences_between(&self.reader(), key, from, to)
    }

    fn readings(&self, query: &ReadingQuery) -> Result<Vec<StoredReading>> {
        intake::readings(&self.reader(), query)
    }
}

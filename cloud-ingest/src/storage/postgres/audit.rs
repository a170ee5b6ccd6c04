//! Audit: rows for [`crate::storage::Audit`].

use chrono::Utc;

use super::PostgresStorage;
use crate::domain::{AuditEntry, CredentialKind, NewAuditEntry, PatientId, TokenId};
use crate::error::Result;
use crate::storage::Audit;

impl Audit for PostgresStorage {
    fn insert_audit_row(&self, entry: &NewAuditEntry) -> Result<i64> {
        Ok(self
            .conn()?
            .one(
                "INSERT INTO audit_log (at, credential, token_id, patient_id, action)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &Utc::now(),
                    &entry.credential.as_str(),
                    &entry.token_id,
                    &entry.patient_id,
                    &entry.action,
                ],
            )?
            .get(0))
    }

    fn insert_audit_rows(&self, entries: &[NewAuditEntry]) -> Result<()> {
        // One statement over parallel arrays: one round trip and one
        // commit for the whole page, however many patients it shows.
        let credential: Vec<&str> = entries.iter().map(|e| e.credential.as_str()).collect();
        let token: Vec<Option<TokenId>> = entries.iter().map(|e| e.token_id).collect();
        let patient: Vec<Option<PatientId>> = entries.iter().map(|e| e.patient_id).collect();
        let action: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        self.conn()?.execute(
            "INSERT INTO audit_log (at, credential, token_id, patient_id, action)
             SELECT $1, c, t, p, a
               FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::text[]) AS u (c, t, p, a)",
            &[&Utc::now(), &credential, &token, &patient, &action],
        )?;
        Ok(())
    }

    fn audit_entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        Ok(self
            .conn()?
            .query(
                "SELECT id, at, token_id, patient_id, action, credential FROM audit_log
                  WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &i64::from(limit)],
            )?
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                at: r.get(1),
                token_id: r.get(2),
                patient_id: r.get(3),
                action: r.get(4),
                credential: CredentialKind::parse(r.get(5)),
            })
            .collect())
    }
}

//! Audit: rows for [`crate::storage::Audit`].

use chrono::Utc;
use rusqlite::params;

use super::SqliteStorage;
use crate::domain::{AuditEntry, CredentialKind, NewAuditEntry};
use crate::error::Result;
use crate::storage::Audit;

impl Audit for SqliteStorage {
    fn insert_audit_row(&self, entry: &NewAuditEntry) -> Result<i64> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO audit_log (at, credential, token_id, patient_id, action)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            Utc::now(),
            entry.credential.as_str(),
            entry.token_id,
            entry.patient_id,
            entry.action
        ])?;
        Ok(conn.last_insert_rowid())
    }

    fn insert_audit_rows(&self, entries: &[NewAuditEntry]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO audit_log (at, credential, token_id, patient_id, action)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let at = Utc::now();
            for e in entries {
                insert.execute(params![
                    at,
                    e.credential.as_str(),
                    e.token_id,
                    e.patient_id,
                    e.action
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn audit_entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, at, token_id, patient_id, action, credential FROM audit_log
              WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                token_id: r.get(2)?,
                patient_id: r.get(3)?,
                action: r.get(4)?,
                credential: CredentialKind::parse(&r.get::<_, String>(5)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

//! The audit log: append-only, read in pages by the admin.

use super::rules;

use crate::domain::{AuditEntry, NewAuditEntry};
use crate::error::Result;

/// Appending to and reading the audit log.
pub trait Audit: Send + Sync {
    /// Appends an audit entry. Entries are never updated or deleted.
    fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64> {
        rules::audit_action(&entry.action)?;
        self.insert_audit_row(entry)
    }
    /// Row mapping of [`Self::append_audit`]; the action is checked.
    fn insert_audit_row(&self, entry: &NewAuditEntry) -> Result<i64>;
    /// Appends many audit entries at once, all or none: a page that reads
    /// hundreds of patients (the triage list) audits each of them without
    /// a round trip apiece.
    fn append_audits(&self, entries: &[NewAuditEntry]) -> Result<()> {
        for e in entries {
            rules::audit_action(&e.action)?;
        }
        if entries.is_empty() {
            return Ok(());
        }
        self.insert_audit_rows(entries)
    }
    /// Row mapping of [`Self::append_audits`]: every action is checked and
    /// there is at least one entry.
    fn insert_audit_rows(&self, entries: &[NewAuditEntry]) -> Result<()>;
    /// Audit entries with id greater than `after`, oldest first, at most
    /// `limit` of them.
    fn audit_entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>>;
}

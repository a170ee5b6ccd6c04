//! Views: the JSON shapes the read API answers with. Kept apart from the
//! storage rows so a column added for the service's own use never leaks
//! into a response by accident.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{AuditEntry, CredentialKind, Patient, PatientId, TokenId};

/// One patient as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientView {
    /// The patient's id (used in every per-patient path).
    pub id: PatientId,
    /// The patient's display name.
    pub display_name: String,
}

impl From<Patient> for PatientView {
    fn from(p: Patient) -> Self {
        Self {
            id: p.id,
            display_name: p.display_name,
        }
    }
}

/// `GET /v1/patients`: the patients this token reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientsView {
    /// Ordered by id.
    pub patients: Vec<PatientView>,
}

/// One audit entry as an admin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntryView {
    /// Monotonic id; pass the last one as `after` to page on.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Which kind of credential acted: `token`, `dashboard_session`,
    /// `nightscout_secret`, `admin_cli` (`unrecorded` before the log kept it).
    pub credential: CredentialKind,
    /// Which token (id, never the secret); `null` for a Nightscout secret
    /// and the admin CLI.
    pub token_id: Option<TokenId>,
    /// Which patient, if any.
    pub patient_id: Option<PatientId>,
    /// What was done.
    pub action: String,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            credential: e.credential,
            token_id: e.token_id,
            patient_id: e.patient_id,
            action: e.action,
        }
    }
}

/// `GET /v1/audit`: one page of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    /// Oldest first.
    pub entries: Vec<AuditEntryView>,
}

//! The audit log's records: every read or change of patient data, and
//! every refusal, is one row.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{CredentialKind, PatientId, TokenId};

/// One audit entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// Which kind of credential acted.
    pub credential: CredentialKind,
    /// Which token: its id, or `None` for a Nightscout secret, the admin
    /// CLI, or a refused credential that named no known token.
    pub token_id: Option<TokenId>,
    /// Which patient's data was touched, if any.
    pub patient_id: Option<PatientId>,
    /// What was done, a short stable verb phrase (e.g. `patients.read`).
    pub action: String,
}

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Monotonic id: the order entries were appended in.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Which kind of credential acted.
    pub credential: CredentialKind,
    /// Which token, if a token acted (see [`NewAuditEntry::token_id`]).
    pub token_id: Option<TokenId>,
    /// Which patient.
    pub patient_id: Option<PatientId>,
    /// What.
    pub action: String,
}

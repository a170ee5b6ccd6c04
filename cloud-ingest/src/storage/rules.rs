//! The rules every backend shares, written once above the backends: names
//! that must not be empty, a token's role agreeing with its scope, what a
//! constraint violation means to the caller. A backend reports what its
//! rows said (a [`Written`] outcome, a raw [`TokenRow`]); these functions
//! turn that into the contract's answer, so both backends answer alike.

use chrono::{DateTime, Utc};

use crate::domain::{ClinicianId, PatientId, TokenId, TokenRecord, TokenScope};
use crate::domain::{Role, TokenHash};
use crate::error::{Error, Result};

/// What a write found in the rows, for the trait's default method to turn
/// into the contract's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written<T = ()> {
    /// The row was written.
    Done(T),
    /// A row it links to does not exist (a foreign key).
    Missing,
    /// A unique value is already used by another row.
    Taken,
}

impl<T> Written<T> {
    /// The written value, or `NotFound(missing)` / `Conflict(taken)`.
    pub fn or_refuse(self, missing: impl FnOnce() -> String, taken: &str) -> Result<T> {
        match self {
            Written::Done(v) => Ok(v),
            Written::Missing => Err(Error::NotFound(missing())),
            Written::Taken => Err(Error::Conflict(taken.into())),
        }
    }
}

/// A token as a backend reads it, before the rules check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// The token's id.
    pub id: TokenId,
    /// The stored hash bytes.
    pub hash: Vec<u8>,
    /// The stored role name.
    pub role: String,
    /// The linked patient, for device and follower tokens.
    pub patient: Option<PatientId>,
    /// The linked clinician, for clinician tokens.
    pub clinician: Option<ClinicianId>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Refuses an empty (or blank) name: `what` names the field.
pub fn non_empty(name: &str, what: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::InvalidInput(format!("{what} is empty")));
    }
    Ok(())
}

/// Refuses an audit entry with no action.
pub fn audit_action(action: &str) -> Result<()> {
    if action.is_empty() {
        return Err(Error::InvalidInput("audit action is empty".into()));
    }
    Ok(())
}

/// The one check of a clinician's dashboard unit.
pub fn clinician_unit(unit: &str) -> Result<()> {
    if super::CLINICIAN_UNITS.contains(&unit) {
        Ok(())
    } else {
        Err(Error::InvalidInput(
            "the glucose unit must be mgdl or mmol".into(),
        ))
    }
}

/// The patient and clinician columns a token with this role and scope is
/// stored with; a role that disagrees with its scope is refused.
pub fn token_columns(
    role: Role,
    scope: TokenScope,
) -> Result<(Option<PatientId>, Option<ClinicianId>)> {
    match (role, scope) {
        (Role::Device | Role::Follower, TokenScope::Patient(p)) => Ok((Some(p), None)),
        (Role::Clinician, TokenScope::Clinician(c)) => Ok((None, Some(c))),
        (Role::Admin, TokenScope::Admin) => Ok((None, None)),
        (role, _) => Err(Error::InvalidInput(format!(
            "a {} token cannot have that scope",
            role.as_str()
        ))),
    }
}

/// A stored token checked back into a [`TokenRecord`]: a bad hash length,
/// an unknown role or columns that contradict the role are a damaged
/// database (`Config`), never a token that authenticates.
pub fn token_record(row: TokenRow) -> Result<TokenRecord> {
    let id = row.id;
    let hash = TokenHash::from_slice(&row.hash)
        .ok_or_else(|| Error::Config(format!("token {id}: stored hash has a bad length")))?;
    let role = Role::parse(&row.role)
        .ok_or_else(|| Error::Config(format!("token {id}: unknown stored role")))?;
    let scope = match (role, row.patient, row.clinician) {
        (Role::Device | Role::Follower, Some(p), None) => TokenScope::Patient(p),
        (Role::Clinician, None, Some(c)) => TokenScope::Clinician(c),
        (Role::Admin, None, None) => TokenScope::Admin,
        _ => {
            return Err(Error::Config(format!(
                "token {id}: stored scope contradicts its role"
            )));
        }
    };
    Ok(TokenRecord {
        id,
        hash,
        role,
        scope,
        revoked_at: row.revoked_at,
    })
}

/// The days `[from, to)` touches, first and last, for marking glucose day
/// summaries stale after a delete.
pub fn days_touched(from: DateTime<Utc>, to: DateTime<Utc>) -> (i64, i64) {
    (
        super::day_of(from),
        super::day_of(to - chrono::TimeDelta::microseconds(1)),
    )
}

/// Whether a precedence policy for `quantity` re-decides glucose moments,
/// so every day summary of the patient goes stale.
pub fn policy_stales_days(quantity: &str) -> bool {
    quantity == vigil_model::precedence::Quantity::Glucose.as_str()
}

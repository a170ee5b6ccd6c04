//! Administration: what the `vigil-ingest patient|token|clinician|admin`
//! commands do, as functions over a [`Storage`] so tests and a future admin
//! API share them. Every change is written to the audit log with no token
//! (`token_id` NULL means "the operator at the machine's CLI").
//!
//! Place in the data flow: beside it; it sets up who may send and read
//! (patients, tokens, assignments, secrets, webhooks), and `audit.rs`
//! serves the audit log to admin tokens.
//!
//! Secrets are returned once, to be printed once; only hashes are stored.

pub(crate) mod audit;

use crate::auth::Secret;

use crate::domain::Role;
use crate::domain::{CredentialKind, NewAuditEntry, NewToken, PatientId, TokenScope};
use crate::error::{Error, Result};
use crate::storage::Storage;

fn audit(s: &dyn Storage, patient_id: Option<PatientId>, action: &str) -> Result<()> {
    s.append_audit(&NewAuditEntry {
        credential: CredentialKind::AdminCli,
        token_id: None,
        patient_id,
        action: action.to_owned(),
    })
    .map(drop)
}

/// Registers a patient; returns its id.
pub fn add_patient(s: &dyn Storage, display_name: &str) -> Result<PatientId> {
    let id = s.add_patient(display_name)?;
    audit(s, Some(id), "patient.create")?;
    Ok(id)
}

/// Sets the patient's IANA time zone (the dashboard's local time of day).
/// [`Error::InvalidInput`] for a name the tz database does not know,
/// [`Error::NotFound`] for an unknown patient.
pub fn set_time_zone(s: &dyn Storage, patient: PatientId, time_zone: &str) -> Result<()> {
    let tz: chrono_tz::Tz = time_zone.parse().map_err(|_| {
        Error::InvalidInput(format!(
            "unknown time zone {time_zone:?}: use an IANA name such as Europe/Berlin"
        ))
    })?;
    if !s.set_patient_time_zone(patient, tz.name())? {
        return Err(Error::NotFound("no such patient".into()));
    }
    audit(s, Some(patient), "patient.time_zone")
}

/// The patient's precedence policy for `quantity` as JSON (their own, or
/// the default marked `"default": true`). [`Error::NotFound`] for an unknown
/// patient.
pub fn precedence_policy(s: &dyn Storage, patient: PatientId, quantity: &str) -> Result<String> {
    let quantity = crate::resolved::quantity(quantity)?;
    if s.patient(patient)?.is_none() {
        return Err(Error::NotFound("no such patient".into()));
    }
    let policy = crate::resolved::policy(s, patient, quantity)?;
    serde_json::to_string_pretty(&policy)
        .map_err(|e| Error::Internal(format!("precedence policy: {e}")))
}

/// Sets the patient's precedence policy for `quantity` from a JSON
/// document, validated first: a policy that cannot mean anything is refused
/// ([`Error::InvalidInput`]) and nothing changes.
pub fn set_precedence_policy(
    s: &dyn Storage,
    patient: PatientId,
    quantity: &str,
    document: &[u8],
) -> Result<()> {
    let quantity = crate::resolved::quantity(quantity)?;
    let config = crate::resolved::parse_policy(quantity, document)?;
    let json = serde_json::to_string(&config)
        .map_err(|e| Error::Internal(format!("precedence policy: {e}")))?;
    if !s.set_precedence_policy(patient, quantity.as_str(), &json, None, chrono::Utc::now())? {
        return Err(Error::NotFound("no such patient".into()));
    }
    audit(s, Some(patient), "precedence_policy.set")
}

/// Issues a device or follower token for an existing patient.
/// [`Error::InvalidInput`] for any other role, [`Error::NotFound`] for an
/// unknown patient.
pub fn add_patient_token(s: &dyn Storage, patient: PatientId, role: Role) -> Result<Secret> {
    if !matches!(role, Role::Device | Role::Follower) {
        return Err(Error::InvalidInput(
            "patient tokens are device or follower".into(),
        ));
    }
    if s.patient(patient)?.is_none() {
        return Err(Error::NotFound(format!("patient {patient}")));
    }
    let secret = Secret::generate(role)?;
    s.insert_token(&NewToken {
        hash: secret.hash(),
        role,
        scope: TokenScope::Patient(patient),
        label: None,
    })?;
    audit(s, Some(patient), &format!("token.create.{}", role.as_str()))?;
    Ok(secret)
}

/// Registers a clinician and issues their token. [`Error::Conflict`] if the
/// name is taken (names are how `clinician assign` finds them).
pub fn add_clinician(s: &dyn Storage, name: &str) -> Result<Secret> {
    let clinician = s.add_clinician(name)?;
    let secret = Secret::generate(Role::Clinician)?;
    s.insert_token(&NewToken {
        hash: secret.hash(),
        role: Role::Clinician,
        scope: TokenScope::Clinician(clinician),
        label: None,
    })?;
    audit(s, None, "clinician.create")?;
    Ok(secret)
}

/// Assigns an existing patient to the named clinician.
pub fn assign(s: &dyn Storage, clinician: &str, patient: PatientId) -> Result<()> {
    let c = s
        .clinician_by_name(clinician)?
        .ok_or_else(|| Error::NotFound(format!("clinician {clinician:?}")))?;
    if s.patient(patient)?.is_none() {
        return Err(Error::NotFound(format!("patient {patient}")));
    }
    s.assign(c, patient)?;
    audit(s, Some(patient), "clinician.assign")
}

/// Revokes token `id` (audited). An unknown or already revoked token is
/// `NotFound`, so a typo never reads as success.
pub fn revoke_token(s: &dyn Storage, id: crate::domain::TokenId) -> Result<()> {
    if !s.revoke_token(id)? {
        return Err(Error::NotFound(format!(
            "token {id} (unknown or already revoked)"
        )));
    }
    audit(s, None, "token.revoke")
}

/// Ends every dashboard session of the clinician named `name` (audited);
/// returns how many were open.
pub fn end_clinician_sessions(s: &dyn Storage, name: &str) -> Result<u64> {
    let c = s
        .clinician_by_name(name)?
        .ok_or_else(|| Error::NotFound(format!("clinician {name:?}")))?;
    let n = s.end_clinician_sessions(c)?;
    audit(s, None, "clinician.end_sessions")?;
    Ok(n)
}

/// Issues an admin token labelled with the admin's name.
pub fn add_admin(s: &dyn Storage, name: &str) -> Result<Secret> {
    if name.trim().is_empty() {
        return Err(Error::InvalidInput("admin name is empty".into()));
    }
    let secret = Secret::generate(Role::Admin)?;
    s.insert_token(&NewToken {
        hash: secret.hash(),
        role: Role::Admin,
        scope: TokenScope::Admin,
        label: Some(name.to_owned()),
    })?;
    audit(s, None, "admin.create")?;
    Ok(secret)
}

/// Sets a patient's Nightscout API secret (`vigil-ingest nightscout-secret`):
/// at least 12 characters; stored only as the hash described in
/// [`crate::nightscout`]. The secret is taken, never printed or logged.
pub fn set_nightscout_secret(s: &dyn Storage, patient: PatientId, secret: &str) -> Result<()> {
    crate::nightscout::validate_secret(secret)?;
    s.set_nightscout_secret(patient, &crate::nightscout::secret_hash(secret))?;
    audit(s, Some(patient), "nightscout_secret.set")
}

/// Registers a webhook for `events` (`alert`, `data`) and returns its
/// signing secret, shown once to the operator who configures the receiver.
pub fn add_webhook(s: &dyn Storage, url: &str, events: &str) -> Result<String> {
    crate::webhooks::check_url(url)?;
    let events = crate::domain::EventKind::parse_list(events)?;
    let secret = crate::webhooks::generate_secret()?;
    s.add_webhook(&crate::domain::NewWebhook {
        url: url.to_owned(),
        events,
        secret: secret.clone(),
    })?;
    audit(s, None, "webhook.create")?;
    Ok(secret)
}

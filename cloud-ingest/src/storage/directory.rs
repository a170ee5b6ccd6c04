//! Who is who: patients, clinicians and their assignments, tokens,
//! dashboard sessions, Nightscout secrets and a clinician's preferences.
//!
//! The methods callers use are provided here and apply the rules
//! ([`super::rules`]) once; a backend implements only the `*_row` methods,
//! which map to rows and report what the rows said.

use chrono::{DateTime, Utc};

use super::rules::{self, TokenRow, Written};

use crate::domain::SecretHash;
use crate::domain::TokenHash;
use crate::domain::{ClinicianId, NewToken, Patient, PatientId, TokenId, TokenRecord};
use crate::error::Result;

/// The directory of the service: who may act, on whose behalf.
pub trait Directory: Send + Sync {
    /// Registers a patient and returns its new id; an empty name is
    /// refused.
    fn add_patient(&self, display_name: &str) -> Result<PatientId> {
        rules::non_empty(display_name, "display name")?;
        self.insert_patient_row(display_name)
    }
    /// Row mapping of [`Self::add_patient`]; the name is checked.
    fn insert_patient_row(&self, display_name: &str) -> Result<PatientId>;
    /// The patient with this id, if any.
    fn patient(&self, id: PatientId) -> Result<Option<Patient>>;
    /// Sets a patient's IANA time zone (validated by the caller); `false`
    /// for an unknown patient.
    fn set_patient_time_zone(&self, id: PatientId, time_zone: &str) -> Result<bool>;

    /// Registers a clinician; [`crate::Error::Conflict`] if the name is taken.
    fn add_clinician(&self, name: &str) -> Result<ClinicianId> {
        rules::non_empty(name, "clinician name")?;
        self.insert_clinician_row(name)?
            .or_refuse(String::new, &format!("clinician {name:?} exists"))
    }
    /// Row mapping of [`Self::add_clinician`]: `Taken` when the name is.
    fn insert_clinician_row(&self, name: &str) -> Result<Written<ClinicianId>>;
    /// The clinician with this exact name, if any.
    fn clinician_by_name(&self, name: &str) -> Result<Option<ClinicianId>>;
    /// Assigns a patient to a clinician; assigning twice is a no-op.
    /// [`crate::Error::NotFound`] if either does not exist.
    fn assign(&self, clinician: ClinicianId, patient: PatientId) -> Result<()> {
        self.insert_assignment_row(clinician, patient)?
            .or_refuse(|| format!("clinician {clinician} or patient {patient}"), "")
    }
    /// Row mapping of [`Self::assign`]: `Missing` when either is.
    fn insert_assignment_row(&self, clinician: ClinicianId, patient: PatientId) -> Result<Written>;
    /// The patients assigned to a clinician, by id.
    fn assigned_patients(&self, clinician: ClinicianId) -> Result<Vec<Patient>>;
    /// Whether the clinician is assigned this patient.
    fn is_assigned(&self, clinician: ClinicianId, patient: PatientId) -> Result<bool>;
    /// The glucose unit the clinician reads the dashboard in (`mgdl` or
    /// `mmol`); [`crate::Error::NotFound`] if there is no such clinician.
    fn clinician_unit(&self, clinician: ClinicianId) -> Result<String> {
        self.clinician_unit_row(clinician)?
            .ok_or(crate::Error::NotFound("clinician".into()))
    }
    /// Row mapping of [`Self::clinician_unit`].
    fn clinician_unit_row(&self, clinician: ClinicianId) -> Result<Option<String>>;
    /// Sets it; [`crate::Error::InvalidInput`] for another value,
    /// [`crate::Error::NotFound`] if there is no such clinician.
    fn set_clinician_unit(&self, clinician: ClinicianId, unit: &str) -> Result<()> {
        rules::clinician_unit(unit)?;
        if self.update_clinician_unit_row(clinician, unit)? {
            Ok(())
        } else {
            Err(crate::Error::NotFound("clinician".into()))
        }
    }
    /// Row mapping of [`Self::set_clinician_unit`]: false when no row
    /// changed.
    fn update_clinician_unit_row(&self, clinician: ClinicianId, unit: &str) -> Result<bool>;

    /// Stores a token's hash; [`crate::Error::InvalidInput`] if role and
    /// scope disagree, [`crate::Error::NotFound`] if the linked patient or
    /// clinician does not exist.
    fn insert_token(&self, token: &NewToken) -> Result<TokenId> {
        let (patient, clinician) = rules::token_columns(token.role, token.scope)?;
        self.insert_token_row(token, patient, clinician)?.or_refuse(
            || "the token's patient or clinician does not exist".into(),
            "",
        )
    }
    /// Row mapping of [`Self::insert_token`], with the columns the rules
    /// chose: `Missing` for any constraint the row breaks.
    fn insert_token_row(
        &self,
        token: &NewToken,
        patient: Option<PatientId>,
        clinician: Option<ClinicianId>,
    ) -> Result<Written<TokenId>>;
    /// The token stored under this hash, revoked or not.
    fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>> {
        self.token_row(hash)?.map(rules::token_record).transpose()
    }
    /// Row mapping of [`Self::token_by_hash`].
    fn token_row(&self, hash: &TokenHash) -> Result<Option<TokenRow>>;
    /// Revokes a token; returns false if it did not exist or was revoked.
    fn revoke_token(&self, id: TokenId) -> Result<bool>;

    /// Stores a dashboard session (only the hash of its id) acting as
    /// `token`, valid until `expires_at`. Unknown token: `NotFound`.
    fn create_session(
        &self,
        hash: &TokenHash,
        token: TokenId,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        self.insert_session_row(hash, token, expires_at)?
            .or_refuse(|| "the session's token does not exist".into(), "")
    }
    /// Row mapping of [`Self::create_session`]: `Missing` for an unknown
    /// token.
    fn insert_session_row(
        &self,
        hash: &TokenHash,
        token: TokenId,
        expires_at: DateTime<Utc>,
    ) -> Result<Written>;
    /// The token a session acts as, if the session exists and has not
    /// expired at `now` (the token itself may be revoked: the caller checks).
    fn session_token(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<TokenRecord>> {
        self.session_token_row(hash, now)?
            .map(rules::token_record)
            .transpose()
    }
    /// Row mapping of [`Self::session_token`].
    fn session_token_row(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<TokenRow>>;
    /// Ends a session; true if it existed. Also drops every session expired
    /// at `now`, so the table does not grow without bound.
    fn delete_session(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<bool>;
    /// Ends every dashboard session of `clinician` (any of their tokens);
    /// returns how many there were. Open live streams of those sessions end
    /// at their next credential check.
    fn end_clinician_sessions(&self, clinician: ClinicianId) -> Result<u64>;

    /// Sets (or replaces) a patient's Nightscout secret hash. Unknown
    /// patient: `NotFound`; a hash another patient already uses: `Conflict`.
    fn set_nightscout_secret(&self, patient: PatientId, hash: &SecretHash) -> Result<()> {
        self.upsert_nightscout_secret_row(patient, hash)?.or_refuse(
            || format!("patient {patient}"),
            "another patient already uses that Nightscout secret",
        )
    }
    /// Row mapping of [`Self::set_nightscout_secret`]: `Missing` for an
    /// unknown patient, `Taken` for a hash in use.
    fn upsert_nightscout_secret_row(
        &self,
        patient: PatientId,
        hash: &SecretHash,
    ) -> Result<Written>;
    /// The patient whose Nightscout secret hashes to `hash`.
    fn nightscout_patient(&self, hash: &SecretHash) -> Result<Option<PatientId>>;
}

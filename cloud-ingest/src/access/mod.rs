//! The one gate to a patient's data.
//!
//! Place in the data flow: between authentication ([`crate::auth`]) and
//! every slice that reads or adds one patient's data. Opening a
//! [`PatientAccess`] checks the caller's role and scope and writes the
//! audit row, for a refusal too, in one place; the proof it returns is what
//! the data readers and writers ([`data`]) take, so a handler cannot reach
//! a patient's data without having opened it. Least privilege by role:
//!
//! | role | reads | writes |
//! |---|---|---|
//! | device | nothing | its own patient's data |
//! | follower | its one patient | nothing |
//! | clinician | assigned patients | assigned patients (CSV import) |
//! | admin | no patient data | no patient data |
//!
//! A refusal answers exactly as a patient that does not exist would (403
//! `patient outside this token's scope`), so a token cannot learn which
//! patient ids exist. The Nightscout API authenticates by the patient's own
//! secret (tenant by credential): [`NightscoutCaller`] is the patient a
//! secret opened and gives the same proof. SDK intake takes the patient
//! from the device token itself and writes through storage directly.
//!
//! Decision: the proof is opened in the handler, inside the same blocking
//! storage call that then reads, rather than by an axum extractor: each
//! route names its own audit action, some take the patient from a query or
//! a body, and a request's input is checked (400) before the gate audits
//! it, as it was before the proof existed.
//!
//! Not through this gate, each scoped by its own check: the patient list
//! and triage (every assigned patient at once), alert acknowledgement and
//! the live stream (by the caller's patients), and the precedence policy
//! (an admin configures it without reading data).
//!
//! Only this module makes a proof; elsewhere it does not compile:
//!
//! ```compile_fail,E0451
//! use vigil_ingest::access::{PatientAccess, Read};
//! let forged: PatientAccess<Read> = PatientAccess { patient: 1, mode: std::marker::PhantomData };
//! ```
//!
//! ```compile_fail,E0451
//! use vigil_ingest::access::NightscoutCaller;
//! let forged = NightscoutCaller { patient: 1 };
//! ```

pub mod data;

use std::marker::PhantomData;

use crate::auth::Principal;
use crate::domain::{CredentialKind, NewAuditEntry, PatientId, Role, SecretHash, TokenScope};
use crate::error::{Error, Result};
use crate::storage::Storage;

/// What the caller wants to do with the patient's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read readings, metrics, reports, exports.
    Read,
    /// Add data (imports).
    Write,
}

/// Marker of a proof to read a patient's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read;

/// Marker of a proof to add to a patient's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write;

/// [`Read`] or [`Write`]: what a [`PatientAccess`] proves. Sealed, so the
/// two modes are the only ones.
pub trait Mode: sealed::Sealed {
    /// The access this mode asks the gate for.
    const ACCESS: Access;
}

impl Mode for Read {
    const ACCESS: Access = Access::Read;
}

impl Mode for Write {
    const ACCESS: Access = Access::Write;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Read {}
    impl Sealed for super::Write {}
}

/// Proof that a caller may read ([`Read`]) or add to ([`Write`]) one
/// patient's data, with the audit row already written. Only
/// [`PatientAccess::open`] and [`NightscoutCaller::open`] make one.
#[derive(Debug, PartialEq, Eq)]
pub struct PatientAccess<M: Mode> {
    patient: PatientId,
    mode: PhantomData<M>,
}

/// The one answer to any refused or unknown patient.
const OUT_OF_SCOPE: &str = "patient outside this token's scope";

impl<M: Mode> PatientAccess<M> {
    /// Checks that `who` may read or write (`M`) `patient`'s data and audits
    /// `action` (`<action>.refused` when it may not). Runs on the storage
    /// thread.
    pub fn open(
        s: &dyn Storage,
        who: &Principal,
        patient: PatientId,
        action: &str,
    ) -> Result<Self> {
        if allowed(s, who, patient, M::ACCESS)? {
            who.audit(s, Some(patient), action)?;
            return Ok(Self::granted(patient));
        }
        // The refused patient is named only if it exists (the audit log's
        // foreign key); the answer is the same either way.
        let named = s.patient(patient)?.map(|p| p.id);
        who.audit(s, named, &format!("{action}.refused"))?;
        Err(Error::Forbidden(OUT_OF_SCOPE))
    }

    /// The patient this access is for.
    pub fn patient(&self) -> PatientId {
        self.patient
    }

    fn granted(patient: PatientId) -> Self {
        Self {
            patient,
            mode: PhantomData,
        }
    }
}

/// The patient a Nightscout secret opened: the secret is the patient's own
/// credential, so it reads and writes that patient's data and no other.
/// Only [`NightscoutCaller::authenticate`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NightscoutCaller {
    patient: PatientId,
}

impl NightscoutCaller {
    /// The caller whose secret hashes to `hash`, or `None` for an unknown
    /// secret. Runs on the storage thread.
    pub fn authenticate(s: &dyn Storage, hash: &SecretHash) -> Result<Option<Self>> {
        Ok(s.nightscout_patient(hash)?.map(|patient| Self { patient }))
    }

    /// The patient the secret belongs to (rate limiting keys on it).
    pub fn patient(&self) -> PatientId {
        self.patient
    }

    /// The proof to read or write (`M`) the secret's patient, with `action`
    /// audited under the Nightscout credential.
    pub fn open<M: Mode>(&self, s: &dyn Storage, action: &str) -> Result<PatientAccess<M>> {
        s.append_audit(&NewAuditEntry {
            credential: CredentialKind::NightscoutSecret,
            token_id: None,
            patient_id: Some(self.patient),
            action: action.into(),
        })?;
        Ok(PatientAccess::granted(self.patient))
    }
}

fn allowed(s: &dyn Storage, who: &Principal, patient: PatientId, access: Access) -> Result<bool> {
    Ok(match (who.role, who.scope, access) {
        (Role::Follower, TokenScope::Patient(own), Access::Read)
        | (Role::Device, TokenScope::Patient(own), Access::Write) => own == patient,
        (Role::Clinician, TokenScope::Clinician(c), _) => s.is_assigned(c, patient)?,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TokenHash;
    use crate::domain::{CredentialKind, NewToken};
    use crate::storage::prelude::*;
    use crate::storage::sqlite::SqliteStorage;

    fn principal(s: &dyn Storage, role: Role, scope: TokenScope, name: &str) -> Principal {
        let token_id = s
            .insert_token(&NewToken {
                hash: TokenHash::of(name),
                role,
                scope,
                label: None,
            })
            .unwrap();
        Principal {
            token_id,
            role,
            scope,
            credential: CredentialKind::Token,
        }
    }

    #[test]
    fn each_role_reaches_only_what_it_needs_and_every_answer_is_audited() {
        let s = SqliteStorage::open_in_memory().unwrap();
        let own = s.add_patient("Ada").unwrap();
        let other = s.add_patient("Bo").unwrap();
        let c = s.add_clinician("dr").unwrap();
        s.assign(c, own).unwrap();
        let device = principal(&s, Role::Device, TokenScope::Patient(own), "d");
        let follower = principal(&s, Role::Follower, TokenScope::Patient(own), "f");
        let clinician = principal(&s, Role::Clinician, TokenScope::Clinician(c), "c");
        let admin = principal(&s, Role::Admin, TokenScope::Admin, "a");
        let cases = [
            (device, own, Access::Read, false),
            (device, own, Access::Write, true),
            (device, other, Access::Write, false),
            (follower, own, Access::Read, true),
            (follower, own, Access::Write, false),
            (follower, other, Access::Read, false),
            (clinician, own, Access::Read, true),
            (clinician, own, Access::Write, true),
            (clinician, other, Access::Read, false),
            (admin, own, Access::Read, false),
        ];
        for (i, (who, patient, access, ok)) in cases.into_iter().enumerate() {
            let got = match access {
                Access::Read => PatientAccess::<Read>::open(&s, &who, patient, "x.do").map(drop),
                Access::Write => PatientAccess::<Write>::open(&s, &who, patient, "x.do").map(drop),
            };
            assert_eq!(got.is_ok(), ok, "case {i}");
            if let Err(e) = got {
                assert!(matches!(e, Error::Forbidden(OUT_OF_SCOPE)), "case {i}");
            }
            let last = s.audit_entries(0, 1000).unwrap().pop().unwrap();
            assert_eq!(last.token_id, Some(who.token_id), "case {i}");
            assert_eq!(last.patient_id, Some(patient), "case {i}");
            assert_eq!(last.action, if ok { "x.do" } else { "x.do.refused" });
        }
        // A patient that does not exist is refused like a foreign one and
        // audited without a patient id.
        let missing = PatientAccess::<Read>::open(&s, &clinician, 9_999, "x.do");
        assert!(matches!(missing, Err(Error::Forbidden(OUT_OF_SCOPE))));
        let last = s.audit_entries(0, 1000).unwrap().pop().unwrap();
        assert_eq!(
            (last.patient_id, last.action.as_str()),
            (None, "x.do.refused")
        );
    }

    #[test]
    fn a_nightscout_secret_opens_its_own_patient_only_and_is_audited() {
        let s = SqliteStorage::open_in_memory().unwrap();
        let own = s.add_patient("Ada").unwrap();
        s.add_patient("Bo").unwrap();
        crate::admin::set_nightscout_secret(&s, own, "a long enough secret").unwrap();
        let hash = crate::nightscout::secret_hash("a long enough secret");
        let caller = NightscoutCaller::authenticate(&s, &hash).unwrap().unwrap();
        let access = caller.open::<Read>(&s, "nightscout.x.read").unwrap();
        assert_eq!(access.patient(), own);
        let last = s.audit_entries(0, 1000).unwrap().pop().unwrap();
        assert_eq!(
            (last.credential, last.token_id, last.patient_id),
            (CredentialKind::NightscoutSecret, None, Some(own))
        );
        assert_eq!(last.action, "nightscout.x.read");
        let unknown = crate::nightscout::secret_hash("another long secret");
        assert!(
            NightscoutCaller::authenticate(&s, &unknown)
                .unwrap()
                .is_none()
        );
    }
}

//! The one gate to a patient's data.
//!
//! Every handler that reads or writes one patient's data over a token or a
//! dashboard session opens a [`PatientAccess`] first; opening it checks the
//! caller's role and scope and writes the audit row, for a refusal too, in
//! one place. Least privilege by role:
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
//! secret (tenant by credential) and SDK intake takes the patient from the
//! device token itself; neither names a patient to check.

use crate::auth::Principal;

use crate::domain::Role;
use crate::domain::{PatientId, TokenScope};
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

/// Proof that a caller may act on one patient's data, with the audit row
/// already written. Only [`PatientAccess::open`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatientAccess {
    patient: PatientId,
}

/// The one answer to any refused or unknown patient.
const OUT_OF_SCOPE: &str = "patient outside this token's scope";

impl PatientAccess {
    /// Checks that `who` may `access` `patient`'s data and audits `action`
    /// (`<action>.refused` when it may not). Runs on the storage thread.
    pub fn open(
        s: &dyn Storage,
        who: &Principal,
        patient: PatientId,
        access: Access,
        action: &str,
    ) -> Result<Self> {
        if allowed(s, who, patient, access)? {
            s.append_audit(&who.audit_entry(Some(patient), action))?;
            return Ok(Self { patient });
        }
        // The refused patient is named only if it exists (the audit log's
        // foreign key); the answer is the same either way.
        let named = s.patient(patient)?.map(|p| p.id);
        s.append_audit(&who.audit_entry(named, format!("{action}.refused")))?;
        Err(Error::Forbidden(OUT_OF_SCOPE))
    }

    /// The patient this access is for.
    pub fn patient(&self) -> PatientId {
        self.patient
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
            let got = PatientAccess::open(&s, &who, patient, access, "x.do");
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
        let missing = PatientAccess::open(&s, &clinician, 9_999, Access::Read, "x.do");
        assert!(matches!(missing, Err(Error::Forbidden(OUT_OF_SCOPE))));
        let last = s.audit_entries(0, 1000).unwrap().pop().unwrap();
        assert_eq!(
            (last.patient_id, last.action.as_str()),
            (None, "x.do.refused")
        );
    }
}

//! Directory: rows for [`crate::storage::Directory`].

use chrono::{DateTime, Utc};
use postgres::Row;
use postgres::error::SqlState;

use super::{PostgresStorage, is_code, patient_row};
use crate::domain::SecretHash;
use crate::domain::TokenHash;
use crate::domain::{ClinicianId, NewToken, Patient, PatientId, TokenId};
use crate::error::Result;
use crate::storage::Directory;
use crate::storage::rules::{TokenRow, Written};

impl Directory for PostgresStorage {
    fn insert_patient_row(&self, display_name: &str) -> Result<PatientId> {
        Ok(self
            .conn()?
            .query_one(
                "INSERT INTO patients (display_name, created_at) VALUES ($1, $2) RETURNING id",
                &[&display_name, &Utc::now()],
            )?
            .get(0))
    }

    fn patient(&self, id: PatientId) -> Result<Option<Patient>> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT id, display_name, created_at, time_zone FROM patients WHERE id = $1",
                &[&id],
            )?
            .as_ref()
            .map(patient_row))
    }

    fn set_patient_time_zone(&self, id: PatientId, time_zone: &str) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE patients SET time_zone = $1 WHERE id = $2",
            &[&time_zone, &id],
        )?;
        Ok(n == 1)
    }

    fn insert_clinician_row(&self, name: &str) -> Result<Written<ClinicianId>> {
        match self.conn()?.query_one(
            "INSERT INTO clinicians (name, created_at) VALUES ($1, $2) RETURNING id",
            &[&name, &Utc::now()],
        ) {
            Ok(row) => Ok(Written::Done(row.get(0))),
            Err(e) if is_code(&e, &[&SqlState::UNIQUE_VIOLATION]) => Ok(Written::Taken),
            Err(e) => Err(e.into()),
        }
    }

    fn clinician_by_name(&self, name: &str) -> Result<Option<ClinicianId>> {
        Ok(self
            .conn()?
            .query_opt("SELECT id FROM clinicians WHERE name = $1", &[&name])?
            .map(|r| r.get(0)))
    }

    fn insert_assignment_row(&self, clinician: ClinicianId, patient: PatientId) -> Result<Written> {
        match self.conn()?.execute(
            "INSERT INTO clinician_patients (clinician_id, patient_id, assigned_at)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&clinician, &patient, &Utc::now()],
        ) {
            Ok(_) => Ok(Written::Done(())),
            Err(e) if is_code(&e, &[&SqlState::FOREIGN_KEY_VIOLATION]) => Ok(Written::Missing),
            Err(e) => Err(e.into()),
        }
    }

    fn assigned_patients(&self, clinician: ClinicianId) -> Result<Vec<Patient>> {
        Ok(self
            .conn()?
            .query(
                "SELECT p.id, p.display_name, p.created_at, p.time_zone
                   FROM clinician_patients cp JOIN patients p ON p.id = cp.patient_id
                  WHERE cp.clinician_id = $1
                  ORDER BY p.id",
                &[&clinician],
            )?
            .iter()
            .map(patient_row)
            .collect())
    }

    fn is_assigned(&self, clinician: ClinicianId, patient: PatientId) -> Result<bool> {
        Ok(self
            .conn()?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM clinician_patients
                                 WHERE clinician_id = $1 AND patient_id = $2)",
                &[&clinician, &patient],
            )?
            .get(0))
    }

    fn clinician_unit_row(&self, clinician: ClinicianId) -> Result<Option<String>> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT glucose_unit FROM clinicians WHERE id = $1",
                &[&clinician],
            )?
            .map(|r| r.get(0)))
    }

    fn update_clinician_unit_row(&self, clinician: ClinicianId, unit: &str) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE clinicians SET glucose_unit = $2 WHERE id = $1",
            &[&clinician, &unit],
        )?;
        Ok(n > 0)
    }

    fn insert_token_row(
        &self,
        token: &NewToken,
        patient: Option<PatientId>,
        clinician: Option<ClinicianId>,
    ) -> Result<Written<TokenId>> {
        match self.conn()?.query_one(
            "INSERT INTO tokens (hash, role, patient_id, clinician_id, label, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &token.hash.as_bytes().as_slice(),
                &token.role.as_str(),
                &patient,
                &clinician,
                &token.label,
                &Utc::now(),
            ],
        ) {
            Ok(row) => Ok(Written::Done(row.get(0))),
            Err(e)
                if is_code(
                    &e,
                    &[
                        &SqlState::FOREIGN_KEY_VIOLATION,
                        &SqlState::UNIQUE_VIOLATION,
                        &SqlState::CHECK_VIOLATION,
                    ],
                ) =>
            {
                Ok(Written::Missing)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn token_row(&self, hash: &TokenHash) -> Result<Option<TokenRow>> {
        Ok(self
            .conn()?
            .one_or_none(
                "SELECT id, hash, role, patient_id, clinician_id, revoked_at
                   FROM tokens WHERE hash = $1",
                &[&hash.as_bytes().as_slice()],
            )?
            .map(|r| token_row(&r)))
    }

    fn revoke_token(&self, id: TokenId) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &Utc::now()],
        )?;
        Ok(n == 1)
    }

    fn insert_session_row(
        &self,
        hash: &TokenHash,
        token: TokenId,
        expires_at: DateTime<Utc>,
    ) -> Result<Written> {
        match self.conn()?.execute(
            "INSERT INTO dashboard_sessions (hash, token_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[
                &hash.as_bytes().as_slice(),
                &token,
                &Utc::now(),
                &expires_at,
            ],
        ) {
            Ok(_) => Ok(Written::Done(())),
            Err(e) if is_code(&e, &[&SqlState::FOREIGN_KEY_VIOLATION]) => Ok(Written::Missing),
            Err(e) => Err(e.into()),
        }
    }

    fn session_token_row(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<TokenRow>> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT t.id, t.hash, t.role, t.patient_id, t.clinician_id, t.revoked_at
                   FROM dashboard_sessions s JOIN tokens t ON t.id = s.token_id
                  WHERE s.hash = $1 AND s.expires_at > $2",
                &[&hash.as_bytes().as_slice(), &now],
            )?
            .map(|r| token_row(&r)))
    }

    fn delete_session(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<bool> {
        let mut conn = self.conn()?;
        let n = conn.execute(
            "DELETE FROM dashboard_sessions WHERE hash = $1",
            &[&hash.as_bytes().as_slice()],
        )?;
        conn.execute(
            "DELETE FROM dashboard_sessions WHERE expires_at <= $1",
            &[&now],
        )?;
        Ok(n == 1)
    }

    fn end_clinician_sessions(&self, clinician: ClinicianId) -> Result<u64> {
        let n = self.conn()?.execute(
            "DELETE FROM dashboard_sessions WHERE token_id IN
                 (SELECT id FROM tokens WHERE clinician_id = $1)",
            &[&clinician],
        )?;
        Ok(n)
    }

    fn upsert_nightscout_secret_row(
        &self,
        patient: PatientId,
        hash: &SecretHash,
    ) -> Result<Written> {
        let mut conn = self.conn()?;
        let exists: bool = conn
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1)",
                &[&patient],
            )?
            .get(0);
        if !exists {
            return Ok(Written::Missing);
        }
        match conn.execute(
            "INSERT INTO nightscout_secrets (patient_id, hash, set_at) VALUES ($1, $2, $3)
             ON CONFLICT (patient_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
            &[&patient, &hash.0, &Utc::now()],
        ) {
            Ok(_) => Ok(Written::Done(())),
            Err(e)
                if is_code(
                    &e,
                    &[&SqlState::UNIQUE_VIOLATION, &SqlState::CHECK_VIOLATION],
                ) =>
            {
                Ok(Written::Taken)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn nightscout_patient(&self, hash: &SecretHash) -> Result<Option<PatientId>> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT patient_id FROM nightscout_secrets WHERE hash = $1",
                &[&hash.0],
            )?
            .map(|r| r.get(0)))
    }
}

fn token_row(r: &Row) -> TokenRow {
    TokenRow {
        id: r.get(0),
        hash: r.get(1),
        role: r.get(2),
        patient: r.get(3),
        clinician: r.get(4),
        revoked_at: r.get(5),
    }
}

//! The embedded SQLite backend: one clinic on one machine, no server to run.
//!
//! One connection behind a mutex: SQLite allows one writer at a time anyway,
//! and the calls here are short indexed lookups and single-row inserts, so a
//! pool would add contention rather than remove it. WAL lets the `serve`
//! process and the admin CLI use the same file at once; `busy_timeout` makes
//! the CLI wait for the service's write instead of failing.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use vigil_model::wire::BatchAck;

mod intake;

use crate::domain::SecretHash;
use crate::domain::{
    Attempt, DeliveryId, DeliveryLog, DueDelivery, EventKind, NewWebhook, Webhook, WebhookId,
};
use crate::domain::{
    AuditEntry, ClinicianId, CredentialKind, NewAuditEntry, NewToken, NsDocument, Patient,
    PatientId, TokenId, TokenRecord, TokenScope,
};
use crate::domain::{Role, TokenHash};
use crate::error::{Error, Result};
use crate::storage::{
    AlertAckRecord, Contact, DayCounts, DayScope, GlucoseDay, MIGRATIONS, NewAlert, NewBatch,
    NewHeartbeat, ReadingQuery, SeriesKey, Silence, StaleDay, Storage, StoredAlert, StoredReading,
};

/// A [`Storage`] over one SQLite file (or an in-memory database).
pub struct SqliteStorage {
    conn: Mutex<Connection>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path`, turns on WAL and
    /// foreign keys, and applies every pending migration in one transaction
    /// each. Guarantees the schema is at the latest version on success.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        // WAL is a property of the file: it sticks, and a reader never
        // blocks the writer.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Self::setup(conn)
    }

    /// An in-memory database, for tests of the storage contract.
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self> {
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written row:
        // an open rusqlite transaction rolls back when dropped, so the
        // connection is still consistent and safe to keep using.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )?;
    for (version, name, sql) in MIGRATIONS {
        let tx = conn.transaction()?;
        let applied: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if !applied {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![version, name, Utc::now()],
            )?;
            tracing::info!(version, name, "applied migration");
        }
        tx.commit()?;
    }
    Ok(())
}

fn patient_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Patient> {
    Ok(Patient {
        id: r.get(0)?,
        display_name: r.get(1)?,
        created_at: r.get(2)?,
        time_zone: r.get(3)?,
    })
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    )
}

impl Storage for SqliteStorage {
    fn ping(&self) -> Result<()> {
        self.conn().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn schema_version(&self) -> Result<u32> {
        let v: Option<u32> =
            self.conn()
                .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                    r.get(0)
                })?;
        Ok(v.unwrap_or(0))
    }

    fn add_patient(&self, display_name: &str) -> Result<PatientId> {
        if display_name.trim().is_empty() {
            return Err(Error::InvalidInput("display name is empty".into()));
        }
        let conn = self.conn();
        conn.execute(
            "INSERT INTO patients (display_name, created_at) VALUES (?1, ?2)",
            params![display_name, Utc::now()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn patient(&self, id: PatientId) -> Result<Option<Patient>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, display_name, created_at, time_zone FROM patients WHERE id = ?1",
                [id],
                patient_row,
            )
            .optional()?)
    }

    fn set_patient_time_zone(&self, id: PatientId, time_zone: &str) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE patients SET time_zone = ?1 WHERE id = ?2",
            params![time_zone, id],
        )?;
        Ok(n == 1)
    }

    fn precedence_policy(&self, patient: PatientId, quantity: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT policy FROM precedence_policies WHERE patient_id = ?1 AND quantity = ?2",
                params![patient, quantity],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn set_precedence_policy(
        &self,
        patient: PatientId,
        quantity: &str,
        policy: &str,
        by: Option<TokenId>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM patients WHERE id = ?1)",
            [patient],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO precedence_policies (patient_id, quantity, policy, updated_at, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (patient_id, quantity) DO UPDATE SET
                 policy = excluded.policy, updated_at = excluded.updated_at,
                 updated_by = excluded.updated_by",
            params![patient, quantity, policy, at, by],
        )?;
        // Another policy re-decides every moment: every day summary of the
        // patient's glucose is stale.
        if quantity == vigil_model::precedence::Quantity::Glucose.as_str() {
            tx.execute(
                "UPDATE glucose_days SET stale = stale + 1 WHERE patient_id = ?1",
                [patient],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    fn store_ns_documents(
        &self,
        patient: PatientId,
        collection: &str,
        documents: &[NsDocument],
    ) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut new = 0u64;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO nightscout_documents (patient_id, collection, time_ms, kind, document)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (patient_id, collection, time_ms, kind) DO NOTHING",
            )?;
            for d in documents {
                new += insert.execute(params![
                    patient,
                    collection,
                    d.time.timestamp_millis(),
                    d.kind,
                    d.document
                ])? as u64;
            }
        }
        tx.commit()?;
        Ok(new)
    }

    fn ns_documents(
        &self,
        patient: PatientId,
        collection: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NsDocument>> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT time_ms, kind, document FROM nightscout_documents
             WHERE patient_id = ?1 AND collection = ?2 AND time_ms >= ?3 AND time_ms < ?4
             ORDER BY time_ms DESC, kind LIMIT ?5",
        )?;
        let rows = q.query_map(
            params![
                patient,
                collection,
                from.timestamp_millis(),
                to.timestamp_millis(),
                limit
            ],
            |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (ms, kind, document) = row?;
            let time = DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| Error::Internal("stored document time out of range".into()))?;
            out.push(NsDocument {
                time,
                kind,
                document,
            });
        }
        Ok(out)
    }

    fn add_clinician(&self, name: &str) -> Result<ClinicianId> {
        if name.trim().is_empty() {
            return Err(Error::InvalidInput("clinician name is empty".into()));
        }
        let conn = self.conn();
        match conn.execute(
            "INSERT INTO clinicians (name, created_at) VALUES (?1, ?2)",
            params![name, Utc::now()],
        ) {
            Ok(_) => Ok(conn.last_insert_rowid()),
            Err(e) if is_constraint(&e) => {
                Err(Error::Conflict(format!("clinician {name:?} exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn clinician_by_name(&self, name: &str) -> Result<Option<ClinicianId>> {
        Ok(self
            .conn()
            .query_row("SELECT id FROM clinicians WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn assign(&self, clinician: ClinicianId, patient: PatientId) -> Result<()> {
        match self.conn().execute(
            "INSERT OR IGNORE INTO clinician_patients (clinician_id, patient_id, assigned_at)
             VALUES (?1, ?2, ?3)",
            params![clinician, patient, Utc::now()],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_constraint(&e) => Err(Error::NotFound(format!(
                "clinician {clinician} or patient {patient}"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    fn assigned_patients(&self, clinician: ClinicianId) -> Result<Vec<Patient>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT p.id, p.display_name, p.created_at, p.time_zone
               FROM clinician_patients cp JOIN patients p ON p.id = cp.patient_id
              WHERE cp.clinician_id = ?1
              ORDER BY p.id",
        )?;
        let rows = stmt.query_map([clinician], patient_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn is_assigned(&self, clinician: ClinicianId, patient: PatientId) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM clinician_patients
                             WHERE clinician_id = ?1 AND patient_id = ?2)",
            [clinician, patient],
            |r| r.get(0),
        )?)
    }

    fn clinician_unit(&self, clinician: ClinicianId) -> Result<String> {
        self.conn()
            .prepare_cached("SELECT glucose_unit FROM clinicians WHERE id = ?1")?
            .query_row([clinician], |r| r.get(0))
            .optional()?
            .ok_or(Error::NotFound("clinician".into()))
    }

    fn set_clinician_unit(&self, clinician: ClinicianId, unit: &str) -> Result<()> {
        crate::storage::check_clinician_unit(unit)?;
        let n = self
            .conn()
            .prepare_cached("UPDATE clinicians SET glucose_unit = ?2 WHERE id = ?1")?
            .execute(params![clinician, unit])?;
        if n == 0 {
            return Err(Error::NotFound("clinician".into()));
        }
        Ok(())
    }

    fn insert_token(&self, token: &NewToken) -> Result<TokenId> {
        let (patient, clinician) = match (token.role, token.scope) {
            (Role::Device | Role::Follower, TokenScope::Patient(p)) => (Some(p), None),
            (Role::Clinician, TokenScope::Clinician(c)) => (None, Some(c)),
            (Role::Admin, TokenScope::Admin) => (None, None),
            (role, _) => {
                return Err(Error::InvalidInput(format!(
                    "a {} token cannot have that scope",
                    role.as_str()
                )));
            }
        };
        let conn = self.conn();
        match conn.execute(
            "INSERT INTO tokens (hash, role, patient_id, clinician_id, label, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                token.hash.as_bytes().as_slice(),
                token.role.as_str(),
                patient,
                clinician,
                token.label,
                Utc::now()
            ],
        ) {
            Ok(_) => Ok(conn.last_insert_rowid()),
            Err(e) if is_constraint(&e) => Err(Error::NotFound(
                "the token's patient or clinician does not exist".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, hash, role, patient_id, clinician_id, revoked_at
               FROM tokens WHERE hash = ?1",
        )?;
        let row = stmt
            .query_row([hash.as_bytes().as_slice()], |r| {
                Ok((
                    r.get::<_, TokenId>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<PatientId>>(3)?,
                    r.get::<_, Option<ClinicianId>>(4)?,
                    r.get::<_, Option<DateTime<Utc>>>(5)?,
                ))
            })
            .optional()?;
        let Some((id, stored, role, patient, clinician, revoked_at)) = row else {
            return Ok(None);
        };
        let hash = TokenHash::from_slice(&stored)
            .ok_or_else(|| Error::Config(format!("token {id}: stored hash has a bad length")))?;
        let role = Role::parse(&role)
            .ok_or_else(|| Error::Config(format!("token {id}: unknown stored role")))?;
        let scope = match (role, patient, clinician) {
            (Role::Device | Role::Follower, Some(p), None) => TokenScope::Patient(p),
            (Role::Clinician, None, Some(c)) => TokenScope::Clinician(c),
            (Role::Admin, None, None) => TokenScope::Admin,
            _ => {
                return Err(Error::Config(format!(
                    "token {id}: stored scope contradicts its role"
                )));
            }
        };
        Ok(Some(TokenRecord {
            id,
            hash,
            role,
            scope,
            revoked_at,
        }))
    }

    fn revoke_token(&self, id: TokenId) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, Utc::now()],
        )?;
        Ok(n == 1)
    }

    fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64> {
        if entry.action.is_empty() {
            return Err(Error::InvalidInput("audit action is empty".into()));
        }
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

    fn append_audits(&self, entries: &[NewAuditEntry]) -> Result<()> {
        if entries.iter().any(|e| e.action.is_empty()) {
            return Err(Error::InvalidInput("audit action is empty".into()));
        }
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
        let conn = self.conn();
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

    fn create_session(
        &self,
        hash: &TokenHash,
        token: TokenId,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        match self.conn().execute(
            "INSERT INTO dashboard_sessions (hash, token_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![hash.as_bytes().as_slice(), token, Utc::now(), expires_at],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_constraint(&e) => {
                Err(Error::NotFound("the session's token does not exist".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn session_token(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<TokenRecord>> {
        let token_hash: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT t.hash FROM dashboard_sessions s JOIN tokens t ON t.id = s.token_id
                  WHERE s.hash = ?1 AND s.expires_at > ?2",
                params![hash.as_bytes().as_slice(), now],
                |r| r.get(0),
            )
            .optional()?;
        match token_hash.and_then(|h| TokenHash::from_slice(&h)) {
            Some(h) => self.token_by_hash(&h),
            None => Ok(None),
        }
    }

    fn delete_session(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<bool> {
        let conn = self.conn();
        let n = conn.execute(
            "DELETE FROM dashboard_sessions WHERE hash = ?1",
            [hash.as_bytes().as_slice()],
        )?;
        conn.execute(
            "DELETE FROM dashboard_sessions WHERE expires_at <= ?1",
            params![now],
        )?;
        Ok(n == 1)
    }

    fn end_clinician_sessions(&self, clinician: ClinicianId) -> Result<u64> {
        let n = self.conn().execute(
            "DELETE FROM dashboard_sessions WHERE token_id IN
                 (SELECT id FROM tokens WHERE clinician_id = ?1)",
            [clinician],
        )?;
        Ok(n as u64)
    }

    fn set_nightscout_secret(&self, patient: PatientId, hash: &SecretHash) -> Result<()> {
        let conn = self.conn();
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM patients WHERE id = ?1)",
            [patient],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(Error::NotFound(format!("patient {patient}")));
        }
        match conn.execute(
            "INSERT INTO nightscout_secrets (patient_id, hash, set_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (patient_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
            params![patient, hash.0, Utc::now()],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_constraint(&e) => Err(Error::Conflict(
                "another patient already uses that Nightscout secret".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn delete_readings(
        &self,
        patient: PatientId,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM readings WHERE patient_id = ?1 AND device = ?2 AND time >= ?3 AND time < ?4",
            params![patient, device, crate::storage::micros(from), crate::storage::micros(to)],
        )?;
        if n > 0 {
            tx.execute(
                "UPDATE glucose_days SET stale = stale + 1
                  WHERE patient_id = ?1 AND day >= ?2 AND day <= ?3",
                params![
                    patient,
                    crate::storage::day_of(from),
                    crate::storage::day_of(to - chrono::TimeDelta::microseconds(1))
                ],
            )?;
        }
        tx.commit()?;
        Ok(n as u64)
    }

    fn nightscout_patient(&self, hash: &SecretHash) -> Result<Option<PatientId>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT patient_id FROM nightscout_secrets WHERE hash = ?1",
                [&hash.0],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn glucose_days(&self, scope: DayScope, from_day: i64, to_day: i64) -> Result<Vec<GlucoseDay>> {
        intake::glucose_days(&self.conn(), scope, from_day, to_day)
    }

    fn stale_glucose_days(
        &self,
        scope: DayScope,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<StaleDay>> {
        intake::stale_glucose_days(&self.conn(), scope, from_day, to_day)
    }

    fn put_glucose_day(
        &self,
        patient: PatientId,
        day: i64,
        generation: i64,
        counts: &DayCounts,
    ) -> Result<bool> {
        intake::put_glucose_day(&self.conn(), patient, day, generation, counts)
    }

    fn store_batch(&self, batch: &NewBatch) -> Result<BatchAck> {
        intake::store_batch(&mut self.conn(), batch)
    }

    fn kept_reading_before(
        &self,
        key: &SeriesKey,
        at: DateTime<Utc>,
    ) -> Result<Option<StoredReading>> {
        intake::kept_reading_before(&self.conn(), key, at)
    }

    fn readings(&self, query: &ReadingQuery) -> Result<Vec<StoredReading>> {
        intake::readings(&self.conn(), query)
    }

    fn store_alert(&self, alert: &NewAlert, contact: bool) -> Result<bool> {
        intake::store_alert(&mut self.conn(), alert, contact)
    }

    fn alerts_for(
        &self,
        patients: &[PatientId],
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>> {
        intake::alerts_for(&self.conn(), patients, since, limit)
    }

    fn alert_patients(&self, alert_id: &str) -> Result<Vec<PatientId>> {
        intake::alert_patients(&self.conn(), alert_id)
    }

    fn ack_alert(
        &self,
        patient: PatientId,
        alert_id: &str,
        token: TokenId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        intake::ack_alert(&self.conn(), patient, alert_id, token, at)
    }

    fn alert_acks(&self, patient: PatientId, alert_id: &str) -> Result<Vec<AlertAckRecord>> {
        intake::alert_acks(&self.conn(), patient, alert_id)
    }

    fn store_heartbeat(&self, heartbeat: &NewHeartbeat) -> Result<()> {
        intake::store_heartbeat(&mut self.conn(), heartbeat)
    }

    fn record_contact(&self, patient: PatientId, at: DateTime<Utc>) -> Result<()> {
        intake::record_contact(&mut self.conn(), patient, at)
    }

    fn latest_heartbeat(&self, patient: PatientId) -> Result<Option<NewHeartbeat>> {
        intake::latest_heartbeat(&self.conn(), patient)
    }

    fn contacts(&self) -> Result<Vec<Contact>> {
        intake::contacts(&self.conn())
    }

    fn set_silence(
        &self,
        patient: PatientId,
        expected: Option<&str>,
        silence: Option<&Silence>,
    ) -> Result<bool> {
        intake::set_silence(&self.conn(), patient, expected, silence)
    }
    fn add_webhook(&self, hook: &NewWebhook) -> Result<WebhookId> {
        if hook.events.is_empty() {
            return Err(Error::InvalidInput("webhook: no events".into()));
        }
        let events = EventKind::join_list(&hook.events);
        let conn = self.conn();
        conn.execute(
            "INSERT INTO webhooks (url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![hook.url, events, hook.secret, Utc::now()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn webhooks(&self) -> Result<Vec<Webhook>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, url, events, created_at FROM webhooks
              WHERE disabled_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, DateTime<Utc>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, url, events, created_at) = row?;
            out.push(Webhook {
                id,
                url,
                events: EventKind::parse_list(&events)?,
                created_at,
            });
        }
        Ok(out)
    }

    fn enqueue_webhook_event(&self, kind: EventKind, body: &str, at: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let targets: Vec<(i64, String)> = {
            let mut stmt =
                tx.prepare_cached("SELECT id, events FROM webhooks WHERE disabled_at IS NULL")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut queued = 0;
        for (id, events) in targets {
            if !EventKind::parse_list(&events)?.contains(&kind) {
                continue;
            }
            tx.execute(
                "INSERT INTO webhook_deliveries (webhook_id, event, body, created_at, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![id, kind.as_str(), body, at],
            )?;
            queued += 1;
        }
        tx.commit()?;
        Ok(queued)
    }

    fn due_webhook_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueDelivery>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT d.id, d.event, d.body, d.attempts, w.url, w.secret
               FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
              WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?1
                AND w.disabled_at IS NULL
              ORDER BY d.next_attempt_at, d.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, event, body, attempts, url, secret) = row?;
            out.push(DueDelivery {
                id,
                event: EventKind::parse(&event)?,
                body,
                attempts,
                url,
                secret,
            });
        }
        Ok(out)
    }

    fn record_webhook_attempt(&self, id: DeliveryId, attempt: &Attempt) -> Result<()> {
        let conn = self.conn();
        let changed = match attempt {
            Attempt::Delivered { status, at } => conn.execute(
                "UPDATE webhook_deliveries
                    SET attempts = attempts + 1, delivered_at = ?2, next_attempt_at = NULL,
                        last_status = ?3, last_error = NULL
                  WHERE id = ?1",
                params![id, at, status],
            )?,
            Attempt::Failed {
                status,
                error,
                at,
                retry_at,
            } => conn.execute(
                "UPDATE webhook_deliveries
                    SET attempts = attempts + 1, next_attempt_at = ?2,
                        gave_up_at = CASE WHEN ?2 IS NULL THEN ?3 END,
                        last_status = ?4, last_error = ?5
                  WHERE id = ?1",
                params![id, retry_at, at, status, error],
            )?,
        };
        if changed == 0 {
            return Err(Error::NotFound(format!("webhook delivery {id}")));
        }
        Ok(())
    }

    fn webhook_deliveries(&self, webhook: WebhookId) -> Result<Vec<DeliveryLog>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, event, attempts, delivered_at, gave_up_at, last_status, last_error
               FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([webhook], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, Option<DateTime<Utc>>>(3)?,
                r.get::<_, Option<DateTime<Utc>>>(4)?,
                r.get::<_, Option<u16>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, event, attempts, delivered_at, gave_up_at, last_status, last_error) = row?;
            out.push(DeliveryLog {
                id,
                event: EventKind::parse(&event)?,
                attempts,
                delivered_at,
                gave_up_at,
                last_status,
                last_error,
            });
        }
        Ok(out)
    }
}

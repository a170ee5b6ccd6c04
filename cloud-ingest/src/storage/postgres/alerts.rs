//! Alerts: rows for [`crate::storage::Alerts`].

use chrono::{DateTime, Utc};

use super::{PostgresStorage, intake};
use crate::domain::{PatientId, TokenId};
use crate::error::Result;
use crate::storage::{
    AlertAckRecord, Alerts, Contact, NewAlert, NewHeartbeat, Silence, StoredAlert,
};

impl Alerts for PostgresStorage {
    fn store_alert(&self, alert: &NewAlert, contact: bool) -> Result<bool> {
        intake::store_alert(&mut *self.conn()?, alert, contact, None)
    }

    fn alerts_for(
        &self,
        patients: &[PatientId],
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>> {
        intake::alerts_for(&mut *self.conn()?, patients, since, limit)
    }

    fn alert_patients(&self, alert_id: &str) -> Result<Vec<PatientId>> {
        intake::alert_patients(&mut *self.conn()?, alert_id)
    }

    fn ack_alert(
        &self,
        patient: PatientId,
        alert_id: &str,
        token: TokenId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        intake::ack_alert(&mut *self.conn()?, patient, alert_id, token, at)
    }

    fn alert_acks(&self, patient: PatientId, alert_id: &str) -> Result<Vec<AlertAckRecord>> {
        intake::alert_acks(&mut *self.conn()?, patient, alert_id)
    }

    fn store_heartbeat(&self, heartbeat: &NewHeartbeat) -> Result<()> {
        intake::store_heartbeat(&mut *self.conn()?, heartbeat, None)
    }

    fn record_contact(&self, patient: PatientId, at: DateTime<Utc>) -> Result<()> {
        intake::record_contact(&mut *self.conn()?, patient, at, None)
    }

    fn latest_heartbeat(&self, patient: PatientId) -> Result<Option<NewHeartbeat>> {
        intake::latest_heartbeat(&mut *self.conn()?, patient)
    }

    fn contacts(&self) -> Result<Vec<Contact>> {
        intake::contacts(&mut *self.conn()?)
    }

    fn set_silence(
        &self,
        patient: PatientId,
        expected: Option<&str>,
        silence: Option<&Silence>,
    ) -> Result<bool> {
        intake::set_silence(&mut *self.conn()?, patient, expected, silence)
    }
}

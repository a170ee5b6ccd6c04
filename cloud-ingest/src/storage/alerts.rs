//! Alerts and the dead-man's switch: alert events and their
//! acknowledgements, heartbeats, the last contact and silence episodes.

use chrono::{DateTime, Utc};

use super::{AlertAckRecord, Contact, NewAlert, NewHeartbeat, Silence, StoredAlert};
use crate::domain::{PatientId, TokenId};
use crate::error::Result;

/// Storing alerts and the signs of life the switch watches.
pub trait Alerts: Send + Sync {
    /// Stores an alert event once by (patient, alert id, phase, time);
    /// returns true when it was new. Also records the patient's contact
    /// when `contact` is set (an alert posted by the phone).
    fn store_alert(&self, alert: &NewAlert, contact: bool) -> Result<bool>;
    /// Alert events of these patients at or after `since`, oldest first, at
    /// most `limit`.
    fn alerts_for(
        &self,
        patients: &[PatientId],
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>>;
    /// The patients having an alert episode with this id (normally one).
    fn alert_patients(&self, alert_id: &str) -> Result<Vec<PatientId>>;
    /// Records that `token` acknowledged the episode; returns false when
    /// it had already (the first acknowledgement's time stands).
    fn ack_alert(
        &self,
        patient: PatientId,
        alert_id: &str,
        token: TokenId,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Acknowledgements of an episode, oldest first.
    fn alert_acks(&self, patient: PatientId, alert_id: &str) -> Result<Vec<AlertAckRecord>>;
    /// Keeps the heartbeat when it is the patient's latest by `sent_at`,
    /// and records the contact either way.
    fn store_heartbeat(&self, heartbeat: &NewHeartbeat) -> Result<()>;
    /// Records contact from the patient's phone at `at` (a body-less
    /// heartbeat: the dead-man's switch hears it, the latest health report
    /// stays as it was).
    fn record_contact(&self, patient: PatientId, at: DateTime<Utc>) -> Result<()>;
    /// The patient's latest heartbeat, if any.
    fn latest_heartbeat(&self, patient: PatientId) -> Result<Option<NewHeartbeat>>;
    /// Every patient the service has heard from, with the dead-man's
    /// switch state.
    fn contacts(&self) -> Result<Vec<Contact>>;
    /// Opens (`Some`) or closes (`None`) the patient's `app_silent`
    /// episode. Opening succeeds only when none is open and closing only
    /// when `expected` names the open one, so two replicas running the
    /// switch never both act; returns whether this call changed the state.
    fn set_silence(
        &self,
        patient: PatientId,
        expected: Option<&str>,
        silence: Option<&Silence>,
    ) -> Result<bool>;
}

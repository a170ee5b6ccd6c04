//! Patient reads. Every patient returned is written to the audit log first:
//! if the audit write fails, nothing is returned.

use axum::Json;
use axum::extract::State;

use crate::ServiceState;
use crate::auth::Principal;
use crate::domain::TokenScope;
use crate::error::{Error, Result};
use crate::views::{PatientView, PatientsView};

/// `GET /v1/patients`: a clinician's assigned patients, or a device's or
/// follower's one patient (the record, never its data). Admin tokens get
/// 403: administration does not need patient data.
pub async fn list(State(state): State<ServiceState>, who: Principal) -> Result<Json<PatientsView>> {
    let patients = state
        .store
        .run(move |s| {
            let patients = match who.scope {
                TokenScope::Patient(id) => s.patient(id)?.into_iter().collect(),
                TokenScope::Clinician(c) => s.assigned_patients(c)?,
                TokenScope::Admin => return Err(Error::Forbidden("admin tokens read no patients")),
            };
            for p in &patients {
                who.audit(s, Some(p.id), "patients.read")?;
            }
            Ok(patients)
        })
        .await?;
    Ok(Json(PatientsView {
        patients: patients.into_iter().map(PatientView::from).collect(),
    }))
}

//! The audit log, for admin tokens only. Reading it is itself audited.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;

use crate::ServiceState;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::views::{AuditEntryView, AuditView};

/// The largest page `GET /v1/audit` returns.
const MAX_LIMIT: u32 = 1000;

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Entries with an id above this (default 0: from the start).
    after: Option<i64>,
    /// Page size (default and maximum 1000).
    limit: Option<u32>,
}

/// `GET /v1/audit?after=&limit=`: audit entries oldest first.
pub async fn list(
    State(state): State<ServiceState>,
    who: Principal,
    q: std::result::Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditView>> {
    who.require_admin()?;
    let Query(q) = q.map_err(|_| Error::InvalidInput(crate::error::UNREADABLE_QUERY.into()))?;
    let after = q.after.unwrap_or(0);
    let limit = q.limit.unwrap_or(MAX_LIMIT).min(MAX_LIMIT);
    let entries = state
        .store
        .run(move |s| {
            who.audit(s, None, "audit.read")?;
            s.audit_entries(after, limit)
        })
        .await?;
    Ok(Json(AuditView {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
    }))
}

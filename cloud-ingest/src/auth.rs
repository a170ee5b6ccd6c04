//! Authentication and authorisation: the gate of invariant 5 (a token
//! reaches only its own patient's data).
//!
//! Tokens are 160 bits from the OS-seeded CSPRNG, shown once as
//! `vgl_<role letter>_<27 base64url characters>` (the prefix lets support
//! staff tell a device token from a clinician's at a glance, and lets
//! secret scanners match it) and stored only as their SHA-256. 160 bits is
//! the guessing bound RFC 6749 §10.10 recommends for bearer tokens; a
//! device sends its token on every request, so the 37 characters saved
//! against 256 bits in hex are about a tenth of a small batch request
//! (issue 14). Tokens issued earlier in hex still authenticate: only the
//! hash of whatever is presented is looked up. A fast hash is enough: the
//! secret has 160 bits of entropy, so there is nothing to brute-force that
//! a slow KDF would protect. Lookup is by hash through a unique index; the
//! stored hash is then compared in constant time, so no branch depends on
//! how much of a guess matched.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;

use crate::ServiceState;
use crate::domain::{CredentialKind, NewAuditEntry, PatientId, TokenHash, TokenId, TokenScope};

/// Re-exported for `core/cli` (the fleet simulator's `vigil_ingest::auth::Role`),
/// which this change may not touch; new code imports [`crate::domain::Role`].
pub use crate::domain::Role;
use crate::error::{Error, Result};

/// A freshly generated token secret. Shown to the operator once; only its
/// hash is kept. `Debug` does not print it.
pub struct Secret(String);

impl Secret {
    /// 160 random bits from the operating system, in the role's format.
    pub fn generate(role: Role) -> Result<Self> {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| Error::Config(format!("operating system RNG failed: {e}")))?;
        let mut s = String::with_capacity(6 + 27);
        s.push_str(role.prefix());
        URL_SAFE_NO_PAD.encode_string(bytes, &mut s);
        Ok(Self(s))
    }

    /// The secret text, to print once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash to store.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Random bytes in a token secret: 160 bits.
const SECRET_BYTES: usize = 20;

/// The authenticated caller of a request. Extracting it from a request
/// authenticates the bearer token, rejects revoked ones, and spends one unit
/// of the token's rate budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The token's id (what logs and the audit log name).
    pub token_id: TokenId,
    /// The token's role.
    pub role: Role,
    /// What the token reaches.
    pub scope: TokenScope,
    /// How it presented itself (a bearer token, a dashboard session), for
    /// the audit log.
    pub credential: CredentialKind,
}

impl Principal {
    /// The audit entry for this principal doing `action` (on `patient`'s
    /// data, if any): every handler audits through here, so no entry
    /// forgets who acted or with what.
    pub fn audit_entry(
        &self,
        patient: Option<PatientId>,
        action: impl Into<String>,
    ) -> NewAuditEntry {
        NewAuditEntry {
            credential: self.credential,
            token_id: Some(self.token_id),
            patient_id: patient,
            action: action.into(),
        }
    }

    /// Writes [`Principal::audit_entry`] for `action` on `patient`'s data:
    /// the one way a handler audits what a token or session did.
    pub fn audit(
        &self,
        s: &dyn crate::storage::Storage,
        patient: Option<PatientId>,
        action: &str,
    ) -> Result<()> {
        s.append_audit(&self.audit_entry(patient, action)).map(drop)
    }

    /// Ok only for admin tokens.
    pub fn require_admin(&self) -> Result<()> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(Error::Forbidden("admin token required"))
        }
    }
}

/// The bearer secret in an `Authorization` header, if well-formed.
/// The hash of the bearer token in `headers`, if one is presented.
pub fn bearer_hash(headers: &axum::http::HeaderMap) -> Option<TokenHash> {
    bearer_in(headers).map(TokenHash::of)
}

fn bearer(parts: &Parts) -> Option<&str> {
    bearer_in(&parts.headers)
}

fn bearer_in(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

impl FromRequestParts<ServiceState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &ServiceState) -> Result<Self> {
        let presented = bearer(parts).ok_or(Error::Unauthenticated)?;
        let client = crate::rate_limit::client_ip(parts);
        if state.auth_throttle.blocked(client) {
            return Err(Error::RateLimited);
        }
        let hash = TokenHash::of(presented);
        let lookup = hash.clone();
        let record = state.store.run(move |s| s.token_by_hash(&lookup)).await?;
        let Some(record) = record.filter(|r| r.hash.ct_eq(&hash)) else {
            refused(state, client, None, CredentialKind::Token).await;
            return Err(Error::Unauthenticated);
        };
        if record.revoked_at.is_some() {
            refused(state, client, Some(record.id), CredentialKind::Token).await;
            return Err(Error::Unauthenticated);
        }
        if !state.rate_limiter.try_acquire(record.id) {
            // One line per 429 would let a client flood the log.
            tracing::debug!(token_id = record.id, "rate limited");
            return Err(Error::RateLimited);
        }
        Ok(Principal {
            token_id: record.id,
            role: record.role,
            scope: record.scope,
            credential: CredentialKind::Token,
        })
    }
}

/// A refused credential: counted against the client's address, logged
/// (address and kind, never the secret) and audited (`auth.refused.<kind>`,
/// with the token id when a revoked token was presented). A failing audit
/// write is logged; the refusal stands either way.
pub async fn refused(
    state: &ServiceState,
    client: Option<std::net::IpAddr>,
    token_id: Option<TokenId>,
    credential: CredentialKind,
) {
    let kind = credential.as_str();
    state.auth_throttle.failed(client, kind);
    let entry = NewAuditEntry {
        credential,
        token_id,
        patient_id: None,
        action: format!("auth.refused.{kind}"),
    };
    if let Err(e) = state
        .store
        .run(move |s| s.append_audit(&entry).map(drop))
        .await
    {
        tracing::error!(error = %e, "audit of a refused credential failed");
    }
}

//! Dashboard sign-in: a clinician signs in once with their token, and the
//! browser then carries a random session id in an HttpOnly, SameSite=Strict
//! cookie (Secure when served over TLS). Only the SHA-256 of the id is
//! stored, with an expiry; a session acts as the token that opened it, so
//! revoking the token ends the session.
//!
//! CSRF: every state-changing form carries a token derived from the session
//! id (`SHA-256("csrf:" ‖ id)`), which a cross-site page cannot read; the
//! sign-in form, which has no session yet, uses a double-submit cookie.
//! SameSite=Strict is a second, independent barrier.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use chrono::{TimeDelta, Utc};
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ServiceState;
use crate::auth::Principal;
use crate::domain::CredentialKind;
use crate::domain::TokenHash;
use crate::error::{Error, Result};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "vigil_session";
/// Name of the sign-in form's double-submit cookie.
pub const LOGIN_CSRF_COOKIE: &str = "vigil_login_csrf";
/// How long a session lasts: one clinic day.
pub const SESSION_TTL: TimeDelta = TimeDelta::hours(8);

/// 256 random bits as 64 hex digits.
pub fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Config(format!("operating system RNG failed: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The CSRF token of a session id.
pub fn csrf_of(session_id: &str) -> String {
    Sha256::digest(format!("csrf:{session_id}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time string equality (for CSRF tokens).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/`, Secure when
/// `secure`; `max_age` 0 clears the cookie.
pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

/// A signed-in dashboard user: the principal of the token that opened the
/// session, plus what the pages need to build forms.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who is signed in.
    pub principal: Principal,
    /// The CSRF token every form of this session must carry.
    pub csrf: String,
    /// The session id's hash (to end it at sign-out).
    pub hash: TokenHash,
}

/// Why a dashboard request has no session: the handler redirects to the
/// sign-in page rather than answering 401.
#[derive(Debug)]
pub enum NoSession {
    /// No cookie, an unknown or expired session, or a revoked token.
    SignedOut,
    /// Storage failed.
    Failed(Error),
}

impl axum::response::IntoResponse for NoSession {
    fn into_response(self) -> axum::response::Response {
        match self {
            NoSession::SignedOut => super::pages::redirect("/dashboard/login"),
            NoSession::Failed(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<ServiceState> for Session {
    type Rejection = NoSession;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServiceState,
    ) -> std::result::Result<Self, NoSession> {
        let id = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|v| v.len() == 64)
            .ok_or(NoSession::SignedOut)?
            .to_owned();
        let hash = TokenHash::of(&id);
        let lookup = hash.clone();
        let record = state
            .store
            .run(move |s| s.session_token(&lookup, Utc::now()))
            .await
            .map_err(NoSession::Failed)?
            .ok_or(NoSession::SignedOut)?;
        if record.revoked_at.is_some() {
            return Err(NoSession::SignedOut);
        }
        if !state.rate_limiter.try_acquire(record.id) {
            return Err(NoSession::Failed(Error::RateLimited));
        }
        Ok(Session {
            principal: Principal {
                token_id: record.id,
                role: record.role,
                scope: record.scope,
                credential: CredentialKind::DashboardSession,
            },
            csrf: csrf_of(&id),
            hash,
        })
    }
}

/// Hashes a new session id for storage.
pub fn session_hash(id: &str) -> TokenHash {
    TokenHash::of(id)
}

/// When a session opened now expires.
pub fn expiry() -> chrono::DateTime<Utc> {
    Utc::now() + SESSION_TTL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_flags_are_set() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; vigil_session=abc".parse().unwrap());
        h.append("cookie", "b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        let c = set_cookie(SESSION_COOKIE, "x", 60, true);
        for flag in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Max-Age=60",
            "Path=/",
        ] {
            assert!(c.contains(flag), "{c}");
        }
        assert!(!set_cookie(SESSION_COOKIE, "x", 60, false).contains("Secure"));
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_in_constant_time() {
        let a = random_hex().unwrap();
        let b = random_hex().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(csrf_of(&a), csrf_of(&b));
        assert!(same(&csrf_of(&a), &csrf_of(&a)));
        assert!(!same(&csrf_of(&a), &csrf_of(&b)));
        assert!(!same("abc", "abcd"));
    }
}

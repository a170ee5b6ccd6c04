//! Who acts: token roles and scopes, the stored forms of secrets, and the
//! kind of credential an audit row names.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ClinicianId, PatientId, TokenId};

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A phone's SDK: writes and reads its own patient.
    Device,
    /// A family member or carer: reads one patient.
    Follower,
    /// A clinician: reads the patients assigned to them.
    Clinician,
    /// An administrator: reads the audit log; no patient data.
    Admin,
}

impl Role {
    /// The name stored in the database and accepted by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Device => "device",
            Role::Follower => "follower",
            Role::Clinician => "clinician",
            Role::Admin => "admin",
        }
    }

    /// The inverse of [`Role::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "device" => Some(Role::Device),
            "follower" => Some(Role::Follower),
            "clinician" => Some(Role::Clinician),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Role::Device => "vgl_d_",
            Role::Follower => "vgl_f_",
            Role::Clinician => "vgl_c_",
            Role::Admin => "vgl_a_",
        }
    }
}

/// The SHA-256 of a token secret: the only form a token is stored in.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a presented secret (prefix included, so a secret moved to
    /// another role's prefix is a different token).
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Rebuilds a stored hash; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality: takes the same time wherever the first
    /// differing byte is.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not secret, but there is no reason to spread it through logs.
        f.write_str("TokenHash(..)")
    }
}

/// What a token may reach, as stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    /// A device or follower token: exactly this patient.
    Patient(PatientId),
    /// A clinician token: the patients assigned to this clinician.
    Clinician(ClinicianId),
    /// An admin token: administration and the audit log, no patient data.
    Admin,
}

/// A token to insert: its hash, never its secret.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// SHA-256 of the secret.
    pub hash: TokenHash,
    /// The token's role; must agree with `scope`.
    pub role: Role,
    /// What the token reaches.
    pub scope: TokenScope,
    /// A human label (the admin's name); never a secret.
    pub label: Option<String>,
}

/// A stored token, as authentication sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's id.
    pub id: TokenId,
    /// The stored SHA-256 of the secret.
    pub hash: TokenHash,
    /// The token's role.
    pub role: Role,
    /// What the token reaches.
    pub scope: TokenScope,
    /// When the token was revoked; a revoked token authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Which kind of credential acted: the audit log names it beside the token
/// id, since a Nightscout secret and the admin CLI have no token id and a
/// dashboard session acts with its clinician's token id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A bearer token (device, follower, clinician or admin).
    Token,
    /// A clinician signed in to the dashboard (a session cookie).
    DashboardSession,
    /// A Nightscout client's API secret.
    NightscoutSecret,
    /// The operator's local `vigil-ingest` command line.
    AdminCli,
    /// Written before the log recorded credential kinds.
    Unrecorded,
}

impl CredentialKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Token => "token",
            CredentialKind::DashboardSession => "dashboard_session",
            CredentialKind::NightscoutSecret => "nightscout_secret",
            CredentialKind::AdminCli => "admin_cli",
            CredentialKind::Unrecorded => "unrecorded",
        }
    }

    /// The kind a stored name names; an unknown name reads as
    /// [`CredentialKind::Unrecorded`] (the column's check allows none).
    pub fn parse(name: &str) -> CredentialKind {
        match name {
            "token" => CredentialKind::Token,
            "dashboard_session" => CredentialKind::DashboardSession,
            "nightscout_secret" => CredentialKind::NightscoutSecret,
            "admin_cli" => CredentialKind::AdminCli,
            _ => CredentialKind::Unrecorded,
        }
    }
}

/// The stored form of a Nightscout secret: 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHash(pub String);

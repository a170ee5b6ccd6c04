//! The storage contract: one suite, written once over the `Storage` trait,
//! run against every backend. A backend joins with one line at the bottom
//! (`storage_contract!(postgres, || ...)`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use vigil_ingest::Error;
use vigil_ingest::auth::{Role, TokenHash};
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_ingest::storage::{MIGRATIONS, NewAuditEntry, NewToken, Storage, TokenScope};

fn migrations_are_all_applied(s: &dyn Storage) {
    s.ping().unwrap();
    assert_eq!(s.schema_version().unwrap() as usize, MIGRATIONS.len());
}

fn patients_round_trip_and_empty_names_are_refused(s: &dyn Storage) {
    let a = s.add_patient("Ada").unwrap();
    let b = s.add_patient("Bob").unwrap();
    assert_ne!(a, b);
    assert_eq!(s.patient(a).unwrap().unwrap().display_name, "Ada");
    assert_eq!(s.patient(b + 1000).unwrap(), None);
    assert!(matches!(s.add_patient("  "), Err(Error::InvalidInput(_))));
}

fn clinician_names_are_unique_and_assignment_is_idempotent(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let q = s.add_patient("Bob").unwrap();
    let c = s.add_clinician("dr-a").unwrap();
    assert!(matches!(s.add_clinician("dr-a"), Err(Error::Conflict(_))));
    assert_eq!(s.clinician_by_name("dr-a").unwrap(), Some(c));
    assert_eq!(s.clinician_by_name("dr-z").unwrap(), None);
    s.assign(c, p).unwrap();
    s.assign(c, p).unwrap();
    let ids: Vec<i64> = s
        .assigned_patients(c)
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, vec![p]);
    assert!(s.is_assigned(c, p).unwrap());
    assert!(!s.is_assigned(c, q).unwrap());
    assert!(matches!(s.assign(c, q + 1000), Err(Error::NotFound(_))));
}

fn tokens_are_found_by_hash_and_revocation_sticks(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let hash = TokenHash::of("vgl_d_contract");
    let id = s
        .insert_token(&NewToken {
            hash: hash.clone(),
            role: Role::Device,
            scope: TokenScope::Patient(p),
            label: None,
        })
        .unwrap();
    let rec = s.token_by_hash(&hash).unwrap().unwrap();
    assert_eq!(
        (rec.id, rec.role, rec.scope),
        (id, Role::Device, TokenScope::Patient(p))
    );
    assert!(rec.hash.ct_eq(&hash));
    assert!(rec.revoked_at.is_none());
    assert_eq!(
        s.token_by_hash(&TokenHash::of("vgl_d_other")).unwrap(),
        None
    );
    assert!(s.revoke_token(id).unwrap());
    assert!(!s.revoke_token(id).unwrap(), "revoking twice reports false");
    assert!(
        s.token_by_hash(&hash)
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
}

fn tokens_must_match_their_role_and_link_to_something_real(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let mismatched = NewToken {
        hash: TokenHash::of("a"),
        role: Role::Clinician,
        scope: TokenScope::Patient(p),
        label: None,
    };
    assert!(matches!(
        s.insert_token(&mismatched),
        Err(Error::InvalidInput(_))
    ));
    let dangling = NewToken {
        hash: TokenHash::of("b"),
        role: Role::Follower,
        scope: TokenScope::Patient(p + 1000),
        label: None,
    };
    assert!(matches!(s.insert_token(&dangling), Err(Error::NotFound(_))));
}

fn audit_log_appends_in_order_and_pages(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let first = s
        .append_audit(&NewAuditEntry {
            token_id: None,
            patient_id: Some(p),
            action: "x.one".into(),
        })
        .unwrap();
    let second = s
        .append_audit(&NewAuditEntry {
            token_id: None,
            patient_id: None,
            action: "x.two".into(),
        })
        .unwrap();
    assert!(second > first);
    let all = s.audit_entries(0, 10).unwrap();
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["x.one", "x.two"]);
    assert_eq!(all[0].patient_id, Some(p));
    let page = s.audit_entries(first, 10).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, second);
    assert_eq!(s.audit_entries(0, 1).unwrap().len(), 1);
}

fn sessions_resolve_to_their_token_until_expiry_or_sign_out(s: &dyn Storage) {
    use chrono::{TimeDelta, Utc};
    let c = s.add_clinician("dr-session").unwrap();
    let token = s
        .insert_token(&NewToken {
            hash: TokenHash::of("vgl_c_session"),
            role: Role::Clinician,
            scope: TokenScope::Clinician(c),
            label: None,
        })
        .unwrap();
    let now = Utc::now();
    let live = TokenHash::of("session-live");
    let old = TokenHash::of("session-old");
    s.create_session(&live, token, now + TimeDelta::hours(8))
        .unwrap();
    s.create_session(&old, token, now + TimeDelta::seconds(1))
        .unwrap();
    let rec = s.session_token(&live, now).unwrap().unwrap();
    assert_eq!(rec.id, token);
    assert_eq!(rec.scope, TokenScope::Clinician(c));
    assert!(s.session_token(&old, now).unwrap().is_some());
    // Expired sessions resolve to nothing, and a sign-out sweeps them.
    let later = now + TimeDelta::seconds(2);
    assert!(s.session_token(&old, later).unwrap().is_none());
    assert!(
        s.session_token(&TokenHash::of("never"), now)
            .unwrap()
            .is_none()
    );
    assert!(s.delete_session(&live, later).unwrap());
    assert!(!s.delete_session(&live, later).unwrap());
    assert!(s.session_token(&live, now).unwrap().is_none());
    assert!(
        !s.delete_session(&old, later).unwrap(),
        "swept at the first sign-out"
    );
    // A session for a token that does not exist is refused.
    assert!(matches!(
        s.create_session(&TokenHash::of("x"), 9999, now + TimeDelta::hours(1)),
        Err(vigil_ingest::Error::NotFound(_))
    ));
    // Revoking the token shows through the session (the caller refuses it).
    s.create_session(&live, token, now + TimeDelta::hours(8))
        .unwrap();
    s.revoke_token(token).unwrap();
    assert!(
        s.session_token(&live, now)
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
}

fn nightscout_secrets_select_one_patient_and_are_unique(s: &dyn Storage) {
    use vigil_ingest::nightscout::secret_hash;
    let a = s.add_patient("Ada").unwrap();
    let b = s.add_patient("Bob").unwrap();
    let ha = secret_hash("ada's long secret");
    s.set_nightscout_secret(a, &ha).unwrap();
    assert_eq!(s.nightscout_patient(&ha).unwrap(), Some(a));
    assert_eq!(
        s.nightscout_patient(&secret_hash("other secret!")).unwrap(),
        None
    );
    assert!(matches!(
        s.set_nightscout_secret(b, &ha),
        Err(vigil_ingest::Error::Conflict(_))
    ));
    assert!(matches!(
        s.set_nightscout_secret(9999, &secret_hash("nobody's secret")),
        Err(vigil_ingest::Error::NotFound(_))
    ));
    // Replacing a secret retires the old one.
    let ha2 = secret_hash("ada's new long secret");
    s.set_nightscout_secret(a, &ha2).unwrap();
    assert_eq!(s.nightscout_patient(&ha).unwrap(), None);
    assert_eq!(s.nightscout_patient(&ha2).unwrap(), Some(a));
}

/// Instantiates the whole contract for one backend. `$make` returns a fresh,
/// empty, migrated backend per test.
macro_rules! storage_contract {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;
            fn fresh() -> Box<dyn Storage> {
                Box::new(($make)())
            }
            #[test]
            fn migrations_are_all_applied() {
                super::migrations_are_all_applied(fresh().as_ref());
            }
            #[test]
            fn patients_round_trip_and_empty_names_are_refused() {
                super::patients_round_trip_and_empty_names_are_refused(fresh().as_ref());
            }
            #[test]
            fn clinician_names_are_unique_and_assignment_is_idempotent() {
                super::clinician_names_are_unique_and_assignment_is_idempotent(fresh().as_ref());
            }
            #[test]
            fn tokens_are_found_by_hash_and_revocation_sticks() {
                super::tokens_are_found_by_hash_and_revocation_sticks(fresh().as_ref());
            }
            #[test]
            fn tokens_must_match_their_role_and_link_to_something_real() {
                super::tokens_must_match_their_role_and_link_to_something_real(fresh().as_ref());
            }
            #[test]
            fn sessions_resolve_to_their_token_until_expiry_or_sign_out() {
                super::sessions_resolve_to_their_token_until_expiry_or_sign_out(fresh().as_ref());
            }
            #[test]
            fn nightscout_secrets_select_one_patient_and_are_unique() {
                super::nightscout_secrets_select_one_patient_and_are_unique(fresh().as_ref());
            }
            #[test]
            fn audit_log_appends_in_order_and_pages() {
                super::audit_log_appends_in_order_and_pages(fresh().as_ref());
            }
        }
    };
}

storage_contract!(sqlite, || SqliteStorage::open_in_memory().unwrap());

// SQLite-specific guarantees (outside the contract: they are about the file).

#[test]
fn sqlite_reopening_a_migrated_file_applies_nothing_twice_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let id = SqliteStorage::open(&path)
        .unwrap()
        .add_patient("Ada")
        .unwrap();
    let again = SqliteStorage::open(&path).unwrap();
    assert_eq!(again.schema_version().unwrap() as usize, MIGRATIONS.len());
    assert_eq!(again.patient(id).unwrap().unwrap().display_name, "Ada");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows as usize, MIGRATIONS.len());
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn sqlite_audit_log_refuses_update_and_delete_even_from_raw_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let s = SqliteStorage::open(&path).unwrap();
    s.append_audit(&NewAuditEntry {
        token_id: None,
        patient_id: None,
        action: "x".into(),
    })
    .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert!(
        conn.execute("UPDATE audit_log SET action = 'y'", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM audit_log", []).is_err());
    assert_eq!(s.audit_entries(0, 10).unwrap()[0].action, "x");
}

#[test]
fn migration_files_are_numbered_densely_and_named_verb_object() {
    for (i, (version, name, sql)) in MIGRATIONS.iter().enumerate() {
        assert_eq!(*version as usize, i + 1);
        assert!(name.starts_with(&format!("{version:04}_")), "{name}");
        assert!(!sql.trim().is_empty());
    }
}

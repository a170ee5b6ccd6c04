//! The storage contract: one suite, written once over the `Storage` trait,
//! run against every backend. A backend joins with one line at the bottom
//! (`storage_contract!(postgres, || ...)`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use vigil_ingest::Error;
use vigil_ingest::domain::{Role, TokenHash};
use vigil_model::reading::Stream;
use vigil_model::wire::{BatchId, RejectReason, Rejected, SeqRange};

use vigil_ingest::domain::{CredentialKind, NewAuditEntry, NewToken, TokenScope};
use vigil_ingest::storage::postgres::PostgresStorage;
use vigil_ingest::storage::prelude::*;
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_ingest::storage::{
    MIGRATIONS, NewAlert, NewBatch, NewGroup, NewHeartbeat, NewReading, ReadingQuery, SeriesKey,
    Silence, Storage, glucose_days_of,
};
use vigil_pg_harness::PgServer;

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
    // A time zone is optional, settable, and only for known patients.
    assert_eq!(s.patient(a).unwrap().unwrap().time_zone, None);
    assert!(s.set_patient_time_zone(a, "Europe/Berlin").unwrap());
    assert_eq!(
        s.patient(a).unwrap().unwrap().time_zone.as_deref(),
        Some("Europe/Berlin")
    );
    assert_eq!(s.patient(b).unwrap().unwrap().time_zone, None);
    assert!(!s.set_patient_time_zone(b + 1000, "Europe/Berlin").unwrap());
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

fn a_clinician_s_glucose_unit_defaults_to_mg_dl_and_only_known_units_are_kept(s: &dyn Storage) {
    let c = s.add_clinician("dr-u").unwrap();
    assert_eq!(s.clinician_unit(c).unwrap(), "mgdl");
    s.set_clinician_unit(c, "mmol").unwrap();
    assert_eq!(s.clinician_unit(c).unwrap(), "mmol");
    assert!(matches!(
        s.set_clinician_unit(c, "mg/dl"),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        s.clinician_unit(c).unwrap(),
        "mmol",
        "a refused value changes nothing"
    );
    assert!(matches!(
        s.clinician_unit(c + 1000),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        s.set_clinician_unit(c + 1000, "mgdl"),
        Err(Error::NotFound(_))
    ));
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
            credential: CredentialKind::NightscoutSecret,
            token_id: None,
            patient_id: Some(p),
            action: "x.one".into(),
        })
        .unwrap();
    let second = s
        .append_audit(&NewAuditEntry {
            credential: CredentialKind::AdminCli,
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
    // Two entries without a token id, told apart by their credential.
    assert_eq!(all[0].credential, CredentialKind::NightscoutSecret);
    assert_eq!(all[1].credential, CredentialKind::AdminCli);
    let page = s.audit_entries(first, 10).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, second);
    assert_eq!(s.audit_entries(0, 1).unwrap().len(), 1);
}

fn audit_log_appends_many_at_once_or_none(s: &dyn Storage) {
    let a = s.add_patient("Ada").unwrap();
    let b = s.add_patient("Bo").unwrap();
    let entry = |patient, action: &str| NewAuditEntry {
        credential: CredentialKind::DashboardSession,
        token_id: None,
        patient_id: Some(patient),
        action: action.into(),
    };
    s.append_audits(&[]).unwrap();
    s.append_audits(&[entry(a, "x.read"), entry(b, "x.read")])
        .unwrap();
    let all = s.audit_entries(0, 10).unwrap();
    let got: Vec<_> = all
        .iter()
        .map(|e| (e.patient_id, e.action.as_str()))
        .collect();
    assert_eq!(got, [(Some(a), "x.read"), (Some(b), "x.read")]);
    assert!(
        all.iter()
            .all(|e| e.credential == CredentialKind::DashboardSession)
    );
    // One bad entry refuses the whole set: nothing half-written.
    assert!(matches!(
        s.append_audits(&[entry(a, "x.again"), entry(b, "")]),
        Err(Error::InvalidInput(_))
    ));
    // A patient that does not exist breaks a foreign key: still none.
    assert!(
        s.append_audits(&[entry(a, "x.again"), entry(999_999, "x.again")])
            .is_err()
    );
    assert_eq!(s.audit_entries(0, 10).unwrap().len(), 2);
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

// ---- intake: batches, readings, alerts, heartbeats, contact ----

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_770_000_000 + secs, 0).unwrap()
}

fn reading(seq: u64, secs: i64, value: f64) -> NewReading {
    NewReading {
        seq,
        time: t(secs),
        value,
        quality_percent: Some(90.0),
        quality_flagged: false,
        held_back: false,
        raw: Some(vec![1, 2, 3]),
    }
}

fn batch(id: u8, patient: i64, groups: Vec<NewGroup>) -> NewBatch {
    NewBatch {
        v: 1,
        id: BatchId([id; 16]),
        patient,
        device: "cgm-1".into(),
        received_at: t(10_000),
        groups,
    }
}

fn glucose(readings: Vec<NewReading>, rejected: Vec<Rejected>) -> NewGroup {
    NewGroup {
        stream: Stream::Glucose,
        session: Some(4),
        characteristic: 0x2AA7,
        tolerance: Some(3.0),
        readings,
        rejected,
    }
}

fn intake_writes_carry_their_audit_row_and_a_bad_one_writes_nothing(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let entry = |action: &str| NewAuditEntry {
        credential: CredentialKind::Token,
        token_id: None,
        patient_id: Some(p),
        action: action.into(),
    };
    let g = || glucose(vec![reading(0, 0, 100.0)], vec![]);
    // An empty action is refused before anything is stored.
    assert!(matches!(
        s.store_batch_audited(&batch(1, p, vec![g()]), &entry("")),
        Err(Error::InvalidInput(_))
    ));
    assert!(s.audit_entries(0, 10).unwrap().is_empty());
    assert!(s.contacts().unwrap().is_empty());
    let ack = s
        .store_batch_audited(&batch(1, p, vec![g()]), &entry("readings.write"))
        .unwrap();
    assert!(!ack.duplicate);
    s.record_contact_audited(p, t(20_000), &entry("heartbeats.write"))
        .unwrap();
    let actions: Vec<_> = s
        .audit_entries(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| (e.patient_id, e.action))
        .collect();
    assert_eq!(
        actions,
        [
            (Some(p), "readings.write".to_owned()),
            (Some(p), "heartbeats.write".to_owned())
        ]
    );
    assert_eq!(s.contacts().unwrap()[0].last_contact, t(20_000));
}

fn delete_readings_removes_one_device_in_range_only(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let q = s.add_patient("Bob").unwrap();
    let g = || {
        glucose(
            (0..10).map(|i| reading(i, 60 * i as i64, 100.0)).collect(),
            vec![],
        )
    };
    s.store_batch(&batch(1, p, vec![g()])).unwrap();
    s.store_batch(&batch(2, q, vec![g()])).unwrap();
    let mut other = batch(3, p, vec![g()]);
    other.device = "nightscout".into();
    s.store_batch(&other).unwrap();
    let all = |patient| {
        s.readings(&ReadingQuery {
            patient,
            stream: None,
            from: t(-1),
            to: t(100_000),
            limit: 1000,
        })
        .unwrap()
    };
    assert_eq!(all(p).len(), 20);
    // [t(120), t(300)) holds seq 2, 3, 4 of the nightscout device.
    assert_eq!(
        s.delete_readings(p, "nightscout", t(120), t(300)).unwrap(),
        3
    );
    assert_eq!(
        s.delete_readings(p, "nightscout", t(120), t(300)).unwrap(),
        0
    );
    assert_eq!(all(p).len(), 17);
    assert_eq!(
        all(p).iter().filter(|r| r.device == "cgm-1").count(),
        10,
        "other devices untouched"
    );
    assert_eq!(all(q).len(), 10, "other patients untouched");
}

fn batches_store_once_and_retries_get_the_stored_ack(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let refused = Rejected {
        seq: 9,
        reason: RejectReason::ImpossibleValue,
    };
    let b = batch(
        1,
        p,
        vec![glucose(
            vec![
                reading(1, 0, 100.0),
                reading(2, 300, 104.0),
                reading(4, 900, 110.0),
            ],
            vec![refused],
        )],
    );
    let ack = s.store_batch(&b).unwrap();
    assert!(!ack.duplicate);
    assert_eq!(ack.batch, b.id);
    // One range over the group's own readings (1, 2, 4): it spans 3, which
    // the group did not carry and so does not claim; the refused 9 is
    // outside it.
    assert_eq!(ack.streams[0].stored, vec![SeqRange { first: 1, last: 4 }]);
    assert_eq!(ack.streams[0].rejected, vec![refused]);
    // The same id again: the stored ack, marked duplicate, nothing new.
    let mut again = b.clone();
    again.groups[0].readings.push(reading(5, 1200, 111.0));
    let second = s.store_batch(&again).unwrap();
    assert!(second.duplicate);
    assert_eq!(second.streams, ack.streams);
    let q = ReadingQuery {
        patient: p,
        stream: Some(Stream::Glucose),
        from: t(-1),
        to: t(100_000),
        limit: 100,
    };
    let stored = s.readings(&q).unwrap();
    assert_eq!(stored.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 4]);
    assert_eq!(stored[0].value, 100.0);
    assert_eq!(stored[0].session, Some(4));
    assert_eq!(stored[0].quality_percent, Some(90.0));
    assert_eq!(stored[0].characteristic, 0x2AA7);
    assert_eq!(stored[0].tolerance, Some(3.0));
    assert_eq!(stored[0].device, "cgm-1");
}

/// More readings than one write transaction takes on SQLite (500), in two
/// streams: stored whole, acknowledged as one range per stream, once.
fn a_batch_larger_than_a_write_chunk_is_stored_whole_and_once(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let b = big_batch(p);
    let ack = s.store_batch(&b).unwrap();
    assert!(!ack.duplicate);
    assert_eq!(
        ack.streams[0].stored,
        vec![SeqRange {
            first: 1,
            last: 1200
        }]
    );
    assert_eq!(
        ack.streams[1].stored,
        vec![SeqRange {
            first: 1,
            last: 300
        }]
    );
    let again = s.store_batch(&b).unwrap();
    assert!(again.duplicate);
    assert_eq!(again.streams, ack.streams);
    let q = ReadingQuery {
        patient: p,
        stream: None,
        from: t(-1),
        to: t(1_000_000),
        limit: 10_000,
    };
    assert_eq!(s.readings(&q).unwrap().len(), 1500);
}

/// The same-instant rule's query: one series only, both ends included.
fn sequences_between_lists_one_series_in_range(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    s.store_batch(&big_batch(p)).unwrap();
    let key = SeriesKey {
        patient: p,
        device: "cgm-1".into(),
        stream: Stream::Glucose,
        session: Some(4),
    };
    let mut got = s.sequences_between(&key, t(120), t(300)).unwrap();
    got.sort();
    assert_eq!(got, [(t(120), 2), (t(180), 3), (t(240), 4), (t(300), 5)]);
    let other_session = SeriesKey {
        session: Some(5),
        ..key.clone()
    };
    assert!(
        s.sequences_between(&other_session, t(0), t(1_000_000))
            .unwrap()
            .is_empty()
    );
    let other_device = SeriesKey {
        device: "cgm-2".into(),
        ..key
    };
    assert!(
        s.sequences_between(&other_device, t(0), t(1_000_000))
            .unwrap()
            .is_empty()
    );
}

/// 1,200 one-minute glucose readings and 300 heart-rate ones.
fn big_batch(p: i64) -> NewBatch {
    let heart = NewGroup {
        stream: Stream::HeartRate,
        session: None,
        characteristic: 0x2A37,
        tolerance: None,
        readings: (1..=300).map(|i| reading(i, i as i64 * 60, 70.0)).collect(),
        rejected: Vec::new(),
    };
    batch(
        7,
        p,
        vec![
            glucose(
                (1..=1200)
                    .map(|i| reading(i, i as i64 * 60, 100.0 + (i % 40) as f64))
                    .collect(),
                Vec::new(),
            ),
            heart,
        ],
    )
}

fn overlapping_batches_store_each_reading_once_and_flag_conflicts(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    s.store_batch(&batch(
        1,
        p,
        vec![glucose(
            vec![reading(1, 0, 100.0), reading(2, 300, 101.0)],
            vec![],
        )],
    ))
    .unwrap();
    let ack = s
        .store_batch(&batch(
            2,
            p,
            vec![glucose(
                vec![
                    reading(2, 300, 101.0),
                    reading(3, 600, 102.0),
                    reading(1, 0, 99.0),
                ],
                vec![],
            )],
        ))
        .unwrap();
    assert!(!ack.duplicate);
    assert_eq!(ack.streams[0].stored, vec![SeqRange { first: 2, last: 3 }]);
    assert_eq!(
        ack.streams[0].rejected,
        vec![Rejected {
            seq: 1,
            reason: RejectReason::Conflict
        }]
    );
    let all = s
        .readings(&ReadingQuery {
            patient: p,
            stream: None,
            from: t(-1),
            to: t(100_000),
            limit: 100,
        })
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].value, 100.0, "the first stored value stands");
    // Another session with the same seq is another reading.
    let mut other = glucose(vec![reading(1, 1500, 120.0)], vec![]);
    other.session = None;
    let ack = s.store_batch(&batch(3, p, vec![other])).unwrap();
    assert_eq!(ack.streams[0].stored, vec![SeqRange { first: 1, last: 1 }]);
    assert_eq!(ack.streams[0].session, None);
    // Copies inside one batch: an identical one counts as stored, a
    // different value under the same seq is a conflict.
    let ack = s
        .store_batch(&batch(
            4,
            p,
            vec![glucose(
                vec![
                    reading(4, 900, 103.0),
                    reading(4, 900, 103.0),
                    reading(5, 1200, 104.0),
                    reading(5, 1200, 150.0),
                ],
                vec![],
            )],
        ))
        .unwrap();
    // Seq 5 is both stored (104) and refused (150): the refusal answers
    // for it, so no range claims it.
    assert_eq!(ack.streams[0].stored, vec![SeqRange { first: 4, last: 4 }]);
    assert_eq!(
        ack.streams[0].rejected,
        vec![Rejected {
            seq: 5,
            reason: RejectReason::Conflict
        }]
    );
}

/// The series and seq name a reading, whatever time it is sent with: on
/// PostgreSQL the two times fall in different monthly partitions, where
/// the table's unique key (which holds `time`) cannot catch the copy.
fn a_resent_seq_at_another_time_is_stored_once_even_a_month_apart(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let now = Utc::now();
    let later = now + chrono::TimeDelta::days(40);
    let at = |seq: u64, time: DateTime<Utc>, value: f64| NewReading {
        time,
        ..reading(seq, 0, value)
    };
    let first = s
        .store_batch(&batch(
            1,
            p,
            vec![glucose(vec![at(1, now, 100.0), at(2, now, 101.0)], vec![])],
        ))
        .unwrap();
    assert_eq!(
        first.streams[0].stored,
        vec![SeqRange { first: 1, last: 2 }]
    );
    let again = s
        .store_batch(&batch(
            2,
            p,
            vec![glucose(
                vec![
                    at(1, later, 100.0),
                    at(2, later, 150.0),
                    // A copy inside the batch, a month apart, too.
                    at(3, now, 102.0),
                    at(3, later, 102.0),
                ],
                vec![],
            )],
        ))
        .unwrap();
    assert_eq!(
        again.streams[0].stored,
        vec![
            SeqRange { first: 1, last: 1 },
            SeqRange { first: 3, last: 3 }
        ]
    );
    assert_eq!(
        again.streams[0].rejected,
        vec![Rejected {
            seq: 2,
            reason: RejectReason::Conflict
        }],
        "1 is already stored (same value), 2 conflicts"
    );
    // A held-back copy is an estimate: stored, whatever its value.
    let held = s
        .store_batch(&batch(
            3,
            p,
            vec![glucose(
                vec![NewReading {
                    held_back: true,
                    ..at(2, later, 170.0)
                }],
                vec![],
            )],
        ))
        .unwrap();
    assert_eq!(held.streams[0].stored, vec![SeqRange { first: 2, last: 2 }]);
    let all = s
        .readings(&ReadingQuery {
            patient: p,
            stream: None,
            from: now - chrono::TimeDelta::days(1),
            to: later + chrono::TimeDelta::days(1),
            limit: 100,
        })
        .unwrap();
    assert_eq!(
        all.iter().map(|r| (r.seq, r.value)).collect::<Vec<_>>(),
        [(1, 100.0), (2, 101.0), (3, 102.0)],
        "one row a seq, the first time and value stand"
    );
    assert!(all.iter().all(|r| r.time < later));
}

fn readings_filter_by_patient_stream_and_time_and_page(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let q = s.add_patient("Bob").unwrap();
    let mut hr = glucose(vec![reading(1, 50, 60.0)], vec![]);
    hr.stream = Stream::HeartRate;
    hr.session = None;
    hr.tolerance = None;
    let g = glucose(
        (0..10)
            .map(|i| reading(i, i as i64 * 300, 100.0 + i as f64))
            .collect(),
        vec![],
    );
    s.store_batch(&batch(1, p, vec![g, hr])).unwrap();
    s.store_batch(&batch(
        2,
        q,
        vec![glucose(vec![reading(1, 0, 200.0)], vec![])],
    ))
    .unwrap();
    let mut query = ReadingQuery {
        patient: p,
        stream: Some(Stream::Glucose),
        from: t(300),
        to: t(1500),
        limit: 100,
    };
    let got: Vec<u64> = s.readings(&query).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(got, [1, 2, 3, 4], "from inclusive, to exclusive");
    query.limit = 2;
    assert_eq!(s.readings(&query).unwrap().len(), 2);
    query.stream = None;
    query.from = t(0);
    query.limit = 100;
    let streams: Vec<Stream> = s
        .readings(&query)
        .unwrap()
        .iter()
        .map(|r| r.stream)
        .collect();
    assert!(streams.contains(&Stream::HeartRate));
    query.patient = q;
    assert_eq!(s.readings(&query).unwrap().len(), 1);
    // Between seq 3 (900 s) and 1000 s: another device's glucose, another
    // session of the same device, and a held-back reading of the series.
    // None is the series' kept reading before 1000 s.
    let mut other_device = batch(3, p, vec![glucose(vec![reading(1, 950, 90.0)], vec![])]);
    other_device.device = "cgm-2".into();
    s.store_batch(&other_device).unwrap();
    let mut other_session = glucose(vec![reading(1, 960, 91.0)], vec![]);
    other_session.session = Some(5);
    let held = NewReading {
        held_back: true,
        ..reading(20, 990, 92.0)
    };
    s.store_batch(&batch(
        4,
        p,
        vec![other_session, glucose(vec![held], vec![])],
    ))
    .unwrap();
    let series = SeriesKey {
        patient: p,
        device: "cgm-1".into(),
        stream: Stream::Glucose,
        session: Some(4),
    };
    let before = s.kept_reading_before(&series, t(1000)).unwrap().unwrap();
    assert_eq!(before.seq, 3);
    assert_eq!(
        s.kept_reading_before(&series, t(900)).unwrap().unwrap().seq,
        2
    );
    assert!(s.kept_reading_before(&series, t(0)).unwrap().is_none());
    let no_session = SeriesKey {
        session: None,
        ..series
    };
    assert!(
        s.kept_reading_before(&no_session, t(1000))
            .unwrap()
            .is_none()
    );
}

fn alert(p: i64, id: &str, phase: &str, secs: i64) -> NewAlert {
    NewAlert {
        patient: p,
        alert_id: id.into(),
        device: Some("cgm-1".into()),
        kind: "urgent_low".into(),
        phase: phase.into(),
        time: t(secs),
        phone_time: t(secs),
        value: Some(50.0),
        detail: "{}".into(),
        received_at: t(secs + 1),
    }
}

fn alerts_store_once_by_event_key_and_acks_record_who(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let q = s.add_patient("Bob").unwrap();
    let tok = s
        .insert_token(&NewToken {
            hash: TokenHash::of("vgl_c_x"),
            role: Role::Clinician,
            scope: TokenScope::Clinician(s.add_clinician("dr").unwrap()),
            label: None,
        })
        .unwrap();
    assert!(s.store_alert(&alert(p, "a1", "start", 0), true).unwrap());
    assert!(!s.store_alert(&alert(p, "a1", "start", 0), true).unwrap());
    // A retry from a phone whose clock is off: the corrected time moved
    // with the attempt's latency, the phone's own time did not. Once.
    let mut retry = alert(p, "a1", "start", 0);
    retry.time = t(0) + chrono::TimeDelta::milliseconds(3);
    assert!(!s.store_alert(&retry, true).unwrap());
    assert!(s.store_alert(&alert(p, "a1", "end", 600), false).unwrap());
    assert!(s.store_alert(&alert(q, "b1", "start", 100), false).unwrap());
    let mine = s.alerts_for(&[p], t(-10), 100).unwrap();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[0].alert, alert(p, "a1", "start", 0));
    assert_eq!(s.alerts_for(&[p, q], t(50), 100).unwrap().len(), 2);
    assert_eq!(s.alerts_for(&[p, q], t(-10), 1).unwrap().len(), 1);
    assert_eq!(s.alert_patients("a1").unwrap(), vec![p]);
    assert!(s.alert_patients("zz").unwrap().is_empty());
    assert!(s.ack_alert(p, "a1", tok, t(700)).unwrap());
    assert!(!s.ack_alert(p, "a1", tok, t(800)).unwrap());
    let acks = s.alert_acks(p, "a1").unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!((acks[0].token_id, acks[0].at), (tok, t(700)));
    // The timeline names the clinician, never a token id.
    assert_eq!(acks[0].by, "dr");
    assert_eq!(s.alerts_for(&[p], t(-10), 10).unwrap()[0].acks, acks);
}

fn heartbeats_keep_the_latest_and_contact_drives_the_silence_state(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    assert!(s.contacts().unwrap().is_empty());
    let hb = |sent: i64, recv: i64, body: &str| NewHeartbeat {
        patient: p,
        sent_at: t(sent),
        received_at: t(recv),
        body: body.into(),
    };
    s.store_heartbeat(&hb(100, 100, "new")).unwrap();
    s.store_heartbeat(&hb(50, 200, "old")).unwrap();
    assert_eq!(s.latest_heartbeat(p).unwrap().unwrap().body, "new");
    let c = s.contacts().unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].last_contact,
        t(200),
        "an old heartbeat is still contact"
    );
    assert_eq!(c[0].silence, None);
    // A batch received earlier than the last contact does not move it back.
    let mut b = batch(1, p, vec![]);
    b.received_at = t(150);
    s.store_batch(&b).unwrap();
    assert_eq!(s.contacts().unwrap()[0].last_contact, t(200));
    let silence = Silence {
        alert_id: "silent-1".into(),
        since: t(2000),
    };
    assert!(s.set_silence(p, None, Some(&silence)).unwrap());
    assert!(
        !s.set_silence(p, None, Some(&silence)).unwrap(),
        "already open"
    );
    assert_eq!(s.contacts().unwrap()[0].silence, Some(silence));
    assert!(!s.set_silence(p, Some("other"), None).unwrap());
    assert!(s.set_silence(p, Some("silent-1"), None).unwrap());
    assert_eq!(s.contacts().unwrap()[0].silence, None);
    // Alerts from the phone count as contact when asked to.
    s.store_alert(&alert(p, "a", "start", 5000), true).unwrap();
    assert_eq!(s.contacts().unwrap()[0].last_contact, t(5001));
}

/// Instantiates the whole contract for one backend. `$make` returns a fresh,
/// empty, migrated backend per test.
fn webhook_queue_delivers_retries_and_gives_up(s: &dyn Storage) {
    use vigil_ingest::domain::{Attempt, EventKind, NewWebhook};
    let t0 = chrono::Utc::now();
    assert!(
        s.add_webhook(&NewWebhook {
            url: "https://a.example/".into(),
            events: vec![],
            secret: "k".into()
        })
        .is_err()
    );
    let a = s
        .add_webhook(&NewWebhook {
            url: "https://a.example/".into(),
            events: vec![EventKind::Alert, EventKind::Data],
            secret: "ka".into(),
        })
        .unwrap();
    let d = s
        .add_webhook(&NewWebhook {
            url: "https://d.example/".into(),
            events: vec![EventKind::Data],
            secret: "kd".into(),
        })
        .unwrap();
    let hooks = s.webhooks().unwrap();
    assert_eq!(hooks.iter().map(|h| h.id).collect::<Vec<_>>(), vec![a, d]);
    assert_eq!(hooks[0].events, vec![EventKind::Alert, EventKind::Data]);
    assert_eq!(
        s.enqueue_webhook_event(EventKind::Alert, "{\"x\":1}", t0)
            .unwrap(),
        1
    );
    assert_eq!(
        s.enqueue_webhook_event(EventKind::Data, "{\"y\":2}", t0)
            .unwrap(),
        2
    );
    assert!(
        s.due_webhook_deliveries(t0 - chrono::TimeDelta::seconds(1), 10)
            .unwrap()
            .is_empty()
    );
    let due = s.due_webhook_deliveries(t0, 10).unwrap();
    assert_eq!(due.len(), 3);
    assert_eq!(
        (due[0].event, due[0].body.as_str(), due[0].secret.as_str()),
        (EventKind::Alert, "{\"x\":1}", "ka")
    );
    assert!(due.iter().all(|x| x.attempts == 0));
    let later = t0 + chrono::TimeDelta::seconds(30);
    s.record_webhook_attempt(
        due[0].id,
        &Attempt::Failed {
            status: Some(500),
            error: "e".into(),
            at: t0,
            retry_at: Some(later),
        },
    )
    .unwrap();
    s.record_webhook_attempt(
        due[1].id,
        &Attempt::Delivered {
            status: 204,
            at: t0,
        },
    )
    .unwrap();
    s.record_webhook_attempt(
        due[2].id,
        &Attempt::Failed {
            status: None,
            error: "refused".into(),
            at: t0,
            retry_at: None,
        },
    )
    .unwrap();
    assert!(
        s.record_webhook_attempt(
            9_999_999,
            &Attempt::Delivered {
                status: 200,
                at: t0
            }
        )
        .is_err()
    );
    assert!(s.due_webhook_deliveries(t0, 10).unwrap().is_empty());
    let again = s.due_webhook_deliveries(later, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (due[0].id, 1));
    let log_a = s.webhook_deliveries(a).unwrap();
    assert_eq!(log_a.len(), 2);
    assert_eq!(
        log_a[1].delivered_at.map(|t| t.timestamp()),
        Some(t0.timestamp())
    );
    assert_eq!(log_a[1].last_status, Some(204));
    let log_d = s.webhook_deliveries(d).unwrap();
    assert!(log_d[0].gave_up_at.is_some());
    assert_eq!(log_d[0].last_error.as_deref(), Some("refused"));
}

fn nightscout_documents_store_once_and_read_newest_first(s: &dyn Storage) {
    let p = s.add_patient("Ada").unwrap();
    let q = s.add_patient("Bob").unwrap();
    let doc = |secs: i64, kind: &str| vigil_ingest::domain::NsDocument {
        time: t(secs),
        kind: kind.into(),
        document: format!("{{\"eventType\":\"{kind}\",\"at\":{secs}}}"),
    };
    let docs = [doc(10, "Note"), doc(20, "Meal Bolus"), doc(20, "Note")];
    assert_eq!(s.store_ns_documents(p, "treatments", &docs).unwrap(), 3);
    // A retry, and one new document: only the new one is stored.
    let retry = [doc(10, "Note"), doc(30, "Note")];
    assert_eq!(s.store_ns_documents(p, "treatments", &retry).unwrap(), 1);
    let all = s.ns_documents(p, "treatments", t(0), t(100), 10).unwrap();
    let got: Vec<(i64, &str)> = all
        .iter()
        .map(|d| ((d.time - t(0)).num_seconds(), d.kind.as_str()))
        .collect();
    assert_eq!(
        got,
        [(30, "Note"), (20, "Meal Bolus"), (20, "Note"), (10, "Note")]
    );
    assert_eq!(all[3].document, docs[0].document);
    assert_eq!(
        s.ns_documents(p, "treatments", t(15), t(30), 10)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.ns_documents(p, "treatments", t(0), t(100), 1)
            .unwrap()
            .len(),
        1
    );
    // Per patient and per collection.
    assert!(
        s.ns_documents(q, "treatments", t(0), t(100), 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        s.ns_documents(p, "devicestatus", t(0), t(100), 10)
            .unwrap()
            .is_empty()
    );
    assert!(s.store_ns_documents(p, "profiles", &[doc(1, "x")]).is_err());
}

// ---- the triage list's day summaries (issue 17) ----

/// Mixed uploads (an SDK batch, a Nightscout uploader's copy, a late
/// backfill of a gap, a Nightscout DELETE) leave every day summary equal to
/// the consensus metrics of the full resolved series, day by day and over
/// the whole period; a write marks its days stale in the same transaction.
fn glucose_day_summaries_equal_the_metrics_of_the_resolved_series(s: &dyn Storage) {
    use vigil_ingest::glucose_days::{self, Figures};
    use vigil_ingest::storage::{DayScope, day_start};
    use vigil_model::metrics::consensus_metrics;

    let p = s.add_patient("Ada").unwrap();
    let c = s.add_clinician("dr-triage").unwrap();
    s.assign(c, p).unwrap();
    let d1 = 20_500_i64; // 2026-02-16, UTC
    let start = day_start(d1);
    let at = |slot: i64, offset_s: i64| start + chrono::TimeDelta::seconds(slot * 300 + offset_s);
    // Every band, in a pattern that does not repeat with the day.
    let value = |slot: i64| 40.0 + ((slot * 37) % 281) as f64;
    let cgm = |id: u8, slots: std::ops::Range<i64>| NewBatch {
        v: 1,
        id: BatchId([id; 16]),
        patient: p,
        device: "cgm-1".into(),
        received_at: start,
        groups: vec![NewGroup {
            stream: Stream::Glucose,
            session: Some(4),
            characteristic: 0x2AA7,
            tolerance: None,
            readings: slots
                .map(|k| NewReading {
                    seq: u64::try_from(k).unwrap(),
                    time: at(k, 30),
                    value: value(k),
                    quality_percent: None,
                    quality_flagged: false,
                    held_back: false,
                    raw: None,
                })
                .collect(),
            rejected: Vec::new(),
        }],
    };
    // The phone's CGM over days 1 and 2, with six hours missing on day 2.
    let hole = 288 + 100..288 + 172;
    for (id, slots) in [(1, 0..hole.start), (2, hole.end..576)] {
        let b = cgm(id, slots);
        s.store_batch(&b).unwrap();
        glucose_days::after_batch(s, &b).unwrap();
    }
    // An uploader's copy two minutes later, other values, over days 1-3:
    // it stands only where the phone has nothing (the hole, day 3).
    let copy: Vec<vigil_model::reading::Sample> = (0..864)
        .map(|k| vigil_model::reading::Sample {
            time: at(k, 150),
            value: value(k + 11),
        })
        .collect();
    vigil_ingest::glucose::store(s, p, "nightscout", &copy).unwrap();
    // The phone's late backfill of its own hole: it displaces the copy.
    let late = cgm(3, hole.clone());
    s.store_batch(&late).unwrap();
    // Not yet recomputed: the write left its day stale, never wrong.
    let stale = s
        .stale_glucose_days(DayScope::Clinician(c), d1, d1 + 3)
        .unwrap();
    assert_eq!(
        stale.iter().map(|d| d.day).collect::<Vec<_>>(),
        vec![d1 + 1]
    );
    assert!(
        !s.glucose_days(DayScope::Patient(p), d1 + 1, d1 + 2)
            .unwrap()[0]
            .current
    );
    glucose_days::after_batch(s, &late).unwrap();
    // The uploader deletes its last six hours: stale until a reader refreshes.
    let cut = at(864 - 72, 0);
    assert_eq!(
        s.delete_readings(p, "nightscout", cut, day_start(d1 + 3))
            .unwrap(),
        72
    );
    assert_eq!(
        s.stale_glucose_days(DayScope::Patient(p), d1, d1 + 3)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        glucose_days::refresh(s, DayScope::Clinician(c), d1, d1 + 3).unwrap(),
        1
    );

    let rows = s.glucose_days(DayScope::Clinician(c), d1, d1 + 3).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.current && r.patient == p));
    let same = |from: i64, to: i64| {
        let points = vigil_ingest::glucose::points(s, p, day_start(from), day_start(to)).unwrap();
        let m = consensus_metrics(
            &vigil_ingest::glucose::samples(&points),
            chrono::TimeDelta::minutes(5),
        )
        .unwrap();
        let f = Figures::of(&glucose_days::sum(
            rows.iter()
                .filter(|r| (from..to).contains(&r.day))
                .map(|r| &r.counts),
        ))
        .unwrap();
        assert_eq!(f.readings as usize, m.readings, "days {from}..{to}");
        for (a, b) in [
            (f.tbr_lt54_pct, m.tbr_lt54_pct),
            (f.tbr_lt70_pct, m.tbr_lt70_pct),
            (f.tir_70_180_pct, m.tir_70_180_pct),
            (f.titr_70_140_pct, m.titr_70_140_pct),
            (f.tar_gt180_pct, m.tar_gt180_pct),
            (f.tar_gt250_pct, m.tar_gt250_pct),
            (f.gri, m.gri),
        ] {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "days {from}..{to}: {f:?} vs {m:?}"
            );
        }
        assert!((f.mean_mg_dl - m.mean_mg_dl).abs() < 1e-9);
    };
    for d in d1..d1 + 3 {
        same(d, d + 1);
    }
    same(d1, d1 + 3);
    // Day 1 and 2 are whole (phone, then phone and its backfill); day 3 is
    // the copy less what was deleted.
    let readings: Vec<i64> = rows.iter().map(|r| r.counts.readings).collect();
    assert_eq!(readings, vec![288, 288, 288 - 72]);
    assert_eq!(rows[2].counts.slots, 288 - 72);
    // A new glucose policy re-decides every moment: every day is stale.
    let policy = serde_json::to_string(&vigil_model::precedence::PrecedenceConfig::default_for(
        vigil_model::precedence::Quantity::Glucose,
    ))
    .unwrap();
    assert!(
        s.set_precedence_policy(p, "glucose", &policy, None, start)
            .unwrap()
    );
    assert_eq!(
        s.stale_glucose_days(DayScope::Patient(p), d1, d1 + 3)
            .unwrap()
            .len(),
        3
    );
    // A clinician sees only their own patients' days.
    let other = s.add_clinician("dr-other").unwrap();
    assert!(
        s.glucose_days(DayScope::Clinician(other), d1, d1 + 3)
            .unwrap()
            .is_empty()
    );
}

/// A phone's CGM posting in order keeps its days current without a
/// recompute, and the counts are exactly what a recompute gives; anything
/// the append cannot know about (a second series, a backfill) leaves the
/// day stale for one.
fn glucose_days_kept_current_by_appends_equal_a_recompute(s: &dyn Storage) {
    use vigil_ingest::glucose_days;
    use vigil_ingest::storage::{DayScope, day_start};

    let p = s.add_patient("Ada").unwrap();
    let d1 = 20_600_i64;
    let start = day_start(d1);
    // Every band, flagged and invalid values among them, some held back.
    let reading = |minute: i64| {
        let value = match minute % 97 {
            13 => -4.0,
            41 => -0.5,
            _ => 38.0 + ((minute * 37) % 290) as f64,
        };
        NewReading {
            seq: u64::try_from(minute).unwrap(),
            time: start + chrono::TimeDelta::seconds(minute * 60 + 7),
            value,
            quality_percent: None,
            quality_flagged: minute % 53 == 0,
            held_back: minute % 4 != 3,
            raw: None,
        }
    };
    let batch = |id: u16, session: i64, minutes: std::ops::Range<i64>| NewBatch {
        v: 1,
        id: BatchId({
            let mut b = [7u8; 16];
            b[..2].copy_from_slice(&id.to_le_bytes());
            b[2] = u8::try_from(session).unwrap();
            b
        }),
        patient: p,
        device: "cgm-1".into(),
        received_at: start,
        groups: vec![NewGroup {
            stream: Stream::Glucose,
            session: Some(session),
            characteristic: 0x2AA7,
            tolerance: Some(3.0),
            // Kept readings first, then the held-back ones, as intake
            // lists them: not in time order.
            readings: {
                let (kept, held): (Vec<_>, Vec<_>) =
                    minutes.map(reading).partition(|r| !r.held_back);
                kept.into_iter().chain(held).collect()
            },
            rejected: Vec::new(),
        }],
    };
    let recomputed = |day: i64| {
        let from = day_start(day);
        glucose_days::counts(
            &vigil_ingest::glucose::points(s, p, from, from + chrono::TimeDelta::days(1)).unwrap(),
        )
    };
    let stored = |day: i64| {
        s.glucose_days(DayScope::Patient(p), day, day + 1)
            .unwrap()
            .into_iter()
            .next()
            .expect("a row for the day")
    };
    let assert_current_and_equal = |day: i64, when: &str| {
        let row = stored(day);
        assert!(row.current, "{when}: day {day} was left stale");
        let (a, b) = (row.counts, recomputed(day));
        assert_eq!(
            (
                a.readings,
                a.very_low,
                a.low,
                a.in_range,
                a.tight,
                a.high,
                a.very_high,
                a.slots
            ),
            (
                b.readings,
                b.very_low,
                b.low,
                b.in_range,
                b.tight,
                b.high,
                b.very_high,
                b.slots
            ),
            "{when}: day {day}"
        );
        assert!(
            (a.sum_mg_dl - b.sum_mg_dl).abs() < 1e-6,
            "{when}: day {day}"
        );
    };
    // 33 one-minute readings a batch, as the SDK sends them: batches
    // straddle wear slots and, once, midnight. No recompute is asked for.
    let mut minute = 0;
    let mut id = 0;
    while minute < 1440 + 300 {
        id += 1;
        let b = batch(id, 1, minute..minute + 33);
        s.store_batch(&b).unwrap();
        for day in glucose_days_of(&b) {
            assert_current_and_equal(day, &format!("batch {id}"));
        }
        minute += 33;
    }
    assert_eq!(stored(d1).counts.readings, recomputed(d1).readings);
    assert!(stored(d1).counts.slots > 280, "the day is nearly whole");
    // The same batch again changes nothing and stays current.
    s.store_batch(&batch(id, 1, minute - 33..minute)).unwrap();
    assert_current_and_equal(d1 + 1, "a retry");
    // A second session on the same day: the append does not know how the
    // two resolve, so the day waits for its recompute, and stays with it
    // for the next batch of the first session too.
    let other = batch(900, 2, minute..minute + 5);
    s.store_batch(&other).unwrap();
    assert!(!stored(d1 + 1).current);
    glucose_days::after_batch(s, &other).unwrap();
    assert_current_and_equal(d1 + 1, "after the second session's recompute");
    let next = batch(901, 1, minute + 10..minute + 20);
    s.store_batch(&next).unwrap();
    assert!(!stored(d1 + 1).current, "two series: recompute only");
    glucose_days::after_batch(s, &next).unwrap();
    assert_current_and_equal(d1 + 1, "after the recompute");
    // A backfill before the day's last reading, on a one-series day.
    let fresh_day = d1 + 5;
    let base = (fresh_day - d1) * 1440;
    s.store_batch(&batch(902, 3, base + 100..base + 133))
        .unwrap();
    assert_current_and_equal(fresh_day, "a new day");
    let back = batch(903, 3, base + 50..base + 60);
    s.store_batch(&back).unwrap();
    assert!(!stored(fresh_day).current, "a backfill: recompute only");
    glucose_days::after_batch(s, &back).unwrap();
    assert_current_and_equal(fresh_day, "after the backfill's recompute");
    // The recompute records the one series again, so appends resume.
    s.store_batch(&batch(904, 3, base + 133..base + 166))
        .unwrap();
    assert_current_and_equal(fresh_day, "appending after a recompute");
}

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
            fn a_clinician_s_glucose_unit_defaults_to_mg_dl_and_only_known_units_are_kept() {
                super::a_clinician_s_glucose_unit_defaults_to_mg_dl_and_only_known_units_are_kept(
                    fresh().as_ref(),
                );
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
            fn nightscout_documents_store_once_and_read_newest_first() {
                super::nightscout_documents_store_once_and_read_newest_first(fresh().as_ref());
            }
            #[test]
            fn webhook_queue_delivers_retries_and_gives_up() {
                super::webhook_queue_delivers_retries_and_gives_up(fresh().as_ref());
            }
            #[test]
            fn audit_log_appends_in_order_and_pages() {
                super::audit_log_appends_in_order_and_pages(fresh().as_ref());
            }
            #[test]
            fn audit_log_appends_many_at_once_or_none() {
                super::audit_log_appends_many_at_once_or_none(fresh().as_ref());
            }
            #[test]
            fn intake_writes_carry_their_audit_row_and_a_bad_one_writes_nothing() {
                super::intake_writes_carry_their_audit_row_and_a_bad_one_writes_nothing(
                    fresh().as_ref(),
                );
            }
            #[test]
            fn delete_readings_removes_one_device_in_range_only() {
                super::delete_readings_removes_one_device_in_range_only(fresh().as_ref());
            }
            #[test]
            fn sequences_between_lists_one_series_in_range() {
                super::sequences_between_lists_one_series_in_range(fresh().as_ref());
            }
            #[test]
            fn a_batch_larger_than_a_write_chunk_is_stored_whole_and_once() {
                super::a_batch_larger_than_a_write_chunk_is_stored_whole_and_once(fresh().as_ref());
            }
            #[test]
            fn batches_store_once_and_retries_get_the_stored_ack() {
                super::batches_store_once_and_retries_get_the_stored_ack(fresh().as_ref());
            }
            #[test]
            fn a_resent_seq_at_another_time_is_stored_once_even_a_month_apart() {
                super::a_resent_seq_at_another_time_is_stored_once_even_a_month_apart(
                    fresh().as_ref(),
                );
            }
            #[test]
            fn overlapping_batches_store_each_reading_once_and_flag_conflicts() {
                super::overlapping_batches_store_each_reading_once_and_flag_conflicts(
                    fresh().as_ref(),
                );
            }
            #[test]
            fn readings_filter_by_patient_stream_and_time_and_page() {
                super::readings_filter_by_patient_stream_and_time_and_page(fresh().as_ref());
            }
            #[test]
            fn alerts_store_once_by_event_key_and_acks_record_who() {
                super::alerts_store_once_by_event_key_and_acks_record_who(fresh().as_ref());
            }
            #[test]
            fn glucose_days_kept_current_by_appends_equal_a_recompute() {
                super::glucose_days_kept_current_by_appends_equal_a_recompute(fresh().as_ref());
            }
            #[test]
            fn glucose_day_summaries_equal_the_metrics_of_the_resolved_series() {
                super::glucose_day_summaries_equal_the_metrics_of_the_resolved_series(
                    fresh().as_ref(),
                );
            }
            #[test]
            fn heartbeats_keep_the_latest_and_contact_drives_the_silence_state() {
                super::heartbeats_keep_the_latest_and_contact_drives_the_silence_state(
                    fresh().as_ref(),
                );
            }
        }
    };
}

storage_contract!(sqlite, || SqliteStorage::open_in_memory().unwrap());
// A file, as `serve` runs it: reads then go through the read connections.
storage_contract!(sqlite_file, || SqliteStorage::open(
    &sqlite_files().path().join(format!(
        "{}.db",
        NEXT_FILE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ))
)
.unwrap());
storage_contract!(postgres, || PostgresStorage::connect(
    &pg().fresh_database().unwrap()
)
.unwrap());

/// One throwaway PostgreSQL server for this test binary; each test gets a
/// fresh database on it. Fails, never skips, when PostgreSQL is missing.
fn pg() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| PgServer::start().unwrap_or_else(|e| panic!("{e}")))
}

/// The directory of this test binary's SQLite files (kept for the run).
fn sqlite_files() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
}
static NEXT_FILE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SQLite-specific guarantees (outside the contract: they are about the file).

#[test]
fn sqlite_a_chunked_batch_cut_off_midway_is_finished_by_its_retry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let s = SqliteStorage::open(&path).unwrap();
    let p = s.add_patient("Ada").unwrap();
    let b = big_batch(p);
    let whole = s.store_batch(&b).unwrap();
    // What a crash between chunks leaves: the batch row without its
    // acknowledgement, only the first chunks' readings.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("UPDATE batches SET ack = ''", []).unwrap();
    let kept = raw
        .execute(
            "DELETE FROM readings WHERE stream = 'glucose' AND seq > 700",
            [],
        )
        .unwrap();
    assert_eq!(kept, 500);
    let retry = s.store_batch(&b).unwrap();
    assert!(
        !retry.duplicate,
        "an unfinished batch is finished, not replayed"
    );
    assert_eq!(retry.streams, whole.streams);
    let rows: i64 = raw
        .query_row("SELECT COUNT(*) FROM readings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1500);
    assert!(s.store_batch(&b).unwrap().duplicate);
}

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
        credential: CredentialKind::AdminCli,
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

// PostgreSQL-specific guarantees: the same rules, enforced by the server.

#[test]
fn postgres_reconnecting_applies_nothing_twice_and_keeps_data() {
    let url = pg().fresh_database().unwrap();
    let id = PostgresStorage::connect(&url)
        .unwrap()
        .add_patient("Ada")
        .unwrap();
    let again = PostgresStorage::connect(&url).unwrap();
    assert_eq!(again.schema_version().unwrap() as usize, MIGRATIONS.len());
    assert_eq!(again.patient(id).unwrap().unwrap().display_name, "Ada");
    let mut raw = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let rows: i64 = raw
        .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows as usize, MIGRATIONS.len());
}

#[test]
fn postgres_replicas_starting_together_migrate_once() {
    let url = pg().fresh_database().unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PostgresStorage::connect(&url).map(drop))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let s = PostgresStorage::connect(&url).unwrap();
    assert_eq!(s.schema_version().unwrap() as usize, MIGRATIONS.len());
}

#[test]
fn postgres_audit_log_refuses_update_delete_and_truncate_even_from_raw_sql() {
    let url = pg().fresh_database().unwrap();
    let s = PostgresStorage::connect(&url).unwrap();
    s.append_audit(&NewAuditEntry {
        credential: CredentialKind::AdminCli,
        token_id: None,
        patient_id: None,
        action: "x".into(),
    })
    .unwrap();
    let mut raw = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    assert!(
        raw.execute("UPDATE audit_log SET action = 'y'", &[])
            .is_err()
    );
    assert!(raw.execute("DELETE FROM audit_log", &[]).is_err());
    assert!(raw.batch_execute("TRUNCATE audit_log").is_err());
    assert_eq!(s.audit_entries(0, 10).unwrap()[0].action, "x");
}

#[test]
fn postgres_pool_replaces_connections_the_server_ended() {
    // A restart or failover ends every connection the pool holds (here:
    // those to this test's own database; other tests share the server). Each
    // ended one fails the one call that finds it, is dropped, and the pool
    // opens a fresh one: the service recovers by itself, within as many
    // calls as the pool has connections.
    let url = pg().fresh_database().unwrap();
    let s = PostgresStorage::connect(&url).unwrap();
    let p = s.add_patient("Ada").unwrap();
    std::thread::scope(|scope| {
        // Open several pooled connections at once.
        for _ in 0..4 {
            scope.spawn(|| s.patient(p).unwrap());
        }
    });
    let mut raw = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let ended: i64 = raw
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE application_name = 'vigil-ingest' AND datname = current_database()
                AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ended >= 1, "the pool held no connection to end");
    let mut failures = 0;
    let found = loop {
        match s.patient(p) {
            Ok(found) => break found,
            Err(_) => failures += 1,
        }
        assert!(
            failures <= vigil_ingest::storage::postgres::POOL_SIZE,
            "the pool kept handing out ended connections"
        );
    };
    assert_eq!(found.map(|f| f.id), Some(p));
    for _ in 0..20 {
        s.patient(p).unwrap();
    }
}

#[test]
fn postgres_errors_never_carry_the_failing_rows_values() {
    // A CHECK violation's DETAIL quotes the whole row; the error we keep
    // (and would log) must not. Force one with raw SQL through the same
    // conversion the backend uses.
    let url = pg().fresh_database().unwrap();
    PostgresStorage::connect(&url).unwrap();
    let mut raw = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let e = raw
        .execute(
            "INSERT INTO tokens (hash, role, label, created_at) \
             VALUES ('\\x00', 'device', 'Ada Secret-Name', now())",
            &[],
        )
        .unwrap_err();
    let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or_default();
    assert!(
        detail.contains("Ada Secret-Name"),
        "the raw DETAIL quotes the row"
    );
    let ours = Error::from(e).to_string();
    assert!(!ours.contains("Ada Secret-Name"), "{ours}");
    assert!(ours.contains("23514"), "{ours}");
}

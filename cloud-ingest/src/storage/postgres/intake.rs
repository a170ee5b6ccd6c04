//! The PostgreSQL side of intake: the statements of `sqlite/intake.rs` in
//! PostgreSQL's dialect (`$N` placeholders, BOOLEAN flags), with one change
//! for many writers: a batch claims its id with `INSERT ... ON CONFLICT DO
//! NOTHING`, which waits for a concurrent writer of the same id to finish,
//! so two replicas given the same batch store it once.

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;

use chrono::{DateTime, Utc};
use postgres::Row;
use vigil_model::reading::Stream;
use vigil_model::wire::BatchAck;

use super::{Conn, Tx};
use crate::domain::{NewAuditEntry, PatientId, TokenId};
use crate::error::{Error, Result};
use crate::storage::intake::{
    AlertAckRecord, Contact, DayCounts, DayRow, DayScope, DayTail, GlucoseDay, NewAlert, NewBatch,
    NewGroup, NewHeartbeat, ReadingOutcome, ReadingQuery, SeriesKey, Silence, StaleDay,
    StoredAlert, StoredReading, assemble_ack, from_micros, glucose_days_of, micros, seq_column,
    seq_from_column, session_column, session_from_column,
};

fn touch_contact(tx: &mut Tx<'_>, patient: PatientId, at: DateTime<Utc>) -> Result<()> {
    tx.exec(
        "INSERT INTO patient_contact (patient_id, last_contact) VALUES ($1, $2)
         ON CONFLICT (patient_id) DO UPDATE SET last_contact =
             GREATEST(excluded.last_contact, patient_contact.last_contact)",
        &[&patient, &micros(at)],
    )?;
    Ok(())
}

/// Appends `audit` in the request's own transaction (checked by the
/// caller): intake then commits once a request.
fn audit_in(tx: &mut Tx<'_>, audit: Option<&NewAuditEntry>) -> Result<()> {
    if let Some(e) = audit {
        tx.exec(
            "INSERT INTO audit_log (at, credential, token_id, patient_id, action)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &Utc::now(),
                &e.credential.as_str(),
                &e.token_id,
                &e.patient_id,
                &e.action,
            ],
        )?;
    }
    Ok(())
}

fn json_error(e: serde_json::Error) -> Error {
    Error::Internal(format!("stored acknowledgement: {e}"))
}

pub(super) fn store_batch(
    conn: &mut Conn,
    b: &NewBatch,
    audit: Option<&NewAuditEntry>,
) -> Result<BatchAck> {
    let key = b.idempotency_key();
    let mut tx = conn.begin()?;
    let claimed = tx.one_or_none(
        "INSERT INTO batches (batch_key, patient_id, device, received_at, ack)
         VALUES ($1, $2, $3, $4, '')
         ON CONFLICT (batch_key) DO NOTHING RETURNING id",
        &[&&key[..], &b.patient, &b.device, &micros(b.received_at)],
    )?;
    let Some(row) = claimed else {
        let text: String = tx
            .one("SELECT ack FROM batches WHERE batch_key = $1", &[&&key[..]])?
            .get(0);
        let mut ack: BatchAck = serde_json::from_str(&text).map_err(json_error)?;
        ack.duplicate = true;
        touch_contact(&mut tx, b.patient, b.received_at)?;
        audit_in(&mut tx, audit)?;
        tx.commit()?;
        return Ok(ack);
    };
    let batch_row: i64 = row.get(0);
    lock_series(&mut tx, b)?;
    let mut outcomes = Vec::with_capacity(b.groups.len());
    for g in &b.groups {
        outcomes.push(store_group(&mut tx, b, g, batch_row)?);
    }
    append_days(&mut tx, b, &glucose_days_of(b), &outcomes)?;
    let ack = assemble_ack(b, &outcomes);
    let text = serde_json::to_string(&ack).map_err(json_error)?;
    tx.exec(
        "UPDATE batches SET ack = $1 WHERE id = $2",
        &[&text, &batch_row],
    )?;
    touch_contact(&mut tx, b.patient, b.received_at)?;
    audit_in(&mut tx, audit)?;
    tx.commit()?;
    Ok(ack)
}

/// The advisory-lock key of one series: FNV-1a 64 over its patient,
/// device, stream and session, each length-prefixed so that no two series
/// spell the same bytes. A collision only makes two series wait for each
/// other; it never mixes their rows.
fn series_lock_key(patient: PatientId, device: &str, stream: &str, session: i64) -> i64 {
    let mut h = fnv::FnvHasher::default();
    h.write(&patient.to_le_bytes());
    h.write(&(device.len() as u64).to_le_bytes());
    h.write(device.as_bytes());
    h.write(&(stream.len() as u64).to_le_bytes());
    h.write(stream.as_bytes());
    h.write(&session.to_le_bytes());
    i64::from_le_bytes(h.finish().to_le_bytes())
}

/// Takes the advisory lock of every series the batch writes, for the rest
/// of the transaction, in one round trip. The unique key of the
/// partitioned table holds `time` (migration 0022), so it no longer stops
/// a second writer from storing the same seq at another time; the lock
/// does: whoever holds a series' lock sees every row of it that was
/// committed before. Keys are taken in ascending order, so two batches
/// that share series cannot deadlock. Advisory locks write no WAL.
fn lock_series(tx: &mut Tx<'_>, b: &NewBatch) -> Result<()> {
    let mut keys: Vec<i64> = b
        .groups
        .iter()
        .map(|g| {
            series_lock_key(
                b.patient,
                &b.device,
                g.stream.as_str(),
                session_column(g.session),
            )
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if !keys.is_empty() {
        tx.rows(
            "SELECT pg_advisory_xact_lock(k)
               FROM (SELECT k FROM UNNEST($1::BIGINT[]) AS k ORDER BY k) AS keys",
            &[&keys],
        )?;
    }
    Ok(())
}

/// Stores one stream group in one round trip whatever its size, under its
/// series' lock ([`lock_series`]). One statement looks up the series' rows
/// whose seq lies in the group's [min, max] (a range: one index descent per
/// partition, not one per seq; a re-sent seq can sit in any month, so no
/// partition is pruned) and inserts, from UNNEST, the readings whose seq is
/// not among them; it returns both. Rust keeps the first copy of a seq the
/// batch repeats and decides each reading's outcome as before: inserted,
/// already stored (same value, or a held-back estimate on either side) or
/// a conflict.
///
/// The insert has no `ON CONFLICT` arm: under the lock no row of a seq the
/// look-up missed can exist, and the arm's speculative insertion descends
/// the unique index once more per row (about 40 % of a 33-reading insert).
/// Were a row to appear anyway, the unique key fails the batch whole
/// rather than storing it twice.
fn store_group(
    tx: &mut Tx<'_>,
    b: &NewBatch,
    g: &NewGroup,
    batch_row: i64,
) -> Result<Vec<ReadingOutcome>> {
    let stream = g.stream.as_str();
    let session = session_column(g.session);
    let characteristic = i32::from(g.characteristic);
    // The first copy of each seq: a later one meets it as stored.
    let mut seen = HashSet::with_capacity(g.readings.len());
    let firsts: Vec<_> = g
        .readings
        .iter()
        .filter(|r| seen.insert(seq_column(r.seq)))
        .collect();
    let seqs: Vec<i64> = firsts.iter().map(|r| seq_column(r.seq)).collect();
    let (Some(&lowest), Some(&highest)) = (seqs.iter().min(), seqs.iter().max()) else {
        return Ok(Vec::new());
    };
    let times: Vec<i64> = firsts.iter().map(|r| micros(r.time)).collect();
    let values: Vec<f64> = firsts.iter().map(|r| r.value).collect();
    let quality: Vec<Option<f64>> = firsts.iter().map(|r| r.quality_percent).collect();
    let flagged: Vec<bool> = firsts.iter().map(|r| r.quality_flagged).collect();
    let held: Vec<bool> = firsts.iter().map(|r| r.held_back).collect();
    let raw: Vec<Option<&[u8]>> = firsts.iter().map(|r| r.raw.as_deref()).collect();
    let rows = tx.rows(
        "WITH stored AS (
             SELECT seq, value, held_back FROM readings
              WHERE patient_id = $1 AND device = $2 AND stream = $3 AND session = $4
                AND seq BETWEEN $15 AND $16
         ), fresh AS (
             INSERT INTO readings (patient_id, device, stream, session, seq, time, value,
                 quality_percent, quality_flagged, characteristic, tolerance, held_back, raw,
                 batch_id)
             SELECT $1, $2, $3, $4, u.seq, u.time, u.value, u.quality, u.flagged, $5, $6,
                    u.held, u.raw, $7
               FROM UNNEST($8::BIGINT[], $9::BIGINT[], $10::DOUBLE PRECISION[],
                           $11::DOUBLE PRECISION[], $12::BOOLEAN[], $13::BOOLEAN[],
                           $14::BYTEA[])
                 AS u(seq, time, value, quality, flagged, held, raw)
              WHERE NOT EXISTS (SELECT 1 FROM stored s WHERE s.seq = u.seq)
             RETURNING seq
         )
         SELECT seq, value, held_back, FALSE FROM stored
         UNION ALL
         SELECT seq, NULL, NULL, TRUE FROM fresh",
        &[
            &b.patient,
            &b.device,
            &stream,
            &session,
            &characteristic,
            &g.tolerance,
            &batch_row,
            &seqs,
            &times,
            &values,
            &quality,
            &flagged,
            &held,
            &raw,
            &lowest,
            &highest,
        ],
    )?;
    let mut inserted: HashSet<i64> = HashSet::new();
    let mut existing: HashMap<i64, (f64, bool)> = HashMap::new();
    for r in &rows {
        let seq: i64 = r.try_get(0)?;
        if r.try_get(3)? {
            inserted.insert(seq);
        } else if seen.contains(&seq) {
            // The range holds the series' other seqs too: only the group's
            // own are wanted.
            existing.insert(seq, (r.try_get(1)?, r.try_get(2)?));
        }
    }
    let mut out = Vec::with_capacity(g.readings.len());
    for r in &g.readings {
        let seq = seq_column(r.seq);
        if inserted.remove(&seq) {
            // A later copy of this seq in the same batch meets this row.
            existing.insert(seq, (r.value, r.held_back));
            out.push(ReadingOutcome::Inserted);
            continue;
        }
        let (value, held) = existing
            .get(&seq)
            .copied()
            .ok_or_else(|| Error::Internal("a reading neither inserted nor stored".into()))?;
        // A reconstructed value on either side is an estimate: the stored
        // row stands and the reading counts as stored.
        out.push(
            if held || r.held_back || value.to_bits() == r.value.to_bits() {
                ReadingOutcome::AlreadyStored
            } else {
                ReadingOutcome::Conflict
            },
        );
    }
    Ok(out)
}

/// The columns [`reading_row`] maps, as a literal so that `concat!` builds
/// whole statements the connection can cache.
macro_rules! reading_columns {
    () => {
        "device, stream, session, seq, time, value, quality_percent,
         quality_flagged, characteristic, tolerance, held_back"
    };
}

fn reading_row(r: &Row) -> Result<StoredReading> {
    let stream: String = r.get(1);
    let characteristic: i32 = r.get(8);
    Ok(StoredReading {
        device: r.get(0),
        stream: Stream::parse(&stream)
            .ok_or_else(|| Error::Internal("a stored reading names an unknown stream".into()))?,
        session: session_from_column(r.get(2)),
        seq: seq_from_column(r.get(3)),
        time: from_micros(r.get(4)),
        value: r.get(5),
        quality_percent: r.get(6),
        quality_flagged: r.get(7),
        characteristic: u16::try_from(characteristic)
            .map_err(|_| Error::Internal("a stored characteristic is out of range".into()))?,
        tolerance: r.get(9),
        held_back: r.get(10),
    })
}

/// Walks the patient's stream back in time from `at` (the
/// `(patient_id, stream, time)` index) and stops at the series' first kept
/// reading: a few index entries. Device and session are compared with
/// `IS NOT DISTINCT FROM` (the same for these NOT NULL columns) because
/// that is not an index condition: with `=` the planner takes the four
/// equalities for a handful of rows, as if device did not follow from
/// patient, and reads the series' whole history through the unique key to
/// sort it (about 220 buffer reads a call at the capacity bench's 600,000
/// patients; 45 % of the database's time).
pub(super) fn kept_reading_before(
    conn: &mut Conn,
    key: &SeriesKey,
    at: DateTime<Utc>,
) -> Result<Option<StoredReading>> {
    conn.one_or_none(
        concat!(
            "SELECT ",
            reading_columns!(),
            " FROM readings
             WHERE patient_id = $1 AND stream = $3 AND time < $5 AND NOT held_back
               AND device IS NOT DISTINCT FROM $2 AND session IS NOT DISTINCT FROM $4
             ORDER BY time DESC LIMIT 1"
        ),
        &[
            &key.patient,
            &key.device,
            &key.stream.as_str(),
            &session_column(key.session),
            &micros(at),
        ],
    )?
    .as_ref()
    .map(reading_row)
    .transpose()
}

pub(super) fn sequences_between(
    conn: &mut Conn,
    key: &SeriesKey,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, u64)>> {
    let rows = conn.rows(
        "SELECT time, seq FROM readings
         WHERE patient_id = $1 AND stream = $2 AND time >= $3 AND time <= $4
           AND device = $5 AND session = $6",
        &[
            &key.patient,
            &key.stream.as_str(),
            &micros(from),
            &micros(to),
            &key.device,
            &session_column(key.session),
        ],
    )?;
    rows.iter()
        .map(|r| Ok((from_micros(r.try_get(0)?), seq_from_column(r.try_get(1)?))))
        .collect()
}

pub(super) fn readings(conn: &mut Conn, q: &ReadingQuery) -> Result<Vec<StoredReading>> {
    conn.rows(
        concat!(
            "SELECT ",
            reading_columns!(),
            " FROM readings
             WHERE patient_id = $1 AND time >= $2 AND time < $3
               AND ($4::TEXT IS NULL OR stream = $4)
             ORDER BY time, id LIMIT $5"
        ),
        &[
            &q.patient,
            &micros(q.from),
            &micros(q.to),
            &q.stream.map(Stream::as_str),
            &i64::from(q.limit),
        ],
    )?
    .iter()
    .map(reading_row)
    .collect()
}

pub(super) fn store_alert(
    conn: &mut Conn,
    a: &NewAlert,
    contact: bool,
    audit: Option<&NewAuditEntry>,
) -> Result<bool> {
    let mut tx = conn.begin()?;
    let n = tx.exec(
        "INSERT INTO alert_events (patient_id, alert_id, device, kind, phase, time, value,
             detail, received_at, phone_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT DO NOTHING",
        &[
            &a.patient,
            &a.alert_id,
            &a.device,
            &a.kind,
            &a.phase,
            &micros(a.time),
            &a.value,
            &a.detail,
            &micros(a.received_at),
            &micros(a.phone_time),
        ],
    )?;
    if contact {
        touch_contact(&mut tx, a.patient, a.received_at)?;
    }
    audit_in(&mut tx, audit)?;
    tx.commit()?;
    Ok(n == 1)
}

pub(super) fn alert_acks(
    conn: &mut Conn,
    patient: PatientId,
    alert_id: &str,
) -> Result<Vec<AlertAckRecord>> {
    Ok(conn
        .rows(
            "SELECT a.token_id, a.at, COALESCE(c.name, t.label, t.role)
              FROM alert_acks a
              LEFT JOIN tokens t ON t.id = a.token_id
              LEFT JOIN clinicians c ON c.id = t.clinician_id
              WHERE a.patient_id = $1 AND a.alert_id = $2
              ORDER BY a.at, a.token_id",
            &[&patient, &alert_id],
        )?
        .iter()
        .map(|r| AlertAckRecord {
            token_id: r.get(0),
            at: from_micros(r.get(1)),
            by: r
                .get::<_, Option<String>>(2)
                .unwrap_or_else(|| "a deleted token".into()),
        })
        .collect())
}

pub(super) fn alerts_for(
    conn: &mut Conn,
    patients: &[PatientId],
    since: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<StoredAlert>> {
    let rows = conn.query(
        "SELECT patient_id, alert_id, device, kind, phase, time, value, detail, received_at,
                COALESCE(phone_time, time)
         FROM alert_events WHERE patient_id = ANY($1) AND time >= $2
         ORDER BY time, id LIMIT $3",
        &[&patients, &micros(since), &i64::from(limit)],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let alert = NewAlert {
            patient: r.get(0),
            alert_id: r.get(1),
            device: r.get(2),
            kind: r.get(3),
            phase: r.get(4),
            time: from_micros(r.get(5)),
            value: r.get(6),
            detail: r.get(7),
            received_at: from_micros(r.get(8)),
            phone_time: from_micros(r.get(9)),
        };
        let acks = alert_acks(conn, alert.patient, &alert.alert_id)?;
        out.push(StoredAlert { alert, acks });
    }
    Ok(out)
}

pub(super) fn alert_patients(conn: &mut Conn, alert_id: &str) -> Result<Vec<PatientId>> {
    Ok(conn
        .query(
            "SELECT DISTINCT patient_id FROM alert_events WHERE alert_id = $1 ORDER BY patient_id",
            &[&alert_id],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

pub(super) fn ack_alert(
    conn: &mut Conn,
    patient: PatientId,
    alert_id: &str,
    token: TokenId,
    at: DateTime<Utc>,
) -> Result<bool> {
    let n = conn.execute(
        "INSERT INTO alert_acks (patient_id, alert_id, token_id, at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (patient_id, alert_id, token_id) DO NOTHING",
        &[&patient, &alert_id, &token, &micros(at)],
    )?;
    Ok(n == 1)
}

pub(super) fn store_heartbeat(
    conn: &mut Conn,
    h: &NewHeartbeat,
    audit: Option<&NewAuditEntry>,
) -> Result<()> {
    let mut tx = conn.begin()?;
    tx.exec(
        "INSERT INTO heartbeats (patient_id, sent_at, received_at, body) VALUES ($1, $2, $3, $4)
         ON CONFLICT (patient_id) DO UPDATE SET sent_at = excluded.sent_at,
             received_at = excluded.received_at, body = excluded.body
         WHERE excluded.sent_at >= heartbeats.sent_at",
        &[
            &h.patient,
            &micros(h.sent_at),
            &micros(h.received_at),
            &h.body,
        ],
    )?;
    touch_contact(&mut tx, h.patient, h.received_at)?;
    audit_in(&mut tx, audit)?;
    tx.commit()
}

pub(super) fn record_contact(
    conn: &mut Conn,
    patient: PatientId,
    at: DateTime<Utc>,
    audit: Option<&NewAuditEntry>,
) -> Result<()> {
    let mut tx = conn.begin()?;
    touch_contact(&mut tx, patient, at)?;
    audit_in(&mut tx, audit)?;
    tx.commit()
}

pub(super) fn latest_heartbeat(
    conn: &mut Conn,
    patient: PatientId,
) -> Result<Option<NewHeartbeat>> {
    Ok(conn
        .query_opt(
            "SELECT patient_id, sent_at, received_at, body FROM heartbeats WHERE patient_id = $1",
            &[&patient],
        )?
        .map(|r| NewHeartbeat {
            patient: r.get(0),
            sent_at: from_micros(r.get(1)),
            received_at: from_micros(r.get(2)),
            body: r.get(3),
        }))
}

pub(super) fn contacts(conn: &mut Conn) -> Result<Vec<Contact>> {
    Ok(conn
        .query(
            "SELECT patient_id, last_contact, silent_alert_id, silent_since FROM patient_contact
             ORDER BY patient_id",
            &[],
        )?
        .iter()
        .map(|r| {
            let alert: Option<String> = r.get(2);
            let since: Option<i64> = r.get(3);
            Contact {
                patient: r.get(0),
                last_contact: from_micros(r.get(1)),
                silence: alert.zip(since).map(|(alert_id, since)| Silence {
                    alert_id,
                    since: from_micros(since),
                }),
            }
        })
        .collect())
}

pub(super) fn set_silence(
    conn: &mut Conn,
    patient: PatientId,
    expected: Option<&str>,
    silence: Option<&Silence>,
) -> Result<bool> {
    let n = match silence {
        Some(s) => conn.execute(
            "UPDATE patient_contact SET silent_alert_id = $1, silent_since = $2
             WHERE patient_id = $3 AND silent_alert_id IS NULL",
            &[&s.alert_id, &micros(s.since), &patient],
        )?,
        None => conn.execute(
            "UPDATE patient_contact SET silent_alert_id = NULL, silent_since = NULL
             WHERE patient_id = $1 AND silent_alert_id = $2",
            &[&patient, &expected],
        )?,
    };
    Ok(n == 1)
}

/// Bumps the generation of the batch's glucose days (creating the rows) in
/// its transaction, so no summary outlives a write that changed its day,
/// and in the same round trip reads them back with the patient's glucose
/// policy;
/// then brings up to date, in the batch's transaction, the days
/// `glucose_days::append` can. The rest stay stale for
/// `glucose_days::after_batch` to recompute.
fn append_days(
    tx: &mut Tx<'_>,
    b: &NewBatch,
    days: &[i64],
    outcomes: &[Vec<ReadingOutcome>],
) -> Result<()> {
    if days.is_empty() {
        return Ok(());
    }
    let found = tx.rows(
        "INSERT INTO glucose_days (patient_id, day) SELECT $1, d FROM UNNEST($2::BIGINT[]) AS d
         ON CONFLICT (patient_id, day) DO UPDATE SET stale = glucose_days.stale + 1
         RETURNING day, stale, fresh, readings, very_low, low, in_range, tight, high, very_high,
                   slots, sum_mg_dl, series, last_raw, last_point,
                   (SELECT policy FROM precedence_policies
                     WHERE patient_id = $1 AND quantity = 'glucose')",
        &[&b.patient, &days],
    )?;
    let policy: Option<String> = found.first().and_then(|r| r.get(15));
    let rows: Vec<DayRow> = found
        .iter()
        .map(|r| DayRow {
            day: r.get(0),
            stale: r.get(1),
            fresh: r.get(2),
            counts: day_counts(r, 3),
            tail: DayTail {
                series: r.get(12),
                last_raw: r.get(13),
                last_point: r.get(14),
            },
        })
        .collect();
    let window = crate::glucose_days::window_policy(policy.as_deref());
    for (day, generation, counts, tail) in crate::glucose_days::appended(b, outcomes, &rows, window)
    {
        tx.exec(
            PUT_DAY,
            &put_day_params(&b.patient, &day, &generation, &counts, &tail),
        )?;
    }
    Ok(())
}

/// A day's counts from nine columns of `r` from `first` on, in
/// [`DayCounts`]' field order (every statement that reads them lists them so).
fn day_counts(r: &Row, first: usize) -> DayCounts {
    DayCounts {
        readings: r.get(first),
        very_low: r.get(first + 1),
        low: r.get(first + 2),
        in_range: r.get(first + 3),
        tight: r.get(first + 4),
        high: r.get(first + 5),
        very_high: r.get(first + 6),
        slots: r.get(first + 7),
        sum_mg_dl: r.get(first + 8),
    }
}

/// Stores a day's counts if its generation is still `$3`.
const PUT_DAY: &str = "UPDATE glucose_days SET fresh = $3, readings = $4, very_low = $5, low = $6,
        in_range = $7, tight = $8, high = $9, very_high = $10, slots = $11, sum_mg_dl = $12,
        series = $13, last_raw = $14, last_point = $15
  WHERE patient_id = $1 AND day = $2 AND stale = $3";

fn put_day_params<'a>(
    patient: &'a PatientId,
    day: &'a i64,
    generation: &'a i64,
    c: &'a DayCounts,
    t: &'a DayTail,
) -> [&'a (dyn postgres::types::ToSql + Sync); 15] {
    [
        patient,
        day,
        generation,
        &c.readings,
        &c.very_low,
        &c.low,
        &c.in_range,
        &c.tight,
        &c.high,
        &c.very_high,
        &c.slots,
        &c.sum_mg_dl,
        &t.series,
        &t.last_raw,
        &t.last_point,
    ]
}

/// The statement `head WHERE <the scope's filter> AND tail` and the id the
/// filter binds as `$1`. Each variant is a whole literal, so the connection
/// caches it like any other hot statement.
macro_rules! scoped {
    ($scope:expr, $head:literal, $tail:literal) => {
        match $scope {
            DayScope::Patient(p) => (concat!($head, " WHERE g.patient_id = $1 AND ", $tail), p),
            DayScope::Clinician(c) => (
                concat!(
                    $head,
                    " WHERE g.patient_id IN
                         (SELECT patient_id FROM clinician_patients WHERE clinician_id = $1)
                       AND ",
                    $tail
                ),
                c,
            ),
        }
    };
}

pub(super) fn glucose_days(
    conn: &mut Conn,
    scope: DayScope,
    from_day: i64,
    to_day: i64,
) -> Result<Vec<GlucoseDay>> {
    let (sql, id) = scoped!(
        scope,
        "SELECT g.patient_id, g.day, COALESCE(g.fresh = g.stale, FALSE), g.readings,
                g.very_low, g.low, g.in_range, g.tight, g.high, g.very_high, g.slots,
                g.sum_mg_dl
           FROM glucose_days g",
        "g.day >= $2 AND g.day < $3 ORDER BY g.patient_id, g.day"
    );
    let rows = conn.rows(sql, &[&id, &from_day, &to_day])?;
    Ok(rows
        .iter()
        .map(|r| GlucoseDay {
            patient: r.get(0),
            day: r.get(1),
            current: r.get(2),
            counts: day_counts(r, 3),
        })
        .collect())
}

pub(super) fn stale_glucose_days(
    conn: &mut Conn,
    scope: DayScope,
    from_day: i64,
    to_day: i64,
) -> Result<Vec<StaleDay>> {
    let (sql, id) = scoped!(
        scope,
        "SELECT g.patient_id, g.day, g.stale FROM glucose_days g",
        "g.day >= $2 AND g.day < $3 AND (g.fresh IS NULL OR g.fresh <> g.stale)
         ORDER BY g.patient_id, g.day"
    );
    let rows = conn.rows(sql, &[&id, &from_day, &to_day])?;
    Ok(rows
        .iter()
        .map(|r| StaleDay {
            patient: r.get(0),
            day: r.get(1),
            generation: r.get(2),
        })
        .collect())
}

pub(super) fn put_glucose_day(
    conn: &mut Conn,
    patient: PatientId,
    day: i64,
    generation: i64,
    c: &DayCounts,
    t: &DayTail,
) -> Result<bool> {
    let n = conn.exec(PUT_DAY, &put_day_params(&patient, &day, &generation, c, t))?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::series_lock_key;

    #[test]
    fn series_lock_keys_take_any_input_and_tell_shifted_fields_apart() {
        let edge = series_lock_key(i64::MIN, "", "", i64::MAX);
        assert_ne!(edge, series_lock_key(i64::MAX, "", "", i64::MIN));
        let long = "\u{10ffff}".repeat(10_000);
        series_lock_key(-1, &long, &long, -1);
        // Length prefixes: moving a byte from device to stream is another series.
        assert_ne!(
            series_lock_key(1, "ab", "c", 0),
            series_lock_key(1, "a", "bc", 0)
        );
        // FNV-1a 64 worked out apart from this code: replicas of two
        // releases must take the same lock for the same series.
        assert_eq!(
            series_lock_key(7, "cgm", "glucose", 4),
            -4_487_647_822_779_353_749
        );
    }
}

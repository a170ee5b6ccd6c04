//! The SQLite side of intake: batches, readings, alerts, heartbeats and the
//! dead-man's switch state. Free functions over a connection so
//! [`super::SqliteStorage`]'s trait impl stays a list of one-liners.
//!
//! Every statement here is also valid PostgreSQL apart from `?N`
//! placeholders (`$N` there): `ON CONFLICT ... DO NOTHING / DO UPDATE ...
//! WHERE` and `CASE` instead of SQLite's two-argument `MAX`.

use std::ops::DerefMut;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use vigil_model::reading::Stream;
use vigil_model::wire::BatchAck;

use crate::domain::{PatientId, TokenId};
use crate::error::{Error, Result};
use crate::storage::intake::{
    AlertAckRecord, Contact, DayCounts, DayRow, DayScope, DayTail, GlucoseDay, NewAlert, NewBatch,
    NewHeartbeat, ReadingOutcome, ReadingQuery, SeriesKey, Silence, StaleDay, StoredAlert,
    StoredReading, assemble_ack, from_micros, glucose_days_of, micros, seq_column, seq_from_column,
    session_column, session_from_column,
};

fn touch_contact(tx: &Transaction<'_>, patient: PatientId, at: DateTime<Utc>) -> Result<()> {
    tx.execute(
        "INSERT INTO patient_contact (patient_id, last_contact) VALUES (?1, ?2)
         ON CONFLICT (patient_id) DO UPDATE SET last_contact =
             CASE WHEN excluded.last_contact > patient_contact.last_contact
                  THEN excluded.last_contact ELSE patient_contact.last_contact END",
        params![patient, micros(at)],
    )?;
    Ok(())
}

fn json_error(e: serde_json::Error) -> Error {
    Error::Internal(format!("stored acknowledgement: {e}"))
}

/// Readings one write transaction stores at most. A larger batch is
/// written chunk by chunk, each chunk its own transaction, and the writer's
/// lock is handed to whoever waits between chunks: another tenant's small
/// batch waits for one chunk (a few milliseconds), not for the whole batch.
/// The batch row goes in first with an empty acknowledgement and gets its
/// acknowledgement in the last transaction, so a retry after a crash in
/// between finds the row unfinished and completes it: readings already
/// stored count as stored, none twice. Readers may see part of a large
/// batch before it is acknowledged, as they may see any committed reading
/// before the phone hears of it.
pub(super) const CHUNK: usize = 500;

/// Stores a batch once, taking the write connection from `writer` for each
/// transaction (see [`CHUNK`]).
pub(super) fn store_batch<G: DerefMut<Target = Connection>>(
    writer: impl Fn() -> G,
    b: &NewBatch,
) -> Result<BatchAck> {
    let key = b.idempotency_key();
    let positions: Vec<(usize, usize)> = b
        .groups
        .iter()
        .enumerate()
        .flat_map(|(g, group)| (0..group.readings.len()).map(move |r| (g, r)))
        .collect();
    let mut chunks = positions.chunks(CHUNK);
    let first = chunks.next().unwrap_or(&[]);
    let days = glucose_days_of(b);
    let mut outcomes: Vec<Vec<ReadingOutcome>> = b
        .groups
        .iter()
        .map(|g| Vec::with_capacity(g.readings.len()))
        .collect();

    let mut conn = writer();
    // IMMEDIATE: take the write lock up front, so two writers never both
    // read "unseen" and then race to insert.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let seen: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, ack FROM batches WHERE batch_key = ?1",
            [&key[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let batch_row = match seen {
        Some((_, text)) if !text.is_empty() => {
            let mut ack: BatchAck = serde_json::from_str(&text).map_err(json_error)?;
            ack.duplicate = true;
            touch_contact(&tx, b.patient, b.received_at)?;
            tx.commit()?;
            return Ok(ack);
        }
        // An earlier attempt stopped between chunks: finish it.
        Some((row, _)) => row,
        None => {
            tx.execute(
                "INSERT INTO batches (batch_key, patient_id, device, received_at, ack)
                 VALUES (?1, ?2, ?3, ?4, '')",
                params![&key[..], b.patient, b.device, micros(b.received_at)],
            )?;
            tx.last_insert_rowid()
        }
    };
    insert_chunk(&tx, b, batch_row, first, &days, &mut outcomes)?;
    if positions.len() <= CHUNK {
        append_days(&tx, b, &days, &outcomes)?;
        let ack = finish_batch(&tx, b, batch_row, &outcomes)?;
        tx.commit()?;
        return Ok(ack);
    }
    tx.commit()?;
    drop(conn);
    for chunk in chunks {
        let mut conn = writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert_chunk(&tx, b, batch_row, chunk, &days, &mut outcomes)?;
        tx.commit()?;
    }
    let mut conn = writer();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ack = finish_batch(&tx, b, batch_row, &outcomes)?;
    tx.commit()?;
    Ok(ack)
}

/// Inserts the readings at `chunk` (group, reading) positions and marks the
/// batch's glucose days stale in the same transaction, so no summary
/// outlives a write that changed its day.
fn insert_chunk(
    tx: &Transaction<'_>,
    b: &NewBatch,
    batch_row: i64,
    chunk: &[(usize, usize)],
    days: &[i64],
    outcomes: &mut [Vec<ReadingOutcome>],
) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO readings (patient_id, device, stream, session, seq, time, value,
             quality_percent, quality_flagged, characteristic, tolerance, held_back, raw,
             batch_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (patient_id, device, stream, session, seq) DO NOTHING",
    )?;
    let mut existing = tx.prepare_cached(
        "SELECT value, held_back FROM readings
         WHERE patient_id = ?1 AND device = ?2 AND stream = ?3 AND session = ?4 AND seq = ?5",
    )?;
    for &(gi, ri) in chunk {
        let (Some(g), Some(out)) = (b.groups.get(gi), outcomes.get_mut(gi)) else {
            return Err(Error::Internal(
                "a reading position outside its batch".into(),
            ));
        };
        let Some(r) = g.readings.get(ri) else {
            return Err(Error::Internal(
                "a reading position outside its group".into(),
            ));
        };
        let stream = g.stream.as_str();
        let session = session_column(g.session);
        let n = insert.execute(params![
            b.patient,
            b.device,
            stream,
            session,
            seq_column(r.seq),
            micros(r.time),
            r.value,
            r.quality_percent,
            r.quality_flagged,
            g.characteristic,
            g.tolerance,
            r.held_back,
            r.raw,
            batch_row,
        ])?;
        if n == 1 {
            out.push(ReadingOutcome::Inserted);
            continue;
        }
        let (value, held): (f64, bool) = existing.query_row(
            params![b.patient, b.device, stream, session, seq_column(r.seq)],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
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
    mark_days_stale(tx, b.patient, days)?;
    Ok(())
}

/// Writes the batch's acknowledgement (which makes it a finished batch for
/// a retry) and the phone's contact time.
fn finish_batch(
    tx: &Transaction<'_>,
    b: &NewBatch,
    batch_row: i64,
    outcomes: &[Vec<ReadingOutcome>],
) -> Result<BatchAck> {
    let ack = assemble_ack(b, outcomes);
    let text = serde_json::to_string(&ack).map_err(json_error)?;
    tx.execute(
        "UPDATE batches SET ack = ?1 WHERE id = ?2",
        params![text, batch_row],
    )?;
    touch_contact(tx, b.patient, b.received_at)?;
    Ok(ack)
}

const READING_COLUMNS: &str = "device, stream, session, seq, time, value, quality_percent,
     quality_flagged, characteristic, tolerance, held_back";

fn reading_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(StoredReading, String)> {
    let stream: String = r.get(1)?;
    Ok((
        StoredReading {
            device: r.get(0)?,
            stream: Stream::Glucose,
            session: session_from_column(r.get(2)?),
            seq: seq_from_column(r.get(3)?),
            time: from_micros(r.get(4)?),
            value: r.get(5)?,
            quality_percent: r.get(6)?,
            quality_flagged: r.get(7)?,
            characteristic: r.get(8)?,
            tolerance: r.get(9)?,
            held_back: r.get(10)?,
        },
        stream,
    ))
}

fn with_stream((mut reading, stream): (StoredReading, String)) -> Result<StoredReading> {
    reading.stream = Stream::parse(&stream)
        .ok_or_else(|| Error::Internal("a stored reading names an unknown stream".into()))?;
    Ok(reading)
}

pub(super) fn kept_reading_before(
    conn: &Connection,
    key: &SeriesKey,
    at: DateTime<Utc>,
) -> Result<Option<StoredReading>> {
    let row = conn
        .query_row(
            &format!(
                "SELECT {READING_COLUMNS} FROM readings
                 WHERE patient_id = ?1 AND device = ?2 AND stream = ?3 AND session = ?4
                   AND held_back = 0 AND time < ?5
                 ORDER BY time DESC LIMIT 1"
            ),
            params![
                key.patient,
                key.device,
                key.stream.as_str(),
                session_column(key.session),
                micros(at)
            ],
            reading_row,
        )
        .optional()?;
    row.map(with_stream).transpose()
}

pub(super) fn sequences_between(
    conn: &Connection,
    key: &SeriesKey,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT time, seq FROM readings
         WHERE patient_id = ?1 AND stream = ?2 AND time >= ?3 AND time <= ?4
           AND device = ?5 AND session = ?6",
    )?;
    let rows = stmt.query_map(
        params![
            key.patient,
            key.stream.as_str(),
            micros(from),
            micros(to),
            key.device,
            session_column(key.session)
        ],
        |r| Ok((from_micros(r.get(0)?), seq_from_column(r.get(1)?))),
    )?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn readings(conn: &Connection, q: &ReadingQuery) -> Result<Vec<StoredReading>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {READING_COLUMNS} FROM readings
         WHERE patient_id = ?1 AND time >= ?2 AND time < ?3
           AND (?4 IS NULL OR stream = ?4)
         ORDER BY time, id LIMIT ?5"
    ))?;
    let rows = stmt.query_map(
        params![
            q.patient,
            micros(q.from),
            micros(q.to),
            q.stream.map(Stream::as_str),
            q.limit
        ],
        reading_row,
    )?;
    let mut out = Vec::new();
    for row in rows {
        out.push(with_stream(row?)?);
    }
    Ok(out)
}

pub(super) fn store_alert(conn: &mut Connection, a: &NewAlert, contact: bool) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx.execute(
        "INSERT INTO alert_events (patient_id, alert_id, device, kind, phase, time, value,
             detail, received_at, phone_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT DO NOTHING",
        params![
            a.patient,
            a.alert_id,
            a.device,
            a.kind,
            a.phase,
            micros(a.time),
            a.value,
            a.detail,
            micros(a.received_at),
            micros(a.phone_time)
        ],
    )?;
    if contact {
        touch_contact(&tx, a.patient, a.received_at)?;
    }
    tx.commit()?;
    Ok(n == 1)
}

pub(super) fn alert_acks(
    conn: &Connection,
    patient: PatientId,
    alert_id: &str,
) -> Result<Vec<AlertAckRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.token_id, a.at, COALESCE(c.name, t.label, t.role)
          FROM alert_acks a
          LEFT JOIN tokens t ON t.id = a.token_id
          LEFT JOIN clinicians c ON c.id = t.clinician_id
          WHERE a.patient_id = ?1 AND a.alert_id = ?2
          ORDER BY a.at, a.token_id",
    )?;
    let rows = stmt.query_map(params![patient, alert_id], |r| {
        Ok(AlertAckRecord {
            token_id: r.get(0)?,
            at: from_micros(r.get(1)?),
            by: r
                .get::<_, Option<String>>(2)?
                .unwrap_or_else(|| "a deleted token".into()),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn alerts_for(
    conn: &Connection,
    patients: &[PatientId],
    since: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<StoredAlert>> {
    let mut all = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT patient_id, alert_id, device, kind, phase, time, value, detail, received_at,
                COALESCE(phone_time, time)
         FROM alert_events WHERE patient_id = ?1 AND time >= ?2 ORDER BY time, id LIMIT ?3",
    )?;
    for p in patients {
        let rows = stmt.query_map(params![p, micros(since), limit], |r| {
            Ok(NewAlert {
                patient: r.get(0)?,
                alert_id: r.get(1)?,
                device: r.get(2)?,
                kind: r.get(3)?,
                phase: r.get(4)?,
                time: from_micros(r.get(5)?),
                value: r.get(6)?,
                detail: r.get(7)?,
                received_at: from_micros(r.get(8)?),
                phone_time: from_micros(r.get(9)?),
            })
        })?;
        for row in rows {
            all.push(row?);
        }
    }
    all.sort_by_key(|a| a.time);
    all.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    all.into_iter()
        .map(|alert| {
            let acks = alert_acks(conn, alert.patient, &alert.alert_id)?;
            Ok(StoredAlert { alert, acks })
        })
        .collect()
}

pub(super) fn alert_patients(conn: &Connection, alert_id: &str) -> Result<Vec<PatientId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT patient_id FROM alert_events WHERE alert_id = ?1 ORDER BY patient_id",
    )?;
    let rows = stmt.query_map([alert_id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn ack_alert(
    conn: &Connection,
    patient: PatientId,
    alert_id: &str,
    token: TokenId,
    at: DateTime<Utc>,
) -> Result<bool> {
    let n = conn.execute(
        "INSERT INTO alert_acks (patient_id, alert_id, token_id, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (patient_id, alert_id, token_id) DO NOTHING",
        params![patient, alert_id, token, micros(at)],
    )?;
    Ok(n == 1)
}

pub(super) fn store_heartbeat(conn: &mut Connection, h: &NewHeartbeat) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO heartbeats (patient_id, sent_at, received_at, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (patient_id) DO UPDATE SET sent_at = excluded.sent_at,
             received_at = excluded.received_at, body = excluded.body
         WHERE excluded.sent_at >= heartbeats.sent_at",
        params![h.patient, micros(h.sent_at), micros(h.received_at), h.body],
    )?;
    touch_contact(&tx, h.patient, h.received_at)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn record_contact(
    conn: &mut Connection,
    patient: PatientId,
    at: DateTime<Utc>,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    touch_contact(&tx, patient, at)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn latest_heartbeat(
    conn: &Connection,
    patient: PatientId,
) -> Result<Option<NewHeartbeat>> {
    Ok(conn
        .query_row(
            "SELECT patient_id, sent_at, received_at, body FROM heartbeats WHERE patient_id = ?1",
            [patient],
            |r| {
                Ok(NewHeartbeat {
                    patient: r.get(0)?,
                    sent_at: from_micros(r.get(1)?),
                    received_at: from_micros(r.get(2)?),
                    body: r.get(3)?,
                })
            },
        )
        .optional()?)
}

pub(super) fn contacts(conn: &Connection) -> Result<Vec<Contact>> {
    let mut stmt = conn.prepare_cached(
        "SELECT patient_id, last_contact, silent_alert_id, silent_since FROM patient_contact
         ORDER BY patient_id",
    )?;
    let rows = stmt.query_map([], |r| {
        let alert: Option<String> = r.get(2)?;
        let since: Option<i64> = r.get(3)?;
        Ok(Contact {
            patient: r.get(0)?,
            last_contact: from_micros(r.get(1)?),
            silence: alert.zip(since).map(|(alert_id, since)| Silence {
                alert_id,
                since: from_micros(since),
            }),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn set_silence(
    conn: &Connection,
    patient: PatientId,
    expected: Option<&str>,
    silence: Option<&Silence>,
) -> Result<bool> {
    let n = match silence {
        Some(s) => conn.execute(
            "UPDATE patient_contact SET silent_alert_id = ?1, silent_since = ?2
             WHERE patient_id = ?3 AND silent_alert_id IS NULL",
            params![s.alert_id, micros(s.since), patient],
        )?,
        None => conn.execute(
            "UPDATE patient_contact SET silent_alert_id = NULL, silent_since = NULL
             WHERE patient_id = ?1 AND silent_alert_id = ?2",
            params![patient, expected],
        )?,
    };
    Ok(n == 1)
}

/// Bumps the generation of `patient`'s day summaries for `days` (creating
/// the rows), in the caller's transaction: the summary of a day is never
/// taken for current after a write that changed the day.
pub(super) fn mark_days_stale(conn: &Connection, patient: PatientId, days: &[i64]) -> Result<()> {
    let mut mark = conn.prepare_cached(
        "INSERT INTO glucose_days (patient_id, day) VALUES (?1, ?2)
         ON CONFLICT (patient_id, day) DO UPDATE SET stale = glucose_days.stale + 1",
    )?;
    for day in days {
        mark.execute(params![patient, day])?;
    }
    Ok(())
}

/// A patient's stored precedence policy for `quantity` (JSON), on any
/// connection: the reader's, or a batch's transaction.
pub(super) fn precedence_policy(
    conn: &Connection,
    patient: PatientId,
    quantity: &str,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT policy FROM precedence_policies WHERE patient_id = ?1 AND quantity = ?2",
        )?
        .query_row(params![patient, quantity], |r| r.get(0))
        .optional()?)
}

/// Brings the batch's glucose days up to date in its own transaction where
/// `glucose_days::append` can, after `insert_chunk` bumped them; the rest
/// stay stale for `glucose_days::after_batch`. Only a batch stored in one
/// transaction takes this path: a chunked one bumps its days per chunk.
fn append_days(
    tx: &Transaction<'_>,
    b: &NewBatch,
    days: &[i64],
    outcomes: &[Vec<ReadingOutcome>],
) -> Result<()> {
    if days.is_empty() {
        return Ok(());
    }
    let mut read = tx.prepare_cached(
        "SELECT stale, fresh, readings, very_low, low, in_range, tight, high, very_high, slots,
                sum_mg_dl, series, last_raw, last_point
           FROM glucose_days WHERE patient_id = ?1 AND day = ?2",
    )?;
    let mut rows = Vec::with_capacity(days.len());
    for &day in days {
        let row = read
            .query_row(params![b.patient, day], |r| {
                Ok(DayRow {
                    day,
                    stale: r.get(0)?,
                    fresh: r.get(1)?,
                    counts: day_counts(r, 2)?,
                    tail: DayTail {
                        series: r.get(11)?,
                        last_raw: r.get(12)?,
                        last_point: r.get(13)?,
                    },
                })
            })
            .optional()?;
        rows.extend(row);
    }
    let policy = precedence_policy(tx, b.patient, "glucose")?;
    let window = crate::glucose_days::window_policy(policy.as_deref());
    for (day, generation, counts, tail) in crate::glucose_days::appended(b, outcomes, &rows, window)
    {
        put_glucose_day(tx, b.patient, day, generation, &counts, &tail)?;
    }
    Ok(())
}

/// The `WHERE` of a day-summary query by scope (`?1` the id, `?2`/`?3` the
/// day range).
fn scope_filter(scope: DayScope) -> (&'static str, i64) {
    match scope {
        DayScope::Patient(p) => ("g.patient_id = ?1", p),
        DayScope::Clinician(c) => (
            "g.patient_id IN (SELECT patient_id FROM clinician_patients WHERE clinician_id = ?1)",
            c,
        ),
    }
}

pub(super) fn glucose_days(
    conn: &Connection,
    scope: DayScope,
    from_day: i64,
    to_day: i64,
) -> Result<Vec<GlucoseDay>> {
    let (filter, id) = scope_filter(scope);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT g.patient_id, g.day, g.fresh IS NOT NULL AND g.fresh = g.stale, g.readings,
                g.very_low, g.low, g.in_range, g.tight, g.high, g.very_high, g.slots, g.sum_mg_dl
           FROM glucose_days g
          WHERE {filter} AND g.day >= ?2 AND g.day < ?3
          ORDER BY g.patient_id, g.day"
    ))?;
    let rows = stmt.query_map(params![id, from_day, to_day], |r| {
        Ok(GlucoseDay {
            patient: r.get(0)?,
            day: r.get(1)?,
            current: r.get(2)?,
            counts: day_counts(r, 3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn stale_glucose_days(
    conn: &Connection,
    scope: DayScope,
    from_day: i64,
    to_day: i64,
) -> Result<Vec<StaleDay>> {
    let (filter, id) = scope_filter(scope);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT g.patient_id, g.day, g.stale FROM glucose_days g
          WHERE {filter} AND g.day >= ?2 AND g.day < ?3
            AND (g.fresh IS NULL OR g.fresh <> g.stale)
          ORDER BY g.patient_id, g.day"
    ))?;
    let rows = stmt.query_map(params![id, from_day, to_day], |r| {
        Ok(StaleDay {
            patient: r.get(0)?,
            day: r.get(1)?,
            generation: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn put_glucose_day(
    conn: &Connection,
    patient: PatientId,
    day: i64,
    generation: i64,
    c: &DayCounts,
    t: &DayTail,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE glucose_days SET fresh = ?3, readings = ?4, very_low = ?5, low = ?6,
                in_range = ?7, tight = ?8, high = ?9, very_high = ?10, slots = ?11,
                sum_mg_dl = ?12, series = ?13, last_raw = ?14, last_point = ?15
          WHERE patient_id = ?1 AND day = ?2 AND stale = ?3",
        )?
        .execute(params![
            patient,
            day,
            generation,
            c.readings,
            c.very_low,
            c.low,
            c.in_range,
            c.tight,
            c.high,
            c.very_high,
            c.slots,
            c.sum_mg_dl,
            t.series,
            t.last_raw,
            t.last_point
        ])?;
    Ok(n == 1)
}

/// A day's counts from nine columns of `r` from `first` on, in
/// [`DayCounts`]' field order (every statement that reads them lists them so).
fn day_counts(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<DayCounts> {
    Ok(DayCounts {
        readings: r.get(first)?,
        very_low: r.get(first + 1)?,
        low: r.get(first + 2)?,
        in_range: r.get(first + 3)?,
        tight: r.get(first + 4)?,
        high: r.get(first + 5)?,
        very_high: r.get(first + 6)?,
        slots: r.get(first + 7)?,
        sum_mg_dl: r.get(first + 8)?,
    })
}

//! Readings in the buffer: the durable, deduplicating insert path and the
//! sync state machine (unsent → in flight → acknowledged) that sync drives.
//! A reading of a stream the phone does not upload is stored local-only
//! and never enters that machine.
//!
//! The one invariant this file guards: a reading is marked acknowledged
//! only by [`Buffer::acknowledge_batch`] or [`Buffer::acknowledge_readings`],
//! which sync calls after the server acknowledged, and only from in flight.
//! A failure rolls in-flight readings back to unsent; nothing else moves
//! them forward.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::capacity::{self, BufferEvent};
use super::{Buffer, from_micros, ledger, stream_code, stream_from_code, to_micros, u64_to_sql};
use crate::error::{Error, Result};
use crate::model::{DeviceId, PatientId, Profile, Provenance, Quality, Reading, Stream};

/// Where a stored reading is on its way to the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// Not yet handed to sync (or rolled back after a failed send).
    Unsent,
    /// Part of a batch being sent; not yet acknowledged.
    InFlight,
    /// The server acknowledged it; the cloud holds it.
    Acknowledged,
    /// Kept on the phone only and never synced: a stream the cloud derives
    /// for itself ([`Stream::is_uploaded`]), stored for the app's own view
    /// and alerts. Final like [`SyncState::Acknowledged`]: not pending, so
    /// it blocks neither a batch's settlement nor eviction.
    LocalOnly,
}

impl SyncState {
    fn to_sql(self) -> i64 {
        match self {
            SyncState::Unsent => 0,
            SyncState::InFlight => 1,
            SyncState::Acknowledged => 2,
            SyncState::LocalOnly => 3,
        }
    }

    fn from_sql(v: i64) -> Result<SyncState> {
        match v {
            0 => Ok(SyncState::Unsent),
            1 => Ok(SyncState::InFlight),
            2 => Ok(SyncState::Acknowledged),
            3 => Ok(SyncState::LocalOnly),
            _ => Err(Error::Storage {
                code: None,
                message: format!("unknown sync state {v} in readings"),
            }),
        }
    }
}

/// A reading as the buffer holds it, with its row id and sync bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReading {
    /// Row id: stable while the row exists; increases with arrival order
    /// within a data class (see [`TREND_ID_BASE`]).
    pub id: i64,
    /// Sync state.
    pub state: SyncState,
    /// Reduction held it back (not sent unless released).
    pub held: bool,
    /// The batch it is in flight in (or was acknowledged in).
    pub batch: Option<i64>,
    /// The reading itself, exactly as inserted.
    pub reading: Reading,
}

/// What one [`Buffer::insert`] call did. Returned only after the
/// transaction committed: every reading counted as new is durable.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertOutcome {
    /// One entry per input reading, in input order: the new row id, or
    /// `None` if an identical key was already stored (a duplicate).
    pub ids: Vec<Option<i64>>,
    /// How many readings were new.
    pub inserted: usize,
    /// How many were duplicates of stored readings (or of earlier readings
    /// in the same call).
    pub duplicates: usize,
    /// Evictions and pressure changes this insert caused, for the app's
    /// listener; never empty when something was evicted.
    pub events: Vec<BufferEvent>,
}

/// A batch of unsent readings of one stream, now marked in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlightBatch {
    /// Local handle for acknowledging or rolling back this batch, never
    /// reused (so a late acknowledgement of an abandoned batch marks
    /// nothing). Not an idempotency key: the cloud dedupes on each
    /// reading's key.
    pub id: i64,
    /// The stream all readings belong to.
    pub stream: Stream,
    /// The readings, in arrival order.
    pub readings: Vec<StoredReading>,
}

/// How far one endpoint has synced one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncCursor {
    /// Endpoint name chosen by sync (e.g. `"batches"`).
    pub endpoint: String,
    /// The stream.
    pub stream: Stream,
    /// Highest sequence the server acknowledged, if any.
    pub last_acked_sequence: Option<u64>,
    /// Identifier of the last batch the server acknowledged, if any.
    pub last_batch_id: Option<String>,
}

const INSERT_SQL: &str = "INSERT INTO readings (patient, device, stream, session, sequence, value, \
     sensor_time, receive_time, quality_percent, quality_flagged, characteristic, raw, id, decided, \
     sync_state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT DO NOTHING";

/// First row id of trend-class readings; record-class readings take the
/// ids below it.
///
/// SQLite frees a page only when every row on it is gone, and rows sit in
/// row-id order. Were trend and record readings interleaved, evicting trend
/// readings would leave every old page partly full and free almost
/// nothing, and the policy would evict far more than it needs (all of it,
/// during a long outage that pins the unsent records). Two id ranges keep
/// each class on its own pages, so evicting the oldest trend readings frees
/// whole pages. Within a range ids grow with arrival order. Trend readings
/// (the fewer: 3 of 7 in the worst case) take the upper range because large
/// ids cost bytes in the table and every index; 2^40 leaves each range
/// about 10^12 ids.
pub const TREND_ID_BASE: i64 = 1 << 40;

/// The next free ids of the (trend, record) ranges, read inside the
/// caller's transaction so a rolled-back insert leaves no stale counter.
fn next_ids(tx: &rusqlite::Transaction<'_>) -> Result<(i64, i64)> {
    let last = |sql: &str| -> Result<Option<i64>> {
        Ok(tx
            .prepare_cached(sql)?
            .query_row([TREND_ID_BASE], |r| r.get(0))
            .optional()?)
    };
    let trend = last("SELECT id FROM readings WHERE id >= ?1 ORDER BY id DESC LIMIT 1")?
        .unwrap_or(TREND_ID_BASE - 1);
    let record =
        last("SELECT id FROM readings WHERE id < ?1 ORDER BY id DESC LIMIT 1")?.unwrap_or(0);
    // Eviction may have removed the highest ids; a new reading must still
    // land after every export cursor, or no export would ever see it.
    let (trend_cursor, record_cursor) = super::export::highest_cursors(tx)?;
    let trend = trend.max(trend_cursor.unwrap_or(0));
    let record = record.max(record_cursor.unwrap_or(0));
    if record + 1 >= TREND_ID_BASE || trend == i64::MAX {
        return Err(Error::Storage {
            code: None,
            message: "reading id range exhausted".into(),
        });
    }
    Ok((trend + 1, record + 1))
}

pub(super) const SELECT_COLUMNS: &str = "id, sync_state, held, batch, patient, device, stream, session, \
     sequence, value, sensor_time, receive_time, quality_percent, quality_flagged, \
     characteristic, raw";

/// Drops the rows of batches with nothing left in flight. Their ids stay
/// used: `AUTOINCREMENT` never hands them out again.
pub(super) fn forget_finished_batches(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    tx.prepare_cached(
        "DELETE FROM batches WHERE NOT EXISTS \
         (SELECT 1 FROM readings WHERE batch = batches.id AND sync_state = 1)",
    )?
    .execute([])?;
    Ok(())
}

/// Raw column values of one row, converted outside rusqlite's closure so
/// conversion errors become typed errors.
pub(super) struct RowValues {
    id: i64,
    state: i64,
    held: bool,
    batch: Option<i64>,
    patient: String,
    device: String,
    stream: i64,
    session: Option<i64>,
    sequence: i64,
    value: f64,
    sensor_time: i64,
    receive_time: i64,
    quality_percent: Option<f64>,
    quality_flagged: bool,
    characteristic: i64,
    raw: Vec<u8>,
}

pub(super) fn read_row(row: &Row<'_>) -> rusqlite::Result<RowValues> {
    Ok(RowValues {
        id: row.get(0)?,
        state: row.get(1)?,
        held: row.get(2)?,
        batch: row.get(3)?,
        patient: row.get(4)?,
        device: row.get(5)?,
        stream: row.get(6)?,
        session: row.get(7)?,
        sequence: row.get(8)?,
        value: row.get(9)?,
        sensor_time: row.get(10)?,
        receive_time: row.get(11)?,
        quality_percent: row.get(12)?,
        quality_flagged: row.get(13)?,
        characteristic: row.get(14)?,
        raw: row.get(15)?,
    })
}

fn corrupt(what: &str) -> Error {
    Error::Storage {
        code: None,
        message: format!("stored reading has an invalid {what}"),
    }
}

impl RowValues {
    pub(super) fn into_stored(self) -> Result<StoredReading> {
        let stream = stream_from_code(self.stream).ok_or_else(|| corrupt("stream"))?;
        Ok(StoredReading {
            id: self.id,
            state: SyncState::from_sql(self.state)?,
            held: self.held,
            batch: self.batch,
            reading: Reading {
                patient: PatientId(self.patient),
                stream,
                value: self.value,
                sensor_time: from_micros(self.sensor_time)?,
                receive_time: from_micros(self.receive_time)?,
                sequence: u64::try_from(self.sequence).map_err(|_| corrupt("sequence"))?,
                quality: Quality {
                    percent: self.quality_percent,
                    flagged: self.quality_flagged,
                },
                provenance: Provenance {
                    device: DeviceId(self.device),
                    characteristic: u16::try_from(self.characteristic)
                        .map_err(|_| corrupt("characteristic"))?,
                    raw: self.raw,
                    session: self.session,
                },
            },
        })
    }
}

/// Refuses what SQLite would store wrongly: a NaN binds as NULL, and a
/// sequence past 2^63-1 would wrap. Never names the value itself.
fn validate(r: &Reading) -> Result<()> {
    if !r.value.is_finite() {
        return Err(Error::InvalidInput(format!(
            "{} reading with sequence {} has a non-finite value",
            r.stream.as_str(),
            r.sequence
        )));
    }
    if r.quality.percent.is_some_and(|q| !q.is_finite()) {
        return Err(Error::InvalidInput(format!(
            "{} reading with sequence {} has a non-finite quality",
            r.stream.as_str(),
            r.sequence
        )));
    }
    u64_to_sql(r.sequence, "sequence")?;
    Ok(())
}

impl Buffer {
    /// Stores `readings` in one transaction and returns once it committed:
    /// from then on every new reading survives an app kill (and, with
    /// [`super::Durability::PowerLoss`], a power loss).
    ///
    /// A reading whose key (device, stream, session, sequence) is already
    /// stored is a duplicate: reported in the outcome, not an error, and the
    /// stored copy is left untouched. If the insert takes the buffer past
    /// its budget, evictable readings are evicted in the same transaction
    /// and reported in [`InsertOutcome::events`]; if nothing evictable is
    /// left, the whole call fails with [`Error::BufferFull`] and stores
    /// nothing. Invalid input ([`Error::InvalidInput`]) also stores nothing.
    pub fn insert(&mut self, readings: &[Reading]) -> Result<InsertOutcome> {
        self.insert_and_mark_held(readings, &[])
    }

    /// [`Buffer::insert`], and in the same transaction marks the already
    /// stored readings `held` as held back by reduction (as
    /// [`Buffer::mark_held`] does): the reducer decides about a reading only
    /// after later ones arrive, so its marks trail the inserts, and folding
    /// them into the next insert saves a commit (an fsync) per batch.
    pub fn insert_and_mark_held(
        &mut self,
        readings: &[Reading],
        held: &[i64],
    ) -> Result<InsertOutcome> {
        for r in readings {
            validate(r)?;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(readings.len());
        let mut tallies: BTreeMap<(&str, Stream), ledger::Tally> = BTreeMap::new();
        let mut latest_receive = None;
        let (mut next_trend, mut next_record) = next_ids(&tx)?;
        {
            let mut stmt = tx.prepare_cached(INSERT_SQL)?;
            for r in readings {
                let is_trend = r.stream.profile() == Profile::Trend;
                let uploaded = r.stream.is_uploaded();
                let id = if is_trend { next_trend } else { next_record };
                let changed = stmt.execute(params![
                    r.patient.0,
                    r.provenance.device.0,
                    stream_code(r.stream),
                    r.provenance.session,
                    u64_to_sql(r.sequence, "sequence")?,
                    r.value,
                    to_micros(r.sensor_time),
                    to_micros(r.receive_time),
                    r.quality.percent,
                    r.quality.flagged,
                    r.provenance.characteristic,
                    r.provenance.raw,
                    id,
                    // A stream with no reducer is lossless, and one that
                    // stays on the phone goes nowhere: nothing to decide.
                    !uploaded || crate::reduce::ReducerConfig::for_stream(r.stream).is_none(),
                    if uploaded {
                        SyncState::Unsent
                    } else {
                        SyncState::LocalOnly
                    }
                    .to_sql(),
                ])?;
                let tally = tallies
                    .entry((r.provenance.device.0.as_str(), r.stream))
                    .or_default();
                if changed == 1 {
                    ids.push(Some(id));
                    if is_trend {
                        next_trend += 1;
                    } else {
                        next_record += 1;
                    }
                    tally.received += 1;
                } else {
                    ids.push(None);
                    tally.duplicates += 1;
                }
                let rt = to_micros(r.receive_time);
                latest_receive = Some(latest_receive.map_or(rt, |l: i64| l.max(rt)));
            }
        }
        ledger::add_tallies(&tx, &tallies)?;
        mark_held_in(&tx, held, true)?;
        let (used, eviction) =
            capacity::enforce(&tx, self.capacity.policy, &self.trend_streams_sql)?;
        tx.commit()?;

        let inserted = ids.iter().filter(|i| i.is_some()).count();
        let mut events = Vec::new();
        if let Some(ev) = eviction {
            events.push(BufferEvent::Evicted(ev));
        }
        if let Some(ev) = self.capacity.observe(used, latest_receive) {
            events.push(ev);
        }
        Ok(InsertOutcome {
            duplicates: ids.len() - inserted,
            inserted,
            ids,
            events,
        })
    }

    /// The stored reading with row id `id`, if it is (still) stored.
    pub fn get(&self, id: i64) -> Result<Option<StoredReading>> {
        let sql = format!("SELECT {SELECT_COLUMNS} FROM readings WHERE id = ?1");
        let row = self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], read_row)
            .optional()?;
        row.map(RowValues::into_stored).transpose()
    }

    /// The stored reading with this key, if any: how a caller checks that a
    /// reading it was told is durable is really there.
    pub fn find(
        &self,
        device: &DeviceId,
        stream: Stream,
        session: Option<i64>,
        sequence: u64,
    ) -> Result<Option<StoredReading>> {
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM readings WHERE device = ?1 AND stream = ?2 \
             AND (session IS NULL) = ?3 AND ifnull(session, 0) = ?4 AND sequence = ?5"
        );
        let row = self
            .conn
            .prepare_cached(&sql)?
            .query_row(
                params![
                    device.0,
                    stream_code(stream),
                    session.is_none(),
                    session.unwrap_or(0),
                    u64_to_sql(sequence, "sequence")?
                ],
                read_row,
            )
            .optional()?;
        row.map(RowValues::into_stored).transpose()
    }

    /// Every stored reading of `device`'s `stream`, in arrival order (row
    /// id): what a check of "every record exactly once, in order" reads, and
    /// what an export of one stream walks. Loads them all; meant for one
    /// device's stream, not the whole buffer.
    pub fn readings_of(&self, device: &DeviceId, stream: Stream) -> Result<Vec<StoredReading>> {
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM readings WHERE device = ?1 AND stream = ?2 ORDER BY id"
        );
        let rows = self
            .conn
            .prepare_cached(&sql)?
            .query_map(params![device.0, stream_code(stream)], read_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(RowValues::into_stored).collect()
    }

    /// The stored readings of `streams` measured in `from..to` (sensor
    /// time), in measurement order: what a resolved view of a quantity
    /// reads. The stream codes lead an index; time does not, so the caller
    /// bounds the range.
    pub fn readings_measured(
        &self,
        streams: &[Stream],
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<StoredReading>> {
        if streams.is_empty() || to <= from {
            return Ok(Vec::new());
        }
        // The codes are our own integers, never input text.
        let codes: Vec<String> = streams
            .iter()
            .map(|s| stream_code(*s).to_string())
            .collect();
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM readings WHERE stream IN ({}) \
             AND sensor_time >= ?1 AND sensor_time < ?2 ORDER BY sensor_time, id",
            codes.join(",")
        );
        let rows = self
            .conn
            .prepare_cached(&sql)?
            .query_map(params![to_micros(from), to_micros(to)], read_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(RowValues::into_stored).collect()
    }

    /// How many readings are stored, optionally only of one stream and/or
    /// in one sync state.
    pub fn count(&self, stream: Option<Stream>, state: Option<SyncState>) -> Result<u64> {
        let n: i64 = self.conn.prepare_cached(
            "SELECT count(*) FROM readings WHERE (?1 IS NULL OR stream = ?1) AND (?2 IS NULL OR sync_state = ?2)",
        )?
        .query_row(
            params![stream.map(stream_code), state.map(SyncState::to_sql)],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Takes up to `limit` of the oldest unsent, not held-back readings of
    /// `stream`, marks them in flight under a new batch id, and returns them.
    /// `None` when there is nothing to send.
    pub fn next_batch(&mut self, stream: Stream, limit: usize) -> Result<Option<InFlightBatch>> {
        self.take_batch(stream, limit, false)
    }

    /// [`Buffer::next_batch`], but held-back readings are taken too (with
    /// [`StoredReading::held`] set): sync sends them as `held_back` entries
    /// beside the kept readings around them, and the acknowledgement marks
    /// them synced like any other.
    pub fn next_batch_with_held(
        &mut self,
        stream: Stream,
        limit: usize,
    ) -> Result<Option<InFlightBatch>> {
        self.take_batch(stream, limit, true)
    }

    /// When the newest stored reading of `device` was received, if any: the
    /// heartbeat's last contact.
    pub fn last_contact(&self, device: &DeviceId) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let us: Option<i64> = self
            .conn
            .prepare_cached("SELECT max(receive_time) FROM readings WHERE device = ?1")?
            .query_row([&device.0], |r| r.get(0))?;
        us.map(from_micros).transpose()
    }

    fn take_batch(
        &mut self,
        stream: Stream,
        limit: usize,
        with_held: bool,
    ) -> Result<Option<InFlightBatch>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("INSERT INTO batches (stream, created_at) VALUES (?1, ?2)")?
            .execute(params![stream.as_str(), to_micros(chrono::Utc::now())])?;
        let batch = tx.last_insert_rowid();
        let marked = tx
            .prepare_cached(
                "UPDATE readings SET sync_state = 1, batch = ?1 WHERE id IN \
             (SELECT id FROM readings WHERE stream = ?2 AND sync_state = 0 \
              AND (held = 0 OR ?4) ORDER BY id LIMIT ?3)",
            )?
            .execute(params![batch, stream_code(stream), limit, with_held])?;
        if marked == 0 {
            // Dropping the transaction rolls the batch row back; AUTOINCREMENT
            // still never hands out an id that was committed.
            return Ok(None);
        }
        let rows = {
            let sql = format!("SELECT {SELECT_COLUMNS} FROM readings WHERE batch = ?1 ORDER BY id");
            let mut stmt = tx.prepare_cached(&sql)?;
            stmt.query_map([batch], read_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.commit()?;
        let readings = rows
            .into_iter()
            .map(RowValues::into_stored)
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(InFlightBatch {
            id: batch,
            stream,
            readings,
        }))
    }

    /// Marks every in-flight reading of `batch` acknowledged, once the
    /// server acknowledged the batch. Returns how many were marked; readings
    /// rolled back meanwhile are not touched.
    pub fn acknowledge_batch(&mut self, batch: i64) -> Result<u64> {
        self.acknowledge_where("batch = ?1", batch, &[])
    }

    /// Marks the given in-flight readings acknowledged (a partial
    /// acknowledgement). Unsent readings are never marked: a reading that was
    /// not sent cannot have been acknowledged.
    pub fn acknowledge_readings(&mut self, ids: &[i64]) -> Result<u64> {
        self.acknowledge_where("id = ?1", 0, ids)
    }

    fn acknowledge_where(&mut self, filter: &str, key: i64, ids: &[i64]) -> Result<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut tallies: BTreeMap<(String, Stream), ledger::Tally> = BTreeMap::new();
        {
            let sql = format!(
                "UPDATE readings SET sync_state = 2 WHERE {filter} AND sync_state = 1 \
                 RETURNING device, stream, held"
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let keys: Vec<i64> = if ids.is_empty() {
                vec![key]
            } else {
                ids.to_vec()
            };
            for k in keys {
                let rows = stmt
                    .query_map([k], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, bool>(2)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                for (device, stream, held) in rows {
                    let stream = stream_from_code(stream).ok_or_else(|| corrupt("stream"))?;
                    let tally = tallies.entry((device, stream)).or_default();
                    tally.acknowledged += 1;
                    tally.acknowledged_held_back += u64::from(held);
                }
            }
        }
        let total = tallies.values().map(|t| t.acknowledged).sum();
        let borrowed: BTreeMap<(&str, Stream), ledger::Tally> = tallies
            .iter()
            .map(|((d, s), t)| ((d.as_str(), *s), *t))
            .collect();
        ledger::add_tallies(&tx, &borrowed)?;
        forget_finished_batches(&tx)?;
        tx.commit()?;
        Ok(total)
    }

    /// Returns in-flight readings to unsent after a failed or abandoned send
    /// (all batches when `batch` is `None`). Returns how many were rolled
    /// back. [`Buffer::open`] does this for every batch: a batch in flight
    /// when the process died has no one left to acknowledge it, and the
    /// server stores a resent reading once.
    pub fn rollback_in_flight(&mut self, batch: Option<i64>) -> Result<u64> {
        // After a batch the server acknowledged whole there is nothing to
        // roll back and its row is already gone: a write transaction here
        // would commit (and fsync) nothing, once per batch.
        let busy: bool = self.conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM readings WHERE sync_state = 1 AND (?1 IS NULL OR batch = ?1)) \
             OR EXISTS (SELECT 1 FROM batches WHERE ?1 IS NULL OR id = ?1)",
        )?
        .query_row([batch], |r| r.get(0))?;
        if !busy {
            return Ok(0);
        }
        let tx = self.conn.transaction()?;
        let n = tx
            .prepare_cached(
                "UPDATE readings SET sync_state = 0, batch = NULL \
                 WHERE sync_state = 1 AND (?1 IS NULL OR batch = ?1)",
            )?
            .execute([batch])?;
        forget_finished_batches(&tx)?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// Sets or clears reduction's hold-back marker on unsent readings. A held
    /// reading stays stored and counted but is left out of batches.
    pub fn mark_held(&mut self, ids: &[i64], held: bool) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let n = mark_held_in(&tx, ids, held)?;
        tx.commit()?;
        Ok(n)
    }

    /// Records how far `endpoint` has synced `stream`.
    pub fn set_cursor(
        &mut self,
        endpoint: &str,
        stream: Stream,
        last_acked_sequence: Option<u64>,
        last_batch_id: Option<&str>,
    ) -> Result<()> {
        let seq = last_acked_sequence
            .map(|s| u64_to_sql(s, "sequence"))
            .transpose()?;
        self.conn.prepare_cached(
            "INSERT INTO sync_cursors (endpoint, stream, last_acked_sequence, last_batch_id, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (endpoint, stream) DO UPDATE SET \
             last_acked_sequence = excluded.last_acked_sequence, \
             last_batch_id = excluded.last_batch_id, updated_at = excluded.updated_at",
        )?
        .execute(params![
            endpoint,
            stream.as_str(),
            seq,
            last_batch_id,
            to_micros(chrono::Utc::now())
        ])?;
        Ok(())
    }

    /// The cursor of `endpoint` for `stream`, if one was set.
    pub fn cursor(&self, endpoint: &str, stream: Stream) -> Result<Option<SyncCursor>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT last_acked_sequence, last_batch_id FROM sync_cursors \
                 WHERE endpoint = ?1 AND stream = ?2",
            )?
            .query_row(params![endpoint, stream.as_str()], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .optional()?;
        row.map(|(seq, batch)| {
            Ok(SyncCursor {
                endpoint: endpoint.to_string(),
                stream,
                last_acked_sequence: seq
                    .map(|s| u64::try_from(s).map_err(|_| corrupt("cursor sequence")))
                    .transpose()?,
                last_batch_id: batch,
            })
        })
        .transpose()
    }
}

/// Sets the held-back marker of unsent readings `ids` inside `tx`; returns
/// how many rows changed.
fn mark_held_in(tx: &rusqlite::Transaction<'_>, ids: &[i64], held: bool) -> Result<u64> {
    let mut n = 0u64;
    let mut stmt =
        tx.prepare_cached("UPDATE readings SET held = ?1 WHERE id = ?2 AND sync_state = 0")?;
    for id in ids {
        n += stmt.execute(params![held, id])? as u64;
    }
    Ok(n)
}

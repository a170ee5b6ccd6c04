//! Streaming reduction's state in the buffer: which trend readings are
//! decided, the anchor each series' open segment starts from, and the
//! batches that carry only decided readings.
//!
//! Sits between the insert path (every trend reading arrives undecided)
//! and batch sync (which takes decided readings only). Keeping the state
//! here rather than in memory is what lets reduction span batches and
//! restarts: after a kill the next pass resumes from the stored anchor and
//! the stored undecided readings and decides exactly what an uninterrupted
//! run would have, and a decision, once committed, is never revised (so a
//! reading never travels once held back and once kept).

use std::collections::{BTreeMap, HashSet};

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::buffer::{RowValues, SELECT_COLUMNS, read_row};
use super::{Buffer, InFlightBatch, StoredReading, from_micros, stream_code, to_micros};
use crate::error::Result;
use crate::model::{DeviceId, Sample, Stream};

/// One series of a stream as reduction sees it: a device's readings within
/// one sensor session.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// The device.
    pub device: DeviceId,
    /// The sensor session, when the device has sessions.
    pub session: Option<i64>,
}

/// The decisions of one reduction pass over one stream, committed together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decisions {
    /// (row id, held back) of every reading decided in this pass.
    pub readings: Vec<(i64, bool)>,
    /// The new anchor (last kept reading) of each series that moved.
    pub anchors: Vec<(SeriesKey, Sample)>,
}

impl Buffer {
    /// The undecided, unsent readings of `stream`, grouped by series and in
    /// time order within each (then sequence): what a reduction pass
    /// pushes after the series' anchor.
    pub fn undecided(&self, stream: Stream) -> Result<BTreeMap<SeriesKey, Vec<StoredReading>>> {
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM readings WHERE stream = ?1 AND decided = 0 \
             AND sync_state = 0 ORDER BY sensor_time, sequence, id"
        );
        let rows = self
            .conn
            .prepare_cached(&sql)?
            .query_map([stream_code(stream)], read_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out: BTreeMap<SeriesKey, Vec<StoredReading>> = BTreeMap::new();
        for row in rows {
            let r = RowValues::into_stored(row)?;
            let key = SeriesKey {
                device: r.reading.provenance.device.clone(),
                session: r.reading.provenance.session,
            };
            out.entry(key).or_default().push(r);
        }
        Ok(out)
    }

    /// The sensor time of the newest stored reading: the data's own clock,
    /// by which streaming reduction closes a tail that has gone quiet while
    /// other readings go on (receive times may lag sensor times by a
    /// backfill or a skewed sensor clock, so they are not used).
    pub fn newest_sensor_time(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let us: Option<i64> = self
            .conn
            .prepare_cached("SELECT max(sensor_time) FROM readings")?
            .query_row([], |r| r.get(0))?;
        us.map(from_micros).transpose()
    }

    /// The `limit` most recently stored readings of `stream` as samples
    /// (sensor time, value), newest stored first: what the sync cadence
    /// reads to tell steady glucose from moving glucose. A walk back from
    /// the newest row, so its cost is bounded by `limit` and the readings
    /// of other streams stored since, not by the buffer's size.
    pub fn recent_samples(&self, stream: Stream, limit: usize) -> Result<Vec<Sample>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(
            "SELECT sensor_time, value FROM readings WHERE stream = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![stream_code(stream), limit], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(us, value)| {
                Ok(Sample {
                    time: from_micros(us)?,
                    value,
                })
            })
            .collect()
    }

    /// The last kept reading of a series' decided prefix, if reduction has
    /// decided anything in it (it outlives the reading's eviction).
    pub fn reduction_anchor(&self, stream: Stream, series: &SeriesKey) -> Result<Option<Sample>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT sensor_time, value FROM reduction_anchors WHERE device = ?1 \
                 AND stream = ?2 AND no_session = ?3 AND session = ?4",
            )?
            .query_row(
                params![
                    series.device.0,
                    stream_code(stream),
                    series.session.is_none(),
                    series.session.unwrap_or(0)
                ],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)),
            )
            .optional()?;
        row.map(|(t, value)| {
            Ok(Sample {
                time: from_micros(t)?,
                value,
            })
        })
        .transpose()
    }

    /// Commits one pass's decisions and anchors in one transaction. Only
    /// readings still undecided and unsent are touched: a decision is made
    /// once and never revised. Returns how many readings were decided.
    pub fn record_decisions(&mut self, stream: Stream, decisions: &Decisions) -> Result<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0u64;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE readings SET decided = 1, held = ?2 WHERE id = ?1 AND decided = 0 \
                 AND sync_state = 0",
            )?;
            for (id, held) in &decisions.readings {
                n += stmt.execute(params![id, held])? as u64;
            }
            let mut anchor = tx.prepare_cached(
                "INSERT INTO reduction_anchors (device, stream, no_session, session, \
                 sensor_time, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (device, stream, no_session, session) DO UPDATE SET \
                 sensor_time = excluded.sensor_time, value = excluded.value",
            )?;
            for (key, sample) in &decisions.anchors {
                anchor.execute(params![
                    key.device.0,
                    stream_code(stream),
                    key.session.is_none(),
                    key.session.unwrap_or(0),
                    to_micros(sample.time),
                    sample.value
                ])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Takes up to `limit` of the oldest (by sensor time) unsent, decided
    /// readings of `stream` and marks them in flight, held-back ones
    /// included, such that every held-back reading has a kept reading of
    /// its series after it in the same batch: the cloud reconstructs it
    /// from that one and the kept one before it (in this batch or an
    /// earlier one). Held-back readings whose closing kept reading falls
    /// past `limit` wait for the next batch; if that would leave the batch
    /// empty, the first series' readings up to its closing kept one are
    /// taken beyond `limit`. `None` when there is nothing to send.
    pub fn next_decided_batch(
        &mut self,
        stream: Stream,
        limit: usize,
    ) -> Result<Option<InFlightBatch>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let candidates = |sql_limit: i64| -> Result<Vec<Candidate>> {
            Ok(tx
                .prepare_cached(
                    "SELECT id, device, session, held FROM readings WHERE stream = ?1 \
                     AND sync_state = 0 AND decided = 1 ORDER BY sensor_time, sequence, id \
                     LIMIT ?2",
                )?
                .query_map(params![stream_code(stream), sql_limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        };
        let rows = candidates(limit)?;
        let mut ids = closed_prefix(&rows, None);
        if ids.is_empty() && !rows.is_empty() {
            // One segment longer than the limit: take it whole.
            let first = rows.first().map(|r| (r.1.clone(), r.2));
            ids = closed_prefix(&candidates(i64::MAX)?, first);
        }
        if ids.is_empty() {
            // Held-back readings with no kept one after them (it was
            // refused): they go as they are, and the cloud answers for each.
            ids = rows.iter().map(|r| r.0).collect();
        }
        if ids.is_empty() {
            return Ok(None);
        }
        tx.prepare_cached("INSERT INTO batches (stream, created_at) VALUES (?1, ?2)")?
            .execute(params![stream.as_str(), to_micros(chrono::Utc::now())])?;
        let batch = tx.last_insert_rowid();
        {
            let mut mark = tx.prepare_cached(
                "UPDATE readings SET sync_state = 1, batch = ?1 WHERE id = ?2 AND sync_state = 0",
            )?;
            for id in &ids {
                mark.execute(params![batch, id])?;
            }
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
}

/// (row id, device, session, held back) of a reading that may travel.
type Candidate = (i64, String, Option<i64>, bool);

/// The ids of `rows` (in time order) that can travel now: every kept one,
/// and every held-back one with a kept one of its series after it. With
/// `only`, just that series' rows up to its first closing kept reading.
fn closed_prefix(rows: &[Candidate], only: Option<(String, Option<i64>)>) -> Vec<i64> {
    let mut closed: HashSet<(&str, Option<i64>)> = HashSet::new();
    let mut out = Vec::new();
    for (id, device, session, held) in rows.iter().rev() {
        let key = (device.as_str(), *session);
        if let Some((d, s)) = &only
            && (d.as_str(), *s) != key
        {
            continue;
        }
        if !held {
            closed.insert(key);
            out.push(*id);
        } else if closed.contains(&key) {
            out.push(*id);
        }
    }
    out.reverse();
    if only.is_some() {
        // Up to and including the first kept reading that closes a run of
        // held-back ones (or the first kept reading, when none are held).
        let mut end = out.len();
        let by_id: HashSet<i64> = rows.iter().filter(|r| !r.3).map(|r| r.0).collect();
        if let Some(pos) = out.iter().position(|id| by_id.contains(id)) {
            end = pos + 1;
        }
        out.truncate(end);
    }
    out
}

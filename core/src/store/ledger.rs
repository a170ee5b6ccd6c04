//! The completeness ledger: per device and stream, what arrived, what the
//! sensor itself reported missing, what the buffer holds, what the cloud
//! acknowledged and what the capacity policy evicted.
//!
//! It exists so that "no reading was lost silently" can be checked by
//! arithmetic: received = stored + evicted, and every gap has a range. A
//! reading of a stream the phone keeps to itself (the CGM trend) is
//! local-only: stored, counted, never pending and never on the server. The
//! counters are kept in the same transaction as the change they count, so a
//! kill cannot leave them out of step with the readings.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Transaction, params};

use super::{Buffer, from_micros, to_micros, u64_to_sql};
use crate::error::{Error, Result};
use crate::model::{DeviceId, Stream};

/// Counts added to one (device, stream) ledger row in one transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) received: u64,
    pub(crate) duplicates: u64,
    pub(crate) acknowledged: u64,
    pub(crate) evicted_acknowledged: u64,
    pub(crate) evicted_unsent: u64,
    pub(crate) evicted_local: u64,
    pub(crate) acknowledged_held_back: u64,
}

/// Adds `tallies` to the ledger inside the caller's transaction.
pub(crate) fn add_tallies(
    tx: &Transaction<'_>,
    tallies: &BTreeMap<(&str, Stream), Tally>,
) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO ledger (device, stream, received, duplicates, acknowledged, \
         evicted_acknowledged, evicted_unsent, held_back, evicted_local) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (device, stream) DO UPDATE SET \
         received = received + excluded.received, \
         duplicates = duplicates + excluded.duplicates, \
         acknowledged = acknowledged + excluded.acknowledged, \
         evicted_acknowledged = evicted_acknowledged + excluded.evicted_acknowledged, \
         evicted_unsent = evicted_unsent + excluded.evicted_unsent, \
         held_back = held_back + excluded.held_back, \
         evicted_local = evicted_local + excluded.evicted_local",
    )?;
    for ((device, stream), t) in tallies {
        stmt.execute(params![
            device,
            stream.as_str(),
            u64_to_sql(t.received, "count")?,
            u64_to_sql(t.duplicates, "count")?,
            u64_to_sql(t.acknowledged, "count")?,
            u64_to_sql(t.evicted_acknowledged, "count")?,
            u64_to_sql(t.evicted_unsent, "count")?,
            u64_to_sql(t.acknowledged_held_back, "count")?,
            u64_to_sql(t.evicted_local, "count")?,
        ])?;
    }
    Ok(())
}

/// Records one range of `kind` in the caller's transaction.
pub(crate) fn add_range(tx: &Transaction<'_>, range: &LedgerRange) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO ledger_ranges (device, stream, kind, from_time, to_time, count, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        range.device.0,
        range.stream.as_str(),
        range.kind.as_str(),
        to_micros(range.from),
        to_micros(range.to),
        u64_to_sql(range.count, "count")?,
        to_micros(Utc::now()),
    ])?;
    Ok(())
}

/// What a ledger range records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RangeKind {
    /// The sensor reported these readings missing (a gap it cannot fill).
    ReportedMissing,
    /// Acknowledged readings removed to make room (the cloud holds them).
    EvictedAcknowledged,
    /// Unsent trend readings removed to make room: data the cloud never got.
    EvictedUnsent,
    /// Local-only readings removed to make room: the cloud derives their
    /// stream itself, so it misses nothing; the phone's history shortens.
    EvictedLocal,
}

impl RangeKind {
    fn as_str(self) -> &'static str {
        match self {
            RangeKind::ReportedMissing => "reported_missing",
            RangeKind::EvictedAcknowledged => "evicted_acknowledged",
            RangeKind::EvictedUnsent => "evicted_unsent",
            RangeKind::EvictedLocal => "evicted_local",
        }
    }

    fn parse(s: &str) -> Result<RangeKind> {
        match s {
            "reported_missing" => Ok(RangeKind::ReportedMissing),
            "evicted_acknowledged" => Ok(RangeKind::EvictedAcknowledged),
            "evicted_unsent" => Ok(RangeKind::EvictedUnsent),
            "evicted_local" => Ok(RangeKind::EvictedLocal),
            _ => Err(Error::Storage {
                code: None,
                message: "unknown ledger range kind".into(),
            }),
        }
    }
}

/// A time range of one stream with a count: a gap or an eviction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRange {
    /// Device of the stream.
    pub device: DeviceId,
    /// The stream.
    pub stream: Stream,
    /// Gap or eviction.
    pub kind: RangeKind,
    /// Sensor time of the first reading concerned.
    pub from: DateTime<Utc>,
    /// Sensor time of the last reading concerned.
    pub to: DateTime<Utc>,
    /// How many readings.
    pub count: u64,
}

/// The completeness of one device's stream as the buffer knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Completeness {
    /// New readings ever stored (duplicates excluded).
    pub received: u64,
    /// Duplicates refused.
    pub duplicates: u64,
    /// Readings the sensor reported missing.
    pub reported_missing: u64,
    /// Readings held in the buffer now, in any sync state.
    pub stored: u64,
    /// Of those, not yet sent.
    pub unsent: u64,
    /// Of those, in flight.
    pub in_flight: u64,
    /// Of those, held back by reduction (and unsent).
    pub held_back: u64,
    /// Of the unsent ones, not yet decided by streaming reduction: their
    /// segment is still open (pending on the phone).
    pub undecided: u64,
    /// Readings the cloud acknowledged, ever (including evicted ones).
    pub acknowledged: u64,
    /// Of those, readings that travelled held back (sequence and time
    /// only): the cloud holds them as reconstructed within the stream's
    /// tolerance. `acknowledged - acknowledged_held_back` travelled kept.
    pub acknowledged_held_back: u64,
    /// Acknowledged readings evicted to make room.
    pub evicted_acknowledged: u64,
    /// Unsent readings evicted to make room: lost to the cloud, but counted.
    pub evicted_unsent: u64,
    /// Readings held in the buffer now that stay on the phone and are never
    /// synced ([`super::SyncState::LocalOnly`]): neither pending nor on the
    /// server. The cloud derives their stream (the CGM trend) itself.
    pub local_only: u64,
    /// Local-only readings evicted to make room (the cloud never held them
    /// and does not need them). So that, for every stream,
    /// `received = stored + evicted_acknowledged + evicted_unsent +
    /// evicted_local`.
    pub evicted_local: u64,
}

impl Buffer {
    /// Records a gap the sensor reported (readings it cannot deliver), so
    /// the cloud and the clinician see a known gap rather than silence.
    pub fn record_missing(
        &mut self,
        device: &DeviceId,
        stream: Stream,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        count: u64,
    ) -> Result<()> {
        if to < from {
            return Err(Error::InvalidInput(
                "missing range ends before it starts".into(),
            ));
        }
        let tx = self.conn.transaction()?;
        tx.prepare_cached(
            "INSERT INTO ledger (device, stream, reported_missing) VALUES (?1, ?2, ?3) \
             ON CONFLICT (device, stream) DO UPDATE SET \
             reported_missing = reported_missing + excluded.reported_missing",
        )?
        .execute(params![
            device.0,
            stream.as_str(),
            u64_to_sql(count, "count")?
        ])?;
        add_range(
            &tx,
            &LedgerRange {
                device: device.clone(),
                stream,
                kind: RangeKind::ReportedMissing,
                from,
                to,
                count,
            },
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The completeness of `device`'s `stream`: ledger counters plus what
    /// the buffer holds now.
    pub fn completeness(&self, device: &DeviceId, stream: Stream) -> Result<Completeness> {
        let counters = self
            .conn
            .prepare_cached(
                "SELECT received, duplicates, reported_missing, acknowledged, \
                 evicted_acknowledged, evicted_unsent, held_back, evicted_local FROM ledger \
                 WHERE device = ?1 AND stream = ?2",
            )?
            .query_row(params![device.0, stream.as_str()], |r| {
                Ok([
                    r.get::<_, i64>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ])
            });
        let counters = match counters {
            Ok(c) => c,
            Err(rusqlite::Error::QueryReturnedNoRows) => [0; 8],
            Err(e) => return Err(e.into()),
        };
        let held: [i64; 6] = self
            .conn
            .prepare_cached(
                "SELECT count(*), ifnull(sum(sync_state = 0), 0), ifnull(sum(sync_state = 1), 0), \
                 ifnull(sum(held AND sync_state = 0), 0), \
                 ifnull(sum(decided = 0 AND sync_state = 0), 0), ifnull(sum(sync_state = 3), 0) \
                 FROM readings WHERE device = ?1 AND stream = ?2",
            )?
            .query_row(params![device.0, super::stream_code(stream)], |r| {
                Ok([
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ])
            })?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Completeness {
            received: n(counters[0]),
            duplicates: n(counters[1]),
            reported_missing: n(counters[2]),
            acknowledged: n(counters[3]),
            evicted_acknowledged: n(counters[4]),
            evicted_unsent: n(counters[5]),
            acknowledged_held_back: n(counters[6]),
            evicted_local: n(counters[7]),
            stored: n(held[0]),
            unsent: n(held[1]),
            in_flight: n(held[2]),
            held_back: n(held[3]),
            undecided: n(held[4]),
            local_only: n(held[5]),
        })
    }

    /// Every range of `kind` recorded for `device`'s `stream`, oldest first.
    pub fn ledger_ranges(
        &self,
        device: &DeviceId,
        stream: Stream,
        kind: RangeKind,
    ) -> Result<Vec<LedgerRange>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, from_time, to_time, count FROM ledger_ranges \
             WHERE device = ?1 AND stream = ?2 AND kind = ?3 ORDER BY from_time, id",
        )?;
        let rows = stmt
            .query_map(params![device.0, stream.as_str(), kind.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(k, from, to, count)| {
                Ok(LedgerRange {
                    device: device.clone(),
                    stream,
                    kind: RangeKind::parse(&k)?,
                    from: from_micros(from)?,
                    to: from_micros(to)?,
                    count: u64::try_from(count).unwrap_or(0),
                })
            })
            .collect()
    }
}

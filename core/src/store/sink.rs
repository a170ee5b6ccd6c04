//! The buffer as a session's sink: where the session's readings and gaps
//! become durable, and where a restarted app finds the point to resume
//! backfill from.
//!
//! Place in the data flow: session → **[`BufferSink`]** → buffer. Decisions
//! that shaped it:
//!
//! - **Commits batched in a short window, on the leading edge.** A
//!   notification arriving more than the commit window after the last
//!   commit is committed as soon as the session has taken it apart (a
//!   CGM's five-minute readings each are, one commit per notification);
//!   readings closer together are held and committed together when the
//!   window closes ([`SessionSink::flush_due`], which the session waits for in
//!   the same wait as its next notification, so no extra timer). A 1 Hz
//!   heart-rate strap then costs one commit per window instead of one
//!   fsync a second. A held reading is not yet durable: the facade tells
//!   the app's listener about a reading only after its commit, so
//!   "heard" still means "durable", and a kill costs at most the readings
//!   of the open window, which nobody was told of (a CGM's are fetched
//!   again from the sensor's store by the next backfill).
//!   [`BufferSink::new`] keeps the window at zero: one commit per reading.
//! - **Gaps go to the completeness ledger** as reported-missing ranges that
//!   keep the session's view (sensor session, first and last missing
//!   sequence, reason), so the cloud sees a known gap rather than silence
//!   and [`BufferSink::cursor`](SessionSink::cursor) can resume after the
//!   end of a recorded gap instead of asking for it again.
//! - **Device events are not stored.** The one that is data, the battery
//!   level, already arrives as a [`Stream::Battery`] reading; the others
//!   (connected, reconnecting, corrupt frame…) are for the app's listener
//!   and logs, and a table of them would only compete with readings for the
//!   byte budget.
//! - **The cursor is read from what the file holds**, not kept in memory,
//!   so an app that restarts with the same database resumes where the last
//!   committed output left off. "Newest" is the highest (sensor session,
//!   sequence): sessions are numbered by their start time and sequences grow
//!   within a session, so this is the last record accepted, and the lookup
//!   walks the readings' unique key index backwards (no extra index, which
//!   every reading would pay for in bytes).

use std::cell::Cell;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{OptionalExtension, params};

use super::capacity::BufferEvent;
use super::{Buffer, from_micros, stream_code, to_micros, u64_to_sql};
use crate::error::{Error, Result};
use crate::model::{DeviceId, Reading, Stream};
use crate::session::{Cursor, Gap, GapReason, SessionOutput, SessionSink};

/// The kind the ledger gives ranges the sensor reported missing.
const REPORTED_MISSING: &str = "reported_missing";

fn reason_to_sql(reason: GapReason) -> &'static str {
    match reason {
        GapReason::NotHeld => "not_held",
        GapReason::SessionChanged => "session_changed",
    }
}

fn reason_from_sql(s: &str) -> Result<GapReason> {
    match s {
        "not_held" => Ok(GapReason::NotHeld),
        "session_changed" => Ok(GapReason::SessionChanged),
        _ => Err(Error::Storage {
            code: None,
            message: "unknown gap reason in the ledger".into(),
        }),
    }
}

fn stored_sequence(v: Option<i64>) -> Result<Option<u64>> {
    v.map(|s| {
        u64::try_from(s).map_err(|_| Error::Storage {
            code: None,
            message: "stored gap sequence is negative".into(),
        })
    })
    .transpose()
}

/// A [`Buffer`] that a [`crate::session::Session`] writes into.
///
/// Readings are inserted one per [`SessionSink::accept`] and are durable
/// when it returns `Ok`; gaps become reported-missing ledger ranges; device
/// events are acknowledged and dropped (see the module docs). Eviction and
/// pressure events the inserts cause are collected for the app's listener
/// ([`BufferSink::take_buffer_events`]).
pub struct BufferSink {
    buffer: Buffer,
    events: Vec<BufferEvent>,
    /// Readings accepted but not yet committed, in order.
    pending: Vec<Reading>,
    /// Receive time of the newest reading of the last commit.
    last_commit: Option<DateTime<Utc>>,
    /// See the module docs; zero commits every reading at once.
    window: TimeDelta,
    /// A cursor lookup that failed. [`SessionSink::cursor`] cannot report an
    /// error, and the session may act on the `None` it got instead (ask for
    /// every record, restart a strap's numbering); failing the next accept
    /// makes sure nothing decided on that wrong basis is stored.
    /// A `Cell` because `cursor` takes `&self`; the sink is `Send` but not
    /// `Sync`, like the buffer.
    cursor_error: Cell<Option<Error>>,
}

impl std::fmt::Debug for BufferSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferSink")
            .field("buffer", &self.buffer)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl BufferSink {
    /// A sink writing into `buffer`, one commit per reading.
    pub fn new(buffer: Buffer) -> BufferSink {
        BufferSink::with_commit_window(buffer, TimeDelta::zero())
    }

    /// A sink that batches the commits of readings arriving within
    /// `window` of the last commit (see the module docs). A negative
    /// window counts as zero.
    pub fn with_commit_window(buffer: Buffer, window: TimeDelta) -> BufferSink {
        BufferSink {
            buffer,
            events: Vec::new(),
            pending: Vec::new(),
            last_commit: None,
            window: window.max(TimeDelta::zero()),
            cursor_error: Cell::new(None),
        }
    }

    /// How many accepted readings wait for the next commit.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Commits the held readings in one transaction.
    fn commit_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let readings = std::mem::take(&mut self.pending);
        let newest = readings.iter().map(|r| r.receive_time).max();
        // On failure the held readings are dropped with the error: the
        // session stops, and its next run resumes from what was committed.
        let outcome = self.buffer.insert(&readings)?;
        self.events.extend(outcome.events);
        self.last_commit = newest.max(self.last_commit);
        Ok(())
    }

    /// The buffer, for queries.
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    /// The buffer, for sync and reduction between session runs.
    pub fn buffer_mut(&mut self) -> &mut Buffer {
        &mut self.buffer
    }

    /// Gives the buffer back. Readings a windowed sink still holds are
    /// dropped: call [`SessionSink::flush`] first.
    pub fn into_buffer(self) -> Buffer {
        self.buffer
    }

    /// Eviction and pressure events caused by the inserts since the last
    /// call, oldest first.
    pub fn take_buffer_events(&mut self) -> Vec<BufferEvent> {
        std::mem::take(&mut self.events)
    }
}

impl SessionSink for BufferSink {
    fn cursor(&self, device: &DeviceId, stream: Stream) -> Option<Cursor> {
        let stored = match self.buffer.session_cursor(device, stream) {
            Ok(c) => c,
            Err(e) => {
                self.cursor_error.set(Some(e));
                return None;
            }
        };
        // Held readings are kept too: the newest of them counts.
        let held = self
            .pending
            .iter()
            .filter(|r| &r.provenance.device == device && r.stream == stream)
            .map(|r| Cursor {
                session: r.provenance.session,
                sequence: r.sequence,
                time: r.sensor_time,
            })
            .max_by_key(|c| (c.session, c.sequence));
        match (stored, held) {
            (Some(s), Some(h)) => Some(if (h.session, h.sequence) > (s.session, s.sequence) {
                h
            } else {
                s
            }),
            (s, h) => s.or(h),
        }
    }

    fn accept(&mut self, output: SessionOutput) -> Result<()> {
        if let Some(e) = self.cursor_error.get_mut().take() {
            return Err(e);
        }
        match output {
            SessionOutput::Reading(r) => {
                self.pending.push(r);
                // Without a window every reading commits at once; with
                // one, `flush_due` says when (now, for the first reading
                // after a quiet window: the session commits the whole
                // notification before it waits again).
                if self.window.is_zero() {
                    self.commit_pending()?;
                }
                Ok(())
            }
            SessionOutput::Gap(g) => {
                // In order: the readings before the gap first.
                self.commit_pending()?;
                self.buffer.record_gap(&g)
            }
            SessionOutput::Event(_) => Ok(()),
        }
    }

    fn flush_due(&self) -> Option<DateTime<Utc>> {
        let first = self.pending.first()?.receive_time;
        Some(
            self.last_commit
                .map_or(first, |last| first.max(last + self.window)),
        )
    }

    fn flush(&mut self) -> Result<()> {
        self.commit_pending()
    }
}

impl Buffer {
    /// The newest record held for `device`'s `stream`: the reading or the
    /// end of a recorded gap with the highest (sensor session, sequence),
    /// whichever is higher. This is [`SessionSink::cursor`] for a session
    /// writing into this buffer, readable after a restart.
    ///
    /// A stream whose readings were all evicted and that had no gap has no
    /// cursor: the session then asks the sensor for everything it holds,
    /// and the readings still in the sensor come back (counted once more as
    /// received).
    pub fn session_cursor(&self, device: &DeviceId, stream: Stream) -> Result<Option<Cursor>> {
        let reading = self
            .conn
            .prepare_cached(
                "SELECT session, sequence, sensor_time FROM readings \
                 WHERE device = ?1 AND stream = ?2 \
                 ORDER BY session IS NULL DESC, ifnull(session, 0) DESC, sequence DESC LIMIT 1",
            )?
            .query_row(params![device.0, stream_code(stream)], |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        let gap = self
            .conn
            .prepare_cached(
                "SELECT session, last_sequence, to_time FROM ledger_ranges \
                 WHERE device = ?1 AND stream = ?2 AND kind = ?3 AND last_sequence IS NOT NULL \
                 ORDER BY session IS NULL DESC, ifnull(session, 0) DESC, last_sequence DESC LIMIT 1",
            )?
            .query_row(params![device.0, stream.as_str(), REPORTED_MISSING], |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        let to_cursor = |(session, sequence, time): (Option<i64>, i64, i64)| -> Result<Cursor> {
            Ok(Cursor {
                session,
                sequence: stored_sequence(Some(sequence))?.unwrap_or(0),
                time: from_micros(time)?,
            })
        };
        let reading = reading.map(to_cursor).transpose()?;
        let gap = gap.map(to_cursor).transpose()?;
        Ok(match (reading, gap) {
            (Some(r), Some(g)) => Some(if (g.session, g.sequence) > (r.session, r.sequence) {
                g
            } else {
                r
            }),
            (r, g) => r.or(g),
        })
    }

    /// Records a gap a session reported, in one transaction: a
    /// reported-missing ledger range carrying the gap's session, sequences
    /// and reason, and the stream's reported-missing counter.
    ///
    /// The range's `from` and `to` are the gap's exclusive bounds (the
    /// sensor times of the records either side). Its count is the number of
    /// missing records: the sequences from first to last missing, stepping
    /// by the distance between the newest record held before the gap and
    /// the first missing one (a CGM numbers records by minutes at its
    /// measurement interval, a meter by one). A gap without sequences (a
    /// sensor session that changed while away) counts 0: how many records
    /// it lost is unknown, and the range says so rather than guess.
    pub fn record_gap(&mut self, gap: &Gap) -> Result<()> {
        if gap.to < gap.from {
            return Err(Error::InvalidInput("gap ends before it starts".into()));
        }
        let count = match (gap.first_missing, gap.last_missing) {
            (Some(first), Some(last)) if last >= first => {
                let step = match self.session_cursor(&gap.device, gap.stream)? {
                    Some(c) if c.session == gap.session && c.sequence < first => first - c.sequence,
                    _ => 1,
                };
                (last - first) / step + 1
            }
            (Some(_), Some(_)) => {
                return Err(Error::InvalidInput(
                    "gap's last missing sequence is before its first".into(),
                ));
            }
            _ => 0,
        };
        let tx = self.conn.transaction()?;
        tx.prepare_cached(
            "INSERT INTO ledger (device, stream, reported_missing) VALUES (?1, ?2, ?3) \
             ON CONFLICT (device, stream) DO UPDATE SET \
             reported_missing = reported_missing + excluded.reported_missing",
        )?
        .execute(params![
            gap.device.0,
            gap.stream.as_str(),
            u64_to_sql(count, "count")?
        ])?;
        tx.prepare_cached(
            "INSERT INTO ledger_ranges (device, stream, kind, from_time, to_time, count, \
             recorded_at, session, first_sequence, last_sequence, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            gap.device.0,
            gap.stream.as_str(),
            REPORTED_MISSING,
            to_micros(gap.from),
            to_micros(gap.to),
            u64_to_sql(count, "count")?,
            to_micros(chrono::Utc::now()),
            gap.session,
            gap.first_missing
                .map(|s| u64_to_sql(s, "sequence"))
                .transpose()?,
            gap.last_missing
                .map(|s| u64_to_sql(s, "sequence"))
                .transpose()?,
            reason_to_sql(gap.reason),
        ])?;
        tx.commit()?;
        Ok(())
    }

    /// Every gap a session reported for `device`'s `stream`, in the order
    /// recorded, exactly as the session reported it. Ranges recorded
    /// without a session's view ([`Buffer::record_missing`], evictions) are
    /// not gaps of this kind and are left out.
    pub fn gaps(&self, device: &DeviceId, stream: Stream) -> Result<Vec<Gap>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT from_time, to_time, session, first_sequence, last_sequence, reason \
             FROM ledger_ranges WHERE device = ?1 AND stream = ?2 AND kind = ?3 \
             AND reason IS NOT NULL ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![device.0, stream.as_str(), REPORTED_MISSING], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(from, to, session, first, last, reason)| {
                Ok(Gap {
                    device: device.clone(),
                    stream,
                    session,
                    from: from_micros(from)?,
                    to: from_micros(to)?,
                    first_missing: stored_sequence(first)?,
                    last_missing: stored_sequence(last)?,
                    reason: reason_from_sql(&reason)?,
                })
            })
            .collect()
    }
}

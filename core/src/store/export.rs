//! Export cursors: how far each export target (the phone's health store)
//! has taken the buffer's readings.
//!
//! Place in the data flow: beside sync, reading the same rows. An export
//! walks the readings in row-id order and confirms the last row id its
//! target took; the cursor lives in the buffer, so an export cut short (the
//! app killed, the target refusing) resumes at the first reading not
//! confirmed, and readings stored before anyone exported are exported too.
//!
//! Decisions:
//!
//! - **One cursor per id range.** Record and trend readings take separate
//!   row-id ranges ([`super::TREND_ID_BASE`]), so a single "last id" would
//!   skip every record reading stored after a trend reading was exported. A
//!   target keeps one cursor per range, and a batch holds readings of one
//!   range only (record readings first): the batch's last id then names the
//!   range it advances.
//! - **Ids below a cursor are never reused.** New ids continue after the
//!   highest stored id, which eviction may remove; the insert path also
//!   starts after every export cursor, so a new reading can never land
//!   behind one.
//! - **Held-back readings are exported.** Reduction decides what travels to
//!   the cloud; the phone's health store gets every stored reading.
//!   Readings evicted before an export are gone and cannot be exported.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::buffer::{RowValues, SELECT_COLUMNS, StoredReading, TREND_ID_BASE, read_row};
use super::{Buffer, stream_code, to_micros};
use crate::error::{Error, Result};
use crate::model::Stream;

/// How far one export target has taken the readings: the last confirmed
/// row id in each id range (below the range's first id when nothing was
/// confirmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportCursor {
    /// Last confirmed id among record-class readings (ids below
    /// [`TREND_ID_BASE`]); 0 when none.
    pub last_record_id: i64,
    /// Last confirmed id among trend-class readings (ids from
    /// [`TREND_ID_BASE`]); `TREND_ID_BASE - 1` when none.
    pub last_trend_id: i64,
}

impl Default for ExportCursor {
    fn default() -> ExportCursor {
        ExportCursor {
            last_record_id: 0,
            last_trend_id: TREND_ID_BASE - 1,
        }
    }
}

/// The highest export cursor of any target in each range, `(trend,
/// record)`: the insert path hands out ids only above them.
pub(super) fn highest_cursors(
    tx: &rusqlite::Transaction<'_>,
) -> Result<(Option<i64>, Option<i64>)> {
    Ok(tx
        .prepare_cached("SELECT max(last_trend_id), max(last_record_id) FROM export_cursors")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

impl Buffer {
    /// The cursor of `target`; the start of both ranges when it never
    /// confirmed anything.
    pub fn export_cursor(&self, target: &str) -> Result<ExportCursor> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT last_record_id, last_trend_id FROM export_cursors WHERE target = ?1",
            )?
            .query_row([target], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(
            row.map_or_else(ExportCursor::default, |(last_record_id, last_trend_id)| {
                ExportCursor {
                    last_record_id,
                    last_trend_id,
                }
            }),
        )
    }

    /// Up to `limit` stored readings of `streams` after `target`'s cursor,
    /// oldest (lowest row id) first, whatever their sync state or hold-back
    /// mark. All from one id range: record readings while any are pending,
    /// then trend readings. Empty when the target has everything. Marks
    /// nothing: only [`Buffer::advance_export_cursor`] moves the cursor.
    pub fn readings_to_export(
        &self,
        target: &str,
        streams: &[Stream],
        limit: usize,
    ) -> Result<Vec<StoredReading>> {
        if streams.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let cursor = self.export_cursor(target)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // The codes are our own integers, never input text.
        let codes: Vec<String> = streams
            .iter()
            .map(|s| stream_code(*s).to_string())
            .collect();
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM readings WHERE id > ?1 AND id < ?2 \
             AND stream IN ({}) ORDER BY id LIMIT ?3",
            codes.join(",")
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        for (after, below) in [
            (cursor.last_record_id, TREND_ID_BASE),
            (cursor.last_trend_id, i64::MAX),
        ] {
            let rows = stmt
                .query_map(params![after, below, limit], read_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if !rows.is_empty() {
                return rows.into_iter().map(RowValues::into_stored).collect();
            }
        }
        Ok(Vec::new())
    }

    /// Records that `target` took every reading of the range `last_id`
    /// falls in up to `last_id` (the id of the last reading of a batch
    /// from [`Buffer::readings_to_export`]), in its own transaction.
    /// Never moves a cursor back: confirming an older id changes nothing.
    /// Returns whether the cursor moved.
    ///
    /// Fails with [`Error::InvalidInput`] for an id no stored reading ever
    /// had (it would skip readings not yet stored).
    pub fn advance_export_cursor(&mut self, target: &str, last_id: i64) -> Result<bool> {
        if last_id <= 0 {
            return Err(Error::InvalidInput(
                "an export cursor is a positive reading id".into(),
            ));
        }
        let trend = last_id >= TREND_ID_BASE;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (range_start, range_end) = if trend {
            (TREND_ID_BASE, i64::MAX)
        } else {
            (0, TREND_ID_BASE)
        };
        let highest: Option<i64> = tx
            .prepare_cached("SELECT max(id) FROM readings WHERE id >= ?1 AND id < ?2")?
            .query_row(params![range_start, range_end], |r| r.get(0))?;
        let current = {
            let row: Option<(i64, i64)> = tx
                .prepare_cached(
                    "SELECT last_record_id, last_trend_id FROM export_cursors WHERE target = ?1",
                )?
                .query_row([target], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            row.map_or_else(ExportCursor::default, |(last_record_id, last_trend_id)| {
                ExportCursor {
                    last_record_id,
                    last_trend_id,
                }
            })
        };
        let mine = if trend {
            current.last_trend_id
        } else {
            current.last_record_id
        };
        if last_id <= mine {
            return Ok(false);
        }
        if highest.is_none_or(|h| last_id > h) {
            return Err(Error::InvalidInput(
                "export cursor is past every stored reading".into(),
            ));
        }
        let next = if trend {
            ExportCursor {
                last_trend_id: last_id,
                ..current
            }
        } else {
            ExportCursor {
                last_record_id: last_id,
                ..current
            }
        };
        tx.prepare_cached(
            "INSERT INTO export_cursors (target, last_record_id, last_trend_id, updated_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (target) DO UPDATE SET \
             last_record_id = excluded.last_record_id, last_trend_id = excluded.last_trend_id, \
             updated_at = excluded.updated_at",
        )?
        .execute(params![
            target,
            next.last_record_id,
            next.last_trend_id,
            to_micros(chrono::Utc::now())
        ])?;
        tx.commit()?;
        Ok(true)
    }
}

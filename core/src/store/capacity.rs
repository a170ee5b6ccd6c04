//! The capacity policy: a byte budget, pressure events before it is reached,
//! and counted evictions when it is.
//!
//! Place in the data flow: checked inside every [`super::Buffer::insert`]
//! transaction, so a reading is either stored within the budget, stored
//! after counted evictions, or refused with [`Error::BufferFull`]; never
//! dropped silently.
//!
//! Decisions:
//!
//! - **Size in use, not file size.** SQLite files do not shrink without
//!   `VACUUM`; freed pages go to the freelist and are reused. The budget
//!   therefore measures `(page_count - freelist_count) × page_size`.
//! - **Eviction order.** First readings the cloud has acknowledged (any
//!   class: the cloud holds them, dropping the local copy loses nothing),
//!   oldest first; then local-only readings (the CGM trend, which the
//!   cloud derives itself: dropping them shortens only the phone's own
//!   history); then the oldest unsent trend-class readings. Unsent
//!   record-class readings, in-flight readings and the alert outbox are
//!   never evicted. Each eviction is added to the ledger (counts and
//!   sensor-time ranges) in the same transaction and returned as a
//!   [`BufferEvent::Evicted`].
//! - **The default budget is derived from a measurement.** With realistic
//!   raw provenance bytes, the worst-case mix below measured
//!   [`MEASURED_BYTES_PER_READING`] bytes per reading on disk (table plus
//!   indexes, the test `measured_bytes_per_reading_stays_within_the_stated_figure`
//!   re-measures it). The worst case over 72 hours is a 1-minute CGM
//!   (glucose and its trend: 2 per minute), a 1 Hz heart-rate strap sending
//!   up to 4 RR intervals per notification (a sustained 240 /min, above any
//!   real heart rate), and a 1 Hz oximeter (SpO2 and pulse rate): 7 readings
//!   per second plus 2 per minute, [`WORST_CASE_READINGS_72H`] readings.
//!   The default budget is that times the measured size plus 10 % headroom.
//!   Measured on 2026-11-25 (x86-64 Linux, bundled SQLite 3.50.2, 4 KiB
//!   pages): 144.7 bytes per reading over two hours of the mix (50,640
//!   readings); stated as 150. Schema 4 (streaming reduction) adds the
//!   `decided` flag and a partial index of undecided readings, which holds
//!   every trend reading while no sync runs (the worst case, offline):
//!   156.3 bytes measured (2026-12-03), stated as 160. Default budget:
//!   1,823,040 readings × 160 B × 1.1 = 320,855,040 bytes (about 306 MiB). Patient and device ids are
//!   stored as text on every row (12 and 5-7 bytes in the measurement);
//!   longer ids cost more.

use std::collections::{BTreeMap, VecDeque};

use rusqlite::{Connection, Transaction};

use super::from_micros;
use super::ledger::{self, LedgerRange, RangeKind, Tally};
use crate::error::{Error, Result};
use crate::model::{DeviceId, Stream};

/// Bytes one reading occupies on disk (rows plus indexes), measured with
/// the worst-case stream mix and realistic raw bytes; see the module docs.
pub const MEASURED_BYTES_PER_READING: u64 = 160;

/// Readings the worst-case device set produces in 72 hours: 7 per second
/// (heart rate, 4 RR intervals, SpO2, pulse rate) plus 2 per minute (CGM
/// glucose and trend).
pub const WORST_CASE_READINGS_72H: u64 = 72 * 3600 * 7 + 72 * 60 * 2;

/// The default byte budget: [`WORST_CASE_READINGS_72H`] readings of
/// [`MEASURED_BYTES_PER_READING`] bytes, plus 10 % headroom.
pub const DEFAULT_BUDGET_BYTES: u64 =
    WORST_CASE_READINGS_72H * MEASURED_BYTES_PER_READING / 10 * 11;

/// Fraction of the budget past which [`PressureLevel::High`] is reported.
pub const HIGH_WATERMARK: f64 = 0.80;

/// Fraction of the budget past which [`PressureLevel::Critical`] is reported.
pub const CRITICAL_WATERMARK: f64 = 0.95;

/// The byte budget the app sets for the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityPolicy {
    /// Bytes of database pages in use the buffer may reach before evicting.
    pub budget_bytes: u64,
}

impl Default for CapacityPolicy {
    /// [`DEFAULT_BUDGET_BYTES`]: at least 72 hours of the worst case.
    fn default() -> CapacityPolicy {
        CapacityPolicy {
            budget_bytes: DEFAULT_BUDGET_BYTES,
        }
    }
}

pub use vigil_model::wire::PressureLevel;

/// Readings removed by one eviction, by stream and kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Eviction {
    /// Acknowledged readings removed (the cloud holds them).
    pub acknowledged: u64,
    /// Unsent trend readings removed (lost to the cloud, counted).
    pub unsent: u64,
    /// Local-only readings removed (never meant for the cloud).
    pub local: u64,
    /// One range per device, stream and kind, as added to the ledger.
    pub ranges: Vec<LedgerRange>,
}

/// Something the app's listener should hear about the buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum BufferEvent {
    /// The pressure level changed (emitted on every change, up or down).
    Pressure {
        /// The new level.
        level: PressureLevel,
        /// Bytes in use now.
        used_bytes: u64,
        /// The budget.
        budget_bytes: u64,
        /// Hours until the budget is reached at the recent insert rate, when
        /// the buffer is growing and a rate can be estimated.
        hours_to_overflow: Option<f64>,
    },
    /// Readings were evicted to stay within the budget.
    Evicted(Eviction),
}

/// Bytes of pages in use: `(page_count - freelist_count) × page_size`.
pub(crate) fn used_bytes(conn: &Connection) -> Result<u64> {
    let (pages, free, size): (i64, i64, i64) = conn.query_row(
        "SELECT p.page_count, f.freelist_count, s.page_size \
         FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let in_use = u64::try_from(pages.saturating_sub(free)).unwrap_or(0);
    Ok(in_use.saturating_mul(u64::try_from(size).unwrap_or(0)))
}

/// Pressure bookkeeping kept between inserts.
#[derive(Debug)]
pub(crate) struct CapacityState {
    pub(crate) policy: CapacityPolicy,
    level: PressureLevel,
    /// (latest receive time in µs, bytes in use) after recent inserts, at
    /// most one hour of receive time: the growth rate the estimate uses.
    samples: VecDeque<(i64, u64)>,
}

const RATE_WINDOW_MICROS: i64 = 3_600_000_000;
const MAX_SAMPLES: usize = 256;

impl CapacityState {
    pub(crate) fn new(policy: CapacityPolicy) -> CapacityState {
        CapacityState {
            policy,
            level: PressureLevel::Normal,
            samples: VecDeque::new(),
        }
    }

    pub(crate) fn level_of(&self, used: u64) -> PressureLevel {
        let budget = self.policy.budget_bytes as f64;
        let used = used as f64;
        if used >= budget * CRITICAL_WATERMARK {
            PressureLevel::Critical
        } else if used >= budget * HIGH_WATERMARK {
            PressureLevel::High
        } else {
            PressureLevel::Normal
        }
    }

    /// Records the size after an insert whose newest reading arrived at
    /// `receive` and returns a pressure event when the level changed.
    ///
    /// The rate uses the readings' receive times rather than the wall clock,
    /// so a replayed trace and a test see the rate the data implies.
    pub(crate) fn observe(&mut self, used: u64, receive: Option<i64>) -> Option<BufferEvent> {
        if let Some(t) = receive {
            if self.samples.back().is_some_and(|&(last, _)| t < last) {
                // A backfill of old records: not a measure of growth per hour.
            } else {
                self.samples.push_back((t, used));
            }
            while self.samples.len() > MAX_SAMPLES
                || (self.samples.len() > 2
                    && self
                        .samples
                        .front()
                        .is_some_and(|&(first, _)| t - first > RATE_WINDOW_MICROS))
            {
                self.samples.pop_front();
            }
        }
        let level = self.level_of(used);
        if level == self.level {
            return None;
        }
        self.level = level;
        Some(BufferEvent::Pressure {
            level,
            used_bytes: used,
            budget_bytes: self.policy.budget_bytes,
            hours_to_overflow: self.hours_to_overflow(used),
        })
    }

    fn hours_to_overflow(&self, used: u64) -> Option<f64> {
        let (&(t0, b0), &(t1, b1)) = (self.samples.front()?, self.samples.back()?);
        if t1 <= t0 || b1 <= b0 {
            return None;
        }
        let bytes_per_hour = (b1 - b0) as f64 / ((t1 - t0) as f64 / RATE_WINDOW_MICROS as f64);
        let left = self.policy.budget_bytes.saturating_sub(used) as f64;
        Some(left / bytes_per_hour)
    }
}

/// Brings the database within budget inside the insert's transaction:
/// evicts acknowledged readings, then unsent trend readings, oldest first,
/// and counts every one in the ledger. Returns the bytes in use afterwards
/// and the eviction, if any. Fails with [`Error::BufferFull`] (and the
/// caller's transaction rolls back) when that is not enough.
pub(crate) fn enforce(
    tx: &Transaction<'_>,
    policy: CapacityPolicy,
    trend_streams_sql: &str,
) -> Result<(u64, Option<Eviction>)> {
    let budget = policy.budget_bytes;
    let mut used = used_bytes(tx)?;
    if used <= budget {
        return Ok((used, None));
    }
    // Evict a little below the budget so the next inserts do not each pay
    // for an eviction round.
    let target = budget - budget / 100;
    let phases = [
        (RangeKind::EvictedAcknowledged, "sync_state = 2".to_string()),
        (RangeKind::EvictedLocal, "sync_state = 3".to_string()),
        (
            RangeKind::EvictedUnsent,
            format!("sync_state = 0 AND stream IN ({trend_streams_sql})"),
        ),
    ];
    let mut spans: BTreeMap<(String, Stream, RangeKind), (i64, i64, u64)> = BTreeMap::new();
    for (kind, filter) in &phases {
        let sql = format!(
            "DELETE FROM readings WHERE id IN \
             (SELECT id FROM readings WHERE {filter} ORDER BY id LIMIT ?1) \
             RETURNING device, stream, sensor_time"
        );
        let mut stmt = tx.prepare_cached(&sql)?;
        while used > target {
            let want = (used - target) / MEASURED_BYTES_PER_READING.max(1);
            let chunk = i64::try_from(want.max(256)).unwrap_or(i64::MAX);
            let rows = stmt
                .query_map([chunk], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if rows.is_empty() {
                break;
            }
            for (device, stream, t) in rows {
                let stream = super::stream_from_code(stream).ok_or_else(|| Error::Storage {
                    code: None,
                    message: "stored reading has an invalid stream".into(),
                })?;
                let span = spans.entry((device, stream, *kind)).or_insert((t, t, 0));
                span.0 = span.0.min(t);
                span.1 = span.1.max(t);
                span.2 += 1;
            }
            used = used_bytes(tx)?;
        }
    }
    let mut eviction = Eviction::default();
    let mut tallies: BTreeMap<(&str, Stream), Tally> = BTreeMap::new();
    for ((device, stream, kind), (from, to, count)) in &spans {
        let tally = tallies.entry((device.as_str(), *stream)).or_default();
        match kind {
            RangeKind::EvictedAcknowledged => {
                tally.evicted_acknowledged += count;
                eviction.acknowledged += count;
            }
            RangeKind::EvictedLocal => {
                tally.evicted_local += count;
                eviction.local += count;
            }
            RangeKind::EvictedUnsent | RangeKind::ReportedMissing => {
                tally.evicted_unsent += count;
                eviction.unsent += count;
            }
        }
        let range = LedgerRange {
            device: DeviceId(device.clone()),
            stream: *stream,
            kind: *kind,
            from: from_micros(*from)?,
            to: from_micros(*to)?,
            count: *count,
        };
        ledger::add_range(tx, &range)?;
        eviction.ranges.push(range);
    }
    ledger::add_tallies(tx, &tallies)?;
    if used > budget {
        return Err(Error::BufferFull {
            used_bytes: used,
            budget_bytes: budget,
        });
    }
    Ok((used, (!eviction.ranges.is_empty()).then_some(eviction)))
}

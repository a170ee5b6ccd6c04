//! Streaming reduction at the sync cadence: before a batch is taken, decide
//! every trend reading whose segment has closed.
//!
//! Sits between the buffer (every trend reading arrives undecided) and
//! batch assembly (which sends decided readings only). Each pass resumes
//! each series' [`BoundedReducer`] from the anchor the buffer keeps, pushes
//! the series' undecided readings in time order, and commits what the
//! reducer decided and the new anchor in one transaction; the open tail
//! (readings after the last kept one) stays undecided for the next pass.
//! So a reading is decided when its segment closes, never because a batch
//! ended, and a kill between passes changes nothing: the next pass starts
//! from the same stored state and reaches the same decisions.
//!
//! Two decisions shaped it:
//!
//! - **A tail that no reading will close is closed by time.** When the
//!   newest reading of a series is older than the stream's gap threshold
//!   (the sensor went quiet), the reducer is finished and that reading
//!   kept. It costs nothing: the next reading after such a pause is a gap,
//!   and the reducer keeps both sides of a gap anyway.
//! - **Readings that cannot extend the line are kept.** A reading before
//!   the anchor (a late backfill into a closed part of the series) is kept
//!   and the open segment goes on; one at the same time as the previous
//!   reading closes the segment, is kept, and the series resumes from it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::model::{Sample, Stream};
use crate::reduce::{BoundedReducer, Decision, ReducerConfig};
use crate::store::{Buffer, Decisions, StoredReading};

/// What one pass decided for one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Readings decided kept.
    pub kept: u64,
    /// Readings decided held back.
    pub held_back: u64,
    /// Readings still undecided (their segment is open).
    pub open: u64,
}

/// Decides every reading of `stream` whose segment has closed, under
/// [`ReducerConfig::for_stream`] (a record stream has nothing to decide),
/// keeping every reading at the time of an alert in the outbox. `now` is
/// the phone's clock: it closes tails that have gone quiet.
pub fn decide_closed_segments(
    buffer: &mut Buffer,
    stream: Stream,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let Some(config) = ReducerConfig::for_stream(stream) else {
        return Ok(PassReport::default());
    };
    decide_with(buffer, stream, config, now)
}

/// [`decide_closed_segments`] under an explicit configuration (what the
/// measurement of other rules uses).
pub fn decide_with(
    buffer: &mut Buffer,
    stream: Stream,
    config: ReducerConfig,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let series = buffer.undecided(stream)?;
    if series.is_empty() {
        return Ok(PassReport::default());
    }
    let times = series.values().flatten().map(|r| r.reading.sensor_time);
    let (from, to) = (times.clone().min(), times.max());
    let alerts: HashSet<DateTime<Utc>> = match (from, to) {
        (Some(from), Some(to)) => buffer.alert_times(from, to)?.into_iter().collect(),
        _ => HashSet::new(),
    };
    let mut decisions = Decisions::default();
    let mut report = PassReport::default();
    for (key, readings) in &series {
        let anchor = buffer.reduction_anchor(stream, key)?;
        let mut pass = SeriesPass::new(config, anchor)?;
        for r in readings {
            pass.push(r, alerts.contains(&r.reading.sensor_time))?;
        }
        if readings
            .last()
            .is_some_and(|r| now - r.reading.sensor_time > config.gap_threshold())
        {
            pass.finish();
        }
        report.open += pass.reducer.undecided() as u64;
        for &(_, held) in &pass.decided {
            if held {
                report.held_back += 1;
            } else {
                report.kept += 1;
            }
        }
        decisions.readings.extend(pass.decided);
        if let Some(a) = pass.reducer.anchor()
            && Some(a) != anchor
        {
            decisions.anchors.push((key.clone(), a));
        }
    }
    buffer.record_decisions(stream, &decisions)?;
    Ok(report)
}

/// One series' reducer and the row ids of the readings pushed into it.
struct SeriesPass {
    config: ReducerConfig,
    reducer: BoundedReducer,
    /// Row id of each pushed reading, by the reducer's index.
    ids: HashMap<u64, i64>,
    next_index: u64,
    /// Time of the anchor or the last reading pushed.
    last: Option<DateTime<Utc>>,
    out: Vec<Decision>,
    decided: Vec<(i64, bool)>,
}

impl SeriesPass {
    fn new(config: ReducerConfig, anchor: Option<Sample>) -> Result<Self> {
        let (reducer, next_index) = match anchor {
            Some(a) => (BoundedReducer::resume(config, a)?, 1),
            None => (BoundedReducer::new(config)?, 0),
        };
        Ok(SeriesPass {
            config,
            reducer,
            ids: HashMap::new(),
            next_index,
            last: anchor.map(|a| a.time),
            out: Vec::new(),
            decided: Vec::new(),
        })
    }

    fn push(&mut self, r: &StoredReading, must_keep: bool) -> Result<()> {
        let sample = Sample {
            time: r.reading.sensor_time,
            value: r.reading.value,
        };
        match self.reducer.push(sample, must_keep, &mut self.out) {
            Ok(()) => {
                self.ids.insert(self.next_index, r.id);
                self.next_index += 1;
                self.last = Some(sample.time);
            }
            // Before the anchor: a late arrival into a closed part of the
            // series, kept, and the open segment goes on unchanged.
            Err(_) if self.last.is_some_and(|l| sample.time < l) => {
                self.decided.push((r.id, false));
            }
            Err(_) => {
                // At the same time as the previous reading: decide what is
                // open, keep this one and start afresh from it.
                self.finish();
                self.decided.push((r.id, false));
                self.reducer = BoundedReducer::resume(self.config, sample)?;
                self.ids.clear();
                self.next_index = 1;
            }
        }
        self.drain();
        Ok(())
    }

    fn finish(&mut self) {
        self.reducer.finish(&mut self.out);
        self.drain();
    }

    fn drain(&mut self) {
        for d in self.out.drain(..) {
            if let Some(id) = self.ids.remove(&d.index) {
                self.decided.push((id, !d.kept));
            }
        }
    }
}

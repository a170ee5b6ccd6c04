//! The bounded-error reducer: greedy longest lines within a tolerance.
//!
//! From the last kept reading (the anchor), a reading `j` can end the
//! current line when the line anchor→`j` passes within the tolerance of
//! every reading between them. For reading `i` that is a condition on the
//! line's slope alone: `|v_a + s·(t_i - t_a) - v_i| <= tol`, an interval of
//! slopes. The intersection of those intervals (the "door") is kept
//! incrementally, so testing a candidate end is O(1). While the door is
//! open, a later reading may still end the line; once it closes, none can,
//! and the reducer keeps the last reading that could, makes it the new
//! anchor and rescans the readings after it. That is what makes the bound
//! exact where the classic swinging door only approximates it.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Decision, GlucoseBand, ReducerConfig};
use crate::error::{Error, Result};
use crate::reading::Sample;

/// Rejects a reading that cannot follow the previous one.
pub(super) fn check_next(sample: Sample, last: Option<DateTime<Utc>>, index: u64) -> Result<()> {
    if !sample.value.is_finite() {
        return Err(Error::InvalidInput(format!(
            "reduction: reading {index} has a value that is not a finite number"
        )));
    }
    if let Some(last) = last
        && sample.time <= last
    {
        return Err(Error::InvalidInput(format!(
            "reduction: reading {index} at {} is not after the previous reading at {last}",
            sample.time
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Point {
    index: u64,
    sample: Sample,
    /// Seconds since the reducer's first reading.
    t: f64,
    forced: bool,
}

/// Online bounded-error reducer for one stream.
///
/// Guarantees, for every series pushed and finished:
/// - every held-back reading lies within `tolerance` of [`super::interpolate`]
///   over the kept readings;
/// - kept: the first reading, the last reading at [`BoundedReducer::finish`],
///   every reading marked `must_keep`, both readings around every gap,
///   both readings of every consecutive pair in different [`GlucoseBand`]s
///   (when `glucose_bands` is on), and at least one reading every
///   `max_silence` wherever readings exist;
/// - kept readings are returned unchanged and in push order.
///
/// Readings wait undecided for at most `max_silence` (the phone syncs only
/// decided readings, so a batch never forces an extra keep).
#[derive(Debug, Clone)]
pub struct BoundedReducer {
    config: ReducerConfig,
    /// The tolerance less a hair, so that float rounding in the cloud's
    /// interpolation can never push an error past the stated tolerance.
    tolerance: f64,
    gap_threshold: TimeDelta,
    max_silence_s: f64,
    origin: Option<DateTime<Utc>>,
    previous: Option<Sample>,
    next_index: u64,
    /// The newest reading: its band and gap status depend on the next one.
    held: Option<Point>,
    anchor: Option<Point>,
    /// Readings after the anchor, scanned, undecided.
    pending: Vec<Point>,
    lower: f64,
    upper: f64,
    /// Position in `pending` of the furthest reading that can end the line.
    last_valid: usize,
    queue: VecDeque<Point>,
}

impl BoundedReducer {
    /// A reducer with `config`; fails with [`Error::InvalidInput`] when the
    /// configuration is unusable.
    pub fn new(config: ReducerConfig) -> Result<Self> {
        config.validate()?;
        let silence = config
            .max_silence
            .num_nanoseconds()
            .map_or(f64::MAX, |n| n as f64 / 1e9);
        Ok(BoundedReducer {
            tolerance: config.tolerance * (1.0 - 1e-9),
            gap_threshold: config.gap_threshold(),
            max_silence_s: silence,
            config,
            origin: None,
            previous: None,
            next_index: 0,
            held: None,
            anchor: None,
            pending: Vec::new(),
            lower: f64::NEG_INFINITY,
            upper: f64::INFINITY,
            last_valid: 0,
            queue: VecDeque::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ReducerConfig {
        &self.config
    }

    /// A reducer that continues a series whose readings up to and
    /// including `anchor` (the last kept one) are already decided: how the
    /// phone resumes reduction from the state it keeps in its buffer, after
    /// a sync or a restart. Pushing the undecided readings after `anchor`
    /// then gives exactly the decisions an uninterrupted reducer would have
    /// made (no decision is emitted for the anchor itself; indices count
    /// from 1 for the first reading after it).
    pub fn resume(config: ReducerConfig, anchor: Sample) -> Result<Self> {
        let mut r = Self::new(config)?;
        check_next(anchor, None, 0)?;
        let point = Point {
            index: 0,
            sample: anchor,
            t: 0.0,
            forced: true,
        };
        r.origin = Some(anchor.time);
        r.previous = Some(anchor);
        r.anchor = Some(point);
        r.next_index = 1;
        Ok(r)
    }

    /// The last kept reading, from which the open segment runs.
    pub fn anchor(&self) -> Option<Sample> {
        self.anchor.map(|a| a.sample)
    }

    /// How many pushed readings are still undecided.
    pub fn undecided(&self) -> usize {
        self.pending.len() + usize::from(self.held.is_some())
    }

    /// See [`super::Reducer::push`].
    pub fn push(&mut self, sample: Sample, must_keep: bool, out: &mut Vec<Decision>) -> Result<()> {
        check_next(sample, self.previous.map(|p| p.time), self.next_index)?;
        let origin = self.origin.unwrap_or(sample.time);
        let t = (sample.time - origin).num_nanoseconds().ok_or_else(|| {
            Error::InvalidInput(format!(
                "reduction: reading {} is more than 292 years after the first",
                self.next_index
            ))
        })? as f64
            / 1e9;
        self.origin = Some(origin);
        let mut point = Point {
            index: self.next_index,
            sample,
            t,
            forced: must_keep,
        };
        if let Some(prev) = self.previous {
            let gap = sample.time - prev.time > self.gap_threshold;
            let band = self.config.glucose_bands
                && GlucoseBand::of(prev.value) != GlucoseBand::of(sample.value);
            if gap || band {
                point.forced = true;
                if let Some(held) = self.held.as_mut() {
                    held.forced = true;
                }
            }
        }
        if let Some(held) = self.held.take() {
            self.scan(held, out);
        }
        self.held = Some(point);
        self.previous = Some(sample);
        self.next_index += 1;
        Ok(())
    }

    /// See [`super::Reducer::finish`].
    pub fn finish(&mut self, out: &mut Vec<Decision>) {
        if let Some(mut last) = self.held.take() {
            last.forced = true;
            self.scan(last, out);
        }
    }

    fn scan(&mut self, point: Point, out: &mut Vec<Decision>) {
        self.queue.push_back(point);
        while let Some(p) = self.queue.pop_front() {
            let Some(a) = self.anchor else {
                self.anchor = Some(p);
                out.push(decision(p, true));
                continue;
            };
            let dt = seconds_between(&a, &p);
            if dt > self.max_silence_s && !self.pending.is_empty() {
                self.queue.push_front(p);
                self.close(out);
                continue;
            }
            let (v, va) = (p.sample.value, a.sample.value);
            let slope = (v - va) / dt;
            let valid = self.pending.is_empty() || (self.lower <= slope && slope <= self.upper);
            self.pending.push(p);
            if valid {
                self.last_valid = self.pending.len() - 1;
            }
            if p.forced {
                // Valid: the line ends here. Not: it ends at the last reading
                // that could end it, and `p` is rescanned from there.
                self.close(out);
                continue;
            }
            self.lower = self.lower.max((v - self.tolerance - va) / dt);
            self.upper = self.upper.min((v + self.tolerance - va) / dt);
            if self.lower > self.upper {
                self.close(out);
            }
        }
    }

    /// Keeps `pending[last_valid]`, holds back the readings before it, and
    /// queues the readings after it for rescanning from the new anchor.
    fn close(&mut self, out: &mut Vec<Decision>) {
        let rest = self
            .pending
            .split_off((self.last_valid + 1).min(self.pending.len()));
        if let Some(end) = self.pending.pop() {
            out.extend(self.pending.drain(..).map(|p| decision(p, false)));
            out.push(decision(end, true));
            self.anchor = Some(end);
        }
        for p in rest.into_iter().rev() {
            self.queue.push_front(p);
        }
        self.lower = f64::NEG_INFINITY;
        self.upper = f64::INFINITY;
        self.last_valid = 0;
    }
}

/// Seconds from `a` to `p`, from their times rather than from their offsets
/// to the first reading, so a resumed reducer (whose first reading is the
/// anchor) computes exactly the slopes an uninterrupted one does.
fn seconds_between(a: &Point, p: &Point) -> f64 {
    (p.sample.time - a.sample.time)
        .num_nanoseconds()
        .map_or(p.t - a.t, |n| n as f64 / 1e9)
}

fn decision(p: Point, kept: bool) -> Decision {
    Decision {
        index: p.index,
        sample: p.sample,
        kept,
    }
}

//! Bounded-error trend reduction: which readings the cloud needs.
//!
//! Sits after the buffer and before batch sync. Alerts run earlier, on every
//! raw reading, so nothing here can change what they see: a reducer only
//! reads samples and answers "keep" or "hold back" for each, and the buffer
//! still holds every reading.
//!
//! Two decisions shaped it:
//!
//! - **A guarantee, not a heuristic.** [`BoundedReducer`] keeps a reading
//!   only when the straight line between kept readings would otherwise miss
//!   some held-back reading by more than the stream's tolerance, so the
//!   cloud's [`interpolate`] recovers every held-back reading within it. It
//!   greedily extends each line as far as the tolerance allows (an exact
//!   feasible-slope window, not the classic swinging door, whose archived
//!   points can miss by more than the tolerance).
//! - **Clinically meaningful readings are never interpolated.** Both sides
//!   of a glucose band change ([`GlucoseBand`]), both sides of a gap, every
//!   reading the caller marks (alert readings) and one reading per
//!   `max_silence` are kept, so time in ranges from the reconstruction
//!   equals the full series' exactly, and a gap is never bridged.
//!
//! The same code runs online on the phone (push readings one by one; a
//! decision may wait for later readings, at most `max_silence`) and offline
//! over a slice ([`reduce`]), with identical results.

mod bands;
mod bounded;
mod reconstruct;
mod relative;

pub use bands::GlucoseBand;
pub use bounded::BoundedReducer;
pub use reconstruct::{interpolate, max_error};
pub use relative::RelativeChangeReducer;

use chrono::TimeDelta;

use crate::error::{Error, Result};
use crate::reading::{Sample, Stream};

/// Settings of the bounded-error reducer for one stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReducerConfig {
    /// Largest allowed distance, in the stream's unit, between a held-back
    /// reading and the line through the kept readings around it.
    pub tolerance: f64,
    /// How often the device reports (5 min for most CGMs, 1 s for straps).
    pub expected_interval: TimeDelta,
    /// A gap is more than `gap_factor × expected_interval` without a
    /// reading; the readings on both sides of it are kept.
    pub gap_factor: f64,
    /// Longest time between two kept readings when readings exist between
    /// them (the cloud hears from the stream at least this often).
    pub max_silence: TimeDelta,
    /// Keep both readings of every pair of consecutive readings in different
    /// glucose bands (for glucose streams).
    pub glucose_bands: bool,
}

impl ReducerConfig {
    /// Defaults for CGM glucose: 3 mg/dL, gaps at 1.5 intervals, 60 min
    /// silence, band rule on.
    pub fn glucose(expected_interval: TimeDelta) -> Self {
        ReducerConfig {
            tolerance: 3.0,
            expected_interval,
            gap_factor: 1.5,
            max_silence: TimeDelta::minutes(60),
            glucose_bands: true,
        }
    }

    /// Defaults for 1 Hz heart rate: 2 bpm, gaps at 1.5 s, 60 min silence.
    pub fn heart_rate() -> Self {
        ReducerConfig {
            tolerance: 2.0,
            expected_interval: TimeDelta::seconds(1),
            gap_factor: 1.5,
            max_silence: TimeDelta::minutes(60),
            glucose_bands: false,
        }
    }

    /// Defaults for a trend stream, or `None` for a record stream (record
    /// streams are lossless and never reduced).
    pub fn for_stream(stream: Stream) -> Option<Self> {
        match stream {
            Stream::Glucose => Some(Self::glucose(TimeDelta::minutes(5))),
            // The sensor's rate of change: half a trend arrow's width (the
            // arrows step at 1, 2 and 3 mg/dL/min), no bands. The SDK no
            // longer uploads this stream (`Stream::is_uploaded`), so only
            // offline reduction of a trace still uses it.
            Stream::GlucoseTrend => Some(ReducerConfig {
                tolerance: 0.5,
                glucose_bands: false,
                ..Self::glucose(TimeDelta::minutes(5))
            }),
            Stream::HeartRate | Stream::PulseRate => Some(Self::heart_rate()),
            Stream::Spo2 => Some(ReducerConfig {
                tolerance: 1.0,
                ..Self::heart_rate()
            }),
            _ => None,
        }
    }

    /// Checks that every setting is usable; [`Error::InvalidInput`] names
    /// the first that is not.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(Error::InvalidInput(format!("reducer config: {msg}")));
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return bad("tolerance must be finite and not negative");
        }
        if self.expected_interval <= TimeDelta::zero() {
            return bad("expected interval must be positive");
        }
        if !(self.gap_factor.is_finite() && self.gap_factor >= 1.0) {
            return bad("gap factor must be finite and at least 1");
        }
        if self.max_silence <= TimeDelta::zero() {
            return bad("max silence must be positive");
        }
        Ok(())
    }

    /// The time without a reading beyond which a gap is declared.
    pub fn gap_threshold(&self) -> TimeDelta {
        let nanos = self
            .expected_interval
            .num_nanoseconds()
            .map_or(f64::MAX, |n| n as f64);
        // Saturating float-to-int cast: an absurd interval gives an absurd
        // but harmless threshold rather than a panic.
        TimeDelta::nanoseconds((nanos * self.gap_factor) as i64)
    }
}

/// The classic rule: send a reading when it moved more than `fraction` from
/// the last one sent. Kept for comparison; it bounds nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelativeChange {
    /// Relative change that triggers a send (0.10 for the classic 10 %).
    pub fraction: f64,
}

impl Default for RelativeChange {
    fn default() -> Self {
        RelativeChange { fraction: 0.10 }
    }
}

/// A reduction policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// Bounded error with forced keeps ([`BoundedReducer`]).
    BoundedError(ReducerConfig),
    /// Relative change ([`RelativeChangeReducer`]).
    RelativeChange(RelativeChange),
}

/// The final decision about one pushed reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Position of the reading in push order, from 0.
    pub index: u64,
    /// The reading, unchanged.
    pub sample: Sample,
    /// `true`: the cloud needs it; `false`: recoverable from the kept ones.
    pub kept: bool,
}

/// An online reducer of either policy.
///
/// Contract shared by both: decisions come out in push order, each exactly
/// once, never revised. No reading is decided before the next one arrives
/// (or [`Reducer::finish`] is called); the bounded reducer may wait longer,
/// until a reading arrives more than `max_silence` after the last kept one.
#[derive(Debug, Clone)]
pub enum Reducer {
    /// See [`BoundedReducer`] (boxed: it carries its scan window).
    Bounded(Box<BoundedReducer>),
    /// See [`RelativeChangeReducer`].
    Relative(RelativeChangeReducer),
}

impl Reducer {
    /// A reducer for `policy`; fails on an invalid configuration.
    pub fn new(policy: &Policy) -> Result<Self> {
        Ok(match policy {
            Policy::BoundedError(config) => {
                Reducer::Bounded(Box::new(BoundedReducer::new(*config)?))
            }
            Policy::RelativeChange(rule) => Reducer::Relative(RelativeChangeReducer::new(*rule)?),
        })
    }

    /// Feeds one reading; `must_keep` marks a reading that must reach the
    /// cloud (it raised an alert). Appends any decisions now final to `out`.
    ///
    /// Fails with [`Error::InvalidInput`] on a non-finite value or a time
    /// not after the previous reading's; the reducer is then unchanged.
    pub fn push(&mut self, sample: Sample, must_keep: bool, out: &mut Vec<Decision>) -> Result<()> {
        match self {
            Reducer::Bounded(r) => r.push(sample, must_keep, out),
            Reducer::Relative(r) => r.push(sample, must_keep, out),
        }
    }

    /// Ends the series: decides every pending reading (the last one is
    /// kept). The reducer may be fed again afterwards.
    pub fn finish(&mut self, out: &mut Vec<Decision>) {
        match self {
            Reducer::Bounded(r) => r.finish(out),
            Reducer::Relative(r) => r.finish(out),
        }
    }
}

/// Reduces a whole slice: the indices of the kept samples, ascending.
///
/// `must_keep` is either empty (nothing marked) or one flag per sample.
/// Same result as pushing the samples one by one and finishing.
pub fn reduce(samples: &[Sample], must_keep: &[bool], policy: &Policy) -> Result<Vec<usize>> {
    if !must_keep.is_empty() && must_keep.len() != samples.len() {
        return Err(Error::InvalidInput(format!(
            "reduce: {} must-keep flags for {} samples",
            must_keep.len(),
            samples.len()
        )));
    }
    let mut reducer = Reducer::new(policy)?;
    let mut decisions = Vec::with_capacity(samples.len());
    for (i, sample) in samples.iter().enumerate() {
        let marked = must_keep.get(i).copied().unwrap_or(false);
        reducer.push(*sample, marked, &mut decisions)?;
    }
    reducer.finish(&mut decisions);
    Ok(decisions
        .iter()
        .filter(|d| d.kept)
        .filter_map(|d| usize::try_from(d.index).ok())
        .collect())
}

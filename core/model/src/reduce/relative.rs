//! The classic relative-change rule, for comparison with the bounded one.

use chrono::{DateTime, Utc};

use super::{Decision, RelativeChange};
use crate::error::{Error, Result};
use crate::reading::Sample;

/// Keeps a reading when it differs from the last kept one by more than
/// `fraction` of that value, plus the first reading, every reading the
/// caller marks, and the last reading of a finished series (so a slice's
/// reconstruction covers all of it). No error bound: a slow drift just
/// under the fraction, or a spike between kept readings, is lost.
#[derive(Debug, Clone)]
pub struct RelativeChangeReducer {
    fraction: f64,
    last_kept: Option<f64>,
    held: Option<(u64, Sample, bool)>,
    last_time: Option<DateTime<Utc>>,
    next_index: u64,
}

impl RelativeChangeReducer {
    /// A reducer for `rule`; fails unless the fraction is finite and
    /// positive.
    pub fn new(rule: RelativeChange) -> Result<Self> {
        if !(rule.fraction.is_finite() && rule.fraction > 0.0) {
            return Err(Error::InvalidInput(
                "relative change: fraction must be finite and positive".into(),
            ));
        }
        Ok(RelativeChangeReducer {
            fraction: rule.fraction,
            last_kept: None,
            held: None,
            last_time: None,
            next_index: 0,
        })
    }

    /// See [`super::Reducer::push`].
    pub fn push(&mut self, sample: Sample, must_keep: bool, out: &mut Vec<Decision>) -> Result<()> {
        super::bounded::check_next(sample, self.last_time, self.next_index)?;
        if let Some(held) = self.held.take() {
            self.decide(held, false, out);
        }
        self.held = Some((self.next_index, sample, must_keep));
        self.last_time = Some(sample.time);
        self.next_index += 1;
        Ok(())
    }

    /// See [`super::Reducer::finish`].
    pub fn finish(&mut self, out: &mut Vec<Decision>) {
        if let Some(held) = self.held.take() {
            self.decide(held, true, out);
        }
    }

    fn decide(
        &mut self,
        (index, sample, marked): (u64, Sample, bool),
        last: bool,
        out: &mut Vec<Decision>,
    ) {
        let kept = match self.last_kept {
            None => true,
            Some(prev) => {
                marked || last || (sample.value - prev).abs() > self.fraction * prev.abs()
            }
        };
        if kept {
            self.last_kept = Some(sample.value);
        }
        out.push(Decision {
            index,
            sample,
            kept,
        });
    }
}

//! Each patient's resolved glucose summarised per UTC day (the
//! `glucose_days` table): the counts behind the triage list (issue 17), so
//! a list of a thousand patients reads some thirty thousand small rows
//! instead of four million readings.
//!
//! Decisions that shaped it:
//! - **A cache of the resolved series, never a second truth.** A day's
//!   counts are computed here from exactly what every other reader sees,
//!   [`crate::glucose::points`] for that UTC day (precedence between the
//!   phone's CGM, a Nightscout uploader, a CSV import), with the band edges
//!   of `vigil_model::metrics`. Every write that can change a day (a stored
//!   batch, a Nightscout DELETE, a glucose policy) bumps the day's `stale`
//!   generation in the *same transaction* as the write, so a summary is
//!   never taken for current after its day changed.
//! - **Recomputed right after the write, and lazily before any read.** The
//!   resolver needs the whole day across every source, which a backend's
//!   insert statement does not see; so intake recomputes the days it marked
//!   as soon as its transaction commits ([`after_batch`]), and a reader
//!   first recomputes whatever is still stale in its range ([`refresh`]):
//!   a crash between the two, the migration's backfill of existing data, or
//!   a concurrent write all end up recomputed. A recompute lands only if
//!   no write bumped the generation meanwhile.
//! - **Days are UTC days and resolved one at a time.** A day is at most
//!   1,440 one-minute readings, so recomputing one is cheap. Resolving day
//!   by day equals resolving the whole period except where a coincidence
//!   window straddles midnight (the default glucose policy groups readings
//!   less than 5 minutes after a moment's first reading): there a moment
//!   opened by one source before midnight and another source's reading
//!   after it count as two readings instead of one. That touches at most a
//!   reading per source per midnight, far below the triage list's
//!   resolution; the report, which resolves its own period, stays the
//!   reference.

use chrono::TimeDelta;

use vigil_model::metrics::{Band, Gri};

use crate::domain::DataPoint;
use crate::domain::PatientId;
use crate::error::Result;
use crate::storage::{DayCounts, DayScope, NewBatch, Storage, day_start};

/// Width of a wear slot, microseconds (the CGM's 5-minute interval).
const SLOT_MICROS: i64 = match crate::glucose::CGM_INTERVAL.num_microseconds() {
    Some(us) => us,
    None => panic!("the CGM interval fits in microseconds"),
};
/// Five-minute slots in a day.
pub const SLOTS_PER_DAY: i64 = 288;

/// The counts of one day's resolved series.
pub fn counts(points: &[DataPoint]) -> DayCounts {
    let mut c = DayCounts::default();
    let mut slots: Vec<i64> = Vec::with_capacity(points.len());
    for p in points {
        c.readings += 1;
        c.sum_mg_dl += p.mg_dl;
        match Band::of(p.mg_dl) {
            Band::VeryLow => c.very_low += 1,
            Band::Low => c.low += 1,
            Band::InRange { tight } => {
                c.in_range += 1;
                c.tight += i64::from(tight);
            }
            Band::High => c.high += 1,
            Band::VeryHigh => c.very_high += 1,
        }
        slots.push(p.time.timestamp_micros().div_euclid(SLOT_MICROS));
    }
    slots.sort_unstable();
    slots.dedup();
    c.slots = i64::try_from(slots.len()).unwrap_or(i64::MAX);
    c
}

/// Recomputes every stale day summary of `scope` in `[from_day, to_day)`;
/// returns how many were stored (a day written to meanwhile stays stale).
pub fn refresh(s: &dyn Storage, scope: DayScope, from_day: i64, to_day: i64) -> Result<usize> {
    let mut stored = 0;
    for d in s.stale_glucose_days(scope, from_day, to_day)? {
        let start = day_start(d.day);
        let points = crate::glucose::points(s, d.patient, start, start + TimeDelta::days(1))?;
        if s.put_glucose_day(d.patient, d.day, d.generation, &counts(&points))? {
            stored += 1;
        }
    }
    Ok(stored)
}

/// Recomputes the days a stored batch marked stale (call after
/// [`Storage::store_batch`] succeeded).
pub fn after_batch(s: &dyn Storage, batch: &NewBatch) -> Result<usize> {
    let days = crate::storage::glucose_days_of(batch);
    match (days.first(), days.last()) {
        (Some(first), Some(last)) => refresh(s, DayScope::Patient(batch.patient), *first, last + 1),
        _ => Ok(0),
    }
}

/// The counts of several days added up.
pub fn sum<'a>(days: impl IntoIterator<Item = &'a DayCounts>) -> DayCounts {
    days.into_iter().fold(DayCounts::default(), |mut t, d| {
        t.readings += d.readings;
        t.very_low += d.very_low;
        t.low += d.low;
        t.in_range += d.in_range;
        t.tight += d.tight;
        t.high += d.high;
        t.very_high += d.very_high;
        t.slots += d.slots;
        t.sum_mg_dl += d.sum_mg_dl;
        t
    })
}

/// A period's consensus figures from its summed counts, computed as
/// `vigil_model::metrics::consensus_metrics` computes them from readings
/// (percent of readings; the GRI as one exact integer over n, capped at
/// 100). `None` without readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Percent of readings below 54 mg/dL.
    pub tbr_lt54_pct: f64,
    /// Percent below 70 (includes below 54).
    pub tbr_lt70_pct: f64,
    /// Percent in 70–180.
    pub tir_70_180_pct: f64,
    /// Percent in 70–140.
    pub titr_70_140_pct: f64,
    /// Percent above 180 (includes above 250).
    pub tar_gt180_pct: f64,
    /// Percent above 250.
    pub tar_gt250_pct: f64,
    /// Glycemia Risk Index.
    pub gri: f64,
    /// Mean glucose, mg/dL.
    pub mean_mg_dl: f64,
    /// Readings.
    pub readings: i64,
}

impl Figures {
    /// The figures of `c`, or `None` when it holds no reading.
    pub fn of(c: &DayCounts) -> Option<Figures> {
        if c.readings <= 0 {
            return None;
        }
        let n = c.readings as f64;
        let pct = |k: i64| (k * 100) as f64 / n;
        let whole = |k: i64| u64::try_from(k).unwrap_or(0);
        let gri = Gri::of(
            whole(c.very_low),
            whole(c.low),
            whole(c.high),
            whole(c.very_high),
            whole(c.readings),
        )?
        .gri;
        Some(Figures {
            tbr_lt54_pct: pct(c.very_low),
            tbr_lt70_pct: pct(c.very_low + c.low),
            tir_70_180_pct: pct(c.in_range),
            titr_70_140_pct: pct(c.tight),
            tar_gt180_pct: pct(c.high + c.very_high),
            tar_gt250_pct: pct(c.very_high),
            gri,
            mean_mg_dl: c.sum_mg_dl / n,
            readings: c.readings,
        })
    }
}

/// Wear: percent of `expected_slots` five-minute slots that hold a reading.
pub fn wear_pct(c: &DayCounts, expected_slots: i64) -> f64 {
    if expected_slots <= 0 {
        return 0.0;
    }
    ((c.slots * 100) as f64 / expected_slots as f64).min(100.0)
}

/// Whose summaries are whose: sums `days` (sorted by patient, as
/// [`Storage::glucose_days`] returns them) per patient over `[from_day,
/// to_day)`.
pub fn per_patient(
    days: &[crate::storage::GlucoseDay],
    from_day: i64,
    to_day: i64,
) -> std::collections::HashMap<PatientId, DayCounts> {
    let mut out: std::collections::HashMap<PatientId, DayCounts> = std::collections::HashMap::new();
    for d in days.iter().filter(|d| (from_day..to_day).contains(&d.day)) {
        let t = out.entry(d.patient).or_default();
        *t = sum([&*t, &d.counts]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn p(minute: i64, mg_dl: f64) -> DataPoint {
        DataPoint {
            time: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(minute),
            mg_dl,
            device: "cgm".into(),
            held_back: false,
        }
    }

    #[test]
    fn the_band_edges_are_the_consensus_ones() {
        let v = [
            50.0, 54.0, 69.0, 70.0, 140.0, 180.0, 181.0, 250.0, 251.0, 300.0,
        ];
        let pts: Vec<DataPoint> = v
            .iter()
            .enumerate()
            .map(|(i, &g)| p(i as i64 * 5, g))
            .collect();
        let c = counts(&pts);
        assert_eq!(
            (c.very_low, c.low, c.in_range, c.tight, c.high, c.very_high),
            (1, 2, 3, 2, 2, 2)
        );
        assert_eq!((c.readings, c.slots), (10, 10));
        let f = Figures::of(&c).unwrap_or_else(|| panic!("readings"));
        // 3 × (10 + 0.8 × 20) + 1.6 × (20 + 0.5 × 20) = 78 + 48 = 126 → 100.
        assert!((f.gri - 100.0).abs() < 1e-9);
        assert!((f.tbr_lt70_pct - 30.0).abs() < 1e-9);
    }
}

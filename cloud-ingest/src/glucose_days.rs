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
//! - **Appended to, when a batch only extends its day.** Recomputing the
//!   whole day after every batch made each batch cost the day so far (up
//!   to 1,440 readings read and resolved, for 33 new ones), and was the
//!   largest cost per batch on a node whose patients' days were filling
//!   (issue 20). A phone's CGM posting in order only appends to a day that
//!   holds its series alone, where the counts add up; intake then updates
//!   them in the batch's own transaction ([`append`]) and leaves every
//!   other case to the recompute.
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
use vigil_model::precedence::{Coincidence, PrecedenceConfig, Quantity, Validity};
use vigil_model::reading::Stream;

use crate::domain::DataPoint;
use crate::domain::PatientId;
use crate::error::Result;
use crate::storage::{
    DayCounts, DayRow, DayScope, DayTail, NewBatch, NewReading, ReadingOutcome, ReadingQuery,
    Storage, day_of, day_start,
};

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
        let (counts, tail) = recompute(s, d.patient, d.day)?;
        if s.put_glucose_day(d.patient, d.day, d.generation, &counts, &tail)? {
            stored += 1;
        }
    }
    Ok(stored)
}

/// A day's counts over its whole resolved series (what
/// [`crate::glucose::points`] gives every reader), and what they were
/// computed over.
fn recompute(s: &dyn Storage, patient: PatientId, day: i64) -> Result<(DayCounts, DayTail)> {
    let from = day_start(day);
    let rows = s.readings(&ReadingQuery {
        patient,
        stream: Some(Stream::Glucose),
        from,
        to: from + TimeDelta::days(1),
        limit: crate::resolved::MAX_RAW,
    })?;
    let truncated = rows.len() >= crate::resolved::MAX_RAW as usize;
    let first = rows.first().map(|r| series_key(&r.device, r.session));
    let one_series = !truncated
        && rows
            .iter()
            .all(|r| Some(series_key(&r.device, r.session)) == first);
    let last_raw = rows.iter().map(|r| r.time.timestamp_micros()).max();
    let policy = crate::resolved::policy(s, patient, Quantity::Glucose)?;
    let points: Vec<DataPoint> = crate::resolved::resolve_rows(patient, policy.config, rows)?
        .series
        .into_iter()
        .map(crate::glucose::point)
        .collect();
    let tail = DayTail {
        series: if one_series { first } else { None },
        last_raw,
        last_point: points.iter().map(|p| p.time.timestamp_micros()).max(),
    };
    Ok((counts(&points), tail))
}

/// One sensor series' key in [`DayTail::series`]: its device and session,
/// the device length-prefixed so that no two series share a key.
pub fn series_key(device: &str, session: Option<i64>) -> String {
    match session {
        Some(s) => format!("{}:{device}:{s}", device.len()),
        None => format!("{}:{device}:-", device.len()),
    }
}

/// Whether a reading counts in the resolved series when alone in its
/// moment: the precedence resolver's own validity test.
fn counted(r: &NewReading) -> bool {
    Validity::classify(Stream::Glucose.unit(), r.value, r.quality_flagged) != Validity::Invalid
}

fn slot_of(micros: i64) -> i64 {
    micros.div_euclid(SLOT_MICROS)
}

/// `row`'s counts and tail after a batch from one series (`series`)
/// inserted `inserted` (in time order) into its day, without reading the day again; `None`
/// when only a recompute over the day is right.
///
/// Under a window policy the resolver never puts two readings of one
/// series at different instants in one moment, so on a day holding that
/// series alone every valid reading is a point by itself and the counts
/// add up. That needs: a window policy (`window`); no write to the day
/// other than this batch since the counts were computed (`stale` one past
/// `fresh`, or a day this batch opened); the day's readings so far all of
/// this series; and the new readings strictly later than every stored one,
/// so none meets another at its instant and a wear slot can only be shared
/// with the day's last point. A phone's CGM posting in order meets all of
/// them, so the day costs the batch's readings instead of the whole day
/// (which grew with every batch, issue 20); a backfill, a second source, a
/// Nightscout delete or a policy change falls back to the recompute.
pub fn append(
    row: &DayRow,
    series: &str,
    inserted: &[&NewReading],
    window: bool,
) -> Option<(DayCounts, DayTail)> {
    let outstanding = row.stale.checked_sub(row.fresh.unwrap_or(0))?;
    let opened_here = row.fresh.is_none() && row.stale == 1;
    let same_series = row.tail.series.as_deref() == Some(series) && row.tail.last_raw.is_some();
    if !window || outstanding != 1 || !(opened_here || same_series) {
        return None;
    }
    let (before, mut tail) = if opened_here {
        (DayCounts::default(), DayTail::default())
    } else {
        (row.counts, row.tail.clone())
    };
    let mut last = tail.last_raw;
    for r in inserted {
        let t = r.time.timestamp_micros();
        if last.is_some_and(|l| t <= l) {
            return None;
        }
        last = Some(t);
    }
    let points: Vec<DataPoint> = inserted
        .iter()
        .filter(|r| counted(r))
        .map(|r| DataPoint {
            time: r.time,
            mg_dl: r.value,
            device: String::new(),
            held_back: r.held_back,
        })
        .collect();
    let mut added = counts(&points);
    if let (Some(prev), Some(first)) = (tail.last_point, points.first()) {
        if slot_of(prev) == slot_of(first.time.timestamp_micros()) {
            added.slots -= 1;
        }
    }
    let after = sum([&before, &added]);
    if !inserted.is_empty() {
        tail.series = Some(series.to_owned());
        tail.last_raw = last;
    }
    if let Some(p) = points.last() {
        tail.last_point = Some(p.time.timestamp_micros());
    }
    Some((after, tail))
}

/// Whether a stored glucose policy (`None`: the default) groups readings
/// by window, the case [`append`] handles. A policy that does not parse
/// is left to the recompute, which reports it.
pub fn window_policy(policy: Option<&str>) -> bool {
    let config = match policy {
        None => PrecedenceConfig::default_for(Quantity::Glucose),
        Some(json) => match serde_json::from_str::<PrecedenceConfig>(json) {
            Ok(c) => c,
            Err(_) => return false,
        },
    };
    matches!(config.coincidence, Coincidence::Window { .. })
}

/// The days of `b` that [`append`] brings up to date, as (day, generation,
/// counts, tail), from the rows of its days read after the bump and its
/// per-reading outcomes. Each backend calls it inside the batch's
/// transaction and stores the result with the generation as `fresh`; the
/// other days stay stale for [`after_batch`] to recompute.
pub fn appended(
    b: &NewBatch,
    outcomes: &[Vec<ReadingOutcome>],
    rows: &[DayRow],
    window: bool,
) -> Vec<(i64, i64, DayCounts, DayTail)> {
    let mut out = Vec::new();
    for row in rows {
        let mut groups = b.groups.iter().zip(outcomes).filter(|(g, _)| {
            g.stream == Stream::Glucose && g.readings.iter().any(|r| day_of(r.time) == row.day)
        });
        let (Some((g, outcome)), None) = (groups.next(), groups.next()) else {
            continue;
        };
        // In time order: intake lists a group's kept readings before its
        // held-back ones.
        let mut inserted: Vec<&NewReading> = g
            .readings
            .iter()
            .zip(outcome)
            .filter(|(r, o)| day_of(r.time) == row.day && **o == ReadingOutcome::Inserted)
            .map(|(r, _)| r)
            .collect();
        inserted.sort_by_key(|r| r.time);
        let series = series_key(&b.device, g.session);
        if let Some((counts, tail)) = append(row, &series, &inserted, window) {
            out.push((row.day, row.stale, counts, tail));
        }
    }
    out
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

    #[test]
    fn only_window_policies_take_appends_and_series_keys_do_not_collide() {
        assert!(window_policy(None));
        let mut slots = PrecedenceConfig::default_for(Quantity::Glucose);
        slots.coincidence = Coincidence::Slots {
            width: TimeDelta::minutes(5),
        };
        assert!(!window_policy(Some(
            &serde_json::to_string(&slots).unwrap()
        )));
        let default = PrecedenceConfig::default_for(Quantity::Glucose);
        assert!(window_policy(Some(
            &serde_json::to_string(&default).unwrap()
        )));
        assert!(!window_policy(Some("{not json")));
        assert_ne!(series_key("a:1", None), series_key("a", Some(1)));
        assert_ne!(series_key("ab", Some(1)), series_key("a", Some(1)));
    }

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

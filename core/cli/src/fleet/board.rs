//! What the demo shows while it runs: a progress bar of simulated time and
//! log lines above it, and the figures behind them (alerts raised on the
//! phones, seen on the clinician's live stream, and the latency between).
//!
//! Log lines go through the bar (`suspend`), so they never tear it, and
//! still print when stdout is not a terminal (indicatif then hides the
//! bar). Lines name patients by number only and never print a reading's
//! value: the patients are synthetic, but the demo keeps the habits of the
//! real thing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use indicatif::{ProgressBar, ProgressStyle};

use super::script::label;

/// One alert event as both ends name it: (alert id, phase, time in Unix
/// ms). An episode re-alerts under the same id and phase, at a later time.
type AlertKey = (String, String, i64);

#[derive(Debug)]
struct Raised {
    at: Instant,
    offline: bool,
}

#[derive(Debug, Default)]
struct AlertBook {
    raised: HashMap<AlertKey, Raised>,
    /// Seen on the stream before the phone's callback arrived.
    seen_first: HashMap<AlertKey, Instant>,
    online: Vec<Duration>,
    offline: Vec<Duration>,
}

/// Delivery latencies, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// How many were measured.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    fn of(samples: &[Duration]) -> Latency {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let pick = |q: f64| {
            let i = ((ms.len() as f64 - 1.0) * q).round() as usize;
            ms.get(i).copied().unwrap_or(0.0)
        };
        Latency {
            count: ms.len(),
            p50_ms: pick(0.5),
            p95_ms: pick(0.95),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }

    /// "p50 12 ms, p95 30 ms, max 41 ms (n = 9)".
    pub fn line(&self) -> String {
        if self.count == 0 {
            return "none measured".into();
        }
        format!(
            "p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (n = {})",
            self.p50_ms, self.p95_ms, self.max_ms, self.count
        )
    }
}

/// The demo's shared view of the fleet.
pub struct Board {
    bar: ProgressBar,
    started: Instant,
    start_ms: i64,
    /// Latest phone time seen in any reading, Unix ms: the fleet's
    /// simulated "now" as the SDKs themselves run it (they may lag the
    /// nominal pace on a busy machine, and run at real speed once caught
    /// up with the wall clock).
    latest_ms: AtomicI64,
    /// The same, per phone.
    phone_ms: Vec<AtomicI64>,
    offline: Vec<AtomicBool>,
    alerts: Mutex<AlertBook>,
    /// Readings decoded on the phones (every stream).
    pub decoded: AtomicU64,
    /// Alert events raised on the phones (start, re-alert, end).
    pub raised: AtomicU64,
    /// Alert events seen on the clinician's live stream.
    pub delivered: AtomicU64,
}

impl Board {
    /// A board for `patients` phones whose simulated time starts at
    /// `start_ms`; `length` is the run's simulated length when it is
    /// bounded (the bar then fills once), else the bar cycles by day.
    pub fn new(patients: usize, start_ms: i64, length: Option<TimeDelta>) -> Board {
        let minutes = length.map_or(24 * 60, |l| l.num_minutes().max(1));
        let bar = ProgressBar::new(u64::try_from(minutes).unwrap_or(1));
        if let Ok(style) = ProgressStyle::with_template("{prefix:>8} [{bar:32.cyan/blue}] {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        Board {
            bar,
            started: Instant::now(),
            start_ms,
            latest_ms: AtomicI64::new(start_ms),
            phone_ms: (0..patients).map(|_| AtomicI64::new(start_ms)).collect(),
            offline: (0..patients).map(|_| AtomicBool::new(false)).collect(),
            alerts: Mutex::new(AlertBook::default()),
            decoded: AtomicU64::new(0),
            raised: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, AlertBook> {
        self.alerts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Phone `i` received a reading at `time_ms` (its clock).
    pub fn observe(&self, i: usize, time_ms: i64) {
        self.latest_ms.fetch_max(time_ms, Ordering::Relaxed);
        if let Some(p) = self.phone_ms.get(i) {
            p.fetch_max(time_ms, Ordering::Relaxed);
        }
    }

    /// Simulated time since the start, as far as the fleet has run.
    pub fn simulated(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.latest_ms.load(Ordering::Relaxed) - self.start_ms)
    }

    /// Simulated time since the start on phone `i`.
    pub fn simulated_on(&self, i: usize) -> TimeDelta {
        let ms = self
            .phone_ms
            .get(i)
            .map_or(self.start_ms, |p| p.load(Ordering::Relaxed));
        TimeDelta::milliseconds(ms - self.start_ms)
    }

    /// The slowest and the fastest phone's simulated time since the start.
    pub fn spread(&self) -> (TimeDelta, TimeDelta) {
        let times: Vec<TimeDelta> = (0..self.phone_ms.len())
            .map(|i| self.simulated_on(i))
            .collect();
        let min = times.iter().min().copied().unwrap_or_default();
        let max = times.iter().max().copied().unwrap_or_default();
        (min, max)
    }

    /// Simulated seconds per wall second so far.
    pub fn achieved_factor(&self) -> f64 {
        let wall = self.started.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        self.simulated().num_milliseconds() as f64 / 1e3 / wall
    }

    /// Wall time since the start.
    pub fn wall(&self) -> Duration {
        self.started.elapsed()
    }

    /// Prints a line above the bar, stamped with simulated time.
    pub fn log(&self, line: &str) {
        self.log_at(self.simulated(), line);
    }

    /// Prints a line stamped with simulated time `t` since the start (each
    /// phone paces its own clock, so a phone's event carries its own time).
    pub fn log_at(&self, t: TimeDelta, line: &str) {
        let stamp = format!(
            "+{:02}:{:02}",
            t.num_hours(),
            t.num_minutes().rem_euclid(60)
        );
        self.bar.suspend(|| println!("[{stamp}] {line}"));
    }

    /// Prints a line about phone `i`, stamped with that phone's time.
    pub fn log_for(&self, i: usize, line: &str) {
        self.log_at(self.simulated_on(i), &format!("{}: {line}", label(i)));
    }

    /// Simulated time since the start at `time_ms` (Unix ms).
    pub fn since_start(&self, time_ms: i64) -> TimeDelta {
        TimeDelta::milliseconds(time_ms - self.start_ms)
    }

    /// Prints a line without a stamp (header, summary).
    pub fn say(&self, line: &str) {
        self.bar.suspend(|| println!("{line}"));
    }

    /// Moves the bar to the current simulated time with `msg` beside it.
    pub fn tick(&self, bounded: bool, msg: String) {
        let t = self.simulated();
        let minutes = u64::try_from(t.num_minutes()).unwrap_or(0);
        if bounded {
            self.bar.set_position(minutes);
        } else {
            self.bar.set_position(minutes % (24 * 60));
        }
        self.bar
            .set_prefix(format!("day {}", minutes / (24 * 60) + 1));
        self.bar.set_message(msg);
    }

    /// Removes the bar before the summary.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Marks patient `i`'s phone offline (`true`) or back online.
    pub fn set_offline(&self, i: usize, offline: bool) {
        if let Some(f) = self.offline.get(i) {
            f.store(offline, Ordering::Relaxed);
        }
    }

    /// The phone of patient `i` raised an alert event at `time_ms` (its
    /// clock); called from its listener.
    pub fn alert_raised(&self, i: usize, id: &str, kind: &str, phase: &str, time_ms: i64) {
        self.raised.fetch_add(1, Ordering::Relaxed);
        let offline = self
            .offline
            .get(i)
            .is_some_and(|f| f.load(Ordering::Relaxed));
        let now = Instant::now();
        let key = (id.to_owned(), phase.to_owned(), time_ms);
        let mut book = self.book();
        if let Some(seen) = book.seen_first.remove(&key) {
            // The stream won the race with the phone's callback thread.
            let d = seen.saturating_duration_since(now);
            if offline {
                book.offline.push(d);
            } else {
                book.online.push(d);
            }
        } else {
            book.raised.insert(key, Raised { at: now, offline });
        }
        drop(book);
        let note = if offline {
            " (phone offline: it waits in the outbox)"
        } else {
            ""
        };
        self.log_at(
            self.since_start(time_ms),
            &format!(
                "{}: alert {kind} {phase} raised on the phone{note}",
                label(i)
            ),
        );
    }

    /// The clinician's live stream showed an alert event of patient `i`
    /// (its time `time_ms` as the phone stamped it).
    pub fn alert_seen(&self, i: Option<usize>, id: &str, kind: &str, phase: &str, time_ms: i64) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let key = (id.to_owned(), phase.to_owned(), time_ms);
        let mut book = self.book();
        let measured = match book.raised.remove(&key) {
            Some(r) => {
                let d = now.saturating_duration_since(r.at);
                if r.offline {
                    book.offline.push(d);
                } else {
                    book.online.push(d);
                }
                Some((d, r.offline))
            }
            None => {
                book.seen_first.insert(key, now);
                None
            }
        };
        drop(book);
        let who = i.map_or_else(|| "a patient".to_owned(), label);
        let after = match measured {
            Some((d, false)) => format!(", {:.0} ms after the phone raised it", ms(d)),
            Some((d, true)) => format!(
                ", {:.1} s (wall) after it was raised offline",
                d.as_secs_f64()
            ),
            None => String::new(),
        };
        self.log_at(
            self.since_start(time_ms),
            &format!("{who}: alert {kind} {phase} on the clinician's live stream{after}"),
        );
    }

    /// Latencies of alerts raised while the phone was online, and of those
    /// raised offline (which wait for the network by design).
    pub fn latencies(&self) -> (Latency, Latency) {
        let book = self.book();
        (Latency::of(&book.online), Latency::of(&book.offline))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn latency_is_measured_whichever_end_reports_first() {
        let board = Board::new(2, 0, None);
        board.alert_raised(0, "a", "low", "start", 5);
        std::thread::sleep(Duration::from_millis(20));
        board.alert_seen(Some(0), "a", "low", "start", 5);
        board.alert_seen(Some(1), "b", "low", "start", 7);
        board.alert_raised(1, "b", "low", "start", 7);
        // A re-alert of the same episode is another event.
        board.alert_raised(1, "b", "low", "realert", 9);
        board.alert_raised(1, "b", "low", "realert", 11);
        board.alert_seen(Some(1), "b", "low", "realert", 11);
        let (online, offline) = board.latencies();
        assert_eq!(online.count, 3);
        assert!(online.max_ms >= 20.0, "{online:?}");
        assert_eq!(offline.count, 0);
    }

    #[test]
    fn simulated_time_is_the_latest_phone_time_seen() {
        let board = Board::new(2, 1_000, None);
        board.observe(0, 61_000);
        board.observe(1, 31_000);
        board.observe(0, 41_000);
        assert_eq!(board.simulated(), TimeDelta::seconds(60));
        assert_eq!(board.simulated_on(1), TimeDelta::seconds(30));
    }

    #[test]
    fn alerts_raised_offline_are_counted_apart() {
        let board = Board::new(1, 0, None);
        board.set_offline(0, true);
        board.alert_raised(0, "a", "low", "start", 1);
        board.alert_seen(Some(0), "a", "low", "start", 1);
        let (online, offline) = board.latencies();
        assert_eq!((online.count, offline.count), (0, 1));
    }
}

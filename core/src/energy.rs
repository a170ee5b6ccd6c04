//! What the SDK costs the phone's battery, counted where it is spent: the
//! timers that wake the SDK's threads, the commits that flush the buffer to
//! disk, and the requests that wake the radio.
//!
//! Place in the data flow: beside it. Sessions, the alert timer and the
//! sync engine count their own timer expiries; every buffer connection
//! counts its commits by durability level (a SQLite commit hook, so no
//! write path can forget to); the sync engine counts each HTTP attempt.
//! The energy benchmark (`tests/e2e/benches/energy.rs`) reads them per
//! simulated hour and holds them against the budget.
//!
//! The counters are process-wide and only ever grow: a host running one
//! SDK instance (a phone) reads its own figures; several instances in one
//! process (the demo fleet) read their sum. Relaxed atomics: a counter is
//! a statistic, never a synchronisation point.

use std::sync::atomic::{AtomicU64, Ordering};

static TIMER_WAKES: AtomicU64 = AtomicU64::new(0);
static FLUSHING_COMMITS: AtomicU64 = AtomicU64::new(0);
static LAZY_COMMITS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static RADIO_WAKES: AtomicU64 = AtomicU64::new(0);

/// A snapshot of the process's energy counters; subtract two snapshots to
/// cost a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnergyCounters {
    /// SDK timers that expired (each one wakes a thread that had nothing
    /// else to do, unless it coincided with other work).
    pub timer_wakes: u64,
    /// Buffer commits at `synchronous=FULL`: each one an fsync of the WAL.
    pub flushing_commits: u64,
    /// Buffer commits at `synchronous=NORMAL`: written to the WAL without
    /// an fsync (the WAL is synced at checkpoints).
    pub lazy_commits: u64,
    /// HTTP requests the sync engine attempted (each one a radio wake-up
    /// unless the radio was already up).
    pub requests: u64,
    /// Sync passes that made at least one request: the requests of one
    /// pass go back to back, so the radio wakes once for all of them
    /// (alerts, every stream's batch, the heartbeat).
    pub radio_wakes: u64,
}

impl EnergyCounters {
    /// The counters now.
    pub fn now() -> EnergyCounters {
        EnergyCounters {
            timer_wakes: TIMER_WAKES.load(Ordering::Relaxed),
            flushing_commits: FLUSHING_COMMITS.load(Ordering::Relaxed),
            lazy_commits: LAZY_COMMITS.load(Ordering::Relaxed),
            requests: REQUESTS.load(Ordering::Relaxed),
            radio_wakes: RADIO_WAKES.load(Ordering::Relaxed),
        }
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &EnergyCounters) -> EnergyCounters {
        EnergyCounters {
            timer_wakes: self.timer_wakes.saturating_sub(earlier.timer_wakes),
            flushing_commits: self
                .flushing_commits
                .saturating_sub(earlier.flushing_commits),
            lazy_commits: self.lazy_commits.saturating_sub(earlier.lazy_commits),
            requests: self.requests.saturating_sub(earlier.requests),
            radio_wakes: self.radio_wakes.saturating_sub(earlier.radio_wakes),
        }
    }
}

pub(crate) fn timer_woke() {
    TIMER_WAKES.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn committed(flushing: bool) {
    if flushing {
        FLUSHING_COMMITS.fetch_add(1, Ordering::Relaxed);
    } else {
        LAZY_COMMITS.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) fn requested() {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn radio_woke() {
    RADIO_WAKES.fetch_add(1, Ordering::Relaxed);
}

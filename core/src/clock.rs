//! Injected time: every part of the core that needs "now" asks a [`Clock`].
//!
//! Sessions, simulated peripherals and transports never read the wall clock
//! directly, so a test or `vigil simulate` can run a simulated day on
//! tokio's paused time in milliseconds and get the same result for a seed
//! every time. Waiting is always done with `tokio::time` (which the paused
//! runtime fast-forwards); a clock only maps tokio's monotonic instants to
//! absolute UTC.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// Tells the current absolute time.
pub trait Clock: Send + Sync {
    /// The current time, UTC. Never goes backwards for [`TokioClock`]; the
    /// [`SystemClock`] follows the phone's wall clock, which the user or the
    /// network may set.
    fn now(&self) -> DateTime<Utc>;
}

/// The phone's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock on tokio's time: `epoch` at the moment of creation, then moving
/// exactly as `tokio::time::Instant` does. Under a paused runtime
/// (`#[tokio::test(start_paused = true)]` or `tokio::time::pause`) it moves
/// only when tokio auto-advances or a test calls `tokio::time::advance`, so
/// simulated hours cost no wall time.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    epoch: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `epoch` now. Must be called inside a tokio runtime
    /// with the time driver enabled.
    pub fn new(epoch: DateTime<Utc>) -> Self {
        Self {
            epoch,
            origin: tokio::time::Instant::now(),
        }
    }

    /// The UTC time a tokio instant corresponds to on this clock.
    pub fn at(&self, instant: tokio::time::Instant) -> DateTime<Utc> {
        let elapsed = instant.saturating_duration_since(self.origin);
        // A run longer than chrono's range (hundreds of thousands of years)
        // cannot happen; saturating keeps the function total anyway.
        let delta = TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX);
        self.epoch.checked_add_signed(delta).unwrap_or(self.epoch)
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.at(tokio::time::Instant::now())
    }
}

/// A whole, non-negative number of seconds: every interval an app
/// configures (the sync interval, the alert windows and re-alert
/// intervals).
///
/// One type for all of them so that Kotlin and Swift see one custom type
/// (an unsigned 32-bit integer, `Seconds`) whose literal defaults uniffi
/// can write as default arguments, which it cannot for `Duration`.
/// Whole seconds because no setting needs less; `u32` because 136 years
/// is enough for any of them and it makes both conversions below
/// infallible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seconds(pub u32);

impl Seconds {
    /// `m` minutes, saturating at the largest value.
    pub const fn minutes(m: u32) -> Seconds {
        Seconds(m.saturating_mul(60))
    }

    /// `h` hours, saturating at the largest value.
    pub const fn hours(h: u32) -> Seconds {
        Seconds(h.saturating_mul(3_600))
    }

    /// The span as chrono's type, which the alert engine computes with.
    pub fn time_delta(self) -> TimeDelta {
        TimeDelta::seconds(i64::from(self.0))
    }

    /// The span as std's type, which tokio waits with.
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.0))
    }
}

// Kotlin and Swift get a `Seconds` alias of their unsigned 32-bit integer,
// so record fields of this type take literal default arguments.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(Seconds, u32, {
    lower: |s| s.0,
    try_lift: |v| Ok(Seconds(v)),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time_exactly() {
        let epoch = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = TokioClock::new(epoch);
        assert_eq!(clock.now(), epoch);
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), epoch + TimeDelta::seconds(90));
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), epoch + TimeDelta::seconds(3690));
    }
}

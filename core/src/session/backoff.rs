//! Reconnect delays: exponential backoff with seeded jitter.
//!
//! Jitter keeps a clinic's worth of phones from reconnecting in lockstep
//! after a shared outage; seeding it keeps simulated runs reproducible.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Backoff policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Upper bound of the delay before jitter.
    pub max: Duration,
    /// Jitter as a fraction of the delay: the delay is drawn uniformly from
    /// `d × (1 − jitter) ..= d × (1 + jitter)`. Clamped to 0..=1.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 1 s doubling to 5 min, ±30 % jitter.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: 0.3,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1-based).
    pub fn delay(&self, attempt: u32, rng: &mut ChaCha8Rng) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self
            .initial
            .saturating_mul(1u32 << exp)
            .min(self.max)
            .as_secs_f64();
        let j = self.jitter.clamp(0.0, 1.0);
        let factor = if j > 0.0 {
            rng.random_range(1.0 - j..=1.0 + j)
        } else {
            1.0
        };
        Duration::from_secs_f64((base * factor).max(0.0))
    }

    /// A jitter source for a seed.
    pub fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_jitter_and_cap() {
        let b = Backoff::default();
        let mut rng = Backoff::rng(1);
        for attempt in 1..=20 {
            let d = b.delay(attempt, &mut rng).as_secs_f64();
            let base = (2f64.powi(attempt as i32 - 1)).min(300.0);
            assert!(
                d >= base * 0.7 - 1e-9 && d <= base * 1.3 + 1e-9,
                "{attempt}: {d}"
            );
        }
    }

    #[test]
    fn jitter_differs_between_seeds_and_repeats_for_one() {
        let b = Backoff::default();
        let a: Vec<_> = (1..5).map(|i| b.delay(i, &mut Backoff::rng(3))).collect();
        let again: Vec<_> = (1..5).map(|i| b.delay(i, &mut Backoff::rng(3))).collect();
        let other: Vec<_> = (1..5).map(|i| b.delay(i, &mut Backoff::rng(4))).collect();
        assert_eq!(a, again);
        assert_ne!(a, other);
    }
}

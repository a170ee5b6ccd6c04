//! Per-token request budget: a token bucket per token id, in memory.
//!
//! It is per replica: behind a load balancer with N replicas a token gets up
//! to N times the budget. That is accepted for now because the limit exists
//! to stop one misbehaving phone from starving a clinic's single process,
//! not to meter usage; a shared limit would need the database on every
//! request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::storage::TokenId;

/// How fast a token's budget refills and how much it can save up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second sustained.
    pub per_second: f64,
    /// Requests that may arrive at once after a quiet spell.
    pub burst: u32,
}

impl Default for RateLimit {
    /// 20 requests per second with bursts of 100: far above what one phone
    /// sends (a batch every 15 minutes, alerts at once), far below what
    /// would hurt the process.
    fn default() -> Self {
        Self {
            per_second: 20.0,
            burst: 100,
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by token id.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<TokenId, Bucket>>,
}

impl RateLimiter {
    /// A limiter where every token starts with a full bucket.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one request of `token`'s budget; false if it is spent.
    pub fn try_acquire(&self, token: TokenId) -> bool {
        self.try_acquire_at(token, Instant::now())
    }

    fn try_acquire_at(&self, token: TokenId, now: Instant) -> bool {
        // The map holds plain numbers; a panic elsewhere cannot leave it
        // inconsistent, so a poisoned lock is still safe to use.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let burst = f64::from(self.limit.burst);
        let bucket = buckets.entry(token).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.limit.per_second).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_refuses_then_refills() {
        let l = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        assert!((0..3).all(|_| l.try_acquire_at(7, t0)));
        assert!(!l.try_acquire_at(7, t0));
        // Another token has its own bucket.
        assert!(l.try_acquire_at(8, t0));
        // Half a second at 2/s refills exactly one request.
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.try_acquire_at(7, t1));
        assert!(!l.try_acquire_at(7, t1));
    }
}

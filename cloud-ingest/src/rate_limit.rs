//! Per-token request budget: a token bucket per token id, in memory; and
//! the same buckets keyed by client address for failed authentication
//! ([`AuthThrottle`]), since a guesser has no token to key by.
//!
//! It is per replica: behind a load balancer with N replicas a token gets up
//! to N times the budget. That is accepted for now because the limit exists
//! to stop one misbehaving phone from starving a clinic's single process,
//! not to meter usage; a shared limit would need the database on every
//! request.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::domain::TokenId;

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

/// Most keys a limiter tracks: a client can invent addresses (IPv6) as
/// fast as it likes, so the map is bounded; full buckets are dropped first.
pub const MAX_KEYS: usize = 65_536;

/// Token buckets keyed by token id (or another key).
pub struct RateLimiter<K = TokenId> {
    limit: RateLimit,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Copy> RateLimiter<K> {
    /// A limiter where every token starts with a full bucket.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one request of `token`'s budget; false if it is spent.
    pub fn try_acquire(&self, token: K) -> bool {
        self.try_acquire_at(token, Instant::now())
    }

    /// Whether `key`'s budget is spent, without spending any.
    pub fn exhausted(&self, key: K) -> bool {
        self.with_bucket(key, Instant::now(), |b| b.tokens < 1.0)
    }

    fn try_acquire_at(&self, token: K, now: Instant) -> bool {
        self.with_bucket(token, now, |bucket| {
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                true
            } else {
                false
            }
        })
    }

    fn with_bucket<T>(&self, key: K, now: Instant, f: impl FnOnce(&mut Bucket) -> T) -> T {
        // The map holds plain numbers; a panic elsewhere cannot leave it
        // inconsistent, so a poisoned lock is still safe to use.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let burst = f64::from(self.limit.burst);
        let per_second = self.limit.per_second;
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(&key) {
            buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
                b.tokens + elapsed * per_second < burst
            });
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.last = now;
        f(bucket)
    }
}

/// Failed authentication per client address: a client that keeps
/// presenting wrong tokens or Nightscout secrets is answered 429 before its
/// guesses are even checked, whatever the secret's kind.
pub struct AuthThrottle {
    failures: RateLimiter<IpAddr>,
}

impl AuthThrottle {
    /// 30 failures at once, then one every 2 seconds: a person retyping a
    /// secret never notices; a guesser gets 0.5 guesses a second.
    pub const LIMIT: RateLimit = RateLimit {
        per_second: 0.5,
        burst: 30,
    };

    /// A throttle with every address's budget full.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            failures: RateLimiter::new(limit),
        }
    }

    /// Whether `client` must be refused before its credential is checked.
    pub fn blocked(&self, client: Option<IpAddr>) -> bool {
        client.is_some_and(|ip| self.failures.exhausted(ip))
    }

    /// Records a failed attempt from `client`, logging it (the address and
    /// the credential kind; never what was presented).
    pub fn failed(&self, client: Option<IpAddr>, kind: &'static str) {
        tracing::info!(client = ?client, kind, "authentication failed");
        if let Some(ip) = client {
            let _ = self.failures.try_acquire(ip);
        }
    }
}

/// The client's address, when the server recorded it (the service's own
/// listeners always do; a test router without a socket does not, and is
/// then not throttled).
pub fn client_ip(parts: &axum::http::request::Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
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

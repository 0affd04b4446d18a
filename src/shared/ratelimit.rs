//! Fixed-window rate limiting: counters live in Redis when it is configured and reachable (so
//! every instance sees one limit), in process memory otherwise.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::redis::Redis;

const SHARDS: usize = 16;
/// A shard larger than this is swept of counters from past windows.
const SWEEP_THRESHOLD: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub window: Duration,
}

impl Quota {
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the window resets.
    pub reset_after: Duration,
}

pub use crate::clock::{Clock, ManualClock};

/// Counter per `bucket:key`: (window index, hits in that window).
type Shard = Mutex<HashMap<String, (i64, u32)>>;

#[derive(Clone)]
pub struct RateLimiter {
    redis: Option<Redis>,
    local: Arc<[Shard; SHARDS]>,
    clock: Clock,
}

impl RateLimiter {
    pub fn new(redis: Option<Redis>) -> Self {
        Self::with_clock(redis, Clock::System)
    }

    pub fn with_clock(redis: Option<Redis>, clock: Clock) -> Self {
        Self {
            redis,
            local: Arc::new(std::array::from_fn(|_| Mutex::new(HashMap::new()))),
            clock,
        }
    }

    /// Counts one hit of `key` in `bucket` and says whether it is within `quota`.
    pub async fn hit(&self, bucket: &str, key: &str, quota: Quota) -> Decision {
        let window_ms = i64::try_from(quota.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let now = self.clock.now_ms();
        let window = now / window_ms;
        let reset_after =
            Duration::from_millis(u64::try_from(window_ms - now % window_ms).unwrap_or(0));
        let count = match self.redis_hit(bucket, key, window, window_ms).await {
            Some(count) => count,
            None => self.local_hit(bucket, key, window),
        };
        Decision {
            allowed: count <= quota.limit,
            limit: quota.limit,
            remaining: quota.limit.saturating_sub(count),
            reset_after,
        }
    }

    async fn redis_hit(&self, bucket: &str, key: &str, window: i64, window_ms: i64) -> Option<u32> {
        let redis = self.redis.as_ref()?;
        let mut conn = redis.conn().await?;
        let redis_key = redis.key(&["rl", bucket, key, &window.to_string()]);
        let result: Result<(u32, i64), _> = deadpool_redis::redis::pipe()
            .atomic()
            .incr(&redis_key, 1u32)
            .pexpire(&redis_key, window_ms + 1_000)
            .query_async(&mut conn)
            .await;
        match result {
            Ok((count, _)) => Some(count),
            Err(e) => {
                redis.report_failure(&e);
                None
            }
        }
    }

    fn local_hit(&self, bucket: &str, key: &str, window: i64) -> u32 {
        let composite = format!("{bucket}:{key}");
        let mut hasher = DefaultHasher::new();
        composite.hash(&mut hasher);
        let shard = &self.local[usize::try_from(hasher.finish() % SHARDS as u64).unwrap_or(0)];
        let mut map = match shard.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() > SWEEP_THRESHOLD {
            map.retain(|_, (w, _)| *w >= window);
        }
        let entry = map.entry(composite).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_limit_counts_per_key() {
        // At the start of a window, standing still: no minute boundary between the hits.
        let clock = ManualClock::at_window_start(Duration::from_secs(60));
        let limiter = RateLimiter::with_clock(None, clock.into());
        let quota = Quota {
            limit: 3,
            window: Duration::from_secs(60),
        };
        for i in 1..=3 {
            let d = limiter.hit("t", "a", quota).await;
            assert!(d.allowed, "hit {i}");
            assert_eq!(d.remaining, 3 - i);
        }
        assert!(!limiter.hit("t", "a", quota).await.allowed);
        assert!(limiter.hit("t", "b", quota).await.allowed);
        assert!(limiter.hit("u", "a", quota).await.allowed);
    }

    #[tokio::test]
    async fn a_window_refills_when_the_clock_reaches_its_end_and_not_before() {
        let clock = ManualClock::at_window_start(Duration::from_secs(60));
        let limiter = RateLimiter::with_clock(None, clock.clone().into());
        let quota = Quota::per_minute(2);
        assert!(limiter.hit("t", "a", quota).await.allowed);
        assert!(limiter.hit("t", "a", quota).await.allowed);
        let refused = limiter.hit("t", "a", quota).await;
        assert!(!refused.allowed);
        assert_eq!(refused.reset_after, Duration::from_secs(60));
        clock.advance(Duration::from_millis(59_999));
        let refused = limiter.hit("t", "a", quota).await;
        assert!(!refused.allowed);
        assert_eq!(refused.reset_after, Duration::from_millis(1));
        clock.advance(Duration::from_millis(1));
        let d = limiter.hit("t", "a", quota).await;
        assert!(d.allowed);
        assert_eq!(d.remaining, 1);
    }
}

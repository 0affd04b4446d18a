//! IDENTIFY pacing: Discord lets a bot start one session per `IDENTIFY_INTERVAL` in each of its
//! `max_concurrency` buckets (shard id modulo `max_concurrency`), and closes a connection that
//! identifies faster. Only IDENTIFYs are paced; a RESUME never waits here, which is what keeps
//! recovery after an outage fast.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Discord's rate: one IDENTIFY per bucket every five seconds.
pub const IDENTIFY_INTERVAL: Duration = Duration::from_secs(5);

pub struct IdentifyPacer {
    max_concurrency: u32,
    interval: Duration,
    /// When each bucket's latest IDENTIFY was (or is scheduled to be) sent.
    last: Mutex<HashMap<u32, Instant>>,
}

impl IdentifyPacer {
    pub fn new(max_concurrency: u32) -> Self {
        Self::with_interval(max_concurrency, IDENTIFY_INTERVAL)
    }

    pub fn with_interval(max_concurrency: u32, interval: Duration) -> Self {
        Self {
            max_concurrency: max_concurrency.max(1),
            interval,
            last: Mutex::new(HashMap::new()),
        }
    }

    pub fn max_concurrency(&self) -> u32 {
        self.max_concurrency
    }

    /// Books the shard's next IDENTIFY slot as seen at `now` and says when it is: `now` when the
    /// bucket's last IDENTIFY is at least an interval ago, one interval after it otherwise.
    /// Each call books a slot, so shards of one bucket queue up rather than race.
    pub fn reserve(&self, shard: u32, now: Instant) -> Instant {
        let bucket = shard % self.max_concurrency;
        let mut last = match self.last.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let slot = match last.get(&bucket) {
            Some(previous) => (*previous + self.interval).max(now),
            None => now,
        };
        last.insert(bucket, slot);
        slot
    }

    /// Waits for the shard's turn to IDENTIFY.
    pub async fn wait_turn(&self, shard: u32) {
        let slot = self.reserve(shard, Instant::now());
        tokio::time::sleep_until(slot.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE: Duration = IDENTIFY_INTERVAL;

    #[test]
    fn the_first_identify_of_a_bucket_goes_at_once() {
        let pacer = IdentifyPacer::new(1);
        let now = Instant::now();
        assert_eq!(pacer.reserve(0, now), now);
    }

    #[test]
    fn a_second_identify_in_the_same_bucket_waits_five_seconds() {
        let pacer = IdentifyPacer::new(1);
        let now = Instant::now();
        pacer.reserve(0, now);
        assert_eq!(pacer.reserve(1, now), now + FIVE);
        assert_eq!(pacer.reserve(2, now), now + FIVE * 2);
    }

    #[test]
    fn shards_of_different_buckets_identify_together() {
        let pacer = IdentifyPacer::new(2);
        let now = Instant::now();
        assert_eq!(pacer.reserve(0, now), now);
        assert_eq!(pacer.reserve(1, now), now);
        assert_eq!(pacer.reserve(2, now), now + FIVE);
    }

    #[test]
    fn an_identify_long_after_the_last_one_does_not_wait() {
        let pacer = IdentifyPacer::new(1);
        let start = Instant::now();
        pacer.reserve(0, start);
        let later = start + FIVE * 3;
        assert_eq!(pacer.reserve(0, later), later);
    }

    #[test]
    fn a_max_concurrency_of_zero_is_treated_as_one() {
        let pacer = IdentifyPacer::new(0);
        let now = Instant::now();
        pacer.reserve(3, now);
        assert_eq!(pacer.reserve(4, now), now + FIVE);
    }
}

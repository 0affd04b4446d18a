//! How long a shard waits before its next connection attempt after one failed.
//!
//! Exponential from `BASE`, doubled per failed attempt up to `CAP`, with "equal jitter": half of
//! the step is fixed, the other half random, so shards that lost their connections together do
//! not come back in lockstep, and no wait is ever shorter than half its step (no storm).
//!
//! The cap is short (750 ms) on purpose: it bounds how long after Discord is reachable again
//! the shard notices, and with the connection's own handshake that must stay within a second
//! (issue 13; with a 1 s cap the soak measured 0.97 s). A failed attempt costs one TCP handshake
//! (or one refused upgrade), about two a second at most, and no IDENTIFY is ever spent on a
//! retry: those are paced separately (`pacing.rs`).

use std::time::Duration;

use rand::Rng;

/// The first wait after a working connection was lost: a fraction of a second.
pub const BASE: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
pub const CAP: Duration = Duration::from_millis(750);

pub struct Backoff<R> {
    failures: u32,
    rng: R,
}

impl Backoff<rand::rngs::StdRng> {
    /// A backoff seeded from the OS (a shard's task may move between threads, so not the
    /// thread-local generator).
    pub fn new() -> Self {
        Self::with_rng(rand::SeedableRng::from_os_rng())
    }
}

impl<R: Rng> Backoff<R> {
    /// A backoff drawing its jitter from `rng` (tests pass a seeded one).
    pub fn with_rng(rng: R) -> Self {
        Self { failures: 0, rng }
    }

    /// The wait before the next attempt; each call counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let step = BASE
            .saturating_mul(2u32.saturating_pow(self.failures.min(16)))
            .min(CAP);
        self.failures = self.failures.saturating_add(1);
        let half = step / 2;
        half + half.mul_f64(self.rng.random_range(0.0..=1.0))
    }

    /// A connection worked again (READY or RESUMED): the next failure starts from `BASE`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn seeded(seed: u64) -> Backoff<StdRng> {
        Backoff::with_rng(StdRng::seed_from_u64(seed))
    }

    #[test]
    fn the_first_retry_comes_within_a_fraction_of_a_second() {
        for seed in 0..100 {
            let delay = seeded(seed).next_delay();
            assert!(delay >= BASE / 2 && delay <= BASE, "{delay:?}");
        }
    }

    #[test]
    fn each_failure_doubles_the_step_until_the_cap() {
        let mut backoff = seeded(7);
        let steps: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        let expected_steps = [250, 500, 750, 750, 750, 750, 750, 750];
        for (delay, step) in steps.iter().zip(expected_steps) {
            let step = Duration::from_millis(step);
            assert!(
                *delay >= step / 2 && *delay <= step,
                "{delay:?} for a step of {step:?}"
            );
        }
    }

    #[test]
    fn no_wait_exceeds_the_cap_however_long_the_outage() {
        let mut backoff = seeded(3);
        for _ in 0..10_000 {
            assert!(backoff.next_delay() <= CAP);
        }
    }

    #[test]
    fn the_waits_are_jittered_so_shards_do_not_retry_in_lockstep() {
        let delays: Vec<Duration> = (0..20).map(|seed| seeded(seed).next_delay()).collect();
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 10, "{delays:?}");
    }

    #[test]
    fn a_reset_starts_again_from_the_base() {
        let mut backoff = seeded(11);
        for _ in 0..5 {
            backoff.next_delay();
        }
        backoff.reset();
        assert!(backoff.next_delay() <= BASE);
    }
}

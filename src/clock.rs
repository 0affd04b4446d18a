//! The one clock that time-bound state reads, so tests can hold it still.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::ids::now_ms;

/// Where time-bound state reads the time: rate-limit windows and cache lifetimes. Tests hold a
/// [`ManualClock`] still and advance it, so their outcome cannot depend on how fast the machine
/// runs them (a burst never straddles a window boundary; a cached entry expires exactly when
/// the test says its lifetime has passed).
#[derive(Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(ManualClock),
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => now_ms(),
            Clock::Manual(clock) => clock.now_ms(),
        }
    }
}

/// A clock that stands still until advanced; its clones share one time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(unix_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(unix_ms)))
    }

    /// Standing at the start of a window of `window` (and of every shorter window that divides
    /// it), near the current time.
    pub fn at_window_start(window: Duration) -> Self {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
        Self::at(now_ms() / window_ms * window_ms)
    }

    pub fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl From<ManualClock> for Clock {
    fn from(clock: ManualClock) -> Self {
        Clock::Manual(clock)
    }
}

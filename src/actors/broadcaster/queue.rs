//! One viewer's bounded send buffer, shared by the broadcaster (which pushes) and the viewer's
//! session (which drains when woken). The broadcaster never waits on a viewer: a push is a short
//! lock and at most one wake-up message per drain. When the buffer is full the oldest entries
//! make room (counted, and reported to the viewer as "missed N lines"), so a viewer that falls
//! behind continues from the newest. One that stays behind (every drain missing something) for
//! `max_behind` is closed as too slow and its buffer freed; a burst that overflows a viewer once
//! does not close it, since its next drain is clean. Memory per viewer is `capacity` shared
//! entries at most, whatever the viewer does. Time is what the broadcaster's injected clock
//! says (Unix milliseconds), so a test decides when `max_behind` has passed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::wire::Entry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Stayed behind for the queue's `max_behind`.
    TooSlow,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued; `wake` when the session must be told (it was not already).
    Queued { wake: bool },
    /// The viewer is closed (now or before); the broadcaster forgets it, and wakes it once
    /// more when `wake` so it can say why it closes.
    Closed { wake: bool },
}

#[derive(Default)]
pub struct Drained {
    pub entries: VecDeque<Arc<Entry>>,
    pub missed: u64,
    pub closed: Option<Closed>,
}

struct State {
    entries: VecDeque<Arc<Entry>>,
    missed: u64,
    /// When (Unix ms) the viewer first overflowed since its last clean drain (one that missed
    /// nothing).
    behind_since: Option<i64>,
    closed: Option<Closed>,
    /// A wake-up is on its way and the session has not drained since.
    notified: bool,
}

pub struct ViewerQueue {
    state: Mutex<State>,
    capacity: usize,
    max_behind_ms: i64,
}

/// What a queue holds right now, for the broadcaster's [`super::ViewerStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    pub queued: usize,
    pub capacity: usize,
    /// Lines dropped since the viewer's last drain.
    pub missed: u64,
    /// Since when (Unix ms) it has been behind, if it is.
    pub behind_since_ms: Option<i64>,
    pub closed: Option<Closed>,
}

impl ViewerQueue {
    pub fn new(capacity: usize, max_behind: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                entries: VecDeque::with_capacity(capacity.min(64)),
                missed: 0,
                behind_since: None,
                closed: None,
                notified: false,
            }),
            capacity: capacity.max(1),
            max_behind_ms: i64::try_from(max_behind.as_millis()).unwrap_or(i64::MAX),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(state: &mut State) -> bool {
        !std::mem::replace(&mut state.notified, true)
    }

    pub fn push(&self, entry: Arc<Entry>, now_ms: i64) -> Pushed {
        self.push_all(std::iter::once(entry), now_ms)
    }

    /// Pushes a batch under one lock (the broadcaster fans out in batches); `now_ms` is the
    /// broadcaster's clock.
    pub fn push_all(&self, entries: impl IntoIterator<Item = Arc<Entry>>, now_ms: i64) -> Pushed {
        let mut state = self.lock();
        if state.closed.is_some() {
            return Pushed::Closed { wake: false };
        }
        let mut overflowed = false;
        for entry in entries {
            if state.entries.len() >= self.capacity {
                state.entries.pop_front();
                state.missed += 1;
                overflowed = true;
            }
            state.entries.push_back(entry);
        }
        if overflowed {
            let since = *state.behind_since.get_or_insert(now_ms);
            if now_ms.saturating_sub(since) >= self.max_behind_ms {
                state.closed = Some(Closed::TooSlow);
                // Nothing it held will be sent: free it now, not when the session runs.
                state.entries = VecDeque::new();
                return Pushed::Closed {
                    wake: Self::wake(&mut state),
                };
            }
        }
        Pushed::Queued {
            wake: !state.entries.is_empty() && Self::wake(&mut state),
        }
    }

    /// Takes everything queued; the next push wakes the session again.
    pub fn drain(&self) -> Drained {
        let mut state = self.lock();
        state.notified = false;
        let missed = std::mem::take(&mut state.missed);
        if missed == 0 && !state.entries.is_empty() {
            state.behind_since = None;
        }
        Drained {
            entries: std::mem::take(&mut state.entries),
            missed,
            closed: state.closed,
        }
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn state(&self) -> QueueState {
        let state = self.lock();
        QueueState {
            queued: state.entries.len(),
            capacity: self.capacity,
            missed: state.missed,
            behind_since_ms: state.behind_since,
            closed: state.closed,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::broadcaster::LogLine;

    fn entry(seq: u64) -> Arc<Entry> {
        Arc::new(Entry::line(
            seq,
            "test".into(),
            Arc::new(LogLine {
                timestamp_ms: 0,
                level: "INFO".into(),
                target: "t".into(),
                message: format!("line {seq}"),
                request_id: None,
            }),
        ))
    }

    fn seqs(drained: &Drained) -> Vec<u64> {
        drained.entries.iter().map(|e| e.seq).collect()
    }

    const BEHIND: Duration = Duration::from_secs(10);
    const T0: i64 = 1_700_000_000_000;

    fn at(seconds: u64) -> i64 {
        T0 + i64::try_from(seconds).unwrap() * 1_000
    }

    #[test]
    fn a_viewer_is_woken_once_per_drain_not_once_per_line() {
        let (queue, now) = (ViewerQueue::new(8, BEHIND), T0);
        assert_eq!(queue.push(entry(1), now), Pushed::Queued { wake: true });
        assert_eq!(queue.push(entry(2), now), Pushed::Queued { wake: false });
        assert_eq!(seqs(&queue.drain()), vec![1, 2]);
        assert_eq!(queue.push(entry(3), now), Pushed::Queued { wake: true });
    }

    #[test]
    fn a_viewer_that_falls_behind_is_told_how_many_it_missed_and_gets_the_newest() {
        let (queue, now) = (ViewerQueue::new(4, BEHIND), T0);
        assert!(matches!(
            queue.push_all((1..=6).map(entry), now),
            Pushed::Queued { wake: true }
        ));
        let drained = queue.drain();
        assert_eq!(drained.missed, 2);
        assert_eq!(seqs(&drained), vec![3, 4, 5, 6]);
        assert_eq!(drained.closed, None);
        // The count is reported once.
        queue.push(entry(7), now);
        assert_eq!(queue.drain().missed, 0);
    }

    #[test]
    fn a_viewer_that_stays_behind_is_closed_and_its_buffer_freed() {
        let queue = ViewerQueue::new(4, BEHIND);
        let mut seq = 0;
        // Behind from the first overflow on; still open until `BEHIND` has passed.
        for second in 0..10 {
            let now = at(second);
            for _ in 0..10 {
                seq += 1;
                assert!(matches!(queue.push(entry(seq), now), Pushed::Queued { .. }));
                assert!(queue.len() <= 4, "bounded");
            }
            // Draining while missing lines does not count as catching up.
            if second % 3 == 0 {
                assert!(queue.drain().missed > 0);
                queue.push_all((0..5).map(|_| entry(0)), now);
            }
        }
        let state = queue.state();
        assert_eq!(state.behind_since_ms, Some(T0));
        assert!(state.queued <= state.capacity);
        let late = at(BEHIND.as_secs());
        assert!(matches!(queue.push(entry(99), late), Pushed::Closed { .. }));
        assert!(queue.is_empty(), "freed at once");
        assert_eq!(queue.push(entry(100), late), Pushed::Closed { wake: false });
        let drained = queue.drain();
        assert_eq!(drained.closed, Some(Closed::TooSlow));
        assert!(drained.entries.is_empty());
    }

    #[test]
    fn a_burst_that_overflows_once_is_forgiven_by_a_clean_drain() {
        let queue = ViewerQueue::new(2, BEHIND);
        for second in 0..30 {
            let now = at(second);
            queue.push_all((0..5).map(entry), now);
            assert_eq!(queue.drain().missed, 3);
            assert!(matches!(queue.push(entry(100), now), Pushed::Queued { .. }));
            assert_eq!(queue.drain().missed, 0, "caught up");
        }
    }
}

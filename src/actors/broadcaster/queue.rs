//! One viewer's bounded send buffer, shared by the broadcaster (which pushes) and the viewer's
//! session (which drains when woken). The broadcaster never waits on a viewer: a push is a short
//! lock and at most one wake-up message per drain. A viewer that lets the buffer fill loses what
//! it held (counted, and reported to it as "missed N lines"), then continues from the newest;
//! one that overflows `max_overflows` times without once draining cleanly is closed as too slow,
//! and its buffer is freed. Memory per viewer is therefore `capacity` shared entries at most.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::wire::Entry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Stayed too far behind.
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
    /// Overflows since the last drain that found nothing missed.
    overflows: u32,
    closed: Option<Closed>,
    /// A wake-up is on its way and the session has not drained since.
    notified: bool,
}

pub struct ViewerQueue {
    state: Mutex<State>,
    capacity: usize,
    max_overflows: u32,
}

impl ViewerQueue {
    pub fn new(capacity: usize, max_overflows: u32) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                entries: VecDeque::with_capacity(capacity.min(64)),
                missed: 0,
                overflows: 0,
                closed: None,
                notified: false,
            }),
            capacity: capacity.max(1),
            max_overflows,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(state: &mut State) -> bool {
        !std::mem::replace(&mut state.notified, true)
    }

    pub fn push(&self, entry: Arc<Entry>) -> Pushed {
        self.push_all(std::iter::once(entry))
    }

    /// Pushes a batch under one lock (the broadcaster fans out in batches).
    pub fn push_all(&self, entries: impl IntoIterator<Item = Arc<Entry>>) -> Pushed {
        let mut state = self.lock();
        if state.closed.is_some() {
            return Pushed::Closed { wake: false };
        }
        for entry in entries {
            if state.entries.len() >= self.capacity {
                state.missed += state.entries.len() as u64;
                state.entries.clear();
                state.overflows += 1;
                if state.overflows > self.max_overflows {
                    state.closed = Some(Closed::TooSlow);
                    // Nothing it held will be sent: free it now, not when the session runs.
                    state.entries = VecDeque::new();
                    return Pushed::Closed {
                        wake: Self::wake(&mut state),
                    };
                }
            }
            state.entries.push_back(entry);
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
            state.overflows = 0;
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

    #[test]
    fn a_viewer_is_woken_once_per_drain_not_once_per_line() {
        let queue = ViewerQueue::new(8, 2);
        assert_eq!(queue.push(entry(1)), Pushed::Queued { wake: true });
        assert_eq!(queue.push(entry(2)), Pushed::Queued { wake: false });
        assert_eq!(seqs(&queue.drain()), vec![1, 2]);
        assert_eq!(queue.push(entry(3)), Pushed::Queued { wake: true });
    }

    #[test]
    fn a_viewer_that_falls_behind_is_told_how_many_it_missed_and_gets_the_newest() {
        let queue = ViewerQueue::new(4, 2);
        for seq in 1..=6 {
            queue.push(entry(seq));
        }
        let drained = queue.drain();
        assert_eq!(drained.missed, 4);
        assert_eq!(seqs(&drained), vec![5, 6]);
        assert_eq!(drained.closed, None);
        // The count is reported once.
        queue.push(entry(7));
        assert_eq!(queue.drain().missed, 0);
    }

    #[test]
    fn a_viewer_that_stays_too_far_behind_is_closed_and_its_buffer_freed() {
        let queue = ViewerQueue::new(4, 2);
        let mut last = Pushed::Queued { wake: false };
        let mut seq = 0;
        while matches!(last, Pushed::Queued { .. }) {
            seq += 1;
            last = queue.push(entry(seq));
            assert!(queue.len() <= 4, "bounded");
        }
        // Three overflows of four: closed on the thirteenth line.
        assert_eq!(seq, 13);
        assert!(queue.is_empty(), "freed at once");
        assert_eq!(queue.push(entry(99)), Pushed::Closed { wake: false });
        let drained = queue.drain();
        assert_eq!(drained.closed, Some(Closed::TooSlow));
        assert!(drained.entries.is_empty());
    }

    #[test]
    fn a_clean_drain_forgives_earlier_overflows() {
        let queue = ViewerQueue::new(2, 1);
        for round in 0..5 {
            for seq in 0..3 {
                assert!(
                    matches!(queue.push(entry(round * 10 + seq)), Pushed::Queued { .. }),
                    "round {round}"
                );
            }
            assert_eq!(queue.drain().missed, 2);
            queue.push(entry(100));
            assert_eq!(queue.drain().missed, 0, "caught up");
        }
    }
}

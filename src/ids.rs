//! Application-generated 64-bit, time-ordered ids.
//!
//! Ids are made here rather than by the database so that the DDL stays portable between SQLite
//! and PostgreSQL and so that several instances sharing one database never collide: the layout
//! is 42 bits of milliseconds since 2024-01-01, 10 bits of node id (random per process) and 12
//! bits of sequence. The top bit stays clear, so every id is a positive `i64`.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// 2024-01-01T00:00:00Z in Unix milliseconds.
const EPOCH_MS: i64 = 1_704_067_200_000;
const NODE_BITS: u32 = 10;
const SEQ_BITS: u32 = 12;
const SEQ_MASK: i64 = (1 << SEQ_BITS) - 1;

struct State {
    last_ms: i64,
    seq: i64,
}

struct Generator {
    node: i64,
    state: Mutex<State>,
}

fn generator() -> &'static Generator {
    static GEN: OnceLock<Generator> = OnceLock::new();
    GEN.get_or_init(|| Generator {
        node: i64::from(rand::random::<u16>() & ((1 << NODE_BITS) - 1)),
        state: Mutex::new(State { last_ms: 0, seq: 0 }),
    })
}

/// Current time in Unix milliseconds, the storage representation of every instant.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A fresh id, strictly greater than every id this process made before.
pub fn next_id() -> i64 {
    let generator = generator();
    let mut state = match generator.state.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut ms = (now_ms() - EPOCH_MS).max(state.last_ms);
    if ms == state.last_ms {
        state.seq = (state.seq + 1) & SEQ_MASK;
        if state.seq == 0 {
            // 4,096 ids in one millisecond: borrow the next millisecond rather than repeat.
            ms += 1;
        }
    } else {
        state.seq = 0;
    }
    state.last_ms = ms;
    (ms << (NODE_BITS + SEQ_BITS)) | (generator.node << SEQ_BITS) | state.seq
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positive_and_strictly_increasing() {
        let mut last = 0;
        for _ in 0..20_000 {
            let id = next_id();
            assert!(id > last, "{id} <= {last}");
            last = id;
        }
    }
}

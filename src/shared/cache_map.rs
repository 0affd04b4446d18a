//! The in-process map behind each cache: entries trusted for a lifetime (or until removed), and
//! an epoch that makes a load racing an invalidation harmless.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Clock;

/// Past this many entries, expired ones are swept on insert.
const SWEEP_AT: usize = 10_000;

/// The invalidation count when a load began: an entry loaded across an invalidation is used
/// for its request but not kept, since it may predate the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

pub struct CacheMap<K, V> {
    /// Each entry with the time (Unix ms, by `clock`) it was stored.
    entries: Mutex<HashMap<K, (i64, Arc<V>)>>,
    epoch: AtomicU64,
    /// `None`: entries stay until removed (every change goes through this process).
    ttl: Option<Duration>,
    clock: Clock,
}

impl<K: Hash + Eq, V> CacheMap<K, V> {
    pub fn new(ttl: Option<Duration>) -> Self {
        Self::with_clock(ttl, Clock::System)
    }

    /// Entries age by `clock` (tests hold a manual one still and advance it).
    pub fn with_clock(ttl: Option<Duration>, clock: Clock) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            ttl: ttl.map(|ttl| ttl.min(Duration::from_millis(i64::MAX as u64))),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (i64, Arc<V>)>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn is_fresh(&self, stored_at: i64, now: i64) -> bool {
        self.ttl.is_none_or(|ttl| {
            let age = u64::try_from(now.saturating_sub(stored_at)).unwrap_or(0);
            Duration::from_millis(age) < ttl
        })
    }

    /// Read before loading an entry from the source of truth; pass to [`Self::put`].
    pub fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::Acquire))
    }

    pub fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.clock.now_ms();
        self.lock()
            .get(key)
            .filter(|(at, _)| self.is_fresh(*at, now))
            .map(|(_, v)| Arc::clone(v))
    }

    /// Keeps `value` unless an invalidation came after `since` (`None`: keeps it regardless, for
    /// entries no invalidation applies to). Returns it either way.
    pub fn put(&self, since: Option<Epoch>, key: K, value: V) -> Arc<V> {
        let value = Arc::new(value);
        let now = self.clock.now_ms();
        let mut map = self.lock();
        // Checked under the lock that `remove` and `clear` take after bumping the epoch: an
        // invalidation either finds this entry or makes this check fail.
        if since.is_none_or(|e| self.epoch.load(Ordering::Acquire) == e.0) {
            if map.len() >= SWEEP_AT {
                map.retain(|_, (at, _)| self.is_fresh(*at, now));
            }
            map.insert(key, (now, Arc::clone(&value)));
        }
        value
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.lock().remove(key);
    }

    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_until_removed_or_expired() {
        let map = CacheMap::new(None);
        map.put(Some(map.epoch()), 1, "a");
        assert_eq!(map.get(&1).as_deref(), Some(&"a"));
        map.remove(&1);
        assert!(map.get(&1).is_none());
        map.put(None, 2, "b");
        map.clear();
        assert!(map.get(&2).is_none());

        let expiring = CacheMap::new(Some(Duration::ZERO));
        expiring.put(None, 1, "a");
        assert!(
            expiring.get(&1).is_none(),
            "a zero lifetime keeps nothing fresh"
        );
    }

    #[test]
    fn an_entry_expires_when_its_lifetime_has_passed_on_the_clock() {
        let clock = crate::clock::ManualClock::at(1_000_000);
        let map = CacheMap::with_clock(Some(Duration::from_secs(2)), clock.clone().into());
        map.put(None, 1, "a");
        clock.advance(Duration::from_millis(1_999));
        assert!(map.get(&1).is_some(), "still within its lifetime");
        clock.advance(Duration::from_millis(1));
        assert!(map.get(&1).is_none(), "expired at exactly its lifetime");
    }

    #[test]
    fn an_entry_loaded_across_an_invalidation_is_used_but_not_kept() {
        let map = CacheMap::new(None);
        let before = map.epoch();
        map.remove(&2);
        let served = map.put(Some(before), 1, "loaded before the change");
        assert_eq!(*served, "loaded before the change");
        assert!(map.get(&1).is_none());
        map.put(Some(map.epoch()), 1, "loaded after");
        assert!(map.get(&1).is_some());
    }
}

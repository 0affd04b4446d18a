//! Cross-instance cache invalidation. A change is applied at once to this instance's caches and
//! published on the Redis channel `<prefix>:invalidate`; every instance subscribes at start and
//! applies what the others publish, a fraction of a millisecond later. While an instance is not
//! subscribed (no Redis, or Redis unreachable) each cache bounds its staleness by its own entry
//! lifetime, and on subscribing again it forgets everything, since messages sent meanwhile are
//! lost.

use std::sync::{Arc, Mutex, Weak};

use super::redis::Redis;
use super::subscription::{Listener, listen};
use deadpool_redis::redis::AsyncCommands;

/// What to forget, as published between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// A user's status, token version, MFA or grants changed.
    User(i64),
    /// An API key (by prefix) was revoked or changed.
    ApiKey(String),
    /// A role changed: every user and key may be affected.
    AllAuth,
    /// A guild's settings or modules changed, or the bot joined or left it.
    Guild(i64),
    /// `POST /api/v1/bot/reload`.
    AllGuilds,
}

impl Invalidation {
    /// Everything, for a subscriber that may have missed messages.
    const EVERYTHING: [Invalidation; 2] = [Invalidation::AllAuth, Invalidation::AllGuilds];

    fn encode(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::ApiKey(prefix) => format!("key:{prefix}"),
            Self::AllAuth => "auth".to_owned(),
            Self::Guild(id) => format!("guild:{id}"),
            Self::AllGuilds => "guilds".to_owned(),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        match text.split_once(':') {
            Some(("user", id)) => id.parse().ok().map(Self::User),
            Some(("key", prefix)) if !prefix.is_empty() => Some(Self::ApiKey(prefix.to_owned())),
            Some(("guild", id)) => id.parse().ok().map(Self::Guild),
            None if text == "auth" => Some(Self::AllAuth),
            None if text == "guilds" => Some(Self::AllGuilds),
            _ => None,
        }
    }
}

/// A cache that forgets on request; each ignores what does not concern it.
pub trait Invalidate: Send + Sync {
    fn invalidate(&self, what: &Invalidation);
}

type Registry = Mutex<Vec<Weak<dyn Invalidate>>>;

/// Where changes are announced. Caches register with it and publish through it.
#[derive(Clone)]
pub struct Bus {
    redis: Option<Redis>,
    caches: Arc<Registry>,
}

fn apply(caches: &Registry, what: &Invalidation) {
    let caches = match caches.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    for cache in caches.iter().filter_map(Weak::upgrade) {
        cache.invalidate(what);
    }
}

impl Bus {
    pub fn new(redis: Option<Redis>) -> Self {
        Self {
            redis,
            caches: Arc::default(),
        }
    }

    /// Whether other instances may exist (then caches must bound their entries' lifetime).
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    pub fn register(&self, cache: Weak<dyn Invalidate>) {
        match self.caches.lock() {
            Ok(mut g) => g.push(cache),
            Err(poisoned) => poisoned.into_inner().push(cache),
        }
    }

    /// Forgets here, then tells the other instances. The change is already committed: if the
    /// publish fails, they see it when their entries expire, so the caller is not failed for it.
    pub async fn publish(&self, what: Invalidation) {
        apply(&self.caches, &what);
        let Some(redis) = &self.redis else {
            return;
        };
        let Some(mut conn) = redis.conn().await else {
            return;
        };
        let published: Result<i64, _> = conn.publish(channel(redis), what.encode()).await;
        if let Err(e) = published {
            redis.report_failure(&e);
        }
    }

    /// Starts applying the other instances' invalidations (no-op without Redis). The task ends
    /// once every handle to this bus is dropped.
    pub fn subscribe(&self) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        let channel = channel(&redis);
        let applier = Applier {
            caches: Arc::downgrade(&self.caches),
            redis: redis.clone(),
        };
        tokio::spawn(listen(redis, channel, applier));
    }
}

fn channel(redis: &Redis) -> String {
    redis.key(&["invalidate"])
}

/// Applies the other instances' invalidations to this instance's caches.
struct Applier {
    caches: Weak<Registry>,
    redis: Redis,
}

impl Listener for Applier {
    const WHAT: &'static str = "cache invalidations";
    const WHILE_LOST: &'static str = "other instances' changes are seen when cached entries expire";

    fn alive(&self) -> bool {
        self.caches.strong_count() > 0
    }

    fn subscribed(&mut self) {
        // Whatever was published while unsubscribed is lost: forget everything.
        if let Some(registry) = self.caches.upgrade() {
            for what in &Invalidation::EVERYTHING {
                apply(&registry, what);
            }
        }
        self.redis.report_subscription(true);
    }

    fn message(&mut self, payload: String) -> bool {
        let Some(registry) = self.caches.upgrade() else {
            return false;
        };
        match Invalidation::decode(&payload) {
            Some(what) => apply(&registry, &what),
            None => tracing::warn!("ignoring an unreadable invalidation message"),
        }
        true
    }

    fn lost(&mut self) {
        self.redis.report_subscription(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidations_round_trip_and_garbage_is_refused() {
        for what in [
            Invalidation::User(42),
            Invalidation::ApiKey("abcd1234".into()),
            Invalidation::AllAuth,
            Invalidation::Guild(7),
            Invalidation::AllGuilds,
        ] {
            assert_eq!(Invalidation::decode(&what.encode()), Some(what));
        }
        for bad in [
            "",
            "user:",
            "user:x",
            "key:",
            "guild:",
            "all",
            "everything",
            "auth:1",
            "guilds:2",
        ] {
            assert_eq!(Invalidation::decode(bad), None, "{bad:?}");
        }
    }

    struct Seen(Mutex<Vec<Invalidation>>);

    impl Invalidate for Seen {
        fn invalidate(&self, what: &Invalidation) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(what.clone());
            }
        }
    }

    #[tokio::test]
    async fn a_publish_reaches_every_live_cache_of_this_instance() {
        let bus = Bus::new(None);
        let a = Arc::new(Seen(Mutex::default()));
        let gone = Arc::new(Seen(Mutex::default()));
        bus.register(Arc::downgrade(&a) as Weak<dyn Invalidate>);
        bus.register(Arc::downgrade(&gone) as Weak<dyn Invalidate>);
        drop(gone);
        bus.publish(Invalidation::Guild(3)).await;
        let seen = a.0.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(seen, vec![Invalidation::Guild(3)]);
    }
}

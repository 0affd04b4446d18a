//! What authenticating a request needs (a user's token version, status and grants; an API
//! key's row), kept in process memory for a short time so that the hot path of an
//! authenticated request touches no database.
//!
//! Every change (sign-out, password or MFA change, disabling a user, a change of roles or
//! grants, revoking a key) invalidates the affected entries at once on the instance that made
//! it and, with Redis, is published to every other instance, which drops its entries as soon as
//! the message arrives. While an instance is not subscribed (no Redis, or Redis unreachable) it
//! sees another instance's change within [`TTL`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use deadpool_redis::redis::AsyncCommands;
use futures_util::StreamExt;

use super::rbac::Grants;
use super::tokens::Claims;
use crate::shared::redis::Redis;
use crate::store::api_keys::ApiKey;

/// How long an entry is trusted: the bound on how late an instance that is not subscribed to
/// invalidations sees a change made by another one.
pub const TTL: Duration = Duration::from_secs(2);
/// Past this many entries, stale ones are swept on insert.
const SWEEP_AT: usize = 10_000;
/// How often the subscription is checked with a PING (a half-open connection delivers nothing
/// and reports nothing).
const HEARTBEAT: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// A user as authentication sees it.
#[derive(Debug, Clone)]
pub struct UserAuth {
    pub id: i64,
    pub username: String,
    pub token_version: i64,
    pub disabled: bool,
    pub mfa_enabled: bool,
    /// A role of the user requires MFA and it is not enabled (that role grants nothing).
    pub mfa_required: bool,
    pub grants: Arc<Grants>,
}

/// What to forget, as published between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    User(i64),
    Key(String),
    All,
}

impl Invalidation {
    fn encode(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Key(prefix) => format!("key:{prefix}"),
            Self::All => "all".to_owned(),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        match text.split_once(':') {
            Some(("user", id)) => id.parse().ok().map(Self::User),
            Some(("key", prefix)) if !prefix.is_empty() => Some(Self::Key(prefix.to_owned())),
            None if text == "all" => Some(Self::All),
            _ => None,
        }
    }
}

/// The invalidation count when a load began; an entry loaded across an invalidation is used for
/// its request but not cached, since it may predate the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

type Map<K, V> = Mutex<HashMap<K, (Instant, Arc<V>)>>;

#[derive(Default)]
struct Inner {
    users: Map<i64, UserAuth>,
    keys: Map<String, ApiKey>,
    /// Tokens whose signature and claims were verified, by their text. A signature stays
    /// valid, so no invalidation applies; expiry is checked again on every use.
    tokens: Map<Box<str>, Claims>,
    epoch: AtomicU64,
}

#[derive(Clone, Default)]
pub struct AuthCache {
    inner: Arc<Inner>,
    redis: Option<Redis>,
}

fn lock<K, V>(m: &Map<K, V>) -> MutexGuard<'_, HashMap<K, (Instant, Arc<V>)>> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn fresh<K, Q, V>(m: &Map<K, V>, k: &Q) -> Option<Arc<V>>
where
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized,
{
    lock(m)
        .get(k)
        .filter(|(at, _)| at.elapsed() < TTL)
        .map(|(_, v)| Arc::clone(v))
}

impl Inner {
    /// Stores `v` unless an invalidation came after `since` (`None`: unconditionally).
    fn put<K: std::hash::Hash + Eq, V>(
        &self,
        m: &Map<K, V>,
        since: Option<Epoch>,
        k: K,
        v: V,
    ) -> Arc<V> {
        let v = Arc::new(v);
        let mut map = lock(m);
        // Checked under the lock that `apply` also takes after bumping the epoch, so an
        // invalidation either sees this entry (and removes it) or makes this check fail.
        if since.is_none_or(|e| self.epoch.load(Ordering::Acquire) == e.0) {
            if map.len() >= SWEEP_AT {
                map.retain(|_, (at, _)| at.elapsed() < TTL);
            }
            map.insert(k, (Instant::now(), Arc::clone(&v)));
        }
        v
    }

    fn apply(&self, what: &Invalidation) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match what {
            Invalidation::User(id) => {
                lock(&self.users).remove(id);
            }
            Invalidation::Key(prefix) => {
                lock(&self.keys).remove(prefix);
            }
            Invalidation::All => {
                lock(&self.users).clear();
                lock(&self.keys).clear();
                lock(&self.tokens).clear();
            }
        }
    }
}

impl AuthCache {
    /// With Redis, changes are published to the other instances; call [`Self::subscribe`] to
    /// receive theirs.
    pub fn new(redis: Option<Redis>) -> Self {
        Self {
            inner: Arc::default(),
            redis,
        }
    }

    /// Read before loading an entry from the database; pass to `put_user` / `put_key`.
    pub fn epoch(&self) -> Epoch {
        Epoch(self.inner.epoch.load(Ordering::Acquire))
    }

    pub fn user(&self, id: i64) -> Option<Arc<UserAuth>> {
        fresh(&self.inner.users, &id)
    }

    pub fn put_user(&self, since: Epoch, user: UserAuth) -> Arc<UserAuth> {
        self.inner
            .put(&self.inner.users, Some(since), user.id, user)
    }

    pub fn key(&self, prefix: &str) -> Option<Arc<ApiKey>> {
        fresh(&self.inner.keys, prefix)
    }

    /// The claims of a token verified earlier (its lifetime is the caller's to check).
    pub fn verified_token(&self, token: &str) -> Option<Arc<Claims>> {
        fresh(&self.inner.tokens, token)
    }

    pub fn put_verified_token(&self, token: &str, claims: Claims) -> Arc<Claims> {
        // Nothing invalidates a signature, so no epoch applies.
        self.inner
            .put(&self.inner.tokens, None, token.into(), claims)
    }

    pub fn put_key(&self, since: Epoch, key: ApiKey) -> Arc<ApiKey> {
        self.inner
            .put(&self.inner.keys, Some(since), key.prefix.clone(), key)
    }

    /// After a change to one user (token version, status, grants, MFA).
    pub async fn forget_user(&self, id: i64) {
        self.forget(Invalidation::User(id)).await;
    }

    pub async fn forget_key(&self, prefix: &str) {
        self.forget(Invalidation::Key(prefix.to_owned())).await;
    }

    /// After a change that may affect many users (a role's permissions or MFA requirement).
    pub async fn clear(&self) {
        self.forget(Invalidation::All).await;
    }

    /// Forgets here, then tells the other instances. The change is already committed: if the
    /// publish fails, they see it within [`TTL`], so the caller is not failed for it.
    async fn forget(&self, what: Invalidation) {
        self.inner.apply(&what);
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

    /// Starts receiving the other instances' invalidations (no-op without Redis). The task ends
    /// when the last handle to this cache is dropped.
    pub fn subscribe(&self) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        tokio::spawn(listen(Arc::downgrade(&self.inner), redis));
    }
}

fn channel(redis: &Redis) -> String {
    redis.key(&["auth", "invalidate"])
}

async fn listen(cache: Weak<Inner>, redis: Redis) {
    let channel = channel(&redis);
    // Failures are reported once per outage, not once per retry.
    let mut reported = false;
    while cache.strong_count() > 0 {
        match redis.pubsub(&channel).await {
            Ok(pubsub) => {
                // Whatever was published while not subscribed is lost: start afresh.
                match cache.upgrade() {
                    Some(inner) => inner.apply(&Invalidation::All),
                    None => return,
                }
                tracing::info!(channel, "subscribed to authentication invalidations");
                let (mut sink, mut stream) = pubsub.split();
                let mut heartbeat =
                    tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
                loop {
                    tokio::select! {
                        message = stream.next() => {
                            let Some(message) = message else { break };
                            let Some(inner) = cache.upgrade() else { return };
                            let text: String = message.get_payload().unwrap_or_default();
                            match Invalidation::decode(&text) {
                                Some(what) => inner.apply(&what),
                                None => tracing::warn!(channel, "ignoring an unreadable invalidation message"),
                            }
                        }
                        _ = heartbeat.tick() => {
                            if cache.strong_count() == 0 {
                                return;
                            }
                            // Any answer will do: in subscribed mode RESP2 answers PING with an array.
                            let pong = tokio::time::timeout(PING_TIMEOUT, sink.ping::<deadpool_redis::redis::Value>()).await;
                            if !matches!(pong, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
                reported = true;
                tracing::warn!(
                    channel,
                    "lost the subscription to authentication invalidations; other instances' changes are seen within {} s until it is back",
                    TTL.as_secs()
                );
            }
            Err(e) if reported => {
                tracing::debug!(channel, error = %e, "cannot subscribe to authentication invalidations yet");
            }
            Err(e) => {
                tracing::warn!(channel, error = %e, "cannot subscribe to authentication invalidations; retrying");
                reported = true;
            }
        }
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64) -> UserAuth {
        UserAuth {
            id,
            username: "a".into(),
            token_version: 0,
            disabled: false,
            mfa_enabled: false,
            mfa_required: false,
            grants: Arc::new(Grants::default()),
        }
    }

    #[tokio::test]
    async fn entries_are_forgotten_on_request() {
        let cache = AuthCache::new(None);
        cache.put_user(cache.epoch(), user(1));
        assert!(cache.user(1).is_some());
        cache.forget_user(1).await;
        assert!(cache.user(1).is_none());
        cache.put_user(cache.epoch(), user(1));
        cache.clear().await;
        assert!(cache.user(1).is_none());
    }

    #[tokio::test]
    async fn an_entry_loaded_across_an_invalidation_is_not_cached() {
        let cache = AuthCache::new(None);
        let before = cache.epoch();
        cache.forget_user(2).await;
        let served = cache.put_user(before, user(1));
        assert_eq!(served.id, 1, "the request still gets what was loaded");
        assert!(cache.user(1).is_none(), "but it may predate the change");
    }

    #[test]
    fn invalidations_round_trip_and_garbage_is_refused() {
        for what in [
            Invalidation::User(42),
            Invalidation::Key("abcd1234".into()),
            Invalidation::All,
        ] {
            assert_eq!(Invalidation::decode(&what.encode()), Some(what));
        }
        for bad in ["", "user:", "user:x", "key:", "everything", "all:1"] {
            assert_eq!(Invalidation::decode(bad), None, "{bad:?}");
        }
    }
}

//! What authenticating a request needs (a user's token version, status and grants; an API
//! key's row; a token whose signature verified), kept in process memory for a short time so
//! that the hot path of an authenticated request touches no database.
//!
//! Every change (sign-out, password or MFA change, disabling a user, a change of roles or
//! grants, revoking a key) is announced on the invalidation bus (`shared::invalidation`): it
//! applies to this instance at once and, with Redis, to every other instance as soon as the
//! message arrives. An instance that is not subscribed sees another's change within [`TTL`].

use std::sync::Arc;
use std::time::Duration;

use super::rbac::Grants;
use super::tokens::Claims;
use crate::clock::Clock;
use crate::shared::cache_map::{CacheMap, Epoch};
use crate::shared::invalidation::{Bus, Invalidate, Invalidation};
use crate::store::api_keys::ApiKey;

/// How long an entry is trusted: the bound on how late an instance that is not subscribed to
/// invalidations sees a change made by another one.
pub const TTL: Duration = Duration::from_secs(2);

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

struct Maps {
    users: CacheMap<i64, UserAuth>,
    keys: CacheMap<String, ApiKey>,
    /// Tokens whose signature and claims verified, by their text. A signature stays valid, so
    /// no invalidation applies; expiry is checked again on every use.
    tokens: CacheMap<Box<str>, Claims>,
}

impl Invalidate for Maps {
    fn invalidate(&self, what: &Invalidation) {
        match what {
            Invalidation::User(id) => self.users.remove(id),
            Invalidation::ApiKey(prefix) => self.keys.remove(prefix.as_str()),
            Invalidation::AllAuth => {
                self.users.clear();
                self.keys.clear();
            }
            Invalidation::Guild(_) | Invalidation::AllGuilds => {}
        }
    }
}

#[derive(Clone)]
pub struct AuthCache {
    maps: Arc<Maps>,
    bus: Bus,
}

impl AuthCache {
    pub fn new(bus: Bus) -> Self {
        Self::with_clock(bus, Clock::System)
    }

    /// Entries age by `clock` (tests hold a manual one still and advance it past [`TTL`]).
    pub fn with_clock(bus: Bus, clock: Clock) -> Self {
        let maps = Arc::new(Maps {
            users: CacheMap::with_clock(Some(TTL), clock.clone()),
            keys: CacheMap::with_clock(Some(TTL), clock.clone()),
            tokens: CacheMap::with_clock(Some(TTL), clock),
        });
        bus.register(Arc::downgrade(&maps) as std::sync::Weak<dyn Invalidate>);
        Self { maps, bus }
    }

    /// The bus this cache forgets through: whoever must know when another instance's
    /// invalidations have arrived here (a test's barrier) registers a listener on it.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Read before loading a user from the database; pass to `put_user`.
    pub fn user_epoch(&self) -> Epoch {
        self.maps.users.epoch()
    }

    pub fn user(&self, id: i64) -> Option<Arc<UserAuth>> {
        self.maps.users.get(&id)
    }

    pub fn put_user(&self, since: Epoch, user: UserAuth) -> Arc<UserAuth> {
        self.maps.users.put(Some(since), user.id, user)
    }

    /// Read before loading an API key from the database; pass to `put_key`.
    pub fn key_epoch(&self) -> Epoch {
        self.maps.keys.epoch()
    }

    pub fn key(&self, prefix: &str) -> Option<Arc<ApiKey>> {
        self.maps.keys.get(prefix)
    }

    pub fn put_key(&self, since: Epoch, key: ApiKey) -> Arc<ApiKey> {
        self.maps.keys.put(Some(since), key.prefix.clone(), key)
    }

    /// The claims of a token verified earlier (its lifetime is the caller's to check).
    pub fn verified_token(&self, token: &str) -> Option<Arc<Claims>> {
        self.maps.tokens.get(token)
    }

    pub fn put_verified_token(&self, token: &str, claims: Claims) -> Arc<Claims> {
        // Nothing invalidates a signature, so no epoch applies.
        self.maps.tokens.put(None, token.into(), claims)
    }

    /// After a change to one user (token version, status, grants, MFA).
    pub async fn forget_user(&self, id: i64) {
        self.bus.publish(Invalidation::User(id)).await;
    }

    pub async fn forget_key(&self, prefix: &str) {
        self.bus
            .publish(Invalidation::ApiKey(prefix.to_owned()))
            .await;
    }

    /// After a change that may affect many users (a role's permissions or MFA requirement).
    pub async fn clear(&self) {
        self.bus.publish(Invalidation::AllAuth).await;
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
    async fn entries_are_forgotten_on_request_and_guild_changes_leave_them_alone() {
        let cache = AuthCache::new(Bus::new(None));
        cache.put_user(cache.user_epoch(), user(1));
        cache.bus.publish(Invalidation::AllGuilds).await;
        assert!(cache.user(1).is_some());
        cache.forget_user(1).await;
        assert!(cache.user(1).is_none());
        cache.put_user(cache.user_epoch(), user(1));
        cache.clear().await;
        assert!(cache.user(1).is_none());
    }
}

//! What authenticating a request needs (a user's token version, status and grants; an API
//! key's row), kept in process memory for a short time so that the hot path of an
//! authenticated request touches no database.
//!
//! Every change this instance makes (sign-out, password or MFA change, disabling a user, a
//! change of roles or grants, revoking a key) invalidates the affected entries at once. A change
//! made by another instance is seen here within [`TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::rbac::Grants;
use crate::store::api_keys::ApiKey;

/// How long an entry is trusted: the bound on how late this instance sees a change made by
/// another one.
pub const TTL: Duration = Duration::from_secs(2);
/// Past this many entries, stale ones are swept on insert.
const SWEEP_AT: usize = 10_000;

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

type Map<K, V> = Mutex<HashMap<K, (Instant, Arc<V>)>>;

#[derive(Clone, Default)]
pub struct AuthCache {
    users: Arc<Map<i64, UserAuth>>,
    keys: Arc<Map<String, ApiKey>>,
}

fn lock<K, V>(m: &Map<K, V>) -> MutexGuard<'_, HashMap<K, (Instant, Arc<V>)>> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn fresh<K: std::hash::Hash + Eq, V>(m: &Map<K, V>, k: &K) -> Option<Arc<V>> {
    lock(m)
        .get(k)
        .filter(|(at, _)| at.elapsed() < TTL)
        .map(|(_, v)| Arc::clone(v))
}

fn put<K: std::hash::Hash + Eq, V>(m: &Map<K, V>, k: K, v: V) -> Arc<V> {
    let v = Arc::new(v);
    let mut map = lock(m);
    if map.len() >= SWEEP_AT {
        map.retain(|_, (at, _)| at.elapsed() < TTL);
    }
    map.insert(k, (Instant::now(), Arc::clone(&v)));
    v
}

impl AuthCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn user(&self, id: i64) -> Option<Arc<UserAuth>> {
        fresh(&self.users, &id)
    }

    pub fn put_user(&self, user: UserAuth) -> Arc<UserAuth> {
        put(&self.users, user.id, user)
    }

    pub fn key(&self, prefix: &str) -> Option<Arc<ApiKey>> {
        fresh(&self.keys, &prefix.to_owned())
    }

    pub fn put_key(&self, key: ApiKey) -> Arc<ApiKey> {
        put(&self.keys, key.prefix.clone(), key)
    }

    /// After a change to one user (token version, status, grants, MFA).
    pub fn forget_user(&self, id: i64) {
        lock(&self.users).remove(&id);
    }

    pub fn forget_key(&self, prefix: &str) {
        lock(&self.keys).remove(prefix);
    }

    /// After a change that may affect many users (a role's permissions or MFA requirement).
    pub fn clear(&self) {
        lock(&self.users).clear();
        lock(&self.keys).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_forgotten_on_request() {
        let cache = AuthCache::new();
        let user = UserAuth {
            id: 1,
            username: "a".into(),
            token_version: 0,
            disabled: false,
            mfa_enabled: false,
            mfa_required: false,
            grants: Arc::new(Grants::default()),
        };
        cache.put_user(user.clone());
        assert!(cache.user(1).is_some());
        cache.forget_user(1);
        assert!(cache.user(1).is_none());
        cache.put_user(user);
        cache.clear();
        assert!(cache.user(1).is_none());
    }
}

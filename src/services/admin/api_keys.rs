//! API keys for scripts. A key holds a subset of its creator's permissions, optionally only in
//! one guild and until an expiry; the full key is shown once and stored hashed.

use std::collections::BTreeSet;

use secrecy::SecretString;
use serde_json::json;

use super::{Acting, AdminError, AdminService, text};
use crate::auth::api_keys;
use crate::auth::authenticate::Principal;
use crate::auth::rbac::Permission;
use crate::ids::now_ms;
use crate::store::api_keys::{self as store, ApiKey, NewApiKey};

/// A key may live at most this long (about two years).
const MAX_LIFETIME_MS: i64 = 2 * 366 * 24 * 3600 * 1000;

pub struct NewKey {
    pub name: String,
    /// A subset of the creator's permissions.
    pub permissions: Vec<String>,
    /// Limit the key to one guild.
    pub guild_id: Option<i64>,
    /// Unix milliseconds; in the future, at most two years ahead.
    pub expires_at: Option<i64>,
}

pub struct CreatedKey {
    /// The full key, `ghk_<prefix>_<secret>`: this is the only time it exists in clear.
    pub key: SecretString,
    pub api_key: ApiKey,
}

/// Parses the key's permission names (the request's `permissions`), naming the bad entry; the
/// caller must hold each one in the key's scope.
fn parse_permissions(
    auth: &Principal,
    names: &[String],
    guild: Option<i64>,
) -> Result<BTreeSet<Permission>, AdminError> {
    if names.is_empty() || names.len() > Permission::ALL.len() * 2 {
        return Err(AdminError::invalid(
            "permissions",
            "must list 1 to the catalogue's size of permissions",
        ));
    }
    let mut permissions = BTreeSet::new();
    for (i, raw) in names.iter().enumerate() {
        let p: Permission = raw.parse().map_err(|_| {
            AdminError::invalid(format!("permissions[{i}]"), "not a known permission")
        })?;
        let held = match guild {
            Some(g) => auth.grants.allows(p, Some(g)),
            None => auth.grants.allows_anywhere(p),
        };
        if !held {
            return Err(AdminError::NotAllowed);
        }
        permissions.insert(p);
    }
    Ok(permissions)
}

impl AdminService {
    /// The caller's keys (every key with `users.manage`).
    pub async fn list_keys(&self, auth: &Principal) -> Result<Vec<ApiKey>, AdminError> {
        let owner = (!auth.grants.allows_globally(Permission::UsersManage)).then_some(auth.user_id);
        Ok(store::list(&self.store, owner).await?)
    }

    /// Creates a key holding at most the caller's own permissions; the key is in the answer
    /// only (stored hashed). Audited as `api_keys.create`.
    pub async fn create_key(
        &self,
        auth: &Acting<'_>,
        new: NewKey,
    ) -> Result<CreatedKey, AdminError> {
        let name = text("name", &new.name, 1, 64)?;
        let permissions = parse_permissions(auth, &new.permissions, new.guild_id)?;
        let now = now_ms();
        if let Some(t) = new.expires_at
            && (t <= now || t > now + MAX_LIFETIME_MS)
        {
            return Err(AdminError::invalid(
                "expires_at",
                "must be in the future and at most two years ahead (Unix milliseconds)",
            ));
        }
        let generated = api_keys::generate(&self.secret_key);
        let key = store::create(
            &self.store,
            NewApiKey {
                prefix: &generated.prefix,
                secret_hash: &generated.secret_hash,
                name,
                user_id: auth.user_id,
                permissions: &permissions,
                guild_id: new.guild_id,
                expires_at: new.expires_at,
            },
        )
        .await?;
        let names: Vec<&str> = key.permissions.iter().map(|p| p.as_str()).collect();
        let mut entry = auth
            .entry("api_keys.create")
            .target(format!("api_key:{}", key.id))
            .details(json!({ "name": key.name, "prefix": key.prefix,
                "permissions": names, "expires_at": key.expires_at }));
        if let Some(g) = new.guild_id {
            entry = entry.guild(g);
        }
        self.audit.record(entry).await?;
        Ok(CreatedKey {
            key: generated.full,
            api_key: key,
        })
    }

    /// Revokes a key of the caller's (any key with `users.manage`; another's is unknown).
    /// Audited as `api_keys.revoke`.
    pub async fn revoke_key(&self, auth: &Acting<'_>, id: i64) -> Result<(), AdminError> {
        let key = store::find(&self.store, id)
            .await?
            .ok_or(AdminError::UnknownKey)?;
        if key.user_id != auth.user_id && !auth.grants.allows_globally(Permission::UsersManage) {
            // Someone else's key: do not reveal that it exists.
            return Err(AdminError::UnknownKey);
        }
        store::revoke(&self.store, id).await?;
        self.auth_cache.forget_key(&key.prefix).await;
        self.audit
            .record(
                auth.entry("api_keys.revoke")
                    .target(format!("api_key:{id}"))
                    .details(json!({ "name": key.name, "prefix": key.prefix })),
            )
            .await?;
        Ok(())
    }
}

//! API keys: the clear prefix for lookup, the keyed digest of the secret, and what the key may do.

use std::collections::BTreeSet;

use sqlx::Row;

use super::roles::parse_permission_list;
use super::{Lookup, Store, StoreError, find_by};
use crate::auth::rbac::Permission;
use crate::ids::now_ms;

/// `last_used_at` is written at most this often per key.
pub const TOUCH_INTERVAL_MS: i64 = 60_000;

#[derive(Clone)]
pub struct ApiKey {
    pub id: i64,
    pub prefix: String,
    pub secret_hash: String,
    pub name: String,
    pub user_id: i64,
    pub permissions: BTreeSet<Permission>,
    pub guild_id: Option<i64>,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, prefix, secret_hash, name, user_id, permissions, guild_id, expires_at, \
     last_used_at, revoked_at, created_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        prefix: row.try_get("prefix")?,
        secret_hash: row.try_get("secret_hash")?,
        name: row.try_get("name")?,
        user_id: row.try_get("user_id")?,
        permissions: parse_permission_list(&row.try_get::<String, _>("permissions")?)?,
        guild_id: row.try_get("guild_id")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn find_by_prefix(store: &Store, prefix: &str) -> Result<Option<ApiKey>, StoreError> {
    let lookup = Lookup::new(COLUMNS, "api_keys", "prefix");
    find_by(store, lookup, prefix, from_row).await
}

/// Records use, unless it was recorded less than a minute ago (by this or another instance).
pub async fn touch(store: &Store, key: &ApiKey) -> Result<(), StoreError> {
    let now = now_ms();
    if key
        .last_used_at
        .is_some_and(|t| now - t < TOUCH_INTERVAL_MS)
    {
        return Ok(());
    }
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 \
         AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(key.id)
    .bind(now)
    .bind(now - TOUCH_INTERVAL_MS)
    .execute(store.pool())
    .await?;
    Ok(())
}

pub struct NewApiKey<'a> {
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub name: &'a str,
    pub user_id: i64,
    pub permissions: &'a BTreeSet<Permission>,
    pub guild_id: Option<i64>,
    pub expires_at: Option<i64>,
}

pub async fn create(store: &Store, new: NewApiKey<'_>) -> Result<ApiKey, StoreError> {
    let id = crate::ids::next_id();
    let now = now_ms();
    let names: Vec<&str> = new.permissions.iter().map(|p| p.as_str()).collect();
    let permissions = serde_json::to_string(&names)
        .map_err(|e| StoreError::Corrupt(format!("permissions: {e}")))?;
    sqlx::query(
        "INSERT INTO api_keys (id, prefix, secret_hash, name, user_id, permissions, guild_id, \
         expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(new.prefix)
    .bind(new.secret_hash)
    .bind(new.name)
    .bind(new.user_id)
    .bind(permissions)
    .bind(new.guild_id)
    .bind(new.expires_at)
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(ApiKey {
        id,
        prefix: new.prefix.to_owned(),
        secret_hash: new.secret_hash.to_owned(),
        name: new.name.to_owned(),
        user_id: new.user_id,
        permissions: new.permissions.clone(),
        guild_id: new.guild_id,
        expires_at: new.expires_at,
        last_used_at: None,
        revoked_at: None,
        created_at: now,
    })
}

/// Keys of one user, or every key when `user_id` is `None`; newest first.
pub async fn list(store: &Store, user_id: Option<i64>) -> Result<Vec<ApiKey>, StoreError> {
    let rows = match user_id {
        Some(u) => {
            let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY id DESC");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(u)
                .fetch_all(store.pool())
                .await?
        }
        None => {
            let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY id DESC");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(store.pool())
                .await?
        }
    };
    rows.iter().map(from_row).collect()
}

pub async fn find(store: &Store, id: i64) -> Result<Option<ApiKey>, StoreError> {
    find_by(store, Lookup::new(COLUMNS, "api_keys", "id"), id, from_row).await
}

/// Revokes a key; false when it was already revoked.
pub async fn revoke(store: &Store, id: i64) -> Result<bool, StoreError> {
    let n = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(now_ms())
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok(n == 1)
}

//! Refresh-token families: one per sign-in. Only the digest of the family's current token is
//! kept; presenting an older one means it leaked, and the whole family is revoked.

use sqlx::Row;

use super::{Store, StoreError};
use crate::ids::now_ms;

pub struct Family {
    pub id: i64,
    pub user_id: i64,
    pub current_token_hash: String,
    pub token_version: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

pub struct NewFamily<'a> {
    pub id: i64,
    pub user_id: i64,
    pub token_hash: &'a str,
    pub token_version: i64,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub expires_at: i64,
}

pub async fn create(store: &Store, new: NewFamily<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_token_families (id, user_id, current_token_hash, generation, \
         token_version, ip, user_agent, created_at, expires_at) \
         VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8)",
    )
    .bind(new.id)
    .bind(new.user_id)
    .bind(new.token_hash)
    .bind(new.token_version)
    .bind(new.ip)
    .bind(new.user_agent)
    .bind(now_ms())
    .bind(new.expires_at)
    .execute(store.pool())
    .await?;
    Ok(())
}

pub async fn find(store: &Store, id: i64) -> Result<Option<Family>, StoreError> {
    let row = sqlx::query(
        "SELECT id, user_id, current_token_hash, token_version, expires_at, revoked_at \
         FROM refresh_token_families WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    row.map(|row| {
        Ok(Family {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            current_token_hash: row.try_get("current_token_hash")?,
            token_version: row.try_get("token_version")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    })
    .transpose()
}

/// Replaces the current token only if it is still `expected_hash` (compare-and-set, so two
/// concurrent uses of one token cannot both rotate). False means the token was already used.
pub async fn rotate(
    store: &Store,
    id: i64,
    expected_hash: &str,
    new_hash: &str,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE refresh_token_families SET current_token_hash = $3, generation = generation + 1, \
         last_used_at = $4 WHERE id = $1 AND current_token_hash = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(expected_hash)
    .bind(new_hash)
    .bind(now_ms())
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn revoke(store: &Store, id: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE refresh_token_families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

//! Registration invites: single use, expiring, stored as a keyed digest.

use secrecy::{ExposeSecret, SecretString};

use super::users::{self, User};
use super::{Store, StoreError};
use crate::auth::digest;
use crate::ids::{next_id, now_ms};

const DOMAIN: &str = "invite";
pub const TTL_MS: i64 = 7 * 24 * 3600 * 1000;

pub fn digest(secret_key: &SecretString, invite: &str) -> String {
    digest::keyed(secret_key, DOMAIN, invite.trim())
}

/// Creates an invite; returns its text (shown once) and expiry.
pub async fn create(
    store: &Store,
    secret_key: &SecretString,
    created_by: i64,
) -> Result<(SecretString, i64), StoreError> {
    let invite = SecretString::from(format!(
        "ghi_{}",
        digest::random_string(digest::ALPHANUMERIC, 40)
    ));
    let now = now_ms();
    let expires_at = now + TTL_MS;
    sqlx::query(
        "INSERT INTO invites (id, token_hash, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(next_id())
    .bind(digest(secret_key, invite.expose_secret()))
    .bind(created_by)
    .bind(now)
    .bind(expires_at)
    .execute(store.pool())
    .await?;
    Ok((invite, expires_at))
}

/// Spends the invite and creates the user (no roles) in one transaction. `NotFound` when the
/// invite is unknown, expired or used.
pub async fn redeem(
    store: &Store,
    token_hash: &str,
    username: &str,
    password_hash: &str,
) -> Result<User, StoreError> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let claimed = sqlx::query(
        "UPDATE invites SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
         AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed != 1 {
        return Err(StoreError::NotFound);
    }
    let user = users::insert(&mut tx, username, password_hash).await?;
    sqlx::query("UPDATE invites SET used_by = $2 WHERE token_hash = $1")
        .bind(token_hash)
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(user)
}

//! Discord sign-in: links between users and Discord accounts, the access Discord roles give
//! (`discord_grants`, apart from the hand-made `role_grants`), pending authorization requests
//! and the per-role switch.

use std::collections::BTreeMap;

use sqlx::Row;

use super::users::{self, User};
use super::{Lookup, Store, StoreError, find_by};
use crate::auth::discord_access::DiscordAccess;
use crate::ids::now_ms;

/// The Discord account linked to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub user_id: i64,
    pub discord_user_id: i64,
    pub discord_username: String,
    pub linked_at: i64,
}

fn link_from_row(row: &sqlx::any::AnyRow) -> Result<Link, StoreError> {
    Ok(Link {
        user_id: row.try_get("user_id")?,
        discord_user_id: row.try_get("discord_user_id")?,
        discord_username: row.try_get("discord_username")?,
        linked_at: row.try_get("linked_at")?,
    })
}

const LINK_COLUMNS: &str = "user_id, discord_user_id, discord_username, linked_at";

pub async fn by_discord_id(
    store: &Store,
    discord_user_id: i64,
) -> Result<Option<Link>, StoreError> {
    let lookup = Lookup::new(LINK_COLUMNS, "discord_accounts", "discord_user_id");
    find_by(store, lookup, discord_user_id, link_from_row).await
}

pub async fn by_user(store: &Store, user_id: i64) -> Result<Option<Link>, StoreError> {
    let lookup = Lookup::new(LINK_COLUMNS, "discord_accounts", "user_id");
    find_by(store, lookup, user_id, link_from_row).await
}

async fn insert_link(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    discord_user_id: i64,
    discord_username: &str,
) -> Result<(), StoreError> {
    // Either key taken (the Discord account elsewhere, or this user already linked) is a conflict.
    let inserted = sqlx::query(
        "INSERT INTO discord_accounts (user_id, discord_user_id, discord_username, linked_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(discord_user_id)
    .bind(discord_username)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::Conflict(
            "the user or the Discord account is already linked".into(),
        ));
    }
    Ok(())
}

/// Links an existing user; `Conflict` when either side is linked already.
pub async fn link(
    store: &Store,
    user_id: i64,
    discord_user_id: i64,
    discord_username: &str,
) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    insert_link(&mut tx, user_id, discord_user_id, discord_username).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates a user without a password, linked to a Discord account, in one transaction.
pub async fn create_linked_user(
    store: &Store,
    username: &str,
    discord_user_id: i64,
    discord_username: &str,
) -> Result<User, StoreError> {
    let mut tx = store.pool().begin().await?;
    // An empty hash verifies no password: the account signs in through Discord only.
    let user = users::insert(&mut tx, username, "").await?;
    insert_link(&mut tx, user.id, discord_user_id, discord_username).await?;
    tx.commit().await?;
    Ok(user)
}

/// Removes the link and the access it brought; returns the link that was removed.
pub async fn unlink(store: &Store, user_id: i64) -> Result<Option<Link>, StoreError> {
    let mut tx = store.pool().begin().await?;
    let sql = format!("DELETE FROM discord_accounts WHERE user_id = $1 RETURNING {LINK_COLUMNS}");
    let removed = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(link_from_row)
        .transpose()?;
    sqlx::query("DELETE FROM discord_grants WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(removed)
}

/// The access stored for a user, by guild (present or not).
pub async fn stored_access(
    store: &Store,
    user_id: i64,
) -> Result<BTreeMap<i64, DiscordAccess>, StoreError> {
    let rows = sqlx::query("SELECT guild_id, access FROM discord_grants WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(store.pool())
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let access: String = row.try_get("access")?;
        let access = DiscordAccess::parse(&access)
            .ok_or_else(|| StoreError::Corrupt(format!("discord access `{access}`")))?;
        out.insert(row.try_get("guild_id")?, access);
    }
    Ok(out)
}

/// The access that counts for authorisation: only in guilds the bot is in now.
pub async fn effective_access(
    store: &Store,
    user_id: i64,
) -> Result<Vec<(i64, DiscordAccess)>, StoreError> {
    let rows = sqlx::query(
        "SELECT d.guild_id, d.access FROM discord_grants d JOIN guilds g ON g.id = d.guild_id \
         WHERE d.user_id = $1 AND g.left_at IS NULL",
    )
    .bind(user_id)
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let access: String = row.try_get("access")?;
        if let Some(a) = DiscordAccess::parse(&access) {
            out.push((row.try_get("guild_id")?, a));
        }
    }
    Ok(out)
}

/// Sets (`Some`) or removes (`None`) the access of a user per guild, in one transaction.
pub async fn apply_access(
    store: &Store,
    user_id: i64,
    changes: &[(i64, Option<DiscordAccess>)],
) -> Result<(), StoreError> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    for (guild_id, access) in changes {
        match access {
            Some(a) => {
                sqlx::query(
                    "INSERT INTO discord_grants (user_id, guild_id, access, granted_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, guild_id) \
                     DO UPDATE SET access = EXCLUDED.access, granted_at = EXCLUDED.granted_at",
                )
                .bind(user_id)
                .bind(guild_id)
                .bind(a.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM discord_grants WHERE user_id = $1 AND guild_id = $2")
                    .bind(user_id)
                    .bind(guild_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The name of a role of the user that turns Discord sign-in off, if any.
pub async fn sign_in_refused_by(store: &Store, user_id: i64) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT r.name FROM role_grants g JOIN roles r ON r.id = g.role_id \
         WHERE g.user_id = $1 AND r.discord_sign_in = 0 ORDER BY r.name LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(store.pool())
    .await?)
}

/// A role's Discord sign-in switch and whether it requires MFA.
pub async fn role_switch(store: &Store, role_id: i64) -> Result<(String, bool, bool), StoreError> {
    let row = sqlx::query("SELECT name, require_mfa, discord_sign_in FROM roles WHERE id = $1")
        .bind(role_id)
        .fetch_optional(store.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok((
        row.try_get("name")?,
        row.try_get::<i64, _>("require_mfa")? != 0,
        row.try_get::<i64, _>("discord_sign_in")? != 0,
    ))
}

pub async fn set_role_switch(store: &Store, role_id: i64, allowed: bool) -> Result<(), StoreError> {
    let n = sqlx::query("UPDATE roles SET discord_sign_in = $2, updated_at = $3 WHERE id = $1")
        .bind(role_id)
        .bind(super::flag(allowed))
        .bind(now_ms())
        .execute(store.pool())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// What a pending authorization request keeps between the redirect and the callback.
#[derive(Clone)]
pub struct Request {
    pub binding_digest: String,
    pub pkce_verifier: String,
    /// `sign_in` or `link`.
    pub purpose: String,
    /// The user who asked to link (for `link`).
    pub user_id: Option<i64>,
    pub next_path: Option<String>,
    pub expires_at: i64,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Stores a request (and drops the ones that expired, so the table stays small).
pub async fn insert_request(
    store: &Store,
    state_digest: &str,
    request: &Request,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM discord_oauth_requests WHERE expires_at < $1")
        .bind(now_ms())
        .execute(store.pool())
        .await?;
    sqlx::query(
        "INSERT INTO discord_oauth_requests (state_digest, binding_digest, pkce_verifier, \
         purpose, user_id, next_path, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(state_digest)
    .bind(&request.binding_digest)
    .bind(&request.pkce_verifier)
    .bind(&request.purpose)
    .bind(request.user_id)
    .bind(request.next_path.as_deref())
    .bind(request.expires_at)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Takes a request out (single use): whoever deletes the row owns it.
pub async fn take_request(
    store: &Store,
    state_digest: &str,
) -> Result<Option<Request>, StoreError> {
    let row = sqlx::query(
        "DELETE FROM discord_oauth_requests WHERE state_digest = $1 RETURNING binding_digest, \
         pkce_verifier, purpose, user_id, next_path, expires_at",
    )
    .bind(state_digest)
    .fetch_optional(store.pool())
    .await?;
    row.map(|row| {
        Ok(Request {
            binding_digest: row.try_get("binding_digest")?,
            pkce_verifier: row.try_get("pkce_verifier")?,
            purpose: row.try_get("purpose")?,
            user_id: row.try_get("user_id")?,
            next_path: row.try_get("next_path")?,
            expires_at: row.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// How many requests are pending (for tests and diagnostics).
pub async fn pending_requests(store: &Store) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM discord_oauth_requests")
            .fetch_one(store.pool())
            .await?,
    )
}

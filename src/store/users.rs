//! Dashboard and API users.

use sqlx::Row;

use super::{Lookup, Store, StoreError, find_by};
use crate::ids::{next_id, now_ms};

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub disabled: bool,
    pub created_at: i64,
}

pub async fn count(store: &Store) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(store.pool())
        .await?)
}

/// Creates a user, granting `role` globally when given, in one transaction.
pub async fn create(
    store: &Store,
    username: &str,
    password_hash: &str,
    role: Option<&str>,
) -> Result<User, StoreError> {
    let mut tx = store.pool().begin().await?;
    let role_id: Option<i64> = match role {
        Some(name) => Some(
            sqlx::query_scalar("SELECT id FROM roles WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?,
        ),
        None => None,
    };
    let user = insert(&mut tx, username, password_hash).await?;
    if let Some(role_id) = role_id {
        sqlx::query(
            "INSERT INTO role_grants (user_id, role_id, guild_id, created_at) VALUES ($1, $2, 0, $3)",
        )
        .bind(user.id)
        .bind(role_id)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(user)
}

/// Inserts a user without roles inside the caller's transaction; `Conflict` when the name is taken.
pub(crate) async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    username: &str,
    password_hash: &str,
) -> Result<User, StoreError> {
    let now = now_ms();
    let id = next_id();
    let inserted = sqlx::query(
        "INSERT INTO users (id, username, password_hash, disabled, mfa_enabled, token_version, \
         created_at, updated_at) VALUES ($1, $2, $3, 0, 0, 0, $4, $4) \
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(id)
    .bind(username)
    .bind(password_hash)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "username `{username}` is taken"
        )));
    }
    Ok(User {
        id,
        username: username.to_owned(),
        disabled: false,
        created_at: now,
    })
}

const USER_COLUMNS: &str = "id, username, disabled, created_at";

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn find_by_username(store: &Store, username: &str) -> Result<User, StoreError> {
    let lookup = Lookup::new(USER_COLUMNS, "users", "username");
    find_by(store, lookup, username, user_from_row)
        .await?
        .ok_or(StoreError::NotFound)
}

/// The names of the roles granted to a user, global grants only.
pub async fn global_roles(store: &Store, user_id: i64) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT r.name FROM role_grants g JOIN roles r ON r.id = g.role_id \
         WHERE g.user_id = $1 AND g.guild_id = 0 ORDER BY r.name",
    )
    .bind(user_id)
    .fetch_all(store.pool())
    .await?)
}

/// What authentication needs about a user. `mfa_secret` is set once enrolment has started.
#[derive(Clone)]
pub struct Credentials {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
    pub mfa_enabled: bool,
    pub mfa_secret: Option<String>,
    pub mfa_last_step: Option<i64>,
    pub token_version: i64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("disabled", &self.disabled)
            .field("mfa_enabled", &self.mfa_enabled)
            .finish_non_exhaustive()
    }
}

const CREDENTIAL_COLUMNS: &str = "id, username, password_hash, disabled, mfa_enabled, mfa_secret, \
     mfa_last_step, token_version";

fn credentials_from_row(row: &sqlx::any::AnyRow) -> Result<Credentials, StoreError> {
    Ok(Credentials {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        mfa_enabled: row.try_get::<i64, _>("mfa_enabled")? != 0,
        mfa_secret: row.try_get("mfa_secret")?,
        mfa_last_step: row.try_get("mfa_last_step")?,
        token_version: row.try_get("token_version")?,
    })
}

pub async fn credentials_by_username(
    store: &Store,
    username: &str,
) -> Result<Option<Credentials>, StoreError> {
    let lookup = Lookup::new(CREDENTIAL_COLUMNS, "users", "username");
    find_by(store, lookup, username, credentials_from_row).await
}

pub async fn credentials_by_id(store: &Store, id: i64) -> Result<Option<Credentials>, StoreError> {
    let lookup = Lookup::new(CREDENTIAL_COLUMNS, "users", "id");
    find_by(store, lookup, id, credentials_from_row).await
}

/// Invalidates every outstanding token of the user (and their refresh families).
pub async fn bump_token_version(store: &Store, id: i64) -> Result<i64, StoreError> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let version: i64 = sqlx::query_scalar(
        "UPDATE users SET token_version = token_version + 1, updated_at = $2 WHERE id = $1 \
         RETURNING token_version",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    sqlx::query(
        "UPDATE refresh_token_families SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(version)
}

/// Sets a new password hash and revokes every outstanding token, in one transaction.
pub async fn set_password(store: &Store, id: i64, password_hash: &str) -> Result<(), StoreError> {
    let n = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .bind(now_ms())
        .execute(store.pool())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Starts (or restarts) MFA enrolment: the secret is kept but not yet required.
pub async fn set_pending_mfa_secret(
    store: &Store,
    id: i64,
    secret: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE users SET mfa_secret = $2, updated_at = $3 WHERE id = $1 AND mfa_enabled = 0",
    )
    .bind(id)
    .bind(secret)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Accepts TOTP `step` for the user if it is later than every step accepted before; false
/// means the code was already used (replay) or a later one was.
pub async fn advance_mfa_step(store: &Store, id: i64, step: i64) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE users SET mfa_last_step = $2 WHERE id = $1 \
         AND (mfa_last_step IS NULL OR mfa_last_step < $2)",
    )
    .bind(id)
    .bind(step)
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Turns MFA on with fresh recovery codes (replacing any old ones).
pub async fn enable_mfa(
    store: &Store,
    id: i64,
    recovery_hashes: &[String],
) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("UPDATE users SET mfa_enabled = 1, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for hash in recovery_hashes {
        sqlx::query("INSERT INTO mfa_recovery_codes (id, user_id, code_hash) VALUES ($1, $2, $3)")
            .bind(next_id())
            .bind(id)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn disable_mfa(store: &Store, id: i64) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "UPDATE users SET mfa_enabled = 0, mfa_secret = NULL, mfa_last_step = NULL, \
         updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Spends a recovery code; false when no unused code has that digest.
pub async fn use_recovery_code(
    store: &Store,
    user_id: i64,
    hash: &str,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE mfa_recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 \
         AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(hash)
    .bind(now_ms())
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(n >= 1)
}

/// One role given to a user: globally (`guild_id` 0) or in one guild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub role_id: i64,
    pub role: String,
    pub guild_id: i64,
}

#[derive(Debug, Clone)]
pub struct UserSummary {
    pub id: i64,
    pub username: String,
    pub disabled: bool,
    pub mfa_enabled: bool,
    pub created_at: i64,
    pub roles: Vec<RoleGrant>,
}

/// Every user with their role grants, by username.
pub async fn list(store: &Store) -> Result<Vec<UserSummary>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, username, disabled, mfa_enabled, created_at FROM users ORDER BY username",
    )
    .fetch_all(store.pool())
    .await?;
    let grants = sqlx::query(
        "SELECT g.user_id, g.role_id, r.name, g.guild_id FROM role_grants g \
         JOIN roles r ON r.id = g.role_id ORDER BY r.name, g.guild_id",
    )
    .fetch_all(store.pool())
    .await?;
    let mut by_user: std::collections::HashMap<i64, Vec<RoleGrant>> = Default::default();
    for g in grants {
        by_user
            .entry(g.try_get("user_id")?)
            .or_default()
            .push(RoleGrant {
                role_id: g.try_get("role_id")?,
                role: g.try_get("name")?,
                guild_id: g.try_get("guild_id")?,
            });
    }
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            Ok(UserSummary {
                id,
                username: row.try_get("username")?,
                disabled: row.try_get::<i64, _>("disabled")? != 0,
                mfa_enabled: row.try_get::<i64, _>("mfa_enabled")? != 0,
                created_at: row.try_get("created_at")?,
                roles: by_user.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}

pub async fn summary(store: &Store, id: i64) -> Result<UserSummary, StoreError> {
    list(store)
        .await?
        .into_iter()
        .find(|u| u.id == id)
        .ok_or(StoreError::NotFound)
}

/// Replaces a user's role grants in one transaction.
pub async fn replace_grants(
    store: &Store,
    user_id: i64,
    grants: &[(i64, i64)],
) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("DELETE FROM role_grants WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    insert_grants(&mut tx, user_id, grants, now_ms()).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates a user holding `grants` (`(role id, guild id)`) in one transaction, so no user
/// exists without the grants it was created with; `Conflict` when the name is taken.
pub async fn create_with_grants(
    store: &Store,
    username: &str,
    password_hash: &str,
    grants: &[(i64, i64)],
) -> Result<User, StoreError> {
    let mut tx = store.pool().begin().await?;
    let user = insert(&mut tx, username, password_hash).await?;
    insert_grants(&mut tx, user.id, grants, user.created_at).await?;
    tx.commit().await?;
    Ok(user)
}

async fn insert_grants(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    grants: &[(i64, i64)],
    now: i64,
) -> Result<(), StoreError> {
    for (role_id, guild_id) in grants {
        sqlx::query(
            "INSERT INTO role_grants (user_id, role_id, guild_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, role_id, guild_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(role_id)
        .bind(guild_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub async fn set_disabled(store: &Store, id: i64, disabled: bool) -> Result<(), StoreError> {
    let n = sqlx::query("UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(super::flag(disabled))
        .bind(now_ms())
        .execute(store.pool())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

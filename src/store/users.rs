//! Dashboard and API users.

use sqlx::Row;

use super::{Store, StoreError};
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
    let now = now_ms();
    let id = next_id();
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
    let inserted = sqlx::query(
        "INSERT INTO users (id, username, password_hash, disabled, mfa_enabled, token_version, \
         created_at, updated_at) VALUES ($1, $2, $3, 0, 0, 0, $4, $4) \
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(id)
    .bind(username)
    .bind(password_hash)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "username `{username}` is taken"
        )));
    }
    if let Some(role_id) = role_id {
        sqlx::query(
            "INSERT INTO role_grants (user_id, role_id, guild_id, created_at) VALUES ($1, $2, 0, $3)",
        )
        .bind(id)
        .bind(role_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(User {
        id,
        username: username.to_owned(),
        disabled: false,
        created_at: now,
    })
}

pub async fn find_by_username(store: &Store, username: &str) -> Result<User, StoreError> {
    let row =
        sqlx::query("SELECT id, username, disabled, created_at FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(store.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
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

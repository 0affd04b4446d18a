//! Instance-wide settings an admin changes at run time (key → JSON value).

use super::{Store, StoreError};
use crate::ids::now_ms;

pub const REGISTRATION_OPEN: &str = "registration_open";

pub async fn get(store: &Store, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
    let raw: Option<String> =
        sqlx::query_scalar("SELECT value FROM instance_settings WHERE key = $1")
            .bind(key)
            .fetch_optional(store.pool())
            .await?;
    raw.map(|r| {
        serde_json::from_str(&r).map_err(|e| StoreError::Corrupt(format!("setting {key}: {e}")))
    })
    .transpose()
}

pub async fn set(store: &Store, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO instance_settings (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(key)
    .bind(value.to_string())
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Registration is closed unless an admin opened it.
pub async fn registration_open(store: &Store) -> Result<bool, StoreError> {
    Ok(get(store, REGISTRATION_OPEN)
        .await?
        .and_then(|v| v.as_bool())
        .unwrap_or(false))
}

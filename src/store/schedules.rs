//! Scheduled Minecraft commands and the compare-and-set that makes each occurrence run on one
//! instance only.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Lookup, Store, StoreError, find_by, flag};
use crate::ids::{next_id, now_ms};

#[derive(Debug, Clone, Serialize)]
pub struct StoredSchedule {
    #[serde(serialize_with = "as_string")]
    pub id: i64,
    pub server: String,
    pub cron: String,
    pub command: String,
    pub only_when_empty: bool,
    pub countdown_seconds: u32,
    pub countdown_message: Option<String>,
    pub enabled: bool,
    pub created_by: String,
    /// The next occurrence (Unix ms, UTC).
    pub next_run_at: i64,
    pub last_run_at: Option<i64>,
    pub last_outcome: Option<String>,
    pub created_at: i64,
}

/// Ids are 64-bit; JSON numbers lose precision past 2^53, so the API shows them as strings.
fn as_string<S: serde::Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&id.to_string())
}

#[derive(Debug, Clone)]
pub struct NewSchedule {
    pub server: String,
    pub cron: String,
    pub command: String,
    pub only_when_empty: bool,
    pub countdown_seconds: u32,
    pub countdown_message: Option<String>,
    pub created_by: String,
    pub next_run_at: i64,
}

const COLUMNS: &str = "id, server_name, cron, command, only_when_empty, countdown_seconds, \
     countdown_message, enabled, created_by, next_run_at, last_run_at, last_outcome, created_at";

fn from_row(row: &AnyRow) -> Result<StoredSchedule, StoreError> {
    let countdown: i64 = row.try_get("countdown_seconds")?;
    Ok(StoredSchedule {
        id: row.try_get("id")?,
        server: row.try_get("server_name")?,
        cron: row.try_get("cron")?,
        command: row.try_get("command")?,
        only_when_empty: row.try_get::<i64, _>("only_when_empty")? != 0,
        countdown_seconds: u32::try_from(countdown)
            .map_err(|_| StoreError::Corrupt(format!("countdown_seconds {countdown}")))?,
        countdown_message: row.try_get("countdown_message")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_by: row.try_get("created_by")?,
        next_run_at: row.try_get("next_run_at")?,
        last_run_at: row.try_get("last_run_at")?,
        last_outcome: row.try_get("last_outcome")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn insert(store: &Store, new: &NewSchedule) -> Result<StoredSchedule, StoreError> {
    let (id, now) = (next_id(), now_ms());
    sqlx::query(
        "INSERT INTO minecraft_schedules (id, server_name, cron, command, only_when_empty, \
         countdown_seconds, countdown_message, enabled, created_by, next_run_at, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(new.server.as_str())
    .bind(new.cron.as_str())
    .bind(new.command.as_str())
    .bind(flag(new.only_when_empty))
    .bind(i64::from(new.countdown_seconds))
    .bind(new.countdown_message.as_deref())
    .bind(new.created_by.as_str())
    .bind(new.next_run_at)
    .bind(now)
    .bind(now)
    .execute(store.pool())
    .await?;
    get(store, id).await
}

pub async fn get(store: &Store, id: i64) -> Result<StoredSchedule, StoreError> {
    let lookup = Lookup::new(COLUMNS, "minecraft_schedules", "id");
    find_by(store, lookup, id, from_row)
        .await?
        .ok_or(StoreError::NotFound)
}

pub async fn list(store: &Store, server: &str) -> Result<Vec<StoredSchedule>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM minecraft_schedules WHERE server_name = $1 ORDER BY id"
    )))
    .bind(server)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Deletes one schedule of one server; `NotFound` when that pair does not exist.
pub async fn delete(store: &Store, server: &str, id: i64) -> Result<(), StoreError> {
    let removed = sqlx::query("DELETE FROM minecraft_schedules WHERE id = $1 AND server_name = $2")
        .bind(id)
        .bind(server)
        .execute(store.pool())
        .await?
        .rows_affected();
    if removed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Schedules whose countdown (or, without one, whose run) should start by `now`.
pub async fn due(store: &Store, now: i64) -> Result<Vec<StoredSchedule>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM minecraft_schedules \
         WHERE enabled = 1 AND next_run_at - countdown_seconds * 1000 <= $1 ORDER BY next_run_at"
    )))
    .bind(now)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Claims the occurrence at `due` by moving `next_run_at` on to `next`. Exactly one caller
/// sees `true` for a given occurrence, whichever instance it runs on: the update only matches
/// while `next_run_at` still holds `due`.
pub async fn claim(
    store: &Store,
    id: i64,
    due: i64,
    next: i64,
    owner: &str,
) -> Result<bool, StoreError> {
    let claimed = sqlx::query(
        "UPDATE minecraft_schedules SET next_run_at = $1, claimed_by = $2, updated_at = $3 \
         WHERE id = $4 AND next_run_at = $5 AND enabled = 1",
    )
    .bind(next)
    .bind(owner)
    .bind(now_ms())
    .bind(id)
    .bind(due)
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

pub async fn record_outcome(
    store: &Store,
    id: i64,
    at: i64,
    outcome: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE minecraft_schedules SET last_run_at = $1, last_outcome = $2, updated_at = $3 \
         WHERE id = $4",
    )
    .bind(at)
    .bind(outcome)
    .bind(now_ms())
    .bind(id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Pauses or resumes one schedule of one server; resuming moves `next_run_at` to the next
/// occurrence after now, so occurrences missed while paused are not run late.
pub async fn set_enabled(
    store: &Store,
    server: &str,
    id: i64,
    enabled: bool,
    next_run_at: i64,
) -> Result<StoredSchedule, StoreError> {
    let changed = sqlx::query(
        "UPDATE minecraft_schedules SET enabled = $1, next_run_at = $2, \
         updated_at = $3 WHERE id = $4 AND server_name = $5",
    )
    .bind(flag(enabled))
    .bind(next_run_at)
    .bind(now_ms())
    .bind(id)
    .bind(server)
    .execute(store.pool())
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    get(store, id).await
}

//! Minecraft accounts linked to Discord members, pending link codes, and each server's
//! whitelist reconciliation (claimed by compare-and-set, as schedules are).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Lookup, Store, StoreError, find_by, flag};
use crate::ids::{next_id, now_ms};

/// One linked member on one server.
#[derive(Debug, Clone, Serialize)]
pub struct StoredLink {
    #[serde(skip)]
    pub id: i64,
    #[serde(serialize_with = "as_string")]
    pub guild_id: i64,
    pub server: String,
    #[serde(serialize_with = "as_string")]
    pub discord_user_id: i64,
    pub minecraft_name: String,
    /// The member's Discord role ids as last seen.
    #[serde(skip)]
    pub roles: Vec<i64>,
    /// False once the member left the guild (the link is kept, off the whitelist).
    pub in_guild: bool,
    pub whitelisted: bool,
    pub linked_at: i64,
    pub linked_by: String,
}

/// Snowflakes exceed JavaScript's integers; the API shows them as strings.
fn as_string<S: serde::Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&id.to_string())
}

const COLUMNS: &str = "id, guild_id, server_name, discord_user_id, minecraft_name, roles, \
     in_guild, whitelisted, linked_at, linked_by";

fn from_row(row: &AnyRow) -> Result<StoredLink, StoreError> {
    let roles: String = row.try_get("roles")?;
    Ok(StoredLink {
        id: row.try_get("id")?,
        guild_id: row.try_get("guild_id")?,
        server: row.try_get("server_name")?,
        discord_user_id: row.try_get("discord_user_id")?,
        minecraft_name: row.try_get("minecraft_name")?,
        roles: decode_roles(&roles)?,
        in_guild: row.try_get::<i64, _>("in_guild")? != 0,
        whitelisted: row.try_get::<i64, _>("whitelisted")? != 0,
        linked_at: row.try_get("linked_at")?,
        linked_by: row.try_get("linked_by")?,
    })
}

fn encode_roles(roles: &[i64]) -> String {
    serde_json::to_string(&roles.iter().map(i64::to_string).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

fn decode_roles(raw: &str) -> Result<Vec<i64>, StoreError> {
    let ids: Vec<String> = serde_json::from_str(raw)
        .map_err(|e| StoreError::Corrupt(format!("minecraft_links.roles: {e}")))?;
    ids.iter()
        .map(|id| {
            id.parse()
                .map_err(|_| StoreError::Corrupt(format!("minecraft_links.roles: `{id}`")))
        })
        .collect()
}

/// What a new link records.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub guild_id: i64,
    pub server: String,
    pub discord_user_id: i64,
    pub minecraft_name: String,
    pub roles: Vec<i64>,
    pub whitelisted: bool,
    pub linked_by: String,
}

/// Which unique rule a refused link broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkConflict {
    /// The Minecraft name already belongs to a member on this server.
    NameTaken,
    /// The member already has a link in this guild.
    MemberLinked,
}

/// Inserts a link; a broken unique rule comes back as which one.
pub async fn insert(
    store: &Store,
    new: &NewLink,
) -> Result<Result<StoredLink, LinkConflict>, StoreError> {
    let (id, now) = (next_id(), now_ms());
    let inserted = sqlx::query(
        "INSERT INTO minecraft_links (id, guild_id, server_name, discord_user_id, minecraft_name, \
         minecraft_key, roles, in_guild, whitelisted, linked_at, linked_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(new.guild_id)
    .bind(new.server.as_str())
    .bind(new.discord_user_id)
    .bind(new.minecraft_name.as_str())
    .bind(new.minecraft_name.to_lowercase())
    .bind(encode_roles(&new.roles))
    .bind(flag(new.whitelisted))
    .bind(now)
    .bind(new.linked_by.as_str())
    .bind(now)
    .execute(store.pool())
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) => {
            return match StoreError::from(e) {
                StoreError::Conflict(message) => {
                    // SQLite names the columns, PostgreSQL the index.
                    Ok(Err(
                        if message.contains("minecraft_key") || message.contains("links_name") {
                            LinkConflict::NameTaken
                        } else {
                            LinkConflict::MemberLinked
                        },
                    ))
                }
                other => Err(other),
            };
        }
    }
    get(store, id).await.map(Ok)
}

/// Inserts many links in one transaction (an import, or a benchmark's seed); any broken
/// unique rule rolls all of them back.
pub async fn insert_many(store: &Store, new: &[NewLink]) -> Result<(), StoreError> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    for link in new {
        sqlx::query(
            "INSERT INTO minecraft_links (id, guild_id, server_name, discord_user_id, \
             minecraft_name, minecraft_key, roles, in_guild, whitelisted, linked_at, linked_by, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11)",
        )
        .bind(next_id())
        .bind(link.guild_id)
        .bind(link.server.as_str())
        .bind(link.discord_user_id)
        .bind(link.minecraft_name.as_str())
        .bind(link.minecraft_name.to_lowercase())
        .bind(encode_roles(&link.roles))
        .bind(flag(link.whitelisted))
        .bind(now)
        .bind(link.linked_by.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn get(store: &Store, id: i64) -> Result<StoredLink, StoreError> {
    let lookup = Lookup::new(COLUMNS, "minecraft_links", "id");
    find_by(store, lookup, id, from_row)
        .await?
        .ok_or(StoreError::NotFound)
}

/// The member's link in a guild, if any.
pub async fn of_member(
    store: &Store,
    guild_id: i64,
    user_id: i64,
) -> Result<Option<StoredLink>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM minecraft_links WHERE guild_id = $1 AND discord_user_id = $2"
    )))
    .bind(guild_id)
    .bind(user_id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The link holding a Minecraft name on a server, if any (case-insensitive).
pub async fn of_name(
    store: &Store,
    server: &str,
    name: &str,
) -> Result<Option<StoredLink>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM minecraft_links WHERE server_name = $1 AND minecraft_key = $2"
    )))
    .bind(server)
    .bind(name.to_lowercase())
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn of_guild(store: &Store, guild_id: i64) -> Result<Vec<StoredLink>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM minecraft_links WHERE guild_id = $1 ORDER BY linked_at, id"
    )))
    .bind(guild_id)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn of_server(store: &Store, server: &str) -> Result<Vec<StoredLink>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM minecraft_links WHERE server_name = $1"
    )))
    .bind(server)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// The servers that have at least one link (the ones a reconciliation looks at).
pub async fn servers(store: &Store) -> Result<Vec<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT server_name FROM minecraft_links ORDER BY server_name")
            .fetch_all(store.pool())
            .await?,
    )
}

pub async fn delete(store: &Store, id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM minecraft_links WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Records a member's roles and presence; returns the member's link when there is one.
pub async fn set_member(
    store: &Store,
    guild_id: i64,
    user_id: i64,
    roles: &[i64],
    in_guild: bool,
) -> Result<Option<StoredLink>, StoreError> {
    let changed = sqlx::query(
        "UPDATE minecraft_links SET roles = $1, in_guild = $2, updated_at = $3 \
         WHERE guild_id = $4 AND discord_user_id = $5",
    )
    .bind(encode_roles(roles))
    .bind(flag(in_guild))
    .bind(now_ms())
    .bind(guild_id)
    .bind(user_id)
    .execute(store.pool())
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    of_member(store, guild_id, user_id).await
}

pub async fn set_whitelisted(store: &Store, id: i64, whitelisted: bool) -> Result<(), StoreError> {
    sqlx::query("UPDATE minecraft_links SET whitelisted = $1, updated_at = $2 WHERE id = $3")
        .bind(flag(whitelisted))
        .bind(now_ms())
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

// ---- codes -----------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct StoredCode {
    pub server: String,
    pub minecraft_name: String,
    pub code_hash: String,
    pub attempts: i64,
    pub expires_at: i64,
}

/// Stores the member's pending code, replacing an earlier one.
pub async fn put_code(
    store: &Store,
    guild_id: i64,
    user_id: i64,
    server: &str,
    name: &str,
    code_hash: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("DELETE FROM minecraft_link_codes WHERE guild_id = $1 AND discord_user_id = $2")
        .bind(guild_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO minecraft_link_codes (guild_id, discord_user_id, server_name, minecraft_name, \
         code_hash, attempts, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
    )
    .bind(guild_id)
    .bind(user_id)
    .bind(server)
    .bind(name)
    .bind(code_hash)
    .bind(expires_at)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn code(
    store: &Store,
    guild_id: i64,
    user_id: i64,
) -> Result<Option<StoredCode>, StoreError> {
    let row = sqlx::query(
        "SELECT server_name, minecraft_name, code_hash, attempts, expires_at \
         FROM minecraft_link_codes WHERE guild_id = $1 AND discord_user_id = $2",
    )
    .bind(guild_id)
    .bind(user_id)
    .fetch_optional(store.pool())
    .await?;
    row.map(|row| {
        Ok(StoredCode {
            server: row.try_get("server_name")?,
            minecraft_name: row.try_get("minecraft_name")?,
            code_hash: row.try_get("code_hash")?,
            attempts: row.try_get("attempts")?,
            expires_at: row.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// Counts a wrong guess; returns the attempts so far.
pub async fn count_attempt(store: &Store, guild_id: i64, user_id: i64) -> Result<i64, StoreError> {
    sqlx::query(
        "UPDATE minecraft_link_codes SET attempts = attempts + 1 \
         WHERE guild_id = $1 AND discord_user_id = $2",
    )
    .bind(guild_id)
    .bind(user_id)
    .execute(store.pool())
    .await?;
    Ok(code(store, guild_id, user_id)
        .await?
        .map_or(0, |c| c.attempts))
}

/// Consumes the member's code: true for exactly one caller, so a code is used once.
pub async fn take_code(
    store: &Store,
    guild_id: i64,
    user_id: i64,
    code_hash: &str,
) -> Result<bool, StoreError> {
    let taken = sqlx::query(
        "DELETE FROM minecraft_link_codes \
         WHERE guild_id = $1 AND discord_user_id = $2 AND code_hash = $3",
    )
    .bind(guild_id)
    .bind(user_id)
    .bind(code_hash)
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(taken == 1)
}

pub async fn drop_code(store: &Store, guild_id: i64, user_id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM minecraft_link_codes WHERE guild_id = $1 AND discord_user_id = $2")
        .bind(guild_id)
        .bind(user_id)
        .execute(store.pool())
        .await?;
    Ok(())
}

// ---- reconciliation --------------------------------------------------------------------------

/// A server's reconciliation state.
#[derive(Debug, Clone, Serialize)]
pub struct SyncState {
    pub server: String,
    pub next_run_at: i64,
    pub kick_on_remove: bool,
    pub last_run_at: Option<i64>,
    /// `ok`, `failed` or `skipped`.
    pub last_outcome: Option<String>,
    /// What the last run did (added, removed, unmanaged names, or the error).
    pub last_result: Option<serde_json::Value>,
    /// The instance (its runner's owner tag) that claimed the latest round; `None` before any
    /// round was claimed by a runner (a reconciliation asked through the API claims nothing).
    pub claimed_by: Option<String>,
}

fn sync_from_row(row: &AnyRow) -> Result<SyncState, StoreError> {
    let result: Option<String> = row.try_get("last_result")?;
    Ok(SyncState {
        server: row.try_get("server_name")?,
        next_run_at: row.try_get("next_run_at")?,
        kick_on_remove: row.try_get::<i64, _>("kick_on_remove")? != 0,
        last_run_at: row.try_get("last_run_at")?,
        last_outcome: row.try_get("last_outcome")?,
        last_result: result.and_then(|r| serde_json::from_str(&r).ok()),
        claimed_by: row.try_get("claimed_by")?,
    })
}

const SYNC_COLUMNS: &str =
    "server_name, next_run_at, kick_on_remove, last_run_at, last_outcome, last_result, claimed_by";

pub async fn sync_state(store: &Store, server: &str) -> Result<Option<SyncState>, StoreError> {
    let lookup = Lookup::new(SYNC_COLUMNS, "minecraft_whitelist_sync", "server_name");
    find_by(store, lookup, server, sync_from_row).await
}

/// Creates the server's row when missing (due at `next_run_at`).
pub async fn ensure_sync(store: &Store, server: &str, next_run_at: i64) -> Result<(), StoreError> {
    let exists = sync_state(store, server).await?.is_some();
    if exists {
        return Ok(());
    }
    let inserted = sqlx::query(
        "INSERT INTO minecraft_whitelist_sync (server_name, next_run_at, kick_on_remove, updated_at) \
         VALUES ($1, $2, 0, $3)",
    )
    .bind(server)
    .bind(next_run_at)
    .bind(now_ms())
    .execute(store.pool())
    .await;
    match inserted.map_err(StoreError::from) {
        // Another instance created it meanwhile.
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reconciliations due by `now`.
pub async fn due_syncs(store: &Store, now: i64) -> Result<Vec<SyncState>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SYNC_COLUMNS} FROM minecraft_whitelist_sync WHERE next_run_at <= $1 \
         ORDER BY next_run_at"
    )))
    .bind(now)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(sync_from_row).collect()
}

/// Claims the round due at `due` by moving `next_run_at` to `next`; true for exactly one
/// caller, whichever instance it runs on.
pub async fn claim_sync(
    store: &Store,
    server: &str,
    due: i64,
    next: i64,
    owner: &str,
) -> Result<bool, StoreError> {
    let claimed = sqlx::query(
        "UPDATE minecraft_whitelist_sync SET next_run_at = $1, claimed_by = $2, updated_at = $3 \
         WHERE server_name = $4 AND next_run_at = $5",
    )
    .bind(next)
    .bind(owner)
    .bind(now_ms())
    .bind(server)
    .bind(due)
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// Makes the server's reconciliation due at `at` unless it is due earlier already.
pub async fn make_due(store: &Store, server: &str, at: i64) -> Result<(), StoreError> {
    ensure_sync(store, server, at).await?;
    sqlx::query(
        "UPDATE minecraft_whitelist_sync SET next_run_at = $1, updated_at = $2 \
         WHERE server_name = $3 AND next_run_at > $1",
    )
    .bind(at)
    .bind(now_ms())
    .bind(server)
    .execute(store.pool())
    .await?;
    Ok(())
}

pub async fn record_sync(
    store: &Store,
    server: &str,
    at: i64,
    outcome: &str,
    result: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE minecraft_whitelist_sync SET last_run_at = $1, last_outcome = $2, last_result = $3, \
         updated_at = $4 WHERE server_name = $5",
    )
    .bind(at)
    .bind(outcome)
    .bind(result.to_string())
    .bind(now_ms())
    .bind(server)
    .execute(store.pool())
    .await?;
    Ok(())
}

pub async fn set_kick_on_remove(store: &Store, server: &str, kick: bool) -> Result<(), StoreError> {
    ensure_sync(store, server, now_ms()).await?;
    sqlx::query(
        "UPDATE minecraft_whitelist_sync SET kick_on_remove = $1, updated_at = $2 \
         WHERE server_name = $3",
    )
    .bind(flag(kick))
    .bind(now_ms())
    .bind(server)
    .execute(store.pool())
    .await?;
    Ok(())
}

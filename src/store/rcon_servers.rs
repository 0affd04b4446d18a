//! Minecraft servers reached over RCON, their guild links and the per-role command policy.
//! Passwords arrive here already encrypted (`minecraft::crypto`); this module never sees one.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Lookup, Store, StoreError, find_by, flag};
use crate::ids::{next_id, now_ms};

#[derive(Debug, Clone)]
pub struct StoredServer {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub password_encrypted: String,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewServer {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub password_encrypted: String,
    pub enabled: bool,
    pub guilds: Vec<i64>,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ServerChanges {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub password_encrypted: Option<String>,
    pub enabled: Option<bool>,
    pub guilds: Option<Vec<i64>>,
}

const COLUMNS: &str = "id, name, host, port, password_encrypted, enabled, created_at, updated_at";

fn server_from_row(row: &AnyRow) -> Result<StoredServer, StoreError> {
    let port: i64 = row.try_get("port")?;
    Ok(StoredServer {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        host: row.try_get("host")?,
        port: u16::try_from(port)
            .map_err(|_| StoreError::Corrupt(format!("rcon_servers.port {port}")))?,
        password_encrypted: row.try_get("password_encrypted")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn list(store: &Store) -> Result<Vec<StoredServer>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM rcon_servers ORDER BY name"
    )))
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(server_from_row).collect()
}

pub async fn get(store: &Store, name: &str) -> Result<StoredServer, StoreError> {
    let lookup = Lookup::new(COLUMNS, "rcon_servers", "name");
    find_by(store, lookup, name, server_from_row)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Inserts the server and its guild links in one transaction.
pub async fn insert(store: &Store, server: &NewServer) -> Result<StoredServer, StoreError> {
    let now = now_ms();
    let id = next_id();
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO rcon_servers (id, name, host, port, password_encrypted, enabled, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(server.name.as_str())
    .bind(server.host.as_str())
    .bind(i64::from(server.port))
    .bind(server.password_encrypted.as_str())
    .bind(flag(server.enabled))
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("a server named `{}` already exists", server.name))
        }
        other => other,
    })?;
    replace_links(&mut tx, &server.name, &server.guilds).await?;
    tx.commit().await?;
    Ok(StoredServer {
        id,
        name: server.name.clone(),
        host: server.host.clone(),
        port: server.port,
        password_encrypted: server.password_encrypted.clone(),
        enabled: server.enabled,
        created_at: now,
        updated_at: now,
    })
}

/// Applies the changes (and replaces the guild links when given) in one transaction.
pub async fn update(
    store: &Store,
    name: &str,
    changes: &ServerChanges,
) -> Result<StoredServer, StoreError> {
    let mut tx = store.pool().begin().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM rcon_servers WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    let mut server = server_from_row(&row)?;
    if let Some(host) = &changes.host {
        server.host = host.clone();
    }
    if let Some(port) = changes.port {
        server.port = port;
    }
    if let Some(password) = &changes.password_encrypted {
        server.password_encrypted = password.clone();
    }
    if let Some(enabled) = changes.enabled {
        server.enabled = enabled;
    }
    server.updated_at = now_ms();
    sqlx::query(
        "UPDATE rcon_servers SET host = $1, port = $2, password_encrypted = $3, enabled = $4, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(server.host.as_str())
    .bind(i64::from(server.port))
    .bind(server.password_encrypted.as_str())
    .bind(flag(server.enabled))
    .bind(server.updated_at)
    .bind(server.id)
    .execute(&mut *tx)
    .await?;
    if let Some(guilds) = &changes.guilds {
        replace_links(&mut tx, name, guilds).await?;
    }
    tx.commit().await?;
    Ok(server)
}

/// Replaces the links of a server that has no row (the `default` server from the environment).
pub async fn set_links(store: &Store, server: &str, guilds: &[i64]) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    replace_links(&mut tx, server, guilds).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes the server with its guild links and schedules, all or nothing.
pub async fn delete(store: &Store, name: &str) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    let removed = sqlx::query("DELETE FROM rcon_servers WHERE name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed == 0 {
        return Err(StoreError::NotFound);
    }
    for sql in [
        "DELETE FROM minecraft_guild_links WHERE server_name = $1",
        "DELETE FROM minecraft_schedules WHERE server_name = $1",
    ] {
        sqlx::query(sql).bind(name).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A guild links to one server, so linking it here moves it away from any other server.
async fn replace_links(
    tx: &mut Transaction<'static, Any>,
    server: &str,
    guilds: &[i64],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM minecraft_guild_links WHERE server_name = $1")
        .bind(server)
        .execute(&mut **tx)
        .await?;
    let now = now_ms();
    for guild in guilds {
        sqlx::query("DELETE FROM minecraft_guild_links WHERE guild_id = $1")
            .bind(*guild)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO minecraft_guild_links (guild_id, server_name, created_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(*guild)
        .bind(server)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Every server's linked guilds.
pub async fn links(store: &Store) -> Result<BTreeMap<String, Vec<i64>>, StoreError> {
    let rows = sqlx::query(
        "SELECT guild_id, server_name FROM minecraft_guild_links ORDER BY server_name, guild_id",
    )
    .fetch_all(store.pool())
    .await?;
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in rows {
        out.entry(row.try_get("server_name")?)
            .or_default()
            .push(row.try_get("guild_id")?);
    }
    Ok(out)
}

pub async fn server_for_guild(store: &Store, guild_id: i64) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT server_name FROM minecraft_guild_links WHERE guild_id = $1")
            .bind(guild_id)
            .fetch_optional(store.pool())
            .await?,
    )
}

/// The command roots each role may send (`*` for all).
pub async fn command_policy(store: &Store) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
    let rows = sqlx::query("SELECT role_name, allowed FROM minecraft_command_policy")
        .fetch_all(store.pool())
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let role: String = row.try_get("role_name")?;
        let allowed: String = row.try_get("allowed")?;
        let roots: Vec<String> = serde_json::from_str(&allowed).map_err(|e| {
            StoreError::Corrupt(format!("minecraft_command_policy for `{role}`: {e}"))
        })?;
        out.insert(role, roots);
    }
    Ok(out)
}

/// One role's stored command policy, with when it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRow {
    pub role: String,
    pub allowed: Vec<String>,
    pub updated_at: i64,
}

/// Every stored policy row, by role name.
pub async fn command_policy_rows(store: &Store) -> Result<Vec<PolicyRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT role_name, allowed, updated_at FROM minecraft_command_policy ORDER BY role_name",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let role: String = row.try_get("role_name")?;
            let allowed: String = row.try_get("allowed")?;
            let allowed = serde_json::from_str(&allowed).map_err(|e| {
                StoreError::Corrupt(format!("minecraft_command_policy for `{role}`: {e}"))
            })?;
            Ok(PolicyRow {
                role,
                allowed,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}

/// Replaces one role's command roots (an empty list allows nothing) in one statement, so two
/// concurrent writers leave one of their lists, never a mixture.
pub async fn set_command_policy(
    store: &Store,
    role: &str,
    allowed: &[String],
) -> Result<PolicyRow, StoreError> {
    let now = now_ms();
    let json = serde_json::to_string(allowed)
        .map_err(|e| StoreError::Corrupt(format!("command policy for `{role}`: {e}")))?;
    sqlx::query(
        "INSERT INTO minecraft_command_policy (role_name, allowed, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (role_name) DO UPDATE SET allowed = excluded.allowed, \
         updated_at = excluded.updated_at",
    )
    .bind(role)
    .bind(json)
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(PolicyRow {
        role: role.to_owned(),
        allowed: allowed.to_vec(),
        updated_at: now,
    })
}

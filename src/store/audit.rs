//! The append-only audit log. Writes arrive here only through `AuditActor`, in groups.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::domain::Snowflake;
use crate::domain::audit::AuditOrigin;

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    User { id: i64, username: String },
    ApiKey { id: i64, name: String, user_id: i64 },
    Discord { user_id: Snowflake },
    System,
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Actor::User { username, .. } => format!("user:{username}"),
            Actor::ApiKey { name, .. } => format!("api_key:{name}"),
            Actor::Discord { user_id } => format!("discord:{user_id}"),
            Actor::System => "system".to_owned(),
        }
    }

    fn user_id(&self) -> Option<i64> {
        match self {
            Actor::User { id, .. } | Actor::ApiKey { user_id: id, .. } => Some(*id),
            Actor::Discord { .. } | Actor::System => None,
        }
    }

    fn api_key_id(&self) -> Option<i64> {
        match self {
            Actor::ApiKey { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// An entry as a caller describes it; id and time are assigned by the writer.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor: Actor,
    pub action: String,
    pub target: Option<String>,
    pub guild_id: Option<i64>,
    /// Where the action came from; attach it with [`NewAuditEntry::origin`].
    pub origin: AuditOrigin,
    pub details: serde_json::Value,
}

impl NewAuditEntry {
    pub fn new(actor: Actor, action: impl Into<String>) -> Self {
        Self {
            actor,
            action: action.into(),
            target: None,
            guild_id: None,
            origin: AuditOrigin::internal(),
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn guild(mut self, guild_id: i64) -> Self {
        self.guild_id = Some(guild_id);
        self
    }

    /// The request or interaction the action came from.
    pub fn origin(mut self, origin: AuditOrigin) -> Self {
        self.origin = origin;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A stored entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub created_at: i64,
    pub actor_user_id: Option<i64>,
    pub actor_api_key_id: Option<i64>,
    pub actor_label: String,
    pub action: String,
    pub target: Option<String>,
    pub guild_id: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// The instance (`host:pid`) that handled the action.
    pub instance: Option<String>,
    pub details: serde_json::Value,
}

/// Writes a group of entries in one transaction: all or none.
pub async fn insert_batch(
    store: &Store,
    entries: &[(i64, i64, &NewAuditEntry)],
) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    for (id, created_at, e) in entries {
        sqlx::query(
            "INSERT INTO audit_log (id, created_at, actor_user_id, actor_api_key_id, actor_label, \
             action, target, guild_id, ip, user_agent, request_id, instance, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(*id)
        .bind(*created_at)
        .bind(e.actor.user_id())
        .bind(e.actor.api_key_id())
        .bind(e.actor.label())
        .bind(e.action.as_str())
        .bind(e.target.as_deref())
        .bind(e.guild_id)
        .bind(e.origin.ip.as_deref())
        .bind(e.origin.user_agent.as_deref())
        .bind(e.origin.request_id())
        .bind(e.origin.instance)
        .bind(e.details.to_string())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Filters for reading the log, newest first. `before_id` is the pagination cursor.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_user_id: Option<i64>,
    pub action: Option<String>,
    pub guild_id: Option<i64>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

pub async fn list(store: &Store, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if filter.actor_user_id.is_some() {
        clauses.push(format!("actor_user_id = {}", next()));
    }
    if filter.action.is_some() {
        clauses.push(format!("action = {}", next()));
    }
    if filter.guild_id.is_some() {
        clauses.push(format!("guild_id = {}", next()));
    }
    if filter.from_ms.is_some() {
        clauses.push(format!("created_at >= {}", next()));
    }
    if filter.to_ms.is_some() {
        clauses.push(format!("created_at < {}", next()));
    }
    if filter.before_id.is_some() {
        clauses.push(format!("id < {}", next()));
    }
    let limit_param = next();
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT id, created_at, actor_user_id, actor_api_key_id, actor_label, action, target, \
         guild_id, ip, user_agent, request_id, instance, details FROM audit_log {where_sql} \
         ORDER BY id DESC LIMIT {limit_param}"
    );
    // Only placeholders and fixed clauses are interpolated; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(v) = filter.actor_user_id {
        q = q.bind(v);
    }
    if let Some(v) = &filter.action {
        q = q.bind(v.clone());
    }
    if let Some(v) = filter.guild_id {
        q = q.bind(v);
    }
    if let Some(v) = filter.from_ms {
        q = q.bind(v);
    }
    if let Some(v) = filter.to_ms {
        q = q.bind(v);
    }
    if let Some(v) = filter.before_id {
        q = q.bind(v);
    }
    q = q.bind(i64::from(filter.limit.clamp(1, 500)));
    let rows = q.fetch_all(store.pool()).await?;
    rows.iter().map(entry_from_row).collect()
}

pub async fn count(store: &Store) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(store.pool())
        .await?)
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let details: String = row.try_get("details")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        actor_user_id: row.try_get("actor_user_id")?,
        actor_api_key_id: row.try_get("actor_api_key_id")?,
        actor_label: row.try_get("actor_label")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        guild_id: row.try_get("guild_id")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        request_id: row.try_get("request_id")?,
        instance: row.try_get("instance")?,
        details: serde_json::from_str(&details)
            .map_err(|e| StoreError::Corrupt(format!("audit details: {e}")))?,
    })
}

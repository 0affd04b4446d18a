//! Moderation cases: numbered per guild, one per action.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, flag};
use crate::ids::{next_id, now_ms};

/// A conflicting case number means another instance numbered a case at the same moment.
const NUMBERING_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone)]
pub struct NewCase {
    pub guild_id: i64,
    pub action: String,
    pub target_user_id: i64,
    pub moderator_id: Option<i64>,
    pub actor_label: String,
    pub reason: Option<String>,
    pub expires_at: Option<i64>,
}

/// What [`Store::list_cases`] narrows to; `None` leaves a criterion out.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    pub target_user_id: Option<i64>,
    pub action: Option<String>,
    /// Text the reason contains, case-insensitive (`%` and `_` match themselves).
    pub search: Option<String>,
}

/// `%text%` in lower case with LIKE's wildcards escaped, so a search is a plain substring.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CaseRow {
    #[serde(serialize_with = "as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    #[serde(serialize_with = "as_string")]
    #[schema(value_type = String)]
    pub guild_id: i64,
    pub case_number: i64,
    pub action: String,
    #[serde(serialize_with = "as_string")]
    #[schema(value_type = String)]
    pub target_user_id: i64,
    #[serde(serialize_with = "opt_as_string")]
    #[schema(value_type = Option<String>)]
    pub moderator_id: Option<i64>,
    pub actor_label: String,
    pub reason: Option<String>,
    pub expires_at: Option<i64>,
    pub resolved: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

fn as_string<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

fn opt_as_string<S: serde::Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&v.to_string()),
        None => s.serialize_none(),
    }
}

const COLUMNS: &str = "id, guild_id, case_number, action, target_user_id, moderator_id, \
     actor_label, reason, expires_at, resolved, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<CaseRow, StoreError> {
    Ok(CaseRow {
        id: row.try_get("id")?,
        guild_id: row.try_get("guild_id")?,
        case_number: row.try_get("case_number")?,
        action: row.try_get("action")?,
        target_user_id: row.try_get("target_user_id")?,
        moderator_id: row.try_get("moderator_id")?,
        actor_label: row.try_get("actor_label")?,
        reason: row.try_get("reason")?,
        expires_at: row.try_get("expires_at")?,
        resolved: row.try_get::<i32, _>("resolved")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Creates a case with the guild's next number. The number and the row are written in one
    /// transaction; UNIQUE(guild_id, case_number) turns a race between instances into a
    /// conflict, which is retried with the next number.
    pub async fn create_case(&self, new: &NewCase) -> Result<CaseRow, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_create_case(new).await {
                Err(StoreError::Conflict(_)) if attempt < NUMBERING_ATTEMPTS => continue,
                other => return other,
            }
        }
    }

    async fn try_create_case(&self, new: &NewCase) -> Result<CaseRow, StoreError> {
        let mut tx = self.pool().begin().await?;
        let next: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(case_number), 0) + 1 FROM moderation_cases WHERE guild_id = $1",
        )
        .bind(new.guild_id)
        .fetch_one(&mut *tx)
        .await?;
        let (id, now) = (next_id(), now_ms());
        sqlx::query(
            "INSERT INTO moderation_cases (id, guild_id, case_number, action, target_user_id, \
             moderator_id, actor_label, reason, expires_at, resolved, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10)",
        )
        .bind(id)
        .bind(new.guild_id)
        .bind(next)
        .bind(&new.action)
        .bind(new.target_user_id)
        .bind(new.moderator_id)
        .bind(&new.actor_label)
        .bind(&new.reason)
        .bind(new.expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(CaseRow {
            id,
            guild_id: new.guild_id,
            case_number: next,
            action: new.action.clone(),
            target_user_id: new.target_user_id,
            moderator_id: new.moderator_id,
            actor_label: new.actor_label.clone(),
            reason: new.reason.clone(),
            expires_at: new.expires_at,
            resolved: false,
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn case_by_number(
        &self,
        guild_id: i64,
        number: i64,
    ) -> Result<Option<CaseRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM moderation_cases WHERE guild_id = $1 AND case_number = $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(guild_id)
            .bind(number)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// The newest cases of a guild matching `query`, at most `limit`.
    pub async fn list_cases(
        &self,
        guild_id: i64,
        query: &CaseQuery,
        limit: i64,
    ) -> Result<Vec<CaseRow>, StoreError> {
        let mut filters = String::new();
        let mut n = 2;
        let mut param = || {
            n += 1;
            format!("${n}")
        };
        if query.target_user_id.is_some() {
            filters.push_str(&format!(" AND target_user_id = {}", param()));
        }
        if query.action.is_some() {
            filters.push_str(&format!(" AND action = {}", param()));
        }
        if query.search.is_some() {
            // LOWER on both sides: LIKE is case-sensitive on PostgreSQL, not on SQLite.
            filters.push_str(&format!(
                " AND LOWER(COALESCE(reason, '')) LIKE {} ESCAPE '\\'",
                param()
            ));
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM moderation_cases WHERE guild_id = $1{filters} \
             ORDER BY case_number DESC LIMIT $2"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(guild_id)
            .bind(limit);
        if let Some(target) = query.target_user_id {
            q = q.bind(target);
        }
        if let Some(action) = &query.action {
            q = q.bind(action.clone());
        }
        if let Some(search) = &query.search {
            q = q.bind(like_pattern(search));
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    pub async fn set_case_reason(
        &self,
        guild_id: i64,
        number: i64,
        reason: &str,
    ) -> Result<Option<CaseRow>, StoreError> {
        let updated = sqlx::query(
            "UPDATE moderation_cases SET reason = $3, updated_at = $4 \
             WHERE guild_id = $1 AND case_number = $2",
        )
        .bind(guild_id)
        .bind(number)
        .bind(reason)
        .bind(now_ms())
        .execute(self.pool())
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        self.case_by_number(guild_id, number).await
    }

    /// Unresolved temporary bans whose expiry has passed, oldest first.
    pub async fn due_temporary_bans(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<CaseRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM moderation_cases WHERE resolved = 0 AND action = 'ban' \
             AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at LIMIT $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Marks a case done (a temporary ban lifted). Returns false when it already was, so that
    /// two instances expiring the same ban lift it once.
    pub async fn resolve_case(&self, case_id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE moderation_cases SET resolved = $2, updated_at = $3 WHERE id = $1 AND resolved = 0",
        )
        .bind(case_id)
        .bind(flag(true))
        .bind(now_ms())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// A manual unban settles any pending temporary ban of that user.
    pub async fn resolve_active_bans(
        &self,
        guild_id: i64,
        target_user_id: i64,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE moderation_cases SET resolved = 1, updated_at = $3 \
             WHERE guild_id = $1 AND target_user_id = $2 AND action = 'ban' AND resolved = 0",
        )
        .bind(guild_id)
        .bind(target_user_id)
        .bind(now_ms())
        .execute(self.pool())
        .await?
        .rows_affected())
    }
}

impl Store {
    /// Undoes `resolve_case` when lifting an expired ban failed, so that it is retried.
    pub async fn reopen_case(&self, case_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE moderation_cases SET resolved = 0, updated_at = $2 WHERE id = $1")
            .bind(case_id)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

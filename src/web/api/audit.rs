//! `GET /api/v1/audit`: the audit log, newest first, with filters and a cursor. The API has no
//! way to change or delete entries.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::rbac::{Grants, Permission};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry, AuditFilter};
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare, parse_snowflake};
use crate::web::openapi::ErrorBody;
use crate::web::validate::{self, id_string, opt_id_string};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

#[derive(utoipa::OpenApi)]
#[openapi(paths(list))]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(declare("/audit").get(Access::AnyGuild(Permission::AuditRead), list));
}

#[derive(Serialize, ToSchema)]
pub struct EntryView {
    #[serde(serialize_with = "id_string")]
    #[schema(value_type = String)]
    pub id: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    #[serde(serialize_with = "opt_id_string")]
    #[schema(value_type = Option<String>)]
    pub actor_user_id: Option<i64>,
    #[serde(serialize_with = "opt_id_string")]
    #[schema(value_type = Option<String>)]
    pub actor_api_key_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    #[serde(serialize_with = "opt_id_string")]
    #[schema(value_type = Option<String>)]
    pub guild_id: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditEntry> for EntryView {
    fn from(e: AuditEntry) -> Self {
        EntryView {
            id: e.id,
            created_at: e.created_at,
            actor_user_id: e.actor_user_id,
            actor_api_key_id: e.actor_api_key_id,
            actor: e.actor_label,
            action: e.action,
            target: e.target,
            guild_id: e.guild_id,
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
            details: e.details,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<EntryView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn millis(name: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
        ApiError::invalid_field(name, "must be Unix milliseconds (a non-negative integer)")
    })
}

/// Parses the query by hand so that every error names its parameter and unknown ones are refused.
pub fn filter_from(query: &HashMap<String, String>) -> Result<AuditFilter, ApiError> {
    let mut f = AuditFilter {
        limit: DEFAULT_LIMIT,
        ..AuditFilter::default()
    };
    for (key, value) in query {
        match key.as_str() {
            "actor" => f.actor_user_id = Some(parse_snowflake("actor", value)?),
            "action" => f.action = Some(validate::text("action", value, 1, 64)?.to_owned()),
            "guild" => f.guild_id = Some(parse_snowflake("guild", value)?),
            "from" => f.from_ms = Some(millis("from", value)?),
            "to" => f.to_ms = Some(millis("to", value)?),
            "before" => f.before_id = Some(parse_snowflake("before", value)?),
            "limit" => {
                f.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ApiError::invalid_field("limit", format!("must be 1 to {MAX_LIMIT}"))
                    })?;
            }
            other => {
                return Err(ApiError::invalid_field(
                    &other.chars().take(64).collect::<String>(),
                    "unknown query parameter",
                ));
            }
        }
    }
    Ok(f)
}

/// The entries `filter` selects, for a reader holding `grants`: the one query the API and the
/// dashboard's audit pages run. Readers with only guild grants must name one of their guilds.
pub async fn entries(
    state: &AppState,
    grants: &Grants,
    filter: AuditFilter,
) -> Result<Vec<AuditEntry>, ApiError> {
    if !grants.allows_globally(Permission::AuditRead) {
        match filter.guild_id {
            Some(g) if grants.allows(Permission::AuditRead, Some(g)) => {}
            _ => return Err(ApiError::Forbidden),
        }
    }
    Ok(audit::list(&state.store, &filter).await?)
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(
        ("actor" = Option<String>, Query, description = "Acting user id", pattern = "^[1-9][0-9]{0,18}$"),
        ("action" = Option<String>, Query, description = "Exact action, e.g. `auth.login`", min_length = 1, max_length = 64),
        ("guild" = Option<String>, Query, description = "Guild id; required for guild-scoped readers", pattern = "^[1-9][0-9]{0,18}$"),
        ("from" = Option<i64>, Query, description = "Unix ms, inclusive", minimum = 0),
        ("to" = Option<i64>, Query, description = "Unix ms, exclusive", minimum = 0),
        ("before" = Option<String>, Query, description = "Cursor: entries older than this id", pattern = "^[1-9][0-9]{0,18}$"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50", minimum = 1, maximum = 200),
    ),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let filter = filter_from(&query)?;
    let entries = entries(&state, &auth.grants, filter.clone()).await?;
    let next_cursor = (entries.len() == filter.limit as usize)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(AuditPage {
        entries: entries.into_iter().map(EntryView::from).collect(),
        next_cursor,
    }))
}

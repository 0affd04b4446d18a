//! `POST /api/v1/guilds/{guild_id}/moderation/{action}`: the dashboard's and API clients' way to
//! moderate, through the same service as the slash commands (same checks on the bot's side,
//! same case, same audit entry). The caller is authorised by RBAC (`moderation.act` for the
//! guild), so there is no Discord invoker to check.

use serde::Deserialize;

use crate::domain::Snowflake;
use crate::domain::moderation::{Action, Reason};
use crate::services::moderation::Request;
use crate::state::AppState;
use crate::store::cases::CaseRow;
use crate::web::error::ApiError;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModerationBody {
    /// The target's Discord user id (a string, as snowflakes exceed JavaScript's integers).
    pub user_id: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// `timeout` (required) and `ban` (optional, temporary): e.g. `10m`, `7d`.
    #[serde(default)]
    pub duration: Option<String>,
    /// `ban` only: days of messages to delete, 0 to 7.
    #[serde(default)]
    pub delete_message_days: Option<u8>,
}

/// Parses the action and its body; every problem names its field.
pub fn parse_action(
    action: &str,
    body: &ModerationBody,
) -> Result<(Snowflake, Action, Option<Reason>), ApiError> {
    let target = Snowflake::parse(body.user_id.trim()).map_err(|_| {
        ApiError::invalid_field(
            "user_id",
            format!("`{}` is not a Discord user id", body.user_id),
        )
    })?;
    let reason = body
        .reason
        .as_deref()
        .map(Reason::parse)
        .transpose()
        .map_err(|p| ApiError::invalid_field("reason", p))?
        .flatten();
    let action = Action::parse(
        action,
        body.duration.as_deref(),
        body.delete_message_days.map(i64::from),
    )
    .map_err(|e| ApiError::invalid_field(e.field, e.problem))?;
    Ok((target, action, reason))
}

/// The answer of `GET /guilds/{guild_id}/cases`, newest first.
/// The case list's query (`user`, `action`, `q`), checked: the API and the dashboard read
/// their filters through this one function.
pub fn case_filter(
    query: &std::collections::HashMap<String, String>,
) -> Result<crate::services::moderation::CaseFilter, ApiError> {
    let present = |name: &str| query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let user = present("user")
        .map(|u| Snowflake::parse(u).map_err(|e| ApiError::invalid_field("user", e)))
        .transpose()?;
    let action = present("action")
        .map(|a| {
            crate::domain::moderation::ACTION_NAMES
                .iter()
                .find(|n| **n == a)
                .map(|n| (*n).to_owned())
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "action",
                        format!(
                            "`{a}` is not one of {}",
                            crate::domain::moderation::ACTION_NAMES.join(", ")
                        ),
                    )
                })
        })
        .transpose()?;
    let search = present("q")
        .map(|q| crate::web::validate::text("q", q, 1, 200).map(str::to_owned))
        .transpose()?;
    Ok(crate::services::moderation::CaseFilter {
        user,
        action,
        search,
    })
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CaseList {
    pub cases: Vec<CaseRow>,
}

// ---- routes ----------------------------------------------------------------------------------

use actix_web::{HttpResponse, web as aweb};

use crate::auth::rbac::Permission;
use crate::web::extract::{Access, Auth, declare};
use crate::web::openapi::ErrorBody;
use crate::web::validate::Json;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(post_action, list_cases),
    components(schemas(ModerationBody, CaseList, CaseRow))
)]
pub struct Doc;

pub fn configure(cfg: &mut aweb::ServiceConfig) {
    cfg.service(declare("/guilds/{guild_id}/moderation/{action}").post(
        Access::Guild(Permission::ModerationAct, "guild_id"),
        post_action,
    ))
    .service(declare("/guilds/{guild_id}/cases").get(
        Access::Guild(Permission::ModerationView, "guild_id"),
        list_cases,
    ));
}

#[utoipa::path(post, path = "/api/v1/guilds/{guild_id}/moderation/{action}", tag = "moderation",
    request_body = ModerationBody,
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$"),
        ("action" = String, Path, description = "warn, kick, ban, unban, timeout or untimeout", pattern = "^(warn|kick|ban|unban|timeout|untimeout)$")),
    responses((status = 201, body = CaseRow, description = "The case created"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn post_action(
    state: aweb::Data<AppState>,
    auth: Auth,
    path: aweb::Path<(String, String)>,
    body: Json<ModerationBody>,
) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?;
    let (target, action, reason) = parse_action(&path.1, &body)?;
    let done = state
        .moderation
        .moderate(Request {
            guild_id: guild,
            target,
            action,
            reason,
            actor: auth.actor.clone(),
            // The caller was authorised by RBAC: there is no Discord invoker to check.
            invoker: None,
            bot_permissions: None,
            origin: auth.origin().clone(),
        })
        .await?;
    Ok(HttpResponse::Created().json(done.case))
}

#[utoipa::path(get, path = "/api/v1/guilds/{guild_id}/cases", tag = "moderation",
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$"),
        ("user" = Option<String>, Query, description = "Only this Discord user's cases", pattern = "^[1-9][0-9]{0,18}$"),
        ("action" = Option<String>, Query, description = "Only cases of this action", pattern = "^(warn|kick|ban|unban|timeout|untimeout)$"),
        ("q" = Option<String>, Query, description = "Only cases whose reason contains this text (case-insensitive, at most 200 characters)")),
    responses((status = 200, body = CaseList, description = "The newest 100 cases"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn list_cases(
    state: aweb::Data<AppState>,
    auth: Auth,
    query: aweb::Query<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?;
    let filter = case_filter(&query)?;
    let cases = state.moderation.cases(guild, &filter, 100).await?;
    Ok(HttpResponse::Ok().json(CaseList { cases }))
}

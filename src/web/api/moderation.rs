//! `POST /api/v1/guilds/{guild_id}/moderation/{action}`: the dashboard's and API clients' way to
//! moderate, through the same service as the slash commands (same checks on the bot's side,
//! same case, same audit entry). The caller is authorised by RBAC (`moderation.act` for the
//! guild), so there is no Discord invoker to check.

use serde::Deserialize;

use super::discord_common::present_config;
use crate::actors::gateway::{GetBotStatus, GetHttp};
use crate::domain::Snowflake;
use crate::domain::audit::AuditOrigin;
use crate::domain::moderation::{Action, Reason};
use crate::services::moderation::{self, Request};
use crate::state::AppState;
use crate::store::audit::Actor;
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

/// Runs a moderation action for an authorised API caller; returns the case.
#[tracing::instrument(skip(state, body, actor, origin), fields(actor = %actor.label()))]
pub async fn moderate(
    state: &AppState,
    actor: Actor,
    guild: Snowflake,
    action: &str,
    body: &ModerationBody,
    origin: AuditOrigin,
) -> Result<CaseRow, ApiError> {
    let (target, action, reason) = parse_action(action, body)?;
    // A guild the bot is not in is a 404 whether or not Discord is reachable right now.
    present_config(state, guild.as_i64()).await?;
    let http = state
        .gateway
        .send(GetHttp)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::Unavailable("the Discord gateway is not connected".into()))?;
    let me = match state
        .gateway
        .send(GetBotStatus)
        .await
        .ok()
        .and_then(|s| s.bot_user_id)
        .and_then(|id| Snowflake::parse(&id).ok())
    {
        Some(id) => id,
        None => {
            let id = http
                .get_current_user()
                .await
                .map_err(|e| ApiError::Unavailable(moderation::describe_discord_error(&e)))?
                .id
                .get();
            Snowflake::new(id).map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?
        }
    };
    let done = moderation::act(
        state,
        &http,
        me,
        Request {
            guild_id: guild,
            target,
            action,
            reason,
            actor,
            invoker: None,
            bot_permissions: None,
            origin,
        },
    )
    .await?;
    Ok(done.case)
}

// ---- routes ----------------------------------------------------------------------------------

use actix_web::{HttpRequest, HttpResponse, web as aweb};

use crate::auth::rbac::Permission;
use crate::web::extract::{Access, Auth, declare};
use crate::web::openapi::ErrorBody;
use crate::web::validate::Json;

#[derive(utoipa::OpenApi)]
#[openapi(paths(post_action, list_cases), components(schemas(ModerationBody)))]
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
    responses((status = 201, description = "The case created"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn post_action(
    state: aweb::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    body: Json<ModerationBody>,
) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?;
    tracing::Span::current().record("guild", guild.as_i64());
    let action = req
        .match_info()
        .get("action")
        .unwrap_or_default()
        .to_owned();
    let case = moderate(
        &state,
        auth.actor.clone(),
        guild,
        &action,
        &body.0,
        auth.origin().clone(),
    )
    .await?;
    Ok(HttpResponse::Created().json(case))
}

#[utoipa::path(get, path = "/api/v1/guilds/{guild_id}/cases", tag = "moderation",
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$"),
        ("user" = Option<String>, Query, description = "Only this Discord user's cases", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, description = "The newest 100 cases"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn list_cases(
    state: aweb::Data<AppState>,
    auth: Auth,
    query: aweb::Query<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?;
    tracing::Span::current().record("guild", guild.as_i64());
    let user = query
        .get("user")
        .map(|u| crate::web::extract::parse_snowflake("user", u))
        .transpose()?;
    let cases = state.store.list_cases(guild.as_i64(), user, 100).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "cases": cases })))
}

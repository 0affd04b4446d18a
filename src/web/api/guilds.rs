//! `GET /api/v1/guilds`, `GET /api/v1/guilds/{id}` and
//! `PUT /api/v1/guilds/{id}/modules/{module}`: the guilds the bot is in, with settings and modules.

use serde::Deserialize;
use serde_json::{Value, json};

use super::discord_common::{parse_guild_id, path_param, present_config, present_guild};
use super::settings::{command_to_api, settings_json};
use crate::domain::audit::AuditOrigin;
use crate::domain::settings::ModuleName;
use crate::services::guild_config::set_module;
use crate::state::AppState;
use crate::store::audit::Actor;
use crate::web::error::ApiError;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModuleBody {
    pub enabled: bool,
}

pub async fn list_guilds(state: &AppState) -> Result<Value, ApiError> {
    let guilds = state.store.list_guilds(false).await?;
    Ok(json!({ "guilds": guilds }))
}

pub async fn get_guild(state: &AppState, guild_id: &str) -> Result<Value, ApiError> {
    let id = parse_guild_id(guild_id)?;
    let guild = present_guild(state, id).await?;
    let config = state.guild_config.get(id).await?;
    Ok(json!({
        "guild": guild,
        "settings": settings_json(&config.settings),
        "modules": config.modules,
    }))
}

pub async fn put_module(
    state: &AppState,
    actor: Actor,
    origin: &AuditOrigin,
    guild_id: &str,
    module: &str,
    body: &ModuleBody,
) -> Result<Value, ApiError> {
    let id = parse_guild_id(guild_id)?;
    present_config(state, id).await?;
    let module = ModuleName::parse(module).map_err(|p| ApiError::invalid_field("module", p))?;
    set_module(state, id, module, body.enabled, actor, origin)
        .await
        .map_err(command_to_api)?;
    Ok(json!({ "guild_id": id.to_string(), "module": module.as_str(), "enabled": body.enabled }))
}

// ---- routes ----------------------------------------------------------------------------------

use actix_web::{HttpRequest, HttpResponse, web as aweb};

use crate::auth::rbac::Permission;
use crate::web::extract::{Access, Auth, declare};
use crate::web::openapi::ErrorBody;
use crate::web::validate::Json;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_route, get_route, put_module_route),
    components(schemas(ModuleBody))
)]
pub struct Doc;

pub fn configure(cfg: &mut aweb::ServiceConfig) {
    cfg.service(declare("/guilds").get(Access::AnyGuild(Permission::BotView), list_route))
        .service(
            declare("/guilds/{guild_id}")
                .get(Access::Guild(Permission::BotView, "guild_id"), get_route),
        )
        .service(declare("/guilds/{guild_id}/modules/{module}").put(
            Access::Guild(Permission::ModulesManage, "guild_id"),
            put_module_route,
        ));
}

#[utoipa::path(get, path = "/api/v1/guilds", tag = "guilds",
    params(("guild" = Option<String>, Query, description = "Ignored; callers with guild grants see their guilds")),
    responses((status = 200, description = "The guilds the bot is in (those the caller may see)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn list_route(state: aweb::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let mut guilds = state.store.list_guilds(false).await?;
    if !auth.grants.allows_globally(Permission::BotView) {
        let visible = auth.guilds_with(Permission::BotView);
        guilds.retain(|g| visible.contains(&g.id));
    }
    Ok(HttpResponse::Ok().json(json!({ "guilds": guilds })))
}

#[utoipa::path(get, path = "/api/v1/guilds/{guild_id}", tag = "guilds",
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, description = "The guild, its settings and modules"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn get_route(
    state: aweb::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    tracing::Span::current().record("guild", auth.guild()?.as_i64());
    Ok(HttpResponse::Ok().json(get_guild(&state, &path_param(&req, "guild_id")).await?))
}

#[utoipa::path(put, path = "/api/v1/guilds/{guild_id}/modules/{module}", tag = "guilds", request_body = ModuleBody,
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$"),
        ("module" = String, Path, description = "admin, moderation or minecraft", pattern = "^(admin|moderation|minecraft)$")),
    responses((status = 200, description = "The module's new state"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn put_module_route(
    state: aweb::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    body: Json<ModuleBody>,
) -> Result<HttpResponse, ApiError> {
    tracing::Span::current().record("guild", auth.guild()?.as_i64());
    let result = put_module(
        &state,
        auth.actor.clone(),
        auth.origin(),
        &path_param(&req, "guild_id"),
        &path_param(&req, "module"),
        &body.0,
    )
    .await?;
    Ok(HttpResponse::Ok().json(result))
}

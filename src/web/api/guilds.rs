//! `GET /api/v1/guilds`, `GET /api/v1/guilds/{id}` and
//! `PUT /api/v1/guilds/{id}/modules/{module}`: the guilds the bot is in, with settings and modules.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web as aweb};
use serde::{Deserialize, Serialize};

use crate::auth::rbac::Permission;
use crate::domain::settings::{GuildSettings, ModuleName};
use crate::state::AppState;
use crate::store::guilds::GuildRow;
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare};
use crate::web::openapi::ErrorBody;
use crate::web::validate::Json;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModuleBody {
    pub enabled: bool,
}

/// The answer of `GET /guilds`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GuildList {
    pub guilds: Vec<GuildRow>,
}

/// The answer of `GET /guilds/{guild_id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GuildDetail {
    pub guild: GuildRow,
    pub settings: GuildSettings,
    /// Every known module and whether it is enabled in the guild.
    pub modules: BTreeMap<String, bool>,
}

/// The answer of `PUT /guilds/{guild_id}/modules/{module}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModuleState {
    #[schema(value_type = String, pattern = "^[1-9][0-9]{0,18}$")]
    pub guild_id: crate::domain::Snowflake,
    pub module: String,
    pub enabled: bool,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_route, get_route, put_module_route),
    components(schemas(ModuleBody, GuildList, GuildDetail, ModuleState, GuildRow))
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
    responses((status = 200, body = GuildList, description = "The guilds the bot is in (those the caller may see)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn list_route(state: aweb::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let mut guilds = state.guilds.list().await?;
    if !auth.grants.allows_globally(Permission::BotView) {
        let visible = auth.guilds_with(Permission::BotView);
        guilds.retain(|g| visible.contains(&g.id));
    }
    Ok(HttpResponse::Ok().json(GuildList { guilds }))
}

#[utoipa::path(get, path = "/api/v1/guilds/{guild_id}", tag = "guilds",
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, body = GuildDetail, description = "The guild, its settings and modules"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`unknown_guild`: the bot is not in the guild")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn get_route(state: aweb::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?;
    let overview = state.guilds.overview(guild).await?;
    Ok(HttpResponse::Ok().json(GuildDetail {
        guild: overview.guild,
        settings: overview.settings,
        modules: overview.modules,
    }))
}

#[utoipa::path(put, path = "/api/v1/guilds/{guild_id}/modules/{module}", tag = "guilds", request_body = ModuleBody,
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$"),
        ("module" = String, Path, description = "admin, moderation or minecraft", pattern = "^(admin|moderation|minecraft)$")),
    responses((status = 200, body = ModuleState, description = "The module's new state"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn put_module_route(
    state: aweb::Data<AppState>,
    auth: Auth,
    path: aweb::Path<(String, String)>,
    body: Json<ModuleBody>,
) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?;
    let module = ModuleName::parse(&path.1).map_err(|p| ApiError::invalid_field("module", p))?;
    state
        .guilds
        .set_module(
            guild,
            module,
            body.enabled,
            auth.actor.clone(),
            auth.origin().clone(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(ModuleState {
        guild_id: guild,
        module: module.as_str().to_owned(),
        enabled: body.enabled,
    }))
}

//! `GET|PUT /api/v1/settings/{guild_id}`: a guild's settings, the same ones `/settings` edits.

use serde_json::{Map, Value, json};

use super::discord_common::{parse_guild_id, path_param, present_config};
use crate::bot::error::CommandError;
use crate::domain::audit::AuditOrigin;
use crate::domain::settings::{GuildSettings, SettingKey, SettingsPatch};
use crate::services::guild_config::save_settings;
use crate::state::AppState;
use crate::store::audit::Actor;
use crate::web::error::ApiError;

pub fn settings_json(s: &GuildSettings) -> Value {
    json!(s)
}

pub async fn get_settings(state: &AppState, guild_id: &str) -> Result<Value, ApiError> {
    let guild = parse_guild_id(guild_id)?;
    let config = present_config(state, guild).await?;
    Ok(json!({ "guild_id": guild.to_string(), "settings": settings_json(&config.settings) }))
}

/// Applies a partial update: `{"log_channel": "123", "welcome_message": null, …}`; `null`
/// clears a setting, an unknown key is refused, nothing is saved unless every key is valid.
pub async fn put_settings(
    state: &AppState,
    actor: Actor,
    origin: &AuditOrigin,
    guild_id: &str,
    body: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let guild = parse_guild_id(guild_id)?;
    present_config(state, guild).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request("the body names no setting to change"));
    }
    let mut settings = state.store.guild_settings(guild).await?;
    let mut changed = Vec::new();
    for (raw_key, value) in body {
        let key = SettingKey::parse(raw_key).map_err(|p| ApiError::invalid_field(raw_key, p))?;
        let mut one = Map::new();
        one.insert(key.as_str().to_owned(), value.clone());
        let patch: SettingsPatch = serde_json::from_value(Value::Object(one))
            .map_err(|e| ApiError::invalid_field(raw_key, e))?;
        for change in patch.changes() {
            settings.apply(change);
        }
        changed.push(key.as_str());
    }
    save_settings(state, guild, &settings, actor, origin, &changed)
        .await
        .map_err(command_to_api)?;
    Ok(json!({ "guild_id": guild.to_string(), "settings": settings_json(&settings) }))
}

/// The admin service reports in the bot's error type; only two of its variants can occur here.
pub fn command_to_api(e: CommandError) -> ApiError {
    match e {
        CommandError::Store(s) => s.into(),
        CommandError::Moderation(m) => m.into(),
        other => ApiError::Internal(anyhow::anyhow!("{other}")),
    }
}

// ---- routes ----------------------------------------------------------------------------------

use actix_web::{HttpRequest, HttpResponse, web as aweb};

use crate::auth::rbac::Permission;
use crate::web::extract::{Access, Auth, declare};
use crate::web::openapi::ErrorBody;
use crate::web::validate::Json;

#[derive(utoipa::OpenApi)]
#[openapi(paths(get_route, put_route), components(schemas(SettingsUpdate)))]
pub struct Doc;

/// The body of `PUT /settings/{guild_id}`: any subset; `null` clears a setting.
#[derive(utoipa::ToSchema)]
pub struct SettingsUpdate {
    pub log_channel: Option<String>,
    pub mod_role: Option<String>,
    pub welcome_channel: Option<String>,
    pub welcome_message: Option<String>,
    pub minecraft_server: Option<String>,
    pub minecraft_role: Option<String>,
}

pub fn configure(cfg: &mut aweb::ServiceConfig) {
    cfg.service(
        declare("/settings/{guild_id}")
            .get(
                Access::Guild(Permission::SettingsRead, "guild_id"),
                get_route,
            )
            .put(
                Access::Guild(Permission::SettingsWrite, "guild_id"),
                put_route,
            ),
    );
}

#[utoipa::path(get, path = "/api/v1/settings/{guild_id}", tag = "guilds",
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, description = "The guild's settings"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn get_route(
    state: aweb::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?;
    tracing::Span::current().record("guild", guild.as_i64());
    Ok(HttpResponse::Ok().json(get_settings(&state, &path_param(&req, "guild_id")).await?))
}

#[utoipa::path(put, path = "/api/v1/settings/{guild_id}", tag = "guilds", request_body = SettingsUpdate,
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, description = "The guild's settings after the change"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn put_route(
    state: aweb::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    body: Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?;
    tracing::Span::current().record("guild", guild.as_i64());
    let saved = put_settings(
        &state,
        auth.actor.clone(),
        auth.origin(),
        &path_param(&req, "guild_id"),
        &body.0,
    )
    .await?;
    Ok(HttpResponse::Ok().json(saved))
}

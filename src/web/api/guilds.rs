//! `GET /api/v1/guilds`, `GET /api/v1/guilds/{id}` and
//! `PUT /api/v1/guilds/{id}/modules/{module}`: the guilds the bot is in, with settings and modules.

use serde::Deserialize;
use serde_json::{Value, json};

use super::discord_common::{parse_guild_id, present_guild};
use super::settings::{command_to_api, settings_json};
use crate::bot::input::ModuleName;
use crate::services::guild_config::set_module;
use crate::state::AppState;
use crate::store::audit::Actor;
use crate::web::error::ApiError;

#[derive(Debug, Deserialize)]
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
    guild_id: &str,
    module: &str,
    body: &ModuleBody,
) -> Result<Value, ApiError> {
    let id = parse_guild_id(guild_id)?;
    present_guild(state, id).await?;
    let module = ModuleName::parse(module).map_err(|p| ApiError::invalid_field("module", p))?;
    set_module(state, id, module, body.enabled, actor)
        .await
        .map_err(command_to_api)?;
    Ok(json!({ "guild_id": id.to_string(), "module": module.as_str(), "enabled": body.enabled }))
}

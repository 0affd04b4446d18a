//! `GET|PUT /api/v1/settings/{guild_id}`: a guild's settings, the same ones `/settings` edits.

use serde_json::{Map, Value, json};

use super::discord_common::{parse_guild_id, present_guild};
use crate::bot::error::CommandError;
use crate::bot::input::SettingKey;
use crate::services::guild_config::{apply_setting, save_settings};
use crate::state::AppState;
use crate::store::audit::Actor;
use crate::store::guilds::GuildSettings;
use crate::web::error::ApiError;

pub fn settings_json(s: &GuildSettings) -> Value {
    json!({
        "log_channel": s.log_channel_id.map(|v| v.to_string()),
        "mod_role": s.mod_role_id.map(|v| v.to_string()),
        "welcome_channel": s.welcome_channel_id.map(|v| v.to_string()),
        "welcome_message": s.welcome_message,
        "minecraft_server": s.minecraft_server,
        "minecraft_role": s.minecraft_role_id.map(|v| v.to_string()),
    })
}

pub async fn get_settings(state: &AppState, guild_id: &str) -> Result<Value, ApiError> {
    let guild = parse_guild_id(guild_id)?;
    present_guild(state, guild).await?;
    let config = state.guild_config.get(guild).await?;
    Ok(json!({ "guild_id": guild.to_string(), "settings": settings_json(&config.settings) }))
}

/// Applies a partial update: `{"log_channel": "123", "welcome_message": null, …}`; `null`
/// clears a setting, an unknown key is refused, nothing is saved unless every key is valid.
pub async fn put_settings(
    state: &AppState,
    actor: Actor,
    guild_id: &str,
    body: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let guild = parse_guild_id(guild_id)?;
    present_guild(state, guild).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request("the body names no setting to change"));
    }
    let mut settings = state.store.guild_settings(guild).await?;
    let mut changed = Vec::new();
    for (raw_key, value) in body {
        let key = SettingKey::parse(raw_key).map_err(|p| ApiError::invalid_field(raw_key, p))?;
        let text = match value {
            Value::Null => "none".to_owned(),
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(ApiError::invalid_field(
                    raw_key,
                    "must be a string (an id as a string) or null",
                ));
            }
        };
        apply_setting(&mut settings, key, &text)
            .map_err(|p| ApiError::invalid_field(raw_key, p))?;
        changed.push(key.as_str());
    }
    save_settings(state, guild, &settings, actor, &changed)
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

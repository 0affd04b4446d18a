//! What the Discord resources of the API share: guild id parsing and the mapping of the
//! moderation service's errors to HTTP.

use std::sync::Arc;

use crate::services::guild_config::GuildConfig;
use crate::services::moderation::ModerationError;
use crate::state::AppState;
use crate::store::guilds::GuildRow;
use crate::web::error::ApiError;

/// A guild id from a path: a positive Discord snowflake.
pub fn parse_guild_id(raw: &str) -> Result<i64, ApiError> {
    match raw.trim().parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::invalid_field(
            "guild_id",
            format!("`{raw}` is not a Discord guild id"),
        )),
    }
}

/// A path parameter as sent; the shared handlers parse and validate it themselves.
pub fn path_param(req: &actix_web::HttpRequest, name: &str) -> String {
    req.match_info().get(name).unwrap_or_default().to_owned()
}

fn not_present(guild_id: i64) -> ApiError {
    ApiError::NotFound(format!("the bot is not in guild {guild_id}"))
}

/// The guild's row, if the bot is in it; 404 otherwise. Reads the database: for the routes
/// that show the row itself (its member count changes with every join).
pub async fn present_guild(state: &AppState, guild_id: i64) -> Result<GuildRow, ApiError> {
    state
        .store
        .guild(guild_id)
        .await?
        .filter(GuildRow::is_present)
        .ok_or_else(|| not_present(guild_id))
}

/// The guild's cached configuration, if the bot is in it; 404 otherwise. No query when cached.
pub async fn present_config(state: &AppState, guild_id: i64) -> Result<Arc<GuildConfig>, ApiError> {
    let config = state.guild_config.get(guild_id).await?;
    if config.present {
        Ok(config)
    } else {
        Err(not_present(guild_id))
    }
}

impl From<ModerationError> for ApiError {
    fn from(e: ModerationError) -> Self {
        // No wildcard: a new refusal must decide its status here.
        match e {
            ModerationError::UnknownGuild => ApiError::NotFound(e.to_string()),
            ModerationError::InvokerMissing(_) => ApiError::Forbidden,
            ModerationError::BotMissing(_)
            | ModerationError::TargetIsSelf(_)
            | ModerationError::TargetIsBot(_)
            | ModerationError::TargetIsOwner
            | ModerationError::TargetAboveInvoker
            | ModerationError::TargetAboveBot
            | ModerationError::NotAMember
            | ModerationError::NotBanned => ApiError::Conflict(e.to_string()),
            ModerationError::NotConnected | ModerationError::Discord(_) => {
                ApiError::Unavailable(e.to_string())
            }
            ModerationError::Audit(_) => {
                ApiError::Unavailable("the audit log could not be written; try again".into())
            }
            ModerationError::Store(s) => s.into(),
        }
    }
}

//! `GET /api/v1/bot/status`, `POST /api/v1/bot/reload`, `GET /api/v1/bot/modules`.

use serde_json::{Value, json};

use crate::actors::gateway::{BotStatus, GetBotStatus, SyncCommands};
use crate::state::AppState;
use crate::store::audit::{Actor, NewAuditEntry};
use crate::web::error::ApiError;

pub async fn status(state: &AppState) -> Result<BotStatus, ApiError> {
    state
        .gateway
        .send(GetBotStatus)
        .await
        .map_err(|_| ApiError::Unavailable("the gateway actor is not running".into()))
}

/// Reloads every instance's settings caches and re-syncs the slash commands.
pub async fn reload(state: &AppState, actor: Actor) -> Result<Value, ApiError> {
    state.guild_config.reload_all().await;
    let synced = state
        .gateway
        .send(SyncCommands)
        .await
        .map_err(|_| ApiError::Unavailable("the gateway actor is not running".into()))?;
    state
        .audit
        .record(NewAuditEntry::new(actor, "bot.reload").details(json!({
            "commands": synced.as_ref().ok(),
            "error": synced.as_ref().err(),
        })))
        .await
        .map_err(|_| {
            ApiError::Unavailable("the audit log could not be written; try again".into())
        })?;
    Ok(json!({
        "caches": "reloaded",
        "commands_registered": synced.as_ref().ok(),
        "commands_error": synced.err(),
    }))
}

pub async fn modules(state: &AppState) -> Result<Value, ApiError> {
    Ok(json!({ "modules": state.store.modules().await? }))
}

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

// ---- routes ----------------------------------------------------------------------------------

use actix_web::{HttpResponse, web as aweb};

use crate::auth::rbac::Permission;
use crate::web::extract::{Access, Auth, declare};
use crate::web::openapi::ErrorBody;

#[derive(utoipa::OpenApi)]
#[openapi(paths(get_status, post_reload, get_modules))]
pub struct Doc;

pub fn configure(cfg: &mut aweb::ServiceConfig) {
    cfg.service(declare("/bot/status").get(Access::Global(Permission::BotView), get_status))
        .service(declare("/bot/reload").post(Access::Global(Permission::BotManage), post_reload))
        .service(declare("/bot/modules").get(Access::Global(Permission::BotView), get_modules));
}

#[utoipa::path(get, path = "/api/v1/bot/status", tag = "bot",
    responses((status = 200, description = "The gateway: status, reason, shards (stage, latency), guilds, uptime, last error"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn get_status(state: aweb::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(status(&state).await?))
}

#[utoipa::path(post, path = "/api/v1/bot/reload", tag = "bot",
    responses((status = 200, description = "Caches reloaded on every instance; commands re-synced (or why not)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn post_reload(
    state: aweb::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(reload(&state, auth.actor.clone()).await?))
}

#[utoipa::path(get, path = "/api/v1/bot/modules", tag = "bot",
    responses((status = 200, description = "The modules and whether each is on by default"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn get_modules(
    state: aweb::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(modules(&state).await?))
}

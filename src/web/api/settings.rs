//! `GET|PUT|PATCH /api/v1/settings/{guild_id}`: a guild's settings, the same ones `/settings`
//! edits. `GET` and `PUT` use one representation (read, change a field, write back); `PATCH`
//! changes only the fields it names. The settings' version is the `ETag`; `PUT` and `PATCH`
//! with `If-Match` answer 412 when someone changed them in between.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web as aweb};
use serde::{Deserialize, Serialize};

use crate::auth::rbac::Permission;
use crate::domain::Snowflake;
use crate::domain::settings::{GuildSettings, SettingsPatch};
use crate::state::AppState;
use crate::store::guilds::VersionedSettings;
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare};
use crate::web::openapi::ErrorBody;
use crate::web::validate::Json;

/// A guild's settings as `GET` returns them and `PUT` takes them back.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsDocument {
    /// The guild; on `PUT` it may be left out, and must be the path's when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[1-9][0-9]{0,18}$")]
    pub guild_id: Option<Snowflake>,
    /// The settings' version (also the `ETag`); read-only, ignored on `PUT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Every setting; on `PUT`, one left out is cleared like `null`.
    pub settings: GuildSettings,
}

impl SettingsDocument {
    fn of(guild: Snowflake, saved: VersionedSettings) -> Self {
        Self {
            guild_id: Some(guild),
            version: Some(saved.version),
            settings: saved.settings,
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_route, put_route, patch_route),
    components(schemas(SettingsDocument, GuildSettings, SettingsPatch))
)]
pub struct Doc;

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
            )
            .patch(
                Access::Guild(Permission::SettingsWrite, "guild_id"),
                patch_route,
            ),
    );
}

/// The strong `ETag` of a settings version: `"7"`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` header names: `None` without the header or with `*`.
fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(raw) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = raw.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "If-Match",
                "must be the ETag of GET /api/v1/settings/{guild_id} (a quoted version) or *",
            )
        })
}

fn answer(guild: Snowflake, saved: VersionedSettings) -> HttpResponse {
    let tag = etag(saved.version);
    let mut response = HttpResponse::Ok();
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.insert_header((header::ETAG, value));
    }
    response.json(SettingsDocument::of(guild, saved))
}

#[utoipa::path(get, path = "/api/v1/settings/{guild_id}", tag = "guilds",
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, body = SettingsDocument, description = "The guild's settings; `ETag` carries their version",
            headers(("ETag" = String, description = "The settings' version, quoted"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`unknown_guild`: the bot is not in the guild")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn get_route(state: aweb::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?;
    Ok(answer(guild, state.guilds.settings(guild).await?))
}

#[utoipa::path(put, path = "/api/v1/settings/{guild_id}", tag = "guilds", request_body = SettingsDocument,
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on")),
    responses((status = 200, body = SettingsDocument, description = "The settings after the change",
            headers(("ETag" = String, description = "The new version, quoted"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 412, body = ErrorBody, description = "`precondition_failed`: changed since the If-Match version")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn put_route(
    state: aweb::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    body: Json<SettingsDocument>,
) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?;
    if let Some(named) = body.guild_id
        && named != guild
    {
        return Err(ApiError::invalid_field(
            "guild_id",
            format!("is {named}, not the guild in the path ({guild})"),
        ));
    }
    let expected = if_match(&req)?;
    let saved = state
        .guilds
        .replace(
            guild,
            &body.settings,
            expected,
            auth.actor.clone(),
            auth.origin().clone(),
        )
        .await?;
    Ok(answer(guild, saved))
}

#[utoipa::path(patch, path = "/api/v1/settings/{guild_id}", tag = "guilds", request_body = SettingsPatch,
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on")),
    responses((status = 200, body = SettingsDocument, description = "The settings after the change",
            headers(("ETag" = String, description = "The new version, quoted"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 412, body = ErrorBody, description = "`precondition_failed`: changed since the If-Match version")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, guild))]
pub async fn patch_route(
    state: aweb::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    body: Json<SettingsPatch>,
) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?;
    let expected = if_match(&req)?;
    let saved = state
        .guilds
        .change(
            guild,
            body.changes(),
            expected,
            auth.actor.clone(),
            auth.origin().clone(),
        )
        .await?;
    Ok(answer(guild, saved))
}

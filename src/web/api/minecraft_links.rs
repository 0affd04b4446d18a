//! `/api/v1/guilds/{guild_id}/minecraft/…`: the Minecraft accounts linked to a guild's members,
//! an admin's link and unlink, and the whitelist's reconciliation and options. Handlers stay
//! thin: authorise (declared per route), parse, call `LinkService`, map.

use actix_web::{HttpResponse, web as aweb};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::rbac::Permission as P;
use crate::minecraft::links::{GuildLinks, LinkActor};
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare, parse_snowflake};
use crate::web::openapi::ErrorBody;
use crate::web::validate::Json;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_links, put_link, delete_link, reconcile, put_options),
    components(schemas(GuildLinks, LinkBody, WhitelistOptions))
)]
pub struct Doc;

pub fn configure(cfg: &mut aweb::ServiceConfig) {
    cfg.service(
        declare("/guilds/{guild_id}/minecraft/links")
            .get(Access::Guild(P::MinecraftView, "guild_id"), list_links),
    )
    .service(
        declare("/guilds/{guild_id}/minecraft/links/{user_id}")
            .put(Access::Guild(P::MinecraftManage, "guild_id"), put_link)
            .delete(Access::Guild(P::MinecraftManage, "guild_id"), delete_link),
    )
    .service(
        declare("/guilds/{guild_id}/minecraft/whitelist/reconcile")
            .post(Access::Guild(P::MinecraftManage, "guild_id"), reconcile),
    )
    .service(
        declare("/guilds/{guild_id}/minecraft/whitelist/options")
            .put(Access::Guild(P::MinecraftManage, "guild_id"), put_options),
    );
}

/// The guild (from the authorised path) and the member a member-scoped route names, recorded
/// on the request's span.
fn guild_and_member(auth: &Auth, path: &(String, String)) -> Result<(i64, i64), ApiError> {
    let guild = auth.guild()?.as_i64();
    let user = parse_snowflake("user_id", &path.1)?;
    tracing::Span::current().record("user", user);
    Ok((guild, user))
}

fn by(auth: &Auth) -> LinkActor {
    LinkActor {
        actor: auth.actor.clone(),
        origin: auth.origin().clone(),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// The member's Minecraft name: 3 to 16 letters, digits or `_`.
    #[schema(min_length = 3, max_length = 16, pattern = "^[A-Za-z0-9_]{3,16}$")]
    pub minecraft_name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhitelistOptions {
    /// Also kick a player who is online when they are taken off the whitelist.
    pub kick_on_remove: bool,
}

#[utoipa::path(get, path = "/api/v1/guilds/{guild_id}/minecraft/links", tag = "minecraft",
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, body = GuildLinks, description = "The guild's links (member, Minecraft name, linked at, whitelisted) and its server's last reconciliation"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(guild))]
pub async fn list_links(state: aweb::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?.as_i64();
    Ok(HttpResponse::Ok().json(state.links.guild_links(guild).await?))
}

#[utoipa::path(put, path = "/api/v1/guilds/{guild_id}/minecraft/links/{user_id}", tag = "minecraft",
    request_body = LinkBody,
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$"),
        ("user_id" = String, Path, description = "The member's Discord user id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 201, description = "Linked; whitelisted at once when the member holds the guild's Minecraft role"),
        (status = 400, body = ErrorBody, description = "`invalid_minecraft_name`, `invalid_field`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`member_not_found`, or no Minecraft server for the guild"),
        (status = 409, body = ErrorBody, description = "`already_linked`, `minecraft_name_taken`, `whitelist_refused`"),
        (status = 503, body = ErrorBody, description = "`unavailable`: RCON or Discord cannot be reached; nothing was stored")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(guild, user))]
pub async fn put_link(
    state: aweb::Data<AppState>,
    auth: Auth,
    path: aweb::Path<(String, String)>,
    body: Json<LinkBody>,
) -> Result<HttpResponse, ApiError> {
    let (guild, user) = guild_and_member(&auth, &path)?;
    let link = state
        .links
        .admin_link(guild, user, &body.minecraft_name, &by(&auth))
        .await?;
    Ok(HttpResponse::Created().json(link))
}

#[utoipa::path(delete, path = "/api/v1/guilds/{guild_id}/minecraft/links/{user_id}", tag = "minecraft",
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$"),
        ("user_id" = String, Path, description = "The member's Discord user id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 204, description = "Unlinked (and taken off the whitelist first)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`not_linked`"),
        (status = 503, body = ErrorBody, description = "`unavailable`: RCON cannot be reached; the link is kept")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(guild, user))]
pub async fn delete_link(
    state: aweb::Data<AppState>,
    auth: Auth,
    path: aweb::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (guild, user) = guild_and_member(&auth, &path)?;
    state.links.unlink(guild, user, &by(&auth)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/guilds/{guild_id}/minecraft/whitelist/reconcile", tag = "minecraft",
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, description = "The reconciliation's report: added, removed, kicked, unmanaged, failed, commands sent"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No Minecraft server for the guild"),
        (status = 503, body = ErrorBody, description = "`unavailable`: RCON cannot be reached (recorded as the last result)")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(guild))]
pub async fn reconcile(state: aweb::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?.as_i64();
    let server = state.links.server_for(guild).await?;
    Ok(HttpResponse::Ok().json(state.links.reconcile(&server).await?))
}

#[utoipa::path(put, path = "/api/v1/guilds/{guild_id}/minecraft/whitelist/options", tag = "minecraft",
    request_body = WhitelistOptions,
    params(("guild_id" = String, Path, description = "Discord guild id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 204, description = "Saved for the guild's server"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No Minecraft server for the guild")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(guild))]
pub async fn put_options(
    state: aweb::Data<AppState>,
    auth: Auth,
    body: Json<WhitelistOptions>,
) -> Result<HttpResponse, ApiError> {
    let guild = auth.guild()?.as_i64();
    state
        .links
        .set_kick_on_remove(guild, body.kick_on_remove, &by(&auth))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

//! `/api/v1/minecraft/*`: Minecraft servers over RCON, their console, players and schedules.
//! Handlers stay thin: authorise (declared per route), parse, call `MinecraftService`, map.

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::authenticate::Principal;
use crate::auth::rbac::Permission as P;
use crate::domain::audit::AuditOrigin;
use crate::minecraft::policy::RolePolicy;
use crate::minecraft::schedule::ScheduleSpec;
use crate::minecraft::service::AuditStatus;
use crate::minecraft::service::{ServerPatch, ServerSpec};
use crate::minecraft::{Caller, RconCommand};
use crate::state::AppState;
use crate::store::users;
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare, parse_snowflake};
use crate::web::openapi::ErrorBody;
use crate::web::validate::Json;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_servers,
        create_server,
        get_server,
        update_server,
        delete_server,
        status,
        command,
        players,
        list_schedules,
        create_schedule,
        delete_schedule,
        update_schedule,
        list_policies,
        get_policy,
        put_policy
    ),
    components(schemas(
        NewServerRequest,
        ServerUpdate,
        CommandRequest,
        NewScheduleRequest,
        PolicyUpdate,
        ScheduleUpdate,
        RolePolicy,
        PolicyList
    ))
)]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        declare("/minecraft/servers")
            .get(Access::Global(P::MinecraftView), list_servers)
            .post(Access::Global(P::MinecraftManage), create_server),
    )
    .service(
        declare("/minecraft/servers/{name}")
            .get(Access::Global(P::MinecraftView), get_server)
            .patch(Access::Global(P::MinecraftManage), update_server)
            .delete(Access::Global(P::MinecraftManage), delete_server),
    )
    .service(
        declare("/minecraft/servers/{name}/status").get(Access::Global(P::MinecraftView), status),
    )
    .service(
        declare("/minecraft/servers/{name}/command")
            .post(Access::Global(P::MinecraftCommand), command),
    )
    .service(
        declare("/minecraft/servers/{name}/players").get(Access::Global(P::MinecraftView), players),
    )
    .service(
        declare("/minecraft/servers/{name}/schedules")
            .get(Access::Global(P::MinecraftView), list_schedules)
            .post(Access::Global(P::MinecraftManage), create_schedule),
    )
    .service(
        declare("/minecraft/servers/{name}/schedules/{id}")
            .patch(Access::Global(P::MinecraftManage), update_schedule)
            .delete(Access::Global(P::MinecraftManage), delete_schedule),
    )
    .service(declare("/minecraft/policy").get(Access::Global(P::MinecraftView), list_policies))
    .service(
        declare("/minecraft/policy/{role}")
            .get(Access::Global(P::MinecraftView), get_policy)
            .put(Access::Global(P::MinecraftManage), put_policy),
    );
}

/// The caller as the Minecraft service sees it: actor, global role names (for the command
/// policy; an API key acts with its creator's roles, within the key's own permissions) and
/// the request's origin for the audit entry.
pub async fn caller(state: &AppState, auth: &Auth) -> Result<Caller, ApiError> {
    caller_of(state, auth, auth.origin()).await
}

/// [`caller`] for any authenticated principal (the dashboard's pages use it too).
pub async fn caller_of(
    state: &AppState,
    principal: &Principal,
    origin: &AuditOrigin,
) -> Result<Caller, ApiError> {
    let roles = users::global_roles(&state.store, principal.user_id).await?;
    Ok(Caller {
        actor: principal.actor.clone(),
        roles,
        guild_id: None,
        origin: origin.clone(),
    })
}

fn default_port() -> i64 {
    i64::from(crate::config::DEFAULT_RCON_PORT)
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServerRequest {
    /// 1 to 32 of `a-z 0-9 - _`; `default` is reserved for RCON_HOST.
    #[schema(max_length = 32)]
    pub name: String,
    /// Host name or IP address; must resolve.
    pub host: String,
    /// 1 to 65535; 25575 when omitted.
    #[serde(default = "default_port")]
    pub port: i64,
    /// Stored encrypted; never returned.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Discord guild ids whose `/mc` commands go to this server.
    #[serde(default)]
    pub guilds: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerUpdate {
    pub host: Option<String>,
    pub port: Option<i64>,
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    pub enabled: Option<bool>,
    /// Replaces the linked guilds.
    pub guilds: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// At most 1,413 bytes, no control characters.
    pub command: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScheduleRequest {
    /// Cron expression in UTC: 5 fields, or 6 with seconds first.
    pub cron: String,
    pub command: String,
    /// Run only when no player is online.
    #[serde(default)]
    pub only_when_empty: bool,
    /// Announce the command with `say` this many seconds before it runs (0 to 3600).
    #[serde(default)]
    pub countdown_seconds: i64,
    /// The announcement; `{seconds}` is replaced by the seconds left.
    pub countdown_message: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/minecraft/servers", tag = "minecraft",
    responses((status = 200, description = "Servers, without passwords"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn list_servers(
    state: web::Data<AppState>,
    _auth: Auth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.minecraft.servers().await?))
}

#[utoipa::path(post, path = "/api/v1/minecraft/servers", tag = "minecraft", request_body = NewServerRequest,
    responses((status = 201, description = "Created"),
        (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(server = %body.name, host = %body.host, port = body.port))]
pub async fn create_server(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<NewServerRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&state, &auth).await?;
    let body = body.into_inner();
    let spec = ServerSpec {
        name: body.name,
        host: body.host,
        port: body.port,
        password: body.password,
        enabled: body.enabled,
        guilds: body.guilds,
    };
    let info = state.minecraft.add_server(&caller, spec).await?;
    Ok(HttpResponse::Created().json(info))
}

#[utoipa::path(get, path = "/api/v1/minecraft/servers/{name}", tag = "minecraft",
    params(("name" = String, Path, description = "Server name", pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")),
    responses((status = 200, description = "The server, without its password"),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(server = %name))]
pub async fn get_server(
    state: web::Data<AppState>,
    _auth: Auth,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = state.minecraft.server(&name)?;
    Ok(HttpResponse::Ok().json(state.minecraft.server_info(&name).await?))
}

#[utoipa::path(patch, path = "/api/v1/minecraft/servers/{name}", tag = "minecraft", request_body = ServerUpdate,
    params(("name" = String, Path, description = "Server name", pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")),
    responses((status = 200, description = "Updated; a new host, port or password reconnects"),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(server = %name))]
pub async fn update_server(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: web::Json<ServerUpdate>,
) -> Result<HttpResponse, ApiError> {
    let name = state.minecraft.server(&name)?;
    let caller = caller(&state, &auth).await?;
    let body = body.into_inner();
    let patch = ServerPatch {
        host: body.host,
        port: body.port,
        password: body.password,
        enabled: body.enabled,
        guilds: body.guilds,
    };
    Ok(HttpResponse::Ok().json(state.minecraft.update_server(&caller, &name, patch).await?))
}

#[utoipa::path(delete, path = "/api/v1/minecraft/servers/{name}", tag = "minecraft",
    params(("name" = String, Path, description = "Server name", pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")),
    responses((status = 204, description = "Removed with its links and schedules"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(server = %name))]
pub async fn delete_server(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = state.minecraft.server(&name)?;
    let caller = caller(&state, &auth).await?;
    state.minecraft.remove_server(&caller, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/minecraft/servers/{name}/status", tag = "minecraft",
    params(("name" = String, Path, description = "Server name", pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")),
    responses((status = 200, description = "Connection state, last error, round trip, players"),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(server = %name))]
pub async fn status(
    state: web::Data<AppState>,
    _auth: Auth,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = state.minecraft.server(&name)?;
    Ok(HttpResponse::Ok().json(state.minecraft.status(&name).await?))
}

#[utoipa::path(post, path = "/api/v1/minecraft/servers/{name}/command", tag = "minecraft", request_body = CommandRequest,
    params(("name" = String, Path, description = "Server name", pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")),
    responses((status = 200, description = "`raw` and `text` (formatting codes removed); `audit` is `recorded`"),
        (status = 202, description = "The command ran, but its audit entry was not committed within 5 s (the database is slow or down): `audit` is `pending`, the entry is written once the database is back. Do not repeat the command."),
        (status = 400, body = ErrorBody),
        (status = 403, description = "The role policy does not allow this command", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, description = "The server cannot be reached or did not answer", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(server = %name))]
pub async fn command(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: web::Json<CommandRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = state.minecraft.server(&name)?;
    let command =
        RconCommand::parse(&body.command).map_err(|e| ApiError::invalid_field("command", e))?;
    let caller = caller(&state, &auth).await?;
    let response = state.minecraft.command(&caller, &name, command).await?;
    // 202: the command ran but its audit entry is still pending (see `AUDIT_WAIT`).
    Ok(match response.audit {
        AuditStatus::Recorded => HttpResponse::Ok().json(response),
        AuditStatus::Pending => HttpResponse::Accepted().json(response),
    })
}

#[utoipa::path(get, path = "/api/v1/minecraft/servers/{name}/players", tag = "minecraft",
    params(("name" = String, Path, description = "Server name", pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")),
    responses((status = 200, description = "`online`, `max` and `names`, parsed from `list`"),
        (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(server = %name))]
pub async fn players(
    state: web::Data<AppState>,
    _auth: Auth,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = state.minecraft.server(&name)?;
    Ok(HttpResponse::Ok().json(state.minecraft.players(&name).await?))
}

#[utoipa::path(get, path = "/api/v1/minecraft/servers/{name}/schedules", tag = "minecraft",
    params(("name" = String, Path, description = "Server name", pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")),
    responses((status = 200, description = "The server's schedules"),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(server = %name))]
pub async fn list_schedules(
    state: web::Data<AppState>,
    _auth: Auth,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = state.minecraft.server(&name)?;
    Ok(HttpResponse::Ok().json(state.minecraft.schedules(&name).await?))
}

#[utoipa::path(post, path = "/api/v1/minecraft/servers/{name}/schedules", tag = "minecraft", request_body = NewScheduleRequest,
    params(("name" = String, Path, description = "Server name", pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")),
    responses((status = 201, description = "Created"),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(server = %name, cron = %body.cron))]
pub async fn create_schedule(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: web::Json<NewScheduleRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = state.minecraft.server(&name)?;
    let caller = caller(&state, &auth).await?;
    let body = body.into_inner();
    let spec = ScheduleSpec {
        cron: body.cron,
        command: body.command,
        only_when_empty: body.only_when_empty,
        countdown_seconds: body.countdown_seconds,
        countdown_message: body.countdown_message,
    };
    let schedule = state.minecraft.add_schedule(&caller, &name, spec).await?;
    Ok(HttpResponse::Created().json(schedule))
}

#[utoipa::path(delete, path = "/api/v1/minecraft/servers/{name}/schedules/{id}", tag = "minecraft",
    params(("name" = String, Path, description = "Server name", pattern = "^[a-z0-9][a-z0-9_-]{0,31}$"), ("id" = String, Path, description = "Schedule id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 204, description = "Removed"),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(server = %path.0, schedule = %path.1))]
pub async fn delete_schedule(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, id) = path.into_inner();
    let name = state.minecraft.server(&name)?;
    let id = parse_snowflake("id", &id)?;
    let caller = caller(&state, &auth).await?;
    state.minecraft.remove_schedule(&caller, &name, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What `PUT /minecraft/policy/{role}` accepts: what `GET` returned (`role` and `updated_at`
/// may be sent back; `role` must then name the role in the path).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdate {
    pub role: Option<String>,
    /// The command roots the role's members may send (`list`, `whitelist`, `essentials:kick`),
    /// or `["*"]` for every command; `[]` allows nothing. At most 100; a leading `/` and the
    /// `minecraft:` namespace are dropped, case is ignored, duplicates are merged.
    pub allowed: Vec<String>,
    /// Ignored (the server sets it).
    pub updated_at: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct PolicyList {
    /// Every role, those without a policy included (they may send nothing).
    pub roles: Vec<RolePolicy>,
}

#[utoipa::path(get, path = "/api/v1/minecraft/policy", tag = "minecraft",
    responses((status = 200, description = "Every role's command policy", body = PolicyList),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn list_policies(
    state: web::Data<AppState>,
    _auth: Auth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(PolicyList {
        roles: state.minecraft.policies().await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/minecraft/policy/{role}", tag = "minecraft",
    params(("role" = String, Path, description = "guildhall role name", pattern = "^[a-z0-9_-]{1,64}$")),
    responses((status = 200, description = "The role's command policy", body = RolePolicy),
        (status = 404, description = "No such role", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(role = %role))]
pub async fn get_policy(
    state: web::Data<AppState>,
    _auth: Auth,
    role: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.minecraft.policy(&role).await?))
}

#[utoipa::path(put, path = "/api/v1/minecraft/policy/{role}", tag = "minecraft", request_body = PolicyUpdate,
    params(("role" = String, Path, description = "guildhall role name", pattern = "^[a-z0-9_-]{1,64}$")),
    responses((status = 200, description = "Replaced and audited (`minecraft.policy_update`); applies to the next command", body = RolePolicy),
        (status = 400, body = ErrorBody),
        (status = 404, description = "No such role", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(role = %role))]
pub async fn put_policy(
    state: web::Data<AppState>,
    auth: Auth,
    role: web::Path<String>,
    body: Json<PolicyUpdate>,
) -> Result<HttpResponse, ApiError> {
    if body.role.as_deref().is_some_and(|r| r != role.as_str()) {
        return Err(ApiError::invalid_field(
            "role",
            "names another role than the path",
        ));
    }
    let caller = caller(&state, &auth).await?;
    let policy = state
        .minecraft
        .set_policy(&caller, &role, &body.allowed)
        .await?;
    Ok(HttpResponse::Ok().json(policy))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleUpdate {
    /// `false` pauses the schedule; `true` resumes it from its next occurrence after now.
    pub enabled: bool,
}

#[utoipa::path(patch, path = "/api/v1/minecraft/servers/{name}/schedules/{id}", tag = "minecraft", request_body = ScheduleUpdate,
    params(("name" = String, Path, description = "Server name", pattern = "^[a-z0-9][a-z0-9_-]{0,31}$"), ("id" = String, Path, description = "Schedule id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, description = "The schedule, paused or resumed (audited)"),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(server = %path.0, schedule = %path.1))]
pub async fn update_schedule(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(String, String)>,
    body: Json<ScheduleUpdate>,
) -> Result<HttpResponse, ApiError> {
    let (name, id) = path.into_inner();
    let name = state.minecraft.server(&name)?;
    let id = parse_snowflake("id", &id)?;
    let caller = caller(&state, &auth).await?;
    let schedule = state
        .minecraft
        .set_schedule_enabled(&caller, &name, id, body.enabled)
        .await?;
    Ok(HttpResponse::Ok().json(schedule))
}

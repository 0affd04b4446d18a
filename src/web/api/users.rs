//! `/api/v1/users`: list, create and change dashboard users (roles, disable), and invites.
//! Nobody can hand out more than they hold: granting a role needs every permission of that
//! role in the grant's scope, and changing a user needs every permission that user holds.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::Acting;
use crate::auth::authenticate::Principal;
use crate::auth::lockout;
use crate::auth::rbac::{GLOBAL, Permission as P};
use crate::services::accounts::NewAccount;
use crate::state::AppState;
use crate::store::roles::{self, Role};
use crate::store::users::{self, RoleGrant, UserSummary};
use crate::store::{StoreError, instance_settings, invites};
use crate::types::{NewPassword, Username};
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare, path_id};
use crate::web::openapi::ErrorBody;
use crate::web::validate::{Id, Json, id_string, opt_id_string};

const MAX_GRANTS: usize = 64;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_users,
    create_user,
    update_user,
    create_invite,
    get_instance_settings,
    put_instance_settings
))]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        declare("/users")
            .get(Access::Global(P::UsersManage), list_users)
            .post(Access::Global(P::UsersManage), create_user),
    )
    .service(declare("/users/invites").post(Access::Global(P::UsersManage), create_invite))
    .service(declare("/users/{id}").patch(Access::Global(P::UsersManage), update_user))
    .service(
        declare("/instance/settings")
            .get(Access::Global(P::UsersManage), get_instance_settings)
            .put(Access::Global(P::UsersManage), put_instance_settings),
    );
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantInput {
    /// Role name.
    #[schema(max_length = 64)]
    pub role: String,
    /// Scope the grant to one guild; omit for a global grant.
    #[serde(default)]
    pub guild_id: Option<Id>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]{3,32}$")]
    pub username: String,
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    #[serde(default)]
    pub roles: Vec<GrantInput>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// Replaces every grant of the user.
    #[serde(default)]
    pub roles: Option<Vec<GrantInput>>,
    /// Disabling revokes every token of the user at once.
    #[serde(default)]
    pub disabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct GrantView {
    pub role: String,
    #[serde(serialize_with = "id_string")]
    #[schema(value_type = String)]
    pub role_id: i64,
    /// Absent for a global grant.
    #[serde(serialize_with = "opt_id_string")]
    #[schema(value_type = Option<String>)]
    pub guild_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    #[serde(serialize_with = "id_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub username: String,
    pub disabled: bool,
    pub mfa_enabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub roles: Vec<GrantView>,
}

impl From<UserSummary> for UserView {
    fn from(u: UserSummary) -> Self {
        UserView {
            id: u.id,
            username: u.username,
            disabled: u.disabled,
            mfa_enabled: u.mfa_enabled,
            created_at: u.created_at,
            roles: u
                .roles
                .into_iter()
                .map(|g| GrantView {
                    role: g.role,
                    role_id: g.role_id,
                    guild_id: (g.guild_id != GLOBAL).then_some(g.guild_id),
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[derive(Serialize, ToSchema)]
pub struct Invite {
    /// Shown once; give it to the person who should register.
    pub invite: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceSettings {
    /// Anyone may register (new accounts hold no permissions); otherwise an invite is needed.
    pub registration_open: bool,
}

/// True when `auth` holds every permission of `role` in the grant's scope.
fn may_grant(auth: &Principal, role: &Role, guild_id: i64) -> bool {
    let scope = (guild_id != GLOBAL).then_some(guild_id);
    role.permissions.iter().all(|p| match scope {
        None => auth.grants.allows_globally(*p),
        Some(g) => auth.grants.allows(*p, Some(g)),
    })
}

/// Resolves grant inputs to `(role_id, guild_id)`, checking each against the caller's own.
fn resolve_grants(
    auth: &Principal,
    all_roles: &[Role],
    inputs: &[GrantInput],
    field: &str,
) -> Result<Vec<(i64, i64)>, ApiError> {
    if inputs.len() > MAX_GRANTS {
        return Err(ApiError::invalid_field(
            field,
            format!("at most {MAX_GRANTS} grants"),
        ));
    }
    let mut out = BTreeSet::new();
    for (i, g) in inputs.iter().enumerate() {
        let role = all_roles.iter().find(|r| r.name == g.role).ok_or_else(|| {
            ApiError::invalid_field(&format!("{field}[{i}].role"), "no such role")
        })?;
        let guild = g.guild_id.map_or(GLOBAL, |g| g.0);
        if !may_grant(auth, role, guild) {
            return Err(ApiError::Forbidden);
        }
        out.insert((role.id, guild));
    }
    Ok(out.into_iter().collect())
}

/// True when `auth` could have granted each of the target's current grants itself.
fn may_manage(auth: &Principal, all_roles: &[Role], grants: &[RoleGrant]) -> bool {
    grants.iter().all(|g| {
        all_roles
            .iter()
            .find(|r| r.id == g.role_id)
            .is_none_or(|r| may_grant(auth, r, g.guild_id))
    })
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn list_users(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(list(&state).await?))
}

/// Every dashboard user with their grants, for the API and the dashboard.
pub async fn list(state: &AppState) -> Result<UserList, ApiError> {
    let users = users::list(&state.store).await?;
    Ok(UserList {
        users: users.into_iter().map(UserView::from).collect(),
    })
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, username = %body.username.chars().take(32).collect::<String>()))]
pub async fn create_user(
    state: web::Data<AppState>,
    auth: Auth,
    body: Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let acting = Acting::new(&auth, auth.origin());
    Ok(HttpResponse::Created().json(create(&state, &acting, &body).await?))
}

/// Creates a user with grants the caller could hand out itself (`Accounts::create_user`).
pub async fn create(
    state: &AppState,
    auth: &Acting<'_>,
    body: &CreateUser,
) -> Result<UserView, ApiError> {
    let username =
        Username::parse(&body.username).map_err(|m| ApiError::invalid_field("username", m))?;
    let password = NewPassword::parse(SecretString::from(body.password.clone()))
        .map_err(|m| ApiError::invalid_field("password", m))?;
    let all_roles = roles::list(&state.store).await?;
    let grants = resolve_grants(auth, &all_roles, &body.roles, "roles")?;
    let how = NewAccount::ByAdministrator {
        actor: auth.actor.clone(),
        grants: &grants,
    };
    let user = state
        .accounts
        .create_user(&username, password, how, auth.origin())
        .await?;
    Ok(UserView::from(user))
}

fn grant_details(view: &UserView) -> serde_json::Value {
    serde_json::Value::Array(
        view.roles
            .iter()
            .map(|g| json!({ "role": g.role, "guild_id": g.guild_id.map(|g| g.to_string()) }))
            .collect(),
    )
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UpdateUser,
    params(("id" = String, Path, description = "User id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The change would leave no administrator", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, target))]
pub async fn update_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    body: Json<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&req, "id")?;
    tracing::Span::current().record("target", id);
    let acting = Acting::new(&auth, auth.origin());
    Ok(HttpResponse::Ok().json(update(&state, &acting, id, &body).await?))
}

/// Changes a user's grants and/or disables them: the caller must be able to grant what the
/// user holds and what they are given; never leaves no administrator; disabling revokes every
/// token of the user. Audited as `users.update` / `users.disable`.
pub async fn update(
    state: &AppState,
    auth: &Acting<'_>,
    id: i64,
    body: &UpdateUser,
) -> Result<UserView, ApiError> {
    let everyone = users::list(&state.store).await?;
    let target = everyone
        .iter()
        .find(|u| u.id == id)
        .ok_or(StoreError::NotFound)?;
    let all_roles = roles::list(&state.store).await?;
    if !may_manage(auth, &all_roles, &target.roles) {
        return Err(ApiError::Forbidden);
    }
    let grants = body
        .roles
        .as_deref()
        .map(|inputs| resolve_grants(auth, &all_roles, inputs, "roles"))
        .transpose()?;
    let mut changes = Vec::new();
    if let Some(grants) = &grants {
        changes.push(lockout::Change::Grants {
            user_id: id,
            grants,
        });
    }
    if let Some(disabled) = body.disabled {
        changes.push(lockout::Change::Disabled {
            user_id: id,
            disabled,
        });
    }
    if lockout::removes_last_administrator(&everyone, &all_roles, &changes) {
        return Err(ApiError::Conflict(lockout::REFUSAL.into()));
    }
    if let Some(grants) = &grants {
        users::replace_grants(&state.store, id, grants).await?;
    }
    if let Some(disabled) = body.disabled {
        users::set_disabled(&state.store, id, disabled).await?;
    }
    if body.disabled == Some(true) {
        state.accounts.revoke_tokens(id).await?;
    } else {
        // New grants or a lifted ban: cached copies must not outlive the change.
        state.auth_cache.forget_user(id).await;
    }
    let view = UserView::from(users::summary(&state.store, id).await?);
    state
        .audit
        .record(
            auth.entry(if body.disabled == Some(true) {
                "users.disable"
            } else {
                "users.update"
            })
            .target(format!("user:{id}"))
            .details(json!({
                "username": view.username,
                "roles": grants.is_some().then(|| grant_details(&view)),
                "disabled": body.disabled,
            })),
        )
        .await?;
    Ok(view)
}

#[utoipa::path(post, path = "/api/v1/users/invites", tag = "users",
    responses((status = 201, body = Invite), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn create_invite(
    state: web::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    let acting = Acting::new(&auth, auth.origin());
    Ok(HttpResponse::Created().json(invite(&state, &acting).await?))
}

/// A single-use invite (7 days), shown only in this answer. Audited as `users.invite`.
pub async fn invite(state: &AppState, auth: &Acting<'_>) -> Result<Invite, ApiError> {
    let (invite, expires_at) =
        invites::create(&state.store, &state.secrets.secret_key, auth.user_id).await?;
    state
        .audit
        .record(
            auth.entry("users.invite")
                .details(json!({ "expires_at": expires_at })),
        )
        .await?;
    Ok(Invite {
        invite: invite.expose_secret().to_owned(),
        expires_at,
    })
}

#[utoipa::path(get, path = "/api/v1/instance/settings", tag = "users",
    responses((status = 200, body = InstanceSettings), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn get_instance_settings(
    state: web::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(instance(&state).await?))
}

/// The instance-wide settings.
pub async fn instance(state: &AppState) -> Result<InstanceSettings, ApiError> {
    Ok(InstanceSettings {
        registration_open: instance_settings::registration_open(&state.store).await?,
    })
}

#[utoipa::path(put, path = "/api/v1/instance/settings", tag = "users", request_body = InstanceSettings,
    responses((status = 200, body = InstanceSettings), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn put_instance_settings(
    state: web::Data<AppState>,
    auth: Auth,
    body: Json<InstanceSettings>,
) -> Result<HttpResponse, ApiError> {
    let acting = Acting::new(&auth, auth.origin());
    Ok(HttpResponse::Ok().json(set_instance(&state, &acting, &body).await?))
}

/// Replaces the instance-wide settings. Audited as `instance.settings_update`.
pub async fn set_instance(
    state: &AppState,
    auth: &Acting<'_>,
    body: &InstanceSettings,
) -> Result<InstanceSettings, ApiError> {
    instance_settings::set(
        &state.store,
        instance_settings::REGISTRATION_OPEN,
        &json!(body.registration_open),
    )
    .await?;
    state
        .audit
        .record(
            auth.entry("instance.settings_update")
                .details(json!({ "registration_open": body.registration_open })),
        )
        .await?;
    Ok(InstanceSettings {
        registration_open: body.registration_open,
    })
}

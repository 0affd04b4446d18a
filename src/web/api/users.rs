//! `/api/v1/users`: list, create and change dashboard users (roles, disable), and invites.
//! What each action does (nobody hands out more than they hold) is in
//! `services::admin::users`; these handlers translate JSON to it and back.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::rbac::{GLOBAL, Permission as P};
use crate::services::admin::{Acting, GrantRequest, NewInvite, NewUser, UserChange};
use crate::state::AppState;
use crate::store::users::UserSummary;
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare, path_id};
use crate::web::openapi::ErrorBody;
use crate::web::validate::{Id, Json, id_string, opt_id_string};

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

impl From<GrantInput> for GrantRequest {
    fn from(g: GrantInput) -> Self {
        GrantRequest {
            role: g.role,
            guild_id: g.guild_id.map(|g| g.0),
        }
    }
}

impl From<CreateUser> for NewUser {
    fn from(body: CreateUser) -> Self {
        NewUser {
            username: body.username,
            password: SecretString::from(body.password),
            roles: body.roles.into_iter().map(GrantRequest::from).collect(),
        }
    }
}

impl From<UpdateUser> for UserChange {
    fn from(body: UpdateUser) -> Self {
        UserChange {
            roles: body
                .roles
                .map(|roles| roles.into_iter().map(GrantRequest::from).collect()),
            disabled: body.disabled,
        }
    }
}

impl From<NewInvite> for Invite {
    fn from(new: NewInvite) -> Self {
        Invite {
            invite: new.invite.expose_secret().to_owned(),
            expires_at: new.expires_at,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn list_users(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let users = state.admin.list_users().await?;
    Ok(HttpResponse::Ok().json(UserList {
        users: users.into_iter().map(UserView::from).collect(),
    }))
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
    let user = state.admin.create_user(&acting, body.0.into()).await?;
    Ok(HttpResponse::Created().json(UserView::from(user)))
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
    let user = state.admin.update_user(&acting, id, body.0.into()).await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
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
    let invite = state.admin.invite(&acting).await?;
    Ok(HttpResponse::Created().json(Invite::from(invite)))
}

#[utoipa::path(get, path = "/api/v1/instance/settings", tag = "users",
    responses((status = 200, body = InstanceSettings), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn get_instance_settings(
    state: web::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(InstanceSettings {
        registration_open: state.admin.registration_open().await?,
    }))
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
    let open = state
        .admin
        .set_registration_open(&acting, body.registration_open)
        .await?;
    Ok(HttpResponse::Ok().json(InstanceSettings {
        registration_open: open,
    }))
}

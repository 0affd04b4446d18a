//! `/api/v1/roles`: the roles users are granted. What each action does (a caller can only put
//! permissions it holds globally into a role; `admin` always holds every permission) is in
//! `services::admin::roles`; these handlers translate JSON to it and back.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::rbac::Permission;
use crate::services::admin::{Acting, NewRole, RoleChange};
use crate::state::AppState;
use crate::store::roles::Role;
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare, path_id};
use crate::web::openapi::ErrorBody;
use crate::web::validate::{Json, id_string};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list_roles, create_role, update_role))]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        declare("/roles")
            .get(Access::Global(Permission::RolesManage), list_roles)
            .post(Access::Global(Permission::RolesManage), create_role),
    )
    .service(declare("/roles/{id}").patch(Access::Global(Permission::RolesManage), update_role));
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// Lower-case letters, digits, `_` and `-`.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub description: String,
    /// Permission names from the catalogue, e.g. `settings.read`.
    pub permissions: Vec<String>,
    #[serde(default)]
    pub require_mfa: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    #[serde(default)]
    #[schema(max_length = 256)]
    pub description: Option<String>,
    /// Replaces the role's permissions.
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    /// Users holding this role get its permissions only once they have MFA enabled.
    #[serde(default)]
    pub require_mfa: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct RoleView {
    #[serde(serialize_with = "id_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub require_mfa: bool,
    pub permissions: Vec<&'static str>,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        RoleView {
            id: r.id,
            name: r.name,
            description: r.description,
            builtin: r.builtin,
            require_mfa: r.require_mfa,
            permissions: r.permissions.iter().map(|p| p.as_str()).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RoleList {
    pub roles: Vec<RoleView>,
}

impl From<CreateRole> for NewRole {
    fn from(body: CreateRole) -> Self {
        NewRole {
            name: body.name,
            description: body.description,
            permissions: body.permissions,
            require_mfa: body.require_mfa,
        }
    }
}

impl From<UpdateRole> for RoleChange {
    fn from(body: UpdateRole) -> Self {
        RoleChange {
            description: body.description,
            permissions: body.permissions,
            require_mfa: body.require_mfa,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/roles", tag = "roles",
    responses((status = 200, body = RoleList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn list_roles(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let roles = state.admin.list_roles().await?;
    Ok(HttpResponse::Ok().json(RoleList {
        roles: roles.into_iter().map(RoleView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = CreateRole,
    responses((status = 201, body = RoleView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, role = %body.name.chars().take(64).collect::<String>()))]
pub async fn create_role(
    state: web::Data<AppState>,
    auth: Auth,
    body: Json<CreateRole>,
) -> Result<HttpResponse, ApiError> {
    let acting = Acting::new(&auth, auth.origin());
    let role = state.admin.create_role(&acting, body.0.into()).await?;
    Ok(HttpResponse::Created().json(RoleView::from(role)))
}

#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles", request_body = UpdateRole,
    params(("id" = String, Path, description = "Role id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, body = RoleView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, role))]
pub async fn update_role(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    body: Json<UpdateRole>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&req, "id")?;
    tracing::Span::current().record("role", id);
    let acting = Acting::new(&auth, auth.origin());
    let role = state.admin.update_role(&acting, id, body.0.into()).await?;
    Ok(HttpResponse::Ok().json(RoleView::from(role)))
}

//! `/api/v1/roles`: the roles users are granted. A caller can only put permissions it holds
//! globally into a role, and the built-in `admin` role always holds every permission.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::Acting;
use crate::auth::authenticate::Principal;
use crate::auth::lockout;
use crate::auth::rbac::Permission;
use crate::state::AppState;
use crate::store::roles::{self, Role, RoleUpdate};
use crate::store::users;
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare, path_id};
use crate::web::openapi::ErrorBody;
use crate::web::validate::{self, Json, id_string};

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

/// Parses permission names, naming the bad entry; the caller must hold each one globally.
pub fn parse_permissions(
    auth: &Principal,
    names: &[String],
    field: &str,
) -> Result<BTreeSet<Permission>, ApiError> {
    if names.len() > Permission::ALL.len() * 2 {
        return Err(ApiError::invalid_field(field, "too many entries"));
    }
    let mut out = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        let p: Permission = name.parse().map_err(|_| {
            ApiError::invalid_field(&format!("{field}[{i}]"), "not a known permission")
        })?;
        if !auth.grants.allows_globally(p) {
            return Err(ApiError::Forbidden);
        }
        out.insert(p);
    }
    Ok(out)
}

fn role_name(raw: &str) -> Result<&str, ApiError> {
    validate::text("name", raw, 1, 64)?;
    if !raw
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(ApiError::invalid_field(
            "name",
            "may contain only lower-case letters, digits, `_` and `-`",
        ));
    }
    Ok(raw)
}

#[utoipa::path(get, path = "/api/v1/roles", tag = "roles",
    responses((status = 200, body = RoleList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn list_roles(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(list(&state).await?))
}

/// Every role with its permissions.
pub async fn list(state: &AppState) -> Result<RoleList, ApiError> {
    let roles = roles::list(&state.store).await?;
    Ok(RoleList {
        roles: roles.into_iter().map(RoleView::from).collect(),
    })
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
    Ok(HttpResponse::Created().json(create(&state, &acting, &body).await?))
}

/// Creates a role holding at most the caller's own permissions. Audited as `roles.create`.
pub async fn create(
    state: &AppState,
    auth: &Acting<'_>,
    body: &CreateRole,
) -> Result<RoleView, ApiError> {
    let name = role_name(&body.name)?;
    validate::text("description", &body.description, 0, 256)?;
    let permissions = parse_permissions(auth, &body.permissions, "permissions")?;
    let role = roles::create(
        &state.store,
        name,
        &body.description,
        &permissions,
        body.require_mfa,
    )
    .await?;
    let view = RoleView::from(role);
    state
        .audit
        .record(
            auth.entry("roles.create")
                .target(format!("role:{}", view.id))
                .details(json!({ "name": view.name, "permissions": view.permissions,
                    "require_mfa": view.require_mfa })),
        )
        .await?;
    Ok(view)
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
    Ok(HttpResponse::Ok().json(update(&state, &acting, id, &body).await?))
}

/// Changes a role (every holder at once): the caller must hold what it has now and what it is
/// given; `admin` keeps every permission; never leaves no administrator. Audited as
/// `roles.update`.
pub async fn update(
    state: &AppState,
    auth: &Acting<'_>,
    id: i64,
    body: &UpdateRole,
) -> Result<RoleView, ApiError> {
    if let Some(d) = &body.description {
        validate::text("description", d, 0, 256)?;
    }
    let permissions = body
        .permissions
        .as_deref()
        .map(|p| parse_permissions(auth, p, "permissions"))
        .transpose()?;
    let all_roles = roles::list(&state.store).await?;
    let existing = all_roles
        .iter()
        .find(|r| r.id == id)
        .ok_or(crate::store::StoreError::NotFound)?;
    // Changing a role changes every holder: the caller must hold what it has now, too.
    if !existing
        .permissions
        .iter()
        .all(|p| auth.grants.allows_globally(*p))
    {
        return Err(ApiError::Forbidden);
    }
    if existing.builtin && existing.name == "admin" && permissions.is_some() {
        return Err(ApiError::Conflict(
            "the admin role always holds every permission".into(),
        ));
    }
    if let Some(permissions) = &permissions {
        let change = lockout::Change::Permissions {
            role_id: id,
            permissions,
        };
        let everyone = users::list(&state.store).await?;
        if lockout::removes_last_administrator(&everyone, &all_roles, &[change]) {
            return Err(ApiError::Conflict(lockout::REFUSAL.into()));
        }
    }
    roles::update(
        &state.store,
        id,
        RoleUpdate {
            description: body.description.as_deref(),
            permissions: permissions.as_ref(),
            require_mfa: body.require_mfa,
        },
    )
    .await?;
    // A role's change reaches every holder and every key of theirs.
    state.auth_cache.clear().await;
    let view = RoleView::from(roles::find(&state.store, id).await?);
    state
        .audit
        .record(
            auth.entry("roles.update")
                .target(format!("role:{id}"))
                .details(json!({ "name": view.name, "permissions": body.permissions.as_ref().map(|_| &view.permissions),
                    "require_mfa": body.require_mfa, "description_changed": body.description.is_some() })),
        )
        .await?;
    Ok(view)
}

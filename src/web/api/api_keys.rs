//! `/api/v1/api-keys`: keys for scripts. A key holds a subset of its creator's permissions,
//! optionally only in one guild and until an expiry; the full key is shown once. What each
//! action does is in `services::admin::api_keys`; these handlers translate JSON to it and back.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::rbac::Permission;
use crate::services::admin::{self, Acting, NewKey};
use crate::state::AppState;
use crate::store::api_keys::ApiKey;
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare, path_id};
use crate::web::openapi::ErrorBody;
use crate::web::validate::{Id, Json, id_string, opt_id_string};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list_keys, create_key, revoke_key))]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        declare("/api-keys")
            .get(Access::Global(Permission::ApiKeysManage), list_keys)
            .post(Access::Global(Permission::ApiKeysManage), create_key),
    )
    .service(
        declare("/api-keys/{id}").delete(Access::Global(Permission::ApiKeysManage), revoke_key),
    );
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// A subset of the creator's permissions.
    pub permissions: Vec<String>,
    /// Limit the key to one guild.
    #[serde(default)]
    pub guild_id: Option<Id>,
    /// Unix milliseconds; in the future, at most two years ahead.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    #[serde(serialize_with = "id_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub name: String,
    pub prefix: String,
    #[serde(serialize_with = "id_string")]
    #[schema(value_type = String)]
    pub user_id: i64,
    pub permissions: Vec<&'static str>,
    #[serde(serialize_with = "opt_id_string")]
    #[schema(value_type = Option<String>)]
    pub guild_id: Option<i64>,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> Self {
        KeyView {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            user_id: k.user_id,
            permissions: k.permissions.iter().map(|p| p.as_str()).collect(),
            guild_id: k.guild_id,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            created_at: k.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The full key, `ghk_<prefix>_<secret>`: shown only now.
    pub key: String,
    #[serde(flatten)]
    pub details: KeyView,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub api_keys: Vec<KeyView>,
}

impl From<CreateKey> for NewKey {
    fn from(body: CreateKey) -> Self {
        NewKey {
            name: body.name,
            permissions: body.permissions,
            guild_id: body.guild_id.map(|g| g.0),
            expires_at: body.expires_at,
        }
    }
}

impl From<admin::CreatedKey> for CreatedKey {
    fn from(created: admin::CreatedKey) -> Self {
        CreatedKey {
            key: created.key.expose_secret().to_owned(),
            details: KeyView::from(created.api_key),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys",
    responses((status = 200, description = "The caller's keys (every key for holders of users.manage)", body = KeyList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn list_keys(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let keys = state.admin.list_keys(&auth).await?;
    Ok(HttpResponse::Ok().json(KeyList {
        api_keys: keys.into_iter().map(KeyView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "A permission the caller does not hold in that scope", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn create_key(
    state: web::Data<AppState>,
    auth: Auth,
    body: Json<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let acting = Acting::new(&auth, auth.origin());
    let created = state.admin.create_key(&acting, body.0.into()).await?;
    Ok(HttpResponse::Created().json(CreatedKey::from(created)))
}

#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 204, description = "Revoked; refused from the next request on"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id, api_key))]
pub async fn revoke_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&req, "id")?;
    tracing::Span::current().record("api_key", id);
    let acting = Acting::new(&auth, auth.origin());
    state.admin.revoke_key(&acting, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

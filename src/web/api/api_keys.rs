//! `/api/v1/api-keys`: keys for scripts. A key holds a subset of its creator's permissions,
//! optionally only in one guild and until an expiry; the full key is shown once.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::Acting;
use crate::auth::api_keys;
use crate::auth::authenticate::Principal;
use crate::auth::rbac::Permission;
use crate::ids::now_ms;
use crate::state::AppState;
use crate::store::api_keys::{self as store, ApiKey, NewApiKey};
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare, path_id};
use crate::web::openapi::ErrorBody;
use crate::web::validate::{self, Id, Json, id_string, opt_id_string};

/// A key may live at most this long (about two years).
const MAX_LIFETIME_MS: i64 = 2 * 366 * 24 * 3600 * 1000;

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

#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys",
    responses((status = 200, description = "The caller's keys (every key for holders of users.manage)", body = KeyList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn list_keys(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(list(&state, &auth).await?))
}

/// The caller's keys (every key with `users.manage`), for the API and the dashboard.
pub async fn list(state: &AppState, auth: &Principal) -> Result<KeyList, ApiError> {
    let owner = (!auth.grants.allows_globally(Permission::UsersManage)).then_some(auth.user_id);
    let keys = store::list(&state.store, owner).await?;
    Ok(KeyList {
        api_keys: keys.into_iter().map(KeyView::from).collect(),
    })
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
    Ok(HttpResponse::Created().json(create(&state, &acting, &body).await?))
}

/// Creates a key holding at most the caller's own permissions; the key is in the answer
/// only (stored hashed). Audited as `api_keys.create`.
pub async fn create(
    state: &AppState,
    auth: &Acting<'_>,
    body: &CreateKey,
) -> Result<CreatedKey, ApiError> {
    let name = validate::text("name", &body.name, 1, 64)?;
    let guild = body.guild_id.map(|g| g.0);
    if body.permissions.is_empty() || body.permissions.len() > Permission::ALL.len() * 2 {
        return Err(ApiError::invalid_field(
            "permissions",
            "must list 1 to the catalogue's size of permissions",
        ));
    }
    let mut permissions = BTreeSet::new();
    for (i, raw) in body.permissions.iter().enumerate() {
        let p: Permission = raw.parse().map_err(|_| {
            ApiError::invalid_field(&format!("permissions[{i}]"), "not a known permission")
        })?;
        let held = match guild {
            Some(g) => auth.grants.allows(p, Some(g)),
            None => auth.grants.allows_anywhere(p),
        };
        if !held {
            return Err(ApiError::Forbidden);
        }
        permissions.insert(p);
    }
    let now = now_ms();
    if let Some(t) = body.expires_at
        && (t <= now || t > now + MAX_LIFETIME_MS)
    {
        return Err(ApiError::invalid_field(
            "expires_at",
            "must be in the future and at most two years ahead (Unix milliseconds)",
        ));
    }
    let generated = api_keys::generate(&state.secrets.secret_key);
    let key = store::create(
        &state.store,
        NewApiKey {
            prefix: &generated.prefix,
            secret_hash: &generated.secret_hash,
            name,
            user_id: auth.user_id,
            permissions: &permissions,
            guild_id: guild,
            expires_at: body.expires_at,
        },
    )
    .await?;
    let view = KeyView::from(key);
    let mut entry = auth
        .entry("api_keys.create")
        .target(format!("api_key:{}", view.id))
        .details(json!({ "name": view.name, "prefix": view.prefix,
            "permissions": view.permissions, "expires_at": view.expires_at }));
    if let Some(g) = guild {
        entry = entry.guild(g);
    }
    state.audit.record(entry).await?;
    Ok(CreatedKey {
        key: api_keys::expose(&generated).to_owned(),
        details: view,
    })
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
    revoke(&state, &Acting::new(&auth, auth.origin()), id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes a key of the caller's (any key with `users.manage`; another's is "not found").
/// Audited as `api_keys.revoke`.
pub async fn revoke(state: &AppState, auth: &Acting<'_>, id: i64) -> Result<(), ApiError> {
    let key = store::find(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such API key".into()))?;
    if key.user_id != auth.user_id && !auth.grants.allows_globally(Permission::UsersManage) {
        // Someone else's key: do not reveal that it exists.
        return Err(ApiError::NotFound("no such API key".into()));
    }
    store::revoke(&state.store, id).await?;
    state.auth_cache.forget_key(&key.prefix).await;
    state
        .audit
        .record(
            auth.entry("api_keys.revoke")
                .target(format!("api_key:{id}"))
                .details(json!({ "name": key.name, "prefix": key.prefix })),
        )
        .await?;
    Ok(())
}

//! Self-service registration: open, or with an invite.

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::audit::AuditOrigin;
use crate::services::accounts::NewAccount;
use crate::state::AppState;
use crate::types::{NewPassword, Username};
use crate::web::error::ApiError;
use crate::web::validate::{self, Json};

const MAX_INVITE_BYTES: usize = 256;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]{3,32}$")]
    pub username: String,
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    /// Required unless registration is open.
    #[serde(default)]
    pub invite: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Registered {
    #[serde(serialize_with = "crate::web::validate::id_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub username: String,
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = Registered),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 403, description = "Registration is closed and no valid invite was given", body = crate::web::openapi::ErrorBody),
        (status = 409, body = crate::web::openapi::ErrorBody),
        (status = 429, body = crate::web::openapi::ErrorBody)))]
#[tracing::instrument(skip_all, fields(username = %body.username.chars().take(64).collect::<String>()))]
pub async fn register(
    state: web::Data<AppState>,
    origin: AuditOrigin,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let username =
        Username::parse(&body.username).map_err(|m| ApiError::invalid_field("username", m))?;
    let password = NewPassword::parse(SecretString::from(body.password.clone()))
        .map_err(|m| ApiError::invalid_field("password", m))?;
    if let Some(invite) = &body.invite {
        validate::secret_len("invite", invite, MAX_INVITE_BYTES)?;
    }
    let how = NewAccount::Registration {
        invite: body.invite.as_deref(),
    };
    let user = state
        .accounts
        .create_user(&username, password, how, &origin)
        .await?;
    Ok(HttpResponse::Created().json(Registered {
        id: user.id,
        username: user.username,
    }))
}

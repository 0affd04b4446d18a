//! Changing one's own password.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{MAX_PASSWORD_BYTES, TokenResponse, session_response};
use crate::state::AppState;
use crate::types::NewPassword;
use crate::web::error::ApiError;
use crate::web::extract::Auth;
use crate::web::validate::{self, Json};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// At least 12 characters, not a common password.
    #[schema(min_length = 12, max_length = 1024)]
    pub new_password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 200, description = "Changed; every other token is revoked", body = TokenResponse),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 429, body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    body: Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    validate::secret_len(
        "current_password",
        &body.current_password,
        MAX_PASSWORD_BYTES,
    )?;
    let new = NewPassword::parse(SecretString::from(body.new_password.clone()))
        .map_err(|m| ApiError::invalid_field("new_password", m))?;
    let current = SecretString::from(body.current_password.clone());
    let session = state
        .accounts
        .change_password(&auth, &current, new, auth.origin())
        .await?;
    Ok(session_response(&req, session))
}

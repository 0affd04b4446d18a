//! MFA enrolment (start, confirm with a first code) and its removal.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{MAX_CODE_BYTES, MAX_PASSWORD_BYTES, TokenResponse, session_response, with_session};
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::Auth;
use crate::web::validate::{self, Json};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    #[schema(min_length = 6, max_length = 6)]
    pub code: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaDisableRequest {
    pub password: String,
    /// A TOTP code or an unused recovery code.
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct MfaEnrolment {
    /// Base32 secret for manual entry.
    pub secret: String,
    pub otpauth_url: String,
    pub qr_png_base64: String,
}

/// MFA is on. The session cookie set alongside carries the same CSRF token as `tokens`.
#[derive(Serialize, ToSchema)]
pub struct MfaEnabled {
    /// Ten single-use recovery codes, shown only now.
    pub recovery_codes: Vec<String>,
    pub tokens: TokenResponse,
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/enable", tag = "auth",
    responses((status = 200, body = MfaEnrolment),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 409, body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn mfa_enable(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let enrolment = state
        .accounts
        .start_mfa_enrolment(&auth, auth.origin())
        .await?;
    Ok(HttpResponse::Ok().json(MfaEnrolment {
        secret: enrolment.secret,
        otpauth_url: enrolment.otpauth_url,
        qr_png_base64: enrolment.qr_png_base64,
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/verify", tag = "auth", request_body = CodeRequest,
    responses((status = 200, description = "MFA is on; every earlier token is revoked and one new session replaces them", body = MfaEnabled),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 409, body = crate::web::openapi::ErrorBody),
        (status = 429, body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn mfa_verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    body: Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    validate::secret_len("code", &body.code, MAX_CODE_BYTES)?;
    let enabled = state
        .accounts
        .confirm_mfa_enrolment(&auth, &body.code, auth.origin())
        .await?;
    let mut response = HttpResponse::Ok();
    let tokens = with_session(&req, &mut response, enabled.session);
    Ok(response.json(MfaEnabled {
        recovery_codes: enabled.recovery_codes,
        tokens,
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/disable", tag = "auth", request_body = MfaDisableRequest,
    responses((status = 200, body = TokenResponse),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 409, body = crate::web::openapi::ErrorBody),
        (status = 429, body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn mfa_disable(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    body: Json<MfaDisableRequest>,
) -> Result<HttpResponse, ApiError> {
    validate::secret_len("password", &body.password, MAX_PASSWORD_BYTES)?;
    validate::secret_len("code", &body.code, MAX_CODE_BYTES)?;
    let password = SecretString::from(body.password.clone());
    let session = state
        .accounts
        .disable_mfa(&auth, &password, &body.code, auth.origin())
        .await?;
    Ok(session_response(&req, session))
}

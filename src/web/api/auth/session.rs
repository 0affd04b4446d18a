//! Sign-in, the second factor, token refresh, sign-out and the caller's profile.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{MAX_CODE_BYTES, MAX_PASSWORD_BYTES, MAX_TOKEN_BYTES, TokenResponse, session_response};
use crate::auth::authenticate::Via;
use crate::domain::audit::AuditOrigin;
use crate::services::accounts::SignIn;
use crate::services::accounts::session::SecondFactor;
use crate::state::AppState;
use crate::store::audit::Actor;
use crate::web::error::ApiError;
use crate::web::extract::Auth;
use crate::web::validate::{self, Json};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[^\\x00-\\x1f\\x7f]+$")]
    pub username: String,
    #[schema(min_length = 1, max_length = 4096)]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaLoginRequest {
    /// The `mfa_token` from `POST /auth/login`.
    pub mfa_token: String,
    /// A 6-digit TOTP code; or give `recovery_code` instead.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub recovery_code: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Answer to a correct password when MFA is enabled: continue with `POST /auth/login/mfa`.
#[derive(Serialize, ToSchema)]
pub struct MfaChallenge {
    pub mfa_required: bool,
    pub mfa_token: String,
    pub expires_in: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    #[serde(serialize_with = "crate::web::validate::id_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub username: String,
    /// `access_token`, `session` or `api_key`.
    pub via: &'static str,
    #[serde(serialize_with = "crate::web::validate::opt_id_string")]
    #[schema(value_type = Option<String>)]
    pub api_key_id: Option<i64>,
    pub permissions: Vec<&'static str>,
    /// Guild id → permissions held there.
    pub guild_permissions: std::collections::BTreeMap<String, Vec<&'static str>>,
    pub mfa_enabled: bool,
    /// One of the user's roles requires MFA and it is not enabled: that role grants nothing.
    pub mfa_required: bool,
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "Signed in, or MFA required", body = TokenResponse),
        (status = 202, description = "Password correct; TOTP code required", body = MfaChallenge),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 429, body = crate::web::openapi::ErrorBody)))]
#[tracing::instrument(skip_all, fields(username = %body.username.chars().take(64).collect::<String>()))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: AuditOrigin,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let username = validate::text("username", &body.username, 1, 64)?;
    validate::secret_len("password", &body.password, MAX_PASSWORD_BYTES)?;
    let password = SecretString::from(body.password.clone());
    match state.accounts.sign_in(username, &password, &origin).await? {
        SignIn::Session(session) => Ok(session_response(&req, session)),
        SignIn::SecondFactorNeeded {
            mfa_token,
            expires_in,
        } => Ok(HttpResponse::Accepted().json(MfaChallenge {
            mfa_required: true,
            mfa_token,
            expires_in: expires_in.as_secs(),
        })),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/login/mfa", tag = "auth", request_body = MfaLoginRequest,
    responses((status = 200, body = TokenResponse),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 429, body = crate::web::openapi::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn login_mfa(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: AuditOrigin,
    body: Json<MfaLoginRequest>,
) -> Result<HttpResponse, ApiError> {
    validate::secret_len("mfa_token", &body.mfa_token, MAX_TOKEN_BYTES)?;
    let factor = match (&body.code, &body.recovery_code) {
        (Some(c), None) => {
            validate::secret_len("code", c, MAX_CODE_BYTES)?;
            SecondFactor::Totp(c)
        }
        (None, Some(r)) => {
            validate::secret_len("recovery_code", r, MAX_CODE_BYTES)?;
            SecondFactor::RecoveryCode(r)
        }
        _ => {
            return Err(ApiError::invalid_field(
                "code",
                "give exactly one of `code` and `recovery_code`",
            ));
        }
    };
    let session = state
        .accounts
        .sign_in_second_factor(&body.mfa_token, factor, &origin)
        .await?;
    Ok(session_response(&req, session))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 429, body = crate::web::openapi::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    state: web::Data<AppState>,
    origin: AuditOrigin,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    validate::secret_len("refresh_token", &body.refresh_token, MAX_TOKEN_BYTES)?;
    let tokens = state.accounts.refresh(&body.refresh_token, &origin).await?;
    // No session cookie comes with a refresh, so there is no CSRF token to give.
    Ok(HttpResponse::Ok().json(TokenResponse::new(tokens, String::new())))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Every token of the user is revoked"),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    state.accounts.sign_out(&auth, auth.origin()).await?;
    let mut gone = super::session_cookie(&req, String::new(), std::time::Duration::ZERO);
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn me(auth: Auth) -> Result<HttpResponse, ApiError> {
    // Everything comes from the authenticated principal: no database round trip.
    let (permissions, guild_permissions) = auth.grants.describe();
    let api_key_id = match &auth.actor {
        Actor::ApiKey { id, .. } => Some(*id),
        Actor::User { .. } | Actor::Discord { .. } | Actor::System => None,
    };
    Ok(HttpResponse::Ok().json(Me {
        id: auth.user_id,
        username: auth.username.clone(),
        via: match auth.via {
            Via::AccessToken => "access_token",
            Via::Session => "session",
            Via::ApiKey => "api_key",
        },
        api_key_id,
        permissions,
        guild_permissions,
        mfa_enabled: auth.mfa_enabled,
        mfa_required: auth.mfa_required,
    }))
}

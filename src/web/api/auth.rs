//! `/api/v1/auth/*`: sign-in (password, then TOTP when enrolled), token refresh with rotation,
//! sign-out, the caller's profile, password change, MFA enrolment and registration.

use std::sync::OnceLock;

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::tokens::{self, Extra, TokenType};
use crate::auth::{digest, password, totp};
use crate::domain::audit::AuditOrigin;
use crate::shared::ratelimit::Quota;
use crate::state::AppState;
use crate::store::audit::{Actor, NewAuditEntry};
use crate::store::users::Credentials;
use crate::store::{StoreError, instance_settings, invites, refresh_tokens, users};
use crate::types::{NewPassword, Username};
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, SESSION_COOKIE, Via, client_key, declare};
use crate::web::validate::{self, Json};

/// Sign-in attempts per account (by username) in 15 minutes, whatever the outcome.
pub const LOGIN_PER_ACCOUNT: Quota = Quota {
    limit: 10,
    window: std::time::Duration::from_secs(15 * 60),
};
/// Sign-in attempts per client address per minute.
pub const LOGIN_PER_IP: Quota = Quota::per_minute(60);
/// TOTP / recovery-code attempts per account in 5 minutes.
pub const MFA_PER_ACCOUNT: Quota = Quota {
    limit: 5,
    window: std::time::Duration::from_secs(5 * 60),
};
pub const MFA_PER_IP: Quota = Quota::per_minute(30);
pub const REFRESH_PER_IP: Quota = Quota::per_minute(60);
pub const REFRESH_PER_ACCOUNT: Quota = Quota::per_minute(20);

const REFRESH_DOMAIN: &str = "refresh_token";
const MAX_PASSWORD_BYTES: usize = 4096;
const MAX_TOKEN_BYTES: usize = 4096;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    login,
    login_mfa,
    refresh,
    logout,
    me,
    change_password,
    mfa_enable,
    mfa_verify,
    mfa_disable,
    register
))]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(declare("/auth/register").post(Access::Public, register))
        .service(declare("/auth/login").post(Access::Public, login))
        .service(declare("/auth/login/mfa").post(Access::Public, login_mfa))
        .service(declare("/auth/refresh").post(Access::Public, refresh))
        .service(declare("/auth/logout").post(Access::SignedIn, logout))
        .service(declare("/auth/me").get(Access::SignedIn, me))
        .service(declare("/auth/password").post(Access::SignedIn, change_password))
        .service(declare("/auth/mfa/enable").post(Access::SignedIn, mfa_enable))
        .service(declare("/auth/mfa/verify").post(Access::SignedIn, mfa_verify))
        .service(declare("/auth/mfa/disable").post(Access::SignedIn, mfa_disable));
}

// ---- bodies ----------------------------------------------------------------------------------

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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// At least 12 characters, not a common password.
    #[schema(min_length = 12, max_length = 1024)]
    pub new_password: String,
}

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

/// Tokens for a signed-in user. The session cookie is set alongside; `csrf_token` must be sent
/// as `X-CSRF-Token` on state-changing requests made with that cookie.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_expires_in: u64,
    pub csrf_token: String,
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

#[derive(Serialize, ToSchema)]
pub struct MfaEnrolment {
    /// Base32 secret for manual entry.
    pub secret: String,
    pub otpauth_url: String,
    pub qr_png_base64: String,
}

#[derive(Serialize, ToSchema)]
pub struct MfaEnabled {
    /// Ten single-use recovery codes, shown only now.
    pub recovery_codes: Vec<String>,
    pub tokens: TokenResponse,
}

#[derive(Serialize, ToSchema)]
pub struct Registered {
    #[serde(serialize_with = "crate::web::validate::id_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub username: String,
}

// ---- helpers ---------------------------------------------------------------------------------

async fn limit(state: &AppState, bucket: &str, key: &str, quota: Quota) -> Result<(), ApiError> {
    let d = state.rate_limiter.hit(bucket, key, quota).await;
    if d.allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited {
            retry_after_secs: d.reset_after.as_secs().max(1),
        })
    }
}

/// A hash of a random password, verified against when the username does not exist so that an
/// unknown user costs the same argon2 work as a wrong password.
async fn dummy_hash() -> Result<&'static str, ApiError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let h = web::block(|| password::hash(&password::generate()))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(DUMMY.get_or_init(|| h))
}

/// Runs argon2 on the blocking pool, so sign-ins never stall the executor.
async fn verify_password(pw: &str, stored: &str) -> Result<bool, ApiError> {
    let (pw, stored) = (SecretString::from(pw.to_owned()), stored.to_owned());
    match web::block(move || password::verify(&pw, &stored))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
    {
        Ok(ok) => Ok(ok),
        Err(password::PasswordError::MalformedHash) => Ok(false),
        Err(e) => Err(ApiError::Internal(e.into())),
    }
}

async fn hash_password(pw: NewPassword) -> Result<String, ApiError> {
    web::block(move || password::hash(pw.secret()))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Internal(e.into()))
}

fn user_actor(user: &Credentials) -> Actor {
    Actor::User {
        id: user.id,
        username: user.username.clone(),
    }
}

/// Issues an access token, a refresh token (a new family) and a session cookie.
async fn start_session(
    state: &AppState,
    req: &HttpRequest,
    user: &Credentials,
    token_version: i64,
    meta: &AuditOrigin,
) -> Result<HttpResponse, ApiError> {
    let tokens = issue_tokens(state, user.id, token_version, meta).await?;
    let session_csrf = tokens.csrf_token.clone();
    let (session, _) = tokens::issue(
        &state.secrets.jwt_secret_key,
        TokenType::Session,
        user.id,
        token_version,
        tokens::SESSION_TTL,
        Extra {
            csrf: Some(session_csrf),
            ..Extra::default()
        },
    )
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .cookie(session_cookie(req, session))
        .json(tokens))
}

fn session_cookie(req: &HttpRequest, value: String) -> Cookie<'static> {
    let secure = req.connection_info().scheme() == "https";
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(time::Duration::seconds(
            i64::try_from(tokens::SESSION_TTL.as_secs()).unwrap_or(0),
        ))
        .finish()
}

async fn issue_tokens(
    state: &AppState,
    user_id: i64,
    token_version: i64,
    meta: &AuditOrigin,
) -> Result<TokenResponse, ApiError> {
    let key = &state.secrets.jwt_secret_key;
    let internal = |e: tokens::TokenError| ApiError::Internal(e.into());
    let (access, _) = tokens::issue(
        key,
        TokenType::Access,
        user_id,
        token_version,
        tokens::ACCESS_TTL,
        Extra::default(),
    )
    .map_err(internal)?;
    let family = crate::ids::next_id();
    let (refresh, claims) = tokens::issue(
        key,
        TokenType::Refresh,
        user_id,
        token_version,
        tokens::REFRESH_TTL,
        Extra {
            family: Some(family),
            ..Extra::default()
        },
    )
    .map_err(internal)?;
    let hash = digest::keyed(&state.secrets.secret_key, REFRESH_DOMAIN, &refresh);
    refresh_tokens::create(
        &state.store,
        refresh_tokens::NewFamily {
            id: family,
            user_id,
            token_hash: &hash,
            token_version,
            ip: meta.ip.as_deref(),
            user_agent: meta.user_agent.as_deref(),
            expires_at: i64::try_from(claims.exp)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        },
    )
    .await?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: tokens::ACCESS_TTL.as_secs(),
        refresh_expires_in: tokens::REFRESH_TTL.as_secs(),
        csrf_token: digest::random_string(digest::ALPHANUMERIC, 32),
    })
}

/// The signed-in user behind `auth` (API keys cannot manage their creator's account).
async fn own_account(state: &AppState, auth: &Auth) -> Result<Credentials, ApiError> {
    if auth.via == Via::ApiKey {
        return Err(ApiError::BadRequest {
            code: "user_only",
            message: "this action needs a user's token, not an API key".into(),
        });
    }
    users::credentials_by_id(&state.store, auth.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)
}

/// Checks a TOTP code (replay refused) or, failing that, spends a recovery code.
async fn check_second_factor(
    state: &AppState,
    user: &Credentials,
    code: &str,
    allow_recovery: bool,
) -> Result<bool, ApiError> {
    let secret = user
        .mfa_secret
        .as_deref()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("MFA enabled without a secret")))?;
    let now = jsonwebtoken::get_current_timestamp();
    let step = totp::check(secret, code.trim(), now, user.mfa_last_step)
        .map_err(|e| ApiError::Internal(e.into()))?;
    if let Some(step) = step {
        return Ok(users::advance_mfa_step(&state.store, user.id, step).await?);
    }
    if allow_recovery && code.trim().len() > 6 {
        let hash = totp::recovery_digest(&state.secrets.secret_key, code);
        return Ok(users::use_recovery_code(&state.store, user.id, &hash).await?);
    }
    Ok(false)
}

fn invalid_code() -> ApiError {
    ApiError::BadRequest {
        code: "invalid_code",
        message: "code: invalid, expired or already used".into(),
    }
}

// ---- handlers --------------------------------------------------------------------------------

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
    meta: AuditOrigin,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let username = validate::text("username", &body.username, 1, 64)?;
    validate::secret_len("password", &body.password, MAX_PASSWORD_BYTES)?;
    limit(&state, "login:ip", client_key(&meta), LOGIN_PER_IP).await?;
    limit(
        &state,
        "login:account",
        &username.to_lowercase(),
        LOGIN_PER_ACCOUNT,
    )
    .await?;

    let user = users::credentials_by_username(&state.store, username).await?;
    // Always one argon2 verification, so unknown users and wrong passwords look alike.
    let stored = match &user {
        Some(u) => u.password_hash.clone(),
        None => dummy_hash().await?.to_owned(),
    };
    let password_ok = verify_password(&body.password, &stored).await?;
    let user = match user {
        Some(u) if password_ok && !u.disabled => u,
        other => {
            let (actor, reason) = match &other {
                Some(u) if u.disabled => (user_actor(u), "disabled"),
                Some(u) => (user_actor(u), "wrong_password"),
                None => (Actor::System, "unknown_user"),
            };
            state
                .audit
                .record(
                    NewAuditEntry::new(actor, "auth.login_failed")
                        .origin(meta.clone())
                        .details(json!({ "username": username, "reason": reason })),
                )
                .await?;
            // The same answer whatever went wrong, so accounts cannot be discovered.
            return Err(ApiError::Unauthorized);
        }
    };
    if user.mfa_enabled {
        let (mfa_token, _) = tokens::issue(
            &state.secrets.jwt_secret_key,
            TokenType::MfaChallenge,
            user.id,
            user.token_version,
            tokens::MFA_CHALLENGE_TTL,
            Extra::default(),
        )
        .map_err(|e| ApiError::Internal(e.into()))?;
        return Ok(HttpResponse::Accepted().json(MfaChallenge {
            mfa_required: true,
            mfa_token,
            expires_in: tokens::MFA_CHALLENGE_TTL.as_secs(),
        }));
    }
    signed_in(&state, &req, &user, &meta, json!({})).await
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
    meta: AuditOrigin,
    body: Json<MfaLoginRequest>,
) -> Result<HttpResponse, ApiError> {
    validate::secret_len("mfa_token", &body.mfa_token, MAX_TOKEN_BYTES)?;
    let (code, recovery) = match (&body.code, &body.recovery_code) {
        (Some(c), None) => (c.as_str(), false),
        (None, Some(r)) => (r.as_str(), true),
        _ => {
            return Err(ApiError::invalid_field(
                "code",
                "give exactly one of `code` and `recovery_code`",
            ));
        }
    };
    validate::secret_len(if recovery { "recovery_code" } else { "code" }, code, 64)?;
    limit(&state, "mfa:ip", client_key(&meta), MFA_PER_IP).await?;
    let claims = tokens::verify(
        &state.secrets.jwt_secret_key,
        &body.mfa_token,
        TokenType::MfaChallenge,
    )
    .map_err(|_| ApiError::Unauthorized)?;
    let user_id = claims.user_id().ok_or(ApiError::Unauthorized)?;
    limit(&state, "mfa:account", &user_id.to_string(), MFA_PER_ACCOUNT).await?;
    let user = users::credentials_by_id(&state.store, user_id)
        .await?
        .filter(|u| !u.disabled && u.mfa_enabled && u.token_version == claims.ver)
        .ok_or(ApiError::Unauthorized)?;
    let ok = if recovery {
        let hash = totp::recovery_digest(&state.secrets.secret_key, code);
        users::use_recovery_code(&state.store, user.id, &hash).await?
    } else {
        check_second_factor(&state, &user, code, false).await?
    };
    if !ok {
        state
            .audit
            .record(
                NewAuditEntry::new(user_actor(&user), "auth.login_failed")
                    .origin(meta.clone())
                    .details(json!({ "reason": "invalid_mfa_code", "recovery": recovery })),
            )
            .await?;
        return Err(invalid_code());
    }
    let second_factor = if recovery { "recovery_code" } else { "totp" };
    signed_in(&state, &req, &user, &meta, json!({ "mfa": second_factor })).await
}

/// The end of every successful sign-in (password alone, or password then second factor): the
/// audit entry is committed before the session exists, so no session lacks its entry.
async fn signed_in(
    state: &AppState,
    req: &HttpRequest,
    user: &users::Credentials,
    meta: &AuditOrigin,
    details: serde_json::Value,
) -> Result<HttpResponse, ApiError> {
    state
        .audit
        .record(
            NewAuditEntry::new(user_actor(user), "auth.login")
                .origin(meta.clone())
                .target(format!("user:{}", user.id))
                .details(details),
        )
        .await?;
    start_session(state, req, user, user.token_version, meta).await
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 429, body = crate::web::openapi::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    state: web::Data<AppState>,
    meta: AuditOrigin,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    validate::secret_len("refresh_token", &body.refresh_token, MAX_TOKEN_BYTES)?;
    limit(&state, "refresh:ip", client_key(&meta), REFRESH_PER_IP).await?;
    let claims = tokens::verify(
        &state.secrets.jwt_secret_key,
        &body.refresh_token,
        TokenType::Refresh,
    )
    .map_err(|_| ApiError::Unauthorized)?;
    let (user_id, family_id) = claims
        .user_id()
        .zip(claims.fam)
        .ok_or(ApiError::Unauthorized)?;
    limit(
        &state,
        "refresh:account",
        &user_id.to_string(),
        REFRESH_PER_ACCOUNT,
    )
    .await?;
    let family = refresh_tokens::find(&state.store, family_id)
        .await?
        .filter(|f| f.user_id == user_id)
        .ok_or(ApiError::Unauthorized)?;
    if family.revoked_at.is_some() || family.expires_at <= crate::ids::now_ms() {
        return Err(ApiError::Unauthorized);
    }
    let presented = digest::keyed(
        &state.secrets.secret_key,
        REFRESH_DOMAIN,
        &body.refresh_token,
    );
    let user = users::credentials_by_id(&state.store, user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let is_current = digest::matches(
        &state.secrets.secret_key,
        REFRESH_DOMAIN,
        &body.refresh_token,
        &family.current_token_hash,
    );
    if !is_current {
        // A rotated-out token came back: it has leaked. Revoke the whole family.
        refresh_tokens::revoke(&state.store, family.id).await?;
        state
            .audit
            .record(
                NewAuditEntry::new(user_actor(&user), "auth.refresh_reuse")
                    .origin(meta.clone())
                    .target(format!("refresh_family:{}", family.id)),
            )
            .await?;
        return Err(ApiError::Unauthorized);
    }
    if user.disabled || user.token_version != claims.ver || family.token_version != claims.ver {
        return Err(ApiError::Unauthorized);
    }
    let key = &state.secrets.jwt_secret_key;
    let internal = |e: tokens::TokenError| ApiError::Internal(e.into());
    let (new_refresh, _) = tokens::issue(
        key,
        TokenType::Refresh,
        user.id,
        user.token_version,
        tokens::REFRESH_TTL,
        Extra {
            family: Some(family.id),
            ..Extra::default()
        },
    )
    .map_err(internal)?;
    let new_hash = digest::keyed(&state.secrets.secret_key, REFRESH_DOMAIN, &new_refresh);
    if !refresh_tokens::rotate(&state.store, family.id, &presented, &new_hash).await? {
        // Lost a race with another use of the same token: treat as reuse.
        refresh_tokens::revoke(&state.store, family.id).await?;
        return Err(ApiError::Unauthorized);
    }
    let (access, _) = tokens::issue(
        key,
        TokenType::Access,
        user.id,
        user.token_version,
        tokens::ACCESS_TTL,
        Extra::default(),
    )
    .map_err(internal)?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token: access,
        refresh_token: new_refresh,
        token_type: "Bearer",
        expires_in: tokens::ACCESS_TTL.as_secs(),
        refresh_expires_in: tokens::REFRESH_TTL.as_secs(),
        csrf_token: String::new(),
    }))
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
    let user = own_account(&state, &auth).await?;
    users::bump_token_version(&state.store, user.id).await?;
    state.auth_cache.forget_user(user.id).await;
    state
        .audit
        .record(
            auth.entry("auth.logout")
                .target(format!("user:{}", user.id)),
        )
        .await?;
    let mut gone = session_cookie(&req, String::new());
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
    let user = own_account(&state, &auth).await?;
    limit(
        &state,
        "login:account",
        &user.username.to_lowercase(),
        LOGIN_PER_ACCOUNT,
    )
    .await?;
    if !verify_password(&body.current_password, &user.password_hash).await? {
        state
            .audit
            .record(
                auth.entry("auth.password_change_failed")
                    .target(format!("user:{}", user.id)),
            )
            .await?;
        return Err(ApiError::invalid_field(
            "current_password",
            "is not correct",
        ));
    }
    let hash = hash_password(new).await?;
    users::set_password(&state.store, user.id, &hash).await?;
    let version = users::bump_token_version(&state.store, user.id).await?;
    state.auth_cache.forget_user(user.id).await;
    state
        .audit
        .record(
            auth.entry("auth.password_changed")
                .target(format!("user:{}", user.id)),
        )
        .await?;
    start_session(&state, &req, &user, version, auth.origin()).await
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/enable", tag = "auth",
    responses((status = 200, body = MfaEnrolment),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 409, body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn mfa_enable(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let user = own_account(&state, &auth).await?;
    if user.mfa_enabled {
        return Err(ApiError::Conflict(
            "MFA is already enabled; disable it first".into(),
        ));
    }
    let secret = totp::new_secret();
    let enrolment =
        totp::enrolment(&secret, &user.username).map_err(|e| ApiError::Internal(e.into()))?;
    users::set_pending_mfa_secret(&state.store, user.id, &secret).await?;
    state
        .audit
        .record(
            auth.entry("auth.mfa_enrolment_started")
                .target(format!("user:{}", user.id)),
        )
        .await?;
    Ok(HttpResponse::Ok().json(MfaEnrolment {
        secret,
        otpauth_url: enrolment.otpauth_url,
        qr_png_base64: enrolment.qr_png_base64,
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/verify", tag = "auth", request_body = CodeRequest,
    responses((status = 200, body = MfaEnabled),
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
    validate::secret_len("code", &body.code, 64)?;
    let user = own_account(&state, &auth).await?;
    if user.mfa_enabled {
        return Err(ApiError::Conflict("MFA is already enabled".into()));
    }
    if user.mfa_secret.is_none() {
        return Err(ApiError::Conflict(
            "start with POST /api/v1/auth/mfa/enable".into(),
        ));
    }
    limit(&state, "mfa:account", &user.id.to_string(), MFA_PER_ACCOUNT).await?;
    if !check_second_factor(&state, &user, &body.code, false).await? {
        return Err(invalid_code());
    }
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| totp::recovery_digest(&state.secrets.secret_key, c))
        .collect();
    users::enable_mfa(&state.store, user.id, &hashes).await?;
    let version = users::bump_token_version(&state.store, user.id).await?;
    state.auth_cache.forget_user(user.id).await;
    state
        .audit
        .record(
            auth.entry("auth.mfa_enabled")
                .target(format!("user:{}", user.id)),
        )
        .await?;
    let tokens = issue_tokens(&state, user.id, version, auth.origin()).await?;
    let session = start_session(&state, &req, &user, version, auth.origin()).await?;
    let mut response = HttpResponse::Ok();
    for c in session.cookies() {
        response.cookie(c.into_owned());
    }
    Ok(response.json(MfaEnabled {
        recovery_codes: codes,
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
    validate::secret_len("code", &body.code, 64)?;
    let user = own_account(&state, &auth).await?;
    if !user.mfa_enabled {
        return Err(ApiError::Conflict("MFA is not enabled".into()));
    }
    limit(&state, "mfa:account", &user.id.to_string(), MFA_PER_ACCOUNT).await?;
    if !verify_password(&body.password, &user.password_hash).await? {
        return Err(ApiError::invalid_field("password", "is not correct"));
    }
    if !check_second_factor(&state, &user, &body.code, true).await? {
        return Err(invalid_code());
    }
    users::disable_mfa(&state.store, user.id).await?;
    let version = users::bump_token_version(&state.store, user.id).await?;
    state.auth_cache.forget_user(user.id).await;
    state
        .audit
        .record(
            auth.entry("auth.mfa_disabled")
                .target(format!("user:{}", user.id)),
        )
        .await?;
    start_session(&state, &req, &user, version, auth.origin()).await
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
    meta: AuditOrigin,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let username =
        Username::parse(&body.username).map_err(|m| ApiError::invalid_field("username", m))?;
    let password = NewPassword::parse(SecretString::from(body.password.clone()))
        .map_err(|m| ApiError::invalid_field("password", m))?;
    if let Some(invite) = &body.invite {
        validate::secret_len("invite", invite, 256)?;
    }
    limit(&state, "register:ip", client_key(&meta), LOGIN_PER_IP).await?;
    let open = instance_settings::registration_open(&state.store).await?;
    let invite_hash = body
        .invite
        .as_deref()
        .map(|i| invites::digest(&state.secrets.secret_key, i));
    if !open && invite_hash.is_none() {
        return Err(ApiError::Forbidden);
    }
    let hash = hash_password(password).await?;
    // With an invite, the invite is spent in the same transaction that creates the user.
    let created = match &invite_hash {
        Some(h) => invites::redeem(&state.store, h, username.as_str(), &hash).await,
        None => users::create(&state.store, username.as_str(), &hash, None).await,
    };
    let user = match created {
        Ok(u) => u,
        Err(StoreError::NotFound) => {
            return Err(ApiError::invalid_field(
                "invite",
                "is invalid, expired or used",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    state
        .audit
        .record(
            NewAuditEntry::new(
                Actor::User {
                    id: user.id,
                    username: user.username.clone(),
                },
                "users.registered",
            )
            .origin(meta.clone())
            .target(format!("user:{}", user.id))
            .details(json!({ "invite": invite_hash.is_some() })),
        )
        .await?;
    Ok(HttpResponse::Created().json(Registered {
        id: user.id,
        username: user.username,
    }))
}

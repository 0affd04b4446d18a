//! `/api/v1/auth/*`: sign-in (password, then TOTP when enrolled), token refresh with rotation,
//! sign-out and the caller's profile ([`session`]), password change ([`password`]), MFA
//! enrolment ([`mfa`]) and registration ([`register`]). Handlers check the body and call the
//! accounts service (`services::accounts`); this module turns its sessions into responses.

pub mod discord;
mod mfa;
mod password;
mod register;
mod session;

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::services::accounts::{Session, Tokens};
use crate::web::extract::{Access, SESSION_COOKIE, declare};

const MAX_PASSWORD_BYTES: usize = 4096;
const MAX_TOKEN_BYTES: usize = 4096;
/// TOTP and recovery codes.
const MAX_CODE_BYTES: usize = 64;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    session::login,
    session::login_mfa,
    session::refresh,
    session::logout,
    session::me,
    password::change_password,
    mfa::mfa_enable,
    mfa::mfa_verify,
    mfa::mfa_disable,
    register::register,
    discord::status,
    discord::link_status,
    discord::start_link,
    discord::unlink,
    discord::role_switch,
    discord::set_role_switch
))]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(declare("/auth/register").post(Access::Public, register::register))
        .service(declare("/auth/login").post(Access::Public, session::login))
        .service(declare("/auth/login/mfa").post(Access::Public, session::login_mfa))
        .service(declare("/auth/refresh").post(Access::Public, session::refresh))
        .service(declare("/auth/logout").post(Access::SignedIn, session::logout))
        .service(declare("/auth/me").get(Access::SignedIn, session::me))
        .service(declare("/auth/password").post(Access::SignedIn, password::change_password))
        .service(declare("/auth/mfa/enable").post(Access::SignedIn, mfa::mfa_enable))
        .service(declare("/auth/mfa/verify").post(Access::SignedIn, mfa::mfa_verify))
        .service(declare("/auth/mfa/disable").post(Access::SignedIn, mfa::mfa_disable))
        .configure(discord::configure);
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

impl TokenResponse {
    /// `csrf_token` is empty when no session cookie comes with the tokens (a refresh).
    fn new(tokens: Tokens, csrf_token: String) -> Self {
        TokenResponse {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_type: "Bearer",
            expires_in: tokens.expires_in.as_secs(),
            refresh_expires_in: tokens.refresh_expires_in.as_secs(),
            csrf_token,
        }
    }
}

/// Sets the session's cookie on `response` and returns the tokens for its body: the body's
/// CSRF token is the one the cookie carries.
fn with_session(
    req: &HttpRequest,
    response: &mut HttpResponseBuilder,
    session: Session,
) -> TokenResponse {
    response.cookie(session_cookie(
        req,
        session.cookie_value,
        session.cookie_max_age,
    ));
    TokenResponse::new(session.tokens, session.csrf_token)
}

pub(crate) fn session_cookie(
    req: &HttpRequest,
    value: String,
    max_age: std::time::Duration,
) -> Cookie<'static> {
    // Secure only when the browser really speaks HTTPS (through a trusted proxy): a Secure
    // cookie over plain HTTP would never be sent back.
    let secure = crate::web::client::origin(req).https;
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(0),
        ))
        .finish()
}

/// `200 OK` with the session's cookie and tokens.
fn session_response(req: &HttpRequest, session: Session) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    let body = with_session(req, &mut response, session);
    response.json(body)
}

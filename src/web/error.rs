//! `ApiError`: the HTTP boundary's one error type, and the JSON shape every error response has:
//! `{"error":{"code":"snake_case_code","message":"human text"}}`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::auth::authenticate::AuthError;
use crate::services::accounts::AccountError;
use crate::store::StoreError;

#[derive(thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("you do not have permission to do this")]
    Forbidden,
    /// A refusal whose reason the caller should see (a role's command policy, for example).
    #[error("{0}")]
    ForbiddenBecause(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the 1 MiB limit")]
    PayloadTooLarge,
    #[error("the body must be JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// Anything unexpected: logged with its cause, shown to the client as a bare 500.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Internal(e) => write!(f, "Internal({e:#})"),
            other => write!(f, "{other}"),
        }
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "bad_request",
            message: message.into(),
        }
    }

    /// A 400 naming the field (or parameter) at fault.
    pub fn invalid_field(field: &str, problem: impl fmt::Display) -> Self {
        ApiError::BadRequest {
            code: "invalid_field",
            message: format!("{field}: {problem}"),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden | ApiError::ForbiddenBecause(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize)]
pub struct ErrorDetail<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// The JSON error body, shared with the middleware that reshapes framework errors.
pub fn error_json(code: &str, message: &str) -> String {
    serde_json::to_string(&ErrorBody {
        error: ErrorDetail { code, message },
    })
    .unwrap_or_else(|_| r#"{"error":{"code":"internal_error","message":"internal error"}}"#.into())
}

/// Attached to every error response (in its extensions) so that the request's one log line
/// (`web::request_span`) can name the code and the cause, whichever layer answered: a handler,
/// the access check, the edge or the framework.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: &'static str,
    /// What the operator needs: the message, and for internal errors the cause chain.
    pub detail: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        // No wildcard arm: a new variant does not compile until its status is decided.
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::ForbiddenBecause(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/json");
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::Unauthorized => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            _ => {}
        }
        let mut response = response.body(error_json(self.code(), &self.to_string()));
        // Logged once, by the request span: never here, which would make it two lines.
        response.extensions_mut().insert(ErrorInfo {
            code: self.code(),
            detail: format!("{self:?}"),
        });
        response
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Unauthenticated => ApiError::Unauthorized,
            AccountError::UserOnly => ApiError::BadRequest {
                code: "user_only",
                message: e.to_string(),
            },
            AccountError::WrongCurrentPassword => {
                ApiError::invalid_field("current_password", "is not correct")
            }
            AccountError::WrongPassword => ApiError::invalid_field("password", "is not correct"),
            AccountError::InvalidCode => ApiError::BadRequest {
                code: "invalid_code",
                message: "code: invalid, expired or already used".into(),
            },
            AccountError::MfaAlreadyEnabled => {
                ApiError::Conflict("MFA is already enabled; disable it first".into())
            }
            AccountError::MfaNotStarted => {
                ApiError::Conflict("start with POST /api/v1/auth/mfa/enable".into())
            }
            AccountError::MfaNotEnabled => ApiError::Conflict(e.to_string()),
            AccountError::RegistrationClosed => ApiError::Forbidden,
            AccountError::InvalidInvite => {
                ApiError::invalid_field("invite", "is invalid, expired or used")
            }
            AccountError::UsernameTaken(_) => ApiError::Conflict(e.to_string()),
            AccountError::UnknownRole(role) => {
                ApiError::invalid_field("role", format!("`{role}` does not exist"))
            }
            AccountError::RateLimited { retry_after } => ApiError::RateLimited {
                retry_after_secs: retry_after.as_secs().max(1),
            },
            AccountError::Audit(e) => e.into(),
            AccountError::Store(e) => e.into(),
            AccountError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => ApiError::Unauthorized,
            AuthError::CsrfFailed => ApiError::BadRequest {
                code: "csrf_failed",
                message: e.to_string(),
            },
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("resource not found".into()),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Unavailable(_) => {
                ApiError::Unavailable("the database is unavailable; try again shortly".into())
            }
            StoreError::Migration(_) | StoreError::Database(_) | StoreError::Corrupt(_) => {
                ApiError::Internal(anyhow::Error::new(e))
            }
        }
    }
}

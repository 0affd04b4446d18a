//! `ApiError`: the HTTP boundary's one error type, and the JSON shape every error response has:
//! `{"error":{"code":"snake_case_code","message":"human text"}}`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::actors::audit::AuditError;
use crate::actors::rcon::RconError;
use crate::auth::authenticate::AuthError;
use crate::minecraft::MinecraftError;
use crate::services::accounts::AccountError;
use crate::services::admin::AdminError;
use crate::services::guild_config::GuildConfigError;
use crate::services::moderation::ModerationError;
use crate::store::StoreError;

/// The statuses a specific refusal may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalStatus {
    /// The request is well formed but the bot cannot do it (402 would be wrong, 409 is right).
    Conflict,
    /// The caller (or the bot) lacks a permission on Discord's side.
    Forbidden,
    /// The thing acted on does not exist.
    NotFound,
}

impl RefusalStatus {
    fn code(self) -> StatusCode {
        match self {
            RefusalStatus::Conflict => StatusCode::CONFLICT,
            RefusalStatus::Forbidden => StatusCode::FORBIDDEN,
            RefusalStatus::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

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
    /// A refusal with its own stable code, so that a client can act on it (`already_banned`,
    /// `target_above_bot`, `unknown_guild`, …). `status` is decided where the error is mapped.
    #[error("{message}")]
    Refused {
        status: RefusalStatus,
        code: &'static str,
        message: String,
    },
    /// `If-Match` named a version that is no longer current.
    #[error("{0}")]
    PreconditionFailed(String),
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
            ApiError::Refused { code, .. } => code,
            ApiError::PreconditionFailed(_) => "precondition_failed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
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
            ApiError::Refused { status, .. } => status.code(),
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
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

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        // No wildcard arm: a new variant does not compile until its status is decided.
        match e {
            AdminError::Invalid { field, problem } => ApiError::invalid_field(&field, problem),
            AdminError::NotAllowed => ApiError::Forbidden,
            // The answer these routes have always given for an id that names nothing.
            AdminError::UnknownUser(_) | AdminError::UnknownRole(_) => {
                ApiError::from(StoreError::NotFound)
            }
            AdminError::UnknownKey => ApiError::NotFound(e.to_string()),
            AdminError::LastAdministrator | AdminError::AdminRoleIsFixed => {
                ApiError::Conflict(e.to_string())
            }
            AdminError::Account(account) => account.into(),
            AdminError::Audit(audit) => audit.into(),
            AdminError::Store(store) => store.into(),
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

impl From<crate::services::discord_sign_in::DiscordAccountError> for ApiError {
    fn from(e: crate::services::discord_sign_in::DiscordAccountError) -> Self {
        use crate::services::discord_sign_in::DiscordAccountError as E;
        let message = e.to_string();
        match e {
            E::NotConfigured => {
                ApiError::refused(RefusalStatus::NotFound, "discord_not_configured", message)
            }
            E::NotLinked => {
                ApiError::refused(RefusalStatus::NotFound, "discord_not_linked", message)
            }
            E::AlreadyLinked => {
                ApiError::refused(RefusalStatus::Conflict, "discord_already_linked", message)
            }
            E::PasswordRequired => {
                ApiError::refused(RefusalStatus::Conflict, "password_required", message)
            }
            E::UserOnly => ApiError::BadRequest {
                code: "user_only",
                message,
            },
            E::RoleDoesNotRequireMfa => ApiError::refused(
                RefusalStatus::Conflict,
                "role_does_not_require_mfa",
                message,
            ),
            E::RateLimited { retry_after } => ApiError::RateLimited {
                retry_after_secs: retry_after.as_secs().max(1),
            },
            E::Audit(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl ApiError {
    fn refused(status: RefusalStatus, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Refused {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        // The action must not be acknowledged without its audit entry.
        ApiError::Unavailable(format!("{e}; the action was not confirmed"))
    }
}

impl From<GuildConfigError> for ApiError {
    fn from(e: GuildConfigError) -> Self {
        // No wildcard arm: a new variant does not compile until its status is decided.
        match e {
            GuildConfigError::UnknownGuild(_) => {
                ApiError::refused(RefusalStatus::NotFound, "unknown_guild", e.to_string())
            }
            GuildConfigError::NothingToChange => ApiError::BadRequest {
                code: "invalid_body",
                message: e.to_string(),
            },
            GuildConfigError::VersionMismatch { .. } => ApiError::PreconditionFailed(e.to_string()),
            GuildConfigError::Store(store) => store.into(),
            GuildConfigError::Audit(audit) => audit.into(),
        }
    }
}

impl From<ModerationError> for ApiError {
    fn from(e: ModerationError) -> Self {
        use RefusalStatus::{Conflict, Forbidden, NotFound};
        let message = e.to_string();
        let refused = |status, code| ApiError::refused(status, code, message.clone());
        // No wildcard arm: a new refusal must decide its status and code here.
        match e {
            ModerationError::UnknownGuild(_) => refused(NotFound, "unknown_guild"),
            ModerationError::NotAMember => refused(NotFound, "member_not_found"),
            ModerationError::InvokerMissing(_) => refused(Forbidden, "invoker_missing_permission"),
            ModerationError::BotMissing(_) => refused(Conflict, "bot_missing_permission"),
            ModerationError::TargetIsSelf(_) => refused(Conflict, "cannot_moderate_self"),
            ModerationError::TargetIsBot(_) => refused(Conflict, "cannot_moderate_bot"),
            ModerationError::TargetIsOwner => refused(Conflict, "cannot_moderate_owner"),
            ModerationError::TargetAboveInvoker => refused(Conflict, "target_above_invoker"),
            ModerationError::TargetAboveBot => refused(Conflict, "target_above_bot"),
            ModerationError::AlreadyBanned => refused(Conflict, "already_banned"),
            ModerationError::NotBanned => refused(Conflict, "not_banned"),
            ModerationError::DiscordRefused(_) => refused(Conflict, "discord_refused"),
            ModerationError::NotConnected | ModerationError::Discord(_) => {
                ApiError::Unavailable(message)
            }
            ModerationError::Store(store) => store.into(),
            ModerationError::Audit(audit) => audit.into(),
        }
    }
}

use crate::minecraft::links::LinkError;

impl From<MinecraftError> for ApiError {
    fn from(e: MinecraftError) -> Self {
        // No wildcard arm: a new variant does not compile until its status is decided.
        match e {
            MinecraftError::Invalid { field, problem } => ApiError::invalid_field(field, problem),
            MinecraftError::UnknownServer(_)
            | MinecraftError::NoServerForGuild
            | MinecraftError::UnknownSchedule(_)
            | MinecraftError::UnknownRole(_) => ApiError::NotFound(e.to_string()),
            MinecraftError::NotAllowed { .. } => ApiError::ForbiddenBecause(e.to_string()),
            MinecraftError::EnvironmentManaged(_) | MinecraftError::Disabled(_) => {
                ApiError::Conflict(e.to_string())
            }
            MinecraftError::Rcon(rcon) => match rcon {
                RconError::Disabled => ApiError::Conflict(rcon.to_string()),
                RconError::Removed => ApiError::NotFound(rcon.to_string()),
                RconError::AuthFailed
                | RconError::Unreachable(_)
                | RconError::Timeout(_)
                | RconError::ConnectionLost(_)
                | RconError::Protocol(_)
                | RconError::Reconnecting { .. }
                | RconError::NotAnswering { .. }
                | RconError::Restarted => {
                    ApiError::Unavailable(format!("Minecraft server: {rcon}"))
                }
            },
            MinecraftError::Store(store) => ApiError::from(store),
            MinecraftError::Audit(audit) => ApiError::from(audit),
            MinecraftError::Crypto(crypto) => ApiError::Internal(anyhow::Error::new(crypto)),
        }
    }
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> Self {
        use RefusalStatus::{Conflict, NotFound};
        // No wildcard arm: a new variant does not compile until its status is decided.
        match e {
            LinkError::InvalidName(_) => ApiError::BadRequest {
                code: "invalid_minecraft_name",
                message: e.to_string(),
            },
            LinkError::PlayerNotOnline(_) => {
                ApiError::refused(Conflict, "player_not_online", e.to_string())
            }
            LinkError::NameTaken(_) => {
                ApiError::refused(Conflict, "minecraft_name_taken", e.to_string())
            }
            LinkError::AlreadyLinked(_) => {
                ApiError::refused(Conflict, "already_linked", e.to_string())
            }
            LinkError::NotLinked => ApiError::refused(NotFound, "not_linked", e.to_string()),
            LinkError::NoPendingCode => {
                ApiError::refused(NotFound, "no_pending_code", e.to_string())
            }
            LinkError::CodeExpired => ApiError::BadRequest {
                code: "code_expired",
                message: e.to_string(),
            },
            LinkError::WrongCode { .. } => ApiError::BadRequest {
                code: "wrong_code",
                message: e.to_string(),
            },
            LinkError::RateLimited { retry_after } => ApiError::RateLimited {
                retry_after_secs: retry_after.as_secs().max(1),
            },
            LinkError::NotAMember => ApiError::refused(NotFound, "member_not_found", e.to_string()),
            LinkError::WhitelistRefused(_) => {
                ApiError::refused(Conflict, "whitelist_refused", e.to_string())
            }
            LinkError::Discord(_) => ApiError::Unavailable(e.to_string()),
            LinkError::Minecraft(e) => ApiError::from(e),
            LinkError::Store(e) => ApiError::from(e),
            LinkError::Audit(e) => ApiError::from(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;

    use super::*;
    use crate::domain::Snowflake;

    #[test]
    fn each_moderation_refusal_has_its_own_code_and_outages_are_unavailable() {
        let cases: Vec<(ModerationError, u16, &str)> = vec![
            (
                ModerationError::UnknownGuild(Snowflake::new(1).unwrap()),
                404,
                "unknown_guild",
            ),
            (ModerationError::NotAMember, 404, "member_not_found"),
            (
                ModerationError::InvokerMissing("Kick Members"),
                403,
                "invoker_missing_permission",
            ),
            (
                ModerationError::BotMissing("Kick Members"),
                409,
                "bot_missing_permission",
            ),
            (
                ModerationError::TargetIsSelf("kick"),
                409,
                "cannot_moderate_self",
            ),
            (
                ModerationError::TargetIsBot("kick"),
                409,
                "cannot_moderate_bot",
            ),
            (ModerationError::TargetIsOwner, 409, "cannot_moderate_owner"),
            (
                ModerationError::TargetAboveInvoker,
                409,
                "target_above_invoker",
            ),
            (ModerationError::TargetAboveBot, 409, "target_above_bot"),
            (ModerationError::AlreadyBanned, 409, "already_banned"),
            (ModerationError::NotBanned, 409, "not_banned"),
            (
                ModerationError::DiscordRefused("Missing Access (403)".into()),
                409,
                "discord_refused",
            ),
            (ModerationError::NotConnected, 503, "unavailable"),
            (
                ModerationError::Discord("Discord could not be reached".into()),
                503,
                "unavailable",
            ),
            (
                ModerationError::Audit(AuditError::QueueFull),
                503,
                "unavailable",
            ),
            (
                ModerationError::Store(StoreError::Unavailable("connection refused".into())),
                503,
                "unavailable",
            ),
        ];
        for (error, status, code) in cases {
            let label = format!("{error:?}");
            let api = ApiError::from(error);
            assert_eq!(
                (api.status_code().as_u16(), api.code()),
                (status, code),
                "{label}"
            );
        }
    }

    #[test]
    fn each_administration_refusal_keeps_the_status_code_and_message_of_the_routes() {
        let cases: Vec<(AdminError, u16, &str, &str)> = vec![
            (
                AdminError::invalid("roles[1].role", "no such role"),
                400,
                "invalid_field",
                "roles[1].role: no such role",
            ),
            (
                AdminError::NotAllowed,
                403,
                "forbidden",
                "you do not have permission to do this",
            ),
            (
                AdminError::UnknownUser(7),
                404,
                "not_found",
                "resource not found",
            ),
            (
                AdminError::UnknownRole(7),
                404,
                "not_found",
                "resource not found",
            ),
            (AdminError::UnknownKey, 404, "not_found", "no such API key"),
            (
                AdminError::LastAdministrator,
                409,
                "conflict",
                crate::auth::lockout::REFUSAL,
            ),
            (
                AdminError::AdminRoleIsFixed,
                409,
                "conflict",
                "the admin role always holds every permission",
            ),
            (
                AdminError::Account(AccountError::UsernameTaken("alice".into())),
                409,
                "conflict",
                "username `alice` is taken",
            ),
            (
                AdminError::Store(StoreError::Conflict("role `ops` exists".into())),
                409,
                "conflict",
                "role `ops` exists",
            ),
            (
                AdminError::Store(StoreError::Unavailable("connection refused".into())),
                503,
                "unavailable",
                "the database is unavailable; try again shortly",
            ),
        ];
        for (error, status, code, message) in cases {
            let label = format!("{error:?}");
            let api = ApiError::from(error);
            assert_eq!(
                (
                    api.status_code().as_u16(),
                    api.code(),
                    api.to_string().as_str()
                ),
                (status, code, message),
                "{label}"
            );
        }
        let audit = ApiError::from(AdminError::Audit(AuditError::QueueFull));
        assert_eq!(
            (audit.status_code().as_u16(), audit.code()),
            (503, "unavailable")
        );
    }

    #[test]
    fn an_unreachable_or_slow_rcon_server_is_unavailable_not_refused() {
        use std::time::Duration;
        for rcon in [
            RconError::Unreachable("connection refused".into()),
            RconError::Timeout(Duration::from_secs(1)),
            RconError::ConnectionLost("reset".into()),
            RconError::AuthFailed,
        ] {
            let api = ApiError::from(MinecraftError::Rcon(rcon));
            assert_eq!(
                (api.status_code().as_u16(), api.code()),
                (503, "unavailable")
            );
        }
        let api = ApiError::from(MinecraftError::Store(StoreError::Unavailable(
            "down".into(),
        )));
        assert_eq!(api.code(), "unavailable");
    }
}

//! `POST /api/v1/guilds/{guild_id}/moderation/{action}`: the dashboard's and API clients' way to
//! moderate, through the same service as the slash commands (same checks on the bot's side,
//! same case, same audit entry). The caller is authorised by RBAC (`moderation.act` for the
//! guild), so there is no Discord invoker to check.

use serde::Deserialize;

use super::discord_common::parse_guild_id;
use crate::actors::gateway::{GetBotStatus, GetHttp};
use crate::bot::input::{MAX_BAN, MAX_TIMEOUT, ModDuration, Reason};
use crate::services::moderation::{self, Action, Request};
use crate::state::AppState;
use crate::store::audit::Actor;
use crate::store::cases::CaseRow;
use crate::web::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModerationBody {
    /// The target's Discord user id (a string, as snowflakes exceed JavaScript's integers).
    pub user_id: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// `timeout` (required) and `ban` (optional, temporary): e.g. `10m`, `7d`.
    #[serde(default)]
    pub duration: Option<String>,
    /// `ban` only: days of messages to delete, 0 to 7.
    #[serde(default)]
    pub delete_message_days: Option<u8>,
}

/// Parses the action and its body; every problem names its field.
pub fn parse_action(
    action: &str,
    body: &ModerationBody,
) -> Result<(u64, Action, Option<Reason>), ApiError> {
    let target = match body.user_id.trim().parse::<u64>() {
        Ok(id) if id > 0 => id,
        _ => {
            return Err(ApiError::invalid_field(
                "user_id",
                format!("`{}` is not a Discord user id", body.user_id),
            ));
        }
    };
    let reason = body
        .reason
        .as_deref()
        .map(Reason::parse)
        .transpose()
        .map_err(|p| ApiError::invalid_field("reason", p))?
        .flatten();
    let duration = |max| {
        body.duration
            .as_deref()
            .map(|d| ModDuration::parse(d, max).map_err(|p| ApiError::invalid_field("duration", p)))
            .transpose()
    };
    let no_extra = |field: &str, present: bool| {
        if present {
            Err(ApiError::invalid_field(
                field,
                format!("does not apply to `{action}`"),
            ))
        } else {
            Ok(())
        }
    };
    let action = match action {
        "warn" | "kick" | "unban" | "untimeout" => {
            no_extra("duration", body.duration.is_some())?;
            no_extra("delete_message_days", body.delete_message_days.is_some())?;
            match action {
                "warn" => Action::Warn,
                "kick" => Action::Kick,
                "unban" => Action::Unban,
                _ => Action::Untimeout,
            }
        }
        "ban" => {
            let days = body.delete_message_days.unwrap_or(0);
            if days > 7 {
                return Err(ApiError::invalid_field(
                    "delete_message_days",
                    format!("{days} is not between 0 and 7"),
                ));
            }
            Action::Ban {
                delete_message_days: days,
                duration: duration(MAX_BAN)?,
            }
        }
        "timeout" => {
            no_extra("delete_message_days", body.delete_message_days.is_some())?;
            Action::Timeout {
                duration: duration(MAX_TIMEOUT)?.ok_or_else(|| {
                    ApiError::invalid_field("duration", "is required for a timeout")
                })?,
            }
        }
        other => {
            return Err(ApiError::invalid_field(
                "action",
                format!("`{other}` is not one of warn, kick, ban, unban, timeout, untimeout"),
            ));
        }
    };
    Ok((target, action, reason))
}

/// Runs a moderation action for an authorised API caller; returns the case.
#[tracing::instrument(skip(state, body, actor), fields(actor = %actor.label()))]
pub async fn moderate(
    state: &AppState,
    actor: Actor,
    guild_id: &str,
    action: &str,
    body: &ModerationBody,
    request_id: Option<String>,
    ip: Option<String>,
) -> Result<CaseRow, ApiError> {
    let guild = parse_guild_id(guild_id)?;
    let (target, action, reason) = parse_action(action, body)?;
    let http = state
        .gateway
        .send(GetHttp)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::Unavailable("the Discord gateway is not connected".into()))?;
    let me = match state
        .gateway
        .send(GetBotStatus)
        .await
        .ok()
        .and_then(|s| s.bot_user_id)
        .and_then(|id| id.parse::<u64>().ok())
    {
        Some(id) => id,
        None => http
            .get_current_user()
            .await
            .map_err(|e| ApiError::Unavailable(moderation::describe_discord_error(&e)))?
            .id
            .get(),
    };
    let done = moderation::act(
        state,
        &http,
        me,
        Request {
            guild_id: guild as u64,
            target,
            action,
            reason,
            actor,
            invoker: None,
            bot_permissions: None,
            request_id,
            ip,
        },
    )
    .await?;
    Ok(done.case)
}

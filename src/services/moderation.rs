//! Moderation actions, shared by the slash commands and `POST /api/v1/guilds/{id}/moderation/…`.
//! Every action is checked completely before anything changes (guild known, permissions of the
//! invoker and of the bot, role hierarchy, protected targets), then carried out on Discord,
//! numbered as a case, written to the audit log (the caller is answered only once the entry is
//! committed), and announced in the guild's log channel when one is set.

use std::time::Duration;

use serenity::builder::{CreateEmbed, CreateMessage, EditMember};
use serenity::http::{Http, HttpError};
use serenity::model::Permissions;
use serenity::model::Timestamp;
use serenity::model::id::{ChannelId, GuildId, UserId};

use crate::actors::audit::{AuditError, AuditLog};
use crate::domain::Snowflake;
use crate::domain::audit::AuditOrigin;
use crate::domain::moderation::{Action, Reason};
use crate::ids::now_ms;
use crate::services::discord::DiscordLink;
use crate::services::guild_config::GuildConfigCache;
use crate::store::audit::{Actor, NewAuditEntry};
use crate::store::cases::{CaseRow, NewCase};
use crate::store::guilds::GuildRow;
use crate::store::{Store, StoreError};

/// Due temporary bans lifted per sweep; the rest wait for the next one.
const SWEEP_BATCH: i64 = 50;

/// The Discord permission both the invoker and the bot need for an action.
fn permission(action: &Action) -> (Permissions, &'static str) {
    match action {
        Action::Warn | Action::Timeout { .. } | Action::Untimeout => {
            (Permissions::MODERATE_MEMBERS, "Timeout Members")
        }
        Action::Kick => (Permissions::KICK_MEMBERS, "Kick Members"),
        Action::Ban { .. } | Action::Unban => (Permissions::BAN_MEMBERS, "Ban Members"),
    }
}

/// The Discord member who invoked a slash command, as the interaction describes them.
#[derive(Debug, Clone)]
pub struct Invoker {
    pub user_id: Snowflake,
    pub roles: Vec<Snowflake>,
    /// Their permissions in the channel, computed by Discord.
    pub permissions: Permissions,
    /// Holds the guild's configured moderator role (which grants moderation on its own).
    pub has_mod_role: bool,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub guild_id: Snowflake,
    pub target: Snowflake,
    pub action: Action,
    pub reason: Option<Reason>,
    /// Who is recorded in the case and the audit log.
    pub actor: Actor,
    /// `None` when the action comes from the API: the dashboard user was authorised by RBAC.
    pub invoker: Option<Invoker>,
    /// The bot's permissions as the interaction reports them; computed from roles otherwise.
    pub bot_permissions: Option<Permissions>,
    /// Where the request came from, for the audit entry.
    pub origin: AuditOrigin,
}

#[derive(Debug, thiserror::Error)]
pub enum ModerationError {
    #[error("the bot is not in guild {0}; has it been added to it?")]
    UnknownGuild(Snowflake),
    #[error("you need the {0} permission (or the moderator role) to do this")]
    InvokerMissing(&'static str),
    #[error("the bot needs the {0} permission to do this")]
    BotMissing(&'static str),
    #[error("you cannot {0} yourself")]
    TargetIsSelf(&'static str),
    #[error("the bot will not {0} itself")]
    TargetIsBot(&'static str),
    #[error("the server owner cannot be moderated")]
    TargetIsOwner,
    #[error("that member's highest role is not below yours")]
    TargetAboveInvoker,
    #[error("that member's highest role is not below the bot's; move the bot's role higher")]
    TargetAboveBot,
    #[error("that user is not a member of this server")]
    NotAMember,
    #[error("that user is already banned")]
    AlreadyBanned,
    #[error("that user is not banned")]
    NotBanned,
    #[error("the bot is not connected to Discord")]
    NotConnected,
    /// Discord answered with a refusal (4xx) the checks above did not foresee.
    #[error("Discord refused the request: {0}")]
    DiscordRefused(String),
    /// Discord could not be reached or failed (5xx).
    #[error("Discord is unavailable: {0}")]
    Discord(String),
    #[error("the case could not be saved")]
    Store(#[from] StoreError),
    #[error("the audit log could not be written")]
    Audit(#[from] AuditError),
}

/// What a case list is narrowed to; `None` leaves a criterion out.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub user: Option<Snowflake>,
    /// One of the action names (`warn`, `ban`, …).
    pub action: Option<String>,
    /// Text the reason contains (case-insensitive).
    pub search: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Done {
    pub case: CaseRow,
    pub summary: String,
}

fn discord_error(e: serenity::Error) -> ModerationError {
    match http_status(&e) {
        Some(status) if (400..500).contains(&status) => {
            ModerationError::DiscordRefused(describe_discord_error(&e))
        }
        Some(_) | None => ModerationError::Discord(describe_discord_error(&e)),
    }
}

/// A short description of a Discord error that never includes request URLs (they may carry an
/// interaction token).
pub fn describe_discord_error(e: &serenity::Error) -> String {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            format!("{} ({})", r.error.message, r.status_code.as_u16())
        }
        serenity::Error::Http(_) => "Discord could not be reached".into(),
        other => other.to_string(),
    }
}

fn http_status(e: &serenity::Error) -> Option<u16> {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => Some(r.status_code.as_u16()),
        _ => None,
    }
}

fn snowflakes(ids: &[serenity::model::id::RoleId]) -> Vec<Snowflake> {
    ids.iter()
        .filter_map(|r| Snowflake::new(r.get()).ok())
        .collect()
}

fn has(perms: Permissions, needed: Permissions) -> bool {
    perms.contains(Permissions::ADMINISTRATOR) || perms.contains(needed)
}

/// The position of a member's highest role (0 for @everyone only).
fn top_position(roles: &[serenity::model::guild::Role], member_roles: &[Snowflake]) -> u16 {
    roles
        .iter()
        .filter(|r| member_roles.iter().any(|m| m.get() == r.id.get()))
        .map(|r| r.position)
        .max()
        .unwrap_or(0)
}

fn permissions_of(
    roles: &[serenity::model::guild::Role],
    guild_id: Snowflake,
    member_roles: &[Snowflake],
) -> Permissions {
    roles
        .iter()
        .filter(|r| {
            r.id.get() == guild_id.get() || member_roles.iter().any(|m| m.get() == r.id.get())
        })
        .fold(Permissions::empty(), |acc, r| acc | r.permissions)
}

/// Runs moderation actions: the one path the slash commands, the API and the ban sweeper share.
#[derive(Clone)]
pub struct ModerationService {
    store: Store,
    audit: AuditLog,
    guild_config: GuildConfigCache,
    discord: DiscordLink,
}

impl ModerationService {
    pub fn new(
        store: Store,
        audit: AuditLog,
        guild_config: GuildConfigCache,
        discord: DiscordLink,
    ) -> Self {
        Self {
            store,
            audit,
            guild_config,
            discord,
        }
    }

    async fn present_guild(&self, guild: Snowflake) -> Result<GuildRow, ModerationError> {
        self.store
            .guild(guild.as_i64())
            .await?
            .filter(GuildRow::is_present)
            .ok_or(ModerationError::UnknownGuild(guild))
    }

    /// The guild's newest cases, narrowed by `filter`.
    pub async fn cases(
        &self,
        guild: Snowflake,
        filter: &CaseFilter,
        limit: i64,
    ) -> Result<Vec<CaseRow>, ModerationError> {
        Ok(self
            .store
            .list_cases(
                guild.as_i64(),
                &crate::store::cases::CaseQuery {
                    target_user_id: filter.user.map(Snowflake::as_i64),
                    action: filter.action.clone(),
                    search: filter.search.clone(),
                },
                limit,
            )
            .await?)
    }

    /// One case by its number in the guild (`Store(NotFound)` when there is none).
    pub async fn case(&self, guild: Snowflake, number: i64) -> Result<CaseRow, ModerationError> {
        self.store
            .case_by_number(guild.as_i64(), number)
            .await?
            .ok_or(ModerationError::Store(StoreError::NotFound))
    }

    /// Rewrites a case's reason, recorded in the audit log (`moderation.case_reason`) before it
    /// is acknowledged: the slash command `/case reason` and the dashboard share it.
    pub async fn set_case_reason(
        &self,
        guild: Snowflake,
        number: i64,
        reason: &Reason,
        actor: Actor,
        origin: AuditOrigin,
    ) -> Result<CaseRow, ModerationError> {
        let case = self
            .store
            .set_case_reason(guild.as_i64(), number, reason.as_str())
            .await?
            .ok_or(ModerationError::Store(StoreError::NotFound))?;
        self.audit
            .record(
                NewAuditEntry::new(actor, "moderation.case_reason")
                    .origin(origin)
                    .target(format!("case:{guild}:{number}"))
                    .guild(guild.as_i64())
                    .details(
                        serde_json::json!({ "case_number": number, "reason": reason.as_str() }),
                    ),
            )
            .await?;
        Ok(case)
    }

    /// Runs an action through the running gateway session's client (the API's way in). A guild
    /// the bot is not in is refused whether or not Discord is reachable right now.
    pub async fn moderate(&self, req: Request) -> Result<Done, ModerationError> {
        self.present_guild(req.guild_id).await?;
        let http = self.discord.http().ok_or(ModerationError::NotConnected)?;
        let me = match self.discord.bot_user_id() {
            Some(id) => id,
            None => {
                let id = http
                    .get_current_user()
                    .await
                    .map_err(discord_error)?
                    .id
                    .get();
                Snowflake::new(id).map_err(|e| ModerationError::Discord(e.to_string()))?
            }
        };
        self.act(&http, me, req).await
    }

    /// Runs one moderation action end to end. Nothing changes unless every check passes.
    #[tracing::instrument(skip(self, http, req), fields(guild = %req.guild_id, target = %req.target, action = req.action.name()))]
    pub async fn act(
        &self,
        http: &Http,
        bot_user_id: Snowflake,
        req: Request,
    ) -> Result<Done, ModerationError> {
        let action_name = req.action.name();
        let guild = self.present_guild(req.guild_id).await?;
        let owner = guild.owner_id.and_then(|o| Snowflake::from_i64(o).ok());

        if req.target == bot_user_id {
            return Err(ModerationError::TargetIsBot(action_name));
        }
        if let Some(inv) = &req.invoker
            && inv.user_id == req.target
        {
            return Err(ModerationError::TargetIsSelf(action_name));
        }
        if owner == Some(req.target) && !matches!(req.action, Action::Unban) {
            return Err(ModerationError::TargetIsOwner);
        }
        let (needed, needed_name) = permission(&req.action);
        if let Some(inv) = &req.invoker
            && !has(inv.permissions, needed)
            && !(inv.has_mod_role && matches!(req.action, Action::Warn))
        {
            return Err(ModerationError::InvokerMissing(needed_name));
        }

        let gid = GuildId::new(req.guild_id.get());
        let roles = http.get_guild_roles(gid).await.map_err(discord_error)?;
        let bot_member = http
            .get_member(gid, UserId::new(bot_user_id.get()))
            .await
            .map_err(discord_error)?;
        let bot_roles = snowflakes(&bot_member.roles);
        if req.action.bot_acts() {
            let bot_perms = req
                .bot_permissions
                .unwrap_or_else(|| permissions_of(&roles, req.guild_id, &bot_roles));
            if !has(bot_perms, needed) {
                return Err(ModerationError::BotMissing(needed_name));
            }
        }

        if !matches!(req.action, Action::Unban) {
            let target_roles = match http.get_member(gid, UserId::new(req.target.get())).await {
                Ok(m) => Some(snowflakes(&m.roles)),
                Err(e) if http_status(&e) == Some(404) => None,
                Err(e) => return Err(discord_error(e)),
            };
            match target_roles {
                None if req.action.needs_member() => return Err(ModerationError::NotAMember),
                None => {}
                Some(target_roles) => {
                    let target_top = top_position(&roles, &target_roles);
                    if let Some(inv) = &req.invoker
                        && owner != Some(inv.user_id)
                        && top_position(&roles, &inv.roles) <= target_top
                    {
                        return Err(ModerationError::TargetAboveInvoker);
                    }
                    if req.action.bot_acts() && top_position(&roles, &bot_roles) <= target_top {
                        return Err(ModerationError::TargetAboveBot);
                    }
                }
            }
        }

        // Every check passed: act on Discord.
        let reason_text = req.reason.as_ref().map(Reason::as_str);
        let audit_reason = format!(
            "{} via guildhall{}",
            req.actor.label(),
            reason_text.map(|r| format!(": {r}")).unwrap_or_default()
        );
        let audit_reason: String = audit_reason.chars().take(512).collect();
        let target = UserId::new(req.target.get());
        let mut expires_at = None;
        match &req.action {
            Action::Warn => {}
            Action::Kick => http
                .kick_member(gid, target, Some(&audit_reason))
                .await
                .map_err(discord_error)?,
            Action::Ban {
                delete_message_days,
                duration,
            } => {
                if http
                    .get_ban(gid, target)
                    .await
                    .map_err(discord_error)?
                    .is_some()
                {
                    return Err(ModerationError::AlreadyBanned);
                }
                http.ban_user(gid, target, *delete_message_days, Some(&audit_reason))
                    .await
                    .map_err(discord_error)?;
                expires_at = duration.map(|d| now_ms() + d.as_millis());
            }
            Action::Unban => match http.remove_ban(gid, target, Some(&audit_reason)).await {
                Ok(()) => {}
                Err(e) if http_status(&e) == Some(404) => return Err(ModerationError::NotBanned),
                Err(e) => return Err(discord_error(e)),
            },
            Action::Timeout { duration } => {
                let until_ms = now_ms() + duration.as_millis();
                expires_at = Some(until_ms);
                let until = Timestamp::from_millis(until_ms)
                    .map_err(|e| ModerationError::Discord(e.to_string()))?;
                gid.edit_member(
                    http,
                    target,
                    EditMember::new()
                        .disable_communication_until_datetime(until)
                        .audit_log_reason(&audit_reason),
                )
                .await
                .map_err(discord_error)?;
            }
            Action::Untimeout => {
                gid.edit_member(
                    http,
                    target,
                    EditMember::new()
                        .enable_communication()
                        .audit_log_reason(&audit_reason),
                )
                .await
                .map_err(discord_error)?;
            }
        }
        if matches!(req.action, Action::Unban) {
            self.store
                .resolve_active_bans(req.guild_id.as_i64(), req.target.as_i64())
                .await?;
        }

        let moderator_id = match &req.actor {
            Actor::Discord { user_id } => Some(user_id.as_i64()),
            Actor::User { .. } | Actor::ApiKey { .. } | Actor::System => None,
        };
        let case = self
            .store
            .create_case(&NewCase {
                guild_id: req.guild_id.as_i64(),
                action: action_name.to_owned(),
                target_user_id: req.target.as_i64(),
                moderator_id,
                actor_label: req.actor.label(),
                reason: reason_text.map(str::to_owned),
                expires_at,
            })
            .await?;
        let entry = NewAuditEntry::new(req.actor.clone(), format!("moderation.{action_name}"))
            .origin(req.origin.clone())
            .target(format!("discord_user:{}", req.target))
            .guild(req.guild_id.as_i64())
            .details(serde_json::json!({
                "case_number": case.case_number,
                "reason": reason_text,
                "expires_at": expires_at,
                "duration_secs": req.action.duration().map(|d| d.get().as_secs()),
            }));
        self.audit.record(entry).await?;

        let summary = format!(
            "{} <@{}> — case #{}{}{}",
            req.action.past_tense(),
            req.target,
            case.case_number,
            match &req.action {
                Action::Ban {
                    duration: Some(d), ..
                }
                | Action::Timeout { duration: d } => format!(" for {d}"),
                _ => String::new(),
            },
            reason_text.map(|r| format!(": {r}")).unwrap_or_default()
        );
        self.post_case_to_log(http, &case).await;
        Ok(Done { case, summary })
    }

    /// Posts a case embed to the guild's log channel, when one is set. A failure to post does not
    /// undo the action; it is logged for the operator.
    pub async fn post_case_to_log(&self, http: &Http, case: &CaseRow) {
        let config = match self.guild_config.get(case.guild_id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(guild = case.guild_id, error = %e, "cannot read guild settings for the log channel");
                return;
            }
        };
        let Some(channel) = config.settings.log_channel else {
            return;
        };
        let mut embed = CreateEmbed::new()
            .title(format!("Case #{} — {}", case.case_number, case.action))
            .field("User", format!("<@{}>", case.target_user_id), true)
            .field(
                "Moderator",
                case.moderator_id
                    .map_or_else(|| case.actor_label.clone(), |m| format!("<@{m}>")),
                true,
            )
            .field(
                "Reason",
                case.reason.clone().unwrap_or_else(|| "—".into()),
                false,
            )
            .timestamp(
                Timestamp::from_millis(case.created_at).unwrap_or_else(|_| Timestamp::now()),
            );
        if let Some(expires) = case.expires_at {
            embed = embed.field("Expires", format!("<t:{}:R>", expires / 1000), true);
        }
        let sent = ChannelId::new(channel.get())
            .send_message(http, CreateMessage::new().embed(embed))
            .await;
        if let Err(e) = sent {
            tracing::warn!(guild = case.guild_id, channel = %channel, error = %describe_discord_error(&e), "cannot post the case to the log channel");
        }
    }

    /// Lifts the temporary bans that are due in the guilds this instance serves. Each is claimed
    /// (marked resolved) before it is lifted, so instances sharing a database lift it once.
    pub async fn expire_temporary_bans(
        &self,
        http: &Http,
        bot_user_id: Snowflake,
        serves: impl Fn(u64) -> bool,
    ) -> Result<usize, StoreError> {
        let due = self.store.due_temporary_bans(now_ms(), SWEEP_BATCH).await?;
        let mut lifted = 0;
        for case in due {
            let (Ok(guild_id), Ok(target)) = (
                Snowflake::from_i64(case.guild_id),
                Snowflake::from_i64(case.target_user_id),
            ) else {
                continue;
            };
            if !serves(guild_id.get()) || !self.store.resolve_case(case.id).await? {
                continue;
            }
            let reason = Reason::parse(&format!(
                "temporary ban (case #{}) expired",
                case.case_number
            ))
            .ok()
            .flatten();
            let req = Request {
                guild_id,
                target,
                action: Action::Unban,
                reason,
                actor: Actor::System,
                invoker: None,
                bot_permissions: None,
                origin: AuditOrigin::internal(),
            };
            match self.act(http, bot_user_id, req).await {
                Ok(done) => {
                    lifted += 1;
                    tracing::info!(
                        guild = %guild_id,
                        case = done.case.case_number,
                        "temporary ban expired"
                    );
                }
                // Already unbanned by hand on Discord: nothing left to do.
                Err(ModerationError::NotBanned) => {}
                Err(e) => {
                    tracing::warn!(guild = %guild_id, error = %e, "cannot lift an expired ban; will retry");
                    // Unclaim so the next sweep retries it.
                    self.store.reopen_case(case.id).await?;
                }
            }
        }
        Ok(lifted)
    }
}

/// How long after start the first sweep runs, and between sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

//! `/warn`, `/kick`, `/ban`, `/unban`, `/timeout`, `/untimeout` (through the moderation
//! service, like the API), `/purge`, `/cases` and `/case show|reason`.

use serenity::all::{
    ChannelId, CommandOptionType, CreateCommandOption, CreateEmbed, MessageId, Permissions,
    Timestamp,
};

use super::{Invocation, Reply, Run, SlashCommand};
use crate::bot::error::CommandError;
use crate::domain::Snowflake;
use crate::domain::moderation::{Action, PurgeCount, Reason};
use crate::domain::settings::ModuleName;
use crate::services::moderation::{Invoker, ModerationError, Request, describe_discord_error};
use crate::store::StoreError;
use crate::store::audit::NewAuditEntry;
use crate::store::cases::CaseRow;

/// Discord's bulk delete refuses messages older than 14 days.
const BULK_DELETE_MAX_AGE_MS: i64 = 14 * 24 * 3600 * 1000;
const CASES_SHOWN: i64 = 10;

fn user_opt(name: &str, description: &str) -> CreateCommandOption {
    CreateCommandOption::new(CommandOptionType::User, name, description).required(true)
}

fn reason_opt() -> CreateCommandOption {
    CreateCommandOption::new(
        CommandOptionType::String,
        "reason",
        "Why (shown in the case)",
    )
    .max_length(512)
}

fn duration_opt(required: bool) -> CreateCommandOption {
    CreateCommandOption::new(
        CommandOptionType::String,
        "duration",
        "How long, e.g. 10m, 2h, 7d",
    )
    .required(required)
}

/// A moderation command: in the moderation module, guild only.
const fn moderation(
    name: &'static str,
    description: &'static str,
    help: &'static str,
    permissions: Permissions,
    options: fn() -> Vec<CreateCommandOption>,
    run: Run,
) -> SlashCommand {
    SlashCommand {
        name,
        description,
        help,
        module: Some(ModuleName::Moderation),
        permissions: Some(permissions),
        in_dms: false,
        options,
        run,
    }
}

pub(super) const COMMANDS: &[SlashCommand] = &[
    moderation(
        "warn",
        "Warn a member",
        "Warn a member",
        Permissions::MODERATE_MEMBERS,
        user_and_reason,
        Run::InGuild(|inv| Box::pin(action(inv, "warn"))),
    ),
    moderation(
        "kick",
        "Kick a member",
        "Kick a member",
        Permissions::KICK_MEMBERS,
        user_and_reason,
        Run::InGuild(|inv| Box::pin(action(inv, "kick"))),
    ),
    moderation(
        "ban",
        "Ban a user",
        "Ban a user, optionally for a while",
        Permissions::BAN_MEMBERS,
        ban_options,
        Run::InGuild(|inv| Box::pin(action(inv, "ban"))),
    ),
    moderation(
        "unban",
        "Lift a ban",
        "Lift a ban",
        Permissions::BAN_MEMBERS,
        user_and_reason,
        Run::InGuild(|inv| Box::pin(action(inv, "unban"))),
    ),
    moderation(
        "timeout",
        "Time a member out",
        "Time a member out",
        Permissions::MODERATE_MEMBERS,
        timeout_options,
        Run::InGuild(|inv| Box::pin(action(inv, "timeout"))),
    ),
    moderation(
        "untimeout",
        "Lift a timeout",
        "Lift a timeout",
        Permissions::MODERATE_MEMBERS,
        user_and_reason,
        Run::InGuild(|inv| Box::pin(action(inv, "untimeout"))),
    ),
    moderation(
        "purge",
        "Delete recent messages in this channel",
        "Delete recent messages",
        Permissions::MANAGE_MESSAGES,
        purge_options,
        Run::InGuild(|inv| Box::pin(purge(inv))),
    ),
    moderation(
        "cases",
        "Recent moderation cases",
        "Recent moderation cases",
        Permissions::MODERATE_MEMBERS,
        cases_options,
        Run::InGuild(|inv| Box::pin(cases(inv))),
    ),
    moderation(
        "case",
        "A moderation case",
        "Show a case or change its reason",
        Permissions::MODERATE_MEMBERS,
        case_options,
        Run::InGuild(|inv| Box::pin(case(inv))),
    ),
];

fn user_and_reason() -> Vec<CreateCommandOption> {
    vec![user_opt("user", "Who"), reason_opt()]
}

fn ban_options() -> Vec<CreateCommandOption> {
    vec![
        user_opt("user", "Who"),
        reason_opt(),
        CreateCommandOption::new(
            CommandOptionType::Integer,
            "delete_messages",
            "Days of their messages to delete (0-7)",
        )
        .min_int_value(0)
        .max_int_value(7),
        duration_opt(false),
    ]
}

fn timeout_options() -> Vec<CreateCommandOption> {
    vec![user_opt("user", "Who"), duration_opt(true), reason_opt()]
}

fn purge_options() -> Vec<CreateCommandOption> {
    vec![
        CreateCommandOption::new(CommandOptionType::Integer, "count", "How many (1-100)")
            .required(true)
            .min_int_value(1)
            .max_int_value(100),
        CreateCommandOption::new(CommandOptionType::User, "user", "Only this user's")
            .required(false),
    ]
}

fn cases_options() -> Vec<CreateCommandOption> {
    vec![
        CreateCommandOption::new(CommandOptionType::User, "user", "Only this user's")
            .required(false),
    ]
}

fn case_options() -> Vec<CreateCommandOption> {
    let number = || {
        CreateCommandOption::new(CommandOptionType::Integer, "number", "Case number")
            .required(true)
            .min_int_value(1)
    };
    vec![
        CreateCommandOption::new(CommandOptionType::SubCommand, "show", "Show a case")
            .add_sub_option(number()),
        CreateCommandOption::new(
            CommandOptionType::SubCommand,
            "reason",
            "Change a case's reason",
        )
        .add_sub_option(number())
        .add_sub_option(
            CreateCommandOption::new(CommandOptionType::String, "text", "The new reason")
                .required(true)
                .max_length(512),
        ),
    ]
}

fn reason(inv: &Invocation<'_>) -> Result<Option<Reason>, CommandError> {
    inv.string("reason")
        .map(|r| Reason::parse(r).map_err(|p| CommandError::invalid("reason", p)))
        .transpose()
        .map(Option::flatten)
}

/// One of the six member actions: parse, then the shared moderation service.
pub async fn action(inv: &Invocation<'_>, name: &str) -> Result<Reply, CommandError> {
    let target = inv.require_user("user")?;
    let reason = reason(inv)?;
    // The slash command names its option `delete_messages`; the API and the domain say
    // `delete_message_days`.
    let action = Action::parse(
        name,
        inv.string("duration"),
        if name == "ban" {
            inv.integer("delete_messages")
        } else {
            None
        },
    )
    .map_err(|e| {
        let field = match e.field {
            "delete_message_days" => "delete_messages",
            other => other,
        };
        CommandError::invalid(field, e.problem)
    })?;
    let http = &inv.ctx.http;
    let me = match inv.bot.bot_user_id() {
        Some(id) => id,
        None => {
            let id = http
                .get_current_user()
                .await
                .map_err(|e| CommandError::Discord(describe_discord_error(&e)))?
                .id
                .get();
            Snowflake::new(id).map_err(|e| CommandError::Discord(e.to_string()))?
        }
    };
    let done = inv
        .bot
        .state
        .moderation
        .act(
            http,
            me,
            Request {
                guild_id: inv.guild_id,
                target,
                action,
                reason,
                actor: inv.actor(),
                invoker: Some(Invoker {
                    user_id: inv.user_id,
                    roles: inv.member_roles(),
                    permissions: inv.permissions,
                    has_mod_role: inv.has_role(inv.config.settings.mod_role),
                }),
                bot_permissions: inv.command.app_permissions,
                origin: inv.origin(),
            },
        )
        .await?;
    Ok(Reply::public(format!("{}.", done.summary)))
}

pub async fn purge(inv: &Invocation<'_>) -> Result<Reply, CommandError> {
    let raw = inv
        .integer("count")
        .ok_or_else(|| CommandError::invalid("count", "is required"))?;
    let count = PurgeCount::parse(raw).map_err(|p| CommandError::invalid("count", p))?;
    if !inv.has(Permissions::MANAGE_MESSAGES) {
        return Err(CommandError::MissingPermission("Manage Messages"));
    }
    let bot_perms = inv
        .command
        .app_permissions
        .unwrap_or_else(Permissions::empty);
    if !(bot_perms.contains(Permissions::ADMINISTRATOR)
        || bot_perms.contains(Permissions::MANAGE_MESSAGES))
    {
        return Err(CommandError::Moderation(ModerationError::BotMissing(
            "Manage Messages",
        )));
    }
    let only = inv.user("user");
    let channel = inv.command.channel_id;
    let http = &inv.ctx.http;
    let fetched = http
        .get_messages(channel, None, Some(100))
        .await
        .map_err(|e| CommandError::Discord(describe_discord_error(&e)))?;
    let oldest_allowed = crate::ids::now_ms() - BULK_DELETE_MAX_AGE_MS;
    let ids: Vec<MessageId> = fetched
        .iter()
        .filter(|m| only.is_none_or(|u| m.author.id.get() == u.get()))
        .filter(|m| m.timestamp.unix_timestamp() * 1000 > oldest_allowed)
        .take(count.get() as usize)
        .map(|m| m.id)
        .collect();
    let reason = format!("purge by discord:{} via guildhall", inv.user_id);
    match ids.as_slice() {
        [] => {
            return Ok(Reply::private(
                "There are no recent messages to delete (Discord cannot bulk-delete messages older than 14 days).",
            ));
        }
        [one] => http
            .delete_message(channel, *one, Some(&reason))
            .await
            .map_err(|e| CommandError::Discord(describe_discord_error(&e)))?,
        many => ChannelId::new(channel.get())
            .delete_messages(http, many.iter().copied())
            .await
            .map_err(|e| CommandError::Discord(describe_discord_error(&e)))?,
    }
    inv.bot
        .state
        .audit
        .record(
            NewAuditEntry::new(inv.actor(), "moderation.purge")
                .origin(inv.origin())
                .target(format!("discord_channel:{}", channel.get()))
                .guild(inv.guild_id.as_i64())
                .details(serde_json::json!({
                    "requested": count.get(),
                    "deleted": ids.len(),
                    "user": only.map(|u| u.to_string()),
                })),
        )
        .await
        .map_err(|e| CommandError::Moderation(e.into()))?;
    Ok(Reply::private(format!("Deleted {} message(s).", ids.len())))
}

fn case_line(c: &CaseRow) -> String {
    format!(
        "#{} {} <@{}> — {}{}",
        c.case_number,
        c.action,
        c.target_user_id,
        c.reason.as_deref().unwrap_or("no reason"),
        c.expires_at
            .map(|e| format!(
                " (until <t:{}:f>{})",
                e / 1000,
                if c.resolved { ", lifted" } else { "" }
            ))
            .unwrap_or_default()
    )
}

fn require_view(inv: &Invocation<'_>) -> Result<(), CommandError> {
    if inv.has_role(inv.config.settings.mod_role)
        || inv.has(Permissions::MODERATE_MEMBERS)
        || inv.has(Permissions::KICK_MEMBERS)
        || inv.has(Permissions::BAN_MEMBERS)
    {
        Ok(())
    } else {
        Err(CommandError::MissingPermission("Timeout Members"))
    }
}

pub async fn cases(inv: &Invocation<'_>) -> Result<Reply, CommandError> {
    require_view(inv)?;
    let filter = crate::services::moderation::CaseFilter {
        user: inv.user("user"),
        ..Default::default()
    };
    let rows = inv
        .bot
        .state
        .moderation
        .cases(inv.guild_id, &filter, CASES_SHOWN)
        .await
        .map_err(CommandError::Moderation)?;
    if rows.is_empty() {
        return Ok(Reply::private("No cases yet."));
    }
    Ok(Reply::private("Recent cases:").with_embed(
        CreateEmbed::new()
            .title("Cases")
            .description(rows.iter().map(case_line).collect::<Vec<_>>().join("\n")),
    ))
}

pub async fn case(inv: &Invocation<'_>) -> Result<Reply, CommandError> {
    require_view(inv)?;
    let guild = inv.guild_id.as_i64();
    let number = inv
        .integer("number")
        .ok_or_else(|| CommandError::invalid("number", "is required"))?;
    if number < 1 {
        return Err(CommandError::invalid(
            "number",
            format!("{number} is not a case number"),
        ));
    }
    let not_found =
        || CommandError::NotFound(format!("There is no case #{number} on this server."));
    match inv.sub() {
        "show" => {
            let c = inv
                .bot
                .state
                .store
                .case_by_number(guild, number)
                .await?
                .ok_or_else(not_found)?;
            let mut embed = CreateEmbed::new()
                .title(format!("Case #{} — {}", c.case_number, c.action))
                .field("User", format!("<@{}>", c.target_user_id), true)
                .field("By", c.actor_label.clone(), true)
                .field(
                    "Reason",
                    c.reason.clone().unwrap_or_else(|| "—".into()),
                    false,
                );
            if let Ok(ts) = Timestamp::from_millis(c.created_at) {
                embed = embed.timestamp(ts);
            }
            Ok(Reply::private(case_line(&c)).with_embed(embed))
        }
        "reason" => {
            let text = inv
                .string("text")
                .ok_or_else(|| CommandError::invalid("text", "is required"))?;
            let reason = Reason::parse(text)
                .map_err(|p| CommandError::invalid("text", p))?
                .ok_or_else(|| CommandError::invalid("text", "is empty"))?;
            let c = inv
                .bot
                .state
                .moderation
                .set_case_reason(inv.guild_id, number, &reason, inv.actor(), inv.origin())
                .await
                .map_err(|e| match e {
                    ModerationError::Store(StoreError::NotFound) => not_found(),
                    other => CommandError::Moderation(other),
                })?;
            Ok(Reply::private(format!("Updated: {}", case_line(&c))))
        }
        other => Err(CommandError::invalid(
            "subcommand",
            format!("`{other}` is not one of show, reason"),
        )),
    }
}

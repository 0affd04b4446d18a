//! Slash commands: their definitions (registered by bulk overwrite) and their dispatch. Each
//! command belongs to a module; a command of a disabled module answers "module disabled" and
//! does nothing else. `/ping`, `/help` and `/module` are always available (disabling the admin
//! module must not lock admins out of re-enabling it).

pub mod admin;
pub mod minecraft;
pub mod moderation;
pub mod utility;

use std::sync::Arc;
use std::time::Instant;

use serenity::all::{
    CommandInteraction, Context, CreateCommand, CreateEmbed, CreateInteractionResponse,
    CreateInteractionResponseMessage, Permissions, ResolvedOption, ResolvedValue,
};

use super::Bot;
use super::error::CommandError;
use crate::domain::Snowflake;
use crate::domain::audit::AuditOrigin;
use crate::domain::settings::ModuleName;
use crate::services::guild_config::GuildConfig;
use crate::store::audit::Actor;

/// Every command guildhall registers.
pub fn definitions() -> Vec<CreateCommand> {
    let mut all = Vec::new();
    all.extend(utility::definitions());
    all.extend(admin::definitions());
    all.extend(moderation::definitions());
    all.extend(minecraft::definitions());
    all
}

/// The module a command belongs to; `None` for the always-available ones.
pub fn module_of(command: &str) -> Option<ModuleName> {
    match command {
        "settings" => Some(ModuleName::Admin),
        "warn" | "kick" | "ban" | "unban" | "timeout" | "untimeout" | "purge" | "cases"
        | "case" => Some(ModuleName::Moderation),
        "mc" => Some(ModuleName::Minecraft),
        _ => None,
    }
}

/// A command invocation in a guild the bot knows, with its options flattened to one level
/// (subcommand path in `path`).
pub struct Invocation<'a> {
    pub bot: &'a Arc<Bot>,
    pub ctx: &'a Context,
    pub command: &'a CommandInteraction,
    pub guild_id: Snowflake,
    pub user_id: Snowflake,
    pub permissions: Permissions,
    pub config: Arc<GuildConfig>,
    pub path: Vec<String>,
    pub options: Vec<ResolvedOption<'a>>,
}

impl<'a> Invocation<'a> {
    pub fn string(&self, name: &str) -> Option<&'a str> {
        self.options
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| match o.value {
                ResolvedValue::String(s) => Some(s),
                _ => None,
            })
    }

    pub fn integer(&self, name: &str) -> Option<i64> {
        self.options
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| match o.value {
                ResolvedValue::Integer(i) => Some(i),
                _ => None,
            })
    }

    pub fn user(&self, name: &str) -> Option<Snowflake> {
        self.options
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| match &o.value {
                ResolvedValue::User(u, _) => Some(u.id.get()),
                ResolvedValue::Unresolved(serenity::all::Unresolved::User(id)) => Some(id.get()),
                _ => None,
            })
            .and_then(|id| Snowflake::new(id).ok())
    }

    pub fn require_user(&self, name: &'static str) -> Result<Snowflake, CommandError> {
        self.user(name)
            .ok_or_else(|| CommandError::invalid(name, "is required"))
    }

    pub fn sub(&self) -> &str {
        self.path.first().map_or("", String::as_str)
    }

    pub fn has(&self, needed: Permissions) -> bool {
        self.permissions.contains(Permissions::ADMINISTRATOR) || self.permissions.contains(needed)
    }

    pub fn member_roles(&self) -> Vec<Snowflake> {
        self.command
            .member
            .as_ref()
            .map(|m| {
                m.roles
                    .iter()
                    .filter_map(|r| Snowflake::new(r.get()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the invoker holds `role` (a role id from the guild's settings).
    pub fn has_role(&self, role: Option<Snowflake>) -> bool {
        role.is_some_and(|r| self.member_roles().contains(&r))
    }

    /// Where this command came from, for audit entries.
    pub fn origin(&self) -> AuditOrigin {
        match Snowflake::new(self.command.id.get()) {
            Ok(id) => AuditOrigin::interaction(id),
            Err(_) => AuditOrigin::internal(),
        }
    }

    /// The invoker, as audit entries and cases name them.
    pub fn actor(&self) -> Actor {
        Actor::Discord {
            user_id: self.user_id,
        }
    }
}

/// A successful answer.
pub struct Reply {
    pub content: String,
    pub embed: Option<CreateEmbed>,
    pub ephemeral: bool,
}

impl Reply {
    pub fn public(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            embed: None,
            ephemeral: false,
        }
    }

    pub fn private(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            embed: None,
            ephemeral: true,
        }
    }

    pub fn with_embed(mut self, embed: CreateEmbed) -> Self {
        self.embed = Some(embed);
        self
    }
}

fn flatten<'a>(
    options: Vec<ResolvedOption<'a>>,
    path: &mut Vec<String>,
) -> Vec<ResolvedOption<'a>> {
    match options.as_slice() {
        [one]
            if matches!(
                one.value,
                ResolvedValue::SubCommand(_) | ResolvedValue::SubCommandGroup(_)
            ) =>
        {
            let Some(one) = options.into_iter().next() else {
                return Vec::new();
            };
            path.push(one.name.to_owned());
            match one.value {
                ResolvedValue::SubCommand(inner) | ResolvedValue::SubCommandGroup(inner) => {
                    flatten(inner, path)
                }
                _ => Vec::new(),
            }
        }
        _ => options,
    }
}

/// Runs one command and answers it; every failure becomes an ephemeral message.
#[tracing::instrument(skip(bot, ctx, command), fields(command = %command.data.name, guild = ?command.guild_id.map(|g| g.get()), user = command.user.id.get()))]
pub async fn handle(bot: &Arc<Bot>, ctx: &Context, command: &CommandInteraction) {
    let started = Instant::now();
    let name = command.data.name.clone();
    let result = run(bot, ctx, command).await;
    let (reply, outcome) = match result {
        Ok(reply) => (reply, "ok"),
        Err(e) => {
            let outcome = e.outcome();
            if outcome == "error" {
                tracing::warn!(error = ?e, "command failed");
            }
            (Reply::private(e.reply()), outcome)
        }
    };
    // Unknown names are folded into one label so that a flood of junk cannot grow the metrics.
    let label = if definitions_names().contains(&name.as_str()) {
        name.as_str()
    } else {
        "unknown"
    };
    bot.state
        .metrics
        .discord_commands
        .with_label_values(&[label, outcome])
        .inc();
    let mut message = CreateInteractionResponseMessage::new()
        .content(reply.content)
        .ephemeral(reply.ephemeral);
    if let Some(embed) = reply.embed {
        message = message.embed(embed);
    }
    if let Err(e) = command
        .create_response(&ctx.http, CreateInteractionResponse::Message(message))
        .await
    {
        tracing::warn!(error = %crate::services::moderation::describe_discord_error(&e), "cannot answer the interaction");
    }
    tracing::debug!(
        outcome,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "command handled"
    );
}

fn definitions_names() -> &'static [&'static str] {
    &[
        "ping",
        "help",
        "settings",
        "module",
        "warn",
        "kick",
        "ban",
        "unban",
        "timeout",
        "untimeout",
        "purge",
        "cases",
        "case",
        "mc",
    ]
}

async fn run(
    bot: &Arc<Bot>,
    ctx: &Context,
    command: &CommandInteraction,
) -> Result<Reply, CommandError> {
    let name = command.data.name.as_str();
    if name == "ping" {
        return utility::ping(bot, ctx).await;
    }
    let raw_guild = command.guild_id.ok_or(CommandError::NotInGuild)?.get();
    let known = bot.knows_guild(raw_guild);
    let guild_id = match Snowflake::new(raw_guild) {
        Ok(id) if known => id,
        Ok(_) | Err(_) => return Err(CommandError::UnknownGuild),
    };
    let user_id = Snowflake::new(command.user.id.get())
        .map_err(|e| CommandError::invalid("user", e.to_string()))?;
    let config = bot.state.guild_config.get(guild_id.as_i64()).await?;
    if let Some(module) = module_of(name)
        && !config.module_enabled(module)
    {
        return Err(CommandError::ModuleDisabled(module));
    }
    let mut path = Vec::new();
    let options = flatten(command.data.options(), &mut path);
    let inv = Invocation {
        bot,
        ctx,
        command,
        guild_id,
        user_id,
        permissions: command
            .member
            .as_ref()
            .and_then(|m| m.permissions)
            .unwrap_or_else(Permissions::empty),
        config,
        path,
        options,
    };
    match name {
        "help" => Ok(utility::help(&inv)),
        "settings" => admin::settings(&inv).await,
        "module" => admin::module(&inv).await,
        "warn" | "kick" | "ban" | "unban" | "timeout" | "untimeout" => {
            moderation::action(&inv, name).await
        }
        "purge" => moderation::purge(&inv).await,
        "cases" => moderation::cases(&inv).await,
        "case" => moderation::case(&inv).await,
        "mc" => minecraft::mc(&inv).await,
        other => Err(CommandError::NotFound(format!(
            "`/{other}` is not a guildhall command; the commands may be out of date (an admin can re-sync them)."
        ))),
    }
}

//! Slash commands: each is declared once, as a `SlashCommand` in its group's `COMMANDS` table
//! (name, description, help line, module, default permissions, options and handler); the
//! registration (bulk overwrite), `/help`, the module check, the metrics label and the dispatch
//! all read those tables. A command of a disabled module answers "module disabled" and does
//! nothing else. `/ping`, `/help` and `/module` belong to no module (disabling the admin module
//! must not lock admins out of re-enabling it).

pub mod admin;
pub mod minecraft;
pub mod moderation;
pub mod utility;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use serenity::all::{
    CommandInteraction, CreateCommand, CreateCommandOption, CreateEmbed, CreateInteractionResponse,
    CreateInteractionResponseMessage, Permissions, ResolvedOption, ResolvedValue,
};

use super::error::CommandError;
use super::{Bot, Context};
use crate::domain::Snowflake;
use crate::domain::audit::AuditOrigin;
use crate::domain::settings::ModuleName;
use crate::services::guild_config::GuildConfig;
use crate::store::audit::Actor;

/// What a handler returns: its reply, later (Send, as serenity's event handler requires).
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<Reply, CommandError>> + Send + 'a>>;

/// How a command runs.
#[derive(Clone, Copy)]
pub enum Run {
    /// Before the guild is looked up: answers anywhere, even where the bot knows no guild.
    Anywhere(for<'a> fn(&'a Arc<Bot>, &'a Context) -> Answer<'a>),
    /// In a guild the bot is in, with the guild's configuration loaded.
    InGuild(for<'i> fn(&'i Invocation<'i>) -> Answer<'i>),
}

/// One slash command, declared once.
pub struct SlashCommand {
    pub name: &'static str,
    /// Registered with Discord, shown in its command picker.
    pub description: &'static str,
    /// The line `/help` shows.
    pub help: &'static str,
    /// The module the command belongs to; `None` for the always-available ones.
    pub module: Option<ModuleName>,
    /// Who sees the command by default (Discord's `default_member_permissions`); handlers
    /// check their finer rules themselves (`/cases` accepts any of three, for example).
    pub permissions: Option<Permissions>,
    /// Offered in direct messages too.
    pub in_dms: bool,
    /// Options and subcommands, as registered.
    pub options: fn() -> Vec<CreateCommandOption>,
    pub run: Run,
}

impl SlashCommand {
    /// The registration payload.
    pub fn definition(&self) -> CreateCommand {
        let mut command = CreateCommand::new(self.name).description(self.description);
        if let Some(permissions) = self.permissions {
            command = command.default_member_permissions(permissions);
        }
        if !self.in_dms {
            command = command.dm_permission(false);
        }
        (self.options)()
            .into_iter()
            .fold(command, CreateCommand::add_option)
    }
}

/// No options.
pub(crate) fn no_options() -> Vec<CreateCommandOption> {
    Vec::new()
}

/// Every command guildhall registers, in registration order.
pub fn all() -> impl Iterator<Item = &'static SlashCommand> {
    [
        utility::COMMANDS,
        admin::COMMANDS,
        moderation::COMMANDS,
        minecraft::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// The command of that name, if guildhall has one.
pub fn find(name: &str) -> Option<&'static SlashCommand> {
    all().find(|c| c.name == name)
}

/// The registration payloads of every command.
pub fn definitions() -> Vec<CreateCommand> {
    all().map(SlashCommand::definition).collect()
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
    let mut message = CreateInteractionResponseMessage::new()
        .content(reply.content)
        .ephemeral(reply.ephemeral);
    if let Some(embed) = reply.embed {
        message = message.embed(embed);
    }
    // A reply Discord did not take never reached the user: whatever the command did, the
    // invocation failed from their side.
    let outcome = match command
        .create_response(&ctx.http, CreateInteractionResponse::Message(message))
        .await
    {
        Ok(()) => outcome,
        Err(e) => {
            tracing::warn!(error = %crate::services::moderation::describe_discord_error(&e), outcome, "cannot answer the interaction");
            "error"
        }
    };
    // Unknown names are folded into one label so that a flood of junk cannot grow the metrics.
    let label = find(&name).map_or("unknown", |c| c.name);
    bot.state
        .metrics
        .discord_commands
        .with_label_values(&[label, outcome])
        .inc();
    tracing::debug!(
        outcome,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "command handled"
    );
}

async fn run(
    bot: &Arc<Bot>,
    ctx: &Context,
    command: &CommandInteraction,
) -> Result<Reply, CommandError> {
    let name = command.data.name.as_str();
    let found = find(name);
    if let Some(SlashCommand {
        run: Run::Anywhere(run),
        ..
    }) = found
    {
        return run(bot, ctx).await;
    }
    let raw_guild = command.guild_id.ok_or(CommandError::NotInGuild)?.get();
    let Ok(guild_id) = Snowflake::new(raw_guild) else {
        return Err(CommandError::UnknownGuild);
    };
    let user_id = Snowflake::new(command.user.id.get())
        .map_err(|e| CommandError::invalid("user", e.to_string()))?;
    // Whether the bot is in the guild is the guilds table's record (written by the event
    // handler on GUILD_CREATE / GUILD_DELETE), read through the cached configuration.
    let config = bot.state.guild_config.get(guild_id.as_i64()).await?;
    if !config.present || !bot.serves(raw_guild) {
        return Err(CommandError::UnknownGuild);
    }
    let Some(found) = found else {
        return Err(CommandError::NotFound(format!(
            "`/{name}` is not a guildhall command; the commands may be out of date (an admin can re-sync them)."
        )));
    };
    if let Some(module) = found.module
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
    match found.run {
        Run::InGuild(run) => run(&inv).await,
        Run::Anywhere(run) => run(bot, ctx).await,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_command_is_declared_once_with_what_discord_accepts() {
        let mut names = HashSet::new();
        for command in all() {
            assert!(names.insert(command.name), "/{} twice", command.name);
            // Discord's limits: lowercase names of 1-32 characters, descriptions of 1-100.
            assert!(
                (1..=32).contains(&command.name.len())
                    && command
                        .name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                command.name
            );
            assert!((1..=100).contains(&command.description.len()));
            assert!(!command.help.is_empty());
        }
        assert_eq!(definitions().len(), names.len());
        assert_eq!(names.len(), 14);
    }

    #[test]
    fn the_table_says_which_module_each_command_belongs_to() {
        let module = |name: &str| find(name).map(|c| c.module);
        for always in ["ping", "help", "module"] {
            assert_eq!(module(always), Some(None), "/{always}");
        }
        assert_eq!(module("settings"), Some(Some(ModuleName::Admin)));
        for name in [
            "warn",
            "kick",
            "ban",
            "unban",
            "timeout",
            "untimeout",
            "purge",
            "cases",
            "case",
        ] {
            assert_eq!(module(name), Some(Some(ModuleName::Moderation)), "/{name}");
        }
        assert_eq!(module("mc"), Some(Some(ModuleName::Minecraft)));
        assert!(find("nope").is_none());
    }

    #[test]
    fn the_registration_payload_carries_permissions_and_dm_availability() {
        let json = |name: &str| serde_json::to_value(find(name).unwrap().definition()).unwrap();
        let kick = json("kick");
        assert_eq!(
            kick["default_member_permissions"],
            Permissions::KICK_MEMBERS.bits().to_string()
        );
        assert_eq!(kick["dm_permission"], false);
        assert_eq!(kick["options"][0]["name"], "user");
        let ping = json("ping");
        assert!(ping.get("dm_permission").is_none_or(|v| v.is_null()));
        assert!(
            ping.get("default_member_permissions")
                .is_none_or(|v| v.is_null())
        );
    }
}

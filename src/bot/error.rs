//! `CommandError`: the Discord boundary's one error type. Every variant becomes a clear
//! ephemeral reply; none carries a secret or an internal detail.

use crate::domain::settings::ModuleName;
use crate::services::guild_config::GuildConfigError;
use crate::services::moderation::ModerationError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(
        "The {0} module is disabled on this server. An admin can enable it with `/module enable {0}`."
    )]
    ModuleDisabled(ModuleName),
    #[error(
        "This server is not known to the bot yet. Try again in a moment, or re-invite the bot."
    )]
    UnknownGuild,
    #[error("This command works only inside a server.")]
    NotInGuild,
    #[error("`{field}`: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("You need the {0} permission to use this command.")]
    MissingPermission(&'static str),
    #[error("{0}")]
    Moderation(#[from] ModerationError),
    #[error("{0}")]
    GuildConfig(#[from] GuildConfigError),
    /// Something the command needs (a Minecraft server, Discord) cannot be reached now.
    #[error("{0} Nothing was changed; try again shortly.")]
    Unavailable(String),
    #[error("{0}")]
    NotConfigured(String),
    #[error("{0}")]
    NotFound(String),
    #[error("The bot's database is unavailable right now; nothing was changed. Try again shortly.")]
    Store(#[from] StoreError),
    #[error("Discord refused the request: {0}")]
    Discord(String),
}

impl CommandError {
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        CommandError::Invalid {
            field,
            problem: problem.into(),
        }
    }

    /// The `outcome` label of `guildhall_discord_commands_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            CommandError::ModuleDisabled(_) => "module_disabled",
            CommandError::Invalid { .. } => "invalid",
            CommandError::MissingPermission(_)
            | CommandError::UnknownGuild
            | CommandError::NotInGuild => "refused",
            CommandError::Moderation(e) => match e {
                ModerationError::Store(_)
                | ModerationError::Audit(_)
                | ModerationError::Discord(_)
                | ModerationError::NotConnected => "error",
                ModerationError::DiscordRefused(_) | ModerationError::AlreadyBanned => "refused",
                ModerationError::UnknownGuild(_)
                | ModerationError::InvokerMissing(_)
                | ModerationError::BotMissing(_)
                | ModerationError::TargetIsSelf(_)
                | ModerationError::TargetIsBot(_)
                | ModerationError::TargetIsOwner
                | ModerationError::TargetAboveInvoker
                | ModerationError::TargetAboveBot
                | ModerationError::NotAMember
                | ModerationError::NotBanned => "refused",
            },
            CommandError::GuildConfig(e) => match e {
                GuildConfigError::UnknownGuild(_)
                | GuildConfigError::NothingToChange
                | GuildConfigError::VersionMismatch { .. } => "refused",
                GuildConfigError::Store(_) | GuildConfigError::Audit(_) => "error",
            },
            CommandError::NotConfigured(_) | CommandError::NotFound(_) => "refused",
            CommandError::Store(_) | CommandError::Discord(_) | CommandError::Unavailable(_) => {
                "error"
            }
        }
    }

    /// The reply text, capitalised as a sentence.
    pub fn reply(&self) -> String {
        let text = self.to_string();
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => format!("{}{}", first.to_uppercase(), chars.as_str()),
            None => text,
        }
    }
}

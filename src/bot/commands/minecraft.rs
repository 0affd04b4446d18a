//! `/mc status|players|say|whitelist add|remove|cmd`, sent through the RCON service. Until a
//! Minecraft service is available (issue 5), every subcommand answers "not configured".

use serenity::all::{CommandOptionType, CreateCommand, CreateCommandOption};

use super::{Invocation, Reply};
use crate::bot::error::CommandError;

pub fn definitions() -> Vec<CreateCommand> {
    let name = || {
        CreateCommandOption::new(CommandOptionType::String, "name", "Minecraft player name")
            .required(true)
            .max_length(16)
    };
    vec![
        CreateCommand::new("mc")
            .description("The Minecraft server")
            .dm_permission(false)
            .add_option(CreateCommandOption::new(
                CommandOptionType::SubCommand,
                "status",
                "Is the server up?",
            ))
            .add_option(CreateCommandOption::new(
                CommandOptionType::SubCommand,
                "players",
                "Who is online",
            ))
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::SubCommand,
                    "say",
                    "Say something in game",
                )
                .add_sub_option(
                    CreateCommandOption::new(CommandOptionType::String, "text", "What to say")
                        .required(true)
                        .max_length(256),
                ),
            )
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::SubCommandGroup,
                    "whitelist",
                    "The whitelist",
                )
                .add_sub_option(
                    CreateCommandOption::new(
                        CommandOptionType::SubCommand,
                        "add",
                        "Whitelist a player",
                    )
                    .add_sub_option(name()),
                )
                .add_sub_option(
                    CreateCommandOption::new(
                        CommandOptionType::SubCommand,
                        "remove",
                        "Remove a player",
                    )
                    .add_sub_option(name()),
                ),
            )
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::SubCommand,
                    "cmd",
                    "Run a console command (configured role only)",
                )
                .add_sub_option(
                    CreateCommandOption::new(CommandOptionType::String, "command", "The command")
                        .required(true)
                        .max_length(1000),
                ),
            ),
    ]
}

pub async fn mc(inv: &Invocation<'_>) -> Result<Reply, CommandError> {
    // `/mc cmd` runs arbitrary console commands: only the configured role may, even once RCON
    // is available, so check it first.
    if inv.sub() == "cmd" {
        let allowed = inv
            .config
            .settings
            .minecraft_role_id
            .is_some_and(|r| inv.member_roles().contains(&(r as u64)));
        if !allowed {
            return Err(CommandError::MissingPermission(
                "configured Minecraft role (`/settings set minecraft_role`)",
            ));
        }
    }
    Err(CommandError::NotConfigured(
        "Minecraft is not configured on this guildhall instance.".into(),
    ))
}

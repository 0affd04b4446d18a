//! `/mc status|players|say|whitelist add|remove|cmd`, sent through the shared Minecraft
//! service; without a server for the guild, every subcommand answers "not configured".
//! `/mc link|verify|unlink` link the member's Minecraft account (`minecraft::links`).

use serenity::all::{CommandOptionType, CreateCommandOption};

use super::{Invocation, Reply, Run, SlashCommand};
use crate::actors::rcon::RconError;
use crate::bot::error::CommandError;
use crate::domain::settings::ModuleName;
use crate::minecraft::links::{CODE_LIFETIME, LinkActor, LinkError};
use crate::minecraft::service::{AuditStatus, CommandResponse};
use crate::minecraft::{Caller, MinecraftError, RconCommand};
use crate::services::moderation::ModerationError;

pub(super) const COMMANDS: &[SlashCommand] = &[SlashCommand {
    name: "mc",
    description: "The Minecraft server",
    help: "The Minecraft server",
    module: Some(ModuleName::Minecraft),
    permissions: None,
    in_dms: false,
    options: mc_options,
    run: Run::InGuild(|inv| Box::pin(mc(inv))),
}];

fn mc_options() -> Vec<CreateCommandOption> {
    let name = || {
        CreateCommandOption::new(CommandOptionType::String, "name", "Minecraft player name")
            .required(true)
            .max_length(16)
    };
    vec![
        CreateCommandOption::new(CommandOptionType::SubCommand, "status", "Is the server up?"),
        CreateCommandOption::new(CommandOptionType::SubCommand, "players", "Who is online"),
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
        CreateCommandOption::new(
            CommandOptionType::SubCommandGroup,
            "whitelist",
            "The whitelist",
        )
        .add_sub_option(
            CreateCommandOption::new(CommandOptionType::SubCommand, "add", "Whitelist a player")
                .add_sub_option(name()),
        )
        .add_sub_option(
            CreateCommandOption::new(CommandOptionType::SubCommand, "remove", "Remove a player")
                .add_sub_option(name()),
        ),
        CreateCommandOption::new(
            CommandOptionType::SubCommand,
            "link",
            "Link your Minecraft account: a code is whispered to you in game",
        )
        .add_sub_option(name()),
        CreateCommandOption::new(
            CommandOptionType::SubCommand,
            "verify",
            "Complete the link with the code whispered in game",
        )
        .add_sub_option(
            CreateCommandOption::new(CommandOptionType::String, "code", "The code")
                .required(true)
                .max_length(16),
        ),
        CreateCommandOption::new(
            CommandOptionType::SubCommand,
            "unlink",
            "Unlink your Minecraft account",
        ),
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
    ]
}

/// Runs `/mc …` through the shared Minecraft service (policy check, RconActor, audit entry).
pub async fn mc(inv: &Invocation<'_>) -> Result<Reply, CommandError> {
    // `/mc cmd` runs console commands: only the configured role may, checked first.
    let in_role = |role| inv.has_role(role);
    if inv.sub() == "cmd" && !in_role(inv.config.settings.minecraft_role) {
        return Err(CommandError::MissingPermission(
            "configured Minecraft role (`/settings set minecraft_role`)",
        ));
    }
    if matches!(inv.sub(), "link" | "verify" | "unlink") {
        return links(inv).await;
    }
    let service = &inv.bot.state.minecraft;
    let guild = inv.guild_id.as_i64();
    let server = match &inv.config.settings.minecraft_server {
        Some(name) => service.server(name.as_str()),
        None => service.server_for_guild(guild).await,
    }
    .map_err(mc_error)?;
    // The guildhall role whose command policy applies: moderators (Discord moderators, the
    // configured moderator role, or the Minecraft role) get the moderator policy; everyone else
    // the viewer policy, which runs nothing.
    let moderator = inv.has(serenity::all::Permissions::MODERATE_MEMBERS)
        || in_role(inv.config.settings.mod_role)
        || in_role(inv.config.settings.minecraft_role);
    let caller = Caller {
        actor: inv.actor(),
        roles: vec![if moderator { "moderator" } else { "viewer" }.to_owned()],
        guild_id: Some(guild),
        origin: inv.origin(),
    };
    let (caller, server) = (&caller, &server);
    let run = |raw: String| async move {
        let command =
            RconCommand::parse(&raw).map_err(|e| CommandError::invalid("command", e.0))?;
        service
            .command(caller, server, command)
            .await
            .map_err(mc_error)
    };
    let path: Vec<&str> = inv.path.iter().map(String::as_str).collect();
    match path.as_slice() {
        ["status"] => {
            let view = service.status(server).await.map_err(mc_error)?;
            let state = view.status.as_ref().map_or("not running".to_owned(), |s| {
                format!("{:?}", s.state).to_lowercase()
            });
            let players = view
                .status
                .as_ref()
                .and_then(|s| s.players.as_ref())
                .map_or(String::new(), |p| {
                    format!(" · {}/{} players", p.online, p.max)
                });
            Ok(Reply::private(format!("`{}`: {state}{players}", view.name)))
        }
        ["players"] => {
            let list = service.players(server).await.map_err(mc_error)?;
            Ok(Reply::private(format!(
                "{}/{} online{}",
                list.online,
                list.max,
                if list.names.is_empty() {
                    String::new()
                } else {
                    format!(": {}", list.names.join(", "))
                }
            )))
        }
        ["say"] => {
            let text = inv
                .string("text")
                .ok_or_else(|| CommandError::invalid("text", "is required"))?;
            let out = run(format!("say {text}")).await?;
            Ok(Reply::private(format!("Said in game.{}", audit_note(&out))))
        }
        ["whitelist", action @ ("add" | "remove")] => {
            let name = inv
                .string("name")
                .ok_or_else(|| CommandError::invalid("name", "is required"))?;
            if !(3..=16).contains(&name.len())
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(CommandError::invalid(
                    "name",
                    format!("`{name}` is not a Minecraft player name (3-16 letters, digits, `_`)"),
                ));
            }
            let out = run(format!("whitelist {action} {name}")).await?;
            Ok(Reply::private(format!(
                "`{}`{}",
                out.text.trim(),
                audit_note(&out)
            )))
        }
        ["cmd"] => {
            let raw = inv
                .string("command")
                .ok_or_else(|| CommandError::invalid("command", "is required"))?;
            let out = run(raw.to_owned()).await?;
            Ok(Reply::private(format!(
                "```\n{}\n```{}",
                out.text.trim(),
                audit_note(&out)
            )))
        }
        other => Err(CommandError::invalid(
            "subcommand",
            format!("`{}` is not a /mc subcommand", other.join(" ")),
        )),
    }
}

/// `/mc link|verify|unlink`, for the invoking member, through `LinkService`.
async fn links(inv: &Invocation<'_>) -> Result<Reply, CommandError> {
    let service = &inv.bot.state.links;
    let (guild, user) = (inv.guild_id.as_i64(), inv.user_id.as_i64());
    let by = LinkActor {
        actor: inv.actor(),
        origin: inv.origin(),
    };
    match inv.sub() {
        "link" => {
            let name = inv
                .string("name")
                .ok_or_else(|| CommandError::invalid("name", "is required"))?;
            service
                .request_code(guild, user, name, &by)
                .await
                .map_err(link_error)?;
            Ok(Reply::private(format!(
                "A code was whispered to `{name}` in game. Type `/mc verify <code>` here within {} minutes.",
                CODE_LIFETIME.as_secs() / 60
            )))
        }
        "verify" => {
            let code = inv
                .string("code")
                .ok_or_else(|| CommandError::invalid("code", "is required"))?;
            let roles: Vec<i64> = inv.member_roles().iter().map(|r| r.as_i64()).collect();
            let link = service
                .verify(guild, user, code, &roles, &by)
                .await
                .map_err(link_error)?;
            Ok(Reply::private(format!(
                "Linked to the Minecraft account `{}`{}.",
                link.minecraft_name,
                if link.whitelisted {
                    " and added to the whitelist"
                } else {
                    ""
                }
            )))
        }
        _ => {
            let link = service.unlink(guild, user, &by).await.map_err(link_error)?;
            Ok(Reply::private(format!(
                "Unlinked from `{}`{}.",
                link.minecraft_name,
                if link.whitelisted {
                    " and removed from the whitelist"
                } else {
                    ""
                }
            )))
        }
    }
}

fn link_error(e: LinkError) -> CommandError {
    // No wildcard arm: an outage must not read as a refusal.
    match e {
        LinkError::InvalidName(_) => CommandError::invalid("name", e.to_string()),
        LinkError::NoPendingCode
        | LinkError::CodeExpired
        | LinkError::WrongCode { .. }
        | LinkError::RateLimited { .. } => CommandError::invalid("code", e.to_string()),
        LinkError::PlayerNotOnline(_)
        | LinkError::NameTaken(_)
        | LinkError::AlreadyLinked(_)
        | LinkError::WhitelistRefused(_) => CommandError::NotConfigured(format!("{}.", e.reply())),
        LinkError::NotLinked | LinkError::NotAMember => {
            CommandError::NotFound(format!("{}.", e.reply()))
        }
        LinkError::Discord(_) => CommandError::Unavailable(format!("{}.", e.reply())),
        LinkError::Minecraft(e) => mc_error(e),
        LinkError::Store(e) => CommandError::Store(e),
        LinkError::Audit(e) => CommandError::Moderation(ModerationError::Audit(e)),
    }
}

/// Tells the member when the command ran but its audit entry is still pending.
fn audit_note(out: &CommandResponse) -> &'static str {
    match out.audit {
        AuditStatus::Recorded => "",
        AuditStatus::Pending => {
            "\n(The command ran; its audit entry is pending while the database is unavailable.)"
        }
    }
}

fn mc_error(e: MinecraftError) -> CommandError {
    // No wildcard arm: an outage must not read as a refusal (nor the other way round).
    match e {
        MinecraftError::NoServerForGuild | MinecraftError::UnknownServer(_) => {
            CommandError::NotConfigured(format!(
                "Minecraft is not configured for this server ({e})."
            ))
        }
        MinecraftError::Invalid { field, problem } => CommandError::invalid(field, problem),
        MinecraftError::NotAllowed { .. }
        | MinecraftError::EnvironmentManaged(_)
        | MinecraftError::Disabled(_)
        | MinecraftError::UnknownSchedule(_)
        | MinecraftError::UnknownRole(_) => CommandError::NotConfigured(e.to_string()),
        MinecraftError::Rcon(rcon) => match rcon {
            RconError::Disabled | RconError::Removed => {
                CommandError::NotConfigured(format!("The Minecraft server: {rcon}."))
            }
            RconError::AuthFailed
            | RconError::Unreachable(_)
            | RconError::Timeout(_)
            | RconError::ConnectionLost(_)
            | RconError::Protocol(_)
            | RconError::Reconnecting { .. }
            | RconError::NotAnswering { .. }
            | RconError::Restarted => {
                CommandError::Unavailable(format!("The Minecraft server is unavailable: {rcon}."))
            }
        },
        MinecraftError::Store(store) => CommandError::Store(store),
        MinecraftError::Audit(audit) => CommandError::Moderation(ModerationError::Audit(audit)),
        MinecraftError::Crypto(crypto) => {
            tracing::error!(error = %crypto, "cannot decrypt a Minecraft server's password");
            CommandError::Unavailable("The Minecraft server's settings cannot be read.".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::StoreError;

    #[test]
    fn an_rcon_or_database_outage_is_an_error_and_a_missing_server_a_refusal() {
        for (error, outcome) in [
            (
                MinecraftError::Rcon(RconError::Timeout(Duration::from_secs(1))),
                "error",
            ),
            (
                MinecraftError::Rcon(RconError::Unreachable("refused".into())),
                "error",
            ),
            (
                MinecraftError::Store(StoreError::Unavailable("down".into())),
                "error",
            ),
            (MinecraftError::NoServerForGuild, "refused"),
            (MinecraftError::Rcon(RconError::Disabled), "refused"),
        ] {
            let label = format!("{error:?}");
            assert_eq!(mc_error(error).outcome(), outcome, "{label}");
        }
    }
}

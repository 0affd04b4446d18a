//! `/settings show|set` and `/module list|enable|disable`; both need Manage Server.

use serenity::all::{CommandOptionType, CreateCommandOption, CreateEmbed, Permissions};

use super::{Invocation, Reply, Run, SlashCommand};
use crate::bot::error::CommandError;
use crate::domain::Snowflake;
use crate::domain::settings::{GuildSettings, ModuleName, SettingChange, SettingKey};

pub(super) const COMMANDS: &[SlashCommand] = &[
    SlashCommand {
        name: "module",
        description: "The bot's modules on this server",
        help: "List, enable or disable modules",
        module: None,
        permissions: Some(Permissions::MANAGE_GUILD),
        in_dms: false,
        options: module_options,
        run: Run::InGuild(|inv| Box::pin(module(inv))),
    },
    SlashCommand {
        name: "settings",
        description: "This server's bot settings",
        help: "Show or change this server's settings",
        module: Some(ModuleName::Admin),
        permissions: Some(Permissions::MANAGE_GUILD),
        in_dms: false,
        options: settings_options,
        run: Run::InGuild(|inv| Box::pin(settings(inv))),
    },
];

fn settings_options() -> Vec<CreateCommandOption> {
    let mut key =
        CreateCommandOption::new(CommandOptionType::String, "key", "The setting").required(true);
    for k in SettingKey::ALL {
        key = key.add_string_choice(k.as_str(), k.as_str());
    }
    vec![
        CreateCommandOption::new(CommandOptionType::SubCommand, "show", "Show the settings"),
        CreateCommandOption::new(CommandOptionType::SubCommand, "set", "Change a setting")
            .add_sub_option(key)
            .add_sub_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "value",
                    "A channel, a role, text, or `none` to clear",
                )
                .required(true)
                .max_length(1000),
            ),
    ]
}

fn module_options() -> Vec<CreateCommandOption> {
    let module = || {
        let mut o = CreateCommandOption::new(CommandOptionType::String, "module", "The module")
            .required(true);
        for m in ModuleName::ALL {
            o = o.add_string_choice(m.as_str(), m.as_str());
        }
        o
    };
    vec![
        CreateCommandOption::new(CommandOptionType::SubCommand, "list", "List the modules"),
        CreateCommandOption::new(CommandOptionType::SubCommand, "enable", "Enable a module")
            .add_sub_option(module()),
        CreateCommandOption::new(CommandOptionType::SubCommand, "disable", "Disable a module")
            .add_sub_option(module()),
    ]
}

/// The value of one setting as `/settings` shows it.
fn show_setting(s: &GuildSettings, key: SettingKey) -> String {
    let mention =
        |v: Option<Snowflake>, f: fn(Snowflake) -> String| v.map_or("not set".to_owned(), f);
    match key {
        SettingKey::LogChannel => mention(s.log_channel, |id| format!("<#{id}>")),
        SettingKey::ModRole => mention(s.mod_role, |id| format!("<@&{id}>")),
        SettingKey::WelcomeChannel => mention(s.welcome_channel, |id| format!("<#{id}>")),
        SettingKey::MinecraftRole => mention(s.minecraft_role, |id| format!("<@&{id}>")),
        SettingKey::WelcomeMessage => s
            .welcome_message
            .as_ref()
            .map_or_else(|| "not set".into(), |m| m.as_str().to_owned()),
        SettingKey::MinecraftServer => s.minecraft_server.as_ref().map_or_else(
            || "not set (the default server)".into(),
            |m| m.as_str().to_owned(),
        ),
    }
}

fn require_manage(inv: &Invocation<'_>) -> Result<(), CommandError> {
    if inv.has(Permissions::MANAGE_GUILD) {
        Ok(())
    } else {
        Err(CommandError::MissingPermission("Manage Server"))
    }
}

pub async fn settings(inv: &Invocation<'_>) -> Result<Reply, CommandError> {
    require_manage(inv)?;
    match inv.sub() {
        "show" => {
            let mut embed = CreateEmbed::new().title("Settings");
            for key in SettingKey::ALL {
                embed = embed.field(key.as_str(), show_setting(&inv.config.settings, key), false);
            }
            Ok(Reply::private("This server's settings:").with_embed(embed))
        }
        "set" => {
            let raw_key = inv
                .string("key")
                .ok_or_else(|| CommandError::invalid("key", "is required"))?;
            let key = SettingKey::parse(raw_key).map_err(|p| CommandError::invalid("key", p))?;
            let value = inv
                .string("value")
                .ok_or_else(|| CommandError::invalid("value", "is required"))?;
            let change = SettingChange::from_text(key, value)
                .map_err(|p| CommandError::invalid("value", p))?;
            // One column of the current row, not a write-back of the cached copy: a change
            // made meanwhile through the API is kept.
            let saved = inv
                .bot
                .state
                .guilds
                .change(inv.guild_id, vec![change], None, inv.actor(), inv.origin())
                .await?;
            Ok(Reply::private(format!(
                "`{}` is now {}.",
                key.as_str(),
                show_setting(&saved.settings, key)
            )))
        }
        other => Err(CommandError::invalid(
            "subcommand",
            format!("`{other}` is not one of show, set"),
        )),
    }
}

pub async fn module(inv: &Invocation<'_>) -> Result<Reply, CommandError> {
    require_manage(inv)?;
    match inv.sub() {
        "list" => {
            let lines: Vec<String> = inv
                .config
                .modules
                .iter()
                .map(|(name, on)| {
                    format!("`{name}` — {}", if *on { "enabled" } else { "disabled" })
                })
                .collect();
            Ok(Reply::private(lines.join("\n")))
        }
        sub @ ("enable" | "disable") => {
            let raw = inv
                .string("module")
                .ok_or_else(|| CommandError::invalid("module", "is required"))?;
            let module = ModuleName::parse(raw).map_err(|p| CommandError::invalid("module", p))?;
            let enabled = sub == "enable";
            inv.bot
                .state
                .guilds
                .set_module(inv.guild_id, module, enabled, inv.actor(), inv.origin())
                .await?;
            Ok(Reply::private(format!(
                "The {module} module is now {}.",
                if enabled { "enabled" } else { "disabled" }
            )))
        }
        other => Err(CommandError::invalid(
            "subcommand",
            format!("`{other}` is not one of list, enable, disable"),
        )),
    }
}

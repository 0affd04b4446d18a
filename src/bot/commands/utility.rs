//! `/ping` and `/help`.

use std::sync::Arc;
use std::time::Instant;

use serenity::all::{Context, CreateCommand, CreateEmbed};

use super::{Invocation, Reply, module_of};
use crate::bot::Bot;
use crate::bot::error::CommandError;

pub fn definitions() -> Vec<CreateCommand> {
    vec![
        CreateCommand::new("ping").description("Gateway and REST latency"),
        CreateCommand::new("help").description("The commands available on this server"),
    ]
}

/// (name, description) of every command, for `/help`.
const COMMANDS: &[(&str, &str)] = &[
    ("ping", "Gateway and REST latency"),
    ("help", "This list"),
    ("module", "List, enable or disable modules"),
    ("settings", "Show or change this server's settings"),
    ("warn", "Warn a member"),
    ("kick", "Kick a member"),
    ("ban", "Ban a user, optionally for a while"),
    ("unban", "Lift a ban"),
    ("timeout", "Time a member out"),
    ("untimeout", "Lift a timeout"),
    ("purge", "Delete recent messages"),
    ("cases", "Recent moderation cases"),
    ("case", "Show a case or change its reason"),
    ("mc", "The Minecraft server"),
];

pub async fn ping(bot: &Arc<Bot>, ctx: &Context) -> Result<Reply, CommandError> {
    let started = Instant::now();
    ctx.http.get_current_user().await.map_err(|e| {
        CommandError::Discord(crate::services::moderation::describe_discord_error(&e))
    })?;
    let rest_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = bot.gateway_status().await.and_then(|s| {
        s.shards
            .iter()
            .find(|sh| sh.id == ctx.shard_id.0)
            .and_then(|sh| sh.latency_ms)
    });
    let gateway = status.map_or_else(|| "not measured yet".to_owned(), |ms| format!("{ms:.0} ms"));
    Ok(Reply::private(format!(
        "Pong! Gateway: {gateway} · REST: {rest_ms:.0} ms"
    )))
}

pub fn help(inv: &Invocation<'_>) -> Reply {
    let lines: Vec<String> = COMMANDS
        .iter()
        .filter(|(name, _)| module_of(name).is_none_or(|m| inv.config.module_enabled(m)))
        .map(|(name, description)| format!("`/{name}` — {description}"))
        .collect();
    Reply::private("Commands available here:").with_embed(
        CreateEmbed::new()
            .title("guildhall")
            .description(lines.join("\n")),
    )
}

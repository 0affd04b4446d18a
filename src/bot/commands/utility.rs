//! `/ping` and `/help`.

use std::sync::Arc;
use std::time::Instant;

use serenity::all::CreateEmbed;

use super::{Invocation, Reply, Run, SlashCommand, no_options};
use crate::bot::error::CommandError;
use crate::bot::{Bot, Context};

pub(super) const COMMANDS: &[SlashCommand] = &[
    SlashCommand {
        name: "ping",
        description: "Gateway and REST latency",
        help: "Gateway and REST latency",
        module: None,
        permissions: None,
        in_dms: true,
        options: no_options,
        run: Run::Anywhere(|bot, ctx| Box::pin(ping(bot, ctx))),
    },
    SlashCommand {
        name: "help",
        description: "The commands available on this server",
        help: "This list",
        module: None,
        permissions: None,
        in_dms: true,
        options: no_options,
        run: Run::InGuild(|inv| Box::pin(async move { Ok(help(inv)) })),
    },
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
    let lines: Vec<String> = super::all()
        .filter(|c| c.module.is_none_or(|m| inv.config.module_enabled(m)))
        .map(|c| format!("`/{}` — {}", c.name, c.help))
        .collect();
    Reply::private("Commands available here:").with_embed(
        CreateEmbed::new()
            .title("guildhall")
            .description(lines.join("\n")),
    )
}

//! The Discord bot: gateway events become commands that call the same services and actors as
//! the web handlers. `GatewayActor` owns the gateway connections; its shard runners hand every
//! dispatched event to `Handler::dispatch`.

pub mod commands;
pub mod error;
pub mod sweeper;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serenity::all::{
    Guild, GuildId, GuildMemberUpdateEvent, Interaction, Member, Message, PartialGuild, Ready,
    ResumedEvent, ShardId, UnavailableGuild, User,
};
use serenity::builder::CreateMessage;
use serenity::http::Http;
use serenity::model::event::Event;

use crate::actors::gateway::{GatewayEvent, GatewayMailbox};
use crate::config::DiscordSettings;
use crate::domain::Snowflake;
use crate::state::AppState;
use crate::store::guilds::GuildUpsert;

/// What the handler and the commands share for one gateway session.
pub struct Bot {
    pub state: AppState,
    pub gateway: GatewayMailbox,
    pub settings: DiscordSettings,
    bot_user_id: AtomicU64,
    commands_registered: AtomicBool,
}

impl Bot {
    pub fn new(state: AppState, gateway: GatewayMailbox, settings: DiscordSettings) -> Self {
        Self {
            state,
            gateway,
            settings,
            bot_user_id: AtomicU64::new(0),
            commands_registered: AtomicBool::new(false),
        }
    }

    pub fn bot_user_id(&self) -> Option<Snowflake> {
        Snowflake::new(self.bot_user_id.load(Ordering::Relaxed)).ok()
    }

    fn count(&self, event: &str) {
        self.state
            .metrics
            .discord_events
            .with_label_values(&[event])
            .inc();
    }

    /// Whether this instance serves the guild (its shard is in this instance's range).
    pub fn serves(&self, guild_id: u64) -> bool {
        self.settings.shards.serves(guild_id)
    }

    /// Bulk-overwrites the slash commands: in the development guild when one is configured
    /// (instant), globally otherwise. Returns how many were registered.
    pub async fn register_commands(&self, http: &Http) -> Result<usize, String> {
        let definitions = commands::definitions();
        let count = definitions.len();
        let result = match self.settings.dev_guild_id {
            Some(guild) => serenity::model::id::GuildId::new(guild)
                .set_commands(http, definitions)
                .await
                .map(|_| ()),
            None => serenity::model::application::Command::set_global_commands(http, definitions)
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => {
                tracing::info!(count, dev_guild = ?self.settings.dev_guild_id, "slash commands registered");
                Ok(count)
            }
            Err(e) => {
                let message = format!(
                    "Discord refused the slash commands: {}",
                    with_field_errors(&e)
                );
                tracing::warn!(error = %message, "cannot register slash commands");
                self.gateway
                    .send(GatewayEvent::CommandsRefused(message.clone()));
                Err(message)
            }
        }
    }
}

/// Discord's description of a refused request with the field errors it lists (`Invalid Form
/// Body` alone does not say which command or option is wrong).
fn with_field_errors(e: &serenity::Error) -> String {
    let summary = crate::services::moderation::describe_discord_error(e);
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r))
            if !r.error.errors.is_empty() =>
        {
            let fields: Vec<String> = r
                .error
                .errors
                .iter()
                .map(|f| format!("{}: {} ({})", f.path, f.message, f.code))
                .collect();
            format!("{summary}: {}", fields.join("; "))
        }
        _ => summary,
    }
}

fn to_i64(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// What every event handler gets with its event: the session's REST client and the shard the
/// event came from (our counterpart of serenity's `Context`, which only serenity can build).
#[derive(Clone)]
pub struct Context {
    pub http: Arc<Http>,
    pub shard_id: ShardId,
}

/// The bot's event handler, fed by the gateway's shard runners (`actors::gateway::shard`).
/// Each event has a method of its own; every method counts its event, so tests (and operators)
/// can see that an event reached the bot rather than being dropped for an unexpected payload.
pub struct Handler {
    bot: Arc<Bot>,
}

impl Handler {
    pub fn new(bot: Arc<Bot>) -> Self {
        Self { bot }
    }

    /// Hands one dispatched event to its method; events the bot does not use are ignored.
    pub async fn dispatch(&self, ctx: Context, event: Event) {
        match event {
            Event::Ready(e) => self.ready(ctx, e.ready).await,
            Event::Resumed(e) => self.resume(ctx, e).await,
            Event::GuildCreate(e) => self.guild_create(ctx, e.guild).await,
            Event::GuildUpdate(e) => self.guild_update(ctx, e.guild).await,
            Event::GuildDelete(e) => self.guild_delete(ctx, e.guild).await,
            Event::GuildMemberAdd(e) => self.guild_member_addition(ctx, e.member).await,
            Event::GuildMemberUpdate(e) => self.guild_member_update(ctx, e).await,
            Event::GuildMemberRemove(e) => {
                self.guild_member_removal(ctx, e.guild_id, e.user).await;
            }
            Event::MessageCreate(e) => self.message(ctx, e.message).await,
            Event::InteractionCreate(e) => self.interaction_create(ctx, e.interaction).await,
            _ => {}
        }
    }

    async fn ready(&self, ctx: Context, ready: Ready) {
        let bot = &self.bot;
        bot.count("READY");
        bot.bot_user_id
            .store(ready.user.id.get(), Ordering::Relaxed);
        if let Ok(id) = Snowflake::new(ready.user.id.get()) {
            bot.state.discord.set_bot_user_id(id);
        }
        let (shard, total) = ready.shard.map_or((0, 1), |s| (s.id.0, s.total));
        tracing::info!(
            shard,
            total,
            guilds = ready.guilds.len(),
            "discord shard ready"
        );
        bot.gateway.send(GatewayEvent::Ready {
            guilds: ready.guilds.iter().map(|g| g.id.get()).collect(),
        });
        if !bot.commands_registered.swap(true, Ordering::AcqRel)
            && bot.register_commands(&ctx.http).await.is_err()
        {
            // Let the next READY (or `POST /api/v1/bot/reload`) try again.
            bot.commands_registered.store(false, Ordering::Release);
        }
    }

    async fn resume(&self, ctx: Context, _: ResumedEvent) {
        self.bot.count("RESUMED");
        tracing::info!(shard = ctx.shard_id.0, "discord shard resumed");
    }

    async fn guild_create(&self, _ctx: Context, guild: Guild) {
        let bot = &self.bot;
        bot.count("GUILD_CREATE");
        let row = GuildUpsert {
            id: to_i64(guild.id.get()),
            name: guild.name.clone(),
            icon: guild.icon.map(|i| i.to_string()),
            owner_id: Some(to_i64(guild.owner_id.get())),
            member_count: Some(i64::try_from(guild.member_count).unwrap_or(i64::MAX)),
        };
        if let Err(e) = bot.state.store.upsert_guild(&row).await {
            tracing::error!(guild = guild.id.get(), error = %e, "cannot record a guild");
        }
        bot.state.guild_config.invalidate(row.id).await;
        bot.gateway
            .send(GatewayEvent::GuildAvailable(guild.id.get()));
    }

    async fn guild_update(&self, _ctx: Context, new: PartialGuild) {
        let bot = &self.bot;
        bot.count("GUILD_UPDATE");
        let row = GuildUpsert {
            id: to_i64(new.id.get()),
            name: new.name.clone(),
            icon: new.icon.map(|i| i.to_string()),
            owner_id: Some(to_i64(new.owner_id.get())),
            member_count: None,
        };
        if let Err(e) = bot.state.store.update_guild(&row).await {
            tracing::error!(guild = new.id.get(), error = %e, "cannot update a guild");
        }
    }

    async fn guild_delete(&self, _ctx: Context, incomplete: UnavailableGuild) {
        let bot = &self.bot;
        bot.count("GUILD_DELETE");
        // `unavailable` means a Discord outage, not that the bot left: keep the guild listed.
        if incomplete.unavailable {
            return;
        }
        if let Err(e) = bot
            .state
            .store
            .mark_guild_left(to_i64(incomplete.id.get()))
            .await
        {
            tracing::error!(guild = incomplete.id.get(), error = %e, "cannot record leaving a guild");
        }
        bot.state
            .guild_config
            .invalidate(to_i64(incomplete.id.get()))
            .await;
        bot.gateway
            .send(GatewayEvent::GuildGone(incomplete.id.get()));
    }

    async fn guild_member_addition(&self, ctx: Context, member: Member) {
        let bot = &self.bot;
        bot.count("GUILD_MEMBER_ADD");
        let guild_id = member.guild_id.get();
        if let Err(e) = bot
            .state
            .store
            .adjust_member_count(to_i64(guild_id), 1)
            .await
        {
            tracing::warn!(guild = guild_id, error = %e, "cannot update the member count");
        }
        let Ok(config) = bot.state.guild_config.get(to_i64(guild_id)).await else {
            return;
        };
        let (Some(channel), Some(text)) = (
            config.settings.welcome_channel,
            config.settings.welcome_message.as_ref(),
        ) else {
            return;
        };
        let content = text
            .as_str()
            .replace("{user}", &format!("<@{}>", member.user.id.get()));
        let sent = serenity::model::id::ChannelId::new(channel.get())
            .send_message(&ctx.http, CreateMessage::new().content(content))
            .await;
        if let Err(e) = sent {
            tracing::warn!(guild = guild_id, error = %crate::services::moderation::describe_discord_error(&e), "cannot send the welcome message");
        }
    }

    async fn guild_member_update(&self, _ctx: Context, event: GuildMemberUpdateEvent) {
        self.bot.count("GUILD_MEMBER_UPDATE");
        self.bot
            .state
            .discord_sign_in
            .access()
            .on_member_update(&event)
            .await;
        let roles = event.roles.iter().map(|r| to_i64(r.get())).collect();
        let (guild, user) = (to_i64(event.guild_id.get()), to_i64(event.user.id.get()));
        self.bot
            .state
            .links
            .member_updated(guild, user, roles)
            .await;
    }

    async fn guild_member_removal(&self, _ctx: Context, guild_id: GuildId, user: User) {
        self.bot.count("GUILD_MEMBER_REMOVE");
        self.bot
            .state
            .discord_sign_in
            .access()
            .on_member_remove(guild_id.get(), user.id.get())
            .await;
        let (guild, user) = (to_i64(guild_id.get()), to_i64(user.id.get()));
        self.bot.state.links.member_left(guild, user).await;
    }

    async fn message(&self, _ctx: Context, _message: Message) {
        self.bot.count("MESSAGE_CREATE");
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        self.bot.count("INTERACTION_CREATE");
        if let Interaction::Command(command) = interaction {
            commands::handle(&self.bot, &ctx, &command).await;
        }
    }
}

impl Bot {
    /// The gateway actor's detailed status (latency per shard), if it answers.
    pub async fn gateway_status(&self) -> Option<crate::actors::gateway::BotStatus> {
        self.state
            .gateway
            .send(crate::actors::gateway::GetBotStatus)
            .await
            .ok()
    }
}

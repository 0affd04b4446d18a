//! What every web handler and bot command can reach: the store, the shared-state services and
//! the actors' addresses. Built once in `startup` and shared through `web::Data`.

use std::time::Instant;

use actix::Addr;

use crate::actors::audit::AuditLog;
use crate::actors::broadcaster::LogBroadcaster;
use crate::actors::gateway::GatewayActor;
use crate::bot::sweeper::BanSweeper;
use crate::metrics::Metrics;
use crate::minecraft::MinecraftService;
use crate::minecraft::schedule::ScheduleRunner;
use crate::services::discord::DiscordLink;
use crate::services::guild_config::{GuildConfigCache, GuildConfigService};
use crate::services::moderation::ModerationService;
use crate::shared::ratelimit::{Quota, RateLimiter};
use crate::shared::redis::Redis;
use crate::store::Store;

pub use crate::secrets::Secrets;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub redis: Option<Redis>,
    pub rate_limiter: RateLimiter,
    /// The default per-client limit for every rate-limited route; `None` when turned off.
    pub default_quota: Option<Quota>,
    pub audit: AuditLog,
    pub broadcaster: Addr<LogBroadcaster>,
    pub gateway: Addr<GatewayActor>,
    /// Minecraft servers over RCON: the registry of `RconActor`s and the shared command path.
    pub minecraft: MinecraftService,
    /// Minecraft accounts linked to Discord members, and the whitelist that follows roles.
    pub links: crate::minecraft::links::LinkService,
    /// Reconciles each server's whitelist with the links (one per instance; rounds claimed in
    /// the database).
    pub whitelist_sync: Addr<crate::minecraft::links_sync::WhitelistSync>,
    /// Runs due Minecraft schedules (one per instance; occurrences are claimed in the database).
    pub schedules: Addr<ScheduleRunner>,
    /// Lifts due temporary bans (one per instance; each ban is claimed in the database).
    pub ban_sweeper: Addr<BanSweeper>,
    pub metrics: Metrics,
    pub secrets: Secrets,
    pub started_at: Instant,
    /// Per-guild settings and modules, cached (Redis when configured).
    pub guild_config: GuildConfigCache,
    /// Reads and changes guilds' settings and modules (API, pages and `/settings` alike).
    pub guilds: GuildConfigService,
    /// Moderation actions (API, slash commands and the ban sweeper alike).
    pub moderation: ModerationService,
    /// The gateway session's REST client and the bot's user id, for the services.
    pub discord: DiscordLink,
    /// Users and API keys as authentication sees them, briefly cached (see `auth::cache`).
    pub auth_cache: crate::auth::cache::AuthCache,
    /// Per-minute samples of the last 24 hours for the overview's charts.
    pub history: crate::history::History,
    /// What the health monitor last saw of the database and Redis (read by `/ready`).
    pub health: crate::actors::health::HealthView,
    /// A credential in, a principal with its grants out (through `auth_cache`).
    pub authenticator: crate::auth::authenticate::Authenticator,
    /// Users, passwords and sessions (used alike by the API and the CLI).
    pub accounts: crate::services::accounts::Accounts,
    /// Users, roles and API keys as administrators change them (the API and the pages alike).
    pub admin: crate::services::admin::AdminService,
    /// Sign in with Discord, linking, and the guild access Discord roles give.
    pub discord_sign_in: crate::services::discord_sign_in::DiscordSignIn,
}

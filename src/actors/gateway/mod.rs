//! GatewayActor: owns this instance's Discord gateway session (one runner task per shard, see
//! `shard.rs`) and reports it to `/ready`, `/api/v1/bot/status`, the status stream and
//! `/metrics`.
//!
//! A session (one "generation") is: the REST client, the bot, the shard list from Discord's
//! `GET /gateway/bot` (or the configured range), and a runner per shard. Runners report every
//! stage change as a `ShardReport` the moment it happens, so the status never says connected
//! while a shard is not. Runners recover from lost and refused connections themselves (RESUME
//! with backoff; IDENTIFY only when Discord refuses the session); the actor only decides about
//! the whole session: a fatal close (invalid token 4004, refused intents 4013/4014, shard errors
//! 4010/4011) marks the gateway `failed` and stops it for good, since retrying cannot succeed
//! until the configuration changes; a failure to learn the gateway URL is retried with a bounded
//! backoff. A `Restart` (or the supervisor restarting the actor) starts a new session, which is
//! how an operator retries after fixing the configuration.
//!
//! Shutdown sends close code 1000 on every shard's connection and waits, bounded, until each
//! runner has seen Discord's answer (`Session::close`).

mod backoff;
mod member_order;
mod pacing;
mod shard;
mod status;
mod wire;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serenity::http::{Http, HttpBuilder};
use serenity::model::gateway::GatewayIntents;
use tokio::sync::watch;
use url::Url;

use super::broadcaster::{PublishStatus, StatusEvent};
use super::{ComponentStatus, GetStatus, Restart};
use crate::bot::{Bot, Handler as BotHandler};
use crate::config::{DiscordSettings, ShardSpec};
use crate::metrics::Metrics;
use crate::state::AppState;
use pacing::IdentifyPacer;
use shard::{ShardChange, ShardReport, ShardRunner};
pub use status::{BotStatus, ShardStage, ShardStatus};

/// Backoff between attempts to start a session after a transient failure (Discord's REST API
/// unreachable or answering 5xx while asked for the gateway URL).
const RETRY_BASE: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// How long a clean shutdown waits for the shards to close their connections (each runner
/// waits at most `shard::CLOSE_TIMEOUT` for Discord's answer).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(8);

// ---- messages --------------------------------------------------------------------------------

/// Hands the actor the application state its bot needs; sent once by `startup` after the state
/// exists (the state holds this actor's address, so it cannot be passed to `new`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Start(pub AppState);

/// The detailed status behind `/api/v1/bot/status`.
#[derive(Debug, Message)]
#[rtype(result = "BotStatus")]
pub struct GetBotStatus;

/// Re-registers the slash commands (bulk overwrite) with the running session.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, String>")]
pub struct SyncCommands;

/// Closes every shard cleanly (close code 1000) and does not reconnect; used on shutdown.
/// Answers once every shard has closed (or after `SHUTDOWN_TIMEOUT`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// What the bot's event handler tells the actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum GatewayEvent {
    /// A shard's READY: the guilds it serves.
    Ready {
        guilds: Vec<u64>,
    },
    GuildAvailable(u64),
    GuildGone(u64),
    /// Discord refused the slash command registration; the reason (with its field errors)
    /// becomes `last_error`.
    CommandsRefused(String),
}

/// Discord told the session where to connect and how many shards to run.
#[derive(Message)]
#[rtype(result = "()")]
struct Launch {
    generation: u64,
    gateway_url: String,
    total: u32,
    shards: Vec<u32>,
    max_concurrency: u32,
}

/// Starting the session failed before any shard ran.
#[derive(Message)]
#[rtype(result = "()")]
struct LaunchFailed {
    generation: u64,
    outcome: Outcome,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Retry {
    generation: u64,
}

#[derive(Debug, Clone)]
enum Outcome {
    /// Cannot work until the configuration changes; do not retry.
    Fatal(String),
    /// Worth retrying.
    Transient(String),
}

/// The actor's address with a count of the messages sent but not yet handled, so the mailbox
/// depth can be reported (actix does not expose it).
#[derive(Clone)]
pub struct GatewayMailbox {
    addr: Addr<GatewayActor>,
    depth: Arc<AtomicI64>,
    metrics: Metrics,
}

impl GatewayMailbox {
    pub fn send(&self, event: GatewayEvent) {
        let depth = self.depth.fetch_add(1, Ordering::Relaxed) + 1;
        self.metrics.discord_mailbox_depth.set(depth);
        self.addr.do_send(event);
    }

    pub fn depth(&self) -> i64 {
        self.depth.load(Ordering::Relaxed)
    }
}

// ---- session ---------------------------------------------------------------------------------

struct Session {
    generation: u64,
    http: Arc<Http>,
    bot: Arc<Bot>,
    /// Flipped to `true` to close every shard of the session.
    stop: watch::Sender<bool>,
    runners: Vec<tokio::task::JoinHandle<()>>,
}

impl Session {
    /// Closes every shard of the session with code 1000 and returns once each runner has
    /// finished (Discord answered the close, or the runner's own bound passed), or after
    /// `SHUTDOWN_TIMEOUT`.
    async fn close(self) {
        let _ = self.stop.send(true);
        let all = futures_util::future::join_all(self.runners);
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, all).await.is_err() {
            tracing::warn!(
                timeout = ?SHUTDOWN_TIMEOUT,
                "discord shards did not close in time; leaving them"
            );
        }
    }
}

// ---- actor -----------------------------------------------------------------------------------

pub struct GatewayActor {
    token: Option<SecretString>,
    discord: DiscordSettings,
    proxy: Option<Url>,
    metrics: Metrics,
    app: Option<AppState>,
    session: Option<Session>,
    generation: u64,
    shards: BTreeMap<u32, ShardStatus>,
    shard_total: Option<u32>,
    guilds: HashSet<u64>,
    /// Since when every shard has been connected (`None` while any is not).
    connected_since: Option<Instant>,
    /// Whether this session was ever fully connected: a shard that goes away afterwards is
    /// reconnecting, before that the session is still connecting.
    was_connected: bool,
    last_error: Option<String>,
    failed: Option<String>,
    stopped: bool,
    attempts: u32,
    status: ComponentStatus,
    depth: Arc<AtomicI64>,
    /// Outlives sessions: Discord's IDENTIFY rate applies to the token, so a new session (a
    /// restart) must not identify sooner than the pacing allows either.
    pacer: Option<Arc<IdentifyPacer>>,
}

impl GatewayActor {
    pub fn new(
        token: Option<SecretString>,
        discord: DiscordSettings,
        proxy: Option<Url>,
        metrics: Metrics,
    ) -> Self {
        let status = match token {
            None => ComponentStatus::disabled("DISCORD_TOKEN is not set"),
            Some(_) => ComponentStatus::Connecting,
        };
        metrics
            .discord_gateway_status
            .with_label_values(&[status.label()])
            .set(1);
        Self {
            token,
            discord,
            proxy,
            metrics,
            app: None,
            session: None,
            generation: 0,
            shards: BTreeMap::new(),
            shard_total: None,
            guilds: HashSet::new(),
            connected_since: None,
            was_connected: false,
            last_error: None,
            failed: None,
            stopped: false,
            attempts: 0,
            status,
            depth: Arc::new(AtomicI64::new(0)),
            pacer: None,
        }
    }

    fn intents(&self) -> GatewayIntents {
        let mut intents = GatewayIntents::GUILDS
            | GatewayIntents::GUILD_MODERATION
            | GatewayIntents::GUILD_MESSAGES;
        if self.discord.members_intent {
            intents |= GatewayIntents::GUILD_MEMBERS;
        }
        intents
    }

    fn handled_one(&self) {
        let depth = (self.depth.fetch_sub(1, Ordering::Relaxed) - 1).max(0);
        self.metrics.discord_mailbox_depth.set(depth);
    }

    fn build_http(&self, token: &SecretString) -> Http {
        let mut builder = HttpBuilder::new(token.expose_secret());
        if let Some(proxy) = &self.proxy {
            // serenity honours a proxy only with its own rate limiter off: the proxy (or the
            // fake Discord in tests) owns rate limits then.
            builder = builder
                .proxy(proxy.as_str().trim_end_matches('/'))
                .ratelimiter_disabled(true);
        }
        builder.build()
    }

    /// Starts a new session: asks Discord for the gateway URL and shard count; the shards are
    /// launched when the answer arrives (`Launch`).
    fn connect(&mut self, ctx: &mut Context<Self>) {
        let (Some(token), Some(app)) = (self.token.clone(), self.app.clone()) else {
            return;
        };
        if self.stopped || self.failed.is_some() {
            return;
        }
        self.teardown();
        self.generation += 1;
        let generation = self.generation;
        self.shards.clear();
        self.guilds.clear();
        self.shard_total = None;
        self.connected_since = None;
        self.was_connected = false;
        self.metrics.discord_guilds.set(0);
        self.metrics.discord_shard_connected.reset();
        // A new session starts from `connecting`, so watchers see the reconnection.
        self.publish();

        let http = Arc::new(self.build_http(&token));
        app.discord.set_http(Some(http.clone()));
        let mailbox = GatewayMailbox {
            addr: ctx.address(),
            depth: self.depth.clone(),
            metrics: self.metrics.clone(),
        };
        let bot = Arc::new(Bot::new(app, mailbox, self.discord.clone()));
        let (stop, _) = watch::channel(false);
        self.session = Some(Session {
            generation,
            http: http.clone(),
            bot,
            stop,
            runners: Vec::new(),
        });
        let spec = self.discord.shards;
        let addr = ctx.address();
        tracing::info!(generation, shards = %spec, intents = ?self.intents(), "connecting to the Discord gateway");
        actix::spawn(async move {
            match http.get_bot_gateway().await {
                Ok(gateway) => {
                    let (total, shards) = match spec {
                        ShardSpec::Auto => {
                            let total = gateway.shards.max(1);
                            (total, (0..total).collect())
                        }
                        ShardSpec::Range { first, last, total } => {
                            (total, (first..=last).collect())
                        }
                    };
                    addr.do_send(Launch {
                        generation,
                        gateway_url: gateway.url,
                        total,
                        shards,
                        max_concurrency: u32::try_from(gateway.session_start_limit.max_concurrency)
                            .unwrap_or(1),
                    });
                }
                Err(e) => addr.do_send(LaunchFailed {
                    generation,
                    outcome: classify(&e),
                }),
            }
        });
    }

    /// Stops the current session's shards in the background (close code 1000).
    fn teardown(&mut self) {
        if let Some(app) = &self.app {
            app.discord.set_http(None);
        }
        if let Some(session) = self.session.take() {
            actix::spawn(session.close());
        }
    }

    fn publish(&mut self) {
        let all_connected = !self.shards.is_empty()
            && self
                .shards
                .values()
                .all(|s| s.stage == ShardStage::Connected);
        if all_connected {
            self.connected_since.get_or_insert_with(Instant::now);
            self.was_connected = true;
        } else {
            self.connected_since = None;
        }
        for shard in self.shards.values() {
            let label = shard.id.to_string();
            let connected = shard.stage == ShardStage::Connected;
            self.metrics
                .discord_shard_connected
                .with_label_values(&[&label])
                .set(i64::from(connected));
            if !connected {
                // A latency measured on a connection that is gone says nothing now.
                let _ = self
                    .metrics
                    .discord_shard_latency
                    .remove_label_values(&[&label]);
            }
        }
        let status = if let Some(reason) = &self.failed {
            ComponentStatus::Failed {
                reason: reason.clone(),
            }
        } else if self.token.is_none() {
            ComponentStatus::disabled("DISCORD_TOKEN is not set")
        } else if self.stopped {
            ComponentStatus::disabled("the gateway was shut down")
        } else if all_connected {
            ComponentStatus::Connected
        } else if self.was_connected {
            let waiting: Vec<String> = self
                .shards
                .values()
                .filter(|s| s.stage != ShardStage::Connected)
                .map(|s| format!("shard {} is {}", s.id, s.stage.label()))
                .collect();
            ComponentStatus::Reconnecting {
                reason: waiting.join(", "),
            }
        } else if let Some(error) = &self.last_error {
            ComponentStatus::Reconnecting {
                reason: error.clone(),
            }
        } else {
            ComponentStatus::Connecting
        };
        if status != self.status {
            tracing::info!(
                status = status.label(),
                reason = status.reason(),
                "discord gateway"
            );
            let gauge = &self.metrics.discord_gateway_status;
            gauge.with_label_values(&[self.status.label()]).set(0);
            gauge.with_label_values(&[status.label()]).set(1);
            self.status = status;
            if let Some(app) = &self.app {
                app.broadcaster.do_send(PublishStatus(StatusEvent {
                    component: "gateway".into(),
                    status: serde_json::to_value(self.bot_status()).unwrap_or_default(),
                }));
            }
        }
    }

    fn bot_status(&self) -> BotStatus {
        BotStatus {
            status: self.status.clone(),
            shard_spec: self.discord.shards.to_string(),
            shard_total: self.shard_total,
            shards: self.shards.values().cloned().collect(),
            guilds: self.guilds.len(),
            uptime_secs: self.connected_since.map(|t| t.elapsed().as_secs()),
            last_error: self.last_error.clone(),
            bot_user_id: self
                .session
                .as_ref()
                .and_then(|s| s.bot.bot_user_id())
                .map(|id| id.to_string()),
            mailbox_depth: self.depth.load(Ordering::Relaxed),
        }
    }

    /// The whole gateway stops for good: the configuration must change first.
    fn fail(&mut self, reason: String) {
        tracing::error!(reason = %reason, "discord gateway failed; not retrying");
        self.teardown();
        for shard in self.shards.values_mut() {
            shard.stage = ShardStage::Failed;
            shard.reason = Some(reason.clone());
            shard.latency_ms = None;
        }
        self.last_error = Some(reason.clone());
        self.failed = Some(reason);
    }
}

/// Sorts an error of `GET /gateway/bot` into "give up" and "try again". Messages never carry
/// the token.
fn classify(error: &serenity::Error) -> Outcome {
    use serenity::http::HttpError;
    match error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response))
            if response.status_code.as_u16() == 401 =>
        {
            Outcome::Fatal("Discord rejected the token (HTTP 401); check DISCORD_TOKEN".into())
        }
        other => Outcome::Transient(format!("discord: {other}")),
    }
}

impl Actor for GatewayActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.publish();
        // After a supervisor restart the state is already here: reconnect at once.
        if self.app.is_some() {
            self.connect(ctx);
        }
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        self.teardown();
        Running::Stop
    }
}

impl Supervised for GatewayActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.metrics.actor_restarted("gateway");
        // A restart is the operator's way to retry after fixing what made the gateway fail.
        self.failed = None;
        self.stopped = false;
        self.attempts = 0;
        self.last_error = None;
    }
}

impl Handler<Start> for GatewayActor {
    type Result = ();

    fn handle(&mut self, msg: Start, ctx: &mut Self::Context) {
        self.app = Some(msg.0);
        if self.session.is_none() {
            self.connect(ctx);
        }
    }
}

impl Handler<GetStatus> for GatewayActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.status.clone())
    }
}

impl Handler<GetBotStatus> for GatewayActor {
    type Result = MessageResult<GetBotStatus>;

    fn handle(&mut self, _: GetBotStatus, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.bot_status())
    }
}

impl Handler<SyncCommands> for GatewayActor {
    type Result = ResponseFuture<Result<usize, String>>;

    fn handle(&mut self, _: SyncCommands, _ctx: &mut Self::Context) -> Self::Result {
        let session = self
            .session
            .as_ref()
            .map(|s| (s.http.clone(), s.bot.clone()));
        Box::pin(async move {
            let (http, bot) = session.ok_or_else(|| "the gateway is not connected".to_owned())?;
            bot.register_commands(&http).await
        })
    }
}

impl Handler<Shutdown> for GatewayActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
        self.stopped = true;
        if let Some(app) = &self.app {
            app.discord.set_http(None);
        }
        let session = self.session.take();
        self.publish();
        Box::pin(async move {
            if let Some(session) = session {
                session.close().await;
            }
        })
    }
}

impl Handler<Restart> for GatewayActor {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        tracing::warn!(actor = "gateway", reason = %msg.reason, "restart requested");
        ctx.stop();
    }
}

impl Handler<Launch> for GatewayActor {
    type Result = ();

    fn handle(&mut self, msg: Launch, ctx: &mut Self::Context) {
        let intents = self.intents().bits();
        let (Some(token), Some(session)) = (self.token.clone(), self.session.as_mut()) else {
            return;
        };
        // The answer of an older session that was replaced meanwhile.
        if session.generation != msg.generation || self.stopped {
            return;
        }
        self.shard_total = Some(msg.total);
        let pacer = match &self.pacer {
            Some(pacer) if pacer.max_concurrency() == msg.max_concurrency.max(1) => pacer.clone(),
            _ => Arc::new(IdentifyPacer::new(msg.max_concurrency)),
        };
        self.pacer = Some(pacer.clone());
        let handler = Arc::new(BotHandler::new(session.bot.clone()));
        for &id in &msg.shards {
            self.shards.insert(
                id,
                ShardStatus {
                    id,
                    stage: ShardStage::Connecting,
                    latency_ms: None,
                    reason: None,
                },
            );
            let runner = ShardRunner {
                id,
                total: msg.total,
                generation: msg.generation,
                token: token.clone(),
                intents,
                gateway_url: msg.gateway_url.clone(),
                reports: ctx.address().recipient(),
                pacer: pacer.clone(),
                http: session.http.clone(),
                handler: handler.clone(),
                stop: session.stop.subscribe(),
            };
            session.runners.push(tokio::spawn(runner.run()));
        }
        tracing::info!(shards = ?msg.shards, total = msg.total, max_concurrency = msg.max_concurrency, "discord shards started");
        self.publish();
    }
}

impl Handler<LaunchFailed> for GatewayActor {
    type Result = ();

    fn handle(&mut self, msg: LaunchFailed, ctx: &mut Self::Context) {
        if msg.generation != self.generation || self.stopped {
            return;
        }
        match msg.outcome {
            Outcome::Fatal(reason) => self.fail(reason),
            Outcome::Transient(reason) => {
                self.teardown();
                self.attempts += 1;
                let delay = RETRY_BASE
                    .saturating_mul(2u32.saturating_pow(self.attempts.min(16) - 1))
                    .min(RETRY_MAX);
                tracing::warn!(reason = %reason, retry_in = ?delay, "cannot start the discord gateway; retrying");
                self.last_error = Some(reason);
                let generation = self.generation;
                ctx.notify_later(Retry { generation }, delay);
            }
        }
        self.publish();
    }
}

impl Handler<Retry> for GatewayActor {
    type Result = ();

    fn handle(&mut self, msg: Retry, ctx: &mut Self::Context) {
        if msg.generation == self.generation && self.session.is_none() {
            self.connect(ctx);
        }
    }
}

impl Handler<ShardReport> for GatewayActor {
    type Result = ();

    fn handle(&mut self, msg: ShardReport, _ctx: &mut Self::Context) {
        if msg.generation != self.generation || self.failed.is_some() || self.stopped {
            return;
        }
        let label = msg.shard.to_string();
        match msg.change {
            ShardChange::Fatal(reason) => self.fail(reason),
            ShardChange::Latency(latency) => {
                if let Some(shard) = self.shards.get_mut(&msg.shard)
                    && shard.stage == ShardStage::Connected
                {
                    shard.latency_ms = Some(latency.as_secs_f64() * 1000.0);
                    self.metrics
                        .discord_shard_latency
                        .with_label_values(&[&label])
                        .set(latency.as_secs_f64());
                }
            }
            ShardChange::Stage { stage, reason } => {
                let shard = self.shards.entry(msg.shard).or_insert(ShardStatus {
                    id: msg.shard,
                    stage,
                    latency_ms: None,
                    reason: None,
                });
                shard.stage = stage;
                if stage == ShardStage::Connected {
                    shard.reason = None;
                    self.attempts = 0;
                } else {
                    shard.latency_ms = None;
                    shard.reason = reason;
                }
            }
        }
        self.publish();
    }
}

impl Handler<GatewayEvent> for GatewayActor {
    type Result = ();

    #[tracing::instrument(skip(self, _ctx), level = "debug")]
    fn handle(&mut self, msg: GatewayEvent, _ctx: &mut Self::Context) {
        self.handled_one();
        match msg {
            GatewayEvent::Ready { guilds } => {
                self.guilds.extend(guilds);
            }
            GatewayEvent::GuildAvailable(id) => {
                self.guilds.insert(id);
            }
            GatewayEvent::GuildGone(id) => {
                self.guilds.remove(&id);
            }
            GatewayEvent::CommandsRefused(reason) => {
                self.last_error = Some(reason);
            }
        }
        self.metrics
            .discord_guilds
            .set(i64::try_from(self.guilds.len()).unwrap_or(i64::MAX));
        self.publish();
    }
}

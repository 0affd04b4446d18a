//! GatewayActor: owns the Discord connection (serenity's client and shard manager), runs this
//! instance's shards, and reports their status to `/ready`, `/api/v1/bot/status`, the status
//! stream and `/metrics`.
//!
//! The serenity client runs in a task of its own; the actor starts it, watches it (a snapshot of
//! every shard's stage and latency each `SNAPSHOT_INTERVAL`) and decides what to do when it ends:
//! an invalid token (4004) or refused intents (4013/4014) mark the gateway `failed` and stop it
//! for good, since retrying cannot succeed until the configuration changes; anything else is
//! retried with a bounded backoff. A `Restart` (or the supervisor restarting the actor) starts
//! afresh, which is how an operator retries after fixing the configuration.
//!
//! Two serenity 0.12.5 behaviours shape this actor:
//! - While serenity restarts a shard (its runner gave up resuming) it removes the shard from
//!   `ShardManager.runners` until a new runner exists, which can take as long as the outage. A
//!   known shard missing from a snapshot is therefore reconnecting, not still connected.
//! - `ShardManager::shutdown_all` waits for each shard's acknowledgement on a channel that a
//!   runner-initiated restart also writes to, so after any reconnect it takes that stale
//!   acknowledgement as the answer and returns before the runner has closed. Shutting down
//!   therefore tells each runner itself and waits, bounded, until every task of the session has
//!   let go of its event handler (see `close_session`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serenity::gateway::{ConnectionStage, GatewayError, ShardManager, ShardRunnerMessage};
use serenity::http::{Http, HttpBuilder};
use serenity::model::gateway::GatewayIntents;
use url::Url;

use super::broadcaster::{PublishStatus, StatusEvent};
use super::{ComponentStatus, GetStatus, Restart};
use crate::bot::{Bot, Handler as BotHandler};
use crate::config::{DiscordSettings, ShardSpec};
use crate::metrics::Metrics;
use crate::state::AppState;

/// How often shard stages and latencies are read from the shard manager.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(500);
/// Backoff between attempts after a transient failure (Discord unreachable, 5xx).
const RETRY_BASE: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// How long a clean shutdown waits for the shards to close their connections.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(8);
/// How often a closing session is checked for tasks still running.
const CLOSE_POLL: Duration = Duration::from_millis(20);

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

/// The REST client of the running session, for moderation started from the API.
#[derive(Debug, Message)]
#[rtype(result = "Option<Arc<Http>>")]
pub struct GetHttp;

/// The running session's REST client and the bot's user id, once its first shard is READY.
#[derive(Debug, Message)]
#[rtype(result = "Option<DiscordSession>")]
pub struct GetSession;

#[derive(Clone)]
pub struct DiscordSession {
    pub http: Arc<Http>,
    pub bot_user_id: crate::domain::Snowflake,
}

/// Re-registers the slash commands (bulk overwrite) with the running session.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, String>")]
pub struct SyncCommands;

/// Closes every shard cleanly (close code 1000) and does not reconnect; used on shutdown.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// What the bot's event handler tells the actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum GatewayEvent {
    Ready {
        shard: u32,
        total: u32,
        guilds: Vec<u64>,
    },
    Resumed {
        shard: u32,
    },
    GuildAvailable(u64),
    GuildGone(u64),
    /// Discord refused the slash command registration; the reason (with its field errors)
    /// becomes `last_error`.
    CommandsRefused(String),
}

#[derive(Message)]
#[rtype(result = "()")]
struct ClientBuilt {
    generation: u64,
    http: Arc<Http>,
    manager: Arc<ShardManager>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct ClientEnded {
    generation: u64,
    outcome: Outcome,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Snapshot {
    generation: u64,
    shards: Vec<(u32, ConnectionStage, Option<Duration>)>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Retry {
    generation: u64,
}

/// How a client run ended.
#[derive(Debug, Clone)]
enum Outcome {
    /// Stopped on request.
    Stopped,
    /// Cannot work until the configuration changes; do not retry.
    Fatal(String),
    /// Worth retrying.
    Transient(String),
}

// ---- status types ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardStage {
    Connecting,
    Connected,
    Resuming,
    Disconnected,
    /// serenity dropped the shard's runner and queued a new one: reconnecting from scratch.
    Reconnecting,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShardStatus {
    pub id: u32,
    pub stage: ShardStage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BotStatus {
    #[serde(flatten)]
    pub status: ComponentStatus,
    /// `auto` or `first-last/total`.
    pub shard_spec: String,
    pub shard_total: Option<u32>,
    pub shards: Vec<ShardStatus>,
    pub guilds: usize,
    /// Seconds since every shard of the current session was last connected; `None` while any
    /// shard is not.
    pub uptime_secs: Option<u64>,
    pub last_error: Option<String>,
    pub bot_user_id: Option<String>,
    /// Messages waiting in this actor's mailbox.
    pub mailbox_depth: i64,
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

// ---- actor -----------------------------------------------------------------------------------

struct Session {
    generation: u64,
    http: Option<Arc<Http>>,
    manager: Option<Arc<ShardManager>>,
    bot: Arc<Bot>,
}

impl Session {
    /// Closes every shard of the session with code 1000 and returns once they are closed, or
    /// after `SHUTDOWN_TIMEOUT`.
    async fn close(self) {
        let Session { manager, bot, .. } = self;
        // Every task of the session (shard runners, the queuer, event dispatches) holds the
        // event handler, and through it the `Bot`: once none is left, every connection is
        // closed. Our own reference must go first.
        let alive = Arc::downgrade(&bot);
        drop(bot);
        if let Some(manager) = manager
            && tokio::time::timeout(SHUTDOWN_TIMEOUT, close_session(manager, alive))
                .await
                .is_err()
        {
            tracing::warn!(
                timeout = ?SHUTDOWN_TIMEOUT,
                "discord shards did not close in time; leaving them"
            );
        }
    }
}

/// Tells each running shard to close (code 1000), stops serenity's queuer (so no shard is
/// started again and the client's `start` returns), then waits until the session's tasks are
/// gone. The runners are told directly because `shutdown_all` may return on a stale
/// acknowledgement before (or without) telling them.
async fn close_session(manager: Arc<ShardManager>, alive: std::sync::Weak<Bot>) {
    let runners: Vec<_> = manager
        .runners
        .lock()
        .await
        .iter()
        .map(|(id, info)| (*id, info.runner_tx.clone()))
        .collect();
    for (id, runner) in &runners {
        runner.send_to_shard(ShardRunnerMessage::Shutdown(*id, 1000));
    }
    manager.shutdown_all().await;
    while alive.strong_count() > 0 {
        tokio::time::sleep(CLOSE_POLL).await;
    }
}

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

    /// Builds the serenity client and runs it in its own task.
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

        let mut builder = HttpBuilder::new(token.expose_secret());
        if let Some(proxy) = &self.proxy {
            // serenity honours a proxy only with its own rate limiter off: the proxy (or the
            // fake Discord in tests) owns rate limits then.
            builder = builder
                .proxy(proxy.as_str().trim_end_matches('/'))
                .ratelimiter_disabled(true);
        }
        let http = builder.build();
        let mailbox = GatewayMailbox {
            addr: ctx.address(),
            depth: self.depth.clone(),
            metrics: self.metrics.clone(),
        };
        // Until this session's client is built, services have none to use.
        app.discord.set_http(None);
        let bot = Arc::new(Bot::new(app, mailbox, self.discord.clone()));
        self.session = Some(Session {
            generation,
            http: None,
            manager: None,
            bot: bot.clone(),
        });
        let intents = self.intents();
        let spec = self.discord.shards;
        let addr = ctx.address();
        tracing::info!(generation, shards = %spec, intents = ?intents, "connecting to the Discord gateway");
        actix::spawn(async move {
            // `new_with_http` keeps the proxy and rate-limit settings of our Http.
            let built = serenity::client::ClientBuilder::new_with_http(http, intents)
                .event_handler(BotHandler::new(bot))
                .await;
            let mut client = match built {
                Ok(client) => client,
                Err(e) => {
                    addr.do_send(ClientEnded {
                        generation,
                        outcome: classify(&e),
                    });
                    return;
                }
            };
            addr.do_send(ClientBuilt {
                generation,
                http: client.http.clone(),
                manager: client.shard_manager.clone(),
            });
            let result = match spec {
                ShardSpec::Auto => client.start_autosharded().await,
                // serenity's range end is inclusive here (it boots `end - start + 1` shards).
                ShardSpec::Range { first, last, total } => {
                    client.start_shard_range(first..last, total).await
                }
            };
            let outcome = match result {
                Ok(()) => Outcome::Stopped,
                Err(e) => classify(&e),
            };
            addr.do_send(ClientEnded {
                generation,
                outcome,
            });
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
                .map(|s| format!("shard {} is {}", s.id, stage_label(s.stage)))
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

    fn snapshot(&self, ctx: &mut Context<Self>) {
        let Some(session) = &self.session else { return };
        let Some(manager) = session.manager.clone() else {
            return;
        };
        let generation = session.generation;
        let addr = ctx.address();
        actix::spawn(async move {
            let shards = manager
                .runners
                .lock()
                .await
                .iter()
                .map(|(id, info)| (id.0, info.stage, info.latency))
                .collect();
            addr.do_send(Snapshot { generation, shards });
        });
    }
}

fn stage_label(stage: ShardStage) -> &'static str {
    match stage {
        ShardStage::Connecting => "connecting",
        ShardStage::Connected => "connected",
        ShardStage::Resuming => "resuming",
        ShardStage::Disconnected => "disconnected",
        ShardStage::Reconnecting => "reconnecting",
        ShardStage::Failed => "failed",
    }
}

fn map_stage(stage: ConnectionStage) -> ShardStage {
    match stage {
        ConnectionStage::Connected => ShardStage::Connected,
        ConnectionStage::Resuming => ShardStage::Resuming,
        ConnectionStage::Disconnected => ShardStage::Disconnected,
        ConnectionStage::Connecting | ConnectionStage::Handshake | ConnectionStage::Identifying => {
            ShardStage::Connecting
        }
        // serenity's enum is non-exhaustive; a stage it adds later is a kind of connecting.
        _ => ShardStage::Connecting,
    }
}

/// Sorts a client error into "give up" and "try again". Messages never carry the token.
fn classify(error: &serenity::Error) -> Outcome {
    use serenity::Error as E;
    use serenity::http::HttpError;
    match error {
        E::Gateway(GatewayError::InvalidAuthentication) => Outcome::Fatal(
            "Discord rejected the token (close code 4004); check DISCORD_TOKEN".into(),
        ),
        E::Gateway(GatewayError::DisallowedGatewayIntents) => Outcome::Fatal(
            "Discord refused the requested intents (close code 4014); enable the Server Members \
             intent in the developer portal or set GUILDHALL_DISCORD_MEMBERS_INTENT=false"
                .into(),
        ),
        E::Gateway(GatewayError::InvalidGatewayIntents) => Outcome::Fatal(
            "Discord says the requested intents are invalid (close code 4013)".into(),
        ),
        E::Gateway(GatewayError::InvalidShardData) => Outcome::Fatal(
            "Discord refused the shard range (close code 4010); check GUILDHALL_SHARDS".into(),
        ),
        E::Gateway(GatewayError::OverloadedShard) => Outcome::Fatal(
            "Discord requires more shards (close code 4011); raise the total in GUILDHALL_SHARDS"
                .into(),
        ),
        E::Http(HttpError::UnsuccessfulRequest(response))
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
        ctx.run_interval(SNAPSHOT_INTERVAL, |act, ctx| act.snapshot(ctx));
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

impl Handler<GetHttp> for GatewayActor {
    type Result = MessageResult<GetHttp>;

    fn handle(&mut self, _: GetHttp, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.session.as_ref().and_then(|s| s.http.clone()))
    }
}

impl Handler<GetSession> for GatewayActor {
    type Result = MessageResult<GetSession>;

    fn handle(&mut self, _: GetSession, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.session.as_ref().and_then(|s| {
            Some(DiscordSession {
                http: s.http.clone()?,
                bot_user_id: s.bot.bot_user_id()?,
            })
        }))
    }
}

impl Handler<SyncCommands> for GatewayActor {
    type Result = ResponseFuture<Result<usize, String>>;

    fn handle(&mut self, _: SyncCommands, _ctx: &mut Self::Context) -> Self::Result {
        let session = self
            .session
            .as_ref()
            .and_then(|s| s.http.clone().map(|h| (h, s.bot.clone())));
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

impl Handler<ClientBuilt> for GatewayActor {
    type Result = ();

    fn handle(&mut self, msg: ClientBuilt, _ctx: &mut Self::Context) {
        match &mut self.session {
            Some(session) if session.generation == msg.generation => {
                if let Some(app) = &self.app {
                    app.discord.set_http(Some(msg.http.clone()));
                }
                session.http = Some(msg.http);
                session.manager = Some(msg.manager);
            }
            // A client of an older session finished building after it was replaced.
            _ => {
                actix::spawn(async move { msg.manager.shutdown_all().await });
            }
        }
    }
}

impl Handler<ClientEnded> for GatewayActor {
    type Result = ();

    fn handle(&mut self, msg: ClientEnded, ctx: &mut Self::Context) {
        if msg.generation != self.generation || self.stopped {
            return;
        }
        match msg.outcome {
            Outcome::Stopped => {}
            Outcome::Fatal(reason) => {
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
            Outcome::Transient(reason) => {
                self.teardown();
                self.attempts += 1;
                let delay = RETRY_BASE
                    .saturating_mul(2u32.saturating_pow(self.attempts.min(16) - 1))
                    .min(RETRY_MAX);
                tracing::warn!(reason = %reason, retry_in = ?delay, "discord gateway stopped; retrying");
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

impl Handler<Snapshot> for GatewayActor {
    type Result = ();

    fn handle(&mut self, msg: Snapshot, _ctx: &mut Self::Context) {
        if msg.generation != self.generation || self.failed.is_some() {
            return;
        }
        // serenity removes a shard from its runners while it queues a new connection for it.
        let present: HashSet<u32> = msg.shards.iter().map(|(id, ..)| *id).collect();
        for shard in self.shards.values_mut() {
            if !present.contains(&shard.id) && shard.stage != ShardStage::Failed {
                shard.stage = ShardStage::Reconnecting;
                shard.latency_ms = None;
            }
        }
        for (id, stage, latency) in msg.shards {
            let stage = map_stage(stage);
            let latency_ms = latency.map(|l| l.as_secs_f64() * 1000.0);
            if let Some(l) = latency
                && stage == ShardStage::Connected
            {
                self.metrics
                    .discord_shard_latency
                    .with_label_values(&[&id.to_string()])
                    .set(l.as_secs_f64());
            }
            let entry = self.shards.entry(id).or_insert(ShardStatus {
                id,
                stage,
                latency_ms,
                reason: None,
            });
            entry.stage = stage;
            entry.latency_ms = if stage == ShardStage::Connected {
                latency_ms.or(entry.latency_ms)
            } else {
                None
            };
            if stage == ShardStage::Connected {
                entry.reason = None;
                self.attempts = 0;
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
            GatewayEvent::Ready {
                shard,
                total,
                guilds,
            } => {
                self.shard_total = Some(total);
                self.guilds.extend(guilds);
                self.shards
                    .entry(shard)
                    .and_modify(|s| s.stage = ShardStage::Connected)
                    .or_insert(ShardStatus {
                        id: shard,
                        stage: ShardStage::Connected,
                        latency_ms: None,
                        reason: None,
                    });
                self.attempts = 0;
            }
            GatewayEvent::Resumed { shard } => {
                if let Some(s) = self.shards.get_mut(&shard) {
                    s.stage = ShardStage::Connected;
                }
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

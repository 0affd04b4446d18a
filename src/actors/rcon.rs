//! RconActor: one per Minecraft server, owning its one authenticated RCON connection.
//!
//! - Connects lazily: nothing happens until the first command (from the API, Discord, a
//!   schedule or the players endpoint). From then on it keeps the connection up, polls `list`
//!   every `poll_interval` (players online, round-trip time, and a dropped connection noticed
//!   before a user's command meets it), and reconnects with exponential backoff and jitter.
//! - Serialises commands: one in flight at a time, the rest wait in a FIFO queue, so concurrent
//!   callers never interleave packets on the connection.
//! - Applies a per-command timeout. After a timeout or a drop mid-response the connection's
//!   state is unknown (late packets would be read as the next command's answer), so it is
//!   dropped and a new one is made; the failed command is never re-sent, since it may have run.
//! - A command without an answer fails alone: once it has waited `stall_after`, the server is
//!   declared not answering and the commands queued behind it (and those that arrive until it
//!   ends) fail at once with `NotAnswering`, unsent, instead of waiting out its timeout.
//! - While in backoff after the server refused connections, a bare TCP connect probes it every
//!   `probe_interval`; the moment it accepts, the backoff ends and the actor logs in, so a
//!   server that comes back is used within a second however long the backoff had grown.
//! - A wrong password marks the server `auth_failed` and stops every retry until
//!   `Reconfigure` brings new settings.
//! - Responses in several packets and single packets over 4 KiB are read by the `rcon` crate
//!   (it sends an empty end-marker command after each command and concatenates packets until
//!   the marker's answer; a packet's length is only bounded by its header). Commands that
//!   produce no packet at all end at the marker too, as an empty response. What the crate does
//!   not do, this actor adds around it: timeouts, a bound on packet lengths (a bogus length
//!   would otherwise make the crate allocate gigabytes), and a liveness check of an idle
//!   connection before reusing it.

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use actix::prelude::*;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::broadcaster::{LogBroadcaster, PublishStatus, StatusEvent};
use super::{ComponentStatus, GetStatus, Restart};
use crate::ids::now_ms;
use crate::metrics::Metrics;
use crate::minecraft::command::{RconCommand, ServerName};
use crate::minecraft::players::{PlayerList, parse_list};

/// Largest RCON packet accepted from a server. Minecraft splits at 4 KiB and some servers send
/// one large packet (a long `help`); nothing legitimate comes near this.
pub const MAX_PACKET_BYTES: i32 = 4 * 1024 * 1024;
/// The smallest legal packet: id (4) + type (4) + two NUL terminators.
const MIN_PACKET_BYTES: i32 = 10;

/// Timing of one server's connection. Tests shorten these; the defaults suit a real server.
#[derive(Debug, Clone)]
pub struct RconTiming {
    /// TCP connect plus authentication.
    pub connect_timeout: Duration,
    /// From sending a command to its complete response.
    pub command_timeout: Duration,
    /// How often a connected server is asked `list`.
    pub poll_interval: Duration,
    /// First reconnect delay; doubles per failure up to `backoff_max` (each with jitter).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A command unanswered this long declares the server not answering (see the module doc).
    pub stall_after: Duration,
    /// How often a server that refused connections is probed during a backoff.
    pub probe_interval: Duration,
}

impl RconTiming {
    /// The defaults with `timeout` for connecting and for each command. A command waiting
    /// behind an unanswered one gives up after a quarter of that, at most 2 s: long enough for
    /// a slow command (a large `fill`, `save-all`), short enough that callers are not held.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            connect_timeout: timeout,
            command_timeout: timeout,
            stall_after: (timeout / 4).min(Duration::from_secs(2)),
            ..Self::default()
        }
    }
}

impl Default for RconTiming {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(30),
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(60),
            stall_after: Duration::from_secs(2),
            probe_interval: Duration::from_millis(250),
        }
    }
}

/// Where a server is and how to log in. `Debug` never prints the password.
#[derive(Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub password: SecretString,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ServerConfig({}:{}, password: ***)",
            self.host, self.port
        )
    }
}

impl ServerConfig {
    fn same_as(&self, other: &ServerConfig) -> bool {
        self.host == other.host
            && self.port == other.port
            && self.password.expose_secret() == other.password.expose_secret()
    }
}

/// The RCON boundary's error. Every variant says whether the command could have run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RconError {
    #[error("RCON authentication failed: the server refused the password")]
    AuthFailed,
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("no complete answer within {0:?}; the command may have run")]
    Timeout(Duration),
    #[error("the connection dropped before the answer was complete; the command may have run: {0}")]
    ConnectionLost(String),
    #[error("the server sent an invalid packet: {0}")]
    Protocol(String),
    #[error("reconnecting after an error; next attempt in {} ms (last error: {last_error})", retry_in.as_millis())]
    Reconnecting {
        retry_in: Duration,
        last_error: String,
    },
    #[error("the server is disabled")]
    Disabled,
    #[error("the server was removed")]
    Removed,
    #[error("the RCON actor restarted before answering; the command may have run")]
    Restarted,
    #[error(
        "server not answering: the command ahead of this one has had no answer for {} ms; this one was not sent",
        waited.as_millis()
    )]
    NotAnswering { waited: Duration },
}

impl RconError {
    /// True when the command may have reached the server (so it must not be re-sent blindly).
    pub fn may_have_run(&self) -> bool {
        match self {
            RconError::Timeout(_) | RconError::ConnectionLost(_) | RconError::Restarted => true,
            RconError::Protocol(_) => true,
            RconError::AuthFailed
            | RconError::Unreachable(_)
            | RconError::Reconnecting { .. }
            | RconError::NotAnswering { .. }
            | RconError::Disabled
            | RconError::Removed => false,
        }
    }
}

/// The connection state of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RconState {
    /// Not used yet: connects on the first command.
    Idle,
    Connecting,
    Connected,
    /// Lost its connection (drop, timeout, bad packet) and is trying again with backoff.
    Reconnecting,
    /// Cannot connect (refused, unresolvable, no answer); trying again with backoff.
    Unreachable,
    /// The password was refused; no retry until the server's settings change.
    AuthFailed,
}

/// What `GET /api/v1/minecraft/servers/{name}/status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub state: RconState,
    pub last_error: Option<String>,
    /// Round-trip time of the last successful command, in milliseconds.
    pub rtt_ms: Option<f64>,
    pub players: Option<PlayerList>,
    /// When the current connection was made (Unix ms).
    pub connected_since: Option<i64>,
    /// When `list` last answered (Unix ms).
    pub players_updated_at: Option<i64>,
    pub next_retry_in_ms: Option<u64>,
    pub queued_commands: usize,
}

/// A command's answer.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub raw: String,
    pub rtt: Duration,
}

// ---- messages --------------------------------------------------------------------------------

/// Runs one command; answers when it completes or fails. Commands run in arrival order.
#[derive(Debug, Message)]
#[rtype(result = "Result<CommandOutput, RconError>")]
pub struct Execute(pub RconCommand);

#[derive(Debug, Message)]
#[rtype(result = "ServerStatus")]
pub struct GetServerStatus;

/// New settings: drops the connection, clears an auth failure, reconnects if it was in use.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Reconfigure(pub ServerConfig);

/// The server was removed or disabled: fail what waits, close the connection, stop for good.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Retire;

// ---- actor -----------------------------------------------------------------------------------

type Reply = oneshot::Sender<Result<CommandOutput, RconError>>;

enum Job {
    User {
        command: RconCommand,
        reply: Reply,
    },
    /// The periodic `list` (and the reconnect attempt after a backoff).
    Poll,
}

impl Job {
    fn fail(self, error: RconError) {
        if let Job::User { reply, .. } = self {
            let _ = reply.send(Err(error));
        }
    }
}

struct Link {
    conn: rcon::Connection<GuardedStream>,
    socket: Arc<TcpStream>,
}

impl Link {
    /// An idle connection the server closed (a restart, an idle timeout) reads as EOF; one
    /// with stray bytes waiting would mix them into the next answer. Either way: reconnect.
    fn is_reusable(&self) -> bool {
        let mut byte = [MaybeUninit::<u8>::uninit()];
        match socket2::SockRef::from(&*self.socket).peek(&mut byte) {
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            Ok(_) => false,
        }
    }
}

/// A command's outcome: the link, the answer, its round trip and whether the link is new; or
/// the error and whether a TCP connection to the server was made (false: it refused or could
/// not be reached, which is what the backoff probe can see change).
type Attempt = Result<(Link, String, Duration, bool), (RconError, bool)>;

pub struct RconActor {
    name: ServerName,
    config: ServerConfig,
    timing: RconTiming,
    metrics: Metrics,
    broadcaster: Option<Addr<LogBroadcaster>>,
    link: Option<Link>,
    queue: VecDeque<Job>,
    in_flight: Option<Job>,
    state: RconState,
    last_error: Option<String>,
    rtt: Option<Duration>,
    players: Option<PlayerList>,
    players_updated_at: Option<i64>,
    connected_since: Option<i64>,
    /// Failures in a row; drives the backoff.
    failures: u32,
    retry_at: Option<Instant>,
    retry_timer: Option<SpawnHandle>,
    poll_timer: Option<SpawnHandle>,
    /// Probes a server that refused connections while the backoff runs.
    probe_timer: Option<SpawnHandle>,
    probing: bool,
    /// Whether the last failed attempt got a TCP connection (then a probe proves nothing).
    last_attempt_connected: bool,
    /// Counts started jobs, so the stall timer of an earlier job does nothing.
    job_seq: u64,
    in_flight_since: Option<Instant>,
    stall_timer: Option<SpawnHandle>,
    /// The in-flight job has waited `stall_after`: everything else fails fast until it ends.
    stalled: bool,
    /// When the server was last found down (None while it is up), for the recovery log line.
    down_since: Option<Instant>,
    /// Set by the first command: from then on the connection is kept up.
    in_use: bool,
    /// Bumped by `Reconfigure`, so a result from the old settings does not set the new state.
    generation: u64,
    retired: bool,
    /// Told the server's name when it is connected again after an outage.
    recovered: Option<tokio::sync::broadcast::Sender<ServerName>>,
}

impl RconActor {
    pub fn new(
        name: ServerName,
        config: ServerConfig,
        timing: RconTiming,
        metrics: Metrics,
        broadcaster: Option<Addr<LogBroadcaster>>,
    ) -> Self {
        Self {
            name,
            config,
            timing,
            metrics,
            broadcaster,
            link: None,
            queue: VecDeque::new(),
            in_flight: None,
            state: RconState::Idle,
            last_error: None,
            rtt: None,
            players: None,
            players_updated_at: None,
            connected_since: None,
            failures: 0,
            retry_at: None,
            retry_timer: None,
            poll_timer: None,
            probe_timer: None,
            probing: false,
            last_attempt_connected: false,
            job_seq: 0,
            in_flight_since: None,
            stall_timer: None,
            stalled: false,
            down_since: None,
            in_use: false,
            generation: 0,
            retired: false,
            recovered: None,
        }
    }

    /// Reports each recovery (connected again after an outage) on `to`, so that work waiting
    /// for the server (the whitelist reconciliation) runs as soon as it is back.
    pub fn reporting_recovery(mut self, to: tokio::sync::broadcast::Sender<ServerName>) -> Self {
        self.recovered = Some(to);
        self
    }

    pub fn name(&self) -> &ServerName {
        &self.name
    }

    fn component_status(&self) -> ComponentStatus {
        let reason = || {
            self.last_error
                .clone()
                .unwrap_or_else(|| "no error recorded".into())
        };
        match self.state {
            RconState::Idle => ComponentStatus::Idle,
            RconState::Connecting => ComponentStatus::Connecting,
            RconState::Connected => ComponentStatus::Connected,
            RconState::Reconnecting => ComponentStatus::Reconnecting { reason: reason() },
            RconState::Unreachable => ComponentStatus::Unreachable { reason: reason() },
            RconState::AuthFailed => ComponentStatus::AuthFailed { reason: reason() },
        }
    }

    fn server_status(&self) -> ServerStatus {
        ServerStatus {
            state: self.state,
            last_error: self.last_error.clone(),
            rtt_ms: self
                .rtt
                .map(|d| (d.as_secs_f64() * 100_000.0).round() / 100.0),
            players: self.players.clone(),
            connected_since: self.connected_since,
            players_updated_at: self.players_updated_at,
            next_retry_in_ms: self.retry_at.map(|at| {
                u64::try_from(at.saturating_duration_since(Instant::now()).as_millis())
                    .unwrap_or(u64::MAX)
            }),
            queued_commands: self.queue.len() + usize::from(self.in_flight.is_some()),
        }
    }

    fn set_state(&mut self, state: RconState) {
        let up = i64::from(state == RconState::Connected);
        self.metrics
            .rcon_up
            .with_label_values(&[self.name.as_str()])
            .set(up);
        if state == self.state {
            return;
        }
        self.state = state;
        // One ERROR when the server goes down, one INFO when it is back: an outage does not
        // log once per failed attempt or per refused command.
        match state {
            RconState::Connected => match self.down_since.take() {
                Some(since) => {
                    tracing::info!(
                        server = %self.name,
                        down_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "rcon connected again"
                    );
                    if let Some(to) = &self.recovered {
                        // No receiver (nothing waits for this server) is fine.
                        let _ = to.send(self.name.clone());
                    }
                }
                None => tracing::info!(server = %self.name, "rcon connected"),
            },
            RconState::AuthFailed => tracing::error!(
                server = %self.name,
                "rcon password refused; not retrying until the server's settings change"
            ),
            RconState::Reconnecting | RconState::Unreachable => {
                if self.down_since.is_none() {
                    self.down_since = Some(Instant::now());
                    tracing::error!(
                        server = %self.name,
                        state = ?state,
                        error = self.last_error.as_deref().unwrap_or_default(),
                        "rcon server unavailable; commands fail fast until it is back"
                    );
                } else {
                    tracing::debug!(server = %self.name, state = ?state, error = self.last_error.as_deref().unwrap_or_default(), "rcon still unavailable");
                }
            }
            RconState::Idle | RconState::Connecting => {}
        }
        if let Some(broadcaster) = &self.broadcaster {
            let status =
                serde_json::to_value(self.component_status()).unwrap_or(serde_json::Value::Null);
            broadcaster.do_send(PublishStatus(StatusEvent {
                component: format!("rcon.servers.{}", self.name),
                status,
            }));
        }
    }

    fn set_players(&mut self, players: Option<PlayerList>) {
        let gauge = self
            .metrics
            .minecraft_players_online
            .with_label_values(&[self.name.as_str()]);
        gauge.set(players.as_ref().map_or(0, |p| i64::from(p.online)));
        self.players = players;
        self.players_updated_at = Some(now_ms());
    }

    fn fail_queue(&mut self, error: &RconError) {
        for job in self.queue.drain(..) {
            job.fail(error.clone());
        }
    }

    /// Starts the next queued job unless one is running.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.stalled {
            let waited = self
                .in_flight_since
                .map(|since| since.elapsed())
                .unwrap_or_default();
            self.fail_queue(&RconError::NotAnswering { waited });
            return;
        }
        while self.in_flight.is_none() && !self.retired {
            let Some(job) = self.queue.pop_front() else {
                return;
            };
            if self.state == RconState::AuthFailed {
                job.fail(RconError::AuthFailed);
                continue;
            }
            if let Some(at) = self.retry_at {
                // Commands fail fast during a backoff: holding them for up to a minute would
                // outlive every HTTP and Discord timeout, and the caller can try again.
                job.fail(RconError::Reconnecting {
                    retry_in: at.saturating_duration_since(Instant::now()),
                    last_error: self.last_error.clone().unwrap_or_default(),
                });
                continue;
            }
            self.start(job, ctx);
        }
    }

    fn start(&mut self, job: Job, ctx: &mut Context<Self>) {
        let command = match &job {
            Job::User { command, .. } => command.as_str().to_owned(),
            Job::Poll => "list".to_owned(),
        };
        let link = self.link.take().filter(|link| {
            let reusable = link.is_reusable();
            if !reusable {
                tracing::debug!(server = %self.name, "idle rcon connection was closed; reconnecting");
            }
            reusable
        });
        if link.is_none() && self.state == RconState::Idle {
            self.set_state(RconState::Connecting);
        }
        self.in_use = true;
        self.in_flight = Some(job);
        self.in_flight_since = Some(Instant::now());
        self.job_seq += 1;
        let seq = self.job_seq;
        self.stall_timer = Some(ctx.run_later(self.timing.stall_after, move |act, ctx| {
            act.stall_timer = None;
            if act.job_seq == seq && act.in_flight.is_some() {
                act.declare_stalled(ctx);
            }
        }));
        let config = self.config.clone();
        let timing = self.timing.clone();
        let generation = self.generation;
        let attempt = async move {
            let (mut link, fresh) = match link {
                Some(link) => (link, false),
                None => (connect(&config, timing.connect_timeout).await?, true),
            };
            let started = Instant::now();
            match tokio::time::timeout(timing.command_timeout, link.conn.cmd(&command)).await {
                Ok(Ok(text)) => Ok((link, text, started.elapsed(), fresh)),
                Ok(Err(e)) => Err((command_error(e), true)),
                Err(_) => Err((RconError::Timeout(timing.command_timeout), true)),
            }
        };
        ctx.spawn(
            attempt
                .into_actor(self)
                .map(move |result, act, ctx| act.finish(generation, result, ctx)),
        );
    }

    /// The in-flight job has had no answer for `stall_after`: whoever waits behind it is told
    /// now, and so is everyone who asks until it ends (see `pump`).
    fn declare_stalled(&mut self, ctx: &mut Context<Self>) {
        self.stalled = true;
        let waited = self
            .in_flight_since
            .map(|since| since.elapsed())
            .unwrap_or_default();
        self.last_error = Some(format!(
            "server not answering: no answer for {} ms",
            waited.as_millis()
        ));
        self.set_state(RconState::Reconnecting);
        self.pump(ctx);
    }

    fn finish(&mut self, generation: u64, result: Attempt, ctx: &mut Context<Self>) {
        let job = self.in_flight.take();
        self.in_flight_since = None;
        self.stalled = false;
        if let Some(handle) = self.stall_timer.take() {
            ctx.cancel_future(handle);
        }
        if generation != self.generation || self.retired {
            // Answered under settings that no longer apply: the caller still gets its answer,
            // but the connection and the state belong to the old settings.
            if let Some(Job::User { reply, .. }) = job {
                let _ = reply.send(
                    result
                        .map(|(_, raw, rtt, _)| CommandOutput { raw, rtt })
                        .map_err(|(error, _)| error),
                );
            }
            self.pump(ctx);
            return;
        }
        match result {
            Ok((link, raw, rtt, fresh)) => {
                self.link = Some(link);
                self.failures = 0;
                self.rtt = Some(rtt);
                if fresh {
                    self.connected_since = Some(now_ms());
                }
                self.set_state(RconState::Connected);
                self.metrics
                    .rcon_command_seconds
                    .with_label_values(&[self.name.as_str()])
                    .observe(rtt.as_secs_f64());
                self.ensure_polling(ctx);
                match job {
                    Some(Job::Poll) => self.set_players(parse_list(&raw)),
                    Some(Job::User { command, reply }) => {
                        if command.root() == "list"
                            && let Some(players) = parse_list(&raw)
                        {
                            self.set_players(Some(players));
                        }
                        let _ = reply.send(Ok(CommandOutput { raw, rtt }));
                    }
                    None => {}
                }
            }
            Err((error, connected)) => {
                self.link = None;
                self.connected_since = None;
                self.last_attempt_connected = connected;
                self.last_error = Some(error.to_string());
                match &error {
                    RconError::AuthFailed => {
                        self.cancel_timers(ctx);
                        self.set_players(None);
                        self.set_state(RconState::AuthFailed);
                        self.fail_queue(&RconError::AuthFailed);
                    }
                    RconError::Unreachable(_) => {
                        self.set_state(RconState::Unreachable);
                        self.schedule_retry(ctx);
                    }
                    RconError::Timeout(_)
                    | RconError::ConnectionLost(_)
                    | RconError::Protocol(_)
                    | RconError::Reconnecting { .. }
                    | RconError::NotAnswering { .. }
                    | RconError::Disabled
                    | RconError::Removed
                    | RconError::Restarted => {
                        self.set_state(RconState::Reconnecting);
                        self.schedule_retry(ctx);
                    }
                }
                if let Some(job) = job {
                    job.fail(error);
                }
            }
        }
        self.pump(ctx);
    }

    /// Exponential backoff with "equal jitter": half the delay fixed, half random, so many
    /// instances (or servers) that lost a proxy at once do not reconnect in lockstep.
    fn schedule_retry(&mut self, ctx: &mut Context<Self>) {
        self.failures = self.failures.saturating_add(1);
        let exponent = self.failures.saturating_sub(1).min(16);
        let ceiling = self
            .timing
            .backoff_base
            .saturating_mul(1u32 << exponent)
            .min(self.timing.backoff_max);
        let half = ceiling / 2;
        let delay = half + half.mul_f64(rand::rng().random_range(0.0..=1.0));
        self.retry_at = Some(Instant::now() + delay);
        if let Some(handle) = self.retry_timer.take() {
            ctx.cancel_future(handle);
        }
        self.retry_timer = Some(ctx.run_later(delay, |act, ctx| {
            act.retry_timer = None;
            act.end_backoff(ctx);
        }));
        if !self.last_attempt_connected && self.probe_timer.is_none() {
            self.probe_timer = Some(ctx.run_interval(self.timing.probe_interval, |act, ctx| {
                act.probe(ctx);
            }));
        }
    }

    /// Ends the backoff now: the next job (a reconnecting `list`) runs at once.
    fn end_backoff(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.retry_timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(handle) = self.probe_timer.take() {
            ctx.cancel_future(handle);
        }
        self.retry_at = None;
        self.queue.push_front(Job::Poll);
        self.pump(ctx);
    }

    /// A bare TCP connect, closed at once: costs the server nothing (no login, no command)
    /// and tells whether it accepts connections again.
    fn probe(&mut self, ctx: &mut Context<Self>) {
        if self.probing || self.retry_at.is_none() {
            return;
        }
        self.probing = true;
        let (host, port) = (self.config.host.clone(), self.config.port);
        let within = self.timing.probe_interval.max(Duration::from_millis(50));
        let generation = self.generation;
        let attempt = async move {
            matches!(
                tokio::time::timeout(within, TcpStream::connect((host.as_str(), port))).await,
                Ok(Ok(_))
            )
        };
        ctx.spawn(attempt.into_actor(self).map(move |accepted, act, ctx| {
            act.probing = false;
            if accepted && generation == act.generation && act.retry_at.is_some() && !act.retired
            {
                tracing::debug!(server = %act.name, "rcon server accepts connections again; reconnecting now");
                act.end_backoff(ctx);
            }
        }));
    }

    fn ensure_polling(&mut self, ctx: &mut Context<Self>) {
        if self.poll_timer.is_some() {
            return;
        }
        self.poll_timer = Some(ctx.run_interval(self.timing.poll_interval, |act, ctx| {
            let idle = act.in_flight.is_none() && act.queue.is_empty();
            if idle && act.retry_at.is_none() && act.state != RconState::AuthFailed {
                act.queue.push_back(Job::Poll);
                act.pump(ctx);
            }
        }));
    }

    fn cancel_timers(&mut self, ctx: &mut Context<Self>) {
        for handle in [
            self.retry_timer.take(),
            self.poll_timer.take(),
            self.probe_timer.take(),
        ]
        .into_iter()
        .flatten()
        {
            ctx.cancel_future(handle);
        }
        self.retry_at = None;
    }
}

/// Connects and logs in. On failure, also says whether the TCP connection was made.
async fn connect(config: &ServerConfig, within: Duration) -> Result<Link, (RconError, bool)> {
    let connected = std::sync::atomic::AtomicBool::new(false);
    let attempt = async {
        let socket = TcpStream::connect((config.host.as_str(), config.port))
            .await
            .map_err(|e| RconError::Unreachable(format!("{}:{}: {e}", config.host, config.port)))?;
        connected.store(true, std::sync::atomic::Ordering::Relaxed);
        // Commands are small and latency matters more than packet count.
        let _ = socket.set_nodelay(true);
        let socket = Arc::new(socket);
        let stream = GuardedStream::new(socket.clone());
        let conn = rcon::Connection::builder()
            .enable_minecraft_quirks(true)
            .handshake(stream, config.password.expose_secret())
            .await
            .map_err(|e| match e {
                rcon::Error::Auth => RconError::AuthFailed,
                // Minecraft closes the socket right after a refused login; a server that
                // closes before answering at all is unreachable for our purposes.
                rcon::Error::Io(e) => RconError::Unreachable(format!("during login: {e}")),
                rcon::Error::CommandTooLong => RconError::Protocol("login refused".into()),
            })?;
        Ok(Link { conn, socket })
    };
    let result = match tokio::time::timeout(within, attempt).await {
        Ok(result) => result,
        Err(_) => Err(RconError::Unreachable(format!(
            "{}:{} did not complete the login within {within:?}",
            config.host, config.port
        ))),
    };
    result.map_err(|e| (e, connected.load(std::sync::atomic::Ordering::Relaxed)))
}

fn command_error(e: rcon::Error) -> RconError {
    match e {
        rcon::Error::Auth => RconError::AuthFailed,
        // Validated by `RconCommand` before queueing; kept as a protocol error just in case.
        rcon::Error::CommandTooLong => RconError::Protocol("command too long".into()),
        rcon::Error::Io(e) if e.kind() == io::ErrorKind::InvalidData => {
            RconError::Protocol(e.to_string())
        }
        rcon::Error::Io(e) => RconError::ConnectionLost(e.to_string()),
    }
}

impl Actor for RconActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.retired {
            // Restarted by its supervisor while someone still held its address: stay inert.
            return;
        }
        // Runs again after a supervised restart: a server in use reconnects at once.
        if self.in_use && self.state != RconState::AuthFailed {
            self.queue.push_front(Job::Poll);
            self.pump(ctx);
        }
        self.set_state(self.state);
    }
}

impl Supervised for RconActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.metrics.actor_restarted("rcon");
        // Timers and the in-flight future died with the old context; their callers are told.
        self.link = None;
        self.poll_timer = None;
        self.retry_timer = None;
        self.probe_timer = None;
        self.stall_timer = None;
        self.probing = false;
        self.stalled = false;
        self.in_flight_since = None;
        self.retry_at = None;
        self.connected_since = None;
        if let Some(job) = self.in_flight.take() {
            job.fail(RconError::Restarted);
        }
        self.fail_queue(&RconError::Restarted);
        if !self.retired && self.state != RconState::AuthFailed {
            let state = if self.in_use {
                RconState::Reconnecting
            } else {
                RconState::Idle
            };
            self.set_state(state);
        }
    }
}

impl Handler<Execute> for RconActor {
    type Result = ResponseFuture<Result<CommandOutput, RconError>>;

    fn handle(&mut self, msg: Execute, ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return Box::pin(async { Err(RconError::Removed) });
        }
        tracing::debug!(server = %self.name, command = %msg.0.root(), queued = self.queue.len(), "rcon command queued");
        let (reply, answer) = oneshot::channel();
        self.queue.push_back(Job::User {
            command: msg.0,
            reply,
        });
        self.pump(ctx);
        Box::pin(async move { answer.await.unwrap_or(Err(RconError::Restarted)) })
    }
}

impl Handler<GetServerStatus> for RconActor {
    type Result = MessageResult<GetServerStatus>;

    fn handle(&mut self, _: GetServerStatus, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.server_status())
    }
}

impl Handler<GetStatus> for RconActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.component_status())
    }
}

impl Handler<Reconfigure> for RconActor {
    type Result = ();

    #[tracing::instrument(skip(self, msg, ctx), fields(server = %self.name))]
    fn handle(&mut self, msg: Reconfigure, ctx: &mut Self::Context) {
        if self.config.same_as(&msg.0) && self.state != RconState::AuthFailed {
            return;
        }
        tracing::info!(server = %self.name, host = %msg.0.host, port = msg.0.port, "rcon settings changed");
        self.config = msg.0;
        self.generation += 1;
        self.link = None;
        self.failures = 0;
        self.last_error = None;
        self.connected_since = None;
        self.cancel_timers(ctx);
        self.set_players(None);
        self.set_state(RconState::Idle);
        if self.in_use {
            self.queue.push_front(Job::Poll);
            self.pump(ctx);
        }
    }
}

impl Handler<Retire> for RconActor {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Self::Context) {
        tracing::info!(server = %self.name, "rcon server retired");
        self.retired = true;
        self.link = None;
        self.cancel_timers(ctx);
        self.fail_queue(&RconError::Removed);
        let label = [self.name.as_str()];
        let _ = self.metrics.rcon_up.remove_label_values(&label);
        let _ = self
            .metrics
            .minecraft_players_online
            .remove_label_values(&label);
        ctx.stop();
    }
}

impl Handler<Restart> for RconActor {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        tracing::warn!(actor = "rcon", server = %self.name, reason = %msg.reason, "restart requested");
        ctx.stop();
    }
}

// ---- the socket under the rcon crate ---------------------------------------------------------

/// The TCP stream handed to `rcon::Connection`, shared with the actor (for the liveness check)
/// and checking each incoming packet's length before the crate allocates for it.
struct GuardedStream {
    socket: Arc<TcpStream>,
    frames: FrameGuard,
}

impl GuardedStream {
    fn new(socket: Arc<TcpStream>) -> Self {
        Self {
            socket,
            frames: FrameGuard::default(),
        }
    }
}

/// Follows packet boundaries in the incoming byte stream: a 4-byte little-endian length, then
/// that many bytes.
#[derive(Default)]
struct FrameGuard {
    header: [u8; 4],
    header_len: usize,
    body_left: usize,
}

impl FrameGuard {
    fn inspect(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let take = self.body_left.min(bytes.len());
                self.body_left -= take;
                bytes = &bytes[take..];
                continue;
            }
            self.header[self.header_len] = bytes[0];
            self.header_len += 1;
            bytes = &bytes[1..];
            if self.header_len == 4 {
                self.header_len = 0;
                let length = i32::from_le_bytes(self.header);
                if !(MIN_PACKET_BYTES..=MAX_PACKET_BYTES).contains(&length) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "packet length {length} is outside {MIN_PACKET_BYTES}..={MAX_PACKET_BYTES}"
                        ),
                    ));
                }
                self.body_left = usize::try_from(length).unwrap_or(0);
            }
        }
        Ok(())
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            std::task::ready!(this.socket.poll_read_ready(cx))?;
            let before = buf.filled().len();
            match this.socket.try_read_buf(buf) {
                Ok(_) => {
                    this.frames.inspect(&buf.filled()[before..])?;
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.socket.poll_write_ready(cx))?;
            match self.socket.try_write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket; there is no buffer to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        // The socket closes when the last handle drops.
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_guard_follows_packets_split_anywhere_and_refuses_bogus_lengths() {
        let mut packet = Vec::new();
        for body in ["hello", ""] {
            let length = i32::try_from(10 + body.len()).unwrap();
            packet.extend_from_slice(&length.to_le_bytes());
            packet.extend_from_slice(&7i32.to_le_bytes());
            packet.extend_from_slice(&0i32.to_le_bytes());
            packet.extend_from_slice(body.as_bytes());
            packet.extend_from_slice(&[0, 0]);
        }
        for split in 0..packet.len() {
            let mut guard = FrameGuard::default();
            guard.inspect(&packet[..split]).unwrap();
            guard.inspect(&packet[split..]).unwrap();
            assert_eq!((guard.header_len, guard.body_left), (0, 0));
        }
        for bogus in [-1i32, 0, 9, MAX_PACKET_BYTES + 1] {
            let mut guard = FrameGuard::default();
            assert!(guard.inspect(&bogus.to_le_bytes()).is_err(), "{bogus}");
        }
    }
}

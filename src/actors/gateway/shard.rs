//! One shard's runner: a task that keeps the shard's gateway session alive and reports every
//! change of its stage to the gateway actor the moment it happens (no polling), so a dropped
//! connection shows in the status at once and a silent one within a heartbeat interval plus the
//! ACK timeout.
//!
//! The session outlives connections: when a connection is lost or refused, the runner keeps the
//! session id and sequence number and retries RESUME with a jittered backoff (`backoff.rs`) for
//! as long as it takes, until Discord answers RESUMED (nothing of the gap is lost) or refuses the
//! session (INVALID_SESSION, not resumable; close code 4007/4009), and only then IDENTIFYs afresh,
//! paced by `pacing.rs`. Close codes that no retry can fix (4004, 4010-4014) end the runner and
//! are reported as fatal.
//!
//! Shutdown: the actor flips the session's stop signal; the runner sends close code 1000 (which
//! ends the session on Discord's side, so the bot goes offline at once), waits a bounded time for
//! Discord's answer, and ends; the actor awaits the runner tasks.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rand::Rng;
use secrecy::SecretString;
use serenity::http::Http;
use serenity::model::event::{Event, GatewayEvent};
use serenity::model::id::ShardId;
use tokio::sync::watch;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::member_order::MemberOrder;
use super::pacing::IdentifyPacer;
use super::status::ShardStage;
use super::wire::{CloseMeaning, Connection, Incoming, close_meaning};
use crate::bot::{Context as BotContext, Handler as BotHandler};

/// How long opening a connection (TCP, TLS, WebSocket upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long Discord may take to say HELLO on a new connection.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait for a heartbeat ACK; shorter intervals wait half an interval.
const ACK_TIMEOUT_MAX: Duration = Duration::from_secs(10);
/// How long a clean close waits for Discord's close frame.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Discord asks for a random wait between these before identifying after INVALID_SESSION.
const INVALID_SESSION_WAIT: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(5));

/// A change in one shard, sent to the gateway actor as it happens.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ShardReport {
    pub generation: u64,
    pub shard: u32,
    pub change: ShardChange,
}

#[derive(Debug)]
pub enum ShardChange {
    Stage {
        stage: ShardStage,
        reason: Option<String>,
    },
    /// A heartbeat was acknowledged after this long.
    Latency(Duration),
    /// The runner stopped for good: retrying cannot succeed.
    Fatal(String),
}

/// Everything a runner needs; built by the actor per shard.
pub struct ShardRunner {
    pub id: u32,
    pub total: u32,
    pub generation: u64,
    pub token: SecretString,
    pub intents: u64,
    pub gateway_url: String,
    pub reports: Recipient<ShardReport>,
    pub pacer: Arc<IdentifyPacer>,
    pub http: Arc<Http>,
    pub handler: Arc<BotHandler>,
    pub stop: watch::Receiver<bool>,
}

/// A session Discord can resume.
struct Resumable {
    id: String,
    url: String,
}

/// What the runner keeps across connections.
struct Progress {
    session: Option<Resumable>,
    seq: Option<u64>,
    backoff: Backoff<rand::rngs::StdRng>,
    /// Whether this runner's shard was connected at least once.
    ever_connected: bool,
    /// The stage last reported, so an unchanged stage is not reported again.
    reported: Option<ShardStage>,
    /// When the current outage began (the first failure after a working connection).
    down_since: Option<Instant>,
    /// RESUMEs and IDENTIFYs sent since `down_since`.
    attempts: u32,
    /// One member's events are handled one after another, in the order they came.
    members: MemberOrder,
}

/// How a connection ended.
enum End {
    Stopped,
    Fatal(String),
    Lost { reason: String, pause: Pause },
}

/// How long to wait before the next connection.
enum Pause {
    Backoff,
    /// Discord asked for a reconnect: at once.
    None,
    /// After INVALID_SESSION: a random wait in Discord's range.
    InvalidSession,
}

fn lost(reason: impl Into<String>) -> End {
    End::Lost {
        reason: reason.into(),
        pause: Pause::Backoff,
    }
}

/// One step of a connection's loop.
enum Step {
    Stop,
    Frame(Incoming),
    Timer,
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A dropped sender (the actor is gone) stops the runner too.
    let _ = stop.wait_for(|stop| *stop).await;
}

impl ShardRunner {
    pub async fn run(mut self) {
        let mut progress = Progress {
            session: None,
            seq: None,
            backoff: Backoff::new(),
            ever_connected: false,
            reported: None,
            down_since: None,
            attempts: 0,
            members: MemberOrder::default(),
        };
        self.report_stage(&mut progress, ShardStage::Connecting, None);
        loop {
            let (reason, pause) = match self.connect_once(&mut progress).await {
                End::Stopped => return,
                End::Fatal(reason) => {
                    tracing::error!(shard = self.id, reason = %reason, "discord shard stopped for good");
                    self.report(ShardChange::Fatal(reason));
                    return;
                }
                End::Lost { reason, pause } => (reason, pause),
            };
            let stage = if progress.session.is_some() {
                ShardStage::Resuming
            } else if progress.ever_connected {
                ShardStage::Reconnecting
            } else {
                ShardStage::Connecting
            };
            let first = progress.down_since.is_none();
            let since = *progress.down_since.get_or_insert_with(Instant::now);
            let wait = match pause {
                Pause::Backoff => progress.backoff.next_delay(),
                Pause::None => Duration::ZERO,
                Pause::InvalidSession => {
                    let (low, high) = INVALID_SESSION_WAIT;
                    rand::rng().random_range(low..=high)
                }
            };
            if first {
                tracing::warn!(shard = self.id, reason = %reason, stage = stage.label(), retry_in = ?wait, "discord shard lost its connection");
            } else {
                tracing::debug!(shard = self.id, reason = %reason, attempts = progress.attempts, down_for = ?since.elapsed(), retry_in = ?wait, "discord shard still not connected");
            }
            self.report_stage(&mut progress, stage, Some(reason));
            let mut stop = self.stop.clone();
            tokio::select! {
                biased;
                () = stopped(&mut stop) => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn report(&self, change: ShardChange) {
        self.reports.do_send(ShardReport {
            generation: self.generation,
            shard: self.id,
            change,
        });
    }

    fn report_stage(&self, progress: &mut Progress, stage: ShardStage, reason: Option<String>) {
        if progress.reported == Some(stage) && stage == ShardStage::Connected {
            return;
        }
        progress.reported = Some(stage);
        self.report(ShardChange::Stage { stage, reason });
    }

    /// Opens a connection, says HELLO, RESUMEs or IDENTIFYs, and runs it until it ends.
    async fn connect_once(&mut self, progress: &mut Progress) -> End {
        let url = progress
            .session
            .as_ref()
            .map_or_else(|| self.gateway_url.clone(), |s| s.url.clone());
        let mut stop = self.stop.clone();
        let opened = tokio::select! {
            biased;
            () = stopped(&mut stop) => return End::Stopped,
            opened = tokio::time::timeout(CONNECT_TIMEOUT, Connection::open(&url)) => opened,
        };
        let mut conn = match opened {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return lost(e),
            Err(_) => return lost(format!("no connection within {CONNECT_TIMEOUT:?}")),
        };
        let hello = tokio::select! {
            biased;
            () = stopped(&mut stop) => None,
            hello = tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut conn)) => Some(hello),
        };
        let interval = match hello {
            None => {
                conn.close(1000, CLOSE_TIMEOUT).await;
                return End::Stopped;
            }
            Some(Err(_)) => return lost(format!("no HELLO within {HELLO_TIMEOUT:?}")),
            Some(Ok(Err(end))) => return end,
            Some(Ok(Ok(interval))) => interval,
        };
        progress.attempts += 1;
        let sent = match &progress.session {
            Some(session) => {
                let seq = progress.seq.unwrap_or(0);
                tracing::debug!(shard = self.id, seq, "resuming the discord session");
                conn.resume(&self.token, &session.id, seq).await
            }
            None => {
                let paced = tokio::select! {
                    biased;
                    () = stopped(&mut stop) => false,
                    () = self.pacer.wait_turn(self.id) => true,
                };
                if !paced {
                    conn.close(1000, CLOSE_TIMEOUT).await;
                    return End::Stopped;
                }
                tracing::debug!(shard = self.id, "identifying with discord");
                conn.identify(&self.token, [self.id, self.total], self.intents)
                    .await
            }
        };
        if let Err(e) = sent {
            return lost(e);
        }
        self.drive(conn, interval, progress).await
    }

    /// Runs an identified (or resuming) connection: heartbeats, dispatches, until it ends.
    async fn drive(
        &mut self,
        mut conn: Connection,
        interval: Duration,
        progress: &mut Progress,
    ) -> End {
        let ack_timeout = (interval / 2).min(ACK_TIMEOUT_MAX);
        // Discord asks for the first heartbeat after a random part of the interval.
        let mut next_beat = Instant::now() + interval.mul_f64(rand::rng().random_range(0.0..1.0));
        let mut unacked: Option<Instant> = None;
        let mut stop = self.stop.clone();
        loop {
            let deadline = unacked.map_or(next_beat, |sent| (sent + ack_timeout).min(next_beat));
            let step = tokio::select! {
                biased;
                () = stopped(&mut stop) => Step::Stop,
                incoming = conn.read() => Step::Frame(incoming),
                () = tokio::time::sleep_until(deadline) => Step::Timer,
            };
            let incoming = match step {
                Step::Stop => {
                    conn.close(1000, CLOSE_TIMEOUT).await;
                    return End::Stopped;
                }
                Step::Timer => {
                    let now = Instant::now();
                    if let Some(sent) = unacked
                        && now >= sent + ack_timeout
                    {
                        conn.abandon().await;
                        return lost(format!(
                            "the gateway went silent (no heartbeat ACK within {ack_timeout:?})"
                        ));
                    }
                    if let Err(e) = conn.heartbeat(progress.seq).await {
                        return lost(e);
                    }
                    unacked = Some(now);
                    next_beat = now + interval;
                    continue;
                }
                Step::Frame(incoming) => incoming,
            };
            match incoming {
                Incoming::Event(event) => match *event {
                    GatewayEvent::Dispatch(seq, event) => {
                        progress.seq = Some(seq);
                        self.on_dispatch(event, progress);
                    }
                    GatewayEvent::HeartbeatAck => {
                        if let Some(sent) = unacked.take() {
                            self.report(ShardChange::Latency(sent.elapsed()));
                        }
                    }
                    // Discord asks for a heartbeat now.
                    GatewayEvent::Heartbeat(..) => {
                        if let Err(e) = conn.heartbeat(progress.seq).await {
                            return lost(e);
                        }
                        unacked.get_or_insert_with(Instant::now);
                    }
                    GatewayEvent::Reconnect => {
                        conn.abandon().await;
                        return End::Lost {
                            reason: "Discord asked for a reconnect".into(),
                            pause: Pause::None,
                        };
                    }
                    GatewayEvent::InvalidateSession(resumable) => {
                        if !resumable {
                            progress.session = None;
                            progress.seq = None;
                        }
                        conn.abandon().await;
                        return End::Lost {
                            reason: format!(
                                "Discord invalidated the session ({})",
                                if resumable {
                                    "resumable"
                                } else {
                                    "identifying afresh"
                                }
                            ),
                            pause: Pause::InvalidSession,
                        };
                    }
                    // A late HELLO, or an opcode serenity adds later: nothing to do.
                    _ => {}
                },
                Incoming::Unparsed { seq, error } => {
                    if seq.is_some() {
                        progress.seq = seq;
                    }
                    tracing::warn!(shard = self.id, error = %error, "skipped a gateway frame serenity's model cannot parse");
                }
                Incoming::Closed(code) => {
                    return match close_meaning(code) {
                        CloseMeaning::Fatal(reason) => End::Fatal(reason),
                        CloseMeaning::Reidentify => {
                            progress.session = None;
                            progress.seq = None;
                            lost(format!(
                                "Discord ended the session (close code {})",
                                code.unwrap_or(0)
                            ))
                        }
                        CloseMeaning::Resume => lost(match code {
                            Some(code) => format!("Discord closed the connection ({code})"),
                            None => "the connection dropped".to_owned(),
                        }),
                    };
                }
                Incoming::Broken(e) => return lost(format!("the connection broke: {e}")),
                Incoming::Nothing => {}
            }
        }
    }

    /// Keeps what the runner needs from READY/RESUMED and hands the event to the bot.
    fn on_dispatch(&mut self, event: Event, progress: &mut Progress) {
        match &event {
            Event::Ready(ready) => {
                let ready = &ready.ready;
                let url = if ready.resume_gateway_url.is_empty() {
                    self.gateway_url.clone()
                } else {
                    ready.resume_gateway_url.clone()
                };
                progress.session = Some(Resumable {
                    id: ready.session_id.clone(),
                    url,
                });
                // Command registration (on READY) needs the application id.
                self.http.set_application_id(ready.application.id);
                self.connected(progress, "identified");
            }
            Event::Resumed(_) => self.connected(progress, "resumed"),
            _ => {}
        }
        let handler = self.handler.clone();
        let ctx = BotContext {
            http: self.http.clone(),
            shard_id: ShardId(self.id),
        };
        // Each event is handled in its own task, so a slow handler (a command waiting on
        // Discord's REST API) never delays heartbeats or the next event; only the events of
        // one member wait for each other (`MemberOrder`), since each builds on the last.
        let turn = progress.members.turn(&event);
        tokio::spawn(turn.run(async move { handler.dispatch(ctx, event).await }));
    }

    fn connected(&mut self, progress: &mut Progress, how: &str) {
        if let Some(since) = progress.down_since.take() {
            tracing::info!(shard = self.id, how, attempts = progress.attempts, down_for = ?since.elapsed(), "discord shard connected again");
        }
        progress.attempts = 0;
        progress.ever_connected = true;
        progress.backoff.reset();
        self.report_stage(progress, ShardStage::Connected, None);
    }
}

/// Reads until HELLO and returns its heartbeat interval.
async fn read_hello(conn: &mut Connection) -> Result<Duration, End> {
    loop {
        match conn.read().await {
            Incoming::Event(event) => {
                if let GatewayEvent::Hello(interval) = *event {
                    return Ok(Duration::from_millis(interval.max(1)));
                }
            }
            Incoming::Closed(code) => {
                return Err(match close_meaning(code) {
                    CloseMeaning::Fatal(reason) => End::Fatal(reason),
                    _ => lost("the gateway closed the connection before HELLO"),
                });
            }
            Incoming::Broken(e) => return Err(lost(format!("the connection broke: {e}"))),
            Incoming::Unparsed { .. } | Incoming::Nothing => {}
        }
    }
}

//! LogBroadcaster: keeps a ring of recent log lines and fans lines and status events out to
//! subscribers: the `/ws/logs` and `/ws/status` viewers (each with a bounded [`ViewerQueue`],
//! see `queue`) and in-process subscribers (`Subscribe`, a recipient that gets `Broadcast`
//! messages by `try_send`). A slow subscriber loses lines, it never slows the daemon.
//!
//! Each line gets this instance's next sequence number and is serialised once (`wire`); every
//! viewer is handed the same frame. Fan-out happens in batches at most every
//! [`FLUSH_INTERVAL`], so a viewer is woken once per batch and writes the batch in one go,
//! whatever the line rate. With Redis, each batch of this instance's lines and events is also
//! published (`relay`), and the other instances' batches are fanned out here like local ones.

mod queue;
mod relay;
pub mod wire;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;

use super::Restart;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::shared::redis::Redis;

pub use queue::{Closed, Drained, Pushed, QueueState, ViewerQueue};
pub use wire::{Body, Entry, Level};

/// Recent lines kept for a viewer that connects late.
pub const RING_CAPACITY: usize = 1_000;
/// Longest a line waits before it is fanned out (it waits only when another batch went out
/// less than this ago).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// Lines a viewer may have waiting before it is reported as behind.
pub const VIEWER_CAPACITY: usize = 512;
/// A viewer behind for this long (no drain without missed lines) is closed as too slow; counted
/// by the broadcaster's clock (`with_clock`).
pub const VIEWER_MAX_BEHIND: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub timestamp_ms: i64,
    pub level: String,
    pub target: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A status change of one component, e.g. `{"component":"gateway","status":{...}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusEvent {
    pub component: String,
    pub status: serde_json::Value,
}

/// What subscribers receive.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub enum Broadcast {
    Log(Arc<LogLine>),
    Status(Arc<StatusEvent>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Logs,
    Status,
}

// ---- messages --------------------------------------------------------------------------------

#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PublishLog(pub LogLine);

#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PublishStatus(pub StatusEvent);

/// Registers a subscriber; answers with its id and, for logs, the recent lines.
#[derive(Message)]
#[rtype(result = "Subscription")]
pub struct Subscribe {
    pub topic: Topic,
    pub recipient: Recipient<Broadcast>,
}

#[derive(Debug, Clone, MessageResponse)]
pub struct Subscription {
    pub id: u64,
    pub backlog: Vec<Arc<LogLine>>,
}

#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(pub u64);

/// The last `n` lines of the ring, oldest first.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Arc<LogLine>>")]
pub struct Recent(pub usize);

/// Registers a viewer: its queue, and where to send a [`Wake`] when the queue has something.
/// Answers with its id (to `Unsubscribe` with) and, for logs, the ring as frames.
#[derive(Message)]
#[rtype(result = "Joined")]
pub struct Join {
    pub topic: Topic,
    pub queue: Arc<ViewerQueue>,
    pub waker: Recipient<Wake>,
}

#[derive(Debug, MessageResponse)]
pub struct Joined {
    pub id: u64,
    pub backlog: Vec<Arc<Entry>>,
}

/// Tells a viewer its queue has something (sent at most once per drain).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Wake;

/// Lines and events another instance published (through Redis).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Relayed(pub Vec<Entry>);

/// Every viewer's queue as it stands (how many frames it holds, whether it is behind): what
/// a viewer costs the daemon, for tests and diagnostics.
#[derive(Debug, Message)]
#[rtype(result = "Vec<ViewerStat>")]
pub struct ViewerStats;

#[derive(Debug, Clone)]
pub struct ViewerStat {
    pub id: u64,
    pub topic: Topic,
    pub queue: QueueState,
}

/// This instance's name, as its frames carry it.
#[derive(Debug, Message)]
#[rtype(result = "Arc<str>")]
pub struct Instance;

// ---- actor -----------------------------------------------------------------------------------

struct Viewer {
    topic: Topic,
    queue: Arc<ViewerQueue>,
    waker: Recipient<Wake>,
}

pub struct LogBroadcaster {
    instance: Arc<str>,
    next_seq: u64,
    ring: VecDeque<Arc<Entry>>,
    subscribers: HashMap<u64, (Topic, Recipient<Broadcast>)>,
    viewers: HashMap<u64, Viewer>,
    next_id: u64,
    /// Entries waiting for the next fan-out; `local` marks those to publish to other instances.
    pending: Vec<(Arc<Entry>, bool)>,
    flush_scheduled: bool,
    last_flush: Instant,
    redis: Option<Redis>,
    relay: Option<relay::Relay>,
    metrics: Metrics,
    /// Times how long a viewer has been behind (tests hold it still and advance it).
    clock: Clock,
}

/// `hostname-1a2b3c`: readable in a viewer, distinct for two instances on one host.
fn instance_name() -> Arc<str> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and the length is bounded below.
    let host = if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let host = if host.is_empty() {
        "guildhall".into()
    } else {
        host
    };
    let suffix: u32 = rand::random::<u32>() & 0xff_ffff;
    format!("{host}-{suffix:06x}").into()
}

impl LogBroadcaster {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            instance: instance_name(),
            next_seq: 1,
            ring: VecDeque::with_capacity(RING_CAPACITY),
            subscribers: HashMap::new(),
            viewers: HashMap::new(),
            next_id: 1,
            pending: Vec::new(),
            flush_scheduled: false,
            last_flush: Instant::now(),
            redis: None,
            relay: None,
            metrics,
            clock: Clock::System,
        }
    }

    /// The clock a viewer's time behind is counted by (see [`VIEWER_MAX_BEHIND`]).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// With Redis, lines and status events are shared with the other instances.
    pub fn with_redis(mut self, redis: Option<Redis>) -> Self {
        self.redis = redis;
        self
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn remember(&mut self, entry: &Arc<Entry>) {
        if entry.is_line() {
            if self.ring.len() == RING_CAPACITY {
                self.ring.pop_front();
            }
            self.ring.push_back(entry.clone());
        }
    }

    fn enqueue(&mut self, entry: Arc<Entry>, local: bool, ctx: &mut Context<Self>) {
        self.remember(&entry);
        self.pending.push((entry, local));
        if self.flush_scheduled {
            return;
        }
        let since = self.last_flush.elapsed();
        if since >= FLUSH_INTERVAL {
            self.flush();
        } else {
            self.flush_scheduled = true;
            ctx.run_later(FLUSH_INTERVAL - since, |act, _| act.flush());
        }
    }

    fn flush(&mut self) {
        self.flush_scheduled = false;
        self.last_flush = Instant::now();
        let batch = std::mem::take(&mut self.pending);
        if batch.is_empty() {
            return;
        }
        self.deliver_in_process(&batch);
        self.deliver_to_viewers(&batch);
        if let Some(relay) = &self.relay {
            let local: Vec<&Arc<Entry>> =
                batch.iter().filter(|(_, l)| *l).map(|(e, _)| e).collect();
            if !local.is_empty() && !relay.publish(&local) {
                self.metrics.log_lines_dropped.inc_by(local.len() as u64);
            }
        }
    }

    fn deliver_in_process(&mut self, batch: &[(Arc<Entry>, bool)]) {
        let mut gone = Vec::new();
        for (id, (topic, recipient)) in &self.subscribers {
            for (entry, _) in batch {
                let message = match (&entry.body, topic) {
                    (Body::Line { line, .. }, Topic::Logs) => Broadcast::Log(line.clone()),
                    (Body::Status(event), Topic::Status) => Broadcast::Status(event.clone()),
                    _ => continue,
                };
                match recipient.try_send(message) {
                    Ok(()) => {}
                    Err(SendError::Full(_)) => self.metrics.log_lines_dropped.inc(),
                    Err(SendError::Closed(_)) => {
                        gone.push(*id);
                        break;
                    }
                }
            }
        }
        for id in gone {
            self.subscribers.remove(&id);
        }
    }

    fn deliver_to_viewers(&mut self, batch: &[(Arc<Entry>, bool)]) {
        let lines: Vec<Arc<Entry>> = batch
            .iter()
            .filter(|(e, _)| e.is_line())
            .map(|(e, _)| e.clone())
            .collect();
        let events: Vec<Arc<Entry>> = batch
            .iter()
            .filter(|(e, _)| !e.is_line())
            .map(|(e, _)| e.clone())
            .collect();
        let now = self.clock.now_ms();
        let mut gone = Vec::new();
        for (id, viewer) in &self.viewers {
            let entries = match viewer.topic {
                Topic::Logs => &lines,
                Topic::Status => &events,
            };
            if entries.is_empty() {
                continue;
            }
            let (wake, closed) = match viewer.queue.push_all(entries.iter().cloned(), now) {
                Pushed::Queued { wake } => (wake, false),
                Pushed::Closed { wake } => (wake, true),
            };
            if wake {
                viewer.waker.do_send(Wake);
            }
            if closed || !viewer.waker.connected() {
                gone.push(*id);
            }
        }
        for id in gone {
            self.viewers.remove(&id);
        }
    }
}

impl Actor for LogBroadcaster {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Log lines arrive in bursts; a deep mailbox absorbs them, try_send drops past it.
        ctx.set_mailbox_capacity(4_096);
        if self.relay.is_none()
            && let Some(redis) = self.redis.clone()
        {
            self.relay = Some(relay::Relay::start(
                redis,
                self.instance.clone(),
                ctx.address(),
            ));
        }
    }
}

impl Supervised for LogBroadcaster {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.metrics.actor_restarted("broadcaster");
        // Sessions notice the restart by their own heartbeat; keeping them would be fine too,
        // but a restart is the moment to start from a clean subscriber table.
        self.subscribers.clear();
        self.viewers.clear();
        self.pending.clear();
        self.flush_scheduled = false;
    }
}

impl Handler<PublishLog> for LogBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: PublishLog, ctx: &mut Self::Context) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Arc::new(Entry::line(seq, self.instance.clone(), Arc::new(msg.0)));
        self.enqueue(entry, true, ctx);
    }
}

impl Handler<PublishStatus> for LogBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: PublishStatus, ctx: &mut Self::Context) {
        let entry = Arc::new(Entry::status(self.instance.clone(), Arc::new(msg.0)));
        self.enqueue(entry, true, ctx);
    }
}

impl Handler<Relayed> for LogBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: Relayed, ctx: &mut Self::Context) {
        for entry in msg.0 {
            self.enqueue(Arc::new(entry), false, ctx);
        }
    }
}

impl Handler<Subscribe> for LogBroadcaster {
    type Result = Subscription;

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Self::Context) -> Subscription {
        let id = self.next_id();
        self.subscribers.insert(id, (msg.topic, msg.recipient));
        let backlog = match msg.topic {
            Topic::Logs => self.ring.iter().filter_map(|e| line_of(e)).collect(),
            Topic::Status => Vec::new(),
        };
        Subscription { id, backlog }
    }
}

impl Handler<Join> for LogBroadcaster {
    type Result = Joined;

    fn handle(&mut self, msg: Join, _ctx: &mut Self::Context) -> Joined {
        let id = self.next_id();
        let backlog = match msg.topic {
            Topic::Logs => self.ring.iter().cloned().collect(),
            Topic::Status => Vec::new(),
        };
        self.viewers.insert(
            id,
            Viewer {
                topic: msg.topic,
                queue: msg.queue,
                waker: msg.waker,
            },
        );
        Joined { id, backlog }
    }
}

impl Handler<Unsubscribe> for LogBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Self::Context) {
        self.subscribers.remove(&msg.0);
        self.viewers.remove(&msg.0);
    }
}

fn line_of(entry: &Entry) -> Option<Arc<LogLine>> {
    match &entry.body {
        Body::Line { line, .. } => Some(line.clone()),
        Body::Status(_) => None,
    }
}

impl Handler<Recent> for LogBroadcaster {
    type Result = MessageResult<Recent>;

    fn handle(&mut self, msg: Recent, _ctx: &mut Self::Context) -> Self::Result {
        let skip = self.ring.len().saturating_sub(msg.0);
        MessageResult(
            self.ring
                .iter()
                .skip(skip)
                .filter_map(|e| line_of(e))
                .collect(),
        )
    }
}

impl Handler<ViewerStats> for LogBroadcaster {
    type Result = MessageResult<ViewerStats>;

    fn handle(&mut self, _: ViewerStats, _ctx: &mut Self::Context) -> Self::Result {
        let mut stats: Vec<ViewerStat> = self
            .viewers
            .iter()
            .map(|(id, viewer)| ViewerStat {
                id: *id,
                topic: viewer.topic,
                queue: viewer.queue.state(),
            })
            .collect();
        stats.sort_by_key(|s| s.id);
        MessageResult(stats)
    }
}

impl Handler<Instance> for LogBroadcaster {
    type Result = MessageResult<Instance>;

    fn handle(&mut self, _: Instance, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.instance.clone())
    }
}

impl Handler<Restart> for LogBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        tracing::warn!(actor = "broadcaster", reason = %msg.reason, "restart requested");
        ctx.stop();
    }
}

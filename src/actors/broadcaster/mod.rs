//! LogBroadcaster: keeps a ring of recent log lines and fans lines and status events out to
//! subscribers (the `/ws/logs` and `/ws/status` sessions). A slow subscriber loses lines, it
//! never slows the daemon: delivery uses `try_send` and counts what it drops.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use actix::prelude::*;
use serde::Serialize;

use super::Restart;
use crate::metrics::Metrics;

/// Recent lines kept for a viewer that connects late.
pub const RING_CAPACITY: usize = 1_000;

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

// ---- actor -----------------------------------------------------------------------------------

pub struct LogBroadcaster {
    ring: VecDeque<Arc<LogLine>>,
    subscribers: HashMap<u64, (Topic, Recipient<Broadcast>)>,
    next_id: u64,
    metrics: Metrics,
}

impl LogBroadcaster {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            ring: VecDeque::with_capacity(RING_CAPACITY),
            subscribers: HashMap::new(),
            next_id: 1,
            metrics,
        }
    }

    fn fan_out(&mut self, topic: Topic, message: Broadcast) {
        let mut gone = Vec::new();
        for (id, (t, recipient)) in &self.subscribers {
            if *t != topic {
                continue;
            }
            match recipient.try_send(message.clone()) {
                Ok(()) => {}
                Err(SendError::Full(_)) => self.metrics.log_lines_dropped.inc(),
                Err(SendError::Closed(_)) => gone.push(*id),
            }
        }
        for id in gone {
            self.subscribers.remove(&id);
        }
    }
}

impl Actor for LogBroadcaster {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Log lines arrive in bursts; a deep mailbox absorbs them, try_send drops past it.
        ctx.set_mailbox_capacity(4_096);
    }
}

impl Supervised for LogBroadcaster {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.metrics.actor_restarted("broadcaster");
        // Sessions notice the restart by their own heartbeat; keeping them would be fine too,
        // but a restart is the moment to start from a clean subscriber table.
        self.subscribers.clear();
    }
}

impl Handler<PublishLog> for LogBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: PublishLog, _ctx: &mut Self::Context) {
        let line = Arc::new(msg.0);
        if self.ring.len() == RING_CAPACITY {
            self.ring.pop_front();
        }
        self.ring.push_back(line.clone());
        self.fan_out(Topic::Logs, Broadcast::Log(line));
    }
}

impl Handler<PublishStatus> for LogBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: PublishStatus, _ctx: &mut Self::Context) {
        self.fan_out(Topic::Status, Broadcast::Status(Arc::new(msg.0)));
    }
}

impl Handler<Subscribe> for LogBroadcaster {
    type Result = Subscription;

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Self::Context) -> Subscription {
        let id = self.next_id;
        self.next_id += 1;
        self.subscribers.insert(id, (msg.topic, msg.recipient));
        let backlog = match msg.topic {
            Topic::Logs => self.ring.iter().cloned().collect(),
            Topic::Status => Vec::new(),
        };
        Subscription { id, backlog }
    }
}

impl Handler<Unsubscribe> for LogBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Self::Context) {
        self.subscribers.remove(&msg.0);
    }
}

impl Handler<Recent> for LogBroadcaster {
    type Result = MessageResult<Recent>;

    fn handle(&mut self, msg: Recent, _ctx: &mut Self::Context) -> Self::Result {
        let skip = self.ring.len().saturating_sub(msg.0);
        MessageResult(self.ring.iter().skip(skip).cloned().collect())
    }
}

impl Handler<Restart> for LogBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        tracing::warn!(actor = "broadcaster", reason = %msg.reason, "restart requested");
        ctx.stop();
    }
}

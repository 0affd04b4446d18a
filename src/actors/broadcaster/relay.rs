//! Lines and status events between instances, through Redis pub/sub on `<prefix>:logs`. Each
//! flush of the broadcaster publishes one message: the instance's name on the first line, then
//! one frame per line (frames are compact JSON, so they hold no newline). Every instance
//! subscribes, skips its own messages and hands the others' frames to its broadcaster as they
//! came, so nothing is serialised twice. Publishing is off the broadcaster's path: batches go
//! through a bounded channel to one task, and when Redis is slow or down a batch is dropped
//! (counted in `guildhall_log_lines_dropped_total`), never queued without bound.

use std::sync::Arc;

use actix::{Addr, WeakAddr};
use deadpool_redis::redis::AsyncCommands;
use tokio::sync::mpsc;

use super::wire::Entry;
use super::{LogBroadcaster, Relayed};
use crate::shared::redis::Redis;
use crate::shared::subscription::{Listener, listen};

/// Batches waiting to be published; more are dropped.
const PUBLISH_QUEUE: usize = 256;

pub struct Relay {
    batches: mpsc::Sender<String>,
}

fn channel(redis: &Redis) -> String {
    redis.key(&["logs"])
}

/// `instance\nframe\nframe…`
fn encode(instance: &str, entries: &[&Arc<Entry>]) -> String {
    let mut payload = String::with_capacity(
        instance.len() + entries.iter().map(|e| e.frame.len() + 1).sum::<usize>(),
    );
    payload.push_str(instance);
    for entry in entries {
        payload.push('\n');
        payload.push_str(&entry.frame);
    }
    payload
}

/// The frames of another instance's message; `None` for this instance's own.
fn decode(own: &str, payload: &str) -> Option<Vec<Entry>> {
    let mut parts = payload.split('\n');
    let sender = parts.next()?;
    if sender == own {
        return None;
    }
    Some(parts.filter_map(Entry::decode).collect())
}

impl Relay {
    pub fn start(redis: Redis, instance: Arc<str>, broadcaster: Addr<LogBroadcaster>) -> Self {
        let (batches, rx) = mpsc::channel(PUBLISH_QUEUE);
        actix::spawn(publish(redis.clone(), rx));
        let channel = channel(&redis);
        let listener = ToBroadcaster {
            instance,
            broadcaster: broadcaster.downgrade(),
        };
        actix::spawn(listen(redis, channel, listener));
        Relay { batches }
    }

    /// Queues a batch for publishing; false when it had to be dropped.
    pub fn publish(&self, entries: &[&Arc<Entry>]) -> bool {
        let Some(first) = entries.first() else {
            return true;
        };
        self.batches
            .try_send(encode(&first.instance, entries))
            .is_ok()
    }
}

async fn publish(redis: Redis, mut batches: mpsc::Receiver<String>) {
    let channel = channel(&redis);
    while let Some(payload) = batches.recv().await {
        // While Redis is down the breaker answers at once, and the batch is lost.
        let Some(mut conn) = redis.conn().await else {
            continue;
        };
        let published: Result<i64, _> = conn.publish(&channel, payload).await;
        if let Err(e) = published {
            redis.report_failure(&e);
        }
    }
}

/// Hands the other instances' lines to this instance's broadcaster. Holds no strong address,
/// so it does not keep the broadcaster alive; the subscription ends once it is gone.
struct ToBroadcaster {
    instance: Arc<str>,
    broadcaster: WeakAddr<LogBroadcaster>,
}

impl Listener for ToBroadcaster {
    const WHAT: &'static str = "the other instances' log lines";
    const WHILE_LOST: &'static str = "viewers see only this instance's lines";

    fn alive(&self) -> bool {
        self.broadcaster.upgrade().is_some()
    }

    fn message(&mut self, payload: String) -> bool {
        let Some(entries) = decode(&self.instance, &payload) else {
            return true;
        };
        if entries.is_empty() {
            return true;
        }
        let Some(addr) = self.broadcaster.upgrade() else {
            return false;
        };
        addr.do_send(Relayed(entries));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::broadcaster::LogLine;

    #[test]
    fn a_batch_round_trips_and_an_instance_ignores_its_own() {
        let line = |seq: u64, message: &str| {
            Arc::new(Entry::line(
                seq,
                "a-1".into(),
                Arc::new(LogLine {
                    timestamp_ms: 5,
                    level: "INFO".into(),
                    target: "t".into(),
                    message: message.into(),
                    request_id: None,
                }),
            ))
        };
        let (one, two) = (line(1, "first\nwith a newline"), line(2, "second"));
        let payload = encode("a-1", &[&one, &two]);
        assert!(decode("a-1", &payload).is_none(), "own message");
        let got = decode("b-2", &payload).unwrap();
        assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(got[0].frame, one.frame);
        assert_eq!(&*got[1].instance, "a-1");
        assert!(decode("b-2", "a-1\nnot json\n{}").unwrap().is_empty());
    }
}

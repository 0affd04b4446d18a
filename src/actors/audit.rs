//! AuditActor: lossless, group-committed audit log writes.
//!
//! Entries that arrive while a transaction is being written wait and go together in the next
//! one (group commit, with no artificial delay). Each sender is answered only after its own
//! entry is committed, so an acknowledged action always has its entry, even after `kill -9`.
//! Transient database errors are retried with backoff while the queue, bounded, keeps
//! accepting; the queue is drained on shutdown.

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::Restart;
use crate::ids::{next_id, now_ms};
use crate::metrics::Metrics;
use crate::store::audit::{self, NewAuditEntry};
use crate::store::{Store, StoreError};

/// Entries waiting beyond this are refused at once rather than piling up in memory.
pub const MAX_QUEUE: usize = 10_000;
/// At most this many entries share one transaction.
pub const MAX_BATCH: usize = 512;
const RETRY_BASE: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// About 10 s of retrying before a batch is given up as failed.
const MAX_ATTEMPTS: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("the audit queue is full")]
    QueueFull,
    #[error("the audit log could not be written")]
    WriteFailed,
    #[error("the audit writer stopped before committing")]
    Stopped,
}

// ---- messages --------------------------------------------------------------------------------

/// Records one entry; resolves with its id once it is committed.
#[derive(Debug, Message)]
#[rtype(result = "Result<i64, AuditError>")]
pub struct Record(pub NewAuditEntry);

/// Resolves when every entry received so far is committed (or has failed).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Drain;

// ---- actor -----------------------------------------------------------------------------------

struct Pending {
    id: i64,
    created_at: i64,
    entry: NewAuditEntry,
    reply: oneshot::Sender<Result<i64, AuditError>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    Idle,
    Writing,
    /// Waiting out a backoff after a transient error; `attempt` failures so far.
    Backoff {
        attempt: u32,
    },
}

pub struct AuditActor {
    store: Store,
    metrics: Metrics,
    queue: VecDeque<Pending>,
    writer: Writer,
    drain_waiters: Vec<oneshot::Sender<()>>,
    /// A stop was asked for while work was pending; stop once the queue is empty.
    stop_when_drained: bool,
}

impl AuditActor {
    pub fn new(store: Store, metrics: Metrics) -> Self {
        Self {
            store,
            metrics,
            queue: VecDeque::new(),
            writer: Writer::Idle,
            drain_waiters: Vec::new(),
            stop_when_drained: false,
        }
    }

    fn is_drained(&self) -> bool {
        self.queue.is_empty() && self.writer == Writer::Idle
    }

    fn update_depth(&self) {
        self.metrics
            .audit_queue_depth
            .set(i64::try_from(self.queue.len()).unwrap_or(i64::MAX));
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.update_depth();
        if self.writer != Writer::Idle {
            return;
        }
        if self.queue.is_empty() {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(());
            }
            if self.stop_when_drained {
                ctx.stop();
            }
            return;
        }
        self.write_batch(ctx, 0);
    }

    fn write_batch(&mut self, ctx: &mut Context<Self>, failed_attempts: u32) {
        self.writer = Writer::Writing;
        let n = self.queue.len().min(MAX_BATCH);
        let batch: Vec<Pending> = self.queue.drain(..n).collect();
        let store = self.store.clone();
        let write = async move {
            let rows: Vec<(i64, i64, &NewAuditEntry)> = batch
                .iter()
                .map(|p| (p.id, p.created_at, &p.entry))
                .collect();
            let result = audit::insert_batch(&store, &rows).await;
            drop(rows);
            (batch, result)
        };
        ctx.spawn(write.into_actor(self).map(move |(batch, result), act, ctx| {
            act.writer = Writer::Idle;
            match result {
                Ok(()) => act.complete(batch),
                // Ids are fixed before the first attempt, so a conflict on a retry means an
                // earlier attempt committed and only its acknowledgement was lost.
                Err(StoreError::Conflict(_)) if failed_attempts > 0 => act.complete(batch),
                Err(e) if e.is_transient() && failed_attempts + 1 < MAX_ATTEMPTS => {
                    let attempt = failed_attempts + 1;
                    let delay = backoff(attempt);
                    tracing::warn!(error = %e, attempt, retry_in_ms = delay.as_millis() as u64,
                        entries = batch.len(), "audit write failed; retrying");
                    // Put the batch back in front so order is preserved.
                    for p in batch.into_iter().rev() {
                        act.queue.push_front(p);
                    }
                    act.writer = Writer::Backoff { attempt };
                    ctx.run_later(delay, move |act, ctx| {
                        act.writer = Writer::Idle;
                        if act.queue.is_empty() {
                            act.flush(ctx);
                        } else {
                            act.write_batch(ctx, attempt);
                        }
                    });
                    return;
                }
                Err(e) => {
                    tracing::error!(error = ?e, entries = batch.len(), "audit write failed; giving up on this batch");
                    act.metrics
                        .audit_failures
                        .inc_by(u64::try_from(batch.len()).unwrap_or(0));
                    for p in batch {
                        let _ = p.reply.send(Err(AuditError::WriteFailed));
                    }
                }
            }
            act.flush(ctx);
        }));
    }

    fn complete(&mut self, batch: Vec<Pending>) {
        self.metrics.audit_batches.inc();
        self.metrics
            .audit_entries
            .inc_by(u64::try_from(batch.len()).unwrap_or(0));
        for p in batch {
            let _ = p.reply.send(Ok(p.id));
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    RETRY_BASE
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(RETRY_MAX)
}

impl Actor for AuditActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Handling a Record only enqueues it, so a deep mailbox drains fast; senders past it
        // wait (backpressure) and the queue bound below answers with a clear error.
        ctx.set_mailbox_capacity(4_096);
        self.stop_when_drained = false;
        // Entries left from before a restart go out first.
        self.flush(ctx);
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        if self.is_drained() {
            Running::Stop
        } else {
            // Stopping now would drop in-flight writes and their callers' answers.
            self.stop_when_drained = true;
            Running::Continue
        }
    }
}

impl Supervised for AuditActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.metrics.actor_restarted("audit");
    }
}

impl Handler<Record> for AuditActor {
    type Result = ResponseFuture<Result<i64, AuditError>>;

    fn handle(&mut self, msg: Record, ctx: &mut Self::Context) -> Self::Result {
        if self.queue.len() >= MAX_QUEUE {
            self.metrics.audit_failures.inc();
            return Box::pin(async { Err(AuditError::QueueFull) });
        }
        let (reply, rx) = oneshot::channel();
        self.queue.push_back(Pending {
            id: next_id(),
            created_at: now_ms(),
            entry: msg.0,
            reply,
        });
        self.flush(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(AuditError::Stopped)) })
    }
}

impl Handler<Drain> for AuditActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _ctx: &mut Self::Context) -> Self::Result {
        if self.is_drained() {
            return Box::pin(async {});
        }
        let (tx, rx) = oneshot::channel();
        self.drain_waiters.push(tx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<Restart> for AuditActor {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        tracing::warn!(actor = "audit", reason = %msg.reason, "restart requested");
        ctx.stop();
    }
}

/// The handle request handlers and commands use: record and wait for the commit.
#[derive(Clone)]
pub struct AuditLog {
    addr: Addr<AuditActor>,
}

impl AuditLog {
    pub fn new(addr: Addr<AuditActor>) -> Self {
        Self { addr }
    }

    pub fn addr(&self) -> &Addr<AuditActor> {
        &self.addr
    }

    /// Records an entry and waits until it is durable.
    pub async fn record(&self, entry: NewAuditEntry) -> Result<i64, AuditError> {
        self.addr
            .send(Record(entry))
            .await
            .unwrap_or(Err(AuditError::Stopped))
    }

    pub async fn drain(&self) {
        let _ = self.addr.send(Drain).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(50));
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(20), RETRY_MAX);
    }
}

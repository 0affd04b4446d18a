//! The one Redis subscription loop, shared by everything that listens to other instances (cache
//! invalidations, log lines and status events). It subscribes, hands each message to its
//! [`Listener`], checks a quiet subscription with a PING (a half-open connection delivers
//! nothing and reports nothing), and subscribes again after a loss, logging an outage once
//! rather than once per retry. It ends once the listener says whoever it serves is gone.

use std::time::Duration;

use futures_util::StreamExt;

use super::redis::Redis;

const HEARTBEAT: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// What a subscription delivers to, and what it logs about itself.
pub trait Listener {
    /// What is received, for log lines: "cache invalidations".
    const WHAT: &'static str;
    /// What an operator loses while the subscription is down, for the log line of a loss.
    const WHILE_LOST: &'static str;

    /// False once whoever the messages are for is gone: the loop ends.
    fn alive(&self) -> bool;
    /// The subscription is (again) in place; messages sent while it was not are lost.
    fn subscribed(&mut self) {}
    /// One message. False once whoever it is for is gone: the loop ends.
    fn message(&mut self, payload: String) -> bool;
    /// An established subscription was lost.
    fn lost(&mut self) {}
}

/// Runs `listener`'s subscription to `channel` until the listener is no longer alive.
pub async fn listen<L: Listener>(redis: Redis, channel: String, mut listener: L) {
    // Failures are reported once per outage, not once per retry.
    let mut reported = false;
    while listener.alive() {
        match redis.pubsub(&channel).await {
            Ok(pubsub) => {
                tracing::info!(channel, "subscribed to {}", L::WHAT);
                listener.subscribed();
                let (mut sink, mut stream) = pubsub.split();
                let mut heartbeat =
                    tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
                loop {
                    tokio::select! {
                        message = stream.next() => {
                            let Some(message) = message else { break };
                            let payload: String = message.get_payload().unwrap_or_default();
                            if !listener.message(payload) {
                                return;
                            }
                        }
                        _ = heartbeat.tick() => {
                            if !listener.alive() {
                                return;
                            }
                            // Any answer will do: in subscribed mode RESP2 answers PING with an array.
                            let pong = tokio::time::timeout(
                                PING_TIMEOUT,
                                sink.ping::<deadpool_redis::redis::Value>(),
                            )
                            .await;
                            if !matches!(pong, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
                listener.lost();
                // The loss is the outage's one warning; failed retries after it are DEBUG.
                reported = true;
                tracing::warn!(
                    channel,
                    "lost the subscription to {}; {} until it is back",
                    L::WHAT,
                    L::WHILE_LOST
                );
            }
            Err(e) if reported => {
                tracing::debug!(channel, error = %e, "cannot subscribe to {} yet", L::WHAT);
            }
            Err(e) => {
                tracing::warn!(channel, error = %e, "cannot subscribe to {}; retrying", L::WHAT);
                reported = true;
            }
        }
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
    }
}

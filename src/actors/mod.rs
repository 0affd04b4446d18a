//! Long-lived actors that own state and talk by typed messages. Each runs under an
//! `actix::Supervisor`; an actor that stops is restarted in place (same address, same mailbox)
//! and re-establishes what it owns in `restarting()`.

pub mod audit;
pub mod broadcaster;
pub mod gateway;
pub mod health;
pub mod rcon;
mod status;

use actix::Message;

pub use status::ComponentStatus;

/// Asks an actor to stop so that its supervisor restarts it. Used when an actor meets a failure
/// it cannot recover from in place, and by operators to re-establish a connection.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Restart {
    pub reason: String,
}

/// Asks an actor for its current status.
#[derive(Debug, Message)]
#[rtype(result = "ComponentStatus")]
pub struct GetStatus;

/// How long a background actor's stop message waits for the work it already started (a
/// command's answer, an unban and their audit entries) before shutdown goes on without it.
pub const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// A count of work under way that someone can wait to see reach zero.
#[derive(Clone)]
pub struct Busy(std::sync::Arc<tokio::sync::watch::Sender<usize>>);

/// One unit of work under way, counted until dropped.
pub struct BusyGuard(Busy);

impl Default for Busy {
    fn default() -> Self {
        Self::new()
    }
}

impl Busy {
    pub fn new() -> Self {
        Self(std::sync::Arc::new(tokio::sync::watch::Sender::new(0)))
    }

    pub fn enter(&self) -> BusyGuard {
        self.0.send_modify(|n| *n += 1);
        BusyGuard(self.clone())
    }

    pub fn is_idle(&self) -> bool {
        *self.0.borrow() == 0
    }

    /// Waits until no work is under way, at most [`STOP_WAIT`]; false if some still was.
    pub async fn idle_before_stop(&self) -> bool {
        let mut count = self.0.subscribe();
        tokio::time::timeout(STOP_WAIT, count.wait_for(|n| *n == 0))
            .await
            .is_ok()
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

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

//! RconActor: one per Minecraft server, owning its RCON connection.

use actix::prelude::*;

use super::{ComponentStatus, GetStatus, Restart};
use crate::config::RconSettings;
use crate::metrics::Metrics;

pub struct RconActor {
    name: String,
    settings: RconSettings,
    status: ComponentStatus,
    metrics: Metrics,
}

impl RconActor {
    pub fn new(name: impl Into<String>, settings: RconSettings, metrics: Metrics) -> Self {
        Self {
            name: name.into(),
            settings,
            status: ComponentStatus::Connecting,
            metrics,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Actor for RconActor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        self.status = ComponentStatus::disabled(format!(
            "RCON server {}:{} is configured, but this build does not include RCON support yet",
            self.settings.host, self.settings.port
        ));
        tracing::info!(server = %self.name, status = self.status.label(), "rcon");
    }
}

impl Supervised for RconActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.metrics.actor_restarted("rcon");
    }
}

impl Handler<GetStatus> for RconActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.status.clone())
    }
}

impl Handler<Restart> for RconActor {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        tracing::warn!(actor = "rcon", server = %self.name, reason = %msg.reason, "restart requested");
        ctx.stop();
    }
}

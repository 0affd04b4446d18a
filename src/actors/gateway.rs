//! GatewayActor: owns the Discord connection (serenity) and reports its status.

use actix::prelude::*;
use secrecy::SecretString;

use super::{ComponentStatus, GetStatus, Restart};
use crate::metrics::Metrics;

pub struct GatewayActor {
    token: Option<SecretString>,
    status: ComponentStatus,
    metrics: Metrics,
}

impl GatewayActor {
    pub fn new(token: Option<SecretString>, metrics: Metrics) -> Self {
        Self {
            token,
            status: ComponentStatus::Connecting,
            metrics,
        }
    }

    fn initial_status(&self) -> ComponentStatus {
        match self.token {
            None => ComponentStatus::disabled("DISCORD_TOKEN is not set"),
            Some(_) => ComponentStatus::disabled(
                "DISCORD_TOKEN is set, but this build does not include the Discord gateway yet",
            ),
        }
    }
}

impl Actor for GatewayActor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        self.status = self.initial_status();
        tracing::info!(
            status = self.status.label(),
            reason = self.status.reason(),
            "discord gateway"
        );
    }
}

impl Supervised for GatewayActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.metrics.actor_restarted("gateway");
    }
}

impl Handler<GetStatus> for GatewayActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.status.clone())
    }
}

impl Handler<Restart> for GatewayActor {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        tracing::warn!(actor = "gateway", reason = %msg.reason, "restart requested");
        ctx.stop();
    }
}

//! `BanSweeper`: lifts temporary bans when they are due, one per instance, supervised like the
//! Minecraft `ScheduleRunner` (a panic or a `Restart` restarts it, counted in
//! `guildhall_actor_restarts_total{actor="ban_sweeper"}`).
//!
//! Each tick it takes the running session (the REST client and the bot's user id) from the
//! `DiscordLink`; without one (not connected yet, or Discord away) it waits for the next tick. Due bans
//! are claimed in the database (`resolve_case` answers true once), so with several instances
//! each ban is lifted once, by the instance whose shards serve the guild.

use std::time::Duration;

use actix::prelude::*;

use crate::actors::Restart;
use crate::config::ShardSpec;
use crate::metrics::Metrics;
use crate::state::AppState;

/// Hands the sweeper the application state; sent once by `startup` after the state exists (the
/// state holds this actor's address, so it cannot be passed to `new`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartSweeping(pub AppState);

/// The actor's name in `guildhall_actor_restarts_total`.
const ACTOR: &str = "ban_sweeper";

pub struct BanSweeper {
    state: Option<AppState>,
    shards: ShardSpec,
    metrics: Metrics,
    interval: Duration,
    /// A sweep is running; the next tick does not start another.
    sweeping: bool,
}

impl BanSweeper {
    pub fn new(shards: ShardSpec, metrics: Metrics, interval: Duration) -> Self {
        Self {
            state: None,
            shards,
            metrics,
            interval,
            sweeping: false,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let Some(state) = self.state.clone() else {
            return;
        };
        if self.sweeping {
            return;
        }
        self.sweeping = true;
        let shards = self.shards;
        ctx.spawn(
            async move {
                let Some(session) = state.discord.session() else {
                    return;
                };
                let swept = state
                    .moderation
                    .expire_temporary_bans(&session.http, session.bot_user_id, |guild| {
                        shards.serves(guild)
                    })
                    .await;
                if let Err(e) = swept {
                    tracing::warn!(error = %e, "cannot read due temporary bans");
                }
            }
            .into_actor(self)
            .map(|(), act, _| act.sweeping = false),
        );
    }
}

impl Actor for BanSweeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |act, ctx| act.tick(ctx));
    }
}

impl Supervised for BanSweeper {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.metrics.actor_restarted(ACTOR);
        // The sweep that was running went with the old context.
        self.sweeping = false;
    }
}

impl Handler<StartSweeping> for BanSweeper {
    type Result = ();

    fn handle(&mut self, msg: StartSweeping, _ctx: &mut Self::Context) {
        self.state = Some(msg.0);
    }
}

impl Handler<Restart> for BanSweeper {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        tracing::warn!(actor = ACTOR, reason = %msg.reason, "restart requested");
        ctx.stop();
    }
}

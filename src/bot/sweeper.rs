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
    /// Set on shutdown: no new sweep starts.
    stopped: bool,
    /// The sweep under way, if any: the next tick does not start another, and `StopSweeping`
    /// answers once there is none.
    busy: crate::actors::Busy,
}

/// Stops sweeping and answers once the sweep under way (if any) has finished, at most
/// [`crate::actors::STOP_WAIT`]: sent on shutdown before the pool closes, so no sweep uses a closed pool and none
/// is left half done (unbanned on Discord, its case and audit entry not written).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopSweeping;

impl BanSweeper {
    pub fn new(shards: ShardSpec, metrics: Metrics, interval: Duration) -> Self {
        Self {
            state: None,
            shards,
            metrics,
            interval,
            stopped: false,
            busy: crate::actors::Busy::new(),
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let Some(state) = self.state.clone() else {
            return;
        };
        if !self.busy.is_idle() || self.stopped {
            return;
        }
        let shards = self.shards;
        let sweep = async move {
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
        };
        let busy = self.busy.enter();
        ctx.spawn(
            async move {
                let _busy = busy;
                // On the runtime: a sweep in flight when the System ends must not panic.
                crate::store::on_runtime(sweep).await;
            }
            .into_actor(self),
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
        // The sweep that was running went with the old context, and its `busy` guard with it.
        self.metrics.actor_restarted(ACTOR);
    }
}

impl Handler<StartSweeping> for BanSweeper {
    type Result = ();

    fn handle(&mut self, msg: StartSweeping, _ctx: &mut Self::Context) {
        self.state = Some(msg.0);
    }
}

impl Handler<StopSweeping> for BanSweeper {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopSweeping, _ctx: &mut Self::Context) -> Self::Result {
        self.stopped = true;
        let busy = self.busy.clone();
        Box::pin(async move {
            if !busy.idle_before_stop().await {
                tracing::warn!(
                    "a temporary-ban sweep is still under way after {:?}",
                    crate::actors::STOP_WAIT
                );
            }
        })
    }
}

impl Handler<Restart> for BanSweeper {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        tracing::warn!(actor = ACTOR, reason = %msg.reason, "restart requested");
        ctx.stop();
    }
}

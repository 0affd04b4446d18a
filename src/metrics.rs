//! Application metrics, registered on the registry that actix-web-prom serves at `/metrics`.

use std::time::Instant;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub actor_restarts: IntCounterVec,
    pub audit_entries: IntCounter,
    pub audit_batches: IntCounter,
    pub audit_failures: IntCounter,
    pub audit_queue_depth: IntGauge,
    pub log_lines_dropped: IntCounter,
    pub redis_up: IntGauge,
    pub redis_transitions: IntCounterVec,
    /// 1 while this instance receives the other instances' cache invalidations.
    pub invalidation_subscribed: IntGauge,
    pub discord_guilds: IntGauge,
    pub discord_shard_latency: GaugeVec,
    /// 1 while the shard is connected, 0 while it connects, resumes or reconnects.
    pub discord_shard_connected: IntGaugeVec,
    /// 1 for the gateway's current status (`connected`, `reconnecting`, `disabled`, …), 0 for
    /// the statuses it had before: alerts tell a gateway that is down from one turned off.
    pub discord_gateway_status: IntGaugeVec,
    pub discord_commands: IntCounterVec,
    pub discord_events: IntCounterVec,
    pub discord_mailbox_depth: IntGauge,
    /// 1 while the named Minecraft server's RCON connection is up.
    pub rcon_up: IntGaugeVec,
    /// Round trip of each successful RCON command, by server.
    pub rcon_command_seconds: HistogramVec,
    /// Players online per server, from the periodic `list`.
    pub minecraft_players_online: IntGaugeVec,
    /// Requests answered with an error, by error code and status (one per request).
    pub http_errors: IntCounterVec,
    /// 1 while a dependency `/ready` reports (database, redis, gateway) is up.
    pub component_up: IntGaugeVec,
    pub component_transitions: IntCounterVec,
}

fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    c: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    pub fn new(registry: Registry) -> Result<Self, prometheus::Error> {
        register(&registry, Uptime::new()?)?;
        let m = Metrics {
            actor_restarts: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "guildhall_actor_restarts_total",
                        "Times a supervisor restarted an actor",
                    ),
                    &["actor"],
                )?,
            )?,
            audit_entries: register(
                &registry,
                IntCounter::new("guildhall_audit_entries_total", "Audit entries committed")?,
            )?,
            audit_batches: register(
                &registry,
                IntCounter::new(
                    "guildhall_audit_batches_total",
                    "Audit transactions committed (entries arriving together share one)",
                )?,
            )?,
            audit_failures: register(
                &registry,
                IntCounter::new(
                    "guildhall_audit_failures_total",
                    "Audit entries refused or failed after retries",
                )?,
            )?,
            audit_queue_depth: register(
                &registry,
                IntGauge::new(
                    "guildhall_audit_queue_depth",
                    "Audit entries waiting to be committed",
                )?,
            )?,
            log_lines_dropped: register(
                &registry,
                IntCounter::new(
                    "guildhall_log_lines_dropped_total",
                    "Log lines not delivered to a slow live-log viewer",
                )?,
            )?,
            redis_up: register(
                &registry,
                IntGauge::new(
                    "guildhall_redis_up",
                    "1 while Redis answers, 0 while the in-process fallbacks are in use",
                )?,
            )?,
            redis_transitions: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "guildhall_redis_transitions_total",
                        "Times Redis was found down or back up",
                    ),
                    &["to"],
                )?,
            )?,
            invalidation_subscribed: register(
                &registry,
                IntGauge::new(
                    "guildhall_cache_invalidation_subscribed",
                    "1 while subscribed to other instances' cache invalidations through Redis",
                )?,
            )?,
            discord_guilds: register(
                &registry,
                IntGauge::new(
                    "guildhall_discord_guilds",
                    "Guilds the bot is in, across this instance's shards",
                )?,
            )?,
            discord_shard_latency: register(
                &registry,
                GaugeVec::new(
                    Opts::new(
                        "guildhall_discord_shard_latency_seconds",
                        "Heartbeat round trip of each gateway shard",
                    ),
                    &["shard"],
                )?,
            )?,
            discord_gateway_status: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "guildhall_discord_gateway_status",
                        "1 for the Discord gateway's current status, 0 for earlier ones",
                    ),
                    &["status"],
                )?,
            )?,
            discord_shard_connected: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "guildhall_discord_shard_connected",
                        "1 while the gateway shard is connected, 0 while it is not",
                    ),
                    &["shard"],
                )?,
            )?,
            discord_commands: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "guildhall_discord_commands_total",
                        "Slash commands handled, by command and outcome",
                    ),
                    &["command", "outcome"],
                )?,
            )?,
            discord_events: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "guildhall_discord_events_total",
                        "Gateway events that reached the bot's handler, by type",
                    ),
                    &["type"],
                )?,
            )?,
            discord_mailbox_depth: register(
                &registry,
                IntGauge::new(
                    "guildhall_discord_gateway_mailbox_depth",
                    "Messages waiting in the gateway actor's mailbox",
                )?,
            )?,
            rcon_up: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "guildhall_rcon_up",
                        "1 while the Minecraft server's RCON connection is up",
                    ),
                    &["server"],
                )?,
            )?,
            rcon_command_seconds: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "guildhall_rcon_command_seconds",
                        "Round trip of RCON commands that were answered",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ]),
                    &["server"],
                )?,
            )?,
            minecraft_players_online: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "guildhall_minecraft_players_online",
                        "Players online, from the periodic `list`",
                    ),
                    &["server"],
                )?,
            )?,
            http_errors: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "guildhall_http_errors_total",
                        "Requests answered with an error, by error code and status",
                    ),
                    &["code", "status"],
                )?,
            )?,
            component_up: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "guildhall_component_up",
                        "1 while the component is up (database, redis, gateway)",
                    ),
                    &["component"],
                )?,
            )?,
            component_transitions: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "guildhall_component_transitions_total",
                        "Times a component was found down or back up",
                    ),
                    &["component", "to"],
                )?,
            )?,
            registry,
        };
        Ok(m)
    }
}

impl Metrics {
    /// Called from every actor's `Supervised::restarting`.
    pub fn actor_restarted(&self, actor: &str) {
        self.actor_restarts.with_label_values(&[actor]).inc();
        tracing::warn!(actor, "actor restarted by its supervisor");
    }
}

/// Seconds since start, computed at scrape time rather than by a ticking task.
#[derive(Clone)]
struct Uptime {
    started: Instant,
    gauge: Gauge,
}

impl Uptime {
    fn new() -> Result<Self, prometheus::Error> {
        Ok(Self {
            started: Instant::now(),
            gauge: Gauge::new(
                "guildhall_uptime_seconds",
                "Seconds since the daemon started",
            )?,
        })
    }
}

impl Collector for Uptime {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.gauge.set(self.started.elapsed().as_secs_f64());
        self.gauge.collect()
    }
}

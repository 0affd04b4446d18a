//! HealthMonitor: checks the database and Redis in the background and keeps what it last saw,
//! so `/ready` answers at once even while a dependency hangs (it reads the snapshot instead of
//! waiting on a ping). Every transition it sees is published on `/ws/status`, in `/metrics`
//! (`guildhall_component_up`, `guildhall_component_transitions_total`) and logged once: ERROR
//! when the database goes down, INFO when it is back (Redis's breaker logs its own). It also mirrors the gateway's status into
//! those metrics; the gateway and the RCON actors publish their own status events.
//!
//! Detection: a check runs every `CHECK_INTERVAL`; one that has not answered within
//! `CHECK_TIMEOUT` counts as down, so a dependency that refuses is seen within
//! `CHECK_INTERVAL` and one that hangs within `CHECK_INTERVAL + CHECK_TIMEOUT` (1 s).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;

use super::broadcaster::{LogBroadcaster, PublishStatus, StatusEvent};
use super::{ComponentStatus, GetStatus, Restart};
use crate::config::DatabaseKind;
use crate::metrics::Metrics;
use crate::shared::redis::Redis;
use crate::store::Store;

pub const CHECK_INTERVAL: Duration = Duration::from_millis(250);
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(750);

/// One dependency as `/ready` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DependencyCheck {
    /// `up`, `down` or `not_configured`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl DependencyCheck {
    fn is_up(&self) -> bool {
        self.status == "up"
    }
}

/// What the monitor last saw.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub database: DependencyCheck,
    pub redis: DependencyCheck,
    /// The gateway's status as this monitor last heard it (it asks every check interval), and
    /// when: what `/ready` shows when the gateway is slow to answer it.
    pub gateway: Option<(ComponentStatus, Instant)>,
}

/// The shared, always-current view `/ready` reads.
#[derive(Clone)]
pub struct HealthView {
    inner: Arc<RwLock<Snapshot>>,
}

impl HealthView {
    pub fn snapshot(&self) -> Snapshot {
        match self.inner.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        match self.inner.write() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

async fn check_database(store: Store) -> DependencyCheck {
    let engine = match store.kind() {
        DatabaseKind::Sqlite => "sqlite",
        DatabaseKind::Postgres => "postgres",
    };
    match tokio::time::timeout(CHECK_TIMEOUT, store.ping()).await {
        Ok(Ok(latency)) => DependencyCheck {
            status: "up",
            latency_ms: Some(ms(latency)),
            detail: Some(engine.to_owned()),
        },
        Ok(Err(e)) => DependencyCheck {
            status: "down",
            latency_ms: None,
            detail: Some(format!("{engine}: {e}")),
        },
        Err(_) => DependencyCheck {
            status: "down",
            latency_ms: None,
            detail: Some(format!("{engine}: no answer within {CHECK_TIMEOUT:?}")),
        },
    }
}

async fn check_redis(redis: Option<Redis>) -> DependencyCheck {
    let Some(redis) = redis else {
        return DependencyCheck {
            status: "not_configured",
            latency_ms: None,
            detail: Some("REDIS_URL is not set; using in-process fallbacks".into()),
        };
    };
    match tokio::time::timeout(CHECK_TIMEOUT, redis.ping()).await {
        Ok(Ok(latency)) => DependencyCheck {
            status: "up",
            latency_ms: Some(ms(latency)),
            detail: None,
        },
        Ok(Err(_)) | Err(_) => {
            // A hung PING never reaches the breaker itself; tell it, so callers skip Redis.
            redis.report_failure(&"no answer to a health check");
            DependencyCheck {
                status: "down",
                latency_ms: None,
                detail: Some("unreachable; using in-process fallbacks".into()),
            }
        }
    }
}

/// Checks both dependencies once; the monitor's starting point (at most `CHECK_TIMEOUT`).
pub async fn first_view(store: &Store, redis: Option<&Redis>) -> HealthView {
    let (database, redis) =
        futures_util::join!(check_database(store.clone()), check_redis(redis.cloned()));
    HealthView {
        inner: Arc::new(RwLock::new(Snapshot {
            database,
            redis,
            gateway: None,
        })),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Component {
    Database,
    Redis,
}

impl Component {
    fn name(self) -> &'static str {
        match self {
            Component::Database => "database",
            Component::Redis => "redis",
        }
    }
}

pub struct HealthMonitor {
    store: Store,
    redis: Option<Redis>,
    gateway: Recipient<GetStatus>,
    broadcaster: Addr<LogBroadcaster>,
    metrics: Metrics,
    view: HealthView,
    /// Checks still running (a hung one is not started again until it times out).
    database_checking: bool,
    redis_checking: bool,
    gateway_up: Option<bool>,
    stopped: bool,
}

/// Stops checking (at shutdown, before the pool closes).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopMonitoring;

impl HealthMonitor {
    pub fn new(
        store: Store,
        redis: Option<Redis>,
        gateway: Recipient<GetStatus>,
        broadcaster: Addr<LogBroadcaster>,
        metrics: Metrics,
        view: HealthView,
    ) -> Self {
        let snapshot = view.snapshot();
        for (component, check) in [
            (Component::Database, &snapshot.database),
            (Component::Redis, &snapshot.redis),
        ] {
            if check.status != "not_configured" {
                metrics
                    .component_up
                    .with_label_values(&[component.name()])
                    .set(i64::from(check.is_up()));
            }
        }
        Self {
            store,
            redis,
            gateway,
            broadcaster,
            metrics,
            view,
            database_checking: false,
            redis_checking: false,
            gateway_up: None,
            stopped: false,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        if !self.database_checking {
            self.database_checking = true;
            // On the runtime: a check in flight when the System ends must not panic (see
            // `store::on_runtime`).
            let check = crate::store::on_runtime(check_database(self.store.clone()));
            ctx.spawn(check.into_actor(self).map(|check, act, _| {
                act.database_checking = false;
                if let Some(check) = check {
                    act.record(Component::Database, check);
                }
            }));
        }
        if !self.redis_checking && self.redis.is_some() {
            self.redis_checking = true;
            ctx.spawn(
                check_redis(self.redis.clone())
                    .into_actor(self)
                    .map(|check, act, _| {
                        act.redis_checking = false;
                        act.record(Component::Redis, check);
                    }),
            );
        }
        let asked = self.gateway.send(GetStatus);
        ctx.spawn(
            async move { tokio::time::timeout(CHECK_TIMEOUT, asked).await }
                .into_actor(self)
                .map(|answer, act, _| {
                    if let Ok(Ok(status)) = answer {
                        act.record_gateway(&status);
                    }
                }),
        );
    }

    fn record(&mut self, component: Component, check: DependencyCheck) {
        if self.stopped {
            return;
        }
        let previous = self.view.snapshot();
        let before = match component {
            Component::Database => previous.database,
            Component::Redis => previous.redis,
        };
        let changed = before.status != check.status;
        self.view.update(|s| match component {
            Component::Database => s.database = check.clone(),
            Component::Redis => s.redis = check.clone(),
        });
        if !changed {
            return;
        }
        let name = component.name();
        let up = check.is_up();
        self.metrics
            .component_up
            .with_label_values(&[name])
            .set(i64::from(up));
        self.metrics
            .component_transitions
            .with_label_values(&[name, if up { "up" } else { "down" }])
            .inc();
        if component == Component::Redis {
            // Its breaker logs its own transitions (requests may see them first).
        } else if up {
            tracing::info!(component = name, "{name} is back");
        } else {
            tracing::error!(
                component = name,
                detail = check.detail.as_deref().unwrap_or_default(),
                "{name} is down; requests that need it answer 503 until it is back"
            );
        }
        self.broadcaster.do_send(PublishStatus(StatusEvent {
            component: name.to_owned(),
            status: serde_json::to_value(&check).unwrap_or_default(),
        }));
    }

    /// The gateway publishes and logs its own transitions; this mirrors them into the metrics.
    fn record_gateway(&mut self, status: &ComponentStatus) {
        let heard = (status.clone(), Instant::now());
        self.view.update(|s| s.gateway = Some(heard));
        if matches!(status, ComponentStatus::Disabled { .. }) {
            return;
        }
        let up = matches!(status, ComponentStatus::Connected);
        if self.gateway_up == Some(up) {
            return;
        }
        let first = self.gateway_up.is_none();
        self.gateway_up = Some(up);
        self.metrics
            .component_up
            .with_label_values(&["gateway"])
            .set(i64::from(up));
        if !first {
            self.metrics
                .component_transitions
                .with_label_values(&["gateway", if up { "up" } else { "down" }])
                .inc();
        }
    }
}

impl Actor for HealthMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.tick(ctx);
        ctx.run_interval(CHECK_INTERVAL, |act, ctx| act.tick(ctx));
    }
}

impl Supervised for HealthMonitor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.metrics.actor_restarted("health");
        // The checks in flight died with the old context.
        self.database_checking = false;
        self.redis_checking = false;
    }
}

impl Handler<StopMonitoring> for HealthMonitor {
    type Result = ();

    fn handle(&mut self, _: StopMonitoring, _ctx: &mut Self::Context) {
        self.stopped = true;
    }
}

impl Handler<Restart> for HealthMonitor {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        tracing::warn!(actor = "health", reason = %msg.reason, "restart requested");
        ctx.stop();
    }
}

//! Liveness (`/health`), readiness (`/ready`) and the readiness report the dashboard shows.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

pub use crate::actors::health::DependencyCheck;
use crate::actors::health::Snapshot;
use crate::actors::{ComponentStatus, GetStatus};
use crate::state::AppState;

/// An actor that does not answer within this is reported failed: `/ready` must answer within
/// 250 ms whatever hangs (the database and Redis are read from the health monitor's snapshot).
const ASK_TIMEOUT: Duration = Duration::from_millis(200);
/// A gateway slower than `ASK_TIMEOUT` is shown as the health monitor last heard it, if that
/// was at most this long ago (it asks every 250 ms): a loaded machine's late answer is not a
/// failed gateway; a gateway that has not answered for longer is reported failed.
const LAST_HEARD_WITHIN: Duration = Duration::from_secs(5);

const HEALTH_BODY: &str = r#"{"status":"ok"}"#;

/// Liveness: answers without touching any dependency.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(HEALTH_BODY)
}

#[derive(Debug, Clone, Serialize)]
pub struct RconReport {
    #[serde(flatten)]
    pub summary: ComponentStatus,
    pub servers: BTreeMap<String, ComponentStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// `ready` when the database answers; everything else degrades without failing readiness.
    pub status: &'static str,
    pub database: DependencyCheck,
    pub redis: DependencyCheck,
    pub gateway: ComponentStatus,
    pub rcon: RconReport,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

/// What every dependency and actor last reported; used by `/ready` and the dashboard. Never
/// waits on a dependency: the database and Redis come from the health monitor's snapshot.
pub async fn readiness(state: &AppState) -> Readiness {
    let Snapshot {
        database,
        mut redis,
        gateway: last_heard,
    } = state.health.snapshot();
    // Requests see a Redis failure before the next check does; their breaker is as current.
    if let Some(breaker) = &state.redis
        && !breaker.is_up()
        && redis.status == "up"
    {
        redis = DependencyCheck {
            status: "down",
            latency_ms: None,
            detail: Some("unreachable; using in-process fallbacks".into()),
        };
    }
    let (gateway, servers) = futures_util::join!(
        ask(&state.gateway),
        state.minecraft.component_statuses(ASK_TIMEOUT)
    );
    let gateway = match (gateway, last_heard) {
        (Asked::Late, Some((status, at))) if at.elapsed() <= LAST_HEARD_WITHIN => status,
        (Asked::Late, _) => ComponentStatus::Failed {
            reason: "actor did not answer in time".into(),
        },
        (Asked::Answered(status), _) => status,
    };
    let summary = if servers.is_empty() {
        ComponentStatus::disabled(
            "no Minecraft server is configured (set RCON_HOST or add one through the API)",
        )
    } else if servers
        .values()
        .all(|s| matches!(s, ComponentStatus::Connected))
    {
        ComponentStatus::Connected
    } else if let Some(first) = servers.values().next() {
        first.clone()
    } else {
        ComponentStatus::Connecting
    };
    Readiness {
        status: if database.status == "up" {
            "ready"
        } else {
            "not_ready"
        },
        database,
        redis,
        gateway,
        rcon: RconReport { summary, servers },
    }
}

/// An actor's answer to `GetStatus`, or that it came too late to wait for.
enum Asked {
    Answered(ComponentStatus),
    Late,
}

async fn ask<A>(addr: &actix::Addr<A>) -> Asked
where
    A: actix::Actor<Context = actix::Context<A>> + actix::Handler<GetStatus>,
{
    match tokio::time::timeout(ASK_TIMEOUT, addr.send(GetStatus)).await {
        Ok(Ok(status)) => Asked::Answered(status),
        Ok(Err(_)) => Asked::Answered(ComponentStatus::Failed {
            reason: "actor is not running".into(),
        }),
        Err(_) => Asked::Late,
    }
}

/// Readiness: 200 while the database answers, 503 otherwise, with every check in the body.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let report = readiness(&state).await;
    if report.is_ready() {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

//! Liveness (`/health`), readiness (`/ready`) and the readiness report the dashboard shows.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::actors::{ComponentStatus, GetStatus};
use crate::config::DatabaseKind;
use crate::state::AppState;

/// A dependency that does not answer within this is reported down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

const HEALTH_BODY: &str = r#"{"status":"ok"}"#;

/// Liveness: answers without touching any dependency.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(HEALTH_BODY)
}

#[derive(Debug, Clone, Serialize)]
pub struct DependencyCheck {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
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

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// Asks every dependency and actor for its state; used by `/ready` and the dashboard.
pub async fn readiness(state: &AppState) -> Readiness {
    let engine = match state.store.kind() {
        DatabaseKind::Sqlite => "sqlite",
        DatabaseKind::Postgres => "postgres",
    };
    let database = match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
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
    };
    let redis = match &state.redis {
        None => DependencyCheck {
            status: "not_configured",
            latency_ms: None,
            detail: Some("REDIS_URL is not set; using in-process fallbacks".into()),
        },
        Some(redis) => match tokio::time::timeout(CHECK_TIMEOUT, redis.ping()).await {
            Ok(Ok(latency)) => DependencyCheck {
                status: "up",
                latency_ms: Some(ms(latency)),
                detail: None,
            },
            Ok(Err(_)) | Err(_) => DependencyCheck {
                status: "down",
                latency_ms: None,
                detail: Some("unreachable; using in-process fallbacks".into()),
            },
        },
    };
    let gateway = ask(&state.gateway).await;
    let servers = state.minecraft.component_statuses().await;
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

async fn ask<A>(addr: &actix::Addr<A>) -> ComponentStatus
where
    A: actix::Actor<Context = actix::Context<A>> + actix::Handler<GetStatus>,
{
    match tokio::time::timeout(CHECK_TIMEOUT, addr.send(GetStatus)).await {
        Ok(Ok(status)) => status,
        Ok(Err(_)) => ComponentStatus::Failed {
            reason: "actor is not running".into(),
        },
        Err(_) => ComponentStatus::Failed {
            reason: "actor did not answer in time".into(),
        },
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

//! The landing page: what runs, what does not, and what is not configured yet.

use actix_web::{HttpResponse, web};
use sailfish::TemplateSimple;

use crate::actors::ComponentStatus;
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::health::{Readiness, readiness};

#[derive(TemplateSimple)]
#[template(path = "index.stpl")]
struct IndexPage {
    report: Readiness,
    /// (component, what to set)
    unconfigured: Vec<(&'static str, String)>,
    /// (component, state, detail)
    rows: Vec<(String, String, String)>,
    version: &'static str,
}

fn status_row(name: String, status: &ComponentStatus) -> (String, String, String) {
    (
        name,
        status.label().to_owned(),
        status.reason().unwrap_or_default().to_owned(),
    )
}

pub async fn index(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let report = readiness(&state).await;
    let mut unconfigured = Vec::new();
    if let ComponentStatus::Disabled { reason } = &report.gateway {
        unconfigured.push(("Discord bot", reason.clone()));
    }
    if report.rcon.servers.is_empty() {
        unconfigured.push((
            "Minecraft",
            "no RCON server is configured (set RCON_HOST, RCON_PORT and RCON_PASSWORD)".into(),
        ));
    }
    if report.redis.status == "not_configured" {
        unconfigured.push((
            "Redis",
            "REDIS_URL is not set: rate limits and caches stay in this process (fine for one instance)".into(),
        ));
    }
    let mut rows = vec![
        (
            "Database".to_owned(),
            report.database.status.to_owned(),
            report.database.detail.clone().unwrap_or_default(),
        ),
        (
            "Redis".to_owned(),
            report.redis.status.to_owned(),
            report.redis.detail.clone().unwrap_or_default(),
        ),
        status_row("Discord gateway".to_owned(), &report.gateway),
    ];
    if report.rcon.servers.is_empty() {
        rows.push(status_row(
            "Minecraft (RCON)".to_owned(),
            &report.rcon.summary,
        ));
    }
    for (name, status) in &report.rcon.servers {
        rows.push(status_row(format!("Minecraft: {name}"), status));
    }
    let page = IndexPage {
        report,
        unconfigured,
        rows,
        version: env!("CARGO_PKG_VERSION"),
    };
    let html = page
        .render_once()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("rendering index: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

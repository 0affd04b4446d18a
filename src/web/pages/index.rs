//! The overview (`/`): the gateway per shard, guilds, latency, uptime, each Minecraft server's
//! state and players, the last audit entries, what is not configured yet, and 24-hour charts.
//! The status part is a fragment (`/overview/status`) that the page fetches again whenever
//! `/ws/status` announces a change: live, without a reload and without polling.

use actix_web::http::StatusCode;
use actix_web::web;
use sailfish::TemplateSimple;

use super::page::{Chrome, PageResult, SignedIn, html};
use super::sparkline::sparkline;
use crate::actors::ComponentStatus;
use crate::actors::gateway::BotStatus;
use crate::auth::rbac::Permission;
use crate::history::Series;
use crate::state::AppState;
use crate::store::audit::{AuditEntry, AuditFilter};
use crate::web::health::{Readiness, readiness};

/// How many audit entries the overview lists.
const RECENT_AUDIT: u32 = 8;
const CHART_WIDTH: u32 = 240;
const CHART_HEIGHT: u32 = 40;

/// One row of the components table: (component, state, detail).
pub type Row = (String, String, String);

/// One shard: (id, stage, latency).
pub type ShardRow = (u32, String, String);

/// A Minecraft server: (name, state, players online now).
pub type ServerRow = (String, String, String);

/// A chart: (title, latest value as text, SVG).
pub type Chart = (String, String, String);

/// What the live part of the overview shows.
pub struct Status {
    pub ready: bool,
    /// (component, what to set)
    pub unconfigured: Vec<(&'static str, String)>,
    pub rows: Vec<Row>,
    pub gateway: String,
    pub shards: Vec<ShardRow>,
    pub guilds: String,
    pub latency: String,
    pub uptime: String,
    pub servers: Vec<ServerRow>,
}

#[derive(TemplateSimple)]
#[template(path = "pages/overview.stpl")]
struct OverviewPage {
    chrome: Chrome,
    status: Status,
    /// The page listens to `/ws/status` (the user holds `bot.view`).
    live: bool,
    audit: Option<Vec<AuditEntry>>,
    charts: Vec<Chart>,
}

#[derive(TemplateSimple)]
#[template(path = "pages/overview_status.stpl")]
struct StatusFragment {
    status: Status,
}

fn status_row(name: String, status: &ComponentStatus) -> Row {
    (
        name,
        status.label().to_owned(),
        status.reason().unwrap_or_default().to_owned(),
    )
}

/// Seconds as "3 d 4 h", "5 h 12 min", "42 s".
pub fn duration_text(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

fn latency_text(ms: Option<f64>) -> String {
    ms.map_or_else(|| "–".to_owned(), |ms| format!("{ms:.0} ms"))
}

/// Gathers the status: the same functions `/ready` and `GET /api/v1/bot/status` call.
pub async fn status(state: &AppState) -> Status {
    let (report, bot) = futures_util::join!(readiness(state), crate::web::api::bot::status(state));
    let bot = bot.ok();
    let players = latest_players(state);
    status_of(report, bot.as_ref(), &players)
}

/// The players each server had at the last sample (the history ring: no RCON round trip).
fn latest_players(state: &AppState) -> Vec<(String, Option<f64>)> {
    state
        .history
        .known()
        .into_iter()
        .filter_map(|s| match &s {
            Series::Players(name) => {
                let last = state.history.series(&s).last().copied().flatten();
                Some((name.clone(), last))
            }
            _ => None,
        })
        .collect()
}

fn status_of(
    report: Readiness,
    bot: Option<&BotStatus>,
    players: &[(String, Option<f64>)],
) -> Status {
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
    let servers = report
        .rcon
        .servers
        .iter()
        .map(|(name, s)| {
            rows.push(status_row(format!("Minecraft: {name}"), s));
            let online = players
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, p)| *p)
                .map_or_else(|| "–".to_owned(), |p| format!("{p:.0}"));
            (name.clone(), s.label().to_owned(), online)
        })
        .collect();
    let shards = bot
        .map(|b| {
            b.shards
                .iter()
                .map(|s| {
                    let stage = serde_json::to_value(s.stage)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    (s.id, stage, latency_text(s.latency_ms))
                })
                .collect()
        })
        .unwrap_or_default();
    let latency = bot
        .and_then(|b| {
            b.shards
                .iter()
                .filter_map(|s| s.latency_ms)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        })
        .map_or_else(|| "–".to_owned(), |ms| format!("{ms:.0} ms"));
    Status {
        ready: report.is_ready(),
        unconfigured,
        rows,
        gateway: report.gateway.label().to_owned(),
        shards,
        guilds: bot.map_or_else(|| "–".to_owned(), |b| b.guilds.to_string()),
        latency,
        uptime: bot
            .and_then(|b| b.uptime_secs)
            .map_or_else(|| "–".to_owned(), duration_text),
        servers,
    }
}

/// The 24-hour charts, from the in-process history ring.
fn charts(state: &AppState) -> Vec<Chart> {
    let mut series = vec![
        (Series::Commands, "Commands per minute".to_owned(), ""),
        (
            Series::GatewayLatencyMs,
            "Gateway latency".to_owned(),
            " ms",
        ),
        (
            Series::HttpServerErrors,
            "HTTP server errors per minute".to_owned(),
            "",
        ),
        (
            Series::HttpClientErrors,
            "HTTP client errors per minute".to_owned(),
            "",
        ),
    ];
    for known in state.history.known() {
        if let Series::Players(name) = &known {
            let title = format!("Players online: {name}");
            series.push((known.clone(), title, ""));
        }
    }
    series
        .into_iter()
        .map(|(s, title, unit)| {
            let values = state.history.series(&s);
            let latest = values
                .iter()
                .rev()
                .flatten()
                .next()
                .map_or_else(|| "no data yet".to_owned(), |v| format!("{v:.0}{unit}"));
            let label = format!("{title}, last 24 hours; latest {latest}");
            let svg = sparkline(&values, CHART_WIDTH, CHART_HEIGHT, &label);
            (title, latest, svg)
        })
        .collect()
}

/// The last audit entries the user may read (the audit API's own query and narrowing).
async fn recent_audit(state: &AppState, page: &SignedIn) -> Option<Vec<AuditEntry>> {
    if !page.can_anywhere(Permission::AuditRead) {
        return None;
    }
    let filter = AuditFilter {
        limit: RECENT_AUDIT,
        ..AuditFilter::default()
    };
    crate::web::api::audit::entries(state, &page.grants, filter)
        .await
        .ok()
}

/// `GET /`: the overview.
pub async fn overview(page: SignedIn, state: web::Data<AppState>) -> PageResult {
    let live = page.can(Permission::BotView, None);
    let (status, audit) = futures_util::join!(status(&state), recent_audit(&state, &page));
    page.render(OverviewPage {
        chrome: page.chrome("Overview"),
        status,
        live,
        audit,
        charts: charts(&state),
    })
}

/// `GET /overview/status`: the live part, fetched again on every `/ws/status` event.
pub async fn status_fragment(page: SignedIn, state: web::Data<AppState>) -> PageResult {
    let _ = &page;
    html(
        StatusCode::OK,
        StatusFragment {
            status: status(&state).await,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::duration_text;

    #[test]
    fn uptime_reads_in_the_largest_useful_units() {
        assert_eq!(duration_text(42), "42 s");
        assert_eq!(duration_text(5 * 60 + 3), "5 min");
        assert_eq!(duration_text(3 * 3600 + 12 * 60), "3 h 12 min");
        assert_eq!(duration_text(2 * 86_400 + 5 * 3600), "2 d 5 h");
    }
}

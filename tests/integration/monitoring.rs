//! The monitoring shipped in monitoring/ (Grafana dashboards, Prometheus rules) asks only for
//! series a running guildhall exports: a renamed metric fails here, not silently in Grafana.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::fake_discord::{FakeDiscord, MEMBER, standard_guild};
use crate::common::fake_rcon::FakeRcon;
use crate::common::{TestApp, eventually, spawn_app_with};

const GUILD: u64 = 1_200_000_000_000_000_000;
const WAIT: Duration = Duration::from_secs(20);

/// Every `guildhall_*` and `process_*` series name in the dashboards and the alert rules.
fn names_used_by_monitoring() -> BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring");
    let mut files = vec![root.join("prometheus/rules.yml")];
    for entry in std::fs::read_dir(root.join("grafana/dashboards")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for prefix in ["guildhall_", "process_"] {
            let mut rest = text.as_str();
            while let Some(at) = rest.find(prefix) {
                let preceded_by_ident = rest[..at]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                let tail = &rest[at..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(tail.len());
                // `guildhall-api` (a uid) and `{{instance}}`-style text are not series names.
                if !preceded_by_ident && end > prefix.len() {
                    names.insert(tail[..end].to_owned());
                }
                rest = &tail[end..];
            }
        }
    }
    names
}

/// Series names in one scrape (`name{labels} value` and `name value` lines).
async fn exported(app: &TestApp) -> BTreeSet<String> {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[actix_web::test]
async fn every_series_a_dashboard_or_alert_rule_uses_is_exported_by_a_running_instance() {
    let used = names_used_by_monitoring();
    assert!(
        used.len() > 10 && used.contains("guildhall_http_requests_total"),
        "the scan found the names: {used:?}"
    );

    // Labelled series exist once something happened: a connected bot, a command, a Minecraft
    // server answering, HTTP requests.
    let discord = FakeDiscord::start().await;
    discord.add_guild(standard_guild(GUILD));
    let rcon = FakeRcon::start("mc-password");
    let (discord_env, rcon_env) = (discord.env(), rcon.env());
    let app = spawn_app_with(move |env| {
        env.extend(discord_env);
        env.extend(rcon_env);
        env.insert("GUILDHALL_RCON_POLL_MS".into(), "200".into());
    })
    .await;
    assert!(
        eventually(WAIT, || async {
            app.metric(r#"guildhall_discord_shard_connected{shard="0"}"#)
                .await
                == Some(1.0)
        })
        .await,
        "the bot connected"
    );
    let (id, payload) = discord.command_interaction(GUILD, MEMBER, "ping", vec![]);
    discord.dispatch(0, "INTERACTION_CREATE", payload);
    assert!(
        eventually(WAIT, || async { !discord.replies_to(id).is_empty() }).await,
        "/ping answered"
    );
    app.get("/api/openapi.json").await;
    // The Minecraft server is asked for its players (the poll does the same later on).
    let server = guildhall::minecraft::ServerName::parse("default").unwrap();
    app.state.minecraft.players(&server).await.unwrap();

    // Gauges of the poll and histograms appear within a poll or two: retry until the window ends.
    let deadline = std::time::Instant::now() + WAIT;
    let missing = loop {
        let have = exported(&app).await;
        let missing: Vec<&String> = used.iter().filter(|n| !have.contains(*n)).collect();
        if missing.is_empty() || std::time::Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        missing.is_empty(),
        "used by monitoring/ but not exported: {missing:?}"
    );
    drop(rcon);
}

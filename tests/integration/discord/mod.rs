//! The Discord bot end to end: guildhall's real serenity client against the fake Discord.
//! This module holds the helpers the three suites share; the tests sit in `gateway`, `commands`
//! (slash commands) and `api` (the Discord resources of the HTTP API).

mod api;
mod commands;
mod gateway;
mod links;
mod oauth;

use std::time::Duration;

use guildhall::actors::gateway::{BotStatus, GetBotStatus};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::fake_discord::{
    self, ADMIN, BOT_ID, FakeDiscord, MEMBER, MODERATOR, OTHER_MEMBER, OWNER, OnIdentify, Opt,
    standard_guild,
};
use crate::common::{TestApp, eventually, spawn_app_with};

const GUILD: u64 = 1_200_000_000_000_000_000;
const WAIT: Duration = Duration::from_secs(15);

async fn bot_status(app: &TestApp) -> BotStatus {
    app.state
        .gateway
        .send(GetBotStatus)
        .await
        .expect("gateway answers")
}

async fn spawn_bot(fake: &FakeDiscord) -> TestApp {
    spawn_bot_with(fake, |_| {}).await
}

async fn spawn_bot_with(
    fake: &FakeDiscord,
    customise: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> TestApp {
    let vars = fake.env();
    spawn_app_with(move |env| {
        env.extend(vars);
        customise(env);
    })
    .await
}

/// Starts a fake with the standard guild and the app, and waits for the guild to be recorded.
async fn connected() -> (FakeDiscord, TestApp) {
    connected_with(|_| {}).await
}

/// `connected`, with extra environment for the app.
async fn connected_with(
    customise: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> (FakeDiscord, TestApp) {
    let fake = FakeDiscord::start().await;
    fake.add_guild(standard_guild(GUILD));
    let app = spawn_bot_with(&fake, customise).await;
    assert!(
        eventually(WAIT, || async {
            bot_status(&app).await.status.label() == "connected"
                && app
                    .state
                    .store
                    .guild(GUILD as i64)
                    .await
                    .ok()
                    .flatten()
                    .is_some()
        })
        .await,
        "bot did not connect: {:?}",
        bot_status(&app).await
    );
    (fake, app)
}

async fn events(app: &TestApp, kind: &str) -> f64 {
    app.metric(&format!(
        "guildhall_discord_events_total{{type=\"{kind}\"}}"
    ))
    .await
    .unwrap_or(0.0)
}

/// Sends an interaction and waits for the bot's answer to it.
async fn invoke(fake: &FakeDiscord, invoker: u64, command: &str, options: Vec<Opt>) -> Value {
    invoke_in(fake, GUILD, invoker, command, options).await
}

async fn invoke_in(
    fake: &FakeDiscord,
    guild: u64,
    invoker: u64,
    command: &str,
    options: Vec<Opt>,
) -> Value {
    let (id, payload) = fake.command_interaction(guild, invoker, command, options);
    fake.dispatch(0, "INTERACTION_CREATE", payload);
    assert!(
        eventually(WAIT, || async { !fake.replies_to(id).is_empty() }).await,
        "no reply to /{command}"
    );
    fake.replies_to(id).remove(0)
}

fn content(reply: &Value) -> String {
    reply["data"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn is_ephemeral(reply: &Value) -> bool {
    reply["data"]["flags"].as_u64().unwrap_or(0) & 64 == 64
}

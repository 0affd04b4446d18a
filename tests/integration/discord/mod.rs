//! The Discord bot end to end: guildhall's real serenity client against the fake Discord.
//! This module holds the fixtures the suites share (a connected bot, waits on the gateway, an
//! actor restart); the tests sit in `gateway`, `commands` (slash commands), `api` (the Discord
//! resources of the HTTP API), `oauth` (Discord sign-in) and `links` (Minecraft accounts).

mod api;
mod commands;
mod gateway;
pub(crate) mod links;
mod links_instances;
pub(crate) mod links_pages;
mod oauth;

use std::time::Duration;

use guildhall::actors::Restart;
use guildhall::actors::gateway::{BotStatus, GetBotStatus};
use guildhall::clock::Clock;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::fake_discord::{
    self, ADMIN, BOT_ID, FakeDiscord, MEMBER, MODERATOR, OTHER_MEMBER, OWNER, OnIdentify, Opt,
    standard_guild,
};
use crate::common::{TestApp, eventually, spawn_app_with, spawn_app_with_clock};

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
    spawn_bot_at(fake, Clock::System, customise).await
}

/// The app as a bot of `fake`, with `clock` (rate-limit windows, expiries) and extra
/// environment.
async fn spawn_bot_at(
    fake: &FakeDiscord,
    clock: Clock,
    customise: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> TestApp {
    let vars = fake.env();
    spawn_app_with_clock(clock, move |env| {
        env.extend(vars);
        customise(env);
    })
    .await
}

/// Waits until the bot is connected and has recorded `guild` (its GUILD_CREATE was handled).
pub(crate) async fn wait_until_connected(app: &TestApp, guild: u64) {
    assert!(
        eventually(WAIT, || async {
            bot_status(app).await.status.label() == "connected"
                && app
                    .state
                    .store
                    .guild(guild as i64)
                    .await
                    .ok()
                    .flatten()
                    .is_some()
        })
        .await,
        "bot did not connect: {:?}",
        bot_status(app).await
    );
}

/// Waits until the gateway reports `label` ("connected", "reconnecting"); fails naming the
/// status it reports instead.
async fn wait_for_gateway(app: &TestApp, label: &str) {
    assert!(
        eventually(WAIT, || async {
            bot_status(app).await.status.label() == label
        })
        .await,
        "the gateway never became {label}: {:?}",
        bot_status(app).await
    );
}

/// Asks a supervised actor to restart, as an operator (or a fault it cannot recover from in
/// place) does.
async fn restart<A>(actor: &actix::Addr<A>, reason: &str)
where
    A: actix::Actor + actix::Handler<Restart>,
    A::Context: actix::dev::ToEnvelope<A, Restart>,
{
    actor
        .send(Restart {
            reason: reason.into(),
        })
        .await
        .expect("the actor answers");
}

/// Starts a fake with the standard guild and the app, and waits for the guild to be recorded.
async fn connected() -> (FakeDiscord, TestApp) {
    connected_with(|_| {}).await
}

/// `connected`, with extra environment for the app.
async fn connected_with(
    customise: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> (FakeDiscord, TestApp) {
    connected_at(Clock::System, customise).await
}

/// `connected`, with `clock` and extra environment for the app.
async fn connected_at(
    clock: Clock,
    customise: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> (FakeDiscord, TestApp) {
    let fake = FakeDiscord::start().await;
    fake.add_guild(standard_guild(GUILD));
    let app = spawn_bot_at(&fake, clock, customise).await;
    wait_until_connected(&app, GUILD).await;
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

/// `/settings set <key> <value>` from the guild's administrator; the bot's reply.
async fn set_setting(fake: &FakeDiscord, key: &str, value: &str) -> Value {
    invoke(
        fake,
        ADMIN,
        "settings",
        vec![Opt::sub(
            "set",
            vec![Opt::string("key", key), Opt::string("value", value)],
        )],
    )
    .await
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

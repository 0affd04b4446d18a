//! The Discord bot end to end: guildhall's real serenity client against the fake Discord.

use std::time::Duration;

use guildhall::actors::gateway::{BotStatus, GetBotStatus};
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
    let fake = FakeDiscord::start().await;
    fake.add_guild(standard_guild(GUILD));
    let app = spawn_bot(&fake).await;
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

#[actix_web::test]
async fn the_bot_connects_through_the_proxy_and_reports_its_shard_guilds_and_commands() {
    let (fake, app) = connected().await;
    let status = bot_status(&app).await;
    assert_eq!(status.shards.len(), 1);
    assert_eq!(status.shards[0].id, 0);
    assert_eq!(status.guilds, 1);
    assert_eq!(
        status.bot_user_id.as_deref(),
        Some(BOT_ID.to_string().as_str())
    );

    let (_, ready) = app.get_json("/ready").await;
    assert_eq!(ready["gateway"]["status"], "connected");
    assert_eq!(app.metric("guildhall_discord_guilds").await, Some(1.0));
    assert_eq!(events(&app, "READY").await, 1.0);
    assert_eq!(events(&app, "GUILD_CREATE").await, 1.0);

    let guild = app.state.store.guild(GUILD as i64).await.unwrap().unwrap();
    assert_eq!(guild.name, format!("Guild {GUILD}"));
    assert_eq!(guild.member_count, 6);
    assert_eq!(guild.owner_id, Some(OWNER as i64));

    // Commands were registered globally by one bulk overwrite.
    let puts = fake.calls_matching("PUT", "/applications/");
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(
        puts[0].path,
        format!("/applications/{}/commands", fake_discord::APPLICATION_ID)
    );
    let names: Vec<&str> = puts[0]
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for name in [
        "ping",
        "help",
        "settings",
        "module",
        "warn",
        "kick",
        "ban",
        "unban",
        "timeout",
        "untimeout",
        "purge",
        "cases",
        "case",
        "mc",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // Latency shows up after the first heartbeat ACK.
    assert!(
        eventually(WAIT, || async {
            bot_status(&app).await.shards[0].latency_ms.is_some()
        })
        .await
    );
    assert!(
        app.metric("guildhall_discord_shard_latency_seconds{shard=\"0\"}")
            .await
            .is_some()
    );
}

#[actix_web::test]
async fn an_invalid_token_marks_the_gateway_failed_without_a_reconnect_storm() {
    let fake = FakeDiscord::start().await;
    fake.set_on_identify(OnIdentify::Close(4004));
    let app = spawn_bot(&fake).await;
    assert!(
        eventually(WAIT, || async {
            bot_status(&app).await.status.label() == "failed"
        })
        .await,
        "{:?}",
        bot_status(&app).await
    );
    let (status, ready) = app.get_json("/ready").await;
    assert_eq!(status, 200, "the rest of the daemon keeps running");
    assert_eq!(ready["gateway"]["status"], "failed");
    let reason = ready["gateway"]["reason"].as_str().unwrap();
    assert!(reason.contains("4004"), "{reason}");
    assert!(!reason.contains(fake_discord::TOKEN));
    // Several heartbeat intervals later: still one attempt.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(fake.identifies(), 1);
    assert_eq!(fake.connections(), 1);
    assert_eq!(app.get("/health").await.status(), 200);
}

#[actix_web::test]
async fn disallowed_intents_mark_the_gateway_failed_with_that_reason() {
    let fake = FakeDiscord::start().await;
    fake.set_on_identify(OnIdentify::Close(4014));
    let app = spawn_bot_with(&fake, |env| {
        env.insert("GUILDHALL_DISCORD_MEMBERS_INTENT".into(), "true".into());
    })
    .await;
    assert!(
        eventually(WAIT, || async {
            bot_status(&app).await.status.label() == "failed"
        })
        .await
    );
    let status = bot_status(&app).await;
    assert!(status.status.reason().unwrap().contains("4014"));
    // The identify asked for GUILD_MEMBERS (1 << 1).
    let intents = fake.identify_payloads()[0]["intents"].as_u64().unwrap();
    assert_eq!(intents & 2, 2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fake.identifies(), 1);
}

#[actix_web::test]
async fn a_dropped_connection_resumes_the_session() {
    let (fake, app) = connected().await;
    fake.drop_session(0);
    assert!(
        eventually(Duration::from_secs(20), || async { fake.resumes() >= 1 }).await,
        "no RESUME after a drop (identifies: {})",
        fake.identifies()
    );
    assert_eq!(fake.identifies(), 1, "resumed, not re-identified");
    assert!(eventually(WAIT, || async { events(&app, "RESUMED").await >= 1.0 }).await);
    assert!(
        eventually(WAIT, || async {
            bot_status(&app).await.status.label() == "connected"
        })
        .await
    );
    // Events after the resume reach the handler.
    let g = standard_guild(GUILD);
    let author = g.member(MEMBER).unwrap().clone();
    fake.dispatch(
        0,
        "MESSAGE_CREATE",
        fake_discord::payloads::message(fake.next_snowflake(), GUILD, GUILD + 10, &author, "hi"),
    );
    assert!(
        eventually(WAIT, || async {
            events(&app, "MESSAGE_CREATE").await == 1.0
        })
        .await
    );
}

#[actix_web::test]
async fn shutdown_closes_the_shards_cleanly() {
    let (fake, app) = connected().await;
    app.handle.stop(true).await;
    assert!(
        eventually(WAIT, || async { fake.client_close_codes().contains(&1000) }).await,
        "close codes: {:?}",
        fake.client_close_codes()
    );
}

#[actix_web::test]
async fn kick_from_discord_deletes_the_member_replies_and_records_case_audit_and_log_embed() {
    let (fake, app) = connected().await;
    let log_channel = GUILD + 11;
    let reply = invoke(
        &fake,
        ADMIN,
        "settings",
        vec![Opt::sub(
            "set",
            vec![
                Opt::string("key", "log_channel"),
                Opt::string("value", &format!("<#{log_channel}>")),
            ],
        )],
    )
    .await;
    assert!(is_ephemeral(&reply), "{reply}");

    let reply = invoke(
        &fake,
        MODERATOR,
        "kick",
        vec![Opt::user("user", MEMBER), Opt::string("reason", "spamming")],
    )
    .await;
    assert!(content(&reply).contains("case #1"), "{reply}");
    let kicks = fake.calls_matching("DELETE", &format!("/guilds/{GUILD}/members/{MEMBER}"));
    assert_eq!(kicks.len(), 1);
    assert!(
        kicks[0]
            .audit_reason
            .as_deref()
            .unwrap_or_default()
            .contains("spamming")
    );

    let case = app
        .state
        .store
        .case_by_number(GUILD as i64, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.action, "kick");
    assert_eq!(case.target_user_id, MEMBER as i64);
    assert_eq!(case.moderator_id, Some(MODERATOR as i64));
    assert_eq!(case.reason.as_deref(), Some("spamming"));

    let audit: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT action, target FROM audit_log WHERE action = 'moderation.kick'")
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(
        audit,
        vec![(
            "moderation.kick".to_owned(),
            Some(format!("discord_user:{MEMBER}"))
        )]
    );

    let embeds = fake.calls_matching("POST", &format!("/channels/{log_channel}/messages"));
    assert_eq!(embeds.len(), 1);
    assert!(
        embeds[0].body["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("Case #1")
    );
    assert_eq!(
        app.metric("guildhall_discord_commands_total{command=\"kick\",outcome=\"ok\"}")
            .await,
        Some(1.0)
    );
    let _ = OTHER_MEMBER;
}

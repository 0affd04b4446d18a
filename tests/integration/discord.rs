//! The Discord bot end to end: guildhall's real serenity client against the fake Discord.

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

#[actix_web::test]
async fn a_command_of_a_disabled_module_answers_module_disabled_and_does_nothing() {
    let (fake, app) = connected().await;
    let reply = invoke(
        &fake,
        ADMIN,
        "module",
        vec![Opt::sub(
            "disable",
            vec![Opt::string("module", "moderation")],
        )],
    )
    .await;
    assert!(content(&reply).contains("disabled"), "{reply}");
    let before = fake.side_effects().len();
    let reply = invoke(&fake, MODERATOR, "kick", vec![Opt::user("user", MEMBER)]).await;
    assert!(is_ephemeral(&reply));
    assert!(
        content(&reply).contains("moderation module is disabled"),
        "{reply}"
    );
    assert_eq!(
        fake.side_effects().len(),
        before,
        "{:?}",
        fake.side_effects()
    );
    assert!(
        app.state
            .store
            .case_by_number(GUILD as i64, 1)
            .await
            .unwrap()
            .is_none()
    );
    // /help lists only enabled modules' commands.
    let help = invoke(&fake, MEMBER, "help", vec![]).await;
    let text = help["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!text.contains("/kick") && text.contains("/ping"), "{text}");
    // Enabling it again works through the same cache invalidation.
    invoke(
        &fake,
        ADMIN,
        "module",
        vec![Opt::sub(
            "enable",
            vec![Opt::string("module", "moderation")],
        )],
    )
    .await;
    let reply = invoke(&fake, MODERATOR, "warn", vec![Opt::user("user", MEMBER)]).await;
    assert!(content(&reply).contains("case #1"), "{reply}");
}

#[actix_web::test]
async fn missing_permissions_of_the_invoker_or_the_bot_are_refused_without_side_effects() {
    let (fake, app) = connected().await;
    let guild = standard_guild(GUILD);
    // A plain member cannot kick.
    let reply = invoke(&fake, MEMBER, "kick", vec![Opt::user("user", OTHER_MEMBER)]).await;
    assert!(is_ephemeral(&reply));
    assert!(content(&reply).contains("Kick Members"), "{reply}");
    // The bot without Ban Members cannot ban.
    let (id, payload) = fake.command_interaction_with(
        &guild,
        MODERATOR,
        fake_discord::perms::MODERATOR,
        fake_discord::perms::NONE,
        "ban",
        vec![Opt::user("user", MEMBER)],
    );
    fake.dispatch(0, "INTERACTION_CREATE", payload);
    assert!(eventually(WAIT, || async { !fake.replies_to(id).is_empty() }).await);
    let reply = fake.replies_to(id).remove(0);
    assert!(
        content(&reply).contains("bot needs the Ban Members"),
        "{reply}"
    );
    assert!(fake.side_effects().is_empty(), "{:?}", fake.side_effects());
    assert!(
        app.state
            .store
            .list_cases(GUILD as i64, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[actix_web::test]
async fn bad_input_gets_a_clear_ephemeral_answer_and_no_side_effect() {
    let (fake, app) = connected().await;
    let long = "x".repeat(513);
    let cases: Vec<(u64, &str, Vec<Opt>, &str)> = vec![
        (
            MODERATOR,
            "timeout",
            vec![Opt::user("user", MEMBER), Opt::string("duration", "0s")],
            "zero",
        ),
        (
            MODERATOR,
            "timeout",
            vec![Opt::user("user", MEMBER), Opt::string("duration", "-5m")],
            "negative",
        ),
        (
            MODERATOR,
            "timeout",
            vec![Opt::user("user", MEMBER), Opt::string("duration", "100y")],
            "maximum",
        ),
        (
            MODERATOR,
            "ban",
            vec![Opt::user("user", MEMBER), Opt::string("duration", "100y")],
            "maximum",
        ),
        (
            MODERATOR,
            "timeout",
            vec![
                Opt::user("user", MEMBER),
                Opt::string("duration", "garbage"),
            ],
            "not a duration",
        ),
        (
            MODERATOR,
            "purge",
            vec![Opt::int("count", 0)],
            "out of range",
        ),
        (
            MODERATOR,
            "purge",
            vec![Opt::int("count", 10_000)],
            "out of range",
        ),
        (
            MODERATOR,
            "kick",
            vec![Opt::user("user", MEMBER), Opt::string("reason", &long)],
            "513 characters",
        ),
        (
            MODERATOR,
            "kick",
            vec![Opt::user("user", ADMIN)],
            "not below yours",
        ),
        (
            MODERATOR,
            "kick",
            vec![Opt::user("user", BOT_ID)],
            "will not kick itself",
        ),
        (ADMIN, "ban", vec![Opt::user("user", OWNER)], "owner"),
        (
            MODERATOR,
            "kick",
            vec![Opt::user("user", MODERATOR)],
            "yourself",
        ),
        (
            ADMIN,
            "module",
            vec![Opt::sub("enable", vec![Opt::string("module", "fun")])],
            "not a module",
        ),
        (
            ADMIN,
            "settings",
            vec![Opt::sub(
                "set",
                vec![Opt::string("key", "colour"), Opt::string("value", "red")],
            )],
            "not a setting",
        ),
        (
            ADMIN,
            "settings",
            vec![Opt::sub(
                "set",
                vec![
                    Opt::string("key", "log_channel"),
                    Opt::string("value", "#general"),
                ],
            )],
            "not a channel",
        ),
        (
            MODERATOR,
            "case",
            vec![Opt::sub("show", vec![Opt::int("number", 99)])],
            "no case #99",
        ),
    ];
    for (invoker, command, options, expected) in cases {
        let reply = invoke(&fake, invoker, command, options).await;
        assert!(is_ephemeral(&reply), "/{command}: {reply}");
        assert!(
            content(&reply)
                .to_lowercase()
                .contains(&expected.to_lowercase()),
            "/{command} expected `{expected}`: {}",
            content(&reply)
        );
    }
    // Above the bot: a member whose role outranks the bot's (admin kicking a mod-above-bot).
    let mut guild = standard_guild(GUILD);
    guild
        .members
        .iter_mut()
        .find(|m| m.id == OTHER_MEMBER)
        .unwrap()
        .roles = vec![GUILD + 4];
    fake.add_guild(guild);
    let reply = invoke(&fake, OWNER, "kick", vec![Opt::user("user", OTHER_MEMBER)]).await;
    assert!(content(&reply).contains("below the bot's"), "{reply}");

    assert!(fake.side_effects().is_empty(), "{:?}", fake.side_effects());
    assert!(
        app.state
            .store
            .list_cases(GUILD as i64, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let settings = app.state.store.guild_settings(GUILD as i64).await.unwrap();
    assert_eq!(settings, Default::default());
}

#[actix_web::test]
async fn an_interaction_for_a_guild_the_bot_does_not_know_is_refused() {
    let (fake, _app) = connected().await;
    let reply = invoke_in(
        &fake,
        1_300_000_000_000_000_000,
        MODERATOR,
        "kick",
        vec![Opt::user("user", MEMBER)],
    )
    .await;
    assert!(is_ephemeral(&reply));
    assert!(content(&reply).contains("not known to the bot"), "{reply}");
    assert!(fake.side_effects().is_empty());
}

#[actix_web::test]
async fn guild_create_update_and_delete_keep_the_guilds_table_current() {
    let (fake, app) = connected().await;
    let mut guild = standard_guild(GUILD);
    guild.name = "Renamed".into();
    fake.dispatch(
        0,
        "GUILD_UPDATE",
        fake_discord::payloads::guild_base(&guild),
    );
    assert!(
        eventually(WAIT, || async {
            app.state
                .store
                .guild(GUILD as i64)
                .await
                .unwrap()
                .unwrap()
                .name
                == "Renamed"
        })
        .await
    );
    // The API's answers come from the guild configuration cache, which remembers whether the
    // bot is in the guild: a join and a leave must reach it.
    let admin = crate::common::auth::admin_token(&app).await;
    let settings_status = |id: u64| {
        let (app, admin) = (&app, admin.clone());
        async move {
            app.call("GET", &format!("/api/v1/settings/{id}"), Some(&admin), None)
                .await
                .0
        }
    };
    let second = standard_guild(GUILD + 1_000_000_000);
    assert_eq!(settings_status(second.id).await, StatusCode::NOT_FOUND);
    assert_eq!(settings_status(GUILD).await, StatusCode::OK);
    fake.dispatch(
        0,
        "GUILD_CREATE",
        fake_discord::payloads::guild_create(&second),
    );
    assert!(eventually(WAIT, || async { bot_status(&app).await.guilds == 2 }).await);
    assert!(
        eventually(WAIT, || async {
            settings_status(second.id).await == StatusCode::OK
        })
        .await
    );
    fake.dispatch(
        0,
        "GUILD_DELETE",
        serde_json::json!({"id": GUILD.to_string()}),
    );
    assert!(
        eventually(WAIT, || async {
            app.state.store.list_guilds(false).await.unwrap().len() == 1
        })
        .await
    );
    let left = app.state.store.guild(GUILD as i64).await.unwrap().unwrap();
    assert!(left.left_at.is_some());
    assert!(
        eventually(WAIT, || async {
            settings_status(GUILD).await == StatusCode::NOT_FOUND
        })
        .await
    );
    assert_eq!(events(&app, "GUILD_DELETE").await, 1.0);
    assert_eq!(app.metric("guildhall_discord_guilds").await, Some(1.0));
    // A command there is now refused.
    let reply = invoke(&fake, MODERATOR, "warn", vec![Opt::user("user", MEMBER)]).await;
    assert!(content(&reply).contains("not known"), "{reply}");
}

#[actix_web::test]
async fn a_temporary_ban_expires_by_itself_even_after_a_restart() {
    let fake = FakeDiscord::start().await;
    fake.add_guild(standard_guild(GUILD));
    let first = spawn_bot(&fake).await;
    assert!(
        eventually(WAIT, || async {
            bot_status(&first).await.status.label() == "connected"
                && first
                    .state
                    .store
                    .guild(GUILD as i64)
                    .await
                    .ok()
                    .flatten()
                    .is_some()
        })
        .await
    );
    let reply = invoke(
        &fake,
        MODERATOR,
        "ban",
        vec![
            Opt::user("user", MEMBER),
            Opt::string("duration", "3s"),
            Opt::string("reason", "cool off"),
        ],
    )
    .await;
    assert!(content(&reply).contains("case #1"), "{reply}");
    assert_eq!(
        fake.calls_matching("PUT", &format!("/guilds/{GUILD}/bans/{MEMBER}"))
            .len(),
        1
    );
    // Stop before it expires; a second daemon on the same database lifts it.
    first.handle.stop(true).await;
    let db_url = first.db.url.clone();
    let second = spawn_bot_with(&fake, move |env| {
        env.insert("DATABASE_URL".into(), db_url);
    })
    .await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            !fake
                .calls_matching("DELETE", &format!("/guilds/{GUILD}/bans/{MEMBER}"))
                .is_empty()
        })
        .await,
        "the ban was not lifted"
    );
    assert!(
        eventually(WAIT, || async {
            second
                .state
                .store
                .case_by_number(GUILD as i64, 2)
                .await
                .ok()
                .flatten()
                .is_some()
        })
        .await
    );
    let unban = second
        .state
        .store
        .case_by_number(GUILD as i64, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unban.action, "unban");
    assert_eq!(unban.actor_label, "system");
    assert!(
        second
            .state
            .store
            .case_by_number(GUILD as i64, 1)
            .await
            .unwrap()
            .unwrap()
            .resolved
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fake.calls_matching("DELETE", &format!("/guilds/{GUILD}/bans/"))
            .len(),
        1,
        "lifted once"
    );
}

#[actix_web::test]
async fn every_dispatched_event_reaches_the_handler() {
    let (fake, app) = connected().await;
    let guild = standard_guild(GUILD);
    let member = guild.member(MEMBER).unwrap().clone();
    for _ in 0..3 {
        fake.dispatch(
            0,
            "MESSAGE_CREATE",
            fake_discord::payloads::message(
                fake.next_snowflake(),
                GUILD,
                GUILD + 10,
                &member,
                "hello",
            ),
        );
        fake.dispatch(
            0,
            "GUILD_MEMBER_UPDATE",
            fake_discord::payloads::guild_member_update(GUILD, &member),
        );
    }
    assert!(
        eventually(WAIT, || async {
            events(&app, "MESSAGE_CREATE").await == 3.0
                && events(&app, "GUILD_MEMBER_UPDATE").await == 3.0
        })
        .await
    );
}

#[actix_web::test]
async fn a_module_change_on_one_instance_is_seen_by_another_through_redis() {
    let Some(redis) = crate::common::redis_url() else {
        return;
    };
    let prefix = format!("gh-test-{}", crate::common::random_suffix());
    let (redis_a, prefix_a) = (redis.clone(), prefix.clone());
    let a = spawn_app_with(move |env| {
        env.insert("REDIS_URL".into(), redis_a);
        env.insert("GUILDHALL_REDIS_PREFIX".into(), prefix_a);
    })
    .await;
    let db_url = a.db.url.clone();
    let b = spawn_app_with(move |env| {
        env.insert("REDIS_URL".into(), redis);
        env.insert("GUILDHALL_REDIS_PREFIX".into(), prefix);
        env.insert("DATABASE_URL".into(), db_url);
    })
    .await;
    let guild = GUILD as i64;
    a.state
        .store
        .upsert_guild(&guildhall::store::guilds::GuildUpsert {
            id: guild,
            name: "Shared".into(),
            icon: None,
            owner_id: Some(OWNER as i64),
            member_count: Some(3),
        })
        .await
        .unwrap();
    use guildhall::bot::input::ModuleName;
    crate::common::wait_for_subscription(&a, &b).await;
    // Both instances read (and cache) the default: enabled.
    assert!(
        a.state
            .guild_config
            .get(guild)
            .await
            .unwrap()
            .module_enabled(ModuleName::Moderation)
    );
    assert!(
        b.state
            .guild_config
            .get(guild)
            .await
            .unwrap()
            .module_enabled(ModuleName::Moderation)
    );
    guildhall::services::guild_config::set_module(
        &a.state,
        guild,
        ModuleName::Moderation,
        false,
        guildhall::store::audit::Actor::System,
        &Default::default(),
    )
    .await
    .unwrap();
    // The other instance sees it at once (the message's trip), not after a TTL.
    let enabled_on_b = |module: ModuleName| {
        let b = &b;
        async move {
            b.state
                .guild_config
                .get(guild)
                .await
                .unwrap()
                .module_enabled(module)
        }
    };
    let soon = Duration::from_millis(500);
    assert!(
        eventually(soon, || async {
            !enabled_on_b(ModuleName::Moderation).await
        })
        .await
    );
    // A reload on one instance invalidates every guild everywhere.
    a.state
        .store
        .set_guild_module(guild, "admin", false)
        .await
        .unwrap();
    assert!(
        b.state
            .guild_config
            .get(guild)
            .await
            .unwrap()
            .module_enabled(ModuleName::Admin),
        "still cached"
    );
    a.state.guild_config.reload_all().await;
    assert!(eventually(soon, || async { !enabled_on_b(ModuleName::Admin).await }).await);
}

#[actix_web::test]
async fn moderation_from_the_api_runs_the_same_code_and_records_the_same_case_and_audit_entry() {
    use guildhall::store::audit::Actor;
    use guildhall::web::api::moderation::{ModerationBody, moderate};
    let (fake, app) = connected().await;
    let dashboard_user = Actor::User {
        id: 7,
        username: "alice".into(),
    };
    let body = ModerationBody {
        user_id: MEMBER.to_string(),
        reason: Some("from the dashboard".into()),
        duration: None,
        delete_message_days: None,
    };
    let case = moderate(
        &app.state,
        dashboard_user.clone(),
        &GUILD.to_string(),
        "kick",
        &body,
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(case.case_number, 1);
    assert_eq!(case.action, "kick");
    assert_eq!(case.actor_label, "user:alice");
    assert_eq!(
        fake.calls_matching("DELETE", &format!("/guilds/{GUILD}/members/{MEMBER}"))
            .len(),
        1
    );
    // A second kick, from Discord, gets the next number in the same sequence.
    let reply = invoke(
        &fake,
        MODERATOR,
        "kick",
        vec![Opt::user("user", OTHER_MEMBER)],
    )
    .await;
    assert!(content(&reply).contains("case #2"), "{reply}");
    let audit: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT action, actor_label, actor_user_id FROM audit_log WHERE action = 'moderation.kick' ORDER BY created_at, id",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(
        audit,
        vec![
            (
                "moderation.kick".to_owned(),
                "user:alice".to_owned(),
                Some(7)
            ),
            (
                "moderation.kick".to_owned(),
                format!("discord:{MODERATOR}"),
                None
            ),
        ]
    );

    // The bot's own checks apply to the API too: the owner is protected, bad input is named.
    let refusal = moderate(
        &app.state,
        dashboard_user.clone(),
        &GUILD.to_string(),
        "ban",
        &ModerationBody {
            user_id: OWNER.to_string(),
            reason: None,
            duration: None,
            delete_message_days: None,
        },
        None,
        None,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(refusal.code(), "conflict");
    let bad: Vec<(&str, ModerationBody, &str)> = vec![
        (
            "timeout",
            ModerationBody {
                user_id: MEMBER.to_string(),
                reason: None,
                duration: Some("0s".into()),
                delete_message_days: None,
            },
            "duration",
        ),
        (
            "timeout",
            ModerationBody {
                user_id: MEMBER.to_string(),
                reason: None,
                duration: None,
                delete_message_days: None,
            },
            "duration",
        ),
        (
            "ban",
            ModerationBody {
                user_id: MEMBER.to_string(),
                reason: None,
                duration: Some("100y".into()),
                delete_message_days: None,
            },
            "duration",
        ),
        (
            "ban",
            ModerationBody {
                user_id: MEMBER.to_string(),
                reason: None,
                duration: None,
                delete_message_days: Some(9),
            },
            "delete_message_days",
        ),
        (
            "kick",
            ModerationBody {
                user_id: "someone".into(),
                reason: None,
                duration: None,
                delete_message_days: None,
            },
            "user_id",
        ),
        (
            "kick",
            ModerationBody {
                user_id: MEMBER.to_string(),
                reason: Some("x".repeat(600)),
                duration: None,
                delete_message_days: None,
            },
            "reason",
        ),
        (
            "explode",
            ModerationBody {
                user_id: MEMBER.to_string(),
                reason: None,
                duration: None,
                delete_message_days: None,
            },
            "action",
        ),
    ];
    for (action, body, field) in bad {
        let e = moderate(
            &app.state,
            dashboard_user.clone(),
            &GUILD.to_string(),
            action,
            &body,
            None,
            None,
        )
        .await
        .err()
        .unwrap();
        assert_eq!(e.code(), "invalid_field", "{action}: {e}");
        assert!(e.to_string().starts_with(field), "{action}: {e}");
    }
    let unknown = moderate(
        &app.state,
        dashboard_user,
        "1300000000000000000",
        "warn",
        &ModerationBody {
            user_id: MEMBER.to_string(),
            reason: None,
            duration: None,
            delete_message_days: None,
        },
        None,
        None,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(unknown.code(), "not_found");
    assert_eq!(
        app.state
            .store
            .list_cases(GUILD as i64, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[actix_web::test]
async fn settings_and_modules_from_the_api_are_validated_and_shared_with_discord() {
    use guildhall::store::audit::Actor;
    use guildhall::web::api::{guilds, settings};
    let (fake, app) = connected().await;
    let actor = Actor::User {
        id: 7,
        username: "alice".into(),
    };
    let guild = GUILD.to_string();
    let body = serde_json::json!({"log_channel": (GUILD + 11).to_string(), "welcome_message": "Hi {user}"});
    let saved = settings::put_settings(
        &app.state,
        actor.clone(),
        &Default::default(),
        &guild,
        body.as_object().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(saved["settings"]["log_channel"], (GUILD + 11).to_string());
    // Bad keys and values are refused, naming the field, and change nothing.
    for (body, field) in [
        (serde_json::json!({"colour": "red"}), "colour"),
        (
            serde_json::json!({"log_channel": "#general"}),
            "log_channel",
        ),
        (serde_json::json!({"mod_role": true}), "mod_role"),
        (
            serde_json::json!({"minecraft_server": "bad name!"}),
            "minecraft_server",
        ),
    ] {
        let e = settings::put_settings(
            &app.state,
            actor.clone(),
            &Default::default(),
            &guild,
            body.as_object().unwrap(),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(e.code(), "invalid_field");
        assert!(e.to_string().starts_with(field), "{e}");
    }
    let shown = settings::get_settings(&app.state, &guild).await.unwrap();
    assert_eq!(shown["settings"]["welcome_message"], "Hi {user}");
    assert_eq!(
        settings::get_settings(&app.state, "abc")
            .await
            .err()
            .unwrap()
            .code(),
        "invalid_field"
    );
    assert_eq!(
        settings::get_settings(&app.state, "42")
            .await
            .err()
            .unwrap()
            .code(),
        "not_found"
    );

    // A module disabled from the API is disabled for the slash commands at once.
    guilds::put_module(
        &app.state,
        actor.clone(),
        &Default::default(),
        &guild,
        "moderation",
        &guilds::ModuleBody { enabled: false },
    )
    .await
    .unwrap();
    let reply = invoke(&fake, MODERATOR, "warn", vec![Opt::user("user", MEMBER)]).await;
    assert!(content(&reply).contains("module is disabled"), "{reply}");
    let e = guilds::put_module(
        &app.state,
        actor,
        &Default::default(),
        &guild,
        "fun",
        &guilds::ModuleBody { enabled: true },
    )
    .await
    .err()
    .unwrap();
    assert_eq!(e.code(), "invalid_field");
    let listed = guilds::list_guilds(&app.state).await.unwrap();
    assert_eq!(listed["guilds"].as_array().unwrap().len(), 1);
    let one = guilds::get_guild(&app.state, &guild).await.unwrap();
    assert_eq!(one["modules"]["moderation"], false);
}

#[actix_web::test]
async fn reload_resyncs_the_commands_and_reloads_the_caches() {
    use guildhall::store::audit::Actor;
    let (fake, app) = connected().await;
    let result = guildhall::web::api::bot::reload(&app.state, Actor::System)
        .await
        .unwrap();
    assert_eq!(result["commands_registered"], 14);
    assert_eq!(fake.calls_matching("PUT", "/applications/").len(), 2);
    let status = guildhall::web::api::bot::status(&app.state).await.unwrap();
    assert_eq!(status.status.label(), "connected");
    let modules = guildhall::web::api::bot::modules(&app.state).await.unwrap();
    assert_eq!(modules["modules"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn commands_go_to_the_dev_guild_when_one_is_configured() {
    let fake = FakeDiscord::start().await;
    fake.add_guild(standard_guild(GUILD));
    let _app = spawn_bot_with(&fake, |env| {
        env.insert("GUILDHALL_DEV_GUILD_ID".into(), GUILD.to_string());
    })
    .await;
    assert!(
        eventually(WAIT, || async {
            !fake.calls_matching("PUT", "/applications/").is_empty()
        })
        .await
    );
    let put = &fake.calls_matching("PUT", "/applications/")[0];
    assert_eq!(
        put.path,
        format!(
            "/applications/{}/guilds/{GUILD}/commands",
            fake_discord::APPLICATION_ID
        )
    );
}

#[actix_web::test]
async fn a_shard_range_runs_only_those_shards_of_the_total() {
    let fake = FakeDiscord::start().await;
    fake.add_guild(standard_guild(GUILD));
    let app = spawn_bot_with(&fake, |env| {
        env.insert("GUILDHALL_SHARDS".into(), "1-2/4".into());
    })
    .await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            let s = bot_status(&app).await;
            s.shards.len() == 2 && s.status.label() == "connected"
        })
        .await,
        "{:?}",
        bot_status(&app).await
    );
    let status = bot_status(&app).await;
    assert_eq!(status.shard_total, Some(4));
    assert_eq!(
        status.shards.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let shards: Vec<Vec<u64>> = fake
        .identify_payloads()
        .iter()
        .map(|p| {
            p["shard"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect()
        })
        .collect();
    assert!(
        shards.contains(&vec![1, 4]) && shards.contains(&vec![2, 4]),
        "{shards:?}"
    );
}

#[actix_web::test]
async fn the_http_api_moderates_and_configures_through_rbac() {
    use crate::common::auth::{access_token, admin_token, create_user};
    let (fake, app) = connected().await;
    let admin = admin_token(&app).await;
    let (status, body) = app
        .call("GET", "/api/v1/bot/status", Some(&admin), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "connected");
    assert_eq!(body["shards"][0]["stage"], "connected");
    assert_eq!(body["guilds"], 1);

    // A moderator of this guild may act here, through the same service as /kick.
    let (mod_id, _) = create_user(&app, "mod", &[("moderator", GUILD as i64)]).await;
    let moderator = access_token(&app, mod_id);
    let path = format!("/api/v1/guilds/{GUILD}/moderation/timeout");
    let (status, case) = app
        .call("POST", &path, Some(&moderator), Some(serde_json::json!({"user_id": MEMBER.to_string(), "duration": "10m", "reason": "calm down"})))
        .await;
    assert_eq!(status, 201, "{case}");
    assert_eq!(case["case_number"], 1);
    assert_eq!(case["action"], "timeout");
    let patches = fake.calls_matching("PATCH", &format!("/guilds/{GUILD}/members/{MEMBER}"));
    assert_eq!(patches.len(), 1);
    assert!(patches[0].body["communication_disabled_until"].is_string());
    // Bad input names its field; nothing happens.
    let (status, body) = app
        .call(
            "POST",
            &path,
            Some(&moderator),
            Some(serde_json::json!({"user_id": MEMBER.to_string(), "duration": "-5m"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("duration")
    );
    // A moderator of another guild may not.
    let (other_id, _) = create_user(&app, "othermod", &[("moderator", 42)]).await;
    let other = access_token(&app, other_id);
    let (status, _) = app
        .call(
            "POST",
            &path,
            Some(&other),
            Some(serde_json::json!({"user_id": MEMBER.to_string(), "duration": "10m"})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(fake.calls_matching("PATCH", "/guilds/").len(), 1);

    // Settings and modules from the API, seen by the bot.
    let (status, body) = app
        .call(
            "PUT",
            &format!("/api/v1/settings/{GUILD}"),
            Some(&admin),
            Some(serde_json::json!({"mod_role": (GUILD + 2).to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let origin: (Option<String>, Option<String>) =
        sqlx::query_as("SELECT ip, request_id FROM audit_log WHERE action = 'settings.update'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(
        origin.0.as_deref(),
        Some("127.0.0.1"),
        "the API's audit entry carries the origin"
    );
    let (status, body) = app
        .call(
            "PUT",
            &format!("/api/v1/settings/{GUILD}"),
            Some(&admin),
            Some(serde_json::json!({"nonsense": 1})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_field");
    let (status, _) = app
        .call(
            "PUT",
            &format!("/api/v1/guilds/{GUILD}/modules/moderation"),
            Some(&admin),
            Some(serde_json::json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    let reply = invoke(&fake, MODERATOR, "kick", vec![Opt::user("user", MEMBER)]).await;
    assert!(content(&reply).contains("module is disabled"), "{reply}");
    let (status, body) = app
        .call(
            "GET",
            &format!("/api/v1/guilds/{GUILD}/cases"),
            Some(&moderator),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["cases"].as_array().unwrap().len(), 1);
    let (status, body) = app
        .call("GET", "/api/v1/guilds", Some(&moderator), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["guilds"][0]["id"], GUILD.to_string());
    // A moderator of another guild sees none of this one.
    let (status, body) = app.call("GET", "/api/v1/guilds", Some(&other), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["guilds"].as_array().unwrap().len(), 0);
    let (status, body) = app
        .call("POST", "/api/v1/bot/reload", Some(&admin), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["commands_registered"], 14);
}

#[actix_web::test]
async fn minecraft_commands_answer_not_configured_without_a_server_for_the_guild() {
    let (fake, _app) = connected().await;
    // The module is off by default.
    let reply = invoke(&fake, ADMIN, "mc", vec![Opt::sub("status", vec![])]).await;
    assert!(
        content(&reply).contains("minecraft module is disabled"),
        "{reply}"
    );
    invoke(
        &fake,
        ADMIN,
        "module",
        vec![Opt::sub("enable", vec![Opt::string("module", "minecraft")])],
    )
    .await;
    let reply = invoke(&fake, MEMBER, "mc", vec![Opt::sub("status", vec![])]).await;
    assert!(is_ephemeral(&reply));
    assert!(
        content(&reply).contains("Minecraft is not configured"),
        "{reply}"
    );
    // `/mc cmd` needs the configured role before anything else.
    let reply = invoke(
        &fake,
        ADMIN,
        "mc",
        vec![Opt::sub("cmd", vec![Opt::string("command", "stop")])],
    )
    .await;
    assert!(content(&reply).contains("Minecraft role"), "{reply}");
    assert!(fake.side_effects().is_empty());
}

#[actix_web::test]
async fn a_new_member_is_welcomed_when_a_welcome_message_is_set() {
    let (fake, app) = connected_with(|env| {
        env.insert("GUILDHALL_DISCORD_MEMBERS_INTENT".into(), "true".into());
    })
    .await;
    let welcome = GUILD + 10;
    invoke(
        &fake,
        ADMIN,
        "settings",
        vec![Opt::sub(
            "set",
            vec![
                Opt::string("key", "welcome_channel"),
                Opt::string("value", &welcome.to_string()),
            ],
        )],
    )
    .await;
    invoke(
        &fake,
        ADMIN,
        "settings",
        vec![Opt::sub(
            "set",
            vec![
                Opt::string("key", "welcome_message"),
                Opt::string("value", "Welcome, {user}!"),
            ],
        )],
    )
    .await;
    let newcomer = fake_discord::FakeMember {
        id: 800_000_000_000_000_099,
        username: "newcomer".into(),
        roles: vec![],
        bot: false,
    };
    fake.dispatch(
        0,
        "GUILD_MEMBER_ADD",
        fake_discord::payloads::member(GUILD, &newcomer, None),
    );
    assert!(
        eventually(WAIT, || async {
            !fake
                .calls_matching("POST", &format!("/channels/{welcome}/messages"))
                .is_empty()
        })
        .await
    );
    let sent = &fake.calls_matching("POST", &format!("/channels/{welcome}/messages"))[0];
    assert_eq!(
        sent.body["content"],
        format!("Welcome, <@{}>!", newcomer.id)
    );
    assert_eq!(events(&app, "GUILD_MEMBER_ADD").await, 1.0);
    assert_eq!(
        app.state
            .store
            .guild(GUILD as i64)
            .await
            .unwrap()
            .unwrap()
            .member_count,
        7
    );
}

#[actix_web::test]
async fn a_restart_of_the_gateway_actor_reconnects_with_a_new_session() {
    let (fake, app) = connected().await;
    app.state
        .gateway
        .send(guildhall::actors::Restart {
            reason: "operator".into(),
        })
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async { fake.identifies() == 2 }).await,
        "identifies: {}",
        fake.identifies()
    );
    assert!(
        eventually(WAIT, || async {
            bot_status(&app).await.status.label() == "connected"
        })
        .await
    );
    // The old session was closed, not leaked: one live session.
    assert!(eventually(WAIT, || async { fake.connected_shards() == vec![0] }).await);
    assert!(
        app.metric("guildhall_actor_restarts_total{actor=\"gateway\"}")
            .await
            >= Some(1.0)
    );
    // And commands still work.
    let reply = invoke(&fake, MEMBER, "help", vec![]).await;
    assert!(is_ephemeral(&reply));
}

struct StatusCollector(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

impl actix::Actor for StatusCollector {
    type Context = actix::Context<Self>;
}

impl actix::Handler<guildhall::actors::broadcaster::Broadcast> for StatusCollector {
    type Result = ();

    fn handle(&mut self, msg: guildhall::actors::broadcaster::Broadcast, _: &mut Self::Context) {
        if let guildhall::actors::broadcaster::Broadcast::Status(event) = msg
            && event.component == "gateway"
        {
            self.0.lock().unwrap().push(event.status.clone());
        }
    }
}

#[actix_web::test]
async fn gateway_status_changes_go_to_the_status_stream_and_ping_reports_latency() {
    use actix::Actor;
    use guildhall::actors::broadcaster::{Subscribe, Topic};
    let (fake, app) = connected().await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let collector = StatusCollector(seen.clone()).start();
    app.state
        .broadcaster
        .send(Subscribe {
            topic: Topic::Status,
            recipient: collector.recipient(),
        })
        .await
        .unwrap();
    app.state
        .gateway
        .send(guildhall::actors::Restart {
            reason: "test".into(),
        })
        .await
        .unwrap();
    assert!(
        eventually(WAIT, || async {
            let seen = seen.lock().unwrap();
            seen.iter().any(|s| s["status"] == "connecting")
                && seen.last().is_some_and(|s| s["status"] == "connected")
        })
        .await,
        "{:?}",
        seen.lock().unwrap()
    );
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last["shards"][0]["stage"], "connected");

    let reply = invoke(&fake, MEMBER, "ping", vec![]).await;
    assert!(is_ephemeral(&reply));
    let text = content(&reply);
    assert!(text.contains("Pong") && text.contains("REST:"), "{text}");
    assert!(!fake.calls_matching("GET", "/users/@me").is_empty());
}

#[actix_web::test]
async fn minecraft_commands_reach_the_guilds_server_over_rcon_and_are_audited() {
    use crate::common::fake_rcon::FakeRcon;
    let rcon = FakeRcon::start("mc-secret-pw");
    rcon.set_players(&["Steve", "Alex"]);
    let port = rcon.port.to_string();
    let (fake, app) = connected_with(|env| {
        env.insert("RCON_HOST".into(), "127.0.0.1".into());
        env.insert("RCON_PORT".into(), port);
        env.insert("RCON_PASSWORD".into(), "mc-secret-pw".into());
    })
    .await;
    invoke(
        &fake,
        ADMIN,
        "module",
        vec![Opt::sub("enable", vec![Opt::string("module", "minecraft")])],
    )
    .await;

    // Any member may look; the answer comes from the server's `list`.
    let reply = invoke(&fake, MEMBER, "mc", vec![Opt::sub("players", vec![])]).await;
    let text = content(&reply);
    assert!(text.contains("Steve") && text.contains("Alex"), "{reply}");

    // Moderators (here: a member with Discord administrator rights) may speak and whitelist.
    let reply = invoke(
        &fake,
        ADMIN,
        "mc",
        vec![Opt::sub(
            "say",
            vec![Opt::string("text", "hello from discord")],
        )],
    )
    .await;
    assert!(content(&reply).contains("Said"), "{reply}");
    let whitelist = Opt {
        name: "whitelist".into(),
        kind: 2,
        value: Value::Array(vec![
            Opt::sub("add", vec![Opt::string("name", "Notch")]).to_json(),
        ]),
    };
    invoke(&fake, ADMIN, "mc", vec![whitelist]).await;
    let sent = rcon.commands();
    assert!(
        sent.iter().any(|c| c == "say hello from discord"),
        "{sent:?}"
    );
    assert!(sent.iter().any(|c| c == "whitelist add Notch"), "{sent:?}");

    // A plain member may not speak in game: refused before anything is sent.
    let before = rcon.commands().len();
    let reply = invoke(
        &fake,
        MEMBER,
        "mc",
        vec![Opt::sub("say", vec![Opt::string("text", "spam")])],
    )
    .await;
    assert!(is_ephemeral(&reply), "{reply}");
    assert_eq!(rcon.commands().len(), before, "nothing sent: {reply}");

    // Each command that ran has its audit entry, by the Discord user, naming the server.
    let entries = guildhall::store::audit::list(
        &app.state.store,
        &guildhall::store::audit::AuditFilter {
            action: Some("minecraft.command".into()),
            limit: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let by_admin: Vec<_> = entries
        .iter()
        .filter(|e| e.actor_label == format!("discord:{ADMIN}"))
        .collect();
    assert!(by_admin.len() >= 2, "{entries:#?}");
    assert!(
        by_admin
            .iter()
            .all(|e| e.target.as_deref() == Some("default")
                || e.target.as_deref().is_some_and(|t| t.contains("default"))),
        "{by_admin:#?}"
    );
}

#[actix_web::test]
async fn api_moderation_in_a_guild_the_bot_is_not_in_is_a_404_even_while_discord_is_away() {
    // No DISCORD_TOKEN: the gateway is not connected, and the guild is unknown. The caller's
    // mistake (the guild) is reported, not the daemon's state.
    let app = crate::common::spawn_app().await;
    let admin = crate::common::auth::admin_token(&app).await;
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/guilds/1/moderation/warn",
            Some(&admin),
            Some(serde_json::json!({ "user_id": "384100496390344704" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("guild 1")),
        "{body}"
    );
}

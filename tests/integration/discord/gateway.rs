//! The gateway: connecting, resuming, restarting, shutting down, shard ranges, and the
//! dispatched events reaching the handler.

use guildhall::actors::gateway::ShardStage;

use super::*;
use crate::common::status::{statuses, watch_status};

/// The standard guild's row as the store holds it.
async fn stored_guild(app: &TestApp) -> guildhall::store::guilds::GuildRow {
    app.state.store.guild(GUILD as i64).await.unwrap().unwrap()
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

    let guild = stored_guild(&app).await;
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
    wait_for_gateway(&app, "failed").await;
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
    wait_for_gateway(&app, "failed").await;
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
    wait_for_gateway(&app, "connected").await;
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
            stored_guild(&app).await.name == "Renamed"
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
    let left = stored_guild(&app).await;
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
async fn a_new_member_is_welcomed_when_a_welcome_message_is_set() {
    let (fake, app) = connected_with(|env| {
        env.insert("GUILDHALL_DISCORD_MEMBERS_INTENT".into(), "true".into());
    })
    .await;
    let welcome = GUILD + 10;
    set_setting(&fake, "welcome_channel", &welcome.to_string()).await;
    set_setting(&fake, "welcome_message", "Welcome, {user}!").await;
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
    assert_eq!(stored_guild(&app).await.member_count, 7);
}

#[actix_web::test]
async fn a_restart_of_the_gateway_actor_reconnects_with_a_new_session() {
    let (fake, app) = connected().await;
    restart(&app.state.gateway, "operator").await;
    assert!(
        eventually(Duration::from_secs(20), || async { fake.identifies() == 2 }).await,
        "identifies: {}",
        fake.identifies()
    );
    wait_for_gateway(&app, "connected").await;
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

#[actix_web::test]
async fn gateway_status_changes_go_to_the_status_stream_and_ping_reports_latency() {
    let (fake, app) = connected().await;
    let seen = watch_status(&app).await;
    restart(&app.state.gateway, "test").await;
    assert!(
        eventually(WAIT, || async {
            let seen = statuses(&seen, "gateway");
            seen.iter().any(|s| s["status"] == "connecting")
                && seen.last().is_some_and(|s| s["status"] == "connected")
        })
        .await,
        "{:?}",
        statuses(&seen, "gateway")
    );
    let last = statuses(&seen, "gateway").last().cloned().unwrap();
    assert_eq!(last["shards"][0]["stage"], "connected");

    let reply = invoke(&fake, MEMBER, "ping", vec![]).await;
    assert!(is_ephemeral(&reply));
    let text = content(&reply);
    assert!(text.contains("Pong") && text.contains("REST:"), "{text}");
    assert!(!fake.calls_matching("GET", "/users/@me").is_empty());
}

/// The gateway's status as `/ready` reports it.
async fn ready_gateway(app: &TestApp) -> String {
    let (_, ready) = app.get_json("/ready").await;
    ready["gateway"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn shard_connected_metric(app: &TestApp) -> Option<f64> {
    app.metric("guildhall_discord_shard_connected{shard=\"0\"}")
        .await
}

/// Cuts the gateway with `cut` and returns how long the bot took to report it
/// (`reconnecting`); `/ready` and the shard metric must say so too by then.
async fn time_until_reported_down(app: &TestApp, cut: impl FnOnce()) -> Duration {
    let cut_at = std::time::Instant::now();
    cut();
    wait_for_gateway(app, "reconnecting").await;
    let detected = cut_at.elapsed();
    assert_eq!(ready_gateway(app).await, "reconnecting");
    assert_eq!(shard_connected_metric(app).await, Some(0.0));
    detected
}

/// The fake's heartbeat interval: a silent gateway is noticed when a heartbeat goes
/// unacknowledged for half an interval, so within one and a half intervals of going silent.
const HEARTBEAT: Duration = Duration::from_millis(fake_discord::HEARTBEAT_MS);

/// The longest a shard whose gateway went silent may still be reported as connected: one
/// heartbeat interval plus the ACK timeout (half an interval), plus room for a loaded machine.
/// The figure itself is printed.
const SILENCE_DETECTION_BOUND: Duration = Duration::from_millis(3 * fake_discord::HEARTBEAT_MS);

/// The longest a dropped connection may still be reported as connected: the runner sees the
/// drop at once; the bound is room for a loaded machine. The figure itself is printed.
const DROP_DETECTION_BOUND: Duration = Duration::from_secs(2);

/// How soon after the gateway accepts connections again the shard must be connected: the
/// backoff's longest wait (0.75 s) plus room for a loaded machine (target: 1 s).
const RECOVERY_BOUND: Duration = Duration::from_secs(2);

#[actix_web::test]
async fn a_gateway_outage_is_reported_everywhere_while_it_lasts_and_connected_after_it() {
    let (fake, app) = connected().await;
    let seen = watch_status(&app).await;
    assert_eq!(shard_connected_metric(&app).await, Some(1.0));
    assert!(bot_status(&app).await.uptime_secs.is_some());

    let detected = time_until_reported_down(&app, || fake.gateway_outage()).await;
    eprintln!("silent gateway detected after {detected:?} (heartbeat interval {HEARTBEAT:?})");
    assert!(
        detected < SILENCE_DETECTION_BOUND,
        "detected after {detected:?}"
    );
    // Everything that reports the gateway agrees (above), and keeps saying so while it lasts.
    let status = bot_status(&app).await;
    assert_eq!(status.uptime_secs, None, "{status:?}");
    assert_eq!(status.shards[0].stage, ShardStage::Resuming, "{status:?}");
    assert!(status.shards[0].reason.is_some(), "{status:?}");
    assert!(
        eventually(WAIT, || async {
            statuses(&seen, "gateway")
                .iter()
                .any(|s| s["status"] == "reconnecting")
        })
        .await,
        "{:?}",
        statuses(&seen, "gateway")
    );
    // The runner keeps retrying for as long as the outage lasts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(bot_status(&app).await.status.label(), "reconnecting");
    assert_eq!(ready_gateway(&app).await, "reconnecting");

    fake.gateway_back();
    wait_for_gateway(&app, "connected").await;
    assert_eq!(ready_gateway(&app).await, "connected");
    assert!(
        eventually(WAIT, || async {
            shard_connected_metric(&app).await == Some(1.0)
        })
        .await
    );
    assert!(
        statuses(&seen, "gateway")
            .last()
            .is_some_and(|s| s["status"] == "connected")
    );
    // The session was resumed, not started afresh.
    assert_eq!(fake.identifies(), 1);
    assert!(fake.resumes() >= 1);
    // And the bot works again.
    let reply = invoke(&fake, MEMBER, "help", vec![]).await;
    assert!(is_ephemeral(&reply));
}

#[actix_web::test]
async fn a_dropped_connection_is_reported_at_once_and_the_session_resumed_when_discord_is_back() {
    let (fake, app) = connected().await;
    let seen = watch_status(&app).await;

    let dropped_at = std::time::Instant::now();
    let detected = time_until_reported_down(&app, || fake.gateway_refuses()).await;
    eprintln!("dropped connection reported after {detected:?}");
    assert!(
        detected < DROP_DETECTION_BOUND,
        "reported after {detected:?}"
    );

    // Discord refuses connections for a while: the shard retries, backing off, not in a storm.
    let outage = Duration::from_secs(5);
    tokio::time::sleep(outage.saturating_sub(dropped_at.elapsed())).await;
    assert_eq!(bot_status(&app).await.status.label(), "reconnecting");
    fake.gateway_back();
    let attempts = fake.refused_connection_times();
    eprintln!(
        "{} connection attempts refused during a {outage:?} outage",
        attempts.len()
    );
    assert!(attempts.len() >= 3, "{attempts:?}");
    // At most about two a second (no wait is under 125 ms, none after the third under 375 ms);
    // a storm would be hundreds.
    assert!(attempts.len() <= 20, "{} attempts", attempts.len());
    let gaps: Vec<Duration> = attempts
        .windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .collect();
    eprintln!("gaps between attempts: {gaps:?}");
    // From the fourth attempt on, the waits are at least half the 0.75 s cap (less a margin).
    assert!(
        gaps.iter()
            .skip(2)
            .all(|g| *g >= Duration::from_millis(300)),
        "{gaps:?}"
    );
    // Jittered: not the same wait every time.
    let distinct: std::collections::HashSet<u128> =
        gaps.iter().skip(2).map(|g| g.as_millis() / 10).collect();
    assert!(distinct.len() > 1 || gaps.len() < 4, "{gaps:?}");

    wait_for_gateway(&app, "connected").await;
    let recovery = fake
        .recovery_after_back()
        .expect("resumed after it was back");
    eprintln!("connected again {recovery:?} after the gateway was back");
    assert!(recovery < RECOVERY_BOUND, "recovered after {recovery:?}");
    // RESUME, not IDENTIFY: the events of the gap are not lost.
    assert_eq!(fake.identifies(), 1, "re-identified instead of resuming");
    assert!(fake.resumes() >= 1);
    assert!(eventually(WAIT, || async { events(&app, "RESUMED").await >= 1.0 }).await);
    assert!(
        eventually(WAIT, || async {
            shard_connected_metric(&app).await == Some(1.0)
                && ready_gateway(&app).await == "connected"
        })
        .await
    );
    assert!(
        statuses(&seen, "gateway")
            .iter()
            .any(|s| s["shards"][0]["stage"] == "resuming"),
        "{:?}",
        statuses(&seen, "gateway")
    );
    let reply = invoke(&fake, MEMBER, "help", vec![]).await;
    assert!(is_ephemeral(&reply));
}

#[actix_web::test]
async fn when_discord_asks_for_a_reconnect_the_shard_resumes_at_once() {
    let (fake, app) = connected().await;
    let connections = fake.connections();
    let requested_at = std::time::Instant::now();
    fake.request_reconnect(0);
    assert!(
        eventually(WAIT, || async { fake.resumes() == 1 }).await,
        "resumes: {}, identifies: {}",
        fake.resumes(),
        fake.identifies()
    );
    // No backoff: Discord asked for it.
    let resumed_after = requested_at.elapsed();
    eprintln!("RESUME {resumed_after:?} after Discord asked for a reconnect");
    assert!(resumed_after < DROP_DETECTION_BOUND, "{resumed_after:?}");
    wait_for_gateway(&app, "connected").await;
    assert_eq!(fake.identifies(), 1, "resumed, not re-identified");
    assert_eq!(fake.connections(), connections + 1, "one new connection");
    // The old connection was left with a non-1000 code: Discord keeps the session.
    assert!(!fake.client_close_codes().contains(&1000));
    let reply = invoke(&fake, MEMBER, "help", vec![]).await;
    assert!(is_ephemeral(&reply));
}

#[actix_web::test]
async fn a_refused_resume_makes_the_bot_identify_afresh_exactly_once() {
    let (fake, app) = connected().await;
    fake.set_refuse_resume(true);
    fake.drop_session(0);
    assert!(
        eventually(Duration::from_secs(30), || async { fake.identifies() == 2 }).await,
        "identifies: {}, resumes: {}",
        fake.identifies(),
        fake.resumes()
    );
    assert!(fake.refused_resumes() >= 1);
    wait_for_gateway(&app, "connected").await;
    assert!(eventually(WAIT, || async { fake.connected_shards() == vec![0] }).await);
    let reply = invoke(&fake, MEMBER, "help", vec![]).await;
    assert!(is_ephemeral(&reply));
    // One refused resume, one new session: nothing more.
    tokio::time::sleep(HEARTBEAT * 2).await;
    assert_eq!(fake.identifies(), 2);
    assert_eq!(fake.refused_resumes(), 1);
}

#[actix_web::test]
async fn after_a_reconnect_shutdown_returns_only_once_discord_saw_close_code_1000() {
    let (fake, app) = connected().await;
    fake.gateway_outage();
    wait_for_gateway(&app, "reconnecting").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    fake.gateway_back();
    assert!(
        eventually(WAIT, || async {
            fake.resumes() >= 1 && bot_status(&app).await.status.label() == "connected"
        })
        .await,
        "resumes: {}, {:?}",
        fake.resumes(),
        bot_status(&app).await
    );
    assert_eq!(fake.identifies(), 1);
    // The silent connection was abandoned with a non-1000 code (the session lives on).
    assert!(!fake.client_close_codes().contains(&1000));
    app.state
        .gateway
        .send(guildhall::actors::gateway::Shutdown)
        .await
        .unwrap();
    // No waiting here: the shutdown must not return before the shard has closed.
    let codes = fake.client_close_codes();
    assert_eq!(codes.last(), Some(&1000), "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 1000).count(), 1, "{codes:?}");
    assert!(fake.connected_shards().is_empty());
}

#[actix_web::test]
async fn a_refused_command_registration_keeps_discords_field_errors_in_the_status() {
    let fake = FakeDiscord::start().await;
    fake.add_guild(standard_guild(GUILD));
    fake.set_command_registration_errors(Some(serde_json::json!({
        "3": {"options": {"0": {"description": {"_errors": [
            {"code": "BASE_TYPE_BAD_LENGTH", "message": "Must be between 1 and 100 in length."}
        ]}}}}
    })));
    let app = spawn_bot(&fake).await;
    assert!(
        eventually(WAIT, || async {
            bot_status(&app).await.last_error.is_some()
        })
        .await,
        "{:?}",
        bot_status(&app).await
    );
    let admin = crate::common::auth::admin_token(&app).await;
    let (status, body) = app
        .call("GET", "/api/v1/bot/status", Some(&admin), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let last_error = body["last_error"].as_str().unwrap();
    assert!(last_error.contains("Invalid Form Body"), "{last_error}");
    assert!(
        last_error.contains("3.options.0.description: Must be between 1 and 100 in length."),
        "{last_error}"
    );
    assert!(last_error.contains("BASE_TYPE_BAD_LENGTH"), "{last_error}");
    // The gateway itself is fine; and a reload tries again, reporting the same reason.
    assert_eq!(bot_status(&app).await.status.label(), "connected");
    let (status, body) = app
        .call("POST", "/api/v1/bot/reload", Some(&admin), None)
        .await;
    assert!(
        body.to_string().contains("3.options.0.description"),
        "{status} {body}"
    );
}

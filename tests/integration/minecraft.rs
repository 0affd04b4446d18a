//! Minecraft over RCON, end to end: the real `rcon` client inside RconActor against the fake
//! server in `tests/common/fake_rcon.rs`, through `MinecraftService` (the path the API and
//! Discord share) and through the HTTP API.

use std::time::{Duration, Instant};

use guildhall::actors::rcon::{RconError, RconState};
use guildhall::minecraft::{Caller, MinecraftError, RconCommand, ServerName};
use guildhall::store::audit::{self, Actor, AuditFilter};

use crate::common::fake_rcon::{FakeRcon, filler};
use crate::common::{TestApp, eventually, spawn_app_with};

pub const PASSWORD: &str = "fake-rcon-password";

/// The app with `default` pointing at `fake` and a 10 s command timeout: far beyond what the
/// fake needs, however loaded the machine (with 1 s, a command queued behind one that took
/// 250 ms failed as `NotAnswering`). Tests of the timeout itself use [`app_with_timeout`].
pub async fn app_with(fake: &FakeRcon, password: &str) -> TestApp {
    app_with_timeout(fake, password, Duration::from_secs(10)).await
}

/// The app with `default` pointing at `fake`, connecting and running each command within
/// `timeout`; commands queued behind an unanswered one give up after a quarter of it.
pub async fn app_with_timeout(fake: &FakeRcon, password: &str, timeout: Duration) -> TestApp {
    let rcon = fake.env_with_password(password);
    spawn_app_with(move |env| {
        env.extend(rcon);
        env.insert(
            "GUILDHALL_RCON_TIMEOUT_MS".into(),
            timeout.as_millis().to_string(),
        );
    })
    .await
}

/// The short timeout the timeout tests wait out.
pub const SHORT_TIMEOUT: Duration = Duration::from_secs(1);

pub fn caller(roles: &[&str]) -> Caller {
    Caller {
        actor: Actor::User {
            id: 1,
            username: "tester".into(),
        },
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        guild_id: None,
        origin: Default::default(),
    }
}

fn default() -> ServerName {
    ServerName::parse("default").unwrap()
}

fn cmd(s: &str) -> RconCommand {
    RconCommand::parse(s).unwrap()
}

async fn run(app: &TestApp, command: &str) -> Result<String, MinecraftError> {
    app.state
        .minecraft
        .command(&caller(&["admin"]), &default(), cmd(command))
        .await
        .map(|r| r.raw)
}

async fn state(app: &TestApp) -> Option<RconState> {
    app.state.minecraft.state(&default()).await
}

async fn audit_entries(app: &TestApp, action: &str) -> Vec<audit::AuditEntry> {
    audit::list(
        &app.state.store,
        &AuditFilter {
            action: Some(action.into()),
            limit: 500,
            ..AuditFilter::default()
        },
    )
    .await
    .unwrap()
}

#[actix_web::test]
async fn a_command_returns_raw_and_stripped_text_and_is_audited_with_its_response() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    assert_eq!(state(&app).await, Some(RconState::Idle), "connects lazily");
    assert_eq!(fake.connections(), 0);

    let response = app
        .state
        .minecraft
        .command(&caller(&["admin"]), &default(), cmd("colors"))
        .await
        .unwrap();
    assert_eq!(response.raw, "§aGreen §lbold§r text");
    assert_eq!(response.text, "Green bold text");
    assert_eq!(state(&app).await, Some(RconState::Connected));

    let entries = audit_entries(&app, "minecraft.command").await;
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.actor_label, "user:tester");
    assert_eq!(entry.target.as_deref(), Some("minecraft:default"));
    assert_eq!(entry.details["command"], "colors");
    assert_eq!(entry.details["server"], "default");
    assert_eq!(entry.details["response"], "§aGreen §lbold§r text");
}

#[actix_web::test]
async fn the_audit_entry_keeps_the_first_kib_of_a_long_response() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    let raw = run(&app, "multi 5000").await.unwrap();
    assert_eq!(raw.len(), 5000);
    let entries = audit_entries(&app, "minecraft.command").await;
    assert_eq!(entries[0].details["response"], filler(1024));
    assert_eq!(entries[0].details["response_bytes"], 5000);
}

#[actix_web::test]
async fn responses_in_several_packets_and_in_one_packet_over_4_kib_arrive_whole() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    assert_eq!(run(&app, "multi 20000").await.unwrap(), filler(20_000));
    assert_eq!(run(&app, "big 20000").await.unwrap(), filler(20_000));
    assert_eq!(
        run(&app, "echo still in step").await.unwrap(),
        "still in step"
    );
    assert_eq!(fake.logins(), 1, "one connection served all three");
}

#[actix_web::test]
async fn a_command_without_output_returns_empty_text_without_waiting_for_the_timeout() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    run(&app, "list").await.unwrap();
    let started = Instant::now();
    assert_eq!(run(&app, "say hello").await.unwrap(), "");
    // Waiting for the timeout would take 10 s; a loaded machine may take a while, never that.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.count("say hello"), 1);
}

#[actix_web::test]
async fn a_wrong_password_marks_the_server_auth_failed_and_stops_retrying() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, "not-the-password").await;
    let err = run(&app, "list").await.unwrap_err();
    assert!(
        matches!(err, MinecraftError::Rcon(RconError::AuthFailed)),
        "{err:?}"
    );
    assert_eq!(state(&app).await, Some(RconState::AuthFailed));
    // Later commands fail at once, without another login attempt.
    let err = run(&app, "list").await.unwrap_err();
    assert!(matches!(err, MinecraftError::Rcon(RconError::AuthFailed)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.failed_logins(), 1, "no retry after a refused password");
    assert!(fake.commands().is_empty());
    let (_, ready) = app.get_json("/ready").await;
    assert_eq!(ready["rcon"]["servers"]["default"]["status"], "auth_failed");
    assert_eq!(
        app.metric(r#"guildhall_rcon_up{server="default"}"#).await,
        Some(0.0)
    );
}

#[actix_web::test]
async fn a_server_that_accepts_and_never_answers_is_reported_unreachable_after_the_timeout() {
    let fake = FakeRcon::silent();
    let app = app_with_timeout(&fake, PASSWORD, SHORT_TIMEOUT).await;
    let started = Instant::now();
    let err = run(&app, "list").await.unwrap_err();
    assert!(
        matches!(err, MinecraftError::Rcon(RconError::Unreachable(_))),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(state(&app).await, Some(RconState::Unreachable));
    let (_, ready) = app.get_json("/ready").await;
    assert_eq!(ready["rcon"]["servers"]["default"]["status"], "unreachable");
}

#[actix_web::test]
async fn a_command_that_gets_no_answer_times_out_and_the_server_is_used_again_after_reconnecting() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with_timeout(&fake, PASSWORD, SHORT_TIMEOUT).await;
    let started = Instant::now();
    let err = run(&app, "hang").await.unwrap_err();
    assert!(
        matches!(err, MinecraftError::Rcon(RconError::Timeout(_))),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(&err, MinecraftError::Rcon(e) if e.may_have_run()));
    assert!(
        eventually(Duration::from_secs(10), || async {
            state(&app).await == Some(RconState::Connected)
        })
        .await,
        "reconnects in the background"
    );
    assert_eq!(run(&app, "echo back").await.unwrap(), "back");
    assert_eq!(fake.logins(), 2);
    assert_eq!(
        fake.count("hang"),
        1,
        "a timed-out command is never re-sent"
    );
}

#[actix_web::test]
async fn a_drop_mid_response_fails_that_command_and_the_server_reconnects() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    let err = run(&app, "drop").await.unwrap_err();
    assert!(
        matches!(err, MinecraftError::Rcon(RconError::ConnectionLost(_))),
        "{err:?}"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            state(&app).await == Some(RconState::Connected)
        })
        .await
    );
    assert_eq!(run(&app, "echo ok").await.unwrap(), "ok");
    assert_eq!(fake.count("drop"), 1);
}

#[actix_web::test]
async fn after_a_restart_of_the_server_the_next_command_reconnects_and_succeeds() {
    let mut fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    assert_eq!(run(&app, "echo one").await.unwrap(), "one");
    fake.restart();
    // The idle connection was closed by the restart; the actor notices before sending.
    assert_eq!(run(&app, "echo two").await.unwrap(), "two");
    assert_eq!(fake.logins(), 2);
}

#[actix_web::test]
async fn a_server_that_is_down_is_unreachable_and_reconnects_with_backoff_once_it_is_back() {
    let mut fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    run(&app, "list").await.unwrap();
    fake.stop();
    let err = run(&app, "list").await.unwrap_err();
    assert!(
        matches!(err, MinecraftError::Rcon(RconError::Unreachable(_))),
        "{err:?}"
    );
    // During the backoff commands fail fast instead of queueing.
    let err = run(&app, "list").await.unwrap_err();
    assert!(
        matches!(
            err,
            MinecraftError::Rcon(RconError::Reconnecting { .. } | RconError::Unreachable(_))
        ),
        "{err:?}"
    );
    let status = app.state.minecraft.status(&default()).await.unwrap();
    assert!(status.status.unwrap().last_error.is_some());
    fake.restart();
    assert!(
        eventually(Duration::from_secs(10), || async {
            state(&app).await == Some(RconState::Connected)
        })
        .await,
        "reconnects by itself once the server is back"
    );
    assert_eq!(run(&app, "echo back").await.unwrap(), "back");
}

#[actix_web::test]
async fn a_hundred_concurrent_callers_are_serialised_on_one_connection_without_losing_answers() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    let calls = (0..100).map(|i| {
        let minecraft = app.state.minecraft.clone();
        async move {
            let r = minecraft
                .command(&caller(&["admin"]), &default(), cmd(&format!("echo {i}")))
                .await;
            (i, r.map(|r| r.raw))
        }
    });
    for (i, result) in futures_util::future::join_all(calls).await {
        assert_eq!(result.unwrap(), i.to_string());
    }
    assert_eq!(fake.logins(), 1);
    assert_eq!(audit_entries(&app, "minecraft.command").await.len(), 100);
}

#[actix_web::test]
async fn players_are_parsed_from_list_and_exported_as_a_metric() {
    let fake = FakeRcon::start(PASSWORD);
    fake.set_players(&["Alex", "Steve"]);
    let app = app_with(&fake, PASSWORD).await;
    let players = app.state.minecraft.players(&default()).await.unwrap();
    assert_eq!((players.online, players.max), (2, 20));
    assert_eq!(players.names, ["Alex", "Steve"]);
    assert_eq!(
        app.metric(r#"guildhall_minecraft_players_online{server="default"}"#)
            .await,
        Some(2.0)
    );
    assert_eq!(
        app.metric(r#"guildhall_rcon_up{server="default"}"#).await,
        Some(1.0)
    );
    let status = app.state.minecraft.status(&default()).await.unwrap();
    let status = status.status.unwrap();
    assert_eq!(status.players.unwrap().online, 2);
    assert!(status.rtt_ms.is_some());
    let (_, ready) = app.get_json("/ready").await;
    assert_eq!(ready["rcon"]["servers"]["default"]["status"], "connected");
    assert!(
        app.metric(r#"guildhall_rcon_command_seconds_count{server="default"}"#)
            .await
            .unwrap_or(0.0)
            >= 1.0
    );
}

#[actix_web::test]
async fn the_periodic_list_keeps_the_player_count_fresh() {
    let fake = FakeRcon::start(PASSWORD);
    let rcon = fake.env();
    let app = spawn_app_with(move |env| {
        env.extend(rcon);
        env.insert("GUILDHALL_RCON_POLL_MS".into(), "100".into());
    })
    .await;
    run(&app, "echo first use").await.unwrap();
    fake.set_players(&["Notch"]);
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.metric(r#"guildhall_minecraft_players_online{server="default"}"#)
                .await
                == Some(1.0)
        })
        .await
    );
}

#[actix_web::test]
async fn the_role_policy_refuses_commands_before_anything_is_sent() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    let minecraft = &app.state.minecraft;
    let as_moderator = caller(&["moderator"]);
    for allowed in [
        "list",
        "say hi",
        "whitelist add Alex",
        "kick Alex",
        "/minecraft:kick Bob",
    ] {
        minecraft
            .command(&as_moderator, &default(), cmd(allowed))
            .await
            .unwrap_or_else(|e| panic!("{allowed}: {e:?}"));
    }
    for refused in [
        "op Alex",
        "stop",
        "execute run op Alex",
        "minecraft:op Alex",
    ] {
        let err = minecraft
            .command(&as_moderator, &default(), cmd(refused))
            .await
            .unwrap_err();
        assert!(
            matches!(err, MinecraftError::NotAllowed { .. }),
            "{refused}: {err:?}"
        );
    }
    let err = minecraft
        .command(&caller(&["viewer"]), &default(), cmd("list"))
        .await
        .unwrap_err();
    assert!(matches!(err, MinecraftError::NotAllowed { .. }));
    assert!(
        !fake
            .commands()
            .iter()
            .any(|c| c.contains("op ") || c == "stop"),
        "{:?}",
        fake.commands()
    );
    assert_eq!(
        audit_entries(&app, "minecraft.command_denied").await.len(),
        5
    );
    minecraft
        .command(&caller(&["admin"]), &default(), cmd("op Alex"))
        .await
        .unwrap();
}

// ---- schedules -------------------------------------------------------------------------------

use guildhall::minecraft::schedule::{ScheduleRunner, ScheduleSpec, StopScheduling};

fn every_second(command: &str, only_when_empty: bool) -> ScheduleSpec {
    ScheduleSpec {
        cron: "* * * * * *".into(),
        command: command.into(),
        only_when_empty,
        countdown_seconds: 0,
        countdown_message: None,
    }
}

async fn outcomes(app: &TestApp) -> Vec<(i64, String)> {
    audit_entries(app, "minecraft.schedule_run")
        .await
        .iter()
        .map(|e| {
            (
                e.details["occurrence"].as_i64().unwrap(),
                e.details["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn a_schedule_runs_while_the_server_is_empty_and_is_skipped_while_players_are_online() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    app.state
        .minecraft
        .add_schedule(
            &caller(&["admin"]),
            &default(),
            every_second("whitelist reload", true),
        )
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            fake.count("whitelist reload") >= 1
        })
        .await,
        "runs while nobody is online"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            outcomes(&app).await.iter().any(|(_, o)| o == "ok")
        })
        .await
    );
    fake.set_players(&["Alex"]);
    assert!(
        eventually(Duration::from_secs(5), || async {
            outcomes(&app)
                .await
                .iter()
                .any(|(_, o)| o == "skipped_players_online")
        })
        .await
    );
    let ran = fake.count("whitelist reload");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        fake.count("whitelist reload"),
        ran,
        "not run while players are online"
    );
    let schedules = app.state.minecraft.schedules(&default()).await.unwrap();
    assert_eq!(
        schedules[0].last_outcome.as_deref(),
        Some("skipped_players_online")
    );
}

#[actix_web::test]
async fn a_countdown_is_announced_with_say_before_the_command_runs() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    let spec = ScheduleSpec {
        cron: "*/3 * * * * *".into(),
        command: "stop".into(),
        only_when_empty: false,
        countdown_seconds: 2,
        countdown_message: Some("Restart in {seconds} s".into()),
    };
    let schedule = app
        .state
        .minecraft
        .add_schedule(&caller(&["admin"]), &default(), spec)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            fake.count("stop") >= 1
        })
        .await
    );
    let commands = fake.commands();
    let stop = commands.iter().position(|c| c == "stop").unwrap();
    let two = commands
        .iter()
        .position(|c| c == "say Restart in 2 s")
        .unwrap();
    let one = commands
        .iter()
        .position(|c| c == "say Restart in 1 s")
        .unwrap();
    assert!(two < one && one < stop, "{commands:?}");
    // The command ran at the cron time, not when the countdown started.
    assert!(
        eventually(Duration::from_secs(5), || async {
            !audit_entries(&app, "minecraft.schedule_run")
                .await
                .is_empty()
        })
        .await
    );
    let entry = audit_entries(&app, "minecraft.schedule_run").await;
    let occurrence = entry[0].details["occurrence"].as_i64().unwrap();
    assert_eq!(occurrence % 3000, 0, "an occurrence of */3 seconds");
    assert!(schedule.next_run_at <= occurrence);
}

#[actix_web::test]
async fn each_occurrence_runs_once_while_several_instances_share_the_database() {
    let fake = FakeRcon::start(PASSWORD);
    let first = app_with(&fake, PASSWORD).await;
    let (url, rcon) = (first.db.url.clone(), fake.env());
    let second = spawn_app_with(move |env| {
        env.insert("DATABASE_URL".into(), url);
        env.extend(rcon);
    })
    .await;
    // Two more runners racing on the first instance's service: four claimants in all.
    let extra: Vec<_> = (0..2)
        .map(|_| {
            let service = first.state.minecraft.clone();
            actix::Supervisor::start(move |_| {
                ScheduleRunner::new(service, Duration::from_millis(100))
            })
        })
        .collect();
    first
        .state
        .minecraft
        .add_schedule(
            &caller(&["admin"]),
            &default(),
            every_second("echo tick", false),
        )
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            outcomes(&first).await.len() >= 3
        })
        .await,
        "{:?}",
        outcomes(&first).await
    );
    // Every claimant stops claiming; the runs already claimed finish. Then the server and the
    // audit log must agree exactly (a run counted on a snapshot taken mid-run could not be).
    for runner in [&first.state.schedules, &second.state.schedules]
        .into_iter()
        .chain(&extra)
    {
        runner.send(StopScheduling).await.unwrap();
    }
    let settled = eventually(Duration::from_secs(30), || async {
        fake.count("echo tick") == outcomes(&first).await.len()
    })
    .await;
    let runs = outcomes(&first).await;
    assert!(
        settled,
        "every run reached the server once: {} vs {runs:?}",
        fake.count("echo tick")
    );
    assert!(runs.iter().all(|(_, o)| o == "ok"), "{runs:?}");
    let mut occurrences: Vec<i64> = runs.iter().map(|(o, _)| *o).collect();
    occurrences.sort_unstable();
    occurrences.dedup();
    assert_eq!(
        occurrences.len(),
        runs.len(),
        "an occurrence ran twice: {runs:?}"
    );
    drop(second);
}

#[actix_web::test]
async fn schedules_survive_a_restart_and_a_stopped_instance_claims_nothing() {
    let fake = FakeRcon::start(PASSWORD);
    let first = app_with(&fake, PASSWORD).await;
    first
        .state
        .minecraft
        .add_schedule(
            &caller(&["admin"]),
            &default(),
            every_second("echo again", false),
        )
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            fake.count("echo again") >= 1
        })
        .await
    );
    first.handle.stop(true).await;
    // Shutdown ends by closing the pool, after the runner stopped claiming and the runs it had
    // started finished: from then on nothing may reach the server.
    assert!(
        eventually(Duration::from_secs(30), || async {
            first.state.store.pool().is_closed()
        })
        .await,
        "shutdown never completed"
    );
    let before = fake.count("echo again");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        fake.count("echo again"),
        before,
        "a stopped instance runs nothing"
    );

    let (url, rcon) = (first.db.url.clone(), fake.env());
    let _restarted = spawn_app_with(move |env| {
        env.insert("DATABASE_URL".into(), url);
        env.extend(rcon);
    })
    .await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            fake.count("echo again") > before
        })
        .await,
        "the restarted instance runs the stored schedule"
    );
}

#[actix_web::test]
async fn a_schedule_whose_command_the_author_may_not_run_is_refused() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    let err = app
        .state
        .minecraft
        .add_schedule(
            &caller(&["moderator"]),
            &default(),
            every_second("stop", false),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MinecraftError::NotAllowed { .. }), "{err:?}");
    assert!(
        app.state
            .minecraft
            .schedules(&default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[actix_web::test]
async fn status_changes_reach_the_status_stream() {
    use crate::common::status::{saw, watch_status};
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    let seen = watch_status(&app).await;
    run(&app, "list").await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            saw(&seen, "rcon.servers.default", "connected")
        })
        .await,
        "{:?}",
        seen.lock().unwrap()
    );
}

// ---- the HTTP API ----------------------------------------------------------------------------

use crate::common::auth::{admin_token, token_with_role};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SERVERS: &str = "/api/v1/minecraft/servers";

/// Everything a bad request could have changed: what the fake received, the stored servers
/// (with their encrypted passwords), links, schedules and the audit log.
async fn snapshot(app: &TestApp, fake: &FakeRcon) -> (Vec<String>, Vec<String>, i64) {
    let rows: Vec<(String, String, i64, String, i64)> = sqlx::query_as(
        "SELECT name, host, port, password_encrypted, enabled FROM rcon_servers ORDER BY name",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    let links: Vec<(i64, String)> =
        sqlx::query_as("SELECT guild_id, server_name FROM minecraft_guild_links ORDER BY guild_id")
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
    let schedules: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM minecraft_schedules")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    (
        fake.commands(),
        vec![format!("{rows:?}"), format!("{links:?}")],
        schedules,
    )
}

fn new_server(name: &str, fake: &FakeRcon, password: &str) -> Value {
    json!({"name": name, "host": "127.0.0.1", "port": fake.port, "password": password})
}

/// `POST {SERVERS}/{server}/command` as `token`: runs `command` there.
async fn run_over_http(
    app: &TestApp,
    token: &str,
    server: &str,
    command: &str,
) -> (StatusCode, Value) {
    let path = format!("{SERVERS}/{server}/command");
    let body = json!({ "command": command });
    app.call("POST", &path, Some(token), Some(body)).await
}

/// `PATCH {SERVERS}/{server}` as `token` with `change`.
async fn patch_server(
    app: &TestApp,
    token: &str,
    server: &str,
    change: Value,
) -> (StatusCode, Value) {
    let path = format!("{SERVERS}/{server}");
    app.call("PATCH", &path, Some(token), Some(change)).await
}

/// Adds the server `name` through the API as `admin`, pointing at `fake` and signing in with
/// `password`; it must be created.
pub(crate) async fn add_server(
    app: &TestApp,
    admin: &str,
    name: &str,
    fake: &FakeRcon,
    password: &str,
) {
    let body = new_server(name, fake, password);
    let (status, body) = app.call("POST", SERVERS, Some(admin), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The rows of a bad-input table for one route: each `(body, what the error message must
/// contain)` is sent as `method path` and must be answered with `status`.
fn route(
    method: &'static str,
    path: &str,
    status: StatusCode,
    rows: Vec<(Value, &'static str)>,
) -> Vec<(&'static str, String, Value, StatusCode, &'static str)> {
    rows.into_iter()
        .map(|(body, message)| (method, path.to_owned(), body, status, message))
        .collect()
}

#[actix_web::test]
async fn every_bad_input_is_refused_with_a_clear_error_before_anything_is_sent_or_stored() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    let admin = admin_token(&app).await;
    add_server(&app, &admin, "survival", &fake, PASSWORD).await;
    let (status, _) = app
        .call(
            "POST",
            &format!("{SERVERS}/survival/schedules"),
            Some(&admin),
            Some(json!({"cron": "0 4 * * *", "command": "say nightly"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let before = snapshot(&app, &fake).await;

    let long = "say ".to_owned() + &"x".repeat(1410);
    let cmd = format!("{SERVERS}/survival/command");
    let cases = [
        route(
            "POST",
            &cmd,
            StatusCode::BAD_REQUEST,
            vec![
                (json!({"command": long}), "command: is 1414 bytes"),
                (json!({"command": ""}), "command: must not be empty"),
                (json!({"command": "   "}), "command: must not be empty"),
                (
                    json!({"command": "say hi\nop Eve"}),
                    "command: must not contain control characters",
                ),
                (json!({"command": "say hi\r"}), "command: must not contain control characters"),
                (
                    json!({"command": "say \u{1b}[31m"}),
                    "command: must not contain control characters",
                ),
                (json!({"command": 5}), "invalid type"),
            ],
        ),
        route(
            "POST",
            &format!("{SERVERS}/nether/command"),
            StatusCode::NOT_FOUND,
            vec![
                (json!({"command": "list"}), "unknown Minecraft server `nether`"),
            ],
        ),
        route(
            "POST",
            &format!("{SERVERS}/Not%20A%20Name/command"),
            StatusCode::NOT_FOUND,
            vec![
                (json!({"command": "list"}), "unknown Minecraft server"),
            ],
        ),
        route(
            "GET",
            &format!("{SERVERS}/nether/players"),
            StatusCode::NOT_FOUND,
            vec![
                (Value::Null, "unknown Minecraft server"),
            ],
        ),
        route(
            "GET",
            &format!("{SERVERS}/nether/status"),
            StatusCode::NOT_FOUND,
            vec![
                (Value::Null, "unknown Minecraft server"),
            ],
        ),
        route(
            "POST",
            SERVERS,
            StatusCode::BAD_REQUEST,
            vec![
                (
                    json!({"name": "a", "host": "127.0.0.1", "port": 0, "password": "p"}),
                    "port: 0 is not a TCP port",
                ),
                (
                    json!({"name": "a", "host": "127.0.0.1", "port": 70000, "password": "p"}),
                    "port: 70000 is not a TCP port",
                ),
                (
                    json!({"name": "a", "host": "nonexistent.invalid", "port": 25575, "password": "p"}),
                    "host: `nonexistent.invalid` does not resolve",
                ),
                (
                    json!({"name": "a", "host": "bad host", "port": 25575, "password": "p"}),
                    "host: `bad host` is not a valid host name",
                ),
                (
                    json!({"name": "Bad Name", "host": "127.0.0.1", "password": "p"}),
                    "name: may contain only",
                ),
                (
                    json!({"name": "default", "host": "127.0.0.1", "password": "p"}),
                    "name: `default` is reserved",
                ),
                (
                    json!({"name": "a", "host": "127.0.0.1", "password": ""}),
                    "password: must not be empty",
                ),
                (
                    json!({"name": "a", "host": "127.0.0.1", "password": "p", "guilds": ["x"]}),
                    "guilds: `x` is not a Discord guild id",
                ),
            ],
        ),
        route(
            "POST",
            SERVERS,
            StatusCode::CONFLICT,
            vec![
                (new_server("survival", &fake, "other"), "already exists"),
            ],
        ),
        route(
            "PATCH",
            &format!("{SERVERS}/survival"),
            StatusCode::BAD_REQUEST,
            vec![
                (json!({"port": 70000}), "port: 70000"),
                (json!({"host": "nonexistent.invalid"}), "host:"),
                (json!({"password": ""}), "password:"),
                (json!({"guilds": ["1", "-5"]}), "guilds:"),
            ],
        ),
        route(
            "PATCH",
            &format!("{SERVERS}/nether"),
            StatusCode::NOT_FOUND,
            vec![
                (json!({"port": 25575}), "unknown Minecraft server"),
            ],
        ),
        route(
            "PATCH",
            &format!("{SERVERS}/default"),
            StatusCode::CONFLICT,
            vec![
                (json!({"port": 25576}), "RCON_HOST"),
            ],
        ),
        route(
            "DELETE",
            &format!("{SERVERS}/default"),
            StatusCode::CONFLICT,
            vec![
                (Value::Null, "RCON_HOST"),
            ],
        ),
        route(
            "DELETE",
            &format!("{SERVERS}/nether"),
            StatusCode::NOT_FOUND,
            vec![
                (Value::Null, "unknown Minecraft server"),
            ],
        ),
        route(
            "POST",
            &format!("{SERVERS}/survival/schedules"),
            StatusCode::BAD_REQUEST,
            vec![
                (json!({"cron": "61 * * * *", "command": "list"}), "cron:"),
                (json!({"cron": "every night", "command": "list"}), "cron:"),
                (json!({"cron": "0 0 31 2 *", "command": "list"}), "cron:"),
                (json!({"cron": "0 4 * * *", "command": ""}), "command:"),
                (
                    json!({"cron": "0 4 * * *", "command": "stop", "countdown_seconds": 5000}),
                    "countdown_seconds:",
                ),
                (
                    json!({"cron": "0 4 * * *", "command": "stop", "countdown_seconds": 60, "countdown_message": "a\nb"}),
                    "countdown_message:",
                ),
            ],
        ),
        route(
            "POST",
            &format!("{SERVERS}/nether/schedules"),
            StatusCode::NOT_FOUND,
            vec![
                (json!({"cron": "0 4 * * *", "command": "list"}), "unknown Minecraft server"),
            ],
        ),
        route(
            "DELETE",
            &format!("{SERVERS}/survival/schedules/abc"),
            StatusCode::BAD_REQUEST,
            vec![
                (Value::Null, "id:"),
            ],
        ),
        route(
            "DELETE",
            &format!("{SERVERS}/survival/schedules/42"),
            StatusCode::NOT_FOUND,
            vec![
                (Value::Null, "unknown schedule 42"),
            ],
        ),
    ]
    .into_iter()
    .flatten();
    for (method, path, body, expected, message) in cases {
        let body = (!body.is_null()).then_some(body);
        let (status, answer) = app.call(method, &path, Some(&admin), body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        let text = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            text.contains(message),
            "{method} {path}: {text:?} lacks {message:?}"
        );
        assert!(!text.contains(PASSWORD), "{method} {path}: {text}");
    }
    assert_eq!(
        snapshot(&app, &fake).await,
        before,
        "nothing was sent or stored"
    );
}

#[actix_web::test]
async fn every_minecraft_route_requires_its_permission_and_the_role_policy_applies_over_http() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    let viewer = token_with_role(&app, "viewer", 0).await;
    let moderator = token_with_role(&app, "moderator", 0).await;

    let (status, _) = app.call("GET", SERVERS, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.call("GET", SERVERS, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK);
    for (method, path, body) in [
        (
            "POST",
            format!("{SERVERS}/default/command"),
            json!({"command": "list"}),
        ),
        ("POST", SERVERS.to_owned(), new_server("x", &fake, "p")),
        ("PATCH", format!("{SERVERS}/default"), json!({"guilds": []})),
        (
            "POST",
            format!("{SERVERS}/default/schedules"),
            json!({"cron": "0 4 * * *", "command": "list"}),
        ),
    ] {
        let (status, _) = app.call(method, &path, Some(&viewer), Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "viewer {method} {path}");
    }
    let (status, body) = run_over_http(&app, &moderator, "default", "kick Alex").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = run_over_http(&app, &moderator, "default", "op Eve").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("`op`"),
        "{body}"
    );
    assert_eq!(
        fake.commands(),
        ["kick Alex"],
        "the refused command never left"
    );
}

#[actix_web::test]
async fn a_server_added_through_the_api_runs_commands_and_its_password_stays_encrypted_and_hidden()
{
    let fake = FakeRcon::start("second-server-secret");
    let app = spawn_app_with(|_| {}).await;
    let admin = admin_token(&app).await;
    let (status, created) = app
        .call(
            "POST",
            SERVERS,
            Some(&admin),
            Some(
                json!({"name": "creative", "host": "localhost", "port": fake.port,
                        "password": "second-server-secret", "guilds": ["123456789012345678"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["source"], "database");
    assert_eq!(created["guilds"], json!(["123456789012345678"]));
    let stored: String =
        sqlx::query_scalar("SELECT password_encrypted FROM rcon_servers WHERE name = 'creative'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert!(!stored.contains("second-server-secret"));

    let (status, answer) = run_over_http(&app, &admin, "creative", "colors").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["raw"], "§aGreen §lbold§r text");
    assert_eq!(answer["text"], "Green bold text");

    fake.set_players(&["Alex"]);
    let (status, players) = app
        .call(
            "GET",
            &format!("{SERVERS}/creative/players"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(players, json!({"online": 1, "max": 20, "names": ["Alex"]}));
    let (_, status) = app
        .call(
            "GET",
            &format!("{SERVERS}/creative/status"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status["state"], "connected", "{status}");
    assert_eq!(status["players"]["online"], 1);

    for path in [SERVERS.to_owned(), format!("{SERVERS}/creative")] {
        let (_, body) = app.call("GET", &path, Some(&admin), None).await;
        assert!(!body.to_string().contains("second-server-secret"), "{body}");
        assert!(!body.to_string().contains(&stored), "{body}");
    }
    let server = app
        .state
        .minecraft
        .server_for_guild(123_456_789_012_345_678)
        .await
        .unwrap();
    assert_eq!(
        server.as_str(),
        "creative",
        "/mc in the linked guild goes here"
    );
    assert!(
        app.state.minecraft.server_for_guild(1).await.is_err(),
        "no default configured"
    );
    let entries = audit_entries(&app, "minecraft.server_create").await;
    assert!(!format!("{:?}", entries[0].details).contains("second-server-secret"));
}

#[actix_web::test]
async fn a_refused_password_stays_auth_failed_until_a_patch_gives_the_right_one() {
    let fake = FakeRcon::start(PASSWORD);
    let app = spawn_app_with(|_| {}).await;
    let admin = admin_token(&app).await;
    add_server(&app, &admin, "survival", &fake, "wrong").await;
    let (status, body) = run_over_http(&app, &admin, "survival", "list").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("authentication failed")
    );
    let (_, status) = app
        .call(
            "GET",
            &format!("{SERVERS}/survival/status"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status["state"], "auth_failed");
    assert_eq!(fake.failed_logins(), 1);

    let (status, _) = patch_server(&app, &admin, "survival", json!({"password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = run_over_http(&app, &admin, "survival", "echo fixed").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["raw"], "fixed");
}

#[actix_web::test]
async fn disabling_and_deleting_a_server_stop_its_connection_and_remove_its_schedules() {
    let fake = FakeRcon::start(PASSWORD);
    let app = spawn_app_with(|_| {}).await;
    let admin = admin_token(&app).await;
    add_server(&app, &admin, "survival", &fake, PASSWORD).await;
    let (status, _) = run_over_http(&app, &admin, "survival", "list").await;
    assert_eq!(status, StatusCode::OK);
    let (status, schedule) = app
        .call(
            "POST",
            &format!("{SERVERS}/survival/schedules"),
            Some(&admin),
            Some(json!({"cron": "0 4 * * *", "command": "say hi"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{schedule}");
    let (_, listed) = app
        .call(
            "GET",
            &format!("{SERVERS}/survival/schedules"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(listed[0]["id"], schedule["id"]);

    let (status, _) = patch_server(&app, &admin, "survival", json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = run_over_http(&app, &admin, "survival", "list").await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a disabled server refuses commands"
    );
    let (_, ready) = app.get_json("/ready").await;
    assert_eq!(ready["rcon"]["servers"]["survival"]["status"], "disabled");
    let (status, _) = patch_server(&app, &admin, "survival", json!({"enabled": true})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = run_over_http(&app, &admin, "survival", "list").await;
    assert_eq!(status, StatusCode::OK, "enabled again");

    let (status, _) = app
        .call("DELETE", &format!("{SERVERS}/survival"), Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call("GET", &format!("{SERVERS}/survival"), Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM minecraft_schedules")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    let (_, ready) = app.get_json("/ready").await;
    assert!(
        ready["rcon"]["servers"].get("survival").is_none(),
        "{ready}"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.metric(r#"guildhall_rcon_up{server="survival"}"#)
                .await
                .is_none()
        })
        .await,
        "its metrics are gone"
    );
}

//! Operating under faults (issue 13): a stuck or vanished Minecraft server, a database or Redis
//! that hangs or goes away. Each outage must be seen at once, reported everywhere, logged once
//! and recovered from quickly.

use std::time::{Duration, Instant};

use actix::Supervisor;
use guildhall::actors::rcon::{
    Execute, GetServerStatus, RconActor, RconError, RconState, RconTiming, ServerConfig,
};
use guildhall::metrics::Metrics;
use guildhall::minecraft::{RconCommand, ServerName};
use prometheus::Registry;
use secrecy::SecretString;

use crate::common::eventually;
use crate::common::fake_rcon::FakeRcon;
use crate::minecraft::{PASSWORD, SHORT_TIMEOUT, add_server, app_with_timeout};

fn cmd(s: &str) -> RconCommand {
    RconCommand::parse(s).unwrap()
}

fn default() -> ServerName {
    ServerName::parse("default").unwrap()
}

/// An RconActor of its own (outside any app), so a test can choose every timing.
fn actor_for(fake: &FakeRcon, timing: RconTiming) -> actix::Addr<RconActor> {
    let config = ServerConfig {
        host: "127.0.0.1".into(),
        port: fake.port,
        password: SecretString::from(PASSWORD.to_owned()),
    };
    let metrics = Metrics::new(Registry::new()).unwrap();
    Supervisor::start(move |_| {
        RconActor::new(
            ServerName::parse("faults").unwrap(),
            config,
            timing,
            metrics,
            None,
        )
    })
}

async fn state_of(actor: &actix::Addr<RconActor>) -> RconState {
    actor.send(GetServerStatus).await.unwrap().state
}

#[actix_web::test]
async fn a_command_without_an_answer_fails_alone_and_the_commands_behind_it_fail_fast_unsent() {
    let fake = FakeRcon::start(PASSWORD);
    // A 1 s command timeout: commands behind an unanswered one give up after 250 ms.
    let app = app_with_timeout(&fake, PASSWORD, SHORT_TIMEOUT).await;
    let actor = app.state.minecraft.actor(&default()).unwrap();
    actor
        .send(Execute(cmd("echo warm")))
        .await
        .unwrap()
        .unwrap();

    // The mailbox keeps order: `hang` is in flight before the others are queued.
    let hang = actor.send(Execute(cmd("hang")));
    let queued: Vec<_> = (0..5)
        .map(|i| actor.send(Execute(cmd(&format!("echo {i}")))))
        .collect();
    let ((queued, queued_done), (hang, hang_done)) = futures_util::join!(
        async {
            let results = futures_util::future::join_all(queued).await;
            (results, Instant::now())
        },
        async {
            let result = hang.await;
            (result, Instant::now())
        }
    );
    let hang = hang.unwrap().unwrap_err();
    assert!(matches!(hang, RconError::Timeout(_)), "{hang:?}");
    assert!(hang.may_have_run());
    for result in queued {
        let err = result.unwrap().unwrap_err();
        assert!(matches!(err, RconError::NotAnswering { .. }), "{err:?}");
        assert!(err.to_string().starts_with("server not answering"), "{err}");
        assert!(!err.may_have_run());
    }
    assert!(
        queued_done < hang_done,
        "the queued commands failed before the stuck one timed out"
    );
    assert_eq!(fake.count("echo 0"), 0, "queued commands were never sent");

    // The server answers again (only that connection was stuck): the next command succeeds.
    assert!(
        eventually(Duration::from_secs(10), || async {
            app.state.minecraft.state(&default()).await == Some(RconState::Connected)
        })
        .await
    );
    let answer = actor
        .send(Execute(cmd("echo back")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.raw, "back");
    assert_eq!(fake.count("hang"), 1, "the stuck command is never re-sent");
}

#[actix_web::test]
async fn a_server_that_comes_back_is_used_within_a_second_however_long_the_backoff_has_grown() {
    let mut fake = FakeRcon::start(PASSWORD);
    let actor = actor_for(
        &fake,
        RconTiming {
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            // The first retry alone would wait 15 to 30 s.
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(60),
            probe_interval: Duration::from_millis(100),
            ..RconTiming::default()
        },
    );
    actor.send(Execute(cmd("echo up"))).await.unwrap().unwrap();
    fake.refuse();
    let err = actor.send(Execute(cmd("echo down"))).await.unwrap();
    assert!(matches!(err, Err(RconError::Unreachable(_))), "{err:?}");
    match actor.send(Execute(cmd("echo down"))).await.unwrap() {
        Err(RconError::Reconnecting { retry_in, .. }) => {
            assert!(retry_in > Duration::from_secs(10), "{retry_in:?}");
        }
        other => panic!("commands fail fast during the backoff: {other:?}"),
    }

    fake.come_back();
    let back = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || async {
            state_of(&actor).await == RconState::Connected
        })
        .await
    );
    let took = back.elapsed();
    // The probe runs every 100 ms; the bound leaves room for a loaded machine and still
    // fails without the probe (the backoff has at least 15 s to run).
    assert!(took < Duration::from_secs(3), "reconnected after {took:?}");
    let answer = actor
        .send(Execute(cmd("echo again")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.raw, "again");
    assert_eq!(fake.logins(), 2, "probes never log in");
}

#[actix_web::test]
async fn a_server_that_hangs_fails_commands_quickly_and_is_used_again_once_it_answers() {
    let fake = FakeRcon::start(PASSWORD);
    let actor = actor_for(
        &fake,
        RconTiming {
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_millis(500),
            stall_after: Duration::from_millis(200),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(400),
            ..RconTiming::default()
        },
    );
    actor.send(Execute(cmd("echo up"))).await.unwrap().unwrap();
    fake.hang();
    let err = actor
        .send(Execute(cmd("echo stuck")))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RconError::Timeout(_)), "{err:?}");
    // While it hangs, commands fail (never later than the timeout) and the state says so.
    for _ in 0..3 {
        let started = Instant::now();
        let result = actor.send(Execute(cmd("echo still"))).await.unwrap();
        assert!(result.is_err(), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert_ne!(state_of(&actor).await, RconState::Connected);

    fake.answer_again();
    assert!(
        eventually(Duration::from_secs(10), || async {
            state_of(&actor).await == RconState::Connected
        })
        .await,
        "reconnects once the server answers"
    );
    let answer = actor
        .send(Execute(cmd("echo back")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.raw, "back");
}

// ---- one log line per failed request --------------------------------------------------------

use crate::common::status::{saw, watch_status};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tracing::Level;

use crate::common::auth::{admin_token, token_with_role};
use crate::common::logs::{self, Line};
use crate::common::proxy::Proxy;
use crate::common::{TestApp, backend, spawn_app, spawn_app_with};

/// Sends a request; answers its status and the lines logged inside it.
async fn logged(app: &TestApp, request: reqwest::RequestBuilder) -> (StatusCode, Vec<Line>) {
    let captured = logs::capture();
    let response = request.send().await.unwrap();
    let status = response.status();
    let id = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    // The line is written before the response leaves; reading it once more is only for the
    // order of the capture lock.
    let _ = app;
    (status, captured.of_request(&id))
}

#[actix_web::test]
async fn every_request_refused_by_any_layer_writes_exactly_one_line_with_route_status_and_code() {
    logs::capture();
    let app = spawn_app().await;
    let viewer = token_with_role(&app, "viewer", 0).await;
    let admin = admin_token(&app).await;
    let c = &app.client;
    // (what, request, status, code, level)
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str, Level)> = vec![
        (
            "no route (the router)",
            c.get(app.url("/api/v1/no-such-thing")),
            404,
            "not_found",
            Level::INFO,
        ),
        (
            "no credentials (the access check)",
            c.get(app.url("/api/v1/bot/status")),
            401,
            "unauthorized",
            Level::INFO,
        ),
        (
            "a role without the permission (the access check)",
            c.get(app.url("/api/v1/users")).bearer_auth(&viewer),
            403,
            "forbidden",
            Level::INFO,
        ),
        (
            "a body that is not JSON (an extractor)",
            c.post(app.url("/api/v1/users"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "",
            Level::INFO,
        ),
        (
            "an unknown Minecraft server (a handler)",
            c.get(app.url("/api/v1/minecraft/servers/nowhere/status"))
                .bearer_auth(&admin),
            404,
            "",
            Level::INFO,
        ),
    ];
    for (what, request, status, code, level) in cases {
        let (got, lines) = logged(&app, request).await;
        assert_eq!(got.as_u16(), status, "{what}");
        assert_eq!(lines.len(), 1, "{what}: {lines:#?}");
        let line = &lines[0];
        assert_eq!(line.level, level, "{what}: {line:?}");
        assert_eq!(
            line.field("status"),
            Some(status.to_string().as_str()),
            "{what}"
        );
        assert!(
            line.field("route").is_some_and(|r| r.starts_with('/')),
            "{what}: {line:?}"
        );
        let logged_code = line.field("code").unwrap_or_default();
        assert!(
            !logged_code.is_empty() && logged_code != "none",
            "{what}: {line:?}"
        );
        if !code.is_empty() {
            assert_eq!(logged_code, code, "{what}");
        }
        let series =
            format!(r#"guildhall_http_errors_total{{code="{logged_code}",status="{status}"}}"#);
        assert!(
            app.metric(&series).await.is_some_and(|n| n >= 1.0),
            "{what}: {series}"
        );
    }
    // Successful requests write no line.
    let (status, lines) = logged(
        &app,
        c.get(app.url("/api/v1/bot/status")).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(lines.is_empty(), "{lines:#?}");
}

#[actix_web::test]
async fn a_minecraft_outage_is_one_error_at_the_transition_and_one_warning_per_refused_command() {
    let captured = logs::capture();
    let mut fake = FakeRcon::start(PASSWORD);
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    // A name no other test uses, so its transition lines are this test's alone.
    let name = format!("outage-{}", crate::common::random_suffix());
    add_server(&app, &admin, &name, &fake, PASSWORD).await;
    let path = format!("/api/v1/minecraft/servers/{name}/command");
    let command = |text: &str| {
        app.client
            .post(app.url(&path))
            .bearer_auth(&admin)
            .json(&json!({"command": text}))
    };
    let (status, lines) = logged(&app, command("echo up")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(lines.is_empty(), "{lines:#?}");

    fake.refuse();
    for i in 0..5 {
        let (status, lines) = logged(&app, command(&format!("echo {i}"))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert_eq!(
            lines[0].level,
            Level::WARN,
            "an expected refusal: {:?}",
            lines[0]
        );
        assert_eq!(lines[0].field("status"), Some("503"));
    }
    let errors: Vec<Line> = captured
        .lines()
        .into_iter()
        .filter(|l| l.level == Level::ERROR && l.field("server") == Some(name.as_str()))
        .collect();
    assert_eq!(errors.len(), 1, "one ERROR for the outage: {errors:#?}");
}

// ---- readiness under a hanging dependency ---------------------------------------------------

/// `/ready`'s body and how long it took.
async fn ready(app: &TestApp) -> (StatusCode, Value, Duration) {
    let started = Instant::now();
    let (status, body) = app.get_json("/ready").await;
    (status, body, started.elapsed())
}

/// Asserts `/ready` keeps answering quickly while a dependency hangs; the bound is far below
/// what waiting on the dependency would cost (the check gives up after 750 ms), with room
/// for a loaded machine.
async fn ready_stays_quick(app: &TestApp) {
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let (_, _, took) = ready(app).await;
        assert!(took < Duration::from_millis(700), "/ready took {took:?}");
        slowest = slowest.max(took);
    }
    eprintln!("/ready while a dependency hangs: slowest of 5 in {slowest:?}");
}

/// The app on PostgreSQL reached through `proxy`.
async fn app_through_postgres_proxy() -> Option<(TestApp, Proxy)> {
    if backend() != "postgres" {
        eprintln!("skipping: needs a networked database (GUILDHALL_TEST_DB=postgres)");
        return None;
    }
    let admin = url::Url::parse(&std::env::var("TEST_DATABASE_URL").unwrap()).unwrap();
    let proxy = Proxy::start(format!(
        "{}:{}",
        admin.host_str().unwrap(),
        admin.port().unwrap_or(5432)
    ));
    let port = proxy.port;
    let app = spawn_app_with(move |env| {
        let mut url = url::Url::parse(&env["DATABASE_URL"]).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(port)).unwrap();
        env.insert("DATABASE_URL".into(), url.to_string());
    })
    .await;
    Some((app, proxy))
}

#[actix_web::test]
async fn a_hanging_database_is_published_at_once_and_ready_keeps_answering_quickly() {
    let Some((app, proxy)) = app_through_postgres_proxy().await else {
        return;
    };
    let seen = watch_status(&app).await;
    let (status, body, _) = ready(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        app.metric(r#"guildhall_component_up{component="database"}"#)
            .await,
        Some(1.0)
    );

    proxy.hang();
    let hung = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || async {
            saw(&seen, "database", "down")
        })
        .await,
        "{:?}",
        seen.lock().unwrap()
    );
    let detected = hung.elapsed();
    ready_stays_quick(&app).await;
    let (status, body, _) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["database"]["status"], "down");
    assert_eq!(
        app.metric(r#"guildhall_component_up{component="database"}"#)
            .await,
        Some(0.0)
    );
    assert_eq!(
        app.metric(r#"guildhall_component_transitions_total{component="database",to="down"}"#)
            .await,
        Some(1.0)
    );
    eprintln!("database hang detected after {detected:?}");

    proxy.restore();
    assert!(
        eventually(Duration::from_secs(10), || async {
            saw(&seen, "database", "up")
        })
        .await,
        "{:?}",
        seen.lock().unwrap()
    );
    assert_eq!(ready(&app).await.0, StatusCode::OK);
    assert_eq!(
        app.metric(r#"guildhall_component_up{component="database"}"#)
            .await,
        Some(1.0)
    );
}

#[actix_web::test]
async fn a_lost_or_hanging_redis_is_published_and_ready_keeps_answering_quickly() {
    let Some(redis) = crate::common::redis_url() else {
        return;
    };
    let target = {
        let url = url::Url::parse(&redis).unwrap();
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(6379))
    };
    let proxy = Proxy::start(target);
    let port = proxy.port;
    let app = spawn_app_with(move |env| {
        env.insert("REDIS_URL".into(), format!("redis://127.0.0.1:{port}/"));
    })
    .await;
    let seen = watch_status(&app).await;
    assert_eq!(ready(&app).await.1["redis"]["status"], "up");

    for fault in ["hang", "cut"] {
        match fault {
            "hang" => proxy.hang(),
            _ => proxy.cut(),
        }
        seen.lock().unwrap().clear();
        assert!(
            eventually(Duration::from_secs(5), || async {
                saw(&seen, "redis", "down")
            })
            .await,
            "{fault}: {:?}",
            seen.lock().unwrap()
        );
        ready_stays_quick(&app).await;
        let (status, body, _) = ready(&app).await;
        assert_eq!(status, StatusCode::OK, "Redis is optional: {body}");
        assert_eq!(body["redis"]["status"], "down", "{fault}");
        assert_eq!(
            app.metric(r#"guildhall_component_up{component="redis"}"#)
                .await,
            Some(0.0)
        );

        proxy.restore();
        assert!(
            eventually(Duration::from_secs(10), || async {
                saw(&seen, "redis", "up")
            })
            .await,
            "{fault}: {:?}",
            seen.lock().unwrap()
        );
        assert_eq!(ready(&app).await.1["redis"]["status"], "up");
        assert_eq!(
            app.metric(r#"guildhall_component_up{component="redis"}"#)
                .await,
            Some(1.0)
        );
    }
}

// ---- a command that ran while the database went away ----------------------------------------

#[actix_web::test]
async fn a_command_that_ran_while_the_database_went_away_answers_202_audit_pending_within_the_bound()
 {
    let Some((app, proxy)) = app_through_postgres_proxy().await else {
        return;
    };
    let fake = FakeRcon::start(PASSWORD);
    let admin = admin_token(&app).await;
    let name = format!("audit-{}", crate::common::random_suffix());
    add_server(&app, &admin, &name, &fake, PASSWORD).await;

    let request = app
        .client
        .post(app.url(&format!("/api/v1/minecraft/servers/{name}/command")))
        .bearer_auth(&admin)
        .json(&json!({"command": "slow 1000"}))
        .send();
    let sent = Instant::now();
    let cut = async {
        // The database goes away once the command is on its way (policy and caller are read).
        assert!(
            eventually(Duration::from_secs(10), || async {
                fake.count("slow 1000") == 1
            })
            .await
        );
        proxy.cut();
    };
    let (response, ()) = futures_util::join!(request, cut);
    let response = response.unwrap();
    let took = sent.elapsed();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["audit"], "pending", "{body}");
    assert_eq!(body["raw"], "done", "the command ran: {body}");
    assert!(
        took >= guildhall::minecraft::service::AUDIT_WAIT,
        "waited for the audit entry first: {took:?}"
    );

    proxy.restore();
    let store = app.state.store.clone();
    assert!(
        eventually(Duration::from_secs(15), || async {
            guildhall::store::audit::list(
                &store,
                &guildhall::store::audit::AuditFilter {
                    action: Some("minecraft.command".into()),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .is_ok_and(|entries| {
                entries
                    .iter()
                    .any(|e| e.details.to_string().contains("slow 1000"))
            })
        })
        .await,
        "the pending entry is committed once the database is back"
    );
}

#[actix_web::test]
async fn a_database_that_stops_answering_is_published_on_the_status_stream_and_in_metrics() {
    // Runs on both engines: closing the pool is an outage every engine has.
    let app = spawn_app().await;
    let seen = watch_status(&app).await;
    app.state.store.close().await;
    let closed = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || async {
            saw(&seen, "database", "down")
        })
        .await,
        "{:?}",
        seen.lock().unwrap()
    );
    // One check interval (250 ms) after the fact, with room for a loaded machine.
    assert!(
        closed.elapsed() < Duration::from_secs(2),
        "{:?}",
        closed.elapsed()
    );
    assert_eq!(
        app.metric(r#"guildhall_component_up{component="database"}"#)
            .await,
        Some(0.0)
    );
    let (status, body, _) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

/// A gateway stand-in whose status the test sets.
struct FakeGateway(std::sync::Arc<std::sync::Mutex<guildhall::actors::ComponentStatus>>);

impl actix::Actor for FakeGateway {
    type Context = actix::Context<Self>;
}

impl actix::Handler<guildhall::actors::GetStatus> for FakeGateway {
    type Result = actix::MessageResult<guildhall::actors::GetStatus>;
    fn handle(&mut self, _: guildhall::actors::GetStatus, _: &mut Self::Context) -> Self::Result {
        actix::MessageResult(self.0.lock().unwrap().clone())
    }
}

#[actix_web::test]
async fn the_gateway_status_reaches_the_metrics_within_a_second_of_changing() {
    use actix::Actor as _;
    use guildhall::actors::ComponentStatus;
    use guildhall::actors::health::{self, HealthMonitor};
    let app = spawn_app().await;
    let status = std::sync::Arc::new(std::sync::Mutex::new(ComponentStatus::Connected));
    let gateway = FakeGateway(status.clone()).start();
    let metrics = Metrics::new(Registry::new()).unwrap();
    let view = health::first_view(&app.state.store, None).await;
    let _monitor = HealthMonitor::new(
        app.state.store.clone(),
        None,
        gateway.recipient(),
        app.state.broadcaster.clone(),
        metrics.clone(),
        view,
    )
    .start();
    let up = || metrics.component_up.with_label_values(&["gateway"]).get();
    let downs = || {
        metrics
            .component_transitions
            .with_label_values(&["gateway", "down"])
            .get()
    };
    assert!(eventually(Duration::from_secs(10), || async { up() == 1 }).await);

    *status.lock().unwrap() = ComponentStatus::Reconnecting {
        reason: "shard 0 is reconnecting".into(),
    };
    let changed = Instant::now();
    assert!(eventually(Duration::from_secs(5), || async { up() == 0 }).await);
    assert!(
        changed.elapsed() < Duration::from_secs(2),
        "{:?}",
        changed.elapsed()
    );
    assert_eq!(downs(), 1);

    *status.lock().unwrap() = ComponentStatus::Connected;
    assert!(eventually(Duration::from_secs(5), || async { up() == 1 }).await);
    assert_eq!(downs(), 1, "one transition per change, not per check");
}

//! Supervision and the log broadcaster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use guildhall::actors::broadcaster::{
    Broadcast, LogLine, PublishLog, PublishStatus, RING_CAPACITY, Recent, StatusEvent, Subscribe,
    Topic, Unsubscribe,
};
use guildhall::actors::{ComponentStatus, GetStatus, Restart};
use guildhall::telemetry::{BroadcastLayer, LogSink};
use reqwest::StatusCode;
use tracing_subscriber::layer::SubscriberExt;

use crate::common::{eventually, spawn_app};

fn line(message: &str) -> LogLine {
    LogLine {
        timestamp_ms: 0,
        level: "INFO".into(),
        target: "test".into(),
        message: message.into(),
        request_id: None,
    }
}

/// Collects what a subscriber receives.
struct Collector(Arc<Mutex<Vec<Broadcast>>>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Broadcast> for Collector {
    type Result = ();
    fn handle(&mut self, msg: Broadcast, _: &mut Self::Context) {
        self.0.lock().unwrap().push(msg);
    }
}

#[actix_web::test]
async fn a_failed_actor_is_restarted_by_its_supervisor_while_http_keeps_answering() {
    let app = spawn_app().await;
    let before = app
        .metric(r#"guildhall_actor_restarts_total{actor="gateway"}"#)
        .await
        .unwrap_or(0.0);
    // Keep HTTP traffic going while the actors restart.
    let traffic = {
        let (client, url) = (app.client.clone(), app.url("/health"));
        actix_web::rt::spawn(async move {
            let mut ok = 0;
            for _ in 0..200 {
                if client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK)
                {
                    ok += 1;
                }
            }
            ok
        })
    };
    app.state
        .gateway
        .send(Restart {
            reason: "test".into(),
        })
        .await
        .unwrap();
    app.state
        .broadcaster
        .send(Restart {
            reason: "test".into(),
        })
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.metric(r#"guildhall_actor_restarts_total{actor="gateway"}"#)
                .await
                .unwrap_or(0.0)
                == before + 1.0
                && app
                    .metric(r#"guildhall_actor_restarts_total{actor="broadcaster"}"#)
                    .await
                    .unwrap_or(0.0)
                    >= 1.0
        })
        .await,
        "restart counted"
    );
    // Same address, new life: it answers again with its status.
    let status = app.state.gateway.send(GetStatus).await.unwrap();
    assert_eq!(
        status,
        ComponentStatus::disabled("DISCORD_TOKEN is not set")
    );
    let recent = app.state.broadcaster.send(Recent(10)).await;
    assert!(recent.is_ok());
    assert_eq!(traffic.await.unwrap(), 200, "every request answered 200");
}

#[actix_web::test]
async fn the_broadcaster_fans_out_keeps_a_bounded_ring_and_forgets_unsubscribed_viewers() {
    let app = spawn_app().await;
    let broadcaster = &app.state.broadcaster;
    let got_a = Arc::new(Mutex::new(Vec::new()));
    let got_b = Arc::new(Mutex::new(Vec::new()));
    let a = Collector(got_a.clone()).start();
    let b = Collector(got_b.clone()).start();
    let sub_a = broadcaster
        .send(Subscribe {
            topic: Topic::Logs,
            recipient: a.recipient(),
        })
        .await
        .unwrap();
    broadcaster
        .send(Subscribe {
            topic: Topic::Status,
            recipient: b.recipient(),
        })
        .await
        .unwrap();
    broadcaster.send(PublishLog(line("one"))).await.unwrap();
    broadcaster
        .send(PublishStatus(StatusEvent {
            component: "gateway".into(),
            status: serde_json::json!({"status": "connected"}),
        }))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            got_a
                .lock()
                .unwrap()
                .iter()
                .any(|m| matches!(m, Broadcast::Log(l) if l.message == "one"))
                && got_b.lock().unwrap().len() == 1
        })
        .await
    );
    assert!(
        got_a
            .lock()
            .unwrap()
            .iter()
            .all(|m| matches!(m, Broadcast::Log(_))),
        "log viewers get no status events"
    );
    broadcaster.send(Unsubscribe(sub_a.id)).await.unwrap();
    let seen = got_a.lock().unwrap().len();
    for i in 0..(RING_CAPACITY + 50) {
        broadcaster.do_send(PublishLog(line(&format!("n{i}"))));
    }
    let recent = broadcaster.send(Recent(usize::MAX)).await.unwrap();
    assert_eq!(recent.len(), RING_CAPACITY, "the ring is bounded");
    assert_eq!(
        recent.last().unwrap().message,
        format!("n{}", RING_CAPACITY + 49)
    );
    assert_eq!(
        got_a.lock().unwrap().len(),
        seen,
        "unsubscribed viewer got nothing more"
    );
    // A late viewer gets the backlog.
    let late = broadcaster
        .send(Subscribe {
            topic: Topic::Logs,
            recipient: Collector(Arc::default()).start().recipient(),
        })
        .await
        .unwrap();
    assert_eq!(late.backlog.len(), RING_CAPACITY);
}

#[actix_web::test]
async fn the_tracing_layer_feeds_log_lines_with_their_request_id() {
    let app = spawn_app().await;
    let sink = LogSink::default();
    sink.attach(app.state.broadcaster.clone().recipient());
    let subscriber = tracing_subscriber::registry().with(BroadcastLayer::new(sink));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("HTTP request", request_id = "req-123");
        let _guard = span.enter();
        tracing::info!(guild = 42, "kicked a member");
    });
    assert!(
        eventually(Duration::from_secs(10), || async {
            app.state
                .broadcaster
                .send(Recent(50))
                .await
                .unwrap()
                .iter()
                .any(|l| {
                    l.message == "kicked a member guild=42"
                        && l.request_id.as_deref() == Some("req-123")
                        && l.level == "INFO"
                })
        })
        .await
    );
}

/// Panics raised on threads whose name starts with `prefix`, recorded by a panic hook that
/// passes every panic on to the hook it replaced (so the output is as before).
fn record_panics_on_threads(prefix: &'static str) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with(prefix))
        {
            sink.lock().unwrap().push(info.to_string());
        }
        previous(info);
    }));
    seen
}

/// A System that ends while a background actor's query is in flight (as every test's System
/// does, and a daemon's if anything outlived its shutdown) must not panic. actix drops its
/// LocalSet outside the Tokio context; a query running there dropped its pooled connection, and
/// sqlx's drop panicked ("this functionality requires a Tokio context"; tokio caught it, so it
/// was only printed). The schedule runner's scan is made to wait on a table lock, so a query is
/// surely in flight when the System ends. PostgreSQL only (SQLite readers are not blocked).
#[test]
fn a_system_ending_while_a_background_query_waits_does_not_panic() {
    if crate::common::backend() != "postgres" {
        eprintln!("skipping: needs a lock that blocks readers (GUILDHALL_TEST_DB=postgres)");
        return;
    }
    const THREAD: &str = "system-ending-mid-query";
    let panics = record_panics_on_threads(THREAD);
    let waited = std::thread::Builder::new()
        .name(THREAD.into())
        .spawn(|| {
            actix_web::rt::System::new().block_on(async {
                use sqlx::Connection;
                let app = spawn_app().await;
                let mut locker = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
                sqlx::raw_sql("BEGIN; LOCK TABLE minecraft_schedules IN ACCESS EXCLUSIVE MODE")
                    .execute(&mut locker)
                    .await
                    .unwrap();
                // The runner scans every second: wait until its query waits on the lock. The
                // System ends right after, the scan still waiting.
                crate::common::sessions_waiting_on_lock(
                    &app.db.url,
                    "%minecraft_schedules%",
                    1,
                    Duration::from_secs(30),
                )
                .await
            })
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(waited, "the runner's scan never waited on the lock");
    assert_eq!(*panics.lock().unwrap(), Vec::<String>::new());
}

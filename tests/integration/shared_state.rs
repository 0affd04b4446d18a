//! Redis-backed shared state and its in-process fallback.

use guildhall::shared::ratelimit::ManualClock;
use reqwest::StatusCode;

use crate::common::{
    eventually, proxy::Proxy, random_suffix, redis_url, spawn_app_with, spawn_app_with_clock,
};

fn redis_target(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(6379)
    )
}

/// Waits until `app` sees Redis up. At start, on a loaded machine, its first connection or
/// check can miss its timeout (500 ms, 750 ms) and report Redis down until the next check.
async fn redis_seen_up(app: &crate::common::TestApp) {
    let up = eventually(std::time::Duration::from_secs(30), || async {
        app.get_json("/ready").await.1["redis"]["status"] == "up"
    })
    .await;
    assert!(up, "{}", app.get_json("/ready").await.1);
}

#[actix_web::test]
async fn two_instances_sharing_redis_see_one_rate_limit() {
    let Some(redis) = redis_url() else { return };
    // Their own key prefix keeps other tests' counters in the shared Redis out of the way.
    let prefix = format!("test-{}", random_suffix());
    let limit = 30;
    let configure = |env: &mut std::collections::HashMap<String, String>| {
        env.insert("REDIS_URL".into(), redis.clone());
        env.insert("GUILDHALL_REDIS_PREFIX".into(), prefix.clone());
        env.insert("GUILDHALL_RATE_LIMIT_PER_MINUTE".into(), limit.to_string());
    };
    // One clock for both, standing still: the burst stays in one window however slowly it runs.
    let clock = ManualClock::at_window_start(std::time::Duration::from_secs(60));
    let a = spawn_app_with_clock(clock.clone().into(), configure).await;
    let b = spawn_app_with_clock(clock.into(), configure).await;
    redis_seen_up(&a).await;
    redis_seen_up(&b).await;

    let mut allowed = 0;
    for i in 0..(limit + 10) {
        let app = if i % 2 == 0 { &a } else { &b };
        if app.get("/sign-in").await.status() != StatusCode::TOO_MANY_REQUESTS {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, limit,
        "one limit across both instances, not one each"
    );

    // Without Redis, each instance would have counted alone: a third app on its own
    // in-process counters still has its full quota.
    let alone = spawn_app_with(|env| {
        env.insert("GUILDHALL_RATE_LIMIT_PER_MINUTE".into(), limit.to_string());
    })
    .await;
    assert_eq!(alone.get("/sign-in").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn when_redis_goes_away_the_daemon_keeps_serving_and_says_so_once() {
    let Some(redis) = redis_url() else { return };
    let proxy = Proxy::start(redis_target(&redis));
    let app = spawn_app_with(|env| {
        env.insert(
            "REDIS_URL".into(),
            format!("redis://127.0.0.1:{}/", proxy.port),
        );
        env.insert("GUILDHALL_RATE_LIMIT_PER_MINUTE".into(), "100000".into());
    })
    .await;
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
    redis_seen_up(&app).await;
    // A slow start may already have counted a transition: the outage must add exactly one.
    let transitions = |to: &'static str| {
        let app = &app;
        async move {
            app.metric(&format!(
                r#"guildhall_redis_transitions_total{{to="{to}"}}"#
            ))
            .await
            .unwrap_or(0.0)
        }
    };
    let (downs, ups) = (transitions("down").await, transitions("up").await);

    proxy.cut();
    for _ in 0..50 {
        assert_eq!(
            app.get("/").await.status(),
            StatusCode::OK,
            "served on the fallback"
        );
    }
    let (status, ready) = app.get_json("/ready").await;
    assert_eq!(status, StatusCode::OK, "redis is optional: still ready");
    assert_eq!(ready["redis"]["status"], "down");
    assert_eq!(
        transitions("down").await,
        downs + 1.0,
        "the outage is reported once, not per request"
    );
    assert_eq!(app.metric("guildhall_redis_up").await, Some(0.0));

    proxy.restore();
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            app.get("/").await;
            app.metric("guildhall_redis_up").await == Some(1.0)
        })
        .await,
        "redis is used again once it returns"
    );
    assert_eq!(transitions("up").await, ups + 1.0);
}

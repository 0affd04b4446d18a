//! Probes, metrics and the JSON error shape.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{backend, spawn_app};

#[actix_web::test]
async fn health_answers_ok_without_dependencies_and_carries_a_request_id() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    let other = app.get("/health").await;
    assert_ne!(
        other
            .headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap(),
        id
    );
}

#[actix_web::test]
async fn ready_reports_database_redis_gateway_and_rcon() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"]["status"], "up");
    assert_eq!(body["database"]["detail"], backend());
    assert_eq!(body["redis"]["status"], "not_configured");
    assert_eq!(body["gateway"]["status"], "disabled");
    assert_eq!(body["gateway"]["reason"], "DISCORD_TOKEN is not set");
    assert_eq!(body["rcon"]["status"], "disabled");
}

#[actix_web::test]
async fn ready_names_a_configured_rcon_server_and_a_set_token() {
    // The token is refused by the fake Discord (close code 4004), so the gateway fails.
    let fake = crate::common::fake_discord::FakeDiscord::start().await;
    let proxy = fake.url.clone();
    let app = crate::common::spawn_app_with(|env| {
        env.insert("RCON_HOST".into(), "127.0.0.1".into());
        env.insert("RCON_PASSWORD".into(), "minecraft-secret".into());
        env.insert("DISCORD_TOKEN".into(), "not-a-real-token".into());
        env.insert("DISCORD_PROXY_URL".into(), proxy);
    })
    .await;
    crate::common::eventually(std::time::Duration::from_secs(10), || async {
        app.get_json("/ready").await.1["gateway"]["status"] == "failed"
    })
    .await;
    let (status, body) = app.get_json("/ready").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["rcon"]["servers"]["default"]["status"].is_string(),
        "{body}"
    );
    assert!(
        body["gateway"]["reason"]
            .as_str()
            .unwrap()
            .contains("check DISCORD_TOKEN"),
        "{body}"
    );
    assert!(!body.to_string().contains("minecraft-secret"));
    assert!(!body.to_string().contains("not-a-real-token"));
}

#[actix_web::test]
async fn ready_is_503_while_the_database_is_unreachable_and_health_stays_200() {
    let app = spawn_app().await;
    app.state.store.close().await;
    // `/ready` reports what the health monitor last saw: within one check interval (250 ms);
    // the bound is room for a loaded machine, since the answer is checked below.
    crate::common::eventually(std::time::Duration::from_secs(10), || async {
        app.get("/ready").await.status() == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let (status, body) = app.get_json("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["database"]["status"], "down");
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn the_dashboard_says_what_is_not_configured() {
    let app = spawn_app().await;
    // Signed out, `/` leads to sign-in; the overview itself is tested in `pages`.
    let response = app.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.url().path().ends_with("/sign-in"));
    let token = crate::common::auth::admin_token(&app).await;
    let response = app
        .client
        .get(app.url("/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let html = response.text().await.unwrap();
    assert!(html.contains("Not configured yet"));
    assert!(html.contains("DISCORD_TOKEN is not set"));
    assert!(html.contains("RCON_HOST"));
    assert!(html.contains("REDIS_URL is not set"));
    let css = app.get("/static/css/guildhall.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[actix_web::test]
async fn errors_have_the_json_shape_with_the_right_status() {
    let app = spawn_app().await;
    let client = &app.client;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            client.get(app.url("/no/such/route")),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            client.get(app.url("/api/v1/nothing")),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            client.get(app.url("/static/../Cargo.toml")),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            client.get(app.url("/static/nope.js")),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            client.post(app.url("/health")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            client.delete(app.url("/ready")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            client
                .post(app.url("/health"))
                .body(vec![b'x'; 2 * 1024 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            client
                .put(app.url("/api/v1/anything"))
                .body(vec![0u8; 10 * 1024 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status);
        assert!(response.headers().contains_key("x-request-id"));
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let allowed = client.post(app.url("/health")).send().await.unwrap();
    assert_eq!(allowed.headers()["allow"], "GET");
}

#[actix_web::test]
async fn metrics_expose_route_patterns_process_metrics_and_uptime() {
    let app = spawn_app().await;
    app.get("/health").await;
    app.get("/static/css/guildhall.css").await;
    app.get("/no/such/thing/42").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(
            r#"guildhall_http_requests_total{endpoint="/health",method="GET",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"endpoint="/static/{path:.*}""#),
        "labelled by pattern, not path"
    );
    assert!(
        !text.contains("/no/such/thing/42"),
        "unmatched paths are masked"
    );
    assert!(text.contains("guildhall_http_requests_duration_seconds_bucket"));
    assert!(text.contains("process_resident_memory_bytes"));
    assert!(text.contains("guildhall_uptime_seconds"));
    assert!(text.contains("guildhall_audit_queue_depth"));
}

#[actix_web::test]
async fn every_route_is_rate_limited_per_client_except_probes() {
    // A clock standing still: the six requests share one window however slowly they run.
    let clock = guildhall::shared::ratelimit::ManualClock::at_window_start(
        std::time::Duration::from_secs(60),
    );
    let app = crate::common::spawn_app_with_clock(clock.into(), |env| {
        env.insert("GUILDHALL_RATE_LIMIT_PER_MINUTE".into(), "5".into());
    })
    .await;
    // One request each (`/` would redirect a signed-out client to the sign-in page: two).
    for _ in 0..5 {
        assert_ne!(
            app.get("/api/v1/auth/me").await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let limited = app.get("/api/v1/anything").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 60, "the whole window is left");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    for _ in 0..20 {
        assert_eq!(app.get("/health").await.status(), StatusCode::OK);
        assert_eq!(app.get("/ready").await.status(), StatusCode::OK);
    }
    assert_eq!(app.get("/metrics").await.status(), StatusCode::OK);
}

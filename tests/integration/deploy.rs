//! Deployment behind a reverse proxy: client addresses (`GUILDHALL_TRUSTED_PROXIES`), the
//! dedicated `/metrics` listener, IPv6 listen addresses and the data directory's permissions.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use guildhall::config::Settings;
use guildhall::startup::Application;
use guildhall::store::audit::{self as audit_store, AuditFilter};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::auth::{PASSWORD, create_user};
use crate::common::{TestApp, eventually, fresh_database, spawn_app_with, spawn_app_with_clock};

const PROXY: &str = "127.0.0.1";

async fn login_via(
    app: &TestApp,
    headers: &[(&str, &str)],
    username: &str,
    password: &str,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The address the audit log recorded for the last failed sign-in of `username`.
async fn failed_login_ip(app: &TestApp, username: &str) -> Option<String> {
    let filter = AuditFilter {
        action: Some("auth.login_failed".into()),
        limit: 50,
        ..AuditFilter::default()
    };
    let found = eventually(Duration::from_secs(10), || async {
        audit_store::list(&app.state.store, &filter)
            .await
            .unwrap()
            .iter()
            .any(|e| e.details["username"] == username)
    })
    .await;
    assert!(found, "the failed sign-in was audited");
    audit_store::list(&app.state.store, &filter)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.details["username"] == username)
        .and_then(|e| e.ip)
}

fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("guildhall_session="))
        .expect("a session cookie")
        .to_owned()
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_forwarded_client_reaches_the_audit_log_and_the_cookie() {
    let app = spawn_app_with(|env| {
        env.insert("GUILDHALL_TRUSTED_PROXIES".into(), format!("{PROXY},::1"));
    })
    .await;
    let (_, username) = create_user(&app, "proxied", &[]).await;
    // A forged chain: the client wrote 10.9.9.9; the proxy appended the address it saw.
    let forwarded = [
        ("x-forwarded-for", "10.9.9.9, 203.0.113.7"),
        ("x-forwarded-proto", "https"),
    ];
    let refused = login_via(&app, &forwarded, &username, "wrong password").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        failed_login_ip(&app, &username).await.as_deref(),
        Some("203.0.113.7")
    );

    let signed_in = login_via(&app, &forwarded, &username, PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let cookie = session_cookie(&signed_in);
    assert!(cookie.contains("Secure"), "HTTPS at the proxy: {cookie}");
}

#[actix_web::test]
async fn an_untrusted_peer_sending_forwarding_headers_is_recorded_as_itself() {
    let app = spawn_app_with(|_| {}).await;
    let (_, username) = create_user(&app, "forger", &[]).await;
    let forged = [
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=203.0.113.7;proto=https"),
    ];
    let refused = login_via(&app, &forged, &username, "wrong password").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        failed_login_ip(&app, &username).await.as_deref(),
        Some("127.0.0.1")
    );
    let signed_in = login_via(&app, &forged, &username, PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let cookie = session_cookie(&signed_in);
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP, whatever the client claims: {cookie}"
    );
}

#[actix_web::test]
async fn rate_limits_count_per_forwarded_client_only_behind_a_trusted_proxy() {
    // One request a minute, counted on a clock standing at the start of a window: however
    // slowly the requests run, a minute boundary cannot fall between them and start a new
    // window (a running clock would, once in a while).
    let limited = |trusted: bool| {
        move |env: &mut HashMap<String, String>| {
            env.insert("GUILDHALL_RATE_LIMIT_PER_MINUTE".into(), "1".into());
            if trusted {
                env.insert("GUILDHALL_TRUSTED_PROXIES".into(), PROXY.into());
            }
        }
    };
    let get = |app: &TestApp, forwarded_for: &'static str| {
        app.client
            .get(app.url("/api/openapi.json"))
            .header("x-forwarded-for", forwarded_for)
            .send()
    };

    let clock = || -> guildhall::shared::ratelimit::Clock {
        guildhall::shared::ratelimit::ManualClock::at_window_start(Duration::from_secs(60)).into()
    };
    let app = spawn_app_with_clock(clock(), limited(true)).await;
    assert_eq!(
        get(&app, "198.51.100.1").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&app, "198.51.100.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy has a budget of its own...
    assert_eq!(
        get(&app, "198.51.100.2").await.unwrap().status(),
        StatusCode::OK
    );
    // ...and a client cannot borrow one by prepending an address to the chain.
    assert_eq!(
        get(&app, "198.51.100.3, 198.51.100.1")
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // Without a trusted proxy the header is noise: every request is the peer's.
    let app = spawn_app_with_clock(clock(), limited(false)).await;
    assert_eq!(
        get(&app, "198.51.100.1").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&app, "198.51.100.2").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Builds and starts the application on `env` (over the test defaults), returning it unstarted
/// so that its ports can be read, and a handle to stop it.
async fn build(data_dir: &Path, extra: &[(&str, &str)]) -> Application {
    let mut env = HashMap::from([
        ("GUILDHALL_BIND".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "GUILDHALL_DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        ),
        ("GUILDHALL_SHUTDOWN_TIMEOUT_SECS".to_owned(), "1".to_owned()),
    ]);
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    Application::build(Settings::from_env(&env).unwrap())
        .await
        .unwrap()
}

async fn status(url: &str) -> StatusCode {
    reqwest::get(url).await.unwrap().status()
}

#[actix_web::test]
async fn metrics_on_their_own_listener_are_not_served_on_the_public_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;
    let app = build(
        dir.path(),
        &[
            ("DATABASE_URL", &db.url),
            ("GUILDHALL_METRICS_BIND", "127.0.0.1:0"),
        ],
    )
    .await;
    let (port, metrics_port) = (app.port(), app.metrics_port().unwrap());
    let handle = app.handle();
    let running = actix_web::rt::spawn(app.run_until_stopped());

    let scraped = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(
        scraped
            .text()
            .await
            .unwrap()
            .contains("guildhall_uptime_seconds")
    );
    assert_eq!(
        status(&format!("http://127.0.0.1:{port}/metrics")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(&format!("http://127.0.0.1:{port}/health")).await,
        StatusCode::OK
    );
    // The metrics listener serves nothing else.
    for path in ["/health", "/api/v1/users", "/"] {
        assert_eq!(
            status(&format!("http://127.0.0.1:{metrics_port}{path}")).await,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    // Stopping the application stops both listeners.
    handle.stop(true).await;
    running.await.unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", metrics_port)).is_err(),
        "the metrics listener closed with the application"
    );
}

#[actix_web::test]
async fn ipv6_listen_addresses_serve_requests() {
    let dual_stack =
        std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|v| v.trim() == "0");
    for (bind, v4_too) in [("[::1]:0", false), ("[::]:0", dual_stack)] {
        let dir = tempfile::tempdir().unwrap();
        let db = fresh_database(dir.path()).await;
        let app = build(
            dir.path(),
            &[("DATABASE_URL", &db.url), ("GUILDHALL_BIND", bind)],
        )
        .await;
        let port = app.port();
        let handle = app.handle();
        actix_web::rt::spawn(app.run_until_stopped());
        assert_eq!(
            status(&format!("http://[::1]:{port}/health")).await,
            StatusCode::OK,
            "{bind}"
        );
        if v4_too {
            assert_eq!(
                status(&format!("http://127.0.0.1:{port}/health")).await,
                StatusCode::OK,
                "{bind} answers IPv4 clients too"
            );
        }
        handle.stop(true).await;
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[actix_web::test]
async fn the_data_directory_is_created_0700_and_the_database_files_0600() {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = root.path().join("state/guildhall");
    // SQLite (the default database lives in the data directory) whatever the suite's engine:
    // the files are what is checked.
    let app = build(&data, &[]).await;
    let handle = app.handle();
    let running = actix_web::rt::spawn(app.run_until_stopped());
    assert_eq!(mode(&data), 0o700, "data directory");
    let mut files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    // The database, its WAL and shared memory, and the two generated keys.
    assert!(data.join("guildhall.db").exists() && data.join("jwt_secret_key").exists());
    assert!(files >= 3, "{files} files");
    handle.stop(true).await;
    running.await.unwrap().unwrap();
}

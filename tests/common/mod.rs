//! Shared test harness: `spawn_app` binds port 0 on a fresh database (a new SQLite file, or a
//! new PostgreSQL database with a random name when `GUILDHALL_TEST_DB=postgres`), runs the real
//! startup path and returns a `TestApp` with typed helpers. Also: a loopback TCP proxy that can
//! be cut to simulate a dependency going away, and helpers to run the real binary.
#![allow(dead_code)]

pub mod auth;
pub mod daemon;
pub mod fake_discord;
pub mod fake_rcon;
pub mod logs;
pub mod pages;
pub mod proxy;
pub mod status;

use std::collections::HashMap;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use guildhall::config::Settings;
use guildhall::shared::ratelimit::Clock;
use guildhall::startup::Application;
use guildhall::state::AppState;
use sqlx::Connection;

/// The engine the suite runs on: `sqlite` (default) or `postgres`.
pub fn backend() -> String {
    std::env::var("GUILDHALL_TEST_DB").unwrap_or_else(|_| "sqlite".into())
}

/// True when the test script promised real services; then a missing one is a failure, not a skip.
pub fn services_required() -> bool {
    std::env::var("GUILDHALL_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// `TEST_REDIS_URL`, or `None` (and a note) when Redis tests cannot run here.
pub fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !services_required(),
                "TEST_REDIS_URL is not set but GUILDHALL_TEST_REQUIRE_SERVICES=1"
            );
            eprintln!("skipping: TEST_REDIS_URL is not set (run scripts/test.sh)");
            None
        }
    }
}

pub fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// A database that exists only for one test.
pub struct TestDb {
    pub url: String,
    pub name: Option<String>,
}

pub async fn fresh_database(data_dir: &std::path::Path) -> TestDb {
    match backend().as_str() {
        "postgres" => {
            let admin = std::env::var("TEST_DATABASE_URL")
                .expect("GUILDHALL_TEST_DB=postgres needs TEST_DATABASE_URL");
            let name = format!("gh_test_{}", random_suffix());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to TEST_DATABASE_URL");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let mut url = url::Url::parse(&admin).expect("TEST_DATABASE_URL is a URL");
            url.set_path(&format!("/{name}"));
            TestDb {
                url: url.to_string(),
                name: Some(name),
            }
        }
        _ => TestDb {
            url: format!("sqlite://{}/guildhall.db", data_dir.display()),
            name: None,
        },
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub state: AppState,
    pub handle: ServerHandle,
    pub db: TestDb,
    pub data_dir: tempfile::TempDir,
    pub env: HashMap<String, String>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request failed")
    }

    pub async fn get_json(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self.get(path).await;
        let status = response.status();
        let body = response.json().await.expect("body is JSON");
        (status, body)
    }

    /// The value of one sample in `/metrics`, e.g. `metric("guildhall_audit_batches_total")`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.get("/metrics").await.text().await.ok()?;
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the application with extra environment applied on top of the test defaults.
pub async fn spawn_app_with(customise: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    spawn_app_with_clock(Clock::System, customise).await
}

/// As [`spawn_app_with`], with rate-limit windows counted by `clock` (a [`ManualClock`] holds
/// them still, so a burst never straddles a window boundary however slowly it runs).
///
/// [`ManualClock`]: guildhall::shared::ratelimit::ManualClock
pub async fn spawn_app_with_clock(
    clock: Clock,
    customise: impl FnOnce(&mut HashMap<String, String>),
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let db = fresh_database(data_dir.path()).await;
    let mut env = HashMap::from([
        ("GUILDHALL_BIND".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "GUILDHALL_DATA_DIR".to_owned(),
            data_dir.path().display().to_string(),
        ),
        ("DATABASE_URL".to_owned(), db.url.clone()),
        ("GUILDHALL_SHUTDOWN_TIMEOUT_SECS".to_owned(), "1".to_owned()),
    ]);
    customise(&mut env);
    let settings = Settings::from_env(&env).expect("test settings are valid");
    let app = Application::build_with_clock(settings, clock)
        .await
        .expect("app builds");
    let port = app.port();
    let state = app.state().clone();
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            // A new connection per request: a kept-alive one that sat idle for the server's
            // keep-alive (5 s, reached between slow steps on a loaded machine) can be closed by
            // the server just as it is reused, failing the request (hyper: UnexpectedMessage).
            .pool_max_idle_per_host(0)
            .build()
            .expect("client"),
        state,
        handle,
        db,
        data_dir,
        env,
    }
}

/// `SELECT COUNT(*) ...` on the app's database.
pub async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(app.state.store.pool())
        .await
        .expect("count")
}

/// The details of every audit entry of `action`, oldest first.
pub async fn audit_details(app: &TestApp, action: &str) -> Vec<serde_json::Value> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = $1 ORDER BY created_at, id",
    )
    .bind(action)
    .fetch_all(app.state.store.pool())
    .await
    .expect("audit");
    rows.iter()
        .map(|d| serde_json::from_str(d).expect("details"))
        .collect()
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The daemon binary built for these tests.
pub fn binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_guildhall"))
}

/// A free loopback port (bound then released; fine for tests that start at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until `b` is subscribed and every invalidation `a` published before this call has
/// been applied by `b`. Redis delivers one publisher's messages in order and `a` awaits each
/// publish, so once a marker `a` publishes now has been applied by `b`, so has everything `a`
/// published before it. The marker is a user id nobody has, and the barrier waits for that
/// very message: a probe entry in `b`'s cache would also vanish on an earlier message that
/// forgets everything (a role change, `b` subscribing), with later ones still in flight.
/// Without this, a message still in flight (say, from creating a user) can arrive after `b`
/// cached an entry and silently remove it.
pub async fn invalidations_delivered(a: &TestApp, b: &TestApp) {
    use guildhall::shared::invalidation::{Invalidate, Invalidation};
    use std::sync::{Arc, Mutex, Weak};

    struct Applied(Mutex<Vec<Invalidation>>);
    impl Invalidate for Applied {
        fn invalidate(&self, what: &Invalidation) {
            self.0.lock().unwrap().push(what.clone());
        }
    }

    let applied = Arc::new(Applied(Mutex::default()));
    // Registered last: `b` applies a message to this listener after its own caches.
    b.state
        .auth_cache
        .bus()
        .register(Arc::downgrade(&applied) as Weak<dyn Invalidate>);
    let marker = -1 - i64::from(rand::random::<u32>());
    // Until `b` is subscribed the markers are lost, so one is published per round. The bound
    // is only for a `b` that never subscribes; a subscribed one answers in milliseconds.
    let arrived = eventually(Duration::from_secs(30), || async {
        a.state.auth_cache.forget_user(marker).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        applied
            .0
            .lock()
            .unwrap()
            .contains(&Invalidation::User(marker))
    })
    .await;
    assert!(arrived, "the second instance never subscribed");
}

/// Waits up to `within` until at least `count` sessions of the PostgreSQL database at `url`
/// wait on a lock with a query matching `like` (SQL `LIKE`): the barrier for a test that holds a
/// lock on purpose to catch the daemon mid-query. False if they never did.
pub async fn sessions_waiting_on_lock(url: &str, like: &str, count: i64, within: Duration) -> bool {
    use sqlx::Connection;
    let db = url::Url::parse(url)
        .expect("database url")
        .path()
        .trim_start_matches('/')
        .to_owned();
    let mut probe = sqlx::PgConnection::connect(url).await.expect("connect");
    let deadline = std::time::Instant::now() + within;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
             AND wait_event_type = 'Lock' AND query LIKE $2",
        )
        .bind(&db)
        .bind(like)
        .fetch_one(&mut probe)
        .await
        .expect("pg_stat_activity");
        if waiting >= count {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

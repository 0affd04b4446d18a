//! API benchmarks (issue 3): an authenticated read against `/health` in the same run, and
//! `/health` latency during a burst of 50 concurrent sign-ins (argon2id on the blocking pool).
//!
//! `CARGO_TARGET_DIR=/work/cache/target cargo bench --bench api` (release build). Prints a
//! table; figures go in docs/performance.md. Loopback only; every loop is bounded in time.
//! `API_BENCH_REDIS_URL=redis://127.0.0.1:6379` runs the daemon with Redis as well.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{LoadResult, free_port, load, status_of};

const CONNECTIONS: usize = 64;
const ROUND: Duration = Duration::from_secs(4);
const ROUNDS: usize = 3;
const BURST_LOGINS: usize = 50;
/// `/health` clients while the sign-in burst runs (and in the quiet baseline).
const PROBE_CONNECTIONS: usize = 4;
const PROBE_WINDOW: Duration = Duration::from_secs(4);
const GUILD: &str = "123456789012345678";
const PASSWORD: &str = "benchmark passphrase 0001";

fn spawn_daemon(data_dir: &std::path::Path, port: u16) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guildhall"));
    command.env_clear();
    // The scaled-out configuration: guild configuration cached in Redis, revocations published.
    if let Ok(url) = std::env::var("API_BENCH_REDIS_URL") {
        command.env("REDIS_URL", url).env(
            "GUILDHALL_REDIS_PREFIX",
            format!("bench-{}", std::process::id()),
        );
    }
    let child = command
        .env("GUILDHALL_DATA_DIR", data_dir)
        .env("GUILDHALL_BIND", format!("127.0.0.1:{port}"))
        // The per-IP limit would throttle a load generator that is one client.
        .env("GUILDHALL_RATE_LIMIT_PER_MINUTE", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn guildhall");
    let deadline = Instant::now() + Duration::from_secs(30);
    while status_of(port, "/ready") != Some(200) {
        assert!(Instant::now() < deadline, "daemon never became ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn stop(mut child: Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
}

fn create_admin(data_dir: &std::path::Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_guildhall"))
        .args([
            "user",
            "create",
            "--username",
            "bench",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .env_clear()
        .env("GUILDHALL_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn user create");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "user create failed");
}

/// The guild the settings route reads: the bot would have recorded it on joining.
fn add_guild(data_dir: &std::path::Path) {
    use sqlx::Connection;
    let url = format!("sqlite://{}/guildhall.db", data_dir.display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(
                "INSERT INTO guilds (id, name, member_count, joined_at, updated_at) \
                 VALUES ($1, 'bench', 1, 0, 0)",
            )
            .bind(GUILD.parse::<i64>().unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
        });
}

async fn login(client: &reqwest::Client, port: u16, username: &str) -> (u16, Duration) {
    let started = Instant::now();
    let status = client
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (status, started.elapsed())
}

fn median(mut v: Vec<LoadResult>) -> LoadResult {
    v.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
    v.remove(v.len() / 2)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    // First start creates and seeds the database; then the admin is added offline.
    let port = free_port();
    stop(spawn_daemon(dir.path(), port));
    create_admin(dir.path());
    add_guild(dir.path());
    let port = free_port();
    let daemon = spawn_daemon(dir.path(), port);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    let token = runtime.block_on(async {
        let r: Value = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({ "username": "bench", "password": PASSWORD }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().expect("signed in").to_owned()
    });
    let auth = format!("Authorization: Bearer {token}\r\n");

    // The route; a benchmark of anything else would measure the wrong thing.
    let authed_path = format!("/api/v1/settings/{GUILD}");
    let settings_status = runtime.block_on(async {
        client
            .get(format!("{base}{authed_path}"))
            .bearer_auth(&token)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    });
    assert_eq!(settings_status, 200, "GET {authed_path}");

    let mut health = Vec::new();
    let mut authed = Vec::new();
    for _ in 0..ROUNDS {
        health.push(runtime.block_on(load(port, "/health", "", CONNECTIONS, ROUND)));
        authed.push(runtime.block_on(load(port, &authed_path, &auth, CONNECTIONS, ROUND)));
    }
    let health = median(health);
    let authed = median(authed);

    // Sign-in burst: 50 distinct accounts (the per-account limit would otherwise answer
    // most of them with a cheap 429), created through the API.
    let names: Vec<String> = (0..BURST_LOGINS).map(|i| format!("burst{i:02}")).collect();
    runtime.block_on(async {
        for name in &names {
            let status = client
                .post(format!("{base}/api/v1/users"))
                .bearer_auth(&token)
                .json(&json!({ "username": name, "password": PASSWORD }))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status.as_u16(), 201, "create {name}");
        }
    });
    let quiet = runtime.block_on(load(port, "/health", "", PROBE_CONNECTIONS, PROBE_WINDOW));
    let (during, logins) = runtime.block_on(async {
        let probe = tokio::spawn(load(port, "/health", "", PROBE_CONNECTIONS, PROBE_WINDOW));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let burst: Vec<_> = names
            .iter()
            .map(|n| {
                let (client, n) = (client.clone(), n.clone());
                tokio::spawn(async move { login(&client, port, &n).await })
            })
            .collect();
        let mut results = Vec::new();
        for b in burst {
            results.push(b.await.unwrap());
        }
        let burst_time = started.elapsed();
        (probe.await.unwrap(), (results, burst_time))
    });
    stop(daemon);

    let (results, burst_time) = logins;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let mut login_ms: Vec<u64> = results.iter().map(|(_, d)| d.as_millis() as u64).collect();
    login_ms.sort_unstable();
    let ratio = authed.rps() / health.rps();

    println!(
        "\n## API benchmark ({} cores, {})\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if std::env::var("API_BENCH_REDIS_URL").is_ok() {
            "SQLite + Redis"
        } else {
            "SQLite, no Redis"
        }
    );
    println!("| measurement | value | target |");
    println!("|---|---|---|");
    println!(
        "| `/health`, {CONNECTIONS} conns (median of {ROUNDS}) | {:.0} req/s, p99 {:.2} ms, {} errors | — |",
        health.rps(),
        health.percentile_ms(99.0),
        health.errors
    );
    println!(
        "| authenticated `GET {authed_path}` (Bearer JWT), {CONNECTIONS} conns (median of {ROUNDS}) | {:.0} req/s, p99 {:.2} ms, {} errors | p99 < 10 ms |",
        authed.rps(),
        authed.percentile_ms(99.0),
        authed.errors
    );
    println!(
        "| authenticated / `/health` | {:.1} % | ≥ 50 % |",
        ratio * 100.0
    );
    println!(
        "| `/health` p99, {PROBE_CONNECTIONS} conns, quiet | {:.2} ms ({:.0} req/s) | — |",
        quiet.percentile_ms(99.0),
        quiet.rps()
    );
    println!(
        "| `/health` p99, {PROBE_CONNECTIONS} conns, during {BURST_LOGINS} concurrent sign-ins | {:.2} ms ({:.0} req/s, {} errors) | < 20 ms |",
        during.percentile_ms(99.0),
        during.rps(),
        during.errors
    );
    println!(
        "| the {BURST_LOGINS} sign-ins | {ok} × 200 in {:.0} ms; per sign-in median {} ms, max {} ms | — |",
        burst_time.as_secs_f64() * 1e3,
        login_ms[login_ms.len() / 2],
        login_ms[login_ms.len() - 1]
    );
}

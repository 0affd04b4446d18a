//! API benchmarks (issue 3): an authenticated read against `/health` in the same run, and
//! `/health` latency during a burst of 50 concurrent sign-ins (argon2id on the blocking pool).
//!
//! Every endpoint is loaded twice per round, interleaved: without `Accept-Encoding` (what the
//! raw load generator sends by default) and with `Accept-Encoding: br, gzip` (what browsers and
//! most HTTP clients send), so the cost of `web::compress` on the JSON API shows beside the
//! identity figures: `/health`, the typed settings read, the guild list and the audit list
//! (3, 50 and 200 entries), plus a bare actix-web `/health` as the baseline. The load generator
//! frames responses by `Content-Length` and never decodes; each encoded body is decoded once,
//! beforehand, to check that it is the identity body, and the client's decode time is reported
//! apart from the server's figures.
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
use support::{LoadResult, fetch, free_port, load, spawn_bare_server, status_of};

const CONNECTIONS: usize = 64;
const ROUND: Duration = Duration::from_secs(4);
const ROUNDS: usize = 3;
const BURST_LOGINS: usize = 50;
/// `/health` clients while the sign-in burst runs (and in the quiet baseline).
const PROBE_CONNECTIONS: usize = 4;
const PROBE_WINDOW: Duration = Duration::from_secs(4);
const GUILD: &str = "123456789012345678";
/// The header a browser-like client sends; the empty string is the identity mode.
const ACCEPT_COMPRESSED: &str = "Accept-Encoding: br, gzip\r\n";
/// Times each sample body is decoded to time the client's side.
const DECODES: u32 = 200;
/// Audit entries written before the daemon starts (the API adds 50 more, and its sign-ins).
const SEEDED_AUDIT: usize = 250;
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

/// The guild the settings route reads (the bot would have recorded it on joining), and
/// [`SEEDED_AUDIT`] audit entries shaped like the dashboard's, so that the audit list has 200
/// entries to return.
fn seed(data_dir: &std::path::Path) {
    use sqlx::Connection;
    let url = format!("sqlite://{}/guildhall.db", data_dir.display());
    let guild = GUILD.parse::<i64>().unwrap();
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
            .bind(guild)
            .execute(&mut conn)
            .await
            .unwrap();
            let actions = [
                "settings.update",
                "moderation.kick",
                "module.enable",
                "rcon.execute",
            ];
            // Older than anything the daemon writes (ids are time-ordered), newest last.
            let base_ms: i64 = 1_764_000_000_000;
            for i in 0..SEEDED_AUDIT {
                let i = i as i64;
                let action = actions[i as usize % actions.len()];
                let details = json!({
                    "field": "prefix",
                    "from": format!("!{i}"),
                    "to": format!("?{i}"),
                    "reason": "benchmark entry, shaped like one from the dashboard",
                });
                sqlx::query(
                    "INSERT INTO audit_log (id, created_at, actor_user_id, actor_label, action, \
                     target, guild_id, ip, user_agent, request_id, details, instance) \
                     VALUES ($1, $2, $3, 'bench', $4, $5, $6, '127.0.0.1', $7, $8, $9, 'bench:1')",
                )
                // The layout of `guildhall::ids`: milliseconds since 2024-01-01 above 22 bits.
                .bind((base_ms - 1_704_067_200_000 + i) << 22)
                .bind(base_ms + i)
                .bind(1_000_000_i64 + i % 3)
                .bind(action)
                .bind(format!("member:{}", 200_000_000_000_000_000_i64 + i))
                .bind(guild)
                .bind("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
                .bind(format!("0193a1b2-c3d4-7e5f-8a9b-{i:012x}"))
                .bind(details.to_string())
                .execute(&mut conn)
                .await
                .unwrap();
            }
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

/// The body as the client reads it: decoded by its `Content-Encoding`.
fn decode(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match encoding {
        None => out.extend_from_slice(body),
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("valid brotli");
        }
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
    out
}

/// One endpoint in both modes: what was checked beforehand and the median round of each.
struct Row {
    label: &'static str,
    /// (identity, compressed)
    results: [LoadResult; 2],
    /// Content-Encoding of the compressed-mode sample, if any.
    coding: Option<String>,
    /// Client-side decode of one compressed-mode body, µs (0 when sent as it is).
    decode_us: f64,
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    // First start creates and seeds the database; then the admin is added offline.
    let port = free_port();
    stop(spawn_daemon(dir.path(), port));
    create_admin(dir.path());
    seed(dir.path());
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

    // The issue's route; a benchmark of anything else would measure the wrong thing.
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

    // Audit entries for the list endpoint: 50 accounts created through the API (also the
    // accounts of the sign-in burst below), each creation one `user.create` entry.
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

    let bare_port = free_port();
    spawn_bare_server(bare_port);

    // (label, port, path, needs the token)
    let targets: [(&'static str, u16, &str, bool); 7] = [
        ("bare actix-web `/health`", bare_port, "/health", false),
        ("`/health`", port, "/health", false),
        (
            "settings read `GET /api/v1/settings/{id}`",
            port,
            &authed_path,
            true,
        ),
        (
            "guild list `GET /api/v1/guilds`",
            port,
            "/api/v1/guilds",
            true,
        ),
        // Just over web::compress::MIN_BYTES: what compressing a small body costs.
        (
            "audit list `GET /api/v1/audit?limit=3`",
            port,
            "/api/v1/audit?limit=3",
            true,
        ),
        (
            "audit list `GET /api/v1/audit` (50)",
            port,
            "/api/v1/audit",
            true,
        ),
        (
            "audit list `GET /api/v1/audit?limit=200`",
            port,
            "/api/v1/audit?limit=200",
            true,
        ),
    ];
    let headers = |authed: bool, compressed: bool| {
        format!(
            "{}{}",
            if authed { auth.as_str() } else { "" },
            if compressed { ACCEPT_COMPRESSED } else { "" }
        )
    };

    // Check each endpoint once per mode: 200, the encoded body decodes to the identity body.
    let mut checked = Vec::new();
    for (label, port, path, authed) in targets {
        let plain = fetch(port, path, &headers(authed, false));
        assert_eq!(plain.status, 200, "GET {path}");
        assert_eq!(
            plain.header("content-encoding"),
            None,
            "GET {path} identity"
        );
        let packed = fetch(port, path, &headers(authed, true));
        assert_eq!(packed.status, 200, "GET {path} compressed");
        let coding = packed.header("content-encoding").map(str::to_owned);
        let decoded = decode(coding.as_deref(), &packed.body);
        let same = match (
            serde_json::from_slice::<Value>(&plain.body),
            serde_json::from_slice::<Value>(&decoded),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => plain.body == decoded,
        };
        assert!(
            same,
            "GET {path}: the decoded body differs from the identity body"
        );
        let decode_us = if coding.is_some() {
            let started = Instant::now();
            for _ in 0..DECODES {
                std::hint::black_box(decode(coding.as_deref(), &packed.body));
            }
            started.elapsed().as_secs_f64() * 1e6 / f64::from(DECODES)
        } else {
            0.0
        };
        checked.push((label, coding, decode_us));
    }
    let audit_entries = serde_json::from_slice::<Value>(
        &fetch(port, "/api/v1/audit?limit=200", &headers(true, false)).body,
    )
    .unwrap()["entries"]
        .as_array()
        .map_or(0, Vec::len);

    // Interleaved rounds: every endpoint in both modes per round, so all see the same load.
    let mut rounds: Vec<[Vec<LoadResult>; 2]> = targets.iter().map(|_| [vec![], vec![]]).collect();
    for _ in 0..ROUNDS {
        for (i, (_, port, path, authed)) in targets.iter().enumerate() {
            for (mode, compressed) in [false, true].into_iter().enumerate() {
                let h = headers(*authed, compressed);
                rounds[i][mode].push(runtime.block_on(load(*port, path, &h, CONNECTIONS, ROUND)));
            }
        }
    }
    let rows: Vec<Row> = rounds
        .into_iter()
        .zip(checked)
        .map(|([plain, packed], (label, coding, decode_us))| Row {
            label,
            results: [median(plain), median(packed)],
            coding,
            decode_us,
        })
        .collect();
    let health = &rows[1].results[0];
    let authed = &rows[2].results[0];

    // Sign-in burst: the 50 distinct accounts created above (the per-account limit would
    // otherwise answer most of them with a cheap 429).
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

    print_compression(&rows, audit_entries);
}

fn print_compression(rows: &[Row], audit_entries: usize) {
    println!(
        "\n### Identity vs `{}` ({CONNECTIONS} conns, median of {ROUNDS} interleaved rounds of {} s)\n",
        ACCEPT_COMPRESSED.trim_end(),
        ROUND.as_secs()
    );
    println!(
        "The audit log held {audit_entries} entries (`?limit=200` returns at most 200). Bytes are per response as read off the socket; the client never decodes during the load."
    );
    println!();
    println!(
        "| endpoint | mode | req/s | p50 ms | p99 ms | errors | body bytes sent | response bytes (with headers) | encoded | compressed ÷ identity (req/s) | client decode µs |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|");
    for row in rows {
        for (mode, r) in row.results.iter().enumerate() {
            let (mode_name, encoded, ratio, decode) = if mode == 0 {
                (
                    "identity".to_owned(),
                    "—".to_owned(),
                    String::new(),
                    String::new(),
                )
            } else {
                (
                    "br, gzip".to_owned(),
                    match &row.coding {
                        Some(c) => format!("{c} ({} of {})", r.encoded, r.requests),
                        None => format!("no ({} of {})", r.encoded, r.requests),
                    },
                    format!("{:.1} %", r.rps() / row.results[0].rps() * 100.0),
                    if row.coding.is_some() {
                        format!("{:.1}", row.decode_us)
                    } else {
                        "—".to_owned()
                    },
                )
            };
            println!(
                "| {} | {mode_name} | {:.0} | {:.2} | {:.2} | {} | {:.0} | {:.0} | {encoded} | {ratio} | {decode} |",
                row.label,
                r.rps(),
                r.percentile_ms(50.0),
                r.percentile_ms(99.0),
                r.errors,
                r.body_bytes_each(),
                r.response_bytes_each(),
            );
        }
    }
    println!();
    println!("| ratio | identity | br, gzip | target |");
    println!("|---|---:|---:|---|");
    let ratio = |a: usize, b: usize, mode: usize| {
        rows[a].results[mode].rps() / rows[b].results[mode].rps() * 100.0
    };
    let line = |name: &str, a: usize, b: usize, target: &str| {
        println!(
            "| {name} | {:.1} % | {:.1} % | {target} |",
            ratio(a, b, 0),
            ratio(a, b, 1)
        );
    };
    line("`/health` ÷ bare actix-web `/health`", 1, 0, "≥ 80 %");
    line("settings read ÷ `/health`", 2, 1, "≥ 50 %");
    line("guild list ÷ `/health`", 3, 1, "—");
    line("audit list (3) ÷ `/health`", 4, 1, "—");
    line("audit list (50) ÷ `/health`", 5, 1, "—");
    line("audit list (200) ÷ `/health`", 6, 1, "—");
}

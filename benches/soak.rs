//! Soak under faults (issue 13): guildhall as its own process on PostgreSQL + Redis (each
//! reached through a cuttable proxy), with the fake Discord and the fake RCON server, under
//! steady load (settings writes, RCON commands, status reads, a `/ws/logs` and a `/ws/status`
//! viewer) and one fault a minute, in turn: PostgreSQL cut for 15 s, Redis cut for 10 s, the
//! Minecraft server refusing connections for 15 s, the Discord gateway refusing connections for
//! 20 s (its open sessions dropped), and guildhall SIGKILLed and restarted.
//!
//! Prints per fault the detection delay (fault → `/ready` shows it), the recovery time
//! (dependency back → `/ready` shows it up), the errors the load saw, and what the gateway did
//! meanwhile (IDENTIFYs and RESUMEs the fake Discord received, connection attempts it refused,
//! and for the gateway fault the delay from the gateway accepting connections again to the
//! fake sending RESUMED); then acknowledged writes
//! without an audit entry (must be 0), the final value against the last acknowledged write,
//! memory per minute and log lines by level against the errors the load saw.
//!
//! `cargo bench --bench soak` runs 10 minutes; `SOAK_SECS=300 cargo bench --bench soak` (or
//! `cargo bench --bench soak -- --secs 300`) runs five, one fault of each kind. `--faults
//! gateway,redis` (or `SOAK_FAULTS`) runs only those kinds, in turn: `cargo test --bench soak --
//! --secs 60 --faults gateway` checks one gateway fault in a debug build in a minute. Needs
//! PostgreSQL and Redis: `SOAK_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/postgres,
//! an admin connection; a fresh database is created) and `SOAK_REDIS_URL` (default
//! redis://127.0.0.1:6379).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/common/fake_discord/mod.rs"]
mod fake_discord;
#[path = "../tests/common/fake_rcon.rs"]
mod fake_rcon;
#[path = "../tests/common/proxy.rs"]
mod proxy;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_discord::{FakeDiscord, TOKEN, standard_guild};
use fake_rcon::FakeRcon;
use proxy::Proxy;
use serde_json::{Value, json};
use sqlx::Connection;

const GUILD: u64 = 1_300_000_000_000_000_000;
const RCON_PASSWORD: &str = "soak-rcon-password";
const ADMIN_PASSWORD: &str = "soak-admin-password-1";

/// `--name value` from the command line, else the environment variable.
fn parameter(flag: &str, variable: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == flag)
        .map(|w| w[1].clone())
        .or_else(|| std::env::var(variable).ok())
}

fn duration() -> Duration {
    let secs = parameter("--secs", "SOAK_SECS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(600u64);
    Duration::from_secs(secs)
}

/// The kinds of fault to inject, in turn (all by default).
fn faults() -> Vec<Fault> {
    let Some(names) = parameter("--faults", "SOAK_FAULTS") else {
        return Fault::ALL.to_vec();
    };
    let chosen: Vec<Fault> = names
        .split(',')
        .map(|name| {
            Fault::ALL
                .into_iter()
                .find(|f| f.key() == name.trim())
                .unwrap_or_else(|| {
                    panic!("unknown fault {name:?}: database, redis, minecraft, gateway, guildhall")
                })
        })
        .collect();
    assert!(!chosen.is_empty(), "--faults names no fault");
    chosen
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Database,
    Redis,
    Minecraft,
    Gateway,
    Guildhall,
}

impl Fault {
    const ALL: [Fault; 5] = [
        Fault::Database,
        Fault::Redis,
        Fault::Minecraft,
        Fault::Gateway,
        Fault::Guildhall,
    ];

    fn outage(self) -> Duration {
        match self {
            Fault::Database | Fault::Minecraft => Duration::from_secs(15),
            Fault::Redis => Duration::from_secs(10),
            Fault::Gateway => Duration::from_secs(20),
            Fault::Guildhall => Duration::from_secs(2),
        }
    }

    fn key(self) -> &'static str {
        match self {
            Fault::Database => "database",
            Fault::Redis => "redis",
            Fault::Minecraft => "minecraft",
            Fault::Gateway => "gateway",
            Fault::Guildhall => "guildhall",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Fault::Database => "PostgreSQL cut 15 s",
            Fault::Redis => "Redis cut 10 s",
            Fault::Minecraft => "Minecraft refuses 15 s",
            Fault::Gateway => "gateway refuses 20 s",
            Fault::Guildhall => "guildhall SIGKILL + restart",
        }
    }

    /// Whether `/ready` shows this component up.
    fn up_in(self, ready: &Value) -> bool {
        match self {
            Fault::Database | Fault::Guildhall => ready["database"]["status"] == "up",
            Fault::Redis => ready["redis"]["status"] == "up",
            Fault::Minecraft => ready["rcon"]["servers"]["default"]["status"] == "connected",
            Fault::Gateway => ready["gateway"]["status"] == "connected",
        }
    }
}

/// What the load saw, by kind and status (0: no answer).
#[derive(Default)]
struct Outcomes {
    by_kind: Mutex<BTreeMap<(&'static str, u16), u64>>,
}

impl Outcomes {
    fn add(&self, kind: &'static str, status: u16) {
        *self
            .by_kind
            .lock()
            .unwrap()
            .entry((kind, status))
            .or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<(&'static str, u16), u64> {
        self.by_kind.lock().unwrap().clone()
    }
}

/// 2xx, or 101 for a viewer's WebSocket handshake.
fn is_success(status: u16) -> bool {
    (200..300).contains(&status) || status == 101
}

fn errors_between(
    before: &BTreeMap<(&'static str, u16), u64>,
    after: &BTreeMap<(&'static str, u16), u64>,
) -> String {
    let mut parts = Vec::new();
    for ((kind, status), n) in after {
        let was = before.get(&(*kind, *status)).copied().unwrap_or(0);
        if !is_success(*status) && *n > was {
            parts.push(format!("{kind} {status}×{}", n - was));
        }
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

#[derive(Default)]
struct LogCounts {
    by_level: Mutex<BTreeMap<String, u64>>,
    /// The ERROR lines' messages: each should be an outage an operator must act on.
    errors: Mutex<Vec<String>>,
    refused_lines: AtomicU64,
}

struct Daemon {
    env: Vec<(String, String)>,
    child: Option<Child>,
    logs: Arc<LogCounts>,
    port: u16,
}

impl Daemon {
    fn spawn(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_guildhall"))
            .arg("serve")
            .envs(self.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start guildhall");
        let stderr = child.stderr.take().unwrap();
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let level = v["level"].as_str().unwrap_or("?").to_owned();
                *logs
                    .by_level
                    .lock()
                    .unwrap()
                    .entry(level.clone())
                    .or_default() += 1;
                let message = v["fields"]["message"].as_str().unwrap_or_default();
                if level == "ERROR" {
                    logs.errors.lock().unwrap().push(message.to_owned());
                }
                if message == "request refused" || message == "request failed" {
                    logs.refused_lines.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        self.child = Some(child);
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM; true when it exits 0 within `within`.
    fn terminate(&mut self, within: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        false
    }

    fn rss_mib(&self) -> f64 {
        let Some(pid) = self.pid() else { return 0.0 };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / 1024.0)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn host_port(url: &str, default: u16) -> String {
    let url = url::Url::parse(url).unwrap();
    format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port().unwrap_or(default)
    )
}

/// The fake Discord on a thread (and actix system) of its own, as Discord is remote.
fn start_fake_discord() -> FakeDiscord {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            tx.send(FakeDiscord::start().await).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

async fn ready(client: &reqwest::Client, base: &str) -> Option<(u16, Value)> {
    let response = client
        .get(format!("{base}/ready"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

/// Polls `/ready` every 100 ms until `check` holds; the time it took, or `None` by `within`.
async fn until_ready(
    client: &reqwest::Client,
    base: &str,
    within: Duration,
    check: impl Fn(&Value) -> bool,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some((_, body)) = ready(client, base).await
            && check(&body)
        {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// What the fake Discord's gateway saw, to tell resumes from new sessions.
#[derive(Clone, Copy)]
struct GatewayCounts {
    identifies: usize,
    resumes: u32,
    refused: usize,
}

impl GatewayCounts {
    fn of(fake: &FakeDiscord) -> Self {
        Self {
            identifies: fake.identifies(),
            resumes: fake.resumes(),
            refused: fake.refused_connections(),
        }
    }

    fn since(self, before: Self) -> String {
        format!(
            "IDENTIFY +{}, RESUME +{}, refused connections +{}",
            self.identifies - before.identifies,
            self.resumes - before.resumes,
            self.refused - before.refused
        )
    }
}

fn main() {
    let total = duration();
    let faults = faults();
    let admin_db = std::env::var("SOAK_DATABASE_URL")
        .unwrap_or("postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis_url = std::env::var("SOAK_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());

    let fake = Arc::new(start_fake_discord());
    fake.add_guild(standard_guild(GUILD));
    let mut rcon = FakeRcon::start(RCON_PASSWORD);
    let pg_proxy = Proxy::start(host_port(&admin_db, 5432));
    let redis_proxy = Proxy::start(host_port(&redis_url, 6379));
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    actix_web::rt::System::new().block_on(async move {
        // A fresh database, reached through the proxy.
        let name = format!("gh_soak_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&admin_db).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut direct = url::Url::parse(&admin_db).unwrap();
        direct.set_path(&format!("/{name}"));
        let mut via_proxy = direct.clone();
        via_proxy.set_host(Some("127.0.0.1")).unwrap();
        via_proxy.set_port(Some(pg_proxy.port)).unwrap();

        let env: Vec<(String, String)> = vec![
            ("GUILDHALL_BIND".into(), format!("127.0.0.1:{port}")),
            ("GUILDHALL_DATA_DIR".into(), data_dir.path().display().to_string()),
            ("DATABASE_URL".into(), via_proxy.to_string()),
            ("REDIS_URL".into(), format!("redis://127.0.0.1:{}/", redis_proxy.port)),
            ("GUILDHALL_REDIS_PREFIX".into(), format!("soak{}", std::process::id())),
            ("DISCORD_TOKEN".into(), TOKEN.into()),
            ("DISCORD_PROXY_URL".into(), fake.url.clone()),
            ("RCON_HOST".into(), "127.0.0.1".into()),
            ("RCON_PORT".into(), rcon.port.to_string()),
            ("RCON_PASSWORD".into(), RCON_PASSWORD.into()),
            ("GUILDHALL_RCON_TIMEOUT_MS".into(), "2000".into()),
            ("GUILDHALL_RATE_LIMIT_PER_MINUTE".into(), "1000000".into()),
            ("LOG_FORMAT".into(), "json".into()),
            ("RUST_LOG".into(), "info".into()),
        ];
        // The admin account, made by the CLI before the daemon starts.
        let mut create = Command::new(env!("CARGO_BIN_EXE_guildhall"))
            .args(["user", "create", "--username", "soak", "--role", "admin", "--password-stdin"])
            .envs(env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        create
            .stdin
            .take()
            .unwrap()
            .write_all(ADMIN_PASSWORD.as_bytes())
            .unwrap();
        assert!(create.wait().unwrap().success(), "guildhall user create failed");

        let logs = Arc::new(LogCounts::default());
        let mut daemon = Daemon {
            env,
            child: None,
            logs: logs.clone(),
            port,
        };
        daemon.spawn();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        until_ready(&client, &base, Duration::from_secs(60), |r| {
            r["status"] == "ready" && r["gateway"]["status"] == "connected"
        })
        .await
        .expect("guildhall did not become ready with the gateway connected");
        let login: Value = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "soak", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().expect("access token").to_owned();

        // ---- steady load ----
        let outcomes = Arc::new(Outcomes::default());
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let last_acked = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            let (outcomes, stop) = (outcomes.clone(), stop.clone());
            let (acked, last_acked) = (acked.clone(), last_acked.clone());
            tasks.push(actix_web::rt::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let status = client
                        // PATCH: only this setting (a PUT must carry the whole representation).
                        .patch(format!("{base}/api/v1/settings/{GUILD}"))
                        .bearer_auth(&token)
                        .json(&json!({"welcome_message": format!("soak-{n}")}))
                        .send()
                        .await
                        .map_or(0, |r| r.status().as_u16());
                    outcomes.add("settings", status);
                    if status == 200 {
                        acked.fetch_add(1, Ordering::Relaxed);
                        last_acked.store(n, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }));
        }
        for (kind, every) in [("rcon", 200u64), ("status", 200)] {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            let (outcomes, stop) = (outcomes.clone(), stop.clone());
            tasks.push(actix_web::rt::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let request = if kind == "rcon" {
                        client
                            .post(format!("{base}/api/v1/minecraft/servers/default/command"))
                            .json(&json!({"command": format!("echo {n}")}))
                    } else {
                        client.get(format!("{base}/api/v1/bot/status"))
                    };
                    let status = request
                        .bearer_auth(&token)
                        .send()
                        .await
                        .map_or(0, |r| r.status().as_u16());
                    outcomes.add(kind, status);
                    tokio::time::sleep(Duration::from_millis(every)).await;
                }
            }));
        }
        let viewed = Arc::new(AtomicU64::new(0));
        for path in ["/ws/logs", "/ws/status"] {
            let (token, stop, viewed) = (token.clone(), stop.clone(), viewed.clone());
            let outcomes = outcomes.clone();
            tasks.push(actix_web::rt::spawn(async move {
                use futures_util::StreamExt;
                use tokio_tungstenite::tungstenite::client::IntoClientRequest;
                while !stop.load(Ordering::Relaxed) {
                    let mut request = format!("ws://127.0.0.1:{port}{path}")
                        .into_client_request()
                        .unwrap();
                    request.headers_mut().insert(
                        "authorization",
                        format!("Bearer {token}").parse().unwrap(),
                    );
                    let connected = tokio_tungstenite::connect_async(request).await;
                    outcomes.add(
                        "viewer",
                        match &connected {
                            Ok(_) => 101,
                            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                                r.status().as_u16()
                            }
                            Err(_) => 0,
                        },
                    );
                    if let Ok((mut ws, _)) = connected {
                        while let Ok(Some(Ok(_))) =
                            tokio::time::timeout(Duration::from_secs(1), ws.next()).await
                        {
                            viewed.fetch_add(1, Ordering::Relaxed);
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }));
        }

        // ---- faults, one a minute, 30 s into each minute ----
        let started = Instant::now();
        let mut memory = Vec::new();
        let mut report = Vec::new();
        let mut minute = 0u32;
        while started.elapsed() + Duration::from_secs(5) < total {
            let minute_start = started + Duration::from_secs(60 * u64::from(minute));
            tokio::time::sleep_until((minute_start + Duration::from_secs(30)).into()).await;
            if started.elapsed() + Duration::from_secs(25) > total {
                break;
            }
            memory.push((minute, daemon.rss_mib()));
            let fault = faults[minute as usize % faults.len()];
            let before = outcomes.snapshot();
            let gateway_before = GatewayCounts::of(&fake);
            let injected = Instant::now();
            let (detected, recovery) = match fault {
                Fault::Guildhall => {
                    daemon.kill9();
                    tokio::time::sleep(fault.outage()).await;
                    let restarted = Instant::now();
                    daemon.spawn();
                    let back = until_ready(&client, &base, Duration::from_secs(60), |r| {
                        r["status"] == "ready"
                    })
                    .await;
                    (None, back.map(|_| restarted.elapsed()))
                }
                _ => {
                    match fault {
                        Fault::Database => pg_proxy.cut(),
                        Fault::Redis => redis_proxy.cut(),
                        Fault::Minecraft => rcon.refuse(),
                        // Open sessions drop; every connection attempt is refused (503).
                        Fault::Gateway => fake.gateway_refuses(),
                        Fault::Guildhall => {}
                    }
                    let detected =
                        until_ready(&client, &base, fault.outage(), |r| !fault.up_in(r)).await;
                    let remaining = fault.outage().saturating_sub(injected.elapsed());
                    tokio::time::sleep(remaining).await;
                    match fault {
                        Fault::Database => pg_proxy.restore(),
                        Fault::Redis => redis_proxy.restore(),
                        Fault::Minecraft => rcon.come_back(),
                        Fault::Gateway => fake.gateway_back(),
                        Fault::Guildhall => {}
                    }
                    let back =
                        until_ready(&client, &base, Duration::from_secs(60), |r| fault.up_in(r))
                            .await;
                    (detected, back)
                }
            };
            // Errors seen from the fault until a second after recovery.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let errors = errors_between(&before, &outcomes.snapshot());
            let mut gateway = GatewayCounts::of(&fake).since(gateway_before);
            if fault == Fault::Gateway {
                let resumed = fake
                    .recovery_after_back()
                    .map_or("—".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()));
                gateway = format!("{gateway}; RESUMED {resumed} after it was back");
            }
            report.push((minute, fault, detected, recovery, errors, gateway));
            minute += 1;
        }
        let elapsed = started.elapsed();
        memory.push((minute, daemon.rss_mib()));
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }

        // ---- the end: nothing lost? ----
        let acked = acked.load(Ordering::Relaxed);
        let last = last_acked.load(Ordering::Relaxed);
        let (_, settings) = {
            let r = client
                .get(format!("{base}/api/v1/settings/{GUILD}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or_default())
        };
        let final_value = settings["settings"]["welcome_message"]
            .as_str()
            .or_else(|| settings["welcome_message"].as_str())
            .unwrap_or_default()
            .to_owned();
        let sigterm_clean = daemon.terminate(Duration::from_secs(20));
        let mut conn = sqlx::PgConnection::connect(direct.as_str()).await.unwrap();
        let audited: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'settings.update'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        drop(conn);

        println!();
        println!(
            "soak: {:.0} s, one fault a minute (30 s in); PostgreSQL + Redis through cuttable proxies, fake Discord, fake RCON",
            elapsed.as_secs_f64()
        );
        println!();
        println!(
            "| minute | fault | detected after | recovered after it returned | errors the load saw | gateway meanwhile |"
        );
        println!("|---|---|---|---|---|---|");
        let ms = |d: Option<Duration>| {
            d.map_or("—".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
        };
        for (minute, fault, detected, recovered, errors, gateway) in &report {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                minute + 1,
                fault.name(),
                if *fault == Fault::Guildhall {
                    "(process gone)".to_owned()
                } else {
                    ms(*detected)
                },
                ms(*recovered),
                errors,
                gateway
            );
        }
        println!();
        let totals = outcomes.snapshot();
        let load_errors: u64 = totals
            .iter()
            .filter(|((_, s), _)| !is_success(*s))
            .map(|(_, n)| n)
            .sum();
        let load_total: u64 = totals.values().sum();
        println!("| measure | value |");
        println!("|---|---|");
        println!("| requests by the load | {load_total} |");
        println!(
            "| …answered with an error (0: no answer) | {load_errors}: {} |",
            totals
                .iter()
                .filter(|((_, s), _)| !is_success(*s))
                .map(|((k, s), n)| format!("{k} {s}×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("| acknowledged settings writes | {acked} |");
        println!("| settings.update audit entries | {audited} |");
        println!(
            "| acknowledged writes without an audit entry | {} |",
            acked.saturating_sub(u64::try_from(audited).unwrap_or(0))
        );
        println!(
            "| final value vs last acknowledged | `{final_value}` vs `soak-{last}` ({}) |",
            if final_value == format!("soak-{last}") {
                "equal"
            } else {
                "a later write, unacknowledged when the process died, or lost"
            }
        );
        println!(
            "| memory (RSS, MiB) per minute | {} |",
            memory
                .iter()
                .map(|(m, mib)| format!("{m}: {mib:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "| log lines by level | {} |",
            logs.by_level
                .lock()
                .unwrap()
                .iter()
                .map(|(l, n)| format!("{l} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "| request-error log lines vs errors the load saw (no answer excluded) | {} vs {} |",
            logs.refused_lines.load(Ordering::Relaxed),
            totals
                .iter()
                .filter(|((_, s), _)| *s >= 400)
                .map(|(_, n)| n)
                .sum::<u64>()
        );
        println!(
            "| ERROR lines | {} |",
            logs.errors.lock().unwrap().join("; ")
        );
        println!(
            "| live viewers' messages | {} |",
            viewed.load(Ordering::Relaxed)
        );
        println!(
            "| SIGTERM at the end | {} |",
            if sigterm_clean { "clean exit (0)" } else { "not clean" }
        );

        let mut admin = sqlx::PgConnection::connect(&admin_db).await.unwrap();
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
        )))
        .execute(&mut admin)
        .await;
    });
}

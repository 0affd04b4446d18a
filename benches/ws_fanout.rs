//! `/ws/logs` fan-out (issue 9): 2,000 concurrent viewers on loopback while the daemon emits
//! log lines at a fixed rate. The daemon and the client run in this one process (the client on
//! its own runtime threads, named `ws-client`), so they share the machine's cores as the issue
//! asks, and the CPU split is read per thread from /proc.
//!
//! Phases: 100 lines/s (every line must reach every viewer; p99 delivery latency from emission,
//! measured on every 20th viewer), then rising rates until a rate where some viewer misses a
//! line; then the same two figures again with one stalled viewer (a socket that never reads)
//! among the 2,000. The daemon's resident memory is printed after each phase.
//!
//! `CARGO_TARGET_DIR=… cargo bench --bench ws_fanout` (release). `WS_BENCH_VIEWERS` and
//! `WS_BENCH_SECONDS` override the defaults (2,000 viewers, 6 s per phase).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use guildhall::actors::broadcaster::{LogBroadcaster, LogLine, PublishLog};
use guildhall::auth::tokens::{self, Extra, TokenType};
use guildhall::config::Settings;
use guildhall::startup::Application;
use secrecy::SecretString;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SAMPLE_EVERY: usize = 20;
const RATES: &[u64] = &[100, 200, 300, 500, 750, 1_000, 1_500, 2_000];
const SETTLE: Duration = Duration::from_secs(2);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What every viewer saw, by phase.
struct Tally {
    /// `lines[viewer * PHASES + phase]`
    lines: Vec<AtomicU64>,
    missed: Vec<AtomicU64>,
    latencies_us: std::sync::Mutex<Vec<u64>>,
    closed: AtomicU64,
}

const PHASES: usize = 32;

impl Tally {
    fn new(viewers: usize) -> Self {
        let counters = || (0..viewers * PHASES).map(|_| AtomicU64::new(0)).collect();
        Tally {
            lines: counters(),
            missed: counters(),
            latencies_us: std::sync::Mutex::new(Vec::new()),
            closed: AtomicU64::new(0),
        }
    }
}

fn base() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn micros_now() -> u64 {
    base().elapsed().as_micros() as u64
}

/// `phase` and emission time are in the message: `p=3 t=123456 …`.
fn parse_tag(frame: &str) -> Option<(usize, u64)> {
    let at = frame.find("\"message\":\"p=")? + "\"message\":\"p=".len();
    let rest = &frame[at..];
    let (phase, rest) = rest.split_once(" t=")?;
    let t = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    Some((phase.parse().ok()?, t.parse().ok()?))
}

async fn viewer(port: u16, token: String, index: usize, tally: Arc<Tally>) {
    let mut request = format!("ws://127.0.0.1:{port}/ws/logs")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("viewer connects");
    let sampled = index.is_multiple_of(SAMPLE_EVERY);
    let mut phase_of_missed = 0usize;
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        if text.starts_with(r#"{"type":"missed""#) {
            tally.missed[index * PHASES + phase_of_missed.min(PHASES - 1)]
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if let Some((phase, t)) = parse_tag(&text) {
            phase_of_missed = phase;
            tally.lines[index * PHASES + phase.min(PHASES - 1)].fetch_add(1, Ordering::Relaxed);
            if sampled {
                let latency = micros_now().saturating_sub(t);
                tally.latencies_us.lock().unwrap().push(latency);
            }
        }
    }
    tally.closed.fetch_add(1, Ordering::Relaxed);
}

/// A viewer that connects and never reads: its socket buffers fill and it falls behind.
async fn stalled_viewer(port: u16, token: String, hold: Arc<AtomicBool>) {
    let mut request = format!("ws://127.0.0.1:{port}/ws/logs")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    let (ws, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    while hold.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(ws);
}

/// CPU seconds used so far by this process's threads, split into the client's and the rest.
fn cpu_split() -> (f64, f64) {
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let (mut client, mut daemon) = (0.0, 0.0);
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let used = fields
            .get(11)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            + fields
                .get(12)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        if comm.trim().starts_with("ws-client") {
            client += used / ticks;
        } else {
            daemon += used / ticks;
        }
    }
    (daemon, client)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct PhaseResult {
    rate: u64,
    emitted: u64,
    all_kept_up: bool,
    short_viewers: usize,
    viewers_told_missed: usize,
    p50_ms: f64,
    p99_ms: f64,
    daemon_cpu: f64,
    client_cpu: f64,
    seconds: f64,
    rss_mib: f64,
}

/// Emits `rate` lines/s for `seconds` on the daemon's runtime, then waits for delivery.
async fn phase(
    broadcaster: &actix::Addr<LogBroadcaster>,
    tally: &Tally,
    viewers: usize,
    phase: usize,
    rate: u64,
    seconds: u64,
) -> PhaseResult {
    tally.latencies_us.lock().unwrap().clear();
    let (daemon_before, client_before) = cpu_split();
    let started = Instant::now();
    let total = rate * seconds;
    let mut emitted = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while emitted < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while emitted < due {
            broadcaster.do_send(PublishLog(LogLine {
                timestamp_ms: guildhall::ids::now_ms(),
                level: "INFO".into(),
                target: "guildhall::bench".into(),
                message: format!(
                    "p={phase} t={} line {emitted} of the benchmark",
                    micros_now()
                ),
                request_id: None,
            }));
            emitted += 1;
        }
    }
    let elapsed = started.elapsed();
    // Delivery finishes within the settle window for every viewer that keeps up.
    let settle_until = Instant::now() + SETTLE;
    while Instant::now() < settle_until {
        let done = (0..viewers)
            .all(|v| tally.lines[v * PHASES + phase].load(Ordering::Relaxed) >= emitted);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (daemon_after, client_after) = cpu_split();
    let short_viewers = (0..viewers)
        .filter(|v| tally.lines[v * PHASES + phase].load(Ordering::Relaxed) < emitted)
        .count();
    let viewers_told_missed = (0..viewers)
        .filter(|v| tally.missed[v * PHASES + phase].load(Ordering::Relaxed) > 0)
        .count();
    let latencies = tally.latencies_us.lock().unwrap().clone();
    let seconds_f = elapsed.as_secs_f64();
    PhaseResult {
        rate,
        emitted,
        all_kept_up: short_viewers == 0 && viewers_told_missed == 0,
        short_viewers,
        viewers_told_missed,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        // Per second of emission (the settle window's idle time is included, as it is small).
        daemon_cpu: (daemon_after - daemon_before) / seconds_f,
        client_cpu: (client_after - client_before) / seconds_f,
        seconds: seconds_f,
        rss_mib: rss_mib(),
    }
}

fn percentile(samples: &[u64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

fn print(label: &str, viewers: usize, r: &PhaseResult) {
    println!(
        "| {label:<22} | {:>6} | {:>10.0} | {:>5} | {:>5} | {:>7.1} | {:>7.1} | {:>6.2} | {:>6.2} | {:>6.1} |",
        r.rate,
        r.emitted as f64 * viewers as f64 / r.seconds,
        if r.all_kept_up { "yes" } else { "NO" },
        r.short_viewers.max(r.viewers_told_missed),
        r.p50_ms,
        r.p99_ms,
        r.daemon_cpu,
        r.client_cpu,
        r.rss_mib,
    );
}

fn main() {
    let viewers = env_or("WS_BENCH_VIEWERS", 2_000) as usize;
    let seconds = env_or("WS_BENCH_SECONDS", 6);
    let _ = base();
    let data_dir = tempfile::tempdir().unwrap();
    let env: HashMap<String, String> = HashMap::from([
        ("GUILDHALL_BIND".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "GUILDHALL_DATA_DIR".to_owned(),
            data_dir.path().display().to_string(),
        ),
        ("GUILDHALL_RATE_LIMIT_PER_MINUTE".to_owned(), "0".to_owned()),
        ("GUILDHALL_SHUTDOWN_TIMEOUT_SECS".to_owned(), "1".to_owned()),
    ]);
    let settings = Settings::from_env(&env).expect("settings");

    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ws-client")
        .enable_all()
        .build()
        .unwrap();
    let tally = Arc::new(Tally::new(viewers));
    let spawner = client.handle().clone();

    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await.expect("app");
        let port = app.port();
        let state = app.state().clone();
        let handle = app.handle();
        let served = actix_web::rt::spawn(app.run_until_stopped());
        let user = guildhall::store::users::create(
            &state.store,
            "bench",
            &guildhall::auth::password::hash(&SecretString::from("bench passphrase 0001"))
                .unwrap(),
            None,
        )
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO role_grants (user_id, role_id, guild_id, created_at) \
             SELECT $1, id, 0, 0 FROM roles WHERE name = 'admin'",
        )
        .bind(user.id)
        .execute(state.store.pool())
        .await
        .unwrap();
        let token = tokens::issue(
            &state.secrets.jwt_secret_key,
            TokenType::Access,
            user.id,
            0,
            tokens::ACCESS_TTL,
            Extra::default(),
        )
        .unwrap()
        .0;

        // Connect every viewer, a few at a time.
        let connecting = Instant::now();
        for index in 0..viewers {
            let (token, tally) = (token.clone(), tally.clone());
            spawner.spawn(viewer(port, token, index, tally));
            if (index + 1).is_multiple_of(50) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Wait until every viewer is joined: a probe line reaches all of them.
        let probe_phase = PHASES - 1;
        let mut joined = false;
        for _ in 0..60 {
            state.broadcaster.do_send(PublishLog(LogLine {
                timestamp_ms: 0,
                level: "INFO".into(),
                target: "bench".into(),
                message: format!("p={probe_phase} t=0 probe"),
                request_id: None,
            }));
            tokio::time::sleep(Duration::from_millis(500)).await;
            if (0..viewers).all(|v| tally.lines[v * PHASES + probe_phase].load(Ordering::Relaxed) > 0) {
                joined = true;
                break;
            }
        }
        assert!(joined, "not every viewer connected");
        println!(
            "{viewers} viewers connected in {:.1} s; {seconds} s per phase; rss {:.1} MiB",
            connecting.elapsed().as_secs_f64(),
            rss_mib()
        );
        println!();
        println!(
            "| phase                  | lines/s | deliveries/s | kept up | short | p50 ms | p99 ms | daemon CPU | client CPU | RSS MiB |"
        );
        println!("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|");
        let mut next_phase = 0;
        let mut run = |label: String, rate: u64| {
            let phase_index = next_phase;
            next_phase += 1;
            let broadcaster = state.broadcaster.clone();
            let tally = tally.clone();
            async move {
                let result = phase(&broadcaster, &tally, viewers, phase_index, rate, seconds).await;
                print(&label, viewers, &result);
                result
            }
        };
        let base_rate = run("baseline".into(), 100).await;
        let mut highest = None;
        for &rate in RATES.iter().skip(1) {
            let result = run(format!("rising {rate}"), rate).await;
            if !result.all_kept_up {
                break;
            }
            highest = Some(rate);
        }
        let stalled_hold = Arc::new(AtomicBool::new(true));
        spawner.spawn(stalled_viewer(port, token.clone(), stalled_hold.clone()));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let with_stalled = run("baseline + 1 stalled".into(), 100).await;
        let with_stalled_high = match highest {
            Some(rate) => Some(run(format!("{rate} + 1 stalled"), rate).await),
            None => None,
        };
        stalled_hold.store(false, Ordering::Relaxed);
        println!();
        println!(
            "baseline: every line to every viewer: {}; p99 {:.1} ms; highest rate all kept up: {} lines/s ({} deliveries/s)",
            if base_rate.all_kept_up { "yes" } else { "NO" },
            base_rate.p99_ms,
            highest.map_or("none above 100".to_owned(), |r| r.to_string()),
            highest.map_or("-".to_owned(), |r| (r * viewers as u64).to_string()),
        );
        println!(
            "with one stalled viewer: baseline kept up {}, p99 {:.1} ms; at the highest rate kept up {}",
            if with_stalled.all_kept_up { "yes" } else { "NO" },
            with_stalled.p99_ms,
            with_stalled_high.map_or("-".to_owned(), |r| if r.all_kept_up { "yes".into() } else { "NO".into() }),
        );
        println!("viewers disconnected during the run: {}", tally.closed.load(Ordering::Relaxed));
        handle.stop(false).await;
        // Let the daemon close its pool inside the runtime, not after it is gone.
        let _ = served.await;
    });
    client.shutdown_timeout(Duration::from_secs(1));
}

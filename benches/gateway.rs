//! Gateway benchmarks (issue 4), in one process against the fake Discord:
//! 1. a firehose of MESSAGE_CREATE and GUILD_MEMBER_UPDATE events through guildhall's shard
//!    runner (frames parsed by serenity's model) into the bot's handler: events/s handled, the gateway actor's mailbox depth, and
//!    resident memory before, during and after;
//! 2. command round trip: INTERACTION_CREATE written by the fake → the bot's callback arriving
//!    at the fake (the fake's own work on either side excluded), for `/help`.
//!
//! `cargo bench --bench gateway` (release). The fake runs in the same process and shares the
//! two cores, so the figures are a floor. Loopback only; every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/common/fake_discord/mod.rs"]
mod fake_discord;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fake_discord::{FakeDiscord, MEMBER, standard_guild};
use guildhall::actors::gateway::GetBotStatus;
use guildhall::config::Settings;
use guildhall::startup::Application;

const GUILD: u64 = 1_200_000_000_000_000_000;
const EVENTS: u64 = 200_000;
/// Events in flight at most: the producer waits when the bot falls this far behind, so the
/// fake's queue stays bounded and what is measured is the bot's rate.
const WINDOW: u64 = 5_000;
const INTERACTIONS: usize = 1_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn handled(state: &guildhall::state::AppState) -> u64 {
    let m = &state.metrics.discord_events;
    m.with_label_values(&["MESSAGE_CREATE"]).get()
        + m.with_label_values(&["GUILD_MEMBER_UPDATE"]).get()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the fake on a thread (and actix system) of its own: Discord is remote in production, so
/// its work should not queue behind, or in front of, the bot's on one thread.
fn start_fake_elsewhere() -> FakeDiscord {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            tx.send(FakeDiscord::start().await).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

#[actix_web::main]
async fn main() {
    let fake = start_fake_elsewhere();
    fake.add_guild(standard_guild(GUILD));
    let dir = tempfile::tempdir().unwrap();
    let mut env: HashMap<String, String> = fake.env().into_iter().collect();
    env.insert("GUILDHALL_BIND".into(), "127.0.0.1:0".into());
    env.insert(
        "GUILDHALL_DATA_DIR".into(),
        dir.path().display().to_string(),
    );
    env.insert("RUST_LOG".into(), "warn".into());
    let app = Application::build(Settings::from_env(&env).unwrap())
        .await
        .unwrap();
    let state = app.state().clone();
    actix_web::rt::spawn(app.run_until_stopped());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = state.gateway.send(GetBotStatus).await.unwrap();
        if status.status.label() == "connected" && status.guilds == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "bot did not connect: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // ---- firehose ----------------------------------------------------------------------------
    let guild = standard_guild(GUILD);
    let author = guild.member(MEMBER).unwrap().clone();
    let message = fake_discord::payloads::message(
        1,
        GUILD,
        GUILD + 10,
        &author,
        "hello there, this is a chat message of ordinary length",
    );
    let update = fake_discord::payloads::guild_member_update(GUILD, &author);
    fake_discord::check_parses("MESSAGE_CREATE", &message);
    fake_discord::check_parses("GUILD_MEMBER_UPDATE", &update);
    let message: std::sync::Arc<str> = message.to_string().into();
    let update: std::sync::Arc<str> = update.to_string().into();
    let rss_before = rss_kib();
    let base = handled(&state);
    let mut max_depth = 0i64;
    let mut max_rss = rss_before;
    let mut max_lag = 0u64;
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < EVENTS {
        let done = handled(&state) - base;
        max_lag = max_lag.max(sent - done);
        if sent - done >= WINDOW {
            tokio::time::sleep(Duration::from_micros(200)).await;
            max_depth = max_depth.max(state.metrics.discord_mailbox_depth.get());
            max_rss = max_rss.max(rss_kib());
            continue;
        }
        for _ in 0..500 {
            if sent.is_multiple_of(2) {
                fake.dispatch_raw(0, "MESSAGE_CREATE", message.clone());
            } else {
                fake.dispatch_raw(0, "GUILD_MEMBER_UPDATE", update.clone());
            }
            sent += 1;
        }
        tokio::task::yield_now().await;
    }
    let finish = Instant::now() + Duration::from_secs(60);
    while handled(&state) - base < EVENTS && Instant::now() < finish {
        max_depth = max_depth.max(state.metrics.discord_mailbox_depth.get());
        max_rss = max_rss.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let total = handled(&state) - base;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = rss_kib();

    // ---- command round trip ------------------------------------------------------------------
    fake.clear_calls();
    let mut trips = Vec::with_capacity(INTERACTIONS);
    for _ in 0..INTERACTIONS {
        let (id, payload) = fake.command_interaction(GUILD, MEMBER, "help", vec![]);
        fake.dispatch_unchecked(0, "INTERACTION_CREATE", payload);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(rt) = fake.interaction_round_trip(id) {
                trips.push(rt);
                break;
            }
            assert!(Instant::now() < deadline, "no reply to interaction {id}");
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
    }
    trips.sort();

    println!();
    println!("| gateway benchmark (in-process, fake Discord on loopback)     | value |");
    println!("|--------------------------------------------------------------|-------|");
    println!(
        "| firehose events handled (MESSAGE_CREATE + GUILD_MEMBER_UPDATE) | {total} of {EVENTS} |"
    );
    println!(
        "| firehose events/s                                             | {:.0} |",
        total as f64 / elapsed.as_secs_f64()
    );
    println!("| largest backlog (sent, not yet handled; producer window {WINDOW}) | {max_lag} |");
    println!("| gateway actor mailbox depth, max during firehose               | {max_depth} |");
    println!(
        "| RSS before / peak / after firehose (MiB)                       | {:.1} / {:.1} / {:.1} |",
        rss_before as f64 / 1024.0,
        max_rss as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    println!(
        "| /help round trip p50 / p99 / max ({INTERACTIONS} sequential)          | {:.2} / {:.2} / {:.2} ms |",
        percentile(&trips, 0.5).as_secs_f64() * 1000.0,
        percentile(&trips, 0.99).as_secs_f64() * 1000.0,
        trips.last().unwrap().as_secs_f64() * 1000.0
    );
    println!();
    std::process::exit(0);
}

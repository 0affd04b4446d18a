//! Whitelist reconciliation at scale: 10,000 linked members against a server whose whitelist
//! differs from the links by 1,000 names (500 role holders missing, 500 without the role
//! still listed) plus 100 names no link manages. The daemon runs in process (real startup,
//! real database, real `RconActor`) against the fake Minecraft server, which counts the
//! commands it receives: the run must send `whitelist list` and exactly one command per
//! difference, and leave the whitelist as the links say.
//!
//! Run: `CARGO_TARGET_DIR=... cargo bench --bench links` (SQLite in a temporary directory; set
//! `LINKS_BENCH_DATABASE_URL` for PostgreSQL; `LINKS_BENCH_MEMBERS` / `LINKS_BENCH_DIFF`
//! change the sizes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/fake_rcon.rs"]
mod fake_rcon;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use guildhall::config::Settings;
use guildhall::domain::Snowflake;
use guildhall::domain::audit::AuditOrigin;
use guildhall::domain::settings::SettingChange;
use guildhall::startup::Application;
use guildhall::store::audit::Actor;
use guildhall::store::guilds::GuildUpsert;
use guildhall::store::minecraft_links::{self as links, NewLink};

const PASSWORD: &str = "links-bench-pw";
const GUILD: i64 = 1_300_000_000_000_000_000;
const ROLE: i64 = GUILD + 1;
const UNMANAGED: usize = 100;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let members = env_usize("LINKS_BENCH_MEMBERS", 10_000);
    let diff = env_usize("LINKS_BENCH_DIFF", 1_000).min(members);
    let (missing, extra) = (diff / 2, diff - diff / 2);
    let fake = fake_rcon::FakeRcon::start(PASSWORD);
    let data_dir = tempfile::tempdir().unwrap();
    let database = std::env::var("LINKS_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/guildhall.db", data_dir.path().display()));
    let env = HashMap::from([
        ("GUILDHALL_BIND".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "GUILDHALL_DATA_DIR".to_owned(),
            data_dir.path().display().to_string(),
        ),
        ("DATABASE_URL".to_owned(), database.clone()),
        ("RCON_HOST".to_owned(), "127.0.0.1".to_owned()),
        ("RCON_PORT".to_owned(), fake.port.to_string()),
        ("RCON_PASSWORD".to_owned(), PASSWORD.to_owned()),
        // No periodic `list` or reconciliation round during the measurement.
        ("GUILDHALL_RCON_POLL_MS".to_owned(), "3600000".to_owned()),
        (
            "GUILDHALL_WHITELIST_RECONCILE_SECS".to_owned(),
            "604800".to_owned(),
        ),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ]);

    actix::System::new().block_on(async move {
        let settings = Settings::from_env(&env).unwrap();
        let app = Application::build(settings).await.unwrap();
        let state = app.state().clone();
        state
            .store
            .upsert_guild(&GuildUpsert {
                id: GUILD,
                name: "Bench".into(),
                icon: None,
                owner_id: None,
                member_count: Some(i64::try_from(members).unwrap()),
            })
            .await
            .unwrap();
        state
            .guilds
            .change(
                Snowflake::from_i64(GUILD).unwrap(),
                vec![SettingChange::MinecraftRole(Some(
                    Snowflake::from_i64(ROLE).unwrap(),
                ))],
                None,
                Actor::System,
                AuditOrigin::internal(),
            )
            .await
            .unwrap();

        // Members 0..holders hold the role; the rest do not. The whitelist lists the holders
        // except the last `missing`, plus the first `extra` non-holders, plus unmanaged names.
        let holders = members - (members / 10).max(extra).min(members - missing);
        let name = |i: usize| format!("Player{i:05}");
        let seed: Vec<NewLink> = (0..members)
            .map(|i| NewLink {
                guild_id: GUILD,
                server: "default".into(),
                discord_user_id: 1_000_000 + i64::try_from(i).unwrap(),
                minecraft_name: name(i),
                roles: if i < holders { vec![ROLE] } else { vec![] },
                whitelisted: i < holders - missing || (holders..holders + extra).contains(&i),
                linked_by: "bench".into(),
            })
            .collect();
        eprintln!("seeding {members} links");
        let seeding = Instant::now();
        links::insert_many(&state.store, &seed).await.unwrap();
        let seed_time = seeding.elapsed();
        let mut whitelist: Vec<String> = (0..holders - missing)
            .chain(holders..holders + extra)
            .map(name)
            .collect();
        whitelist.extend((0..UNMANAGED).map(|i| format!("Manual{i:04}")));
        let listed_before = whitelist.len();
        fake.set_whitelist_owned(whitelist);

        eprintln!("seeded in {:.0} ms; connecting", ms(seed_time));
        let server = state.links.server_for(GUILD).await.unwrap();
        // Connect first, so the measurement is the reconciliation, not the login.
        state.minecraft.players(&server).await.unwrap();
        eprintln!("reconciling");
        let before = fake.commands().len();
        let started = Instant::now();
        let report = state.links.reconcile(&server).await.unwrap();
        let took = started.elapsed();
        let sent = fake.commands()[before..].to_vec();

        let again_before = fake.commands().len();
        let again_started = Instant::now();
        let again = state.links.reconcile(&server).await.unwrap();
        let again_took = again_started.elapsed();
        let again_sent = fake.commands().len() - again_before;

        // The whitelist now says what the links say.
        let expected: HashSet<String> = (0..holders)
            .map(name)
            .chain((0..UNMANAGED).map(|i| format!("Manual{i:04}")))
            .map(|n| n.to_lowercase())
            .collect();
        let actual: HashSet<String> = fake.whitelist().iter().map(|n| n.to_lowercase()).collect();
        let correct = expected == actual;
        let whitelist_commands = sent.iter().filter(|c| c.starts_with("whitelist ")).count();
        let only_difference = sent.len() == diff + 1
            && whitelist_commands == diff + 1
            && report.added == missing
            && report.removed == extra
            && report.failed == 0;

        let engine = if database.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        println!("links reconciliation benchmark ({engine}, {profile} build)");
        println!("| measure | value |");
        println!("|---|---|");
        println!("| linked members | {members} (role holders {holders}) |");
        println!("| whitelist before | {listed_before} names ({UNMANAGED} unmanaged) |");
        println!("| difference | {diff} ({missing} to add, {extra} to remove) |");
        println!("| seeding the links (one transaction) | {:.0} ms |", ms(seed_time));
        println!("| reconciliation | {:.0} ms |", ms(took));
        println!(
            "| commands sent | {} (expected {}: `whitelist list` + one per difference) |",
            sent.len(),
            diff + 1
        );
        println!(
            "| throughput | {:.0} changes/s |",
            diff as f64 / took.as_secs_f64().max(1e-9)
        );
        println!(
            "| report | added {}, removed {}, unmanaged {}, failed {} |",
            report.added, report.removed, report.unmanaged, report.failed
        );
        println!(
            "| second run (nothing to do) | {:.0} ms, {again_sent} command(s), added {} removed {} |",
            ms(again_took),
            again.added,
            again.removed
        );
        println!("| whitelist matches the links afterwards | {correct} |");
        println!("| only the difference was sent | {only_difference} |");
        assert!(correct, "the whitelist does not match the links");
        assert!(only_difference, "more or other commands than the difference: {report:?}");
        assert!(took < Duration::from_secs(60), "took {took:?}");
        app.handle().stop(true).await;
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

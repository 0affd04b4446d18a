//! Two full daemons sharing one database (PostgreSQL with Redis, or one SQLite file) and one
//! fake Minecraft server: each reconciliation round of the whitelist runs on exactly one of
//! them, and when that one stops, the other runs the next round. The schedule reads the
//! injected clock, so a round comes due when the test advances it, never by waiting; "the
//! other instance did not run it too" is shown after both have finished two more scans, each
//! started after the round was claimed (counted by their runners), not after some sleep. On
//! PostgreSQL both daemons are made to claim the round at the same moment (its row held locked
//! until both wait on it).

use std::collections::HashMap;
use std::time::Duration;

use guildhall::clock::ManualClock;
use guildhall::minecraft::links_sync::{GetSyncInfo, SyncInfo};
use guildhall::store::guilds::GuildUpsert;
use guildhall::store::minecraft_links as links;

use super::links::{seed_link, set_minecraft_role};
use crate::common::auth::admin_token;
use crate::common::fake_rcon::FakeRcon;
use crate::common::{TestApp, backend, eventually, random_suffix, redis_url, spawn_app_with_clock};

const GUILD: i64 = 1_300_000_000_000_000_000;
const ROLE: i64 = GUILD + 1;
const PASSWORD: &str = "instances-rcon-pw";
const INTERVAL_SECS: u64 = 300;
/// Bounds waits for things that must happen (never the reason a test passes).
const WAIT: Duration = Duration::from_secs(20);

async fn info(app: &TestApp) -> SyncInfo {
    app.state
        .whitelist_sync
        .send(GetSyncInfo)
        .await
        .expect("the runner answers")
}

/// Waits until every running instance in `apps` has finished two scans more than it had
/// now: the second of them started after this call, so it saw the rounds as they are now.
async fn both_scanned_again(apps: &[&TestApp]) {
    for app in apps {
        let start = info(app).await.scans;
        assert!(
            eventually(WAIT, || async { info(app).await.scans >= start + 2 }).await,
            "an instance stopped scanning: {:?}",
            info(app).await
        );
    }
}

/// Opens a transaction holding the `default` round's row locked (PostgreSQL).
async fn hold_round(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(
        "BEGIN; SELECT 1 FROM minecraft_whitelist_sync WHERE server_name = 'default' FOR UPDATE"
            .to_owned(),
    ))
    .execute(&mut conn)
    .await
    .expect("lock the round");
    conn
}

/// Waits until two sessions (the two daemons) are blocked on their claim of the held round,
/// then lets them go.
async fn release_when_both_wait(mut held: sqlx::PgConnection, url: &str) {
    let both_wait =
        crate::common::sessions_waiting_on_lock(url, "UPDATE minecraft_whitelist_sync%", 2, WAIT)
            .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe("COMMIT".to_owned()))
        .execute(&mut held)
        .await
        .expect("release the round");
    assert!(
        both_wait,
        "the two daemons never claimed the due round together"
    );
}

fn whitelist_commands(rcon: &FakeRcon) -> Vec<String> {
    rcon.commands()
        .into_iter()
        .filter(|c| c.starts_with("whitelist"))
        .collect()
}

#[actix_web::test]
async fn each_due_reconciliation_runs_on_exactly_one_of_two_daemons_and_the_other_takes_over_when_it_stops()
 {
    // PostgreSQL runs share Redis too, as deployed instances do; SQLite runs share the file.
    let redis = if backend() == "postgres" {
        redis_url()
    } else {
        None
    };
    let rcon = FakeRcon::start(PASSWORD);
    let prefix = format!("test-{}", random_suffix());
    let rcon_env = rcon.env();
    let configure = move |env: &mut HashMap<String, String>| {
        env.extend(rcon_env.clone());
        // Long: with 2 s, a command that took over 500 ms on a loaded machine declared the
        // server not answering; its recovery then asked for an extra round (one more
        // `whitelist list` than the one the test counts).
        env.insert("GUILDHALL_RCON_TIMEOUT_MS".into(), "10000".into());
        env.insert(
            "GUILDHALL_WHITELIST_RECONCILE_SECS".into(),
            INTERVAL_SECS.to_string(),
        );
        env.insert("GUILDHALL_REDIS_PREFIX".into(), prefix.clone());
        if let Some(url) = &redis {
            env.insert("REDIS_URL".into(), url.clone());
        }
    };
    // One clock for both daemons, standing still until the test moves it.
    let clock = ManualClock::at(guildhall::ids::now_ms());
    let a = spawn_app_with_clock(clock.clone().into(), configure.clone()).await;

    // The guild, its Minecraft role, and two links that differ from the server's whitelist:
    // Holder holds the role but is not on it, Leaver is on it without the role.
    a.state
        .store
        .upsert_guild(&GuildUpsert {
            id: GUILD,
            name: "Instances".into(),
            icon: None,
            owner_id: Some(1),
            member_count: Some(3),
        })
        .await
        .unwrap();
    let admin = admin_token(&a).await;
    set_minecraft_role(&a, &admin, GUILD, ROLE).await;
    seed_link(&a, GUILD, 1, "Holder", vec![ROLE], false).await;
    seed_link(&a, GUILD, 2, "Leaver", vec![], true).await;
    rcon.set_whitelist(&["Leaver", "Operator"]);
    let first_due = clock.now_ms() + 1_000 * INTERVAL_SECS as i64;
    links::ensure_sync(&a.state.store, "default", first_due)
        .await
        .unwrap();

    // The second daemon on the same database.
    let shared_db = a.db.url.clone();
    let b = spawn_app_with_clock(clock.clone().into(), move |env| {
        configure(env);
        env.insert("DATABASE_URL".into(), shared_db);
    })
    .await;
    let (owner_a, owner_b) = (info(&a).await.owner, info(&b).await.owner);
    assert_ne!(owner_a, owner_b, "each daemon claims under its own tag");

    // Not due yet: both look, neither runs it.
    both_scanned_again(&[&a, &b]).await;
    assert!(
        whitelist_commands(&rcon).is_empty(),
        "{:?}",
        rcon.commands()
    );

    // Due: exactly one runs it, sending the list and each difference once. On PostgreSQL the
    // test holds the round's row locked until both daemons are blocked claiming it, so they
    // do claim at the same moment (the race the compare-and-set exists for), not one after
    // the other by luck of their tick phases.
    let held = match backend().as_str() {
        "postgres" => Some(hold_round(&a.db.url).await),
        _ => None,
    };
    clock.advance(Duration::from_secs(INTERVAL_SECS + 1));
    if let Some(conn) = held {
        release_when_both_wait(conn, &a.db.url).await;
    }
    assert!(
        eventually(WAIT, || async {
            links::sync_state(&b.state.store, "default")
                .await
                .unwrap()
                .is_some_and(|s| s.last_run_at.is_some())
        })
        .await,
        "the due round never ran: {:?}",
        rcon.commands()
    );
    both_scanned_again(&[&a, &b]).await;
    let mut sent = whitelist_commands(&rcon);
    sent.sort();
    assert_eq!(
        sent,
        [
            "whitelist add Holder",
            "whitelist list",
            "whitelist remove Leaver"
        ],
        "one list and each difference once, across both daemons"
    );
    assert!(rcon.is_whitelisted("Holder") && !rcon.is_whitelisted("Leaver"));
    assert!(
        rcon.is_whitelisted("Operator"),
        "an unmanaged name was touched"
    );
    let state = links::sync_state(&b.state.store, "default")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.last_outcome.as_deref(), Some("ok"), "{state:?}");
    let winner = state.claimed_by.clone().expect("claimed by a runner");
    assert!(
        winner == owner_a || winner == owner_b,
        "{winner} is neither {owner_a} nor {owner_b}"
    );
    assert!(
        state.next_run_at > clock.now_ms(),
        "the next round is in the future: {state:?}"
    );

    // The winner stops (as at SIGTERM); the other runs the next round alone.
    let (stopped, other, other_owner) = if winner == owner_a {
        (a, b, owner_b)
    } else {
        (b, a, owner_a)
    };
    stopped.handle.stop(true).await;
    assert!(
        eventually(WAIT, || async { info(&stopped).await.stopped }).await,
        "the stopped daemon still claims rounds"
    );
    // Holder taken off by hand meanwhile: the next round puts them back.
    rcon.set_whitelist(&["Operator"]);
    let before = whitelist_commands(&rcon).len();
    let last_run = state.last_run_at;
    clock.advance(Duration::from_secs(INTERVAL_SECS + 1));
    assert!(
        eventually(WAIT, || async {
            links::sync_state(&other.state.store, "default")
                .await
                .unwrap()
                .is_some_and(|s| s.last_run_at != last_run)
        })
        .await,
        "the remaining daemon never ran the next round: {:?}",
        rcon.commands()
    );
    both_scanned_again(&[&other]).await;
    let mut sent = whitelist_commands(&rcon)[before..].to_vec();
    sent.sort();
    assert_eq!(sent, ["whitelist add Holder", "whitelist list"]);
    let state = links::sync_state(&other.state.store, "default")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.claimed_by.as_deref(), Some(other_owner.as_str()));
    assert_eq!(state.last_outcome.as_deref(), Some("ok"), "{state:?}");
}

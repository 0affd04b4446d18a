//! Foundation benchmarks (issue 2): idle memory, exec-to-ready time, and `/health` throughput
//! against a bare actix-web handler returning the same bytes, measured in the same run.
//!
//! `cargo bench --bench foundation` (release build). Prints a table; figures go in
//! docs/performance.md. Loopback only; every loop is bounded in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, load, rss_kib, spawn_bare_server, status_of};

const CONNECTIONS: usize = 64;
const ROUND: Duration = Duration::from_secs(4);
const ROUNDS: usize = 3;
const STARTS: usize = 10;

fn spawn_daemon(data_dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_guildhall"))
        .env_clear()
        .env("GUILDHALL_DATA_DIR", data_dir)
        .env("GUILDHALL_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn guildhall")
}

fn stop(mut child: Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
}

/// Spawns and polls `/ready` every millisecond; returns the time from exec to the first 200.
// The child is returned running; every caller passes it to `stop`, which waits for it.
#[allow(clippy::zombie_processes)]
fn time_to_ready(data_dir: &std::path::Path) -> (Duration, Child, u16) {
    let port = free_port();
    let started = Instant::now();
    let mut child = spawn_daemon(data_dir, port);
    loop {
        if status_of(port, "/ready") == Some(200) {
            return (started.elapsed(), child, port);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("daemon never became ready");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();

    // First start: creates the database, applies migrations, seeds; not measured.
    let (first, child, _) = time_to_ready(dir.path());
    stop(child);

    let mut starts = Vec::new();
    for _ in 0..STARTS {
        let (t, child, _) = time_to_ready(dir.path());
        starts.push(t);
        stop(child);
    }
    starts.sort();

    // Idle memory: a started daemon left alone for two seconds.
    let (_, daemon, port) = time_to_ready(dir.path());
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = rss_kib(daemon.id()).unwrap_or(0);

    let bare_port = free_port();
    spawn_bare_server(bare_port);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut bare = Vec::new();
    let mut ours = Vec::new();
    // Interleaved rounds, so drift on a noisy machine hits both sides alike.
    for _ in 0..ROUNDS {
        bare.push(runtime.block_on(load(bare_port, "/health", "", CONNECTIONS, ROUND)));
        ours.push(runtime.block_on(load(port, "/health", "", CONNECTIONS, ROUND)));
    }
    let after_load_rss = rss_kib(daemon.id()).unwrap_or(0);
    stop(daemon);

    let median = |v: &mut Vec<support::LoadResult>| {
        v.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
        v.remove(v.len() / 2)
    };
    let bare = median(&mut bare);
    let ours = median(&mut ours);
    let ratio = ours.rps() / bare.rps();

    println!(
        "\n## foundation benchmark ({} cores)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| measurement | value | target |");
    println!("|---|---|---|");
    println!(
        "| first start (create DB, migrate, seed, hash admin password) → /ready 200 | {:.0} ms | — |",
        first.as_secs_f64() * 1e3
    );
    println!(
        "| exec → /ready 200, migrations applied (median of {STARTS}) | {:.0} ms | < 300 ms |",
        starts[STARTS / 2].as_secs_f64() * 1e3
    );
    println!(
        "| exec → /ready 200 (worst of {STARTS}) | {:.0} ms | — |",
        starts[STARTS - 1].as_secs_f64() * 1e3
    );
    println!(
        "| idle RSS after start (SQLite) | {:.1} MiB | < 30 MiB |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| RSS after the load rounds | {:.1} MiB | — |",
        after_load_rss as f64 / 1024.0
    );
    println!(
        "| bare actix-web `/health`, {CONNECTIONS} conns (median of {ROUNDS}) | {:.0} req/s, p99 {:.2} ms, {} errors | — |",
        bare.rps(),
        bare.percentile_ms(99.0),
        bare.errors
    );
    println!(
        "| guildhall `/health`, {CONNECTIONS} conns (median of {ROUNDS}) | {:.0} req/s, p99 {:.2} ms, {} errors | — |",
        ours.rps(),
        ours.percentile_ms(99.0),
        ours.errors
    );
    println!("| guildhall / bare | {:.1} % | ≥ 80 % |", ratio * 100.0);
}

//! RCON throughput and overhead: commands through `RconActor` against the fake Minecraft server
//! on loopback, compared with direct `rcon` client calls in the same run, and 100 concurrent
//! callers on one server.
//!
//! Run: `CARGO_TARGET_DIR=/work/cache/target-bench cargo bench --bench rcon`
//! (`RCON_BENCH_COMMANDS=N` changes the number of commands per measurement; default 2,000.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/fake_rcon.rs"]
mod fake_rcon;

use std::time::{Duration, Instant};

use actix::Supervisor;
use guildhall::actors::rcon::{Execute, RconActor, RconTiming, ServerConfig};
use guildhall::metrics::Metrics;
use guildhall::minecraft::{RconCommand, ServerName};
use prometheus::Registry;
use secrecy::SecretString;

const PASSWORD: &str = "bench-password";
const CALLERS: usize = 100;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort_unstable();
    Stats {
        p50: percentile(&samples, 50.0),
        p99: percentile(&samples, 99.0),
        max: *samples.last().unwrap(),
    }
}

fn main() {
    let commands: usize = std::env::var("RCON_BENCH_COMMANDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let fake = fake_rcon::FakeRcon::start(PASSWORD);
    let port = fake.port;

    actix::System::new().block_on(async move {
        let metrics = Metrics::new(Registry::new()).unwrap();
        let actor = Supervisor::start(move |_| {
            RconActor::new(
                ServerName::parse("bench").unwrap(),
                ServerConfig {
                    host: "127.0.0.1".into(),
                    port,
                    password: SecretString::from(PASSWORD.to_owned()),
                },
                RconTiming {
                    // No periodic `list` during the measurement.
                    poll_interval: Duration::from_secs(3600),
                    ..RconTiming::default()
                },
                metrics,
                None,
            )
        });
        let mut direct = rcon::Connection::<tokio::net::TcpStream>::builder()
            .enable_minecraft_quirks(true)
            .connect(("127.0.0.1", port), PASSWORD)
            .await
            .unwrap();
        let command = RconCommand::parse("echo benchmark").unwrap();
        // Warm up both paths (and make the actor's connection).
        for _ in 0..50 {
            direct.cmd("echo benchmark").await.unwrap();
            actor.send(Execute(command.clone())).await.unwrap().unwrap();
        }

        // Interleaved, so both paths see the same machine load.
        let (mut via_direct, mut via_actor, mut added) = (Vec::new(), Vec::new(), Vec::new());
        let started = Instant::now();
        let (mut actor_total, mut direct_total) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..commands {
            let t = Instant::now();
            let out = direct.cmd("echo benchmark").await.unwrap();
            let took = t.elapsed();
            direct_total += took;
            via_direct.push(took);
            assert_eq!(out, "benchmark");
            let t = Instant::now();
            let out = actor.send(Execute(command.clone())).await.unwrap().unwrap();
            let took = t.elapsed();
            actor_total += took;
            via_actor.push(took);
            // `rtt` is the crate's own `cmd()` call inside the actor: what is left is the
            // actor's cost (mailbox, queue, spawn, reply), measured on the same command.
            added.push(took.saturating_sub(out.rtt));
            assert_eq!(out.raw, "benchmark");
        }
        let elapsed = started.elapsed();
        let sequential_rate = commands as f64 / actor_total.as_secs_f64();
        let (d, a, o) = (stats(via_direct), stats(via_actor), stats(added));

        // 100 concurrent callers on the one server: every answer must be its own.
        let per_caller = (commands / CALLERS).max(10);
        let started = Instant::now();
        let tasks: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let actor = actor.clone();
                actix::spawn(async move {
                    let (mut ok, mut errors) = (0usize, 0usize);
                    for i in 0..per_caller {
                        let text = format!("{caller}-{i}");
                        let command = RconCommand::parse(&format!("echo {text}")).unwrap();
                        match actor.send(Execute(command)).await {
                            Ok(Ok(out)) if out.raw == text => ok += 1,
                            _ => errors += 1,
                        }
                    }
                    (ok, errors)
                })
            })
            .collect();
        let (mut ok, mut errors) = (0, 0);
        for task in tasks {
            let (o, e) = task.await.unwrap();
            ok += o;
            errors += e;
        }
        let concurrent = started.elapsed();
        let concurrent_rate = ok as f64 / concurrent.as_secs_f64();

        println!("rcon benchmark: {commands} interleaved commands per path, fake server on loopback ({:.1} s)", elapsed.as_secs_f64());
        println!();
        println!("| path                         | p50 ms | p99 ms | max ms | commands/s |");
        println!("|------------------------------|--------|--------|--------|------------|");
        println!(
            "| direct rcon::Connection::cmd | {:>6.3} | {:>6.3} | {:>6.3} | {:>10.0} |",
            ms(d.p50),
            ms(d.p99),
            ms(d.max),
            commands as f64 / direct_total.as_secs_f64()
        );
        println!(
            "| RconActor (Execute)          | {:>6.3} | {:>6.3} | {:>6.3} | {:>10.0} |",
            ms(a.p50),
            ms(a.p99),
            ms(a.max),
            sequential_rate
        );
        println!(
            "| RconActor minus direct       | {:>6.3} | {:>6.3} |        |            |",
            ms(a.p50.saturating_sub(d.p50)),
            ms(a.p99.saturating_sub(d.p99)),
        );
        println!(
            "| added by RconActor, per call | {:>6.3} | {:>6.3} | {:>6.3} |            |",
            ms(o.p50),
            ms(o.p99),
            ms(o.max),
        );
        println!();
        println!(
            "{CALLERS} concurrent callers x {per_caller} commands on one server: {ok} answered correctly, {errors} errors or wrong answers, {:.0} commands/s, {:.2} s",
            concurrent_rate,
            concurrent.as_secs_f64()
        );
        let overhead_p99 = o.p99;
        println!(
            "added latency p99, measured per call (caller's latency minus the crate's cmd() inside the actor): {:.3} ms (target < 1 ms): {}",
            ms(overhead_p99),
            if overhead_p99 < Duration::from_millis(1) { "PASS" } else { "FAIL" }
        );
        assert_eq!(errors, 0, "concurrent callers saw errors or lost answers");
        assert_eq!(ok, CALLERS * per_caller);
    });
    drop(fake);
}

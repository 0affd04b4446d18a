//! Dashboard page benchmarks (issue 9): for each page, the server-side answer time with its data
//! cached (p50/p99 of sequential GETs on one keep-alive connection, after a warm-up: the time
//! includes loopback and HTTP, so it bounds the render from above) and the bytes a first visit
//! transfers (the HTML as sent plus every `/static/` asset it links, gzip accepted). Targets:
//! p99 < 5 ms, first load < 100 KiB compressed.
//!
//! `cargo bench --bench pages` (release build; the coordinator runs it on a quiet machine).
//! `PAGES_BENCH_REQUESTS=50 cargo bench --profile dev --bench pages` is a quick smoke run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, percentile_us, status_of};

const PASSWORD: &str = "benchmark passphrase 0001";
const PAGES: &[&str] = &[
    "/sign-in",
    "/",
    "/overview/status",
    "/audit",
    "/audit/rows",
    "/logs",
    "/guilds",
    "/minecraft",
    "/account",
    "/admin",
    "/admin/roles",
    "/admin/api-keys",
];
const P99_TARGET_MS: f64 = 5.0;
const FIRST_LOAD_TARGET: usize = 100 * 1024;

fn guildhall(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guildhall"));
    command
        .env_clear()
        .env("GUILDHALL_DATA_DIR", data_dir)
        .env("GUILDHALL_RATE_LIMIT_PER_MINUTE", "0")
        .env("RUST_LOG", "warn");
    command
}

fn spawn_daemon(data_dir: &std::path::Path, port: u16) -> Child {
    let child = guildhall(data_dir)
        .env("GUILDHALL_BIND", format!("127.0.0.1:{port}"))
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

fn create_admin(data_dir: &std::path::Path) {
    let migrated = guildhall(data_dir)
        .arg("migrate")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("migrate");
    assert!(migrated.success(), "migrate failed");
    let mut child = guildhall(data_dir)
        .args([
            "user",
            "create",
            "--username",
            "bench_admin",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("user create");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "user create failed");
}

/// Signs in through the sign-in form; returns the session cookie (`name=value`).
async fn session(client: &reqwest::Client, base: &str) -> String {
    let response = client
        .post(format!("{base}/sign-in"))
        .header("origin", base)
        .form(&[("username", "bench_admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "sign-in");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("guildhall_session="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned()
}

/// The bytes a first visit to `path` transfers: the HTML as sent and each linked asset.
async fn first_load(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    path: &str,
) -> (usize, usize) {
    let html = client
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    // Pages are sent compressed when the client accepts it; the asset links are read from the
    // decoded HTML, the bytes counted as sent.
    let text = if html.starts_with(&[0x1f, 0x8b]) {
        let mut decoded = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&html[..]), &mut decoded)
            .unwrap();
        decoded
    } else {
        String::from_utf8_lossy(&html).into_owned()
    };
    let mut assets = 0;
    for link in text.split('"').filter(|s| s.starts_with("/static/")) {
        assets += client
            .get(format!("{base}{link}"))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .len();
    }
    (html.len(), assets)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let requests: usize = std::env::var("PAGES_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    create_admin(dir.path());
    let port = free_port();
    let mut daemon = spawn_daemon(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let cookie = session(&client, &base).await;
    println!(
        "| page | p50 ms | p99 ms | HTML bytes sent | assets bytes (gzip) | first load KiB | targets |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut all_ok = true;
    for page in PAGES {
        let url = format!("{base}{page}");
        // Sign-in is seen signed out (signed in, it redirects onwards).
        let cookie = if *page == "/sign-in" {
            ""
        } else {
            cookie.as_str()
        };
        let get = || {
            client
                .get(&url)
                .header("cookie", cookie)
                .header("hx-request", "true")
        };
        for _ in 0..(requests / 10).max(5) {
            let r = get().send().await.unwrap();
            assert!(r.status().is_success(), "{page}: {}", r.status());
            r.bytes().await.unwrap();
        }
        let mut samples = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let body = get().send().await.unwrap().bytes().await.unwrap();
            samples.push(started.elapsed().as_micros() as u64);
            std::hint::black_box(body);
        }
        let p50 = percentile_us(&samples, 50.0) as f64 / 1000.0;
        let p99 = percentile_us(&samples, 99.0) as f64 / 1000.0;
        let (html, assets) = first_load(&client, &base, cookie, page).await;
        let total = html + assets;
        let ok = p99 < P99_TARGET_MS && total < FIRST_LOAD_TARGET;
        all_ok &= ok;
        println!(
            "| {page} | {p50:.2} | {p99:.2} | {html} | {assets} | {:.1} | {} |",
            total as f64 / 1024.0,
            if ok { "met" } else { "MISSED" }
        );
    }
    println!(
        "\n{} requests per page, sequential on one connection, {} build; targets p99 < {P99_TARGET_MS} ms, first load < 100 KiB.",
        requests,
        if cfg!(debug_assertions) {
            "debug (smoke run, not the figures)"
        } else {
            "release"
        }
    );
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    let _ = daemon.wait();
    if !all_ok {
        println!("some targets were missed");
    }
}

//! Shared pieces of the benchmarks: a raw HTTP/1.1 keep-alive load generator on loopback
//! (cheap enough that the server, not the client, is what is measured) and latency summaries.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<u64>,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile_us(&self.latencies_us, p) as f64 / 1000.0
    }
}

pub fn percentile_us(samples: &[u64], p: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// One keep-alive connection sending `GET path` back to back until `deadline`.
async fn connection(port: u16, request: Vec<u8>, deadline: Instant) -> (u64, u64, Vec<u64>) {
    let mut stream = match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(s) => s,
        Err(_) => return (0, 1, Vec::new()),
    };
    stream.set_nodelay(true).ok();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut ok, mut errors, mut lat) = (0u64, 0u64, Vec::with_capacity(100_000));
    while Instant::now() < deadline {
        let started = Instant::now();
        if stream.write_all(&request).await.is_err() {
            errors += 1;
            break;
        }
        // Read one response: headers, then Content-Length bytes of body.
        let mut filled = 0;
        let status_ok;
        loop {
            let n = match stream.read(&mut buf[filled..]).await {
                Ok(0) | Err(_) => {
                    errors += 1;
                    return (ok, errors, lat);
                }
                Ok(n) => n,
            };
            filled += n;
            if let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())
                            .flatten()
                    })
                    .unwrap_or(0);
                status_ok = head.starts_with("HTTP/1.1 200");
                while filled < end + 4 + len {
                    match stream.read(&mut buf[filled..]).await {
                        Ok(0) | Err(_) => {
                            errors += 1;
                            return (ok, errors, lat);
                        }
                        Ok(n) => filled += n,
                    }
                }
                break;
            }
        }
        if status_ok {
            ok += 1;
            lat.push(started.elapsed().as_micros() as u64);
        } else {
            errors += 1;
        }
    }
    (ok, errors, lat)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `connections` keep-alive clients hammer `GET path` for `duration`.
pub async fn load(
    port: u16,
    path: &str,
    headers: &str,
    connections: usize,
    duration: Duration,
) -> LoadResult {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n").into_bytes();
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(connection(port, request.clone(), deadline)))
        .collect();
    let mut result = LoadResult {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        let (ok, errors, lat) = t.await.unwrap();
        result.requests += ok;
        result.errors += errors;
        result.latencies_us.extend(lat);
    }
    result.elapsed = started.elapsed();
    result
}

/// Blocking GET returning the status code, for readiness polling without a runtime.
pub fn status_of(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split(' ').nth(1)?.parse().ok()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Resident set size of a process, in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

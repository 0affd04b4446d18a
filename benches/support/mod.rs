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
    /// Bytes of the successful responses as read off the socket: status line, headers, body.
    pub response_bytes: u64,
    /// Bytes of their bodies alone (`Content-Length`, i.e. as sent, encoded or not).
    pub body_bytes: u64,
    /// How many of them carried a `Content-Encoding` header.
    pub encoded: u64,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile_us(&self.latencies_us, p) as f64 / 1000.0
    }

    /// Mean bytes per successful response, headers included.
    pub fn response_bytes_each(&self) -> f64 {
        self.response_bytes as f64 / self.requests.max(1) as f64
    }

    /// Mean body bytes per successful response, as sent.
    pub fn body_bytes_each(&self) -> f64 {
        self.body_bytes as f64 / self.requests.max(1) as f64
    }
}

/// What one connection counted.
#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u64>,
    response_bytes: u64,
    body_bytes: u64,
    encoded: u64,
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

/// One keep-alive connection sending `GET path` back to back until `deadline`. The client only
/// frames responses (by `Content-Length`); it never decodes a body, so an encoded response costs
/// it no more than its bytes.
async fn connection(port: u16, request: Vec<u8>, deadline: Instant) -> Tally {
    let mut t = Tally {
        latencies_us: Vec::with_capacity(100_000),
        ..Tally::default()
    };
    let mut stream = match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(s) => s,
        Err(_) => {
            t.errors += 1;
            return t;
        }
    };
    stream.set_nodelay(true).ok();
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < deadline {
        let started = Instant::now();
        if stream.write_all(&request).await.is_err() {
            t.errors += 1;
            break;
        }
        // Read one response: headers, then Content-Length bytes of body.
        let mut filled = 0;
        let status_ok;
        let (total, body_len, encoded);
        loop {
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = match stream.read(&mut buf[filled..]).await {
                Ok(0) | Err(_) => {
                    t.errors += 1;
                    return t;
                }
                Ok(n) => n,
            };
            filled += n;
            if let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
                let mut len = 0usize;
                let mut has_encoding = false;
                for line in head.lines() {
                    let Some((k, v)) = line.split_once(':') else {
                        continue;
                    };
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    } else if k.eq_ignore_ascii_case("content-encoding") {
                        has_encoding = true;
                    }
                }
                status_ok = head.starts_with("HTTP/1.1 200");
                total = end + 4 + len;
                if buf.len() < total {
                    buf.resize(total, 0);
                }
                while filled < total {
                    match stream.read(&mut buf[filled..]).await {
                        Ok(0) | Err(_) => {
                            t.errors += 1;
                            return t;
                        }
                        Ok(n) => filled += n,
                    }
                }
                body_len = len;
                encoded = has_encoding;
                break;
            }
        }
        if status_ok {
            t.ok += 1;
            t.latencies_us.push(started.elapsed().as_micros() as u64);
            t.response_bytes += total as u64;
            t.body_bytes += body_len as u64;
            t.encoded += u64::from(encoded);
        } else {
            t.errors += 1;
        }
    }
    t
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
        response_bytes: 0,
        body_bytes: 0,
        encoded: 0,
    };
    for t in tasks {
        let t = t.await.unwrap();
        result.requests += t.ok;
        result.errors += t.errors;
        result.latencies_us.extend(t.latencies_us);
        result.response_bytes += t.response_bytes;
        result.body_bytes += t.body_bytes;
        result.encoded += t.encoded;
    }
    result.elapsed = started.elapsed();
    result
}

/// One response as a client saw it: status, headers (names lowercased), body as sent.
pub struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Status line, headers and body: the bytes on the wire.
    pub wire_bytes: usize,
}

impl Fetched {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Blocking `GET path` with extra header lines (each ending in `\r\n`), on a connection of its own.
pub fn fetch(port: u16, path: &str, headers: &str) -> Fetched {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = find(&raw, b"\r\n\r\n").expect("a complete response head");
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = raw[end + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        assert_eq!(
            body.len(),
            len,
            "GET {path}: body shorter than Content-Length"
        );
    }
    Fetched {
        status,
        headers,
        body,
        wire_bytes: raw.len(),
    }
}

/// The baseline for `/health`: actix-web with the same worker count and a handler returning the
/// same bytes, on a thread of its own in the benchmark's process.
pub fn spawn_bare_server(port: u16) {
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(|| {
                actix_web::App::new().route(
                    "/health",
                    actix_web::web::get().to(|| async {
                        actix_web::HttpResponse::Ok()
                            .content_type("application/json")
                            .body(r#"{"status":"ok"}"#)
                    }),
                )
            })
            .workers(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .bind(("127.0.0.1", port))
            .unwrap()
            .run()
            .await
            .unwrap();
        });
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(port, "/health") != Some(200) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
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

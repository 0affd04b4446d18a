//! The real binary as a child process: a command with a clean environment, one-shot runs
//! (`migrate`, `user create`) and a running daemon whose stderr is collected.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::binary;

/// A command with an empty environment but for what a process needs to run at all.
pub fn guildhall(cwd: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_BACKTRACE", "0")
        .current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

pub fn run(cwd: &Path, env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = guildhall(cwd, env)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// A running daemon whose stderr is collected line by line.
pub struct Daemon {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    pub port: u16,
}

impl Daemon {
    pub fn start(cwd: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut child = guildhall(cwd, env)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let found = lines.lock().unwrap().iter().find_map(|l| {
                let rest = &l[l.find("guildhall is serving")?..];
                let at = rest.find("127.0.0.1:")? + "127.0.0.1:".len();
                rest[at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse::<u16>()
                    .ok()
            });
            if let Some(port) = found {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("daemon exited with {status}: {:#?}", lines.lock().unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not start: {:#?}",
                lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // Serving means answering: wait for the first 200 (signal handlers are in place by then).
        loop {
            if http_status(port, "/health") == Some(200) {
                break;
            }
            assert!(Instant::now() < deadline, "daemon never answered /health");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon { child, lines, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "daemon ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(100));
        let lines = self.lines.lock().unwrap().clone();
        (status, lines)
    }
}

/// A minimal blocking HTTP/1.1 GET, so the harness needs no runtime.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split(' ').nth(1)?.parse().ok()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A test that panics before `terminate` must not leave its daemon running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

//! A fake Minecraft server's RCON side, speaking the Source RCON framing the way Minecraft
//! does, on 127.0.0.1, on its own thread and runtime (so it lives whatever the test's runtime
//! does, and can be stopped and restarted on the same port).
//!
//! Framing: `i32 length | i32 request id | i32 type | body | 0 0`, little-endian. Login is type
//! 3; the answer is type 2 with the request's id, or id -1 for a wrong password, after which
//! the connection is closed (as Minecraft does). Commands are type 2, answered with type 0.
//!
//! Commands it knows (each recorded, in order, in `commands()`):
//! - `list`: `There are N of a max of 20 players online: a, b` (players from `set_players`)
//! - `say …`: no packet at all (like commands without output on a real server)
//! - `echo TEXT`: TEXT; `colors`: text with `§` formatting codes
//! - `big N`: one packet of N bytes (Minecraft may answer over 4 KiB in one packet)
//! - `multi N`: N bytes split into 4,096-byte packets
//! - `drop`: half a packet, then the connection is closed
//! - `hang`: nothing, ever again, on this connection
//! - `slow N`: `done` after N milliseconds
//! - `whitelist add|remove NAME`, `whitelist list`: a whitelist kept in memory, answered with
//!   Minecraft's own texts (`Added NAME to the whitelist`, `Player is already whitelisted`,
//!   `Removed NAME from the whitelist`, `Player is not whitelisted`, `That player does not
//!   exist` for names set with `set_unknown_profiles`, `There are no whitelisted players`,
//!   `There are N whitelisted player(s): a, b`, split into 4,096-byte packets when long)
//! - `tellraw NAME JSON`: recorded in `whispers()` when NAME is online (answered with an empty
//!   packet, as Minecraft gives no feedback), else `No player was found`
//! - `kick NAME REASON`: `Kicked NAME: REASON` and the player is offline; else `No player was
//!   found`
//! - `op …`, `stop`: plausible one-line answers; else "Unknown…"
//!
//! The empty command (the `rcon` crate's end marker) is answered with an empty packet and not
//! recorded. `FakeRcon::silent()` accepts connections and never answers anything.
//!
//! Faults, as a running server meets them: `hang()` keeps accepting connections and reading
//! packets but answers nothing (a stuck main thread) until `answer_again()`; `refuse()` closes
//! the port (connections refused, as while the server is down) until `come_back()` serves
//! again on the same port.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

pub const TYPE_RESPONSE: i32 = 0;
pub const TYPE_COMMAND: i32 = 2;
pub const TYPE_AUTH_RESPONSE: i32 = 2;
pub const TYPE_LOGIN: i32 = 3;
/// Minecraft splits long answers into packets of this many bytes.
pub const SPLIT_AT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    /// Accepts and reads, never writes.
    Silent,
}

#[derive(Default)]
struct Shared {
    players: Mutex<Vec<String>>,
    commands: Mutex<Vec<String>>,
    logins: AtomicUsize,
    failed_logins: AtomicUsize,
    connections: AtomicUsize,
    /// While set, every packet is read and dropped unanswered.
    hanging: AtomicBool,
    whitelist: Mutex<Vec<String>>,
    /// Names Mojang does not know (`whitelist add` answers `That player does not exist`).
    unknown_profiles: Mutex<Vec<String>>,
    /// `(player, JSON)` of every `tellraw` that reached an online player.
    whispers: Mutex<Vec<(String, String)>>,
}

pub struct FakeRcon {
    pub port: u16,
    password: String,
    mode: Mode,
    shared: Arc<Shared>,
    stop: Option<watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRcon {
    /// A server on a free port accepting `password`.
    pub fn start(password: &str) -> Self {
        Self::launch(0, password, Mode::Normal, Arc::default())
    }

    /// A server that accepts TCP connections and never answers.
    pub fn silent() -> Self {
        Self::launch(0, "unused", Mode::Silent, Arc::default())
    }

    fn launch(port: u16, password: &str, mode: Mode, shared: Arc<Shared>) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let thread = {
            let (password, shared) = (password.to_owned(), shared.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fake rcon runtime");
                rt.block_on(serve(port, password, mode, shared, stop_rx, port_tx));
            })
        };
        let port = port_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fake rcon did not start")
            .expect("fake rcon could not bind");
        Self {
            port,
            password: password.to_owned(),
            mode,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The environment that points the daemon's `default` server at this fake, with the
    /// password it accepts: `RCON_HOST`, `RCON_PORT`, `RCON_PASSWORD`.
    pub fn env(&self) -> std::collections::HashMap<String, String> {
        self.env_with_password(&self.password)
    }

    /// The same environment with `password` (another one, to see it refused).
    pub fn env_with_password(&self, password: &str) -> std::collections::HashMap<String, String> {
        [
            ("RCON_HOST", "127.0.0.1".to_owned()),
            ("RCON_PORT", self.port.to_string()),
            ("RCON_PASSWORD", password.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Closes the listener and every open connection; the port is free when this returns.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops, then serves again on the same port (players and the command log are kept).
    pub fn restart(&mut self) {
        self.stop();
        let again = Self::launch(self.port, &self.password, self.mode, self.shared.clone());
        *self = again;
    }

    /// Keeps accepting and reading, answers nothing (logins included) until `answer_again`.
    pub fn hang(&self) {
        self.shared.hanging.store(true, Ordering::SeqCst);
    }

    /// Answers again. Packets that arrived during the hang stay unanswered.
    pub fn answer_again(&self) {
        self.shared.hanging.store(false, Ordering::SeqCst);
    }

    /// Closes the port: connections are refused (and open ones closed) until `come_back`.
    pub fn refuse(&mut self) {
        self.stop();
    }

    /// Serves again on the same port after `refuse`.
    pub fn come_back(&mut self) {
        self.restart();
    }

    pub fn set_players(&self, names: &[&str]) {
        *self.shared.players.lock().unwrap() = names.iter().map(|n| (*n).to_owned()).collect();
    }

    pub fn set_whitelist(&self, names: &[&str]) {
        *self.shared.whitelist.lock().unwrap() = names.iter().map(|n| (*n).to_owned()).collect();
    }

    pub fn set_whitelist_owned(&self, names: Vec<String>) {
        *self.shared.whitelist.lock().unwrap() = names;
    }

    pub fn whitelist(&self) -> Vec<String> {
        self.shared.whitelist.lock().unwrap().clone()
    }

    pub fn is_whitelisted(&self, name: &str) -> bool {
        self.whitelist()
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }

    pub fn set_unknown_profiles(&self, names: &[&str]) {
        *self.shared.unknown_profiles.lock().unwrap() =
            names.iter().map(|n| (*n).to_owned()).collect();
    }

    pub fn whispers(&self) -> Vec<(String, String)> {
        self.shared.whispers.lock().unwrap().clone()
    }

    /// The link code last whispered to `player` (what they read in game).
    pub fn whispered_code(&self, player: &str) -> Option<String> {
        let (_, json) = self
            .whispers()
            .into_iter()
            .rev()
            .find(|(p, _)| p.eq_ignore_ascii_case(player))?;
        let after = json.split("/mc verify ").nth(1)?;
        Some(
            after
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect(),
        )
    }

    /// Commands received whose text starts with `prefix`.
    pub fn count_prefix(&self, prefix: &str) -> usize {
        self.commands()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    /// Every non-empty command received, in order.
    pub fn commands(&self) -> Vec<String> {
        self.shared.commands.lock().unwrap().clone()
    }

    pub fn count(&self, command: &str) -> usize {
        self.commands().iter().filter(|c| *c == command).count()
    }

    pub fn logins(&self) -> usize {
        self.shared.logins.load(Ordering::SeqCst)
    }

    pub fn failed_logins(&self) -> usize {
        self.shared.failed_logins.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FakeRcon {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(
    port: u16,
    password: String,
    mode: Mode,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    port_tx: std::sync::mpsc::Sender<std::io::Result<u16>>,
) {
    // SO_REUSEADDR so a restart can bind the port its closed connections leave in TIME_WAIT.
    let bound = (|| {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(([127, 0, 0, 1], port).into())?;
        let listener = socket.listen(128)?;
        let port = listener.local_addr()?.port();
        Ok((listener, port))
    })();
    let listener = match bound {
        Ok((listener, port)) => {
            let _ = port_tx.send(Ok(port));
            listener
        }
        Err(e) => {
            let _ = port_tx.send(Err(e));
            return;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((socket, _)) = accepted else { continue };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let (password, shared, mut stop) = (password.clone(), shared.clone(), stop.clone());
                tasks.spawn(async move {
                    tokio::select! {
                        _ = stop.changed() => {}
                        _ = connection(socket, &password, mode, &shared) => {}
                    }
                });
            }
        }
    }
    // Dropping the tasks closes every connection.
    tasks.shutdown().await;
}

pub fn packet(id: i32, kind: i32, body: &[u8]) -> Vec<u8> {
    let length = i32::try_from(10 + body.len()).expect("packet size");
    let mut out = Vec::with_capacity(14 + body.len());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&[0, 0]);
    out
}

async fn read_packet(socket: &mut TcpStream) -> std::io::Result<(i32, i32, String)> {
    let length = socket.read_i32_le().await?;
    let id = socket.read_i32_le().await?;
    let kind = socket.read_i32_le().await?;
    let body_len = usize::try_from(length - 10).unwrap_or(0);
    let mut body = vec![0u8; body_len];
    socket.read_exact(&mut body).await?;
    let mut nulls = [0u8; 2];
    socket.read_exact(&mut nulls).await?;
    Ok((id, kind, String::from_utf8_lossy(&body).into_owned()))
}

async fn connection(
    mut socket: TcpStream,
    password: &str,
    mode: Mode,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut authenticated = false;
    loop {
        let (id, kind, body) = read_packet(&mut socket).await?;
        if mode == Mode::Silent || shared.hanging.load(Ordering::SeqCst) {
            continue;
        }
        match kind {
            TYPE_LOGIN => {
                if body == password {
                    authenticated = true;
                    shared.logins.fetch_add(1, Ordering::SeqCst);
                    socket
                        .write_all(&packet(id, TYPE_AUTH_RESPONSE, b""))
                        .await?;
                } else {
                    shared.failed_logins.fetch_add(1, Ordering::SeqCst);
                    socket
                        .write_all(&packet(-1, TYPE_AUTH_RESPONSE, b""))
                        .await?;
                    return Ok(());
                }
            }
            TYPE_COMMAND if authenticated => {
                if body.is_empty() {
                    socket.write_all(&packet(id, TYPE_RESPONSE, b"")).await?;
                    continue;
                }
                shared.commands.lock().unwrap().push(body.clone());
                if !answer(&mut socket, id, &body, shared).await? {
                    return Ok(());
                }
            }
            // Minecraft drops a connection that sends commands before logging in.
            _ => return Ok(()),
        }
    }
}

/// Answers one command; false when the connection must end.
async fn answer(
    socket: &mut TcpStream,
    id: i32,
    command: &str,
    shared: &Shared,
) -> std::io::Result<bool> {
    let (root, args) = command.split_once(' ').unwrap_or((command, ""));
    let single = |text: String| packet(id, TYPE_RESPONSE, text.as_bytes());
    // Minecraft splits a long answer into packets of 4,096 bytes.
    let split = |text: String| {
        if text.len() <= SPLIT_AT {
            return packet(id, TYPE_RESPONSE, text.as_bytes());
        }
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(SPLIT_AT) {
            out.extend(packet(id, TYPE_RESPONSE, chunk));
        }
        out
    };
    let bytes = match root {
        "list" => {
            let players = shared.players.lock().unwrap().clone();
            single(format!(
                "There are {} of a max of 20 players online: {}",
                players.len(),
                players.join(", ")
            ))
        }
        "say" => return Ok(true),
        "echo" => single(args.to_owned()),
        "slow" => {
            tokio::time::sleep(Duration::from_millis(args.parse().unwrap_or(0))).await;
            single("done".to_owned())
        }
        "colors" => single("§aGreen §lbold§r text".to_owned()),
        "big" => single(filler(args.parse().unwrap_or(0))),
        "multi" => {
            let text = filler(args.parse().unwrap_or(0));
            let mut out = Vec::new();
            for chunk in text.as_bytes().chunks(SPLIT_AT) {
                out.extend(packet(id, TYPE_RESPONSE, chunk));
            }
            out
        }
        "drop" => {
            let whole = packet(id, TYPE_RESPONSE, filler(100).as_bytes());
            socket.write_all(&whole[..whole.len() / 2]).await?;
            socket.flush().await?;
            return Ok(false);
        }
        "hang" => {
            std::future::pending::<()>().await;
            return Ok(false);
        }
        "whitelist" => split(whitelist(args, shared)),
        "tellraw" => {
            let (player, json) = args.split_once(' ').unwrap_or((args, ""));
            let online = shared
                .players
                .lock()
                .unwrap()
                .iter()
                .any(|p| p.eq_ignore_ascii_case(player));
            if online {
                shared
                    .whispers
                    .lock()
                    .unwrap()
                    .push((player.to_owned(), json.to_owned()));
                single(String::new())
            } else {
                single("No player was found".to_owned())
            }
        }
        "kick" => {
            let (player, reason) = args
                .split_once(' ')
                .unwrap_or((args, "Kicked by an operator"));
            let mut players = shared.players.lock().unwrap();
            match players.iter().position(|p| p.eq_ignore_ascii_case(player)) {
                Some(i) => {
                    let name = players.remove(i);
                    single(format!("Kicked {name}: {reason}"))
                }
                None => single("No player was found".to_owned()),
            }
        }
        "op" => single(format!("Made {args} a server operator")),
        "stop" => single("Stopping the server".to_owned()),
        _ => single("Unknown or incomplete command, see below for error".to_owned()),
    };
    socket.write_all(&bytes).await?;
    Ok(true)
}

/// `whitelist add|remove|list` as Minecraft answers them. A long list goes out as one text
/// here; `answer` splits it into packets.
fn whitelist(args: &str, shared: &Shared) -> String {
    let (action, name) = args.split_once(' ').unwrap_or((args, ""));
    let mut list = shared.whitelist.lock().unwrap();
    let position = list.iter().position(|n| n.eq_ignore_ascii_case(name));
    match action {
        "add" => {
            if shared
                .unknown_profiles
                .lock()
                .unwrap()
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
            {
                "That player does not exist".to_owned()
            } else if position.is_some() {
                "Player is already whitelisted".to_owned()
            } else {
                list.push(name.to_owned());
                format!("Added {name} to the whitelist")
            }
        }
        "remove" => match position {
            Some(i) => {
                let name = list.remove(i);
                format!("Removed {name} from the whitelist")
            }
            None => "Player is not whitelisted".to_owned(),
        },
        "list" if list.is_empty() => "There are no whitelisted players".to_owned(),
        "list" => format!(
            "There are {} whitelisted player(s): {}",
            list.len(),
            list.join(", ")
        ),
        _ => "Unknown or incomplete command, see below for error".to_owned(),
    }
}

/// `n` bytes of a repeating alphabet, so a reassembled answer can be checked byte for byte.
pub fn filler(n: usize) -> String {
    (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

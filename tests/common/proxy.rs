//! A loopback TCP proxy that can be cut, made to hang and restored, to make a real dependency
//! (Redis, PostgreSQL) go away, stop answering and come back without touching the shared
//! server; and paused and resumed, to make a client stop reading (a browser behind a stalled
//! network) without losing a byte.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up = 0,
    /// New connections are closed at once; open ones are dropped.
    Cut = 1,
    /// New connections are accepted and never answered; open ones stop forwarding (both ends
    /// stay open, as with a dependency that froze).
    Hang = 2,
}

impl Mode {
    fn from_u8(v: u8) -> Mode {
        match v {
            1 => Mode::Cut,
            2 => Mode::Hang,
            _ => Mode::Up,
        }
    }
}

pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    changes: watch::Sender<u64>,
    paused: watch::Sender<bool>,
}

/// Copies `from` to `to` until `from` ends (then shuts `to`'s write side), reading nothing
/// while `paused` holds: the sender's buffers then fill as they would for a peer that stopped
/// reading.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut paused: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if paused.wait_for(|p| !*p).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Bytes read just before a pause are still delivered: nothing is lost, only held.
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

impl Proxy {
    /// Forwards 127.0.0.1:<port> to `target` (host:port) on its own thread and runtime, so it
    /// keeps running whatever the test's runtime does.
    pub fn start(target: String) -> Proxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let port = std_listener.local_addr().expect("addr").port();
        let mode = Arc::new(AtomicU8::new(Mode::Up as u8));
        let (changes, changes_rx) = watch::channel(0u64);
        let (paused, paused_rx) = watch::channel(false);
        let shared = mode.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("listener");
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    let mut changed = changes_rx.clone();
                    // Only changes after this connection was accepted concern it.
                    changed.borrow_and_update();
                    match Mode::from_u8(shared.load(Ordering::SeqCst)) {
                        Mode::Cut => {
                            drop(inbound);
                            continue;
                        }
                        Mode::Hang => {
                            // Held open, unanswered, until the mode changes.
                            tokio::spawn(async move {
                                let _ = changed.changed().await;
                                drop(inbound);
                            });
                            continue;
                        }
                        Mode::Up => {}
                    }
                    let target = target.clone();
                    let shared = shared.clone();
                    let paused = paused_rx.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(&target).await else {
                            return;
                        };
                        let copied = async {
                            let (in_read, in_write) = inbound.split();
                            let (out_read, out_write) = outbound.split();
                            tokio::join!(
                                pump(in_read, out_write, paused.clone()),
                                pump(out_read, in_write, paused.clone()),
                            );
                        };
                        tokio::select! {
                            _ = copied => return,
                            _ = changed.changed() => {}
                        }
                        if Mode::from_u8(shared.load(Ordering::SeqCst)) == Mode::Hang {
                            // Frozen: nothing moves until the next change, then it is dropped
                            // (its state is unknown to both ends).
                            let _ = changed.changed().await;
                        }
                        drop((inbound, outbound));
                    });
                }
            });
        });
        Proxy {
            port,
            mode,
            changes,
            paused,
        }
    }

    /// Open connections stop forwarding in both directions, holding what is sent (the sender's
    /// socket buffers fill, as for a peer that stopped reading); nothing is dropped.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Forwards what was held, then everything after it.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    fn set(&self, mode: Mode) {
        let before = self.mode.swap(mode as u8, Ordering::SeqCst);
        if before != mode as u8 {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Refuses new connections and drops every open one.
    pub fn cut(&self) {
        self.set(Mode::Cut);
    }

    /// Accepts new connections and never answers them; open ones stop forwarding.
    pub fn hang(&self) {
        self.set(Mode::Hang);
    }

    /// Forwards again (connections frozen by `hang` are closed).
    pub fn restore(&self) {
        self.set(Mode::Up);
    }
}

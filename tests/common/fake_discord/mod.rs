//! A fake Discord: REST API v10 and the gateway, on 127.0.0.1, speaking the real protocol so
//! that guildhall's real serenity client runs against it. It records every REST call and every
//! gateway frame the bot sends, so tests assert on what the bot did, not on its internals.
//!
//! Gateway: HELLO, IDENTIFY → READY (+ GUILD_CREATE for the shard's guilds), heartbeats and
//! ACKs, RESUME → RESUMED (or INVALID_SESSION when resumes are refused), dispatches on demand,
//! close codes (4004, 4014, any), plain drops, and outages: open sessions go silent or drop, and
//! every connection attempt is refused (answered 503, as Discord's load balancer does with no
//! gateway behind it, and counted) until the gateway comes back.
//! REST: gateway discovery, `/users/@me`, command bulk overwrite (or a 400 with field errors),
//! interaction callbacks (or a 5xx), member kick/ban/timeout, roles and members, messages
//! (create, list, bulk delete).
#![allow(dead_code)]

pub mod oauth;
pub mod payloads;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

pub use payloads::{FakeGuild, FakeMember, FakeRole, Opt, perms};

pub const BOT_ID: u64 = 900_000_000_000_000_001;
pub const APPLICATION_ID: u64 = 900_000_000_000_000_002;
pub const TOKEN: &str = "fake-bot-token.for-tests.only";
/// Heartbeat interval announced in HELLO; short so latency shows up quickly.
pub const HEARTBEAT_MS: u64 = 1_000;

/// One REST call as the fake received it.
#[derive(Debug, Clone)]
pub struct RestCall {
    pub method: String,
    /// Path without `/api/v10`, e.g. `/guilds/1/members/2`.
    pub path: String,
    pub query: String,
    pub body: Value,
    /// `X-Audit-Log-Reason`, URL-decoded.
    pub audit_reason: Option<String>,
    pub authorization: Option<String>,
    /// When the request arrived (before the fake did any work on it).
    pub received_at: Instant,
}

/// What the fake does when a shard identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnIdentify {
    Ready,
    Close(u16),
}

enum Control {
    Dispatch(String, Value),
    /// A dispatch whose data is already serialised (the benchmark's firehose).
    Raw(&'static str, Arc<str>),
    Close(u16),
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Ask the client to reconnect and resume (opcode 7), as Discord does before it moves a
    /// session to another gateway server.
    Reconnect,
    /// Stop answering (no heartbeat ACK, no event) while keeping the connection open, as a
    /// gateway that went away behind its load balancer does.
    Silence,
}

#[derive(Default)]
struct State {
    calls: Vec<RestCall>,
    on_identify: Option<OnIdentify>,
    connections: u32,
    identifies: Vec<Value>,
    /// RESUME frames received, accepted or not.
    resumes: u32,
    /// RESUMEs answered with INVALID_SESSION (not resumable).
    refused_resumes: u32,
    /// Answer RESUME with INVALID_SESSION `d: false`, as Discord does for an expired session.
    refuse_resume: bool,
    /// Status of every interaction callback (`None`: 204 as Discord answers).
    interaction_callback_status: Option<u16>,
    /// Refuse command registration with a 400 and these field errors (Discord's `errors`).
    command_registration_errors: Option<Value>,
    /// Close codes the bot sent.
    client_close_codes: Vec<u16>,
    sessions: HashMap<u32, mpsc::UnboundedSender<Control>>,
    guilds: BTreeMap<u64, FakeGuild>,
    recommended_shards: u32,
    /// Bans in force, as (guild, user): banning twice and lifting a ban that is not there
    /// answer as Discord does.
    bans: std::collections::HashSet<(u64, u64)>,
    /// Messages per channel, newest first, for purge.
    messages: HashMap<u64, Vec<Value>>,
    /// Artificial delay of REST answers (latency tests).
    rest_delay: Option<Duration>,
    /// When each INTERACTION_CREATE frame was written to the socket, by interaction id.
    interaction_sent_at: HashMap<String, Instant>,
    /// When each RESUMED and each READY was sent.
    resumed_at: Vec<Instant>,
    ready_at: Vec<Instant>,
    /// Connection attempts refused during outages, with when they came.
    refused_connections: Vec<Instant>,
    /// When the gateway last went away and came back.
    outage_began: Option<Instant>,
    back_at: Option<Instant>,
    /// Discord's OAuth2 side (`oauth.rs`).
    oauth: oauth::OAuthState,
}

pub struct FakeDiscord {
    /// REST base, what `DISCORD_PROXY_URL` is set to.
    pub url: String,
    pub gateway_url: String,
    state: Arc<Mutex<State>>,
    next_id: Arc<AtomicU64>,
    server: actix_web::dev::ServerHandle,
    /// `true` while the gateway's port accepts connections.
    gateway_up: tokio::sync::watch::Sender<bool>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    match state.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl FakeDiscord {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            recommended_shards: 1,
            ..State::default()
        }));
        let next_id = Arc::new(AtomicU64::new(1_100_000_000_000_000_000));

        let ws_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake gateway");
        let gateway_addr = ws_listener.local_addr().expect("addr");
        let gateway_url = format!("ws://{gateway_addr}");
        let (gateway_up, up) = tokio::sync::watch::channel(true);
        actix_web::rt::spawn(serve_gateway(
            ws_listener,
            gateway_addr,
            up,
            state.clone(),
            gateway_url.clone(),
        ));

        let http_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake rest");
        let url = format!("http://{}", http_listener.local_addr().expect("addr"));
        let data = web::Data::new(Rest {
            state: state.clone(),
            gateway_url: gateway_url.clone(),
            next_id: next_id.clone(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .default_service(web::to(rest))
        })
        .workers(1)
        .disable_signals()
        .listen(http_listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            url,
            gateway_url,
            state,
            next_id,
            server: handle,
            gateway_up,
        }
    }

    /// The gateway goes away silently: every session stops answering (heartbeats are no longer
    /// acknowledged, the connection stays open until the client gives up on it) and connection
    /// attempts are refused until `gateway_back`. REST keeps answering, as in a gateway outage.
    pub fn gateway_outage(&self) {
        self.go_down(|| Control::Silence);
    }

    /// The gateway goes away abruptly: every session's connection drops (no close frame) and
    /// connection attempts are refused until `gateway_back`.
    pub fn gateway_refuses(&self) {
        self.go_down(|| Control::Drop);
    }

    fn go_down(&self, how: fn() -> Control) {
        {
            let mut st = lock(&self.state);
            st.outage_began = Some(Instant::now());
            st.back_at = None;
        }
        self.gateway_up.send_replace(false);
        let st = lock(&self.state);
        for tx in st.sessions.values() {
            let _ = tx.send(how());
        }
    }

    /// The gateway accepts connections again.
    pub fn gateway_back(&self) {
        lock(&self.state).back_at = Some(Instant::now());
        self.gateway_up.send_replace(true);
    }

    /// Connection attempts refused during outages so far.
    pub fn refused_connections(&self) -> usize {
        lock(&self.state).refused_connections.len()
    }

    /// When the refused connection attempts came, oldest first.
    pub fn refused_connection_times(&self) -> Vec<Instant> {
        lock(&self.state).refused_connections.clone()
    }

    /// From the gateway coming back to the first RESUMED (or READY) sent after it.
    pub fn recovery_after_back(&self) -> Option<Duration> {
        let st = lock(&self.state);
        let back = st.back_at?;
        st.resumed_at
            .iter()
            .chain(st.ready_at.iter())
            .filter(|t| **t >= back)
            .min()
            .map(|t| t.saturating_duration_since(back))
    }

    /// RESUMEs are answered with INVALID_SESSION (`d: false`): the client must re-identify.
    pub fn set_refuse_resume(&self, refuse: bool) {
        lock(&self.state).refuse_resume = refuse;
    }

    pub fn refused_resumes(&self) -> u32 {
        lock(&self.state).refused_resumes
    }

    /// Interaction callbacks are answered with this status (a 5xx: the reply is not delivered).
    pub fn set_interaction_callback_status(&self, status: Option<u16>) {
        lock(&self.state).interaction_callback_status = status;
    }

    /// Command registration is refused with a 400 "Invalid Form Body" carrying these field
    /// errors, in Discord's nested `errors` shape.
    pub fn set_command_registration_errors(&self, errors: Option<Value>) {
        lock(&self.state).command_registration_errors = errors;
    }

    /// Environment for `spawn_app_with`: the token and the proxy pointing at this fake.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DISCORD_TOKEN".into(), TOKEN.into()),
            ("DISCORD_PROXY_URL".into(), self.url.clone()),
        ]
    }

    pub fn add_guild(&self, guild: FakeGuild) {
        lock(&self.state).guilds.insert(guild.id, guild);
    }

    pub fn guild(&self, id: u64) -> Option<FakeGuild> {
        lock(&self.state).guilds.get(&id).cloned()
    }

    /// A member's roles change, as a moderator would change them in Discord: REST answers
    /// the new roles and GUILD_MEMBER_UPDATE carries them to the bot on `shard`.
    pub fn change_member_roles(&self, shard: u32, guild_id: u64, user: u64, roles: Vec<u64>) {
        let member = {
            let mut st = lock(&self.state);
            let guild = st.guilds.get_mut(&guild_id).expect("known guild");
            let member = guild
                .members
                .iter_mut()
                .find(|m| m.id == user)
                .expect("known member");
            member.roles = roles;
            member.clone()
        };
        self.dispatch(
            shard,
            "GUILD_MEMBER_UPDATE",
            payloads::guild_member_update(guild_id, &member),
        );
    }

    /// A member leaves: REST no longer knows them and GUILD_MEMBER_REMOVE reaches the bot.
    pub fn member_leaves(&self, shard: u32, guild_id: u64, user: u64) {
        let member = {
            let mut st = lock(&self.state);
            let guild = st.guilds.get_mut(&guild_id).expect("known guild");
            let i = guild
                .members
                .iter()
                .position(|m| m.id == user)
                .expect("known member");
            guild.members.remove(i)
        };
        self.dispatch(
            shard,
            "GUILD_MEMBER_REMOVE",
            json!({
                "guild_id": guild_id.to_string(),
                "user": payloads::user(member.id, &member.username, member.bot)
            }),
        );
    }

    pub fn set_on_identify(&self, mode: OnIdentify) {
        lock(&self.state).on_identify = Some(mode);
    }

    pub fn set_recommended_shards(&self, n: u32) {
        lock(&self.state).recommended_shards = n;
    }

    pub fn set_messages(&self, channel: u64, messages: Vec<Value>) {
        lock(&self.state).messages.insert(channel, messages);
    }

    pub fn set_rest_delay(&self, delay: Option<Duration>) {
        lock(&self.state).rest_delay = delay;
    }

    pub fn next_snowflake(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn calls(&self) -> Vec<RestCall> {
        lock(&self.state).calls.clone()
    }

    pub fn calls_matching(&self, method: &str, path_prefix: &str) -> Vec<RestCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.path.starts_with(path_prefix))
            .collect()
    }

    /// Calls that changed something on Discord (everything but GETs and interaction replies).
    pub fn side_effects(&self) -> Vec<RestCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.method != "GET" && !c.path.starts_with("/interactions/"))
            .filter(|c| !c.path.starts_with("/applications/"))
            .collect()
    }

    /// Interaction callbacks (`POST /interactions/{id}/{token}/callback`) for one interaction.
    pub fn replies_to(&self, interaction_id: u64) -> Vec<Value> {
        let prefix = format!("/interactions/{interaction_id}/");
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path.starts_with(&prefix))
            .map(|c| c.body)
            .collect()
    }

    /// From the moment the INTERACTION_CREATE frame was written to the moment the bot's
    /// callback arrived: the bot's round trip, without the fake's own work on either side.
    pub fn interaction_round_trip(&self, interaction_id: u64) -> Option<Duration> {
        let st = lock(&self.state);
        let sent = st.interaction_sent_at.get(&interaction_id.to_string())?;
        let prefix = format!("/interactions/{interaction_id}/");
        st.calls
            .iter()
            .find(|c| c.method == "POST" && c.path.starts_with(&prefix))
            .map(|c| c.received_at.saturating_duration_since(*sent))
    }

    /// Forgets recorded REST calls (long benchmarks).
    pub fn clear_calls(&self) {
        let mut st = lock(&self.state);
        st.calls.clear();
        st.interaction_sent_at.clear();
    }

    pub fn connections(&self) -> u32 {
        lock(&self.state).connections
    }

    pub fn identifies(&self) -> usize {
        lock(&self.state).identifies.len()
    }

    pub fn identify_payloads(&self) -> Vec<Value> {
        lock(&self.state).identifies.clone()
    }

    pub fn resumes(&self) -> u32 {
        lock(&self.state).resumes
    }

    pub fn client_close_codes(&self) -> Vec<u16> {
        lock(&self.state).client_close_codes.clone()
    }

    pub fn connected_shards(&self) -> Vec<u32> {
        let mut v: Vec<u32> = lock(&self.state)
            .sessions
            .iter()
            .filter(|(_, tx)| !tx.is_closed())
            .map(|(id, _)| *id)
            .collect();
        v.sort_unstable();
        v
    }

    /// Waits until `shard` has identified (or resumed) and holds an open session.
    pub async fn wait_for_session(&self, shard: u32, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.connected_shards().contains(&shard) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Sends a dispatch to a shard. Panics if serenity's own model would not parse it: a payload
    /// with a missing field would otherwise be dropped silently by the client.
    pub fn dispatch(&self, shard: u32, event: &str, data: Value) {
        check_parses(event, &data);
        let st = lock(&self.state);
        let tx = st.sessions.get(&shard).expect("shard has a session");
        tx.send(Control::Dispatch(event.to_owned(), data))
            .expect("session is open");
    }

    /// Sends a prepared frame without the parse check (the benchmark, which checked once).
    pub fn dispatch_unchecked(&self, shard: u32, event: &str, data: Value) {
        let st = lock(&self.state);
        if let Some(tx) = st.sessions.get(&shard) {
            let _ = tx.send(Control::Dispatch(event.to_owned(), data));
        }
    }

    /// Sends an already serialised (and once checked) event; only the frame around it is built
    /// per send, so the fake spends as little as possible of the shared CPU.
    pub fn dispatch_raw(&self, shard: u32, event: &'static str, data: Arc<str>) {
        let st = lock(&self.state);
        if let Some(tx) = st.sessions.get(&shard) {
            let _ = tx.send(Control::Raw(event, data));
        }
    }

    pub fn close_session(&self, shard: u32, code: u16) {
        if let Some(tx) = lock(&self.state).sessions.get(&shard) {
            let _ = tx.send(Control::Close(code));
        }
    }

    /// Sends opcode 7 (Reconnect) to a shard's session.
    pub fn request_reconnect(&self, shard: u32) {
        if let Some(tx) = lock(&self.state).sessions.get(&shard) {
            let _ = tx.send(Control::Reconnect);
        }
    }

    pub fn drop_session(&self, shard: u32) {
        if let Some(tx) = lock(&self.state).sessions.get(&shard) {
            let _ = tx.send(Control::Drop);
        }
    }

    /// An INTERACTION_CREATE for a slash command in `guild_id`, invoked by `invoker`, with the
    /// invoker's and the bot's permissions computed from the guild's roles (or forced).
    pub fn command_interaction(
        &self,
        guild_id: u64,
        invoker: u64,
        command: &str,
        options: Vec<Opt>,
    ) -> (u64, Value) {
        let guild = self.guild(guild_id).unwrap_or_else(|| FakeGuild {
            id: guild_id,
            name: "unknown".into(),
            owner_id: 1,
            roles: vec![],
            members: vec![FakeMember {
                id: invoker,
                username: "stranger".into(),
                roles: vec![],
                bot: false,
            }],
            channels: vec![],
        });
        let invoker_perms = guild.permissions_of(invoker);
        let bot_perms = guild.permissions_of(BOT_ID);
        self.command_interaction_with(&guild, invoker, invoker_perms, bot_perms, command, options)
    }

    pub fn command_interaction_with(
        &self,
        guild: &FakeGuild,
        invoker: u64,
        invoker_perms: u64,
        bot_perms: u64,
        command: &str,
        options: Vec<Opt>,
    ) -> (u64, Value) {
        let id = self.next_snowflake();
        let invoker_member = guild.member(invoker).cloned().unwrap_or(FakeMember {
            id: invoker,
            username: format!("user{invoker}"),
            roles: vec![],
            bot: false,
        });
        // Users named in options are resolved, as Discord does.
        let mut users = serde_json::Map::new();
        let mut members = serde_json::Map::new();
        fn collect(opts: &[Value], out: &mut Vec<u64>) {
            for o in opts {
                if o["type"] == 6
                    && let Some(id) = o["value"].as_str().and_then(|s| s.parse().ok())
                {
                    out.push(id);
                }
                if let Some(inner) = o["options"].as_array() {
                    collect(inner, out);
                }
            }
        }
        let options: Vec<Value> = options.iter().map(Opt::to_json).collect();
        let mut user_ids = Vec::new();
        collect(&options, &mut user_ids);
        for uid in user_ids {
            match guild.member(uid) {
                Some(m) => {
                    users.insert(uid.to_string(), payloads::user(m.id, &m.username, m.bot));
                    let mut pm = payloads::member(guild.id, m, Some(guild.permissions_of(uid)));
                    if let Some(obj) = pm.as_object_mut() {
                        obj.remove("user");
                        obj.remove("guild_id");
                    }
                    members.insert(uid.to_string(), pm);
                }
                None => {
                    users.insert(
                        uid.to_string(),
                        payloads::user(uid, &format!("user{uid}"), false),
                    );
                }
            }
        }
        let channel_id = guild.channels.first().map_or(guild.id, |c| c.0);
        let payload = json!({
            "id": id.to_string(),
            "application_id": APPLICATION_ID.to_string(),
            "type": 2,
            "data": {
                "id": "1000",
                "name": command,
                "type": 1,
                "options": options,
                "resolved": {"users": users, "members": members},
                "guild_id": guild.id.to_string()
            },
            "guild_id": guild.id.to_string(),
            "channel": payloads::channel(guild.id, channel_id, "general"),
            "channel_id": channel_id.to_string(),
            "member": payloads::member(guild.id, &invoker_member, Some(invoker_perms)),
            "token": format!("interaction-token-{id}"),
            "version": 1,
            "app_permissions": bot_perms.to_string(),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": guild.id.to_string()},
            "context": 0,
            "attachment_size_limit": 8_388_608
        });
        (id, payload)
    }

    pub fn stop(&self) {
        let handle = self.server.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

/// Panics unless serenity parses `data` as the named event (not as `Event::Unknown`).
pub fn check_parses(event: &str, data: &Value) {
    use serenity::model::event::{Event, GatewayEvent};
    let frame = json!({"op": 0, "s": 1, "t": event, "d": data});
    match serde_json::from_value::<GatewayEvent>(frame) {
        Ok(GatewayEvent::Dispatch(_, Event::Unknown(_))) => {
            panic!("serenity does not recognise the {event} payload")
        }
        Ok(GatewayEvent::Dispatch(..)) => {}
        Ok(other) => panic!("{event} parsed as a non-dispatch: {other:?}"),
        Err(e) => panic!("serenity rejects the {event} payload: {e}"),
    }
}

async fn send_json<S>(ws: &mut S, value: &Value) -> bool
where
    S: SinkExt<WsMessage> + Unpin,
{
    ws.send(WsMessage::Text(value.to_string())).await.is_ok()
}

/// Accepts gateway connections. While `up` is false (an outage) each connection attempt is
/// counted and refused: the upgrade is answered `503 Service Unavailable` and the connection
/// closed, as Discord's edge does with no gateway behind it. The client sees a failed connect.
async fn serve_gateway(
    listener: tokio::net::TcpListener,
    _addr: std::net::SocketAddr,
    up: tokio::sync::watch::Receiver<bool>,
    state: Arc<Mutex<State>>,
    gateway_url: String,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let state = state.clone();
        if !*up.borrow() {
            lock(&state).refused_connections.push(Instant::now());
            actix_web::rt::spawn(refuse(stream));
            continue;
        }
        let gateway_url = gateway_url.clone();
        actix_web::rt::spawn(async move {
            if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                gateway_session(ws, state, gateway_url).await;
            }
        });
    }
}

async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let _ = stream
        .write_all(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .await;
    let _ = stream.shutdown().await;
}

async fn gateway_session(
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    state: Arc<Mutex<State>>,
    gateway_url: String,
) {
    let (mut sink, mut stream) = ws.split();
    lock(&state).connections += 1;
    if !send_json(
        &mut sink,
        &json!({"op": 10, "s": null, "t": null, "d": {"heartbeat_interval": HEARTBEAT_MS}}),
    )
    .await
    {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Control>();
    let mut seq: u64 = 0;
    let mut shard: Option<u32> = None;
    loop {
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(msg)) = incoming else { break };
                let text = match msg {
                    WsMessage::Text(t) => t,
                    WsMessage::Close(frame) => {
                        let code = frame.map_or(1005, |f| u16::from(f.code));
                        lock(&state).client_close_codes.push(code);
                        let _ = sink.send(WsMessage::Close(None)).await;
                        break;
                    }
                    _ => continue,
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else { break };
                match frame["op"].as_u64() {
                    Some(1) => {
                        let acked = send_json(&mut sink, &json!({"op": 11, "s": null, "t": null, "d": null})).await;
                        if !acked {
                            break;
                        }
                    }
                    Some(2) => {
                        let d = frame["d"].clone();
                        let id = d["shard"][0].as_u64().unwrap_or(0) as u32;
                        let total = d["shard"][1].as_u64().unwrap_or(1).max(1) as u32;
                        let mode = {
                            let mut st = lock(&state);
                            st.identifies.push(d.clone());
                            st.on_identify.unwrap_or(OnIdentify::Ready)
                        };
                        if let OnIdentify::Close(code) = mode {
                            let _ = sink
                                .send(WsMessage::Close(Some(CloseFrame {
                                    code: CloseCode::from(code),
                                    reason: "closed by the fake".into(),
                                })))
                                .await;
                            break;
                        }
                        if d["token"].as_str() != Some(TOKEN) && d["token"].as_str() != Some(&format!("Bot {TOKEN}")) {
                            let _ = sink
                                .send(WsMessage::Close(Some(CloseFrame {
                                    code: CloseCode::from(4004),
                                    reason: "Authentication failed.".into(),
                                })))
                                .await;
                            break;
                        }
                        shard = Some(id);
                        let guilds: Vec<FakeGuild> = lock(&state)
                            .guilds
                            .values()
                            .filter(|g| ((g.id >> 22) % u64::from(total)) == u64::from(id))
                            .cloned()
                            .collect();
                        let ready = json!({
                            "v": 10,
                            "user": payloads::user(BOT_ID, "guildhall", true),
                            "guilds": guilds.iter().map(|g| json!({"id": g.id.to_string(), "unavailable": true})).collect::<Vec<_>>(),
                            "session_id": format!("session-{id}-{}", rand_suffix()),
                            "resume_gateway_url": gateway_url,
                            "shard": [id, total],
                            "application": {"id": APPLICATION_ID.to_string(), "flags": 0}
                        });
                        check_parses("READY", &ready);
                        seq += 1;
                        if !send_json(&mut sink, &json!({"op": 0, "s": seq, "t": "READY", "d": ready})).await {
                            break;
                        }
                        lock(&state).ready_at.push(Instant::now());
                        for g in guilds {
                            let payload = payloads::guild_create(&g);
                            check_parses("GUILD_CREATE", &payload);
                            seq += 1;
                            if !send_json(&mut sink, &json!({"op": 0, "s": seq, "t": "GUILD_CREATE", "d": payload})).await {
                                break;
                            }
                        }
                        lock(&state).sessions.insert(id, tx.clone());
                    }
                    Some(6) => {
                        let d = &frame["d"];
                        // The session id encodes the shard, as Discord's sessions belong to one.
                        let id = d["session_id"]
                            .as_str()
                            .and_then(|s| s.split('-').nth(1))
                            .and_then(|s| s.parse::<u32>().ok())
                            .unwrap_or(0);
                        let refused = {
                            let mut st = lock(&state);
                            st.resumes += 1;
                            if st.refuse_resume {
                                st.refused_resumes += 1;
                            }
                            st.refuse_resume
                        };
                        if refused {
                            // Discord answers a RESUME of an expired session with
                            // INVALID_SESSION, not resumable; the client must IDENTIFY afresh.
                            if !send_json(&mut sink, &json!({"op": 9, "s": null, "t": null, "d": false})).await {
                                break;
                            }
                            continue;
                        }
                        seq = d["seq"].as_u64().unwrap_or(seq);
                        shard = Some(id);
                        lock(&state).sessions.insert(id, tx.clone());
                        seq += 1;
                        if !send_json(&mut sink, &json!({"op": 0, "s": seq, "t": "RESUMED", "d": {"_trace": ["fake"]}})).await {
                            break;
                        }
                        lock(&state).resumed_at.push(Instant::now());
                    }
                    _ => {}
                }
            }
            control = rx.recv() => {
                match control {
                    Some(Control::Dispatch(t, d)) => {
                        seq += 1;
                        let interaction = (t == "INTERACTION_CREATE").then(|| d["id"].as_str().unwrap_or_default().to_owned());
                        if !send_json(&mut sink, &json!({"op": 0, "s": seq, "t": t, "d": d})).await {
                            break;
                        }
                        if let Some(id) = interaction {
                            lock(&state).interaction_sent_at.insert(id, Instant::now());
                        }
                    }
                    Some(Control::Raw(t, d)) => {
                        seq += 1;
                        let frame = format!(r#"{{"op":0,"s":{seq},"t":"{t}","d":{d}}}"#);
                        if sink.send(WsMessage::Text(frame)).await.is_err() {
                            break;
                        }
                    }
                    Some(Control::Close(code)) => {
                        let _ = sink
                            .send(WsMessage::Close(Some(CloseFrame {
                                code: CloseCode::from(code),
                                reason: "closed by the fake".into(),
                            })))
                            .await;
                        break;
                    }
                    Some(Control::Reconnect) => {
                        if !send_json(&mut sink, &json!({"op": 7, "s": null, "t": null, "d": null})).await {
                            break;
                        }
                    }
                    Some(Control::Silence) => {
                        // Read, and ignore, whatever the client sends until it hangs up.
                        while let Some(Ok(msg)) = stream.next().await {
                            if let WsMessage::Close(frame) = msg {
                                let code = frame.map_or(1005, |f| u16::from(f.code));
                                lock(&state).client_close_codes.push(code);
                                break;
                            }
                        }
                        break;
                    }
                    Some(Control::Drop) | None => break,
                }
            }
        }
    }
    if let Some(id) = shard {
        let mut st = lock(&state);
        if st.sessions.get(&id).is_some_and(|s| s.same_channel(&tx)) {
            st.sessions.remove(&id);
        }
    }
    // Dropping both halves closes the TCP connection without a close frame.
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

struct Rest {
    state: Arc<Mutex<State>>,
    gateway_url: String,
    next_id: Arc<AtomicU64>,
}

fn discord_error(status: u16, code: u32, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
        .json(json!({"code": code, "message": message}))
}

async fn rest(req: HttpRequest, body: web::Bytes, data: web::Data<Rest>) -> HttpResponse {
    if let Some(answer) = oauth::route(&req, &body, &data.state).await {
        return answer;
    }
    let received_at = Instant::now();
    let method = req.method().as_str().to_owned();
    let full = req.path().to_owned();
    let Some(path) = full.strip_prefix("/api/v10") else {
        return discord_error(404, 0, "404: Not Found");
    };
    let path = path.to_owned();
    let body_json: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&body)}))
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let call = RestCall {
        method: method.clone(),
        path: path.clone(),
        query: req.query_string().to_owned(),
        body: body_json.clone(),
        audit_reason: header("x-audit-log-reason").map(|r| {
            url::form_urlencoded::parse(format!("r={r}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or(r)
        }),
        authorization: header("authorization"),
        received_at,
    };
    let delay = {
        let mut st = lock(&data.state);
        st.calls.push(call.clone());
        st.rest_delay
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    // `GET /gateway` needs no token on Discord either.
    if path != "/gateway" && call.authorization.as_deref() != Some(&format!("Bot {TOKEN}")) {
        return discord_error(401, 0, "401: Unauthorized");
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let id = |i: usize| segments.get(i).and_then(|s| s.parse::<u64>().ok());
    let st_guild = |g: u64| lock(&data.state).guilds.get(&g).cloned();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["gateway"]) => HttpResponse::Ok().json(json!({"url": data.gateway_url})),
        ("GET", ["gateway", "bot"]) => {
            let shards = lock(&data.state).recommended_shards;
            HttpResponse::Ok().json(json!({
                "url": data.gateway_url,
                "shards": shards,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
            }))
        }
        ("GET", ["users", "@me"]) => {
            HttpResponse::Ok().json(payloads::user(BOT_ID, "guildhall", true))
        }
        ("PUT", ["applications", _, "commands"])
        | ("PUT", ["applications", _, "guilds", _, "commands"]) => {
            if let Some(errors) = lock(&data.state).command_registration_errors.clone() {
                return HttpResponse::BadRequest().json(
                    json!({"code": 50035, "message": "Invalid Form Body", "errors": errors}),
                );
            }
            let guild_id = if segments.len() == 5 { id(3) } else { None };
            let commands: Vec<Value> = body_json
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    let cid = data.next_id.fetch_add(1, Ordering::Relaxed).to_string();
                    c["id"] = json!(cid);
                    c["application_id"] = json!(APPLICATION_ID.to_string());
                    c["version"] = json!(cid);
                    if c.get("type").is_none() {
                        c["type"] = json!(1);
                    }
                    if let Some(g) = guild_id {
                        c["guild_id"] = json!(g.to_string());
                    }
                    c
                })
                .collect();
            HttpResponse::Ok().json(commands)
        }
        ("POST", ["interactions", _, _, "callback"]) => {
            match lock(&data.state).interaction_callback_status {
                Some(status) => discord_error(status, 0, "500: Internal Server Error"),
                None => HttpResponse::NoContent().finish(),
            }
        }
        ("DELETE", ["guilds", _, "members", _]) => HttpResponse::NoContent().finish(),
        ("PUT", ["guilds", _, "bans", _]) => {
            if let (Some(g), Some(u)) = (id(1), id(3)) {
                lock(&data.state).bans.insert((g, u));
            }
            HttpResponse::NoContent().finish()
        }
        ("DELETE", ["guilds", _, "bans", _]) => match (id(1), id(3)) {
            (Some(g), Some(u)) if lock(&data.state).bans.remove(&(g, u)) => {
                HttpResponse::NoContent().finish()
            }
            _ => discord_error(404, 10026, "Unknown Ban"),
        },
        ("GET", ["guilds", _, "bans", _]) => match (id(1), id(3)) {
            (Some(g), Some(u)) if lock(&data.state).bans.contains(&(g, u)) => HttpResponse::Ok()
                .json(json!({"reason": null, "user": payloads::user(u, "banned", false)})),
            _ => discord_error(404, 10026, "Unknown Ban"),
        },
        ("GET", ["guilds", _, "roles"]) => match id(1).and_then(st_guild) {
            Some(g) => HttpResponse::Ok().json(
                g.roles
                    .iter()
                    .map(|r| payloads::role(g.id, r))
                    .collect::<Vec<_>>(),
            ),
            None => discord_error(404, 10004, "Unknown Guild"),
        },
        ("GET", ["guilds", _]) => match id(1).and_then(st_guild) {
            Some(g) => HttpResponse::Ok().json(payloads::guild_base(&g)),
            None => discord_error(404, 10004, "Unknown Guild"),
        },
        ("GET", ["guilds", _, "members", _]) | ("PATCH", ["guilds", _, "members", _]) => {
            match (id(1).and_then(st_guild), id(3)) {
                (Some(g), Some(uid)) => match g.member(uid) {
                    Some(m) => {
                        let mut v = payloads::member(g.id, m, None);
                        if method == "PATCH"
                            && let Some(until) = body_json.get("communication_disabled_until")
                        {
                            v["communication_disabled_until"] = until.clone();
                        }
                        HttpResponse::Ok().json(v)
                    }
                    None => discord_error(404, 10007, "Unknown Member"),
                },
                _ => discord_error(404, 10004, "Unknown Guild"),
            }
        }
        ("POST", ["channels", _, "messages"]) => {
            let channel = id(1).unwrap_or(0);
            let mid = data.next_id.fetch_add(1, Ordering::Relaxed);
            let bot = FakeMember {
                id: BOT_ID,
                username: "guildhall".into(),
                roles: vec![],
                bot: true,
            };
            let mut m = payloads::message(
                mid,
                0,
                channel,
                &bot,
                body_json["content"].as_str().unwrap_or(""),
            );
            if let Some(obj) = m.as_object_mut() {
                obj.remove("guild_id");
                obj.remove("member");
            }
            m["embeds"] = body_json.get("embeds").cloned().unwrap_or(json!([]));
            HttpResponse::Ok().json(m)
        }
        ("GET", ["channels", _, "messages"]) => {
            let channel = id(1).unwrap_or(0);
            let limit: usize = req
                .query_string()
                .split('&')
                .find_map(|kv| kv.strip_prefix("limit="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(50);
            let msgs = lock(&data.state)
                .messages
                .get(&channel)
                .cloned()
                .unwrap_or_default();
            HttpResponse::Ok().json(msgs.into_iter().take(limit).collect::<Vec<_>>())
        }
        ("POST", ["channels", _, "messages", "bulk-delete"])
        | ("DELETE", ["channels", _, "messages", _]) => HttpResponse::NoContent().finish(),
        _ => discord_error(404, 0, "404: Not Found"),
    }
}

/// A typical guild: owner, admin role above mod role above member role, the bot's role between
/// mod and admin, and a few members.
pub fn standard_guild(id: u64) -> FakeGuild {
    let r = |n: u64| id + n;
    FakeGuild {
        id,
        name: format!("Guild {id}"),
        owner_id: OWNER,
        roles: vec![
            FakeRole {
                id,
                name: "@everyone".into(),
                position: 0,
                permissions: perms::NONE,
            },
            FakeRole {
                id: r(1),
                name: "member".into(),
                position: 1,
                permissions: perms::NONE,
            },
            FakeRole {
                id: r(2),
                name: "mod".into(),
                position: 2,
                permissions: perms::MODERATOR,
            },
            FakeRole {
                id: r(3),
                name: "bot".into(),
                position: 3,
                permissions: perms::BOT,
            },
            FakeRole {
                id: r(4),
                name: "admin".into(),
                position: 4,
                permissions: perms::ADMINISTRATOR,
            },
        ],
        members: vec![
            FakeMember {
                id: OWNER,
                username: "owner".into(),
                roles: vec![],
                bot: false,
            },
            FakeMember {
                id: ADMIN,
                username: "admin".into(),
                roles: vec![r(4)],
                bot: false,
            },
            FakeMember {
                id: MODERATOR,
                username: "moderator".into(),
                roles: vec![r(2)],
                bot: false,
            },
            FakeMember {
                id: MEMBER,
                username: "member".into(),
                roles: vec![r(1)],
                bot: false,
            },
            FakeMember {
                id: OTHER_MEMBER,
                username: "other".into(),
                roles: vec![r(1)],
                bot: false,
            },
            FakeMember {
                id: BOT_ID,
                username: "guildhall".into(),
                roles: vec![r(3)],
                bot: true,
            },
        ],
        channels: vec![(r(10), "general".into()), (r(11), "mod-log".into())],
    }
}

pub const OWNER: u64 = 800_000_000_000_000_001;
pub const ADMIN: u64 = 800_000_000_000_000_002;
pub const MODERATOR: u64 = 800_000_000_000_000_003;
pub const MEMBER: u64 = 800_000_000_000_000_004;
pub const OTHER_MEMBER: u64 = 800_000_000_000_000_005;

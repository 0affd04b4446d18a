//! WebSocket streams: `/ws/logs` (live log lines, `logs.view`) and `/ws/status` (component
//! status changes, `bot.view`). Each connection is a session actor joined to the LogBroadcaster
//! with its own bounded queue (see `actors::broadcaster`): the broadcaster pushes frames it
//! serialised once and wakes the session, which sends what its filter lets through. The
//! session re-authenticates its caller every auth-cache lifetime through the same function as
//! the handshake, so a revoked credential or a withdrawn permission closes it.
//!
//! Close codes: 4001 the credential is no longer valid, 4003 the permission was withdrawn,
//! 4008 the viewer stayed too far behind, 1001 the daemon is stopping (SIGTERM/SIGINT: streams
//! close at once, so graceful shutdown does not wait for them). A log viewer may send
//! `{"level":"warn","search":"text"}` (either may be null or absent) to filter what it gets; it
//! is answered with `{"type":"filter",…}` or `{"type":"error","message":…}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::authenticate_request;
use crate::actors::broadcaster::{
    Body, Closed, Entry, Join, Level, LogBroadcaster, Topic, Unsubscribe, VIEWER_CAPACITY,
    VIEWER_MAX_BEHIND, ViewerQueue, Wake, wire,
};
use crate::auth::authenticate::Via;
use crate::auth::rbac::Permission;
use crate::state::AppState;

const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// A peer that has not answered a ping for this long is gone.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the caller's credential and permission are checked again: the auth cache's
/// lifetime, so a change is seen at the first check after it reaches the cache.
const RECHECK_INTERVAL: Duration = crate::auth::cache::TTL;
/// A search string longer than this is refused.
const MAX_SEARCH_CHARS: usize = 200;

/// The daemon is stopping.
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
pub const CLOSE_FORBIDDEN: u16 = 4003;
pub const CLOSE_TOO_SLOW: u16 = 4008;

/// Set once the process is stopping. A live stream is a connection in flight, so without this
/// graceful shutdown would wait out its whole timeout for every open dashboard.
fn stopping() -> &'static tokio::sync::watch::Sender<bool> {
    static STOPPING: std::sync::OnceLock<tokio::sync::watch::Sender<bool>> =
        std::sync::OnceLock::new();
    STOPPING.get_or_init(|| tokio::sync::watch::channel(false).0)
}

/// Closes every live stream of this process with 1001 ("going away"): called on SIGTERM/SIGINT.
pub fn close_all_viewers() {
    stopping().send_replace(true);
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/ws/logs").route(web::get().to(logs)))
        .service(web::resource("/ws/status").route(web::get().to(status)));
}

async fn logs(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    open(req, stream, state, Topic::Logs, Permission::LogsView).await
}

async fn status(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    open(req, stream, state, Topic::Status, Permission::BotView).await
}

async fn open(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
    topic: Topic,
    permission: Permission,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate_request(&state, &req).await?;
    if principal.via == Via::Session {
        same_origin(&req)?;
    }
    if !principal.grants.allows_globally(permission) {
        return Err(ApiError::Forbidden);
    }
    // The status stream opens with a snapshot, so a viewer never starts from nothing.
    let snapshot = match topic {
        Topic::Status => Some(
            serde_json::to_value(super::health::readiness(&state).await)
                .unwrap_or(serde_json::Value::Null),
        ),
        Topic::Logs => None,
    };
    let session = ViewerSession {
        topic,
        broadcaster: state.broadcaster.clone(),
        queue: ViewerQueue::new(VIEWER_CAPACITY, VIEWER_MAX_BEHIND),
        subscription: None,
        last_seen: Instant::now(),
        snapshot,
        filter: Filter::default(),
        caller: Caller {
            state,
            request: req.clone(),
            permission,
        },
    };
    ws::start(session, &req, stream).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Browsers send cookies with cross-site WebSocket handshakes unless told otherwise; refusing a
/// foreign `Origin` closes cross-site WebSocket hijacking for cookie sessions.
pub(crate) fn same_origin(req: &HttpRequest) -> Result<(), ApiError> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    // The Host the browser sent (a reverse proxy must keep it), never `X-Forwarded-Host` or
    // `Forwarded`, which any client can write.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    match (origin, host) {
        (Some(origin), Some(host)) if origin.split("://").nth(1) == Some(host) => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

/// What to re-authenticate with: the handshake request (its headers and cookie) and the
/// permission the stream needs.
struct Caller {
    state: web::Data<AppState>,
    request: HttpRequest,
    permission: Permission,
}

/// Why a periodic check ends a stream; a database outage ends none (the next check decides).
fn recheck_verdict(result: Result<bool, ApiError>) -> Option<(u16, &'static str)> {
    match result {
        Ok(true) => None,
        Ok(false) | Err(ApiError::Forbidden) => Some((CLOSE_FORBIDDEN, "permission withdrawn")),
        Err(ApiError::Unauthorized) => Some((CLOSE_UNAUTHORIZED, "credential no longer valid")),
        Err(_) => None,
    }
}

/// A log viewer's filter: lines at `level` or above whose message or target contains `search`
/// (case-insensitive).
#[derive(Debug, Default, Clone, PartialEq)]
struct Filter {
    level: Option<Level>,
    search: Option<String>,
}

impl Filter {
    fn accepts(&self, entry: &Entry) -> bool {
        match &entry.body {
            Body::Line {
                level, haystack, ..
            } => {
                self.level.is_none_or(|min| level.is_some_and(|l| l >= min))
                    && self
                        .search
                        .as_deref()
                        .is_none_or(|needle| haystack.contains(needle))
            }
            Body::Status(_) => true,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterMessage {
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    search: Option<String>,
}

/// Parses a viewer's filter message; the error names the field.
fn parse_filter(text: &str) -> Result<Filter, String> {
    let message: FilterMessage = serde_json::from_str(text)
        .map_err(|e| format!("expected {{\"level\":\"info|warn|…\",\"search\":\"text\"}}: {e}"))?;
    let level = match message.level.as_deref() {
        None | Some("") => None,
        Some(text) => Some(Level::parse(text).ok_or_else(|| {
            format!("level: `{text}` is not one of trace, debug, info, warn, error")
        })?),
    };
    let search = match message.search {
        Some(s) if s.chars().count() > MAX_SEARCH_CHARS => {
            return Err(format!("search: longer than {MAX_SEARCH_CHARS} characters"));
        }
        Some(s) if !s.is_empty() => Some(s.to_lowercase()),
        _ => None,
    };
    Ok(Filter { level, search })
}

struct ViewerSession {
    topic: Topic,
    broadcaster: Addr<LogBroadcaster>,
    queue: Arc<ViewerQueue>,
    subscription: Option<u64>,
    last_seen: Instant,
    snapshot: Option<serde_json::Value>,
    filter: Filter,
    caller: Caller,
}

impl ViewerSession {
    fn send_entries<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Arc<Entry>>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        for entry in entries {
            if self.filter.accepts(entry) {
                ctx.text(entry.frame.clone());
            }
        }
    }

    fn close(&mut self, code: u16, reason: &str, ctx: &mut ws::WebsocketContext<Self>) {
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Other(code),
            description: Some(reason.to_owned()),
        }));
        ctx.stop();
    }

    fn recheck(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let state = self.caller.state.clone();
        let request = self.caller.request.clone();
        let permission = self.caller.permission;
        async move {
            authenticate_request(&state, &request)
                .await
                .map(|p| p.grants.allows_globally(permission))
        }
        .into_actor(self)
        .map(|result, act, ctx| {
            if let Some((code, reason)) = recheck_verdict(result) {
                act.close(code, reason, ctx);
            }
        })
        .spawn(ctx);
    }

    fn set_filter(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        if self.topic != Topic::Logs {
            ctx.text(r#"{"type":"error","message":"only /ws/logs takes a filter"}"#);
            return;
        }
        match parse_filter(text) {
            Ok(filter) => {
                let ack = serde_json::json!({
                    "type": "filter",
                    "level": filter.level.map(Level::as_str),
                    "search": filter.search,
                });
                self.filter = filter;
                ctx.text(ack.to_string());
            }
            Err(message) => {
                ctx.text(serde_json::json!({"type": "error", "message": message}).to_string());
            }
        }
    }
}

impl Actor for ViewerSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let mut stopping = stopping().subscribe();
        ctx.spawn(
            async move {
                let _ = stopping.wait_for(|s| *s).await;
            }
            .into_actor(self)
            .map(|_, act, ctx| act.close(CLOSE_GOING_AWAY, "the server is stopping", ctx)),
        );
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            if act.last_seen.elapsed() > CLIENT_TIMEOUT {
                ctx.stop();
            } else {
                ctx.ping(b"");
            }
        });
        ctx.run_interval(RECHECK_INTERVAL, |act, ctx| act.recheck(ctx));
        if let Some(snapshot) = self.snapshot.take() {
            let event = serde_json::json!({
                "type": "status",
                "component": "snapshot",
                "status": snapshot,
            });
            ctx.text(event.to_string());
        }
        self.broadcaster
            .send(Join {
                topic: self.topic,
                queue: self.queue.clone(),
                waker: ctx.address().recipient(),
            })
            .into_actor(self)
            .map(|result, act, ctx| match result {
                Ok(joined) => {
                    act.subscription = Some(joined.id);
                    act.send_entries(&joined.backlog, ctx);
                }
                Err(_) => ctx.stop(),
            })
            .wait(ctx);
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        if let Some(id) = self.subscription.take() {
            self.broadcaster.do_send(Unsubscribe(id));
        }
        Running::Stop
    }
}

impl Handler<Wake> for ViewerSession {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        let drained = self.queue.drain();
        if drained.missed > 0 {
            ctx.text(wire::missed(drained.missed));
        }
        self.send_entries(&drained.entries, ctx);
        match drained.closed {
            Some(Closed::TooSlow) => {
                self.close(CLOSE_TOO_SLOW, "too slow: missed lines for 10 s", ctx)
            }
            None => {}
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for ViewerSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Ping(payload)) => {
                self.last_seen = Instant::now();
                ctx.pong(&payload);
            }
            Ok(ws::Message::Pong(_)) => self.last_seen = Instant::now(),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Text(text)) => {
                self.last_seen = Instant::now();
                self.set_filter(&text, ctx);
            }
            Ok(ws::Message::Binary(_) | ws::Message::Continuation(_) | ws::Message::Nop) => {
                self.last_seen = Instant::now();
            }
            Err(_) => ctx.stop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::broadcaster::LogLine;

    fn entry(level: &str, message: &str) -> Entry {
        Entry::line(
            1,
            "i".into(),
            Arc::new(LogLine {
                timestamp_ms: 0,
                level: level.into(),
                target: "guildhall::bot".into(),
                message: message.into(),
                request_id: None,
            }),
        )
    }

    #[test]
    fn a_filter_lets_through_its_level_and_above_containing_the_search() {
        let filter = parse_filter(r#"{"level":"warn","search":"Kick"}"#).unwrap();
        let cases = [
            ("ERROR", "kicked a member", true),
            ("WARN", "KICKED a member", true),
            ("INFO", "kicked a member", false),
            ("ERROR", "banned a member", false),
        ];
        for (level, message, expected) in cases {
            assert_eq!(
                filter.accepts(&entry(level, message)),
                expected,
                "{level} {message}"
            );
        }
        let by_target = parse_filter(r#"{"search":"GUILDHALL::BOT"}"#).unwrap();
        assert!(by_target.accepts(&entry("TRACE", "anything")));
        let everything = parse_filter(r#"{"level":null,"search":""}"#).unwrap();
        assert_eq!(everything, Filter::default());
        assert!(everything.accepts(&entry("TRACE", "x")));
    }

    #[test]
    fn a_bad_filter_message_is_refused_naming_the_field() {
        let long = format!(r#"{{"search":"{}"}}"#, "x".repeat(MAX_SEARCH_CHARS + 1));
        let cases = [
            (r#"{"level":"loud"}"#, "level"),
            (long.as_str(), "search"),
            ("not json", "expected"),
            (r#"{"levle":"warn"}"#, "unknown field"),
            (r#"{"level":3}"#, "expected"),
        ];
        for (text, needle) in cases {
            let error = parse_filter(text).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn only_a_refusal_ends_a_stream_not_an_outage() {
        assert_eq!(recheck_verdict(Ok(true)), None);
        assert_eq!(
            recheck_verdict(Ok(false)).map(|v| v.0),
            Some(CLOSE_FORBIDDEN)
        );
        assert_eq!(
            recheck_verdict(Err(ApiError::Unauthorized)).map(|v| v.0),
            Some(CLOSE_UNAUTHORIZED)
        );
        assert_eq!(
            recheck_verdict(Err(ApiError::Unavailable("database".into()))),
            None
        );
    }
}

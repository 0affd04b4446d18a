//! WebSocket streams: `/ws/logs` (live log lines, `logs.view`) and `/ws/status` (component
//! status changes, `bot.view`). Each connection is a session actor registered with the
//! LogBroadcaster in `started()` and removed in `stopping()`; heartbeats close dead peers.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;

use super::error::ApiError;
use super::extract::{Via, authenticate};
use crate::actors::broadcaster::{
    Broadcast, LogBroadcaster, StatusEvent, Subscribe, Topic, Unsubscribe,
};
use crate::auth::rbac::Permission;
use crate::state::AppState;

const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// A peer that has not answered a ping for this long is gone.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages a session may have queued before the broadcaster drops lines for it.
const SESSION_MAILBOX: usize = 1_024;

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
    let principal = authenticate(&state, &req).await?;
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
        subscription: None,
        last_seen: Instant::now(),
        snapshot,
    };
    ws::start(session, &req, stream).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Browsers send cookies with cross-site WebSocket handshakes unless told otherwise; refusing a
/// foreign `Origin` closes cross-site WebSocket hijacking for cookie sessions.
fn same_origin(req: &HttpRequest) -> Result<(), ApiError> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let host = req.connection_info().host().to_owned();
    match origin {
        Some(origin) if origin.split("://").nth(1) == Some(host.as_str()) => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

struct ViewerSession {
    topic: Topic,
    broadcaster: Addr<LogBroadcaster>,
    subscription: Option<u64>,
    last_seen: Instant,
    snapshot: Option<serde_json::Value>,
}

impl Actor for ViewerSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(SESSION_MAILBOX);
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            if act.last_seen.elapsed() > CLIENT_TIMEOUT {
                ctx.stop();
            } else {
                ctx.ping(b"");
            }
        });
        if let Some(snapshot) = self.snapshot.take() {
            let event = StatusEvent {
                component: "snapshot".into(),
                status: snapshot,
            };
            if let Ok(text) = serde_json::to_string(&event) {
                ctx.text(text);
            }
        }
        self.broadcaster
            .send(Subscribe {
                topic: self.topic,
                recipient: ctx.address().recipient(),
            })
            .into_actor(self)
            .map(|result, act, ctx| match result {
                Ok(subscription) => {
                    act.subscription = Some(subscription.id);
                    for line in subscription.backlog {
                        if let Ok(text) = serde_json::to_string(&*line) {
                            ctx.text(text);
                        }
                    }
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

impl Handler<Broadcast> for ViewerSession {
    type Result = ();

    fn handle(&mut self, msg: Broadcast, ctx: &mut Self::Context) {
        let text = match msg {
            Broadcast::Log(line) => serde_json::to_string(&*line),
            Broadcast::Status(event) => serde_json::to_string(&*event),
        };
        if let Ok(text) = text {
            ctx.text(text);
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
            // Viewers only listen; anything they send is ignored.
            Ok(ws::Message::Text(_) | ws::Message::Binary(_) | ws::Message::Continuation(_))
            | Ok(ws::Message::Nop) => self.last_seen = Instant::now(),
            Err(_) => ctx.stop(),
        }
    }
}

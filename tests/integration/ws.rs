//! `/ws/logs` and `/ws/status`: authenticated live streams from the LogBroadcaster.

use std::time::Duration;

use futures_util::StreamExt;
use guildhall::actors::broadcaster::{LogLine, PublishLog, PublishStatus, StatusEvent};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::common::auth::{admin_token, token_with_role};
use crate::common::{TestApp, spawn_app};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, path: &str, token: Option<&str>) -> Result<Socket, u16> {
    let mut request = format!("ws://127.0.0.1:{}{path}", app.port)
        .into_client_request()
        .unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("unexpected websocket error: {e}"),
    }
}

/// The next text frame as JSON, skipping pings.
async fn next_json(socket: &mut Socket) -> serde_json::Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .expect("stream open")
            .expect("valid frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[actix_web::test]
async fn a_viewer_with_logs_view_gets_the_backlog_then_live_lines() {
    let app = spawn_app().await;
    let line = |message: &str| LogLine {
        timestamp_ms: 1,
        level: "INFO".into(),
        target: "test".into(),
        message: message.into(),
        request_id: Some("req-1".into()),
    };
    app.state
        .broadcaster
        .send(PublishLog(line("before connecting")))
        .await
        .unwrap();
    let token = admin_token(&app).await;
    let mut socket = connect(&app, "/ws/logs", Some(&token)).await.unwrap();
    // The backlog holds everything logged so far; our line is in it.
    let mut seen_backlog = false;
    for _ in 0..2000 {
        let frame = next_json(&mut socket).await;
        if frame["message"] == "before connecting" {
            seen_backlog = true;
            break;
        }
    }
    assert!(seen_backlog, "backlog delivered");
    app.state
        .broadcaster
        .send(PublishLog(line("live line")))
        .await
        .unwrap();
    let mut live = false;
    for _ in 0..2000 {
        let frame = next_json(&mut socket).await;
        if frame["message"] == "live line" {
            assert_eq!(frame["request_id"], "req-1");
            assert_eq!(frame["level"], "INFO");
            live = true;
            break;
        }
    }
    assert!(live, "live line delivered");
}

#[actix_web::test]
async fn streams_refuse_anonymous_and_unprivileged_callers() {
    let app = spawn_app().await;
    assert_eq!(connect(&app, "/ws/logs", None).await.err(), Some(401));
    assert_eq!(
        connect(&app, "/ws/logs", Some("garbage")).await.err(),
        Some(401)
    );
    let viewer = token_with_role(&app, "viewer", 0).await;
    assert_eq!(
        connect(&app, "/ws/logs", Some(&viewer)).await.err(),
        Some(403)
    );
    // A viewer may watch status (bot.view) but not the logs.
    assert!(connect(&app, "/ws/status", Some(&viewer)).await.is_ok());
    let scoped = token_with_role(&app, "moderator", 42).await;
    assert_eq!(
        connect(&app, "/ws/status", Some(&scoped)).await.err(),
        Some(403)
    );
}

#[actix_web::test]
async fn the_status_stream_opens_with_a_snapshot_and_carries_changes() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let mut socket = connect(&app, "/ws/status", Some(&token)).await.unwrap();
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["component"], "snapshot");
    assert_eq!(snapshot["status"]["database"]["status"], "up");
    assert_eq!(snapshot["status"]["gateway"]["status"], "disabled");
    // Give the session a moment to register, then publish a change.
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.state
        .broadcaster
        .send(PublishStatus(StatusEvent {
            component: "gateway".into(),
            status: serde_json::json!({"status": "connected"}),
        }))
        .await
        .unwrap();
    let mut change = next_json(&mut socket).await;
    while change["component"] != "gateway" {
        change = next_json(&mut socket).await;
    }
    assert_eq!(change["status"]["status"], "connected");
}

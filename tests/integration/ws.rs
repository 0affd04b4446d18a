//! `/ws/logs` and `/ws/status`: authenticated live streams from the LogBroadcaster.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
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
    // The snapshot is sent before the session joins the broadcaster: publish once it has.
    viewers_joined(&app, Topic::Status, 1).await;
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

// ---- one serialisation, sequence numbers, filters, slow viewers, revocation, Redis ----------

use guildhall::actors::broadcaster::{
    Instance, Join, Topic, VIEWER_CAPACITY, VIEWER_MAX_BEHIND, ViewerQueue, Wake,
};
use guildhall::web::ws::{CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::common::auth::{access_token, create_user};
use crate::common::{random_suffix, redis_url, spawn_app_with};

fn tagged(level: &str, message: &str) -> LogLine {
    LogLine {
        timestamp_ms: guildhall::ids::now_ms(),
        level: level.into(),
        target: "ws_test".into(),
        message: message.into(),
        request_id: None,
    }
}

/// What a socket yields: a JSON frame, or the close frame's code.
enum Got {
    Json(Value),
    Closed(Option<u16>),
}

async fn next(socket: &mut Socket, within: Duration) -> Got {
    loop {
        let frame = tokio::time::timeout(within, socket.next())
            .await
            .expect("a frame in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                return Got::Json(serde_json::from_str(&text).unwrap());
            }
            Some(Ok(Message::Close(close))) => {
                return Got::Closed(close.map(|CloseFrame { code, .. }| u16::from(code)));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Got::Closed(None),
        }
    }
}

/// Reads frames until one whose `message` is `last`; returns the lines of `target`
/// "ws_test" and the sum of `missed` counts seen on the way.
async fn read_until(socket: &mut Socket, last: &str) -> (Vec<Value>, u64) {
    let (mut lines, mut missed) = (Vec::new(), 0);
    loop {
        match next(socket, Duration::from_secs(20)).await {
            Got::Json(frame) if frame["type"] == "missed" => {
                missed += frame["count"].as_u64().unwrap();
            }
            Got::Json(frame) if frame["type"] == "line" && frame["target"] == "ws_test" => {
                let done = frame["message"] == last;
                lines.push(frame);
                if done {
                    return (lines, missed);
                }
            }
            Got::Json(_) => {}
            Got::Closed(code) => panic!("closed ({code:?}) before `{last}`"),
        }
    }
}

#[actix_web::test]
async fn lines_carry_their_type_an_increasing_sequence_and_the_instance() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let mut socket = connect(&app, "/ws/logs", Some(&token)).await.unwrap();
    let instance = app.state.broadcaster.send(Instance).await.unwrap();
    viewers_joined(&app, Topic::Logs, 1).await;
    for i in 0..3 {
        app.state
            .broadcaster
            .send(PublishLog(tagged("INFO", &format!("seq {i}"))))
            .await
            .unwrap();
    }
    let (lines, _) = read_until(&mut socket, "seq 2").await;
    let ours: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"].as_str().unwrap().starts_with("seq "))
        .collect();
    assert_eq!(ours.len(), 3);
    let seqs: Vec<u64> = ours.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    for line in ours {
        assert_eq!(line["type"], "line");
        assert_eq!(line["instance"], &*instance);
        assert!(line["timestamp_ms"].as_i64().unwrap() > 0);
    }
}

#[actix_web::test]
async fn a_viewer_filter_keeps_lines_at_its_level_or_above_that_contain_its_search() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let mut socket = connect(&app, "/ws/logs", Some(&token)).await.unwrap();
    socket
        .send(Message::Text(r#"{"level":"loud"}"#.into()))
        .await
        .unwrap();
    let error = loop {
        if let Got::Json(frame) = next(&mut socket, Duration::from_secs(5)).await
            && frame["type"] == "error"
        {
            break frame;
        }
    };
    assert!(
        error["message"].as_str().unwrap().contains("level"),
        "{error}"
    );
    socket
        .send(Message::Text(
            r#"{"level":"warn","search":"NEEDLE"}"#.into(),
        ))
        .await
        .unwrap();
    let ack = loop {
        if let Got::Json(frame) = next(&mut socket, Duration::from_secs(5)).await
            && frame["type"] == "filter"
        {
            break frame;
        }
    };
    assert_eq!(
        ack,
        json!({"type": "filter", "level": "WARN", "search": "needle"})
    );
    for (level, message) in [
        ("INFO", "needle but quiet"),
        ("WARN", "hay"),
        ("WARN", "a Needle here"),
        ("ERROR", "haystack"),
        ("ERROR", "needle, the end"),
    ] {
        app.state
            .broadcaster
            .send(PublishLog(tagged(level, message)))
            .await
            .unwrap();
    }
    let (lines, _) = read_until(&mut socket, "needle, the end").await;
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["a Needle here", "needle, the end"]);
}

/// A viewer whose session never drains its queue, as one whose socket stopped reading.
struct StalledViewer;

impl actix::Actor for StalledViewer {
    type Context = actix::Context<Self>;
}

impl actix::Handler<Wake> for StalledViewer {
    type Result = ();
    fn handle(&mut self, _: Wake, _: &mut Self::Context) {}
}

#[actix_web::test]
async fn a_stalled_viewer_holds_at_most_its_queue_and_never_delays_another_viewer() {
    use actix::Actor as _;
    let app = spawn_app().await;
    let stalled = ViewerQueue::new(VIEWER_CAPACITY, VIEWER_MAX_BEHIND);
    app.state
        .broadcaster
        .send(Join {
            topic: Topic::Logs,
            queue: stalled.clone(),
            waker: StalledViewer.start().recipient(),
        })
        .await
        .unwrap();
    let token = admin_token(&app).await;
    let mut socket = connect(&app, "/ws/logs", Some(&token)).await.unwrap();
    // The stalled viewer and the socket's session.
    viewers_joined(&app, Topic::Logs, 2).await;
    let burst = 5_000u64;
    for i in 0..burst {
        app.state
            .broadcaster
            .do_send(PublishLog(tagged("INFO", &format!("burst {i}"))));
    }
    app.state
        .broadcaster
        .send(PublishLog(tagged("INFO", "the end")))
        .await
        .unwrap();
    // Every line reaches the live viewer or is accounted for as missed; the last one arrives.
    let (lines, missed) = read_until(&mut socket, "the end").await;
    assert!(
        lines.len() as u64 + missed > burst,
        "{} + {missed}",
        lines.len()
    );
    assert!(
        stalled.len() <= VIEWER_CAPACITY,
        "bounded: {}",
        stalled.len()
    );
    let drained = stalled.drain();
    assert!(
        drained.missed >= burst + 1 - VIEWER_CAPACITY as u64,
        "{}",
        drained.missed
    );
    let the_end = lines.last().and_then(|l| l["seq"].as_u64()).unwrap();
    assert!(
        drained.entries.iter().any(|e| e.seq == the_end),
        "the stalled viewer keeps the newest lines"
    );
}

#[actix_web::test]
async fn a_stream_closes_when_its_user_loses_the_permission_or_is_disabled() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let cases = [
        (
            json!({"roles": [{"role": "viewer"}]}),
            "/ws/logs",
            CLOSE_FORBIDDEN,
        ),
        (json!({"disabled": true}), "/ws/status", CLOSE_UNAUTHORIZED),
    ];
    for (change, path, code) in cases {
        let (id, _) = create_user(&app, "watcher", &[("admin", 0)]).await;
        let token = access_token(&app, id);
        let mut socket = connect(&app, path, Some(&token)).await.unwrap();
        let (status, body) = app.patch_user(&admin, id, change).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        let changed = std::time::Instant::now();
        let closed = loop {
            match next(&mut socket, Duration::from_secs(15)).await {
                Got::Json(_) => {}
                Got::Closed(code) => break code,
            }
        };
        assert_eq!(closed, Some(code), "{path}");
        let limit = guildhall::auth::cache::TTL * 2 + Duration::from_secs(2);
        assert!(
            changed.elapsed() < limit,
            "closed after {:?}",
            changed.elapsed()
        );
    }
}

#[actix_web::test]
async fn with_redis_a_viewer_sees_every_instances_lines_marked_with_their_instance() {
    let Some(redis) = redis_url() else { return };
    let prefix = format!("test-{}", random_suffix());
    let configure = |env: &mut std::collections::HashMap<String, String>| {
        env.insert("REDIS_URL".into(), redis.clone());
        env.insert("GUILDHALL_REDIS_PREFIX".into(), prefix.clone());
    };
    let a = spawn_app_with(configure).await;
    let b = spawn_app_with(configure).await;
    let a_name = a.state.broadcaster.send(Instance).await.unwrap();
    let b_name = b.state.broadcaster.send(Instance).await.unwrap();
    assert_ne!(a_name, b_name);
    let token = admin_token(&b).await;
    let mut socket = connect(&b, "/ws/logs", Some(&token)).await.unwrap();
    // Until b has subscribed, a's lines do not reach it: probe until one does.
    let mut from_a = None;
    for probe in 0..50 {
        a.state
            .broadcaster
            .send(PublishLog(tagged("INFO", &format!("probe {probe}"))))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while from_a.is_none() {
            let Ok(frame) = tokio::time::timeout_at(deadline, socket.next()).await else {
                break;
            };
            if let Some(Ok(Message::Text(text))) = frame {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["target"] == "ws_test"
                    && frame["message"].as_str().unwrap().starts_with("probe")
                {
                    from_a = Some(frame);
                }
            }
        }
        if from_a.is_some() {
            break;
        }
    }
    let from_a = from_a.expect("a line published on a reaches a viewer on b");
    assert_eq!(from_a["instance"], &*a_name);
    b.state
        .broadcaster
        .send(PublishLog(tagged("INFO", "from b")))
        .await
        .unwrap();
    a.state
        .broadcaster
        .send(PublishLog(tagged("INFO", "from a, last")))
        .await
        .unwrap();
    let (lines, _) = read_until(&mut socket, "from a, last").await;
    let by_message = |m: &str| lines.iter().find(|l| l["message"] == m).cloned();
    assert_eq!(by_message("from b").unwrap()["instance"], &*b_name);
    assert_eq!(by_message("from a, last").unwrap()["instance"], &*a_name);
    // Each line once: b's own line is not echoed back through Redis.
    assert_eq!(lines.iter().filter(|l| l["message"] == "from b").count(), 1);
}

// ---- a viewer that stays behind is closed with 4008 (the injected clock decides when) ------

use guildhall::actors::broadcaster::{ViewerStat, ViewerStats};
use guildhall::clock::ManualClock;
use guildhall::web::ws::CLOSE_TOO_SLOW;

use crate::common::{eventually, spawn_app_with_clock};

/// The log viewers' queues, by id.
pub(crate) async fn log_viewers(app: &TestApp) -> Vec<ViewerStat> {
    let stats = app.state.broadcaster.send(ViewerStats).await.unwrap();
    stats
        .into_iter()
        .filter(|s| s.topic == Topic::Logs)
        .collect()
}

/// Waits until `n` viewers of `topic` have joined the broadcaster. A socket is open (and the
/// status stream's snapshot sent) before its session has joined; what is published before
/// then never reaches it.
async fn viewers_joined(app: &TestApp, topic: Topic, n: usize) {
    let joined = eventually(Duration::from_secs(30), || async {
        let stats = app.state.broadcaster.send(ViewerStats).await.unwrap();
        stats.iter().filter(|s| s.topic == topic).count() >= n
    })
    .await;
    assert!(
        joined,
        "{n} {topic:?} viewer(s) never joined the broadcaster"
    );
}

/// The id of the log viewer that joined after `before` was taken.
async fn joined_after(app: &TestApp, before: &[ViewerStat]) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let joined = log_viewers(app)
            .await
            .iter()
            .map(|s| s.id)
            .find(|id| before.iter().all(|b| b.id != *id));
        if let Some(id) = joined {
            return id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the viewer never joined the broadcaster"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a reading viewer has seen of the `ws_test` lines: their numbers (`line N …`), the sum
/// of `missed` counts, and the close code if it closed.
#[derive(Default)]
struct Seen {
    numbers: Vec<u64>,
    last_message: String,
    missed: u64,
    closed: Option<Option<u16>>,
}

/// Reads `socket` to its end in the background, recording what it sees.
fn read_in_background(mut socket: Socket) -> std::sync::Arc<std::sync::Mutex<Seen>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let shared = seen.clone();
    actix_web::rt::spawn(async move {
        loop {
            let frame = socket.next().await;
            let mut seen = shared.lock().unwrap();
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if frame["type"] == "missed" {
                        seen.missed += frame["count"].as_u64().unwrap();
                    } else if frame["type"] == "line" && frame["target"] == "ws_test" {
                        let message = frame["message"].as_str().unwrap().to_owned();
                        if let Some(n) = message
                            .strip_prefix("line ")
                            .and_then(|rest| rest.split(' ').next())
                            .and_then(|n| n.parse().ok())
                        {
                            seen.numbers.push(n);
                        }
                        seen.last_message = message;
                    }
                }
                Some(Ok(Message::Close(close))) => {
                    seen.closed = Some(close.map(|CloseFrame { code, .. }| u16::from(code)));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    seen.closed = Some(None);
                    return;
                }
            }
        }
    });
    seen
}

/// Publishes `count` more lines (`line N xxx…`, numbered on from `published`) and waits until
/// the reading viewer has the last of them, so that it keeps up however slow the machine is;
/// then checks that no viewer's queue holds more than its capacity, and returns them all.
async fn step(
    app: &TestApp,
    filler: &str,
    reading: &std::sync::Mutex<Seen>,
    published: &mut u64,
    count: u64,
) -> Vec<ViewerStat> {
    let first = *published;
    *published += count;
    for i in first..first + count {
        app.state
            .broadcaster
            .do_send(PublishLog(tagged("INFO", &format!("line {i} {filler}"))));
    }
    let last = format!("line {} {filler}", first + count - 1);
    let kept_up = eventually(Duration::from_secs(20), || async {
        reading.lock().unwrap().last_message == last
    })
    .await;
    assert!(
        kept_up,
        "the reading viewer never got line {}",
        first + count - 1
    );
    let viewers = log_viewers(app).await;
    for viewer in &viewers {
        assert!(
            viewer.queue.queued <= viewer.queue.capacity,
            "viewer {} holds {} of {}",
            viewer.id,
            viewer.queue.queued,
            viewer.queue.capacity
        );
    }
    viewers
}

/// A `/ws/logs` connection over a socket with a small receive buffer, so that a viewer which
/// never reads backs up into the daemon after a few kilobytes rather than megabytes.
async fn connect_small_buffer(app: &TestApp, token: &str) -> Socket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4 * 1024).unwrap();
    let stream = socket
        .connect(format!("127.0.0.1:{}", app.port).parse().unwrap())
        .await
        .unwrap();
    let mut request = format!("ws://127.0.0.1:{}/ws/logs", app.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (socket, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    socket
}

#[actix_web::test]
async fn a_viewer_that_never_reads_is_closed_with_4008_after_ten_seconds_behind_and_the_others_keep_every_line()
 {
    let clock = ManualClock::at(guildhall::ids::now_ms());
    let app = spawn_app_with_clock(clock.clone().into(), |_| {}).await;
    let token = admin_token(&app).await;

    let before = log_viewers(&app).await;
    let reader = connect(&app, "/ws/logs", Some(&token)).await.unwrap();
    let reader_id = joined_after(&app, &before).await;
    let reading = read_in_background(reader);
    let before = log_viewers(&app).await;
    let mut stalled = connect_small_buffer(&app, &token).await;
    let stalled_id = joined_after(&app, &before).await;

    // Lines go out in steps; each step waits until the reading viewer has every line of it, so
    // that viewer keeps up however slow the machine is, while the stalled one's socket, then its
    // session, then its queue fill up. 2 KiB lines fill the socket buffers in a few hundred.
    let filler = "x".repeat(2048);
    let mut published = 0u64;
    // Until the stalled viewer's queue overflows: it is then behind, from the clock's now.
    let mut behind_since = None;
    for _ in 0..400 {
        let viewers = step(&app, &filler, &reading, &mut published, 50).await;
        let stalled_queue = viewers
            .iter()
            .find(|v| v.id == stalled_id)
            .expect("still registered")
            .queue;
        if let Some(since) = stalled_queue.behind_since_ms {
            assert_eq!(stalled_queue.queued, VIEWER_CAPACITY, "full, and no more");
            behind_since = Some(since);
            break;
        }
    }
    let behind_since = behind_since.expect("the stalled viewer never fell behind");
    assert_eq!(behind_since, clock.now_ms(), "behind since the clock's now");

    // Just short of the limit it stays (more lines keep overflowing its queue, nothing more).
    clock.advance(VIEWER_MAX_BEHIND - Duration::from_millis(1));
    let viewers = step(&app, &filler, &reading, &mut published, 50).await;
    let still = viewers.iter().find(|v| v.id == stalled_id);
    assert_eq!(still.map(|v| v.queue.queued), Some(VIEWER_CAPACITY));
    assert!(still.is_some_and(|v| v.queue.closed.is_none()));

    // At the limit the next overflow closes it: the broadcaster forgets it, its queue freed.
    clock.advance(Duration::from_millis(1));
    let viewers = step(&app, &filler, &reading, &mut published, 50).await;
    assert!(
        viewers.iter().all(|v| v.id != stalled_id),
        "the stalled viewer is dropped"
    );
    assert!(viewers.iter().any(|v| v.id == reader_id));

    // The reading viewer got every line, in order, and was never told it missed any.
    {
        let seen = reading.lock().unwrap();
        assert_eq!(seen.missed, 0);
        assert_eq!(seen.closed, None);
        assert_eq!(
            seen.numbers,
            (0..published).collect::<Vec<u64>>(),
            "every line, in order"
        );
    }

    // The stalled socket, read at last: what was buffered, then how many lines it missed, then
    // close code 4008.
    let (mut lines, mut missed) = (0u64, 0u64);
    let code = loop {
        match next(&mut stalled, Duration::from_secs(20)).await {
            Got::Json(frame) if frame["type"] == "missed" => {
                missed += frame["count"].as_u64().unwrap();
            }
            Got::Json(frame) if frame["target"] == "ws_test" => lines += 1,
            Got::Json(_) => {}
            Got::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(CLOSE_TOO_SLOW));
    assert!(missed > 0, "told it missed lines before closing");
    assert!(lines < published, "{lines} of {published}");
}

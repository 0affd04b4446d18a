//! The live log viewer when its stream goes wrong, in a real browser: a viewer that falls
//! behind is told how many lines it missed (the right number) and continues with the newest;
//! one that stays behind is closed with 4008, says so, and reconnects; one whose permission or
//! session goes is closed with 4003 or 4001, says why, and does not reconnect.
//!
//! The browser reads the page and its WebSocket through the test's loopback proxy, which can
//! pause: the daemon then sees a viewer that stopped reading, as with a stalled network, and
//! its session's queue fills. How long the viewer has been behind is the injected clock's
//! business (`ManualClock`), so nothing here depends on how fast the machine runs.

use std::time::Duration;

use guildhall::actors::broadcaster::{LogLine, PublishLog, VIEWER_CAPACITY, VIEWER_MAX_BEHIND};
use guildhall::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};
use serial_test::serial;

use super::{Browser, WAIT};
use crate::common::auth::{admin_token, create_user};
use crate::common::proxy::Proxy;
use crate::common::{TestApp, eventually, spawn_app, spawn_app_with_clock};
use crate::ws::log_viewers;

fn line(message: String) -> LogLine {
    LogLine {
        timestamp_ms: guildhall::ids::now_ms(),
        level: "INFO".into(),
        target: "ws_flow".into(),
        message,
        request_id: None,
    }
}

/// Signs in a fresh admin through the form at `base` (the proxy), landing on `/logs`, and
/// waits until the viewer is live. Returns the user's id.
async fn open_viewer(browser: &Browser, app: &TestApp, base: &str) -> i64 {
    let (id, username) = create_user(app, "lv", &[("admin", 0)]).await;
    browser.sign_in_at(&format!("{base}/logs"), &username).await;
    browser.wait_for_text("#log-state", "Live.").await;
    id
}

/// How long the browser may take to read what was held while the proxy was paused: up to a
/// few megabytes of lines (the socket buffers grow), each appended to the page.
const CATCH_UP: Duration = Duration::from_secs(60);

/// Waits (bounded by `within`) until an item of the log list contains `needle`; searched in the
/// page, since the list's whole text is megabytes by then.
async fn wait_for_item(browser: &Browser, needle: &str, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let found = browser
            .client
            .execute(
                "const items = document.querySelectorAll('#log-lines li');
                 for (let i = items.length - 1; i >= 0; i--) {
                   if (items[i].textContent.includes(arguments[0])) return true;
                 }
                 return false;",
                vec![json!(needle)],
            )
            .await
            .unwrap();
        if found == json!(true) {
            return;
        }
        let last = browser
            .client
            .execute(
                "const n = document.querySelector('#log-lines li:last-child');
                 return n ? n.textContent.slice(0, 120) : '';",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            std::time::Instant::now() < deadline,
            "the log list never showed {needle:?}; its last item: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lines `lag N: xxx…` (2 KiB each, so the socket buffers between the daemon and the paused
/// proxy fill in a few hundred). Numbers continue across calls.
struct Lines {
    next: u64,
    filler: String,
}

impl Lines {
    fn new() -> Self {
        Self {
            next: 0,
            filler: "x".repeat(2048),
        }
    }

    /// Publishes `count` lines; returns the last one's marker (`lag N:`).
    async fn publish(&mut self, app: &TestApp, count: u64) -> String {
        for _ in 0..count {
            let message = format!("lag {}: {}", self.next, self.filler);
            self.next += 1;
            app.state.broadcaster.do_send(PublishLog(line(message)));
        }
        format!("lag {}:", self.next - 1)
    }

    /// Publishes lines until the viewer `id` is behind (its queue overflowed); returns since
    /// when, by the broadcaster's clock. Its queue never holds more than its capacity.
    async fn until_behind(&mut self, app: &TestApp, id: u64) -> i64 {
        for _ in 0..1_000 {
            self.publish(app, 20).await;
            let viewers = log_viewers(app).await;
            let viewer = viewers.iter().find(|v| v.id == id).expect("registered");
            assert!(viewer.queue.queued <= VIEWER_CAPACITY, "bounded");
            if let Some(since) = viewer.queue.behind_since_ms {
                return since;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the viewer never fell behind");
    }
}

/// The "missed" notice's count and the sequence numbers of the lines just before and after it.
async fn missed_notice(browser: &Browser) -> (u64, u64, u64) {
    let found = browser
        .client
        .execute(
            "const notices = [...document.querySelectorAll('#log-lines li.notice')]
               .filter(n => n.textContent.includes('this viewer fell behind'));
             if (notices.length !== 1) return { count: notices.length };
             const n = notices[0];
             const m = n.textContent.match(/Missed (\\d+) lines/);
             let before = n.previousElementSibling, after = n.nextElementSibling;
             while (before && !before.dataset.seq) before = before.previousElementSibling;
             while (after && !after.dataset.seq) after = after.nextElementSibling;
             return { count: 1, missed: m && Number(m[1]),
                      before: before && Number(before.dataset.seq),
                      after: after && Number(after.dataset.seq) };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(found["count"], 1, "one 'fell behind' notice: {found}");
    let number = |key: &str| {
        found[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {found}"))
    };
    (number("missed"), number("before"), number("after"))
}

#[actix_web::test]
#[serial(browser)]
async fn a_browser_viewer_that_falls_behind_is_told_how_many_lines_it_missed_and_one_that_stays_behind_is_closed_with_4008_and_reconnects()
 {
    let Some(mut browser) = Browser::start("logs-behind").await else {
        return;
    };
    let clock = ManualClock::at(guildhall::ids::now_ms());
    let app = spawn_app_with_clock(clock.clone().into(), |_| {}).await;
    let proxy = Proxy::start(format!("127.0.0.1:{}", app.port));
    let base = format!("http://127.0.0.1:{}", proxy.port);
    open_viewer(&browser, &app, &base).await;
    browser.check_page("live").await;
    let viewers = log_viewers(&app).await;
    assert_eq!(viewers.len(), 1, "the browser's viewer alone");
    let id = viewers[0].id;
    let mut lines = Lines::new();
    let first = lines.publish(&app, 1).await;
    wait_for_item(&browser, &first, WAIT).await;

    // Falls behind: the network stalls while lines keep coming, until its queue overflows.
    proxy.pause();
    let from = lines.next;
    lines.until_behind(&app, id).await;
    eprintln!("stalled viewer behind after {} lines", lines.next - from);
    let newest = lines.publish(&app, 20).await;
    proxy.resume();
    // What was in flight arrives, then the notice, then the newest lines.
    wait_for_item(&browser, "this viewer fell behind", CATCH_UP).await;
    wait_for_item(&browser, &newest, CATCH_UP).await;
    let (missed, before, after) = missed_notice(&browser).await;
    assert!(missed > 0);
    assert_eq!(
        missed,
        after - before - 1,
        "the notice counts exactly the lines skipped between {before} and {after}"
    );
    let last_shown = browser
        .client
        .execute(
            "const items = document.querySelectorAll('#log-lines li[data-seq]');
             return items[items.length - 1].textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        last_shown.as_str().unwrap_or_default().contains(&newest),
        "continues with the newest: {last_shown}"
    );
    // Still following: the newest line is in view, not only in the list.
    let following = browser
        .client
        .execute(
            "const l = document.getElementById('log-lines');
             return l.scrollTop + l.clientHeight >= l.scrollHeight - 8;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(following, json!(true), "scrolled to the newest line");
    let notices = browser
        .client
        .execute(
            "return [...document.querySelectorAll('#log-lines li.notice')]
               .map(n => n.textContent).join('\\n');",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        !notices
            .as_str()
            .unwrap_or_default()
            .contains("while disconnected"),
        "the skipped lines are reported once: {notices}"
    );
    // It keeps up again: a new line shows, and the viewer is no longer behind.
    let caught_up = lines.publish(&app, 1).await;
    wait_for_item(&browser, &caught_up, WAIT).await;
    let viewers = log_viewers(&app).await;
    assert_eq!(viewers[0].queue.behind_since_ms, None, "caught up");
    browser.check_page("missed").await;

    // Stays behind: stalled again, behind from now; 10 s later by the clock, the next overflow
    // closes it (4008) and frees its queue.
    proxy.pause();
    let from = lines.next;
    let since = lines.until_behind(&app, id).await;
    eprintln!("stalled again, behind after {} lines", lines.next - from);
    assert_eq!(since, clock.now_ms());
    clock.advance(VIEWER_MAX_BEHIND);
    lines.publish(&app, 20).await;
    let dropped = eventually(WAIT, || async {
        log_viewers(&app).await.iter().all(|v| v.id != id)
    })
    .await;
    assert!(dropped, "the stalled viewer is closed and forgotten");
    proxy.resume();
    wait_for_item(&browser, "fell too far behind", CATCH_UP).await;
    wait_for_item(&browser, "Reconnected", CATCH_UP).await;
    browser.wait_for_text("#log-state", "Live.").await;
    let back = lines.publish(&app, 1).await;
    wait_for_item(&browser, &back, CATCH_UP).await;
    assert!(
        log_viewers(&app).await.iter().any(|v| v.id != id),
        "a new viewer joined"
    );
    browser.check_page("reconnected-after-4008").await;
    browser.close().await;
}

/// `PATCH /api/v1/users/{id}` as an admin.
async fn change_user(app: &TestApp, id: i64, change: Value) {
    let admin = admin_token(app).await;
    let (status, body) = app.patch_user(&admin, id, change).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
#[serial(browser)]
async fn a_browser_viewer_closed_for_a_withdrawn_permission_or_an_ended_session_says_why_and_does_not_reconnect()
 {
    let Some(mut browser) = Browser::start("logs-refused").await else {
        return;
    };
    let app = spawn_app().await;
    let cases = [
        (
            json!({"roles": [{"role": "viewer"}]}),
            "You no longer have permission to watch the logs.",
            "4003",
        ),
        (
            json!({"disabled": true}),
            "Your session ended: reload the page to sign in again.",
            "4001",
        ),
    ];
    for (change, notice, name) in cases {
        browser.client.delete_all_cookies().await.unwrap();
        let id = open_viewer(&browser, &app, &app.address).await;
        change_user(&app, id, change).await;
        browser.wait_for_text("#log-state", notice).await;
        assert!(browser.text_of("#log-state").await.starts_with("Stopped."));
        // A reconnecting viewer would go through "Connecting…" and, refused, note the lost
        // connection within its first back-off (0.5 s, then 1 s, then 2 s): there is none.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let state = browser.text_of("#log-state").await;
        assert_eq!(state, format!("Stopped. {notice}"), "{name}");
        let list = browser.text_of("#log-lines").await;
        assert!(!list.contains("Connection lost"), "{name}: {list}");
        assert!(
            !list.contains("Reconnected"),
            "{name}: no reconnection: {list}"
        );
        assert!(
            log_viewers(&app).await.is_empty(),
            "{name}: no viewer left open"
        );
        browser.check_page(&format!("closed-{name}")).await;
    }
    browser.close().await;
}

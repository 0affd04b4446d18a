//! The dashboard with the keyboard alone, in a real browser: every key here is a WebDriver key
//! press (Tab, Shift+Tab, Enter, Space, Escape, typed characters), never a click.
//!
//! - Every page: Tab from the top reaches every visible interactive element in page order
//!   (document order, and never back up the screen), each with a visible focus ring and in view;
//!   Tab leaves or wraps at the end (no trap); Shift+Tab walks the same stops backwards; the
//!   first stop is "Skip to content", visible when focused, and Enter on it moves focus into
//!   `main`. The same stops at 360 px in dark mode. No page has a menu or dialog (an Alpine one
//!   would need its Escape check here). A live status update on the overview leaves focus
//!   where the reader had it.
//! - A task: sign in with MFA (typed, Enter), open the recovery-code disclosure with Enter and
//!   close it with Space, reach a guild from the navigation, turn a module off, warn a member
//!   through the confirmation page (and cancel another action there), all still so after a
//!   reload.
//! - The audit log's export downloads on Enter and its older entries load as Tab goes down the
//!   list; the live log viewer pauses and resumes on Space and Enter, filters by level from
//!   the keyboard, and Escape clears its search.
//!
//! Every flow checks its pages with `check_page` (axe, console, CSP, screenshot). Nothing waits
//! a fixed time: each key press waits for focus to move (or for what it should cause).

use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use guildhall::actors::broadcaster::{LogLine, PublishLog};
use guildhall::auth::totp;
use guildhall::clock::Clock;
use guildhall::store::audit::{Actor, NewAuditEntry};
use serde_json::{Value, json};
use serial_test::serial;

use super::{Browser, Cdp, WAIT};
use crate::common::auth::{PASSWORD, create_user};
use crate::common::fake_discord::MEMBER;
use crate::common::pages::enrol_mfa;
use crate::discord::links::world;
use crate::discord::links_pages::GUILD_ID;

/// In-page helpers, defined once per document: an identity for each focused element (so a
/// press that moves focus between two look-alike buttons is still seen to move it), a readable
/// description, the list of elements Tab should reach, and the focused element's state.
const KB: &str = r#"
window.__kb = window.__kb || (function () {
  let next = 0;
  const isDoc = (el) => !el || el === document.body || el === document.documentElement;
  const id = (el) => { if (isDoc(el)) return 0; if (!el.__kbId) el.__kbId = ++next; return el.__kbId; };
  const describe = (el) => {
    if (isDoc(el)) return 'body';
    const tag = el.tagName.toLowerCase();
    const attr = (n) => el.getAttribute(n) ? '[' + n + '=' + el.getAttribute(n) + ']' : '';
    const text = ['a', 'button', 'summary'].includes(tag) ? (el.textContent || '') : '';
    const label = (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || text)
      .trim().replace(/\s+/g, ' ').slice(0, 40);
    return tag + (el.id ? '#' + el.id : '') + attr('name') + (tag === 'button' ? attr('value') : '')
      + attr('href') + attr('role') + (label ? ' "' + label + '"' : '');
  };
  const tabbables = () => [...document.querySelectorAll(
      'a[href], button, input, select, textarea, summary, [tabindex], [contenteditable]')]
    .filter((el) => {
      if (el.tabIndex < 0 || el.disabled || el.matches('input[type=hidden]')) return false;
      if (el.closest('[inert]') || !el.getClientRects().length) return false;
      if (getComputedStyle(el).visibility !== 'visible') return false;
      const details = el.closest('details');
      return !details || details.open || (el.tagName === 'SUMMARY' && el.parentElement === details);
    });
  const ring = (el) => {
    const s = getComputedStyle(el);
    const clear = (c) => c === 'transparent' || /rgba\(.*,\s*0\)$/.test(c);
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 1 && !clear(s.outlineColor);
    const shadow = s.boxShadow && s.boxShadow !== 'none';
    return outline || !!shadow;
  };
  const state = () => {
    const el = document.activeElement;
    if (isDoc(el)) return { id: 0, desc: 'body', ring: false, inView: false, top: 0, fields: false };
    const r = el.getBoundingClientRect();
    // In a table, reading order is row by row: a cell's controls may wrap below the next
    // cell's, so the row's top is what must not go back up.
    const row = el.closest('tr');
    const top = (row ? row.getBoundingClientRect().top : r.top) + window.scrollY;
    return {
      id: id(el), desc: describe(el), ring: ring(el), top,
      fields: el.matches('input[type=date], input[type=time], input[type=datetime-local], input[type=month], input[type=week]'),
      inView: r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0
        && r.top < window.innerHeight && r.left < window.innerWidth,
    };
  };
  return { id, describe, tabbables, state };
})();
"#;

/// Allowance when checking that each stop is not above the one before it (a button and a text
/// in one row may sit a few pixels apart). In a table, a stop's height is its row's.
const ROW_SLACK_PX: f64 = 8.0;

/// What is focused, as the page reports it.
#[derive(Debug, Clone)]
struct Focus {
    id: i64,
    desc: String,
    ring: bool,
    in_view: bool,
    top: f64,
    /// A date or time input: Tab first moves between its own fields (day, month, hour…).
    fields: bool,
}

async fn page_js(browser: &Browser, body: &str, args: Vec<Value>) -> Value {
    browser
        .client
        .execute(&format!("{KB}\n{body}"), args)
        .await
        .unwrap_or_else(|e| panic!("page script failed: {e}\n{body}"))
}

async fn focus(browser: &Browser) -> Focus {
    let s = page_js(browser, "return __kb.state();", vec![]).await;
    Focus {
        id: s["id"].as_i64().unwrap_or(-1),
        desc: s["desc"].as_str().unwrap_or_default().to_owned(),
        ring: s["ring"] == json!(true),
        in_view: s["inView"] == json!(true),
        top: s["top"].as_f64().unwrap_or(0.0),
        fields: s["fields"] == json!(true),
    }
}

/// One key press (down, up), with Shift held around it when `shift`.
async fn key(browser: &Browser, key: Key, shift: bool) {
    let mut keys = KeyActions::new("keyboard".into());
    if shift {
        keys = keys.then(KeyAction::Down {
            value: Key::Shift.into(),
        });
    }
    keys = keys
        .then(KeyAction::Down { value: key.into() })
        .then(KeyAction::Up { value: key.into() });
    if shift {
        keys = keys.then(KeyAction::Up {
            value: Key::Shift.into(),
        });
    }
    browser
        .client
        .perform_actions(keys)
        .await
        .expect("key press");
}

/// Types `text` into whatever has focus, one key press per character.
async fn type_text(browser: &Browser, text: &str) {
    let mut keys = KeyActions::new("keyboard".into());
    for c in text.chars() {
        keys = keys
            .then(KeyAction::Down { value: c })
            .then(KeyAction::Up { value: c });
    }
    browser.client.perform_actions(keys).await.expect("typing");
}

/// How many of its own fields a date or time input may hold Tab in before it counts as a trap.
const MAX_FIELDS: usize = 8;

/// Presses Tab (Shift+Tab when `back`) and waits until focus has moved; a press after which
/// focus stays put is a keyboard trap. In a date or time input, Tab may move between the
/// input's own fields (the same element keeps focus): that press returns at once, and the
/// caller bounds how many such presses it allows.
async fn tab(browser: &Browser, back: bool) -> Focus {
    let before = focus(browser).await;
    key(browser, Key::Tab, back).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let now = focus(browser).await;
        if now.id != before.id || (before.fields && before.id != 0) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "keyboard trap: {} kept focus after {}",
            before.desc,
            if back { "Shift+Tab" } else { "Tab" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Presses Tab until the focused element matches `css`, passing at most `limit` elements
/// (the fields inside a date or time input not counted).
async fn tab_to(browser: &Browser, css: &str, limit: usize) -> Focus {
    let mut moves = 0;
    let mut within = 0;
    let mut last = focus(browser).await.id;
    while moves < limit {
        let now = tab(browser, false).await;
        if now.id == last {
            within += 1;
            assert!(within < MAX_FIELDS, "keyboard trap in {}", now.desc);
            continue;
        }
        (moves, within, last) = (moves + 1, 0, now.id);
        let here = page_js(
            browser,
            "const el = document.activeElement; return !!el && el.matches(arguments[0]);",
            vec![json!(css)],
        )
        .await;
        if here == json!(true) {
            return now;
        }
    }
    panic!("{limit} presses of Tab never reached {css}");
}

/// Presses `k` on the focused element (Enter, Space…) and waits until the page's path is
/// `path`.
async fn press_and_wait_for_path(browser: &Browser, k: Key, path: &str) {
    key(browser, k, false).await;
    browser.wait_for_path(path).await;
}

/// The descriptions of the elements Tab should reach, in document order.
async fn expected_stops(browser: &Browser) -> Vec<String> {
    let list = page_js(
        browser,
        "return __kb.tabbables().map(__kb.describe);",
        vec![],
    )
    .await;
    serde_json::from_value(list).expect("a list")
}

/// Walks the page with Tab from the top until focus leaves the page or comes back to the
/// first stop; every stop must show a focus ring and be in view, and the stops must be the
/// page's interactive elements in document order, each no higher on the page than the one
/// before. Then Shift+Tab walks back over the same stops. Returns the number of stops.
async fn walk(browser: &mut Browser, name: &str) -> usize {
    let expected = expected_stops(browser).await;
    assert_eq!(
        focus(browser).await.desc,
        "body",
        "{name}: something has focus before the first key press"
    );
    let mut forward: Vec<Focus> = Vec::new();
    let mut ended = false;
    let mut within = 0;
    for _ in 0..(expected.len() + 2) * MAX_FIELDS {
        let now = tab(browser, false).await;
        if forward.last().is_some_and(|f| f.id == now.id) {
            within += 1;
            assert!(within < MAX_FIELDS, "{name}: keyboard trap in {}", now.desc);
            continue;
        }
        within = 0;
        if now.id == 0 || forward.first().is_some_and(|f| f.id == now.id) {
            ended = true;
            break;
        }
        assert!(now.ring, "{name}: {} shows no focus ring", now.desc);
        assert!(now.in_view, "{name}: {} is focused out of view", now.desc);
        if forward.is_empty() {
            // The skip link, shown for as long as it has focus.
            browser.screenshot(&format!("{name}-skip-link")).await;
        }
        forward.push(now);
    }
    assert!(
        ended,
        "{name}: Tab never left the page nor came back to its first stop after {} stops",
        forward.len()
    );
    let seen: Vec<String> = forward.iter().map(|f| f.desc.clone()).collect();
    assert_eq!(
        seen, expected,
        "{name}: the stops Tab reaches (left) are not the page's interactive elements in order (right)"
    );
    for pair in forward.windows(2) {
        assert!(
            pair[1].top + ROW_SLACK_PX >= pair[0].top,
            "{name}: Tab goes back up the page from {} ({} px) to {} ({} px)",
            pair[0].desc,
            pair[0].top,
            pair[1].desc,
            pair[1].top
        );
    }
    // Backwards from where the walk ended: the same stops in reverse.
    let mut backward: Vec<String> = Vec::new();
    let mut last_id = -1;
    for _ in 0..(expected.len() + 2) * MAX_FIELDS {
        let now = tab(browser, true).await;
        if now.id == last_id && now.fields {
            continue;
        }
        last_id = now.id;
        if now.id == 0 {
            if backward.is_empty() {
                continue;
            }
            break;
        }
        if backward.first() == Some(&now.desc) && backward.len() > 1 {
            break;
        }
        backward.push(now.desc);
        if backward.len() == expected.len() {
            break;
        }
    }
    let mut reversed = expected.clone();
    reversed.reverse();
    // The walk may have ended on the first stop (a wrap): Shift+Tab then starts at the last.
    if backward.first() != reversed.first() && backward.last() == reversed.first() {
        backward.rotate_left(1);
    }
    assert_eq!(
        backward, reversed,
        "{name}: Shift+Tab does not walk the same stops backwards"
    );
    expected.len()
}

/// From a freshly loaded page: the first Tab stop is the skip link, shown while focused; Enter
/// on it puts focus on `main`, and the next Tab lands on the first stop inside `main`.
async fn skip_link_works(browser: &Browser, name: &str) {
    let first = tab(browser, false).await;
    assert!(
        first.desc.starts_with("a[href=#main]"),
        "{name}: the first Tab stop is {}, not the skip link",
        first.desc
    );
    assert!(
        first.in_view && first.ring,
        "{name}: the skip link is hidden when focused"
    );
    key(browser, Key::Enter, false).await;
    let deadline = Instant::now() + WAIT;
    while focus(browser).await.desc != "main#main" {
        assert!(
            Instant::now() < deadline,
            "{name}: Enter on the skip link left focus on {}",
            focus(browser).await.desc
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let inside = tab(browser, false).await;
    let in_main = page_js(
        browser,
        "return document.getElementById('main').contains(document.activeElement);",
        vec![],
    )
    .await;
    assert_eq!(
        in_main,
        json!(true),
        "{name}: after the skip link, Tab went to {} outside main",
        inside.desc
    );
}

/// No page has a menu or dialog yet; one added (an Alpine dropdown, a `<dialog>`) must close
/// with Escape and give focus back to its trigger, which this test would then have to show.
async fn no_menu_or_dialog(browser: &Browser, name: &str) {
    let found = page_js(
        browser,
        "return [...document.querySelectorAll('dialog, [role=dialog], [role=alertdialog], [role=menu], [aria-haspopup], [aria-expanded], [aria-modal]')].map(__kb.describe);",
        vec![],
    )
    .await;
    assert_eq!(
        found,
        json!([]),
        "{name}: a menu or dialog: add its Escape-and-focus-return check to browser::keyboard"
    );
}

/// Waits until htmx has nothing in flight (the overview fetches its status on connecting).
async fn htmx_settled(browser: &Browser) {
    let deadline = Instant::now() + WAIT;
    loop {
        let busy = page_js(
            browser,
            "return !!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling');",
            vec![],
        )
        .await;
        if busy == json!(false) {
            return;
        }
        assert!(Instant::now() < deadline, "htmx never settled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// From the sign-in page: Tab to the username, type it, Tab to the password, type it, Enter.
async fn sign_in_by_keyboard(browser: &Browser, username: &str, password: &str) {
    browser.wait_for("#username").await;
    tab_to(browser, "#username", 10).await;
    type_text(browser, username).await;
    tab_to(browser, "#password", 1).await;
    type_text(browser, password).await;
    key(browser, Key::Enter, false).await;
}

/// The pages of the 360 px tour in flows.rs, plus one guild, its links page and one server.
fn pages() -> Vec<(String, &'static str)> {
    vec![
        ("/".into(), "overview"),
        ("/guilds".into(), "guilds"),
        (format!("/guilds/{GUILD_ID}"), "guild"),
        (format!("/guilds/{GUILD_ID}/minecraft/links"), "links"),
        ("/audit".into(), "audit"),
        ("/logs".into(), "logs"),
        ("/minecraft".into(), "minecraft"),
        ("/minecraft/servers/default".into(), "server"),
        ("/account".into(), "account"),
        ("/admin".into(), "admin"),
        ("/admin/roles".into(), "roles"),
        ("/admin/api-keys".into(), "api-keys"),
    ]
}

#[actix_web::test]
#[serial(browser)]
async fn tab_reaches_every_control_of_every_page_in_order_with_a_visible_focus_ring_and_no_trap() {
    let Some(mut browser) = Browser::start("keyboard-pages").await else {
        return;
    };
    let w = world(Clock::System).await;
    let (_, username) = create_user(&w.app, "kbp", &[("admin", 0)]).await;
    browser.goto(&w.app.url("/sign-in")).await;
    browser.wait_for("#username").await;
    let stops = walk(&mut browser, "sign-in").await;
    let mut figures = vec![("/sign-in".to_owned(), stops)];
    browser.client.refresh().await.expect("reload");
    browser.wait_for("#username").await;
    skip_link_works(&browser, "sign-in").await;
    browser.check_page("sign-in").await;
    browser.goto(&w.app.url("/sign-in")).await;
    sign_in_by_keyboard(&browser, &username, PASSWORD).await;
    browser.wait_for_path("/").await;

    for (path, name) in pages() {
        browser.goto(&w.app.url(&path)).await;
        browser.wait_for("h1").await;
        if path == "/" {
            browser
                .wait_for_text("#live-note", "Live: changes appear")
                .await;
        }
        if path == "/logs" {
            browser.wait_for_text("#log-state", "Live.").await;
        }
        htmx_settled(&browser).await;
        no_menu_or_dialog(&browser, name).await;
        let stops = walk(&mut browser, name).await;
        figures.push((path.clone(), stops));
        browser.goto(&w.app.url(&path)).await;
        browser.wait_for("h1").await;
        htmx_settled(&browser).await;
        skip_link_works(&browser, name).await;
        browser.check_page(name).await;
    }
    // On a phone-sized screen in dark mode (the layout wraps): the same, stop for stop.
    browser.emulate(360, "dark").await;
    for (path, name) in pages() {
        let name = format!("{name}-360-dark");
        browser.goto(&w.app.url(&path)).await;
        browser.wait_for("h1").await;
        htmx_settled(&browser).await;
        let stops = walk(&mut browser, &name).await;
        let wide = figures.iter().find(|(p, _)| *p == path).map(|(_, n)| *n);
        assert_eq!(Some(stops), wide, "{name}: other stops than at 1280 px");
        browser.check_page(&name).await;
    }
    eprintln!("Tab stops per page: {figures:?}");

    // The overview's status is replaced whenever it changes: a reader whose focus is in it
    // keeps their place. Focus on the components table; the fake Discord drops the bot.
    browser.emulate(1280, "light").await;
    browser.goto(&w.app.url("/")).await;
    browser
        .wait_for_text("#live-note", "Live: changes appear")
        .await;
    htmx_settled(&browser).await;
    let region = tab_to(&browser, "#components-status", 40).await;
    w.fake.gateway_outage();
    let deadline = Instant::now() + WAIT;
    while browser.text_of(r#"[data-field="gateway"]"#).await == "connected" {
        assert!(
            Instant::now() < deadline,
            "the overview never showed the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    htmx_settled(&browser).await;
    let after = focus(&browser).await;
    assert_ne!(after.id, region.id, "the status was not replaced");
    assert_eq!(
        after.desc, region.desc,
        "the status update took focus from the table being read"
    );
    assert!(after.ring, "{after:?}");
    browser.check_page("overview-updated-with-focus").await;
    w.fake.gateway_back();
    browser.close().await;
}

#[actix_web::test]
#[serial(browser)]
async fn signing_in_with_mfa_turning_a_module_off_and_warning_a_member_work_from_the_keyboard_alone()
 {
    let Some(mut browser) = Browser::start("keyboard-task").await else {
        return;
    };
    let w = world(Clock::System).await;
    let (username, secret, _) = enrol_mfa(&w.app).await;
    browser.goto(&w.app.url("/")).await;
    browser.wait_for_path("/sign-in").await;
    sign_in_by_keyboard(&browser, &username, PASSWORD).await;

    // The second step: the code field has focus already. The recovery-code disclosure opens
    // with Enter and closes with Space; Shift+Tab goes back to the code.
    browser.wait_for("#code").await;
    let deadline = Instant::now() + WAIT;
    while focus(&browser).await.desc != "input#code[name=code]" {
        assert!(Instant::now() < deadline, "the code field never had focus");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    browser.check_page("second-step").await;
    tab_to(&browser, "summary", 3).await;
    key(&browser, Key::Enter, false).await;
    assert_eq!(
        recovery_open(&browser).await,
        json!(true),
        "Enter opens the recovery form"
    );
    assert!(
        expected_stops(&browser)
            .await
            .iter()
            .any(|s| s.starts_with("input#recovery_code")),
        "its field is reachable once open"
    );
    key(&browser, Key::Space, false).await;
    assert_eq!(
        recovery_open(&browser).await,
        json!(false),
        "Space closes it"
    );
    browser.screenshot("recovery-closed").await;
    let back = tab(&browser, true).await;
    let back = if back.desc.starts_with("button") {
        tab(&browser, true).await
    } else {
        back
    };
    assert_eq!(
        back.desc, "input#code[name=code]",
        "Shift+Tab back to the code"
    );
    let code = totp::code_at(&secret, jsonwebtoken::get_current_timestamp()).unwrap();
    type_text(&browser, &code).await;
    press_and_wait_for_path(&browser, Key::Enter, "/").await;
    browser.wait_for_text("h1", "Overview").await;
    htmx_settled(&browser).await;

    // To the guild from the navigation.
    tab_to(&browser, r#"nav a[href="/guilds"]"#, 10).await;
    press_and_wait_for_path(&browser, Key::Enter, "/guilds").await;
    tab_to(
        &browser,
        &format!(r#"main a[href="/guilds/{GUILD_ID}"]"#),
        20,
    )
    .await;
    let guild_path = format!("/guilds/{GUILD_ID}");
    press_and_wait_for_path(&browser, Key::Enter, &guild_path).await;
    browser.wait_for("#modules").await;
    browser.check_page("guild").await;

    // A module turned off with Space on its button; still off after a reload.
    tab_to(&browser, r#"#modules button[data-module="admin"]"#, 40).await;
    key(&browser, Key::Space, false).await;
    browser
        .wait_for_text("main", "Module admin turned off")
        .await;
    browser.check_page("module-off").await;
    browser.client.refresh().await.expect("reload");
    browser.wait_for_text("#modules", "Turn admin on").await;
    let config = w.app.state.guild_config.get(GUILD_ID as i64).await.unwrap();
    assert!(!config.module_enabled(guildhall::domain::settings::ModuleName::Admin));

    // A warning: the action chosen by typing its name in the select, the member's id and a
    // reason typed, Enter; on the confirmation page, Tab to "Yes, warn" and Enter.
    tab_to(&browser, "select#action", 60).await;
    type_text(&browser, "warn").await;
    tab_to(&browser, "#user_id", 1).await;
    type_text(&browser, &MEMBER.to_string()).await;
    tab_to(&browser, "#reason", 1).await;
    type_text(&browser, "typed without a mouse").await;
    key(&browser, Key::Enter, false).await;
    browser.wait_for_text("h1", "Confirm: warn").await;
    assert!(
        stored_cases(&w.app).await.is_empty(),
        "nothing happens before the confirmation"
    );
    browser.check_page("confirm").await;
    tab_to(&browser, r#"button[name="confirm"]"#, 30).await;
    press_and_wait_for_path(&browser, Key::Enter, &format!("{guild_path}/cases/1")).await;
    browser.wait_for_text("main", "typed without a mouse").await;
    browser.check_page("case").await;
    browser.client.refresh().await.expect("reload");
    browser.wait_for_text("main", "typed without a mouse").await;
    let cases = stored_cases(&w.app).await;
    assert_eq!(cases.len(), 1, "one case, kept");
    assert_eq!(cases[0].action, "warn");

    // Back to the guild by its link; a second action's confirmation cancelled from the
    // keyboard (a page, not a dialog: its Cancel link, Enter) changes nothing.
    tab_to(
        &browser,
        &format!(r#"main a[href="{guild_path}#cases"]"#),
        20,
    )
    .await;
    press_and_wait_for_path(&browser, Key::Enter, &guild_path).await;
    browser.wait_for("#moderate").await;
    tab_to(&browser, "select#action", 60).await;
    type_text(&browser, "kick").await;
    tab_to(&browser, "#user_id", 1).await;
    type_text(&browser, &MEMBER.to_string()).await;
    key(&browser, Key::Enter, false).await;
    browser.wait_for_text("h1", "Confirm: kick").await;
    tab_to(&browser, "main a.btn", 30).await;
    press_and_wait_for_path(&browser, Key::Enter, &guild_path).await;
    browser.wait_for("#moderate").await;
    browser.check_page("cancelled").await;
    let cases = stored_cases(&w.app).await;
    assert_eq!(cases.len(), 1, "the cancelled kick did nothing");
    browser.close().await;
}

#[actix_web::test]
#[serial(browser)]
async fn the_audit_export_downloads_on_enter_and_older_entries_load_as_tab_goes_down_the_list() {
    let Some(mut browser) = Browser::start("keyboard-audit").await else {
        return;
    };
    let app = crate::common::spawn_app().await;
    // More than a page (50): the oldest come through "Older entries".
    let mut ids = Vec::new();
    for i in 0..60 {
        let entry = NewAuditEntry::new(Actor::System, "keyboard.event").target(format!("item:{i}"));
        ids.push(app.state.audit.record(entry).await.expect("recorded"));
    }
    let (_, username) = create_user(&app, "kba", &[("admin", 0)]).await;
    browser.goto(&app.url("/audit?action=keyboard.event")).await;
    browser.wait_for_path("/sign-in").await;
    sign_in_by_keyboard(&browser, &username, PASSWORD).await;
    browser.wait_for_path("/audit").await;
    browser.wait_for("#audit-rows").await;
    browser.check_page("audit").await;

    // Enter on the CSV export link downloads the file.
    let downloads = tempfile::tempdir().unwrap();
    browser
        .client
        .issue_cmd(Cdp {
            cmd: "Page.setDownloadBehavior",
            params: json!({ "behavior": "allow", "downloadPath": downloads.path() }),
        })
        .await
        .expect("downloads allowed");
    tab_to(
        &browser,
        r#"a[href^="/audit/export"][href*="format=csv"]"#,
        30,
    )
    .await;
    key(&browser, Key::Enter, false).await;
    let deadline = Instant::now() + WAIT;
    let csv = loop {
        let done = std::fs::read_dir(downloads.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "csv"));
        if let Some(path) = done {
            break std::fs::read_to_string(path).unwrap();
        }
        assert!(Instant::now() < deadline, "no CSV downloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        csv.matches("keyboard.event").count(),
        60,
        "the export holds the filtered view"
    );

    // Tab down the list: past the first page's 50 rows, focus reaches the older ones.
    let first_page: Vec<String> = serde_json::from_value(
        page_js(
            &browser,
            "return [...document.querySelectorAll('#audit-rows tr:not(.more) a')].map(a => a.getAttribute('href'));",
            vec![],
        )
        .await,
    )
    .unwrap();
    assert_eq!(first_page.len(), 50, "one page of entries");
    let oldest = format!("/audit/{}", ids[0]);
    assert!(!first_page.iter().any(|h| h.starts_with(&oldest)));
    // Focus goes on down the list, through the older entries loaded in place, and never back
    // up the page (as it would if the swap dropped it).
    let mut path: Vec<Focus> = vec![focus(&browser).await];
    loop {
        let now = tab(&browser, false).await;
        let prev = path.last().unwrap();
        assert!(
            now.top + ROW_SLACK_PX >= prev.top,
            "focus went back up from {} to {}",
            prev.desc,
            now.desc
        );
        let found = now.desc.contains(&format!("[href={oldest}"));
        let more = now.desc.ends_with("\"Older entries\"");
        path.push(now);
        if more {
            // Reaching "Older entries" loads them in its place; focus moves to the first.
            let deadline = Instant::now() + WAIT;
            loop {
                let here = focus(&browser).await;
                if here.desc.ends_with("\"keyboard.event\"") {
                    assert!(here.ring, "{here:?}");
                    path.push(here);
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the older entries never took focus from \"Older entries\": focus is on {}",
                    here.desc
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if found {
            break;
        }
        assert!(
            path.len() < 100,
            "Tab never reached the oldest entry; the last stops: {:?}",
            path.iter()
                .rev()
                .take(8)
                .map(|f| &f.desc)
                .collect::<Vec<_>>()
        );
    }
    let last = path.last().unwrap();
    assert!(last.ring && last.in_view, "{last:?}");
    assert_eq!(browser.path().await, "/audit", "loaded in place");
    browser.check_page("older-entries").await;
    browser.close().await;
}

async fn recovery_open(browser: &Browser) -> Value {
    page_js(
        browser,
        "return document.querySelector('details.recovery').open;",
        vec![],
    )
    .await
}

fn log_line(level: &str, message: &str) -> LogLine {
    LogLine {
        timestamp_ms: guildhall::ids::now_ms(),
        level: level.into(),
        target: "keyboard_flow".into(),
        message: message.into(),
        request_id: None,
    }
}

/// Whether an item of the live log list containing `needle` is shown (`Some(true)`), hidden
/// by the filter (`Some(false)`), or absent.
async fn log_item(browser: &Browser, needle: &str) -> Option<bool> {
    let found = page_js(
        browser,
        "const item = [...document.querySelectorAll('#log-lines li')]
           .find(li => li.textContent.includes(arguments[0]));
         return item ? !item.hidden : null;",
        vec![json!(needle)],
    )
    .await;
    found.as_bool()
}

async fn wait_for_log_item(browser: &Browser, needle: &str, shown: Option<bool>) {
    let deadline = Instant::now() + WAIT;
    while log_item(browser, needle).await != shown {
        assert!(
            Instant::now() < deadline,
            "{needle}: expected {shown:?}, is {:?}",
            log_item(browser, needle).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
#[serial(browser)]
async fn the_live_log_viewer_pauses_resumes_and_filters_by_level_from_the_keyboard() {
    let Some(mut browser) = Browser::start("keyboard-logs").await else {
        return;
    };
    let app = crate::common::spawn_app().await;
    let (_, username) = create_user(&app, "kbl", &[("admin", 0)]).await;
    browser.goto(&app.url("/logs")).await;
    browser.wait_for_path("/sign-in").await;
    sign_in_by_keyboard(&browser, &username, PASSWORD).await;
    browser.wait_for_path("/logs").await;
    browser.wait_for_text("#log-state", "Live.").await;
    let publish = |level: &str, message: &str| {
        app.state
            .broadcaster
            .do_send(PublishLog(log_line(level, message)))
    };
    publish("INFO", "kb-info-1");
    publish("WARN", "kb-warn-1");
    wait_for_log_item(&browser, "kb-warn-1", Some(true)).await;
    wait_for_log_item(&browser, "kb-info-1", Some(true)).await;

    // The level: typed into the focused select ("w" picks Warn), applied at once.
    tab_to(&browser, "select#log-level", 20).await;
    type_text(&browser, "w").await;
    wait_for_log_item(&browser, "kb-info-1", Some(false)).await;
    wait_for_log_item(&browser, "kb-warn-1", Some(true)).await;
    browser.check_page("filtered").await;

    // Pause with Space: a new line is held (the button counts it), Enter resumes and shows it.
    tab_to(&browser, "#log-pause", 3).await;
    key(&browser, Key::Space, false).await;
    browser.wait_for_text("#log-pause", "Resume").await;
    assert_eq!(
        browser
            .wait_for("#log-pause")
            .await
            .attr("aria-pressed")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    publish("ERROR", "kb-error-held");
    browser.wait_for_text("#log-pause", "(1 waiting)").await;
    assert_eq!(log_item(&browser, "kb-error-held").await, None, "held");
    browser.check_page("paused").await;
    key(&browser, Key::Enter, false).await;
    browser.wait_for_text("#log-pause", "Pause").await;
    wait_for_log_item(&browser, "kb-error-held", Some(true)).await;
    assert_eq!(focus(&browser).await.desc, r#"button#log-pause "Pause""#);
    // The search box, back with Shift+Tab: a typed word filters, Escape clears it.
    let search = tab(&browser, true).await;
    assert!(search.desc.starts_with("input#log-search"), "{search:?}");
    type_text(&browser, "kb-warn").await;
    wait_for_log_item(&browser, "kb-error-held", Some(false)).await;
    wait_for_log_item(&browser, "kb-warn-1", Some(true)).await;
    key(&browser, Key::Escape, false).await;
    wait_for_log_item(&browser, "kb-error-held", Some(true)).await;
    // And the level back to All ("a"): the info line shows again.
    let level = tab(&browser, true).await;
    assert!(level.desc.starts_with("select#log-level"), "{level:?}");
    type_text(&browser, "a").await;
    wait_for_log_item(&browser, "kb-info-1", Some(true)).await;
    browser.check_page("all-levels").await;
    browser.close().await;
}

/// The guild's moderation cases, as stored.
async fn stored_cases(app: &crate::common::TestApp) -> Vec<guildhall::store::cases::CaseRow> {
    app.state
        .store
        .list_cases(GUILD_ID as i64, &Default::default(), 10)
        .await
        .unwrap()
}

//! The links page in a real browser, on a 360 px screen in dark mode, driven from the keyboard
//! where a person would type: an admin links a member (the fake Minecraft server whitelists
//! them), a bad name shows its error beside the field with the input kept, then the admin
//! unlinks after the confirmation page and the name leaves the whitelist. Every page passes
//! `check_page` (axe, console, CSP, screenshot) and none scrolls sideways.

use guildhall::clock::Clock;
use serial_test::serial;

use super::{Browser, WAIT};
use crate::common::TestApp;
use crate::common::auth::{PASSWORD, create_user};
use crate::common::fake_discord::MEMBER;
use crate::discord::links::world;
use crate::discord::links_pages::GUILD_ID;

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

async fn sign_in_at(browser: &Browser, app: &TestApp, path: &str) {
    let (_, username) = create_user(app, "brwl", &[("admin", 0)]).await;
    browser.goto(&app.url(path)).await;
    browser.wait_for_path("/sign-in").await;
    browser.fill("#username", &username).await;
    browser.fill("#password", PASSWORD).await;
    browser
        .click(r#"form[action="/sign-in"] button[type="submit"]"#)
        .await;
    browser.wait_for_path(path).await;
}

async fn wait_for_text(browser: &Browser, css: &str, needle: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = browser.text_of(css).await;
        if text.contains(needle) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} never showed {needle:?}; it shows {text:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn check_narrow(browser: &mut Browser, name: &str) {
    browser.check_page(name).await;
    assert_eq!(browser.overflow_px().await, 0, "{name} scrolls sideways");
}

#[actix_web::test]
#[serial(browser)]
async fn an_admin_links_a_member_in_a_browser_sees_them_whitelisted_then_unlinks_after_confirming()
{
    let Some(mut browser) = Browser::start("minecraft-links").await else {
        return;
    };
    let w = world(Clock::System).await;
    browser.emulate(360, "dark").await;
    let path = format!("/guilds/{GUILD_ID}/minecraft/links");
    sign_in_at(&browser, &w.app, &path).await;
    wait_for_text(&browser, "#links", "No Minecraft account is linked").await;
    check_narrow(&mut browser, "empty").await;

    // A bad name, typed and submitted with Enter: the error beside the field, input kept.
    browser.fill("#user_id", &MEMBER.to_string()).await;
    browser.fill("#minecraft_name", "no way").await;
    browser
        .wait_for("#minecraft_name")
        .await
        .send_keys(ENTER)
        .await
        .expect("enter");
    let error = browser.wait_for("#minecraft_name-error").await;
    assert!(
        error
            .text()
            .await
            .unwrap()
            .contains("is not a Minecraft player name")
    );
    let field = browser.wait_for("#minecraft_name").await;
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        field.prop("value").await.unwrap().as_deref(),
        Some("no way")
    );
    assert_eq!(
        browser
            .wait_for("#user_id")
            .await
            .prop("value")
            .await
            .unwrap(),
        Some(MEMBER.to_string())
    );
    check_narrow(&mut browser, "link-error").await;

    // The right name: linked, and on the fake server's whitelist.
    browser.fill("#minecraft_name", "Steve").await;
    browser
        .wait_for("#minecraft_name")
        .await
        .send_keys(ENTER)
        .await
        .expect("enter");
    wait_for_text(&browser, "main", "Linked Steve to member").await;
    wait_for_text(&browser, r#"tr[data-link="Steve"]"#, "yes").await;
    assert!(w.rcon.is_whitelisted("Steve"), "{:?}", w.rcon.commands());
    check_narrow(&mut browser, "linked").await;

    // Unlink: a confirmation page first, which changes nothing.
    browser.click(r#"a[data-unlink="Steve"]"#).await;
    wait_for_text(&browser, "h1", "Unlink Steve?").await;
    assert!(w.rcon.is_whitelisted("Steve"));
    check_narrow(&mut browser, "confirm").await;
    browser.click(r#"button[name="confirm"]"#).await;
    wait_for_text(&browser, "main", "Unlinked Steve from member").await;
    assert!(!w.rcon.is_whitelisted("Steve"), "{:?}", w.rcon.commands());
    wait_for_text(&browser, "#links", "No Minecraft account is linked").await;
    check_narrow(&mut browser, "unlinked").await;
    browser.close().await;
}

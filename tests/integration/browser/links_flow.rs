//! The links page in a real browser, on a 360 px screen in dark mode, driven from the keyboard
//! where a person would type: an admin links a member (the fake Minecraft server whitelists
//! them), a bad name shows its error beside the field with the input kept, then the admin
//! unlinks after the confirmation page and the name leaves the whitelist. Every page passes
//! `check_page` (axe, console, CSP, screenshot) and none scrolls sideways.

use guildhall::clock::Clock;
use serial_test::serial;

use super::Browser;
use crate::common::auth::create_user;
use crate::common::fake_discord::MEMBER;
use crate::discord::links::world;
use crate::discord::links_pages::GUILD_ID;

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

/// Types `name` into the Minecraft name field and submits the form with Enter.
async fn type_name_and_enter(browser: &Browser, name: &str) {
    browser.fill("#minecraft_name", name).await;
    browser
        .wait_for("#minecraft_name")
        .await
        .send_keys(ENTER)
        .await
        .expect("enter");
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
    let (_, username) = create_user(&w.app, "brwl", &[("admin", 0)]).await;
    browser.sign_in_at(&w.app.url(&path), &username).await;
    browser
        .wait_for_text("#links", "No Minecraft account is linked")
        .await;
    check_narrow(&mut browser, "empty").await;

    // A bad name, typed and submitted with Enter: the error beside the field, input kept.
    browser.fill("#user_id", &MEMBER.to_string()).await;
    type_name_and_enter(&browser, "no way").await;
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
    type_name_and_enter(&browser, "Steve").await;
    browser
        .wait_for_text("main", "Linked Steve to member")
        .await;
    browser
        .wait_for_text(r#"tr[data-link="Steve"]"#, "yes")
        .await;
    assert!(w.rcon.is_whitelisted("Steve"), "{:?}", w.rcon.commands());
    check_narrow(&mut browser, "linked").await;

    // Unlink: a confirmation page first, which changes nothing.
    browser.click(r#"a[data-unlink="Steve"]"#).await;
    browser.wait_for_text("h1", "Unlink Steve?").await;
    assert!(w.rcon.is_whitelisted("Steve"));
    check_narrow(&mut browser, "confirm").await;
    browser.click(r#"button[name="confirm"]"#).await;
    browser
        .wait_for_text("main", "Unlinked Steve from member")
        .await;
    assert!(!w.rcon.is_whitelisted("Steve"), "{:?}", w.rcon.commands());
    browser
        .wait_for_text("#links", "No Minecraft account is linked")
        .await;
    check_narrow(&mut browser, "unlinked").await;
    browser.close().await;
}

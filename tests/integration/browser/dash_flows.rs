//! The guild, Minecraft and administration pages in a real browser, with the setup of their
//! browserless tests (tests/integration/dash_pages.rs): a module toggled stays so after a
//! reload; a settings error shows beside its field, then a correct save; a console command
//! reaches the fake RCON server and its output shows; an API key is shown once and revoked;
//! a viewer sees no admin control and a forged admin post from their session is refused.
//! Every page visited passes `check_page` (axe, console, CSP, screenshot).

use reqwest::StatusCode;
use serde_json::json;
use serial_test::serial;

use super::Browser;
use crate::common::TestApp;
use crate::common::auth::create_user;
use crate::common::fake_rcon::FakeRcon;
use crate::common::spawn_app;
use crate::dash_pages::{GUILD, add_guild, saved_log_channel};
use crate::minecraft::app_with;

/// Signs in a fresh user holding `roles` through the form, starting from `path` (which
/// redirects to sign-in), and waits to be back on `path`.
async fn sign_in_at(browser: &Browser, app: &TestApp, roles: &[(&str, i64)], path: &str) {
    let (_, username) = create_user(app, "brw", roles).await;
    browser.sign_in_at(&app.url(path), &username).await;
}

#[actix_web::test]
#[serial(browser)]
async fn a_module_toggled_on_the_guild_page_in_a_browser_is_still_off_after_a_reload() {
    let Some(mut browser) = Browser::start("guild-module").await else {
        return;
    };
    let app = spawn_app().await;
    add_guild(&app, GUILD, "Toggles").await;
    let path = format!("/guilds/{GUILD}");
    sign_in_at(&browser, &app, &[("admin", 0)], &path).await;
    browser
        .wait_for_text("#modules", "Turn moderation off")
        .await;
    browser.check_page("guild").await;

    browser
        .click(r#"#modules button[data-module="moderation"]"#)
        .await;
    browser
        .wait_for_text("main", "Module moderation turned off")
        .await;
    browser.check_page("toggled").await;
    browser.client.refresh().await.expect("reload");
    browser
        .wait_for_text("#modules", "Turn moderation on")
        .await;
    browser.check_page("reloaded").await;
    let config = app.state.guild_config.get(GUILD).await.unwrap();
    assert!(!config.module_enabled(guildhall::domain::settings::ModuleName::Moderation));
    browser.close().await;
}

#[actix_web::test]
#[serial(browser)]
async fn a_settings_error_shows_beside_its_field_in_a_browser_then_a_correct_save_is_stored() {
    let Some(mut browser) = Browser::start("guild-settings").await else {
        return;
    };
    let app = spawn_app().await;
    add_guild(&app, GUILD, "Settings").await;
    let path = format!("/guilds/{GUILD}");
    sign_in_at(&browser, &app, &[("admin", 0)], &path).await;
    browser.fill("#log_channel", "not-a-channel").await;
    browser
        .fill("#welcome_message", "Hello {user}, kept as typed")
        .await;
    browser.click(r#"#settings button[type="submit"]"#).await;
    let error = browser.wait_for("#log_channel-error").await;
    assert!(!error.text().await.unwrap().is_empty());
    let field = browser.wait_for("#log_channel").await;
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        field.prop("value").await.unwrap().as_deref(),
        Some("not-a-channel"),
        "the input is kept"
    );
    browser.check_page("settings-error").await;

    browser.fill("#log_channel", "123456789012345678").await;
    browser.fill("#welcome_message", "Hello {user}").await;
    browser.click(r#"#settings button[type="submit"]"#).await;
    browser.wait_for_text("main", "Settings saved").await;
    browser.check_page("settings-saved").await;
    assert_eq!(saved_log_channel(&app).await, Some(123_456_789_012_345_678));
    browser.close().await;
}

#[actix_web::test]
#[serial(browser)]
async fn a_console_command_typed_in_a_browser_reaches_the_fake_rcon_server_and_its_output_shows() {
    let Some(mut browser) = Browser::start("minecraft-console").await else {
        return;
    };
    let fake = FakeRcon::start(crate::minecraft::PASSWORD);
    let app = app_with(&fake, crate::minecraft::PASSWORD).await;
    sign_in_at(
        &browser,
        &app,
        &[("admin", 0)],
        "/minecraft/servers/default",
    )
    .await;
    browser.wait_for("#console").await;
    browser.check_page("server").await;
    browser.fill("#command", "list").await;
    browser.click(r#"#console button[type="submit"]"#).await;
    browser
        .wait_for_text("#console-output", "players online")
        .await;
    assert_eq!(fake.commands(), ["list"]);
    // htmx appended the line: the page itself was not reloaded.
    assert_eq!(browser.path().await, "/minecraft/servers/default");
    browser.check_page("console-output").await;
    browser.close().await;
}

#[actix_web::test]
#[serial(browser)]
async fn an_api_key_created_in_a_browser_is_shown_once_and_revoked_from_the_list() {
    let Some(mut browser) = Browser::start("api-keys").await else {
        return;
    };
    let app = spawn_app().await;
    sign_in_at(&browser, &app, &[("admin", 0)], "/admin/api-keys").await;
    browser.check_page("keys").await;
    browser.fill("#key-name", "ci").await;
    browser
        .click(r#"input[name="permissions"][value="audit.read"]"#)
        .await;
    browser
        .click(r#"form[action="/admin/api-keys"] button[type="submit"]"#)
        .await;
    let shown = browser.wait_for("#new-api-key").await;
    let key = shown.text().await.unwrap().trim().to_owned();
    assert!(!key.is_empty());
    browser.check_page("created").await;
    let (status, _) = app.call("GET", "/api/v1/audit", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK, "the key works");

    browser.goto(&app.url("/admin/api-keys")).await;
    browser.wait_for(r#"button[data-revoke="ci"]"#).await;
    assert!(
        !browser.text_of("main").await.contains(&key),
        "shown only once"
    );
    browser.check_page("listed").await;
    browser.click(r#"button[data-revoke="ci"]"#).await;
    browser.wait_for_text("main", "revoked").await;
    assert!(!browser.text_of("main").await.contains("Revoke ci"));
    browser.check_page("revoked").await;
    assert!(
        crate::common::eventually(std::time::Duration::from_secs(5), || async {
            app.call("GET", "/api/v1/audit", Some(&key), None).await.0 == StatusCode::UNAUTHORIZED
        })
        .await,
        "the revoked key is refused"
    );
    browser.close().await;
}

#[actix_web::test]
#[serial(browser)]
async fn a_viewer_in_a_browser_sees_no_admin_controls_and_a_forged_admin_post_is_refused() {
    let Some(mut browser) = Browser::start("viewer-admin").await else {
        return;
    };
    let app = spawn_app().await;
    sign_in_at(&browser, &app, &[("viewer", 0)], "/").await;
    browser.wait_for("h1").await;
    let admin_links = browser
        .client
        .execute(
            r#"return document.querySelectorAll('a[href^="/admin"], form[action^="/admin"]').length;"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(admin_links, json!(0), "no Administration entry or form");
    browser.check_page("overview").await;
    browser.goto(&app.url("/admin")).await;
    browser.wait_for("h1").await;
    assert!(
        !browser.text_of("main").await.contains("Create"),
        "the refusal page offers nothing"
    );
    browser.check_page("admin-refused").await;

    // A post the page never offers, forged from the viewer's own session: same origin, the
    // session cookie and a valid CSRF token, as a script injected into the page would send.
    browser.goto(&app.url("/")).await;
    browser.wait_for("h1").await;
    let users_before = guildhall::store::users::list(&app.state.store)
        .await
        .unwrap()
        .len();
    let status = browser
        .client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               const token = document.querySelector('input[name="csrf_token"]').value;
               const body = new URLSearchParams({ csrf_token: token, username: 'intruder',
                 password: 'a long enough password', roles: 'admin' });
               fetch('/admin/users', { method: 'POST', body, credentials: 'same-origin', redirect: 'manual' })
                 .then(r => done(r.status)).catch(e => done('fetch failed: ' + e));"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403), "the forged post is refused");
    let users_after = guildhall::store::users::list(&app.state.store)
        .await
        .unwrap()
        .len();
    assert_eq!(users_before, users_after, "nobody was created");
    browser.assert_quiet("forged").await;
    browser.close().await;
}

//! Sign in with Discord in a real browser, against the fake Discord: the sign-in page's
//! "Sign in with Discord" goes to the fake's consent page, "Authorize" brings the browser back
//! through `/auth/discord/callback`, signed in, to the overview, where the guild list holds only
//! the guild whose Discord roles give access. "Cancel" ends on the sign-in page with the reason
//! and no session; without the settings the sign-in page says Discord sign-in is off; the account
//! page links and unlinks a Discord account. Every page visited passes `check_page` (axe,
//! console, CSP, screenshot) — the fake's consent page too, so a flow stops on no unchecked page
//! but the callback's own one-line "continue" page, which moves on by itself at once.

use fantoccini::cookies::Cookie;
use serial_test::serial;

use super::Browser;
use crate::common::auth::create_user;
use crate::common::fake_discord::oauth::Consent;
use crate::common::fake_discord::{ADMIN, FakeDiscord, MEMBER, MODERATOR, standard_guild};
use crate::common::{TestApp, audit_details, count, free_port, spawn_app, spawn_app_with};

/// The bot is in both; the signing-in user administers the first and is a plain member of the
/// second.
const MANAGED: u64 = 1_400_000_000_000_000_000;
const MEMBER_ONLY: u64 = 1_500_000_000_000_000_000;
const MANAGED_NAME: &str = "Managed Guild";
const MEMBER_ONLY_NAME: &str = "Member-only Guild";

/// The fake with both guilds, and the app with Discord sign-in configured against it. The
/// browser follows Discord's redirect to the configured public URL, so that URL must be the
/// app's real address: the port is chosen before the app binds it.
async fn discord_app() -> (FakeDiscord, TestApp) {
    let fake = FakeDiscord::start().await;
    let mut managed = standard_guild(MANAGED);
    managed.name = MANAGED_NAME.to_owned();
    fake.add_guild(managed);
    let mut member_only = standard_guild(MEMBER_ONLY);
    member_only.name = MEMBER_ONLY_NAME.to_owned();
    for m in member_only.members.iter_mut().filter(|m| m.id == ADMIN) {
        // Only the `member` role: no Administrator, no Manage Server here.
        m.roles = vec![MEMBER_ONLY + 1];
    }
    fake.add_guild(member_only);
    let port = free_port();
    let vars = fake.oauth_env(&format!("http://127.0.0.1:{port}"));
    let app = spawn_app_with(move |env| {
        env.extend(vars);
        env.insert("GUILDHALL_BIND".into(), format!("127.0.0.1:{port}"));
    })
    .await;
    assert_eq!(
        app.port, port,
        "the app listens where Discord sends browsers"
    );
    for guild in [MANAGED, MEMBER_ONLY] {
        crate::discord::wait_until_connected(&app, guild).await;
    }
    (fake, app)
}

async fn cookie_names(browser: &Browser) -> Vec<String> {
    browser
        .client
        .get_all_cookies()
        .await
        .expect("cookies")
        .iter()
        .map(|c: &Cookie<'_>| c.name().to_owned())
        .collect()
}

/// On the fake's consent screen (checked like any page), presses `button` ("approve" or
/// "deny").
async fn on_discord_consent(browser: &mut Browser, fake: &FakeDiscord, button: &str) {
    browser.wait_for_path("/oauth2/authorize").await;
    let here = browser.client.current_url().await.expect("url");
    assert!(
        here.as_str().starts_with(&fake.url),
        "on Discord's site: {here}"
    );
    browser.wait_for(r#"button[value="approve"]"#).await;
    browser.check_page("discord-consent").await;
    browser
        .click(&format!(r#"button[name="decision"][value="{button}"]"#))
        .await;
}

#[actix_web::test]
#[serial(browser)]
async fn signing_in_with_discord_in_a_browser_lands_on_the_overview_seeing_only_the_guild_discord_grants()
 {
    let Some(mut browser) = Browser::start("discord-sign-in").await else {
        return;
    };
    let (fake, app) = discord_app().await;
    fake.set_consent(Consent::Ask(ADMIN));
    browser.goto(&app.url("/")).await;
    browser.wait_for_path("/sign-in").await;
    browser.check_page("sign-in").await;
    browser.click(r#"a[href^="/auth/discord/start"]"#).await;
    on_discord_consent(&mut browser, &fake, "approve").await;

    // Back through the callback, signed in, where the sign-in began.
    browser.wait_for_path("/").await;
    browser.wait_for_text("h1", "Overview").await;
    browser.check_page("overview").await;
    let cookies = cookie_names(&browser).await;
    assert!(
        cookies.contains(&"guildhall_session".to_owned()),
        "{cookies:?}"
    );
    assert!(
        !cookies.contains(&"guildhall_discord_oauth".to_owned()),
        "the binding cookie is spent: {cookies:?}"
    );
    let authorize = fake
        .oauth_calls()
        .into_iter()
        .find(|c| c.path == "/oauth2/authorize")
        .expect("the browser reached Discord");
    assert_eq!(authorize.params["code_challenge_method"], "S256");
    assert!(authorize.params["state"].len() >= 16);
    assert!(
        fake.oauth_calls()
            .iter()
            .any(|c| c.path == "/api/v10/oauth2/token"),
        "the code was exchanged"
    );

    // The guild list (from the navigation) holds the managed guild and not the other one.
    browser.click(r#"a[href="/guilds"]"#).await;
    browser.wait_for_path("/guilds").await;
    browser.wait_for_text("main", MANAGED_NAME).await;
    assert!(
        !browser.text_of("main").await.contains(MEMBER_ONLY_NAME),
        "a guild where Discord gives nothing is not listed"
    );
    browser.check_page("guilds").await;
    browser
        .click(&format!(r#"a[href="/guilds/{MANAGED}"]"#))
        .await;
    browser.wait_for_path(&format!("/guilds/{MANAGED}")).await;
    browser.wait_for("#settings").await;
    browser.check_page("managed-guild").await;
    // Typed by hand, the other guild's page refuses and shows none of its controls.
    browser
        .goto(&app.url(&format!("/guilds/{MEMBER_ONLY}")))
        .await;
    browser.wait_for("h1").await;
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css("#settings"))
            .await
            .is_err(),
        "no settings form in a guild Discord gives no access to"
    );
    browser.check_page("member-only-guild-refused").await;

    let linked: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM discord_accounts WHERE discord_user_id = $1")
            .bind(ADMIN as i64)
            .fetch_one(app.state.store.pool())
            .await
            .expect("count");
    assert_eq!(linked, 1, "the user is linked by Discord id");
    let logins = audit_details(&app, "auth.login").await;
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["via"], "discord");
    browser.close().await;
}

#[actix_web::test]
#[serial(browser)]
async fn cancelling_discord_consent_in_a_browser_ends_on_the_sign_in_page_with_the_reason_and_no_session()
 {
    let Some(mut browser) = Browser::start("discord-denied").await else {
        return;
    };
    let (fake, app) = discord_app().await;
    let users_before = count(&app, "SELECT COUNT(*) FROM users").await;
    fake.set_consent(Consent::Ask(MEMBER));
    browser.goto(&app.url("/sign-in")).await;
    browser.check_page("sign-in").await;
    browser.click(r#"a[href^="/auth/discord/start"]"#).await;
    on_discord_consent(&mut browser, &fake, "deny").await;

    browser.wait_for_path("/sign-in").await;
    browser
        .wait_for_text(r#"[role="alert"]"#, "Discord sign-in was cancelled.")
        .await;
    browser.check_page("cancelled").await;
    let cookies = cookie_names(&browser).await;
    assert!(
        !cookies.contains(&"guildhall_session".to_owned())
            && !cookies.contains(&"guildhall_discord_oauth".to_owned()),
        "no session, no binding left: {cookies:?}"
    );
    // Not signed in: the overview sends the browser back to sign in.
    browser.goto(&app.url("/")).await;
    browser.wait_for_path("/sign-in").await;
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM users").await,
        users_before
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM discord_accounts").await,
        0
    );
    let failures = audit_details(&app, "auth.discord_login_failed").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["reason"], "discord_access_denied");
    browser.close().await;
}

#[actix_web::test]
#[serial(browser)]
async fn without_its_settings_the_sign_in_page_in_a_browser_says_discord_sign_in_is_not_configured()
{
    let Some(mut browser) = Browser::start("discord-unconfigured").await else {
        return;
    };
    let app = spawn_app().await;
    browser.goto(&app.url("/sign-in")).await;
    browser
        .wait_for_text(
            "main",
            "Sign in with Discord is not configured on this instance.",
        )
        .await;
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css(r#"a[href^="/auth/discord"]"#))
            .await
            .is_err(),
        "no Discord button"
    );
    browser.check_page("sign-in").await;
    // The start address typed by hand says so too, on the sign-in page.
    browser.goto(&app.url("/auth/discord/start")).await;
    browser.wait_for_path("/sign-in").await;
    browser
        .wait_for_text(
            r#"[role="alert"]"#,
            "Sign in with Discord is not configured on this instance.",
        )
        .await;
    browser.check_page("start-refused").await;
    browser.close().await;
}

#[actix_web::test]
#[serial(browser)]
async fn the_account_page_in_a_browser_links_a_discord_account_and_unlinks_it() {
    let Some(mut browser) = Browser::start("discord-account").await else {
        return;
    };
    let (fake, app) = discord_app().await;
    let (user_id, username) = create_user(&app, "brd", &[]).await;
    browser.sign_in_at(&app.url("/account"), &username).await;
    browser.wait_for_text("#discord", "Link Discord").await;
    browser.check_page("account").await;

    fake.set_consent(Consent::Ask(MODERATOR));
    browser
        .click(r#"form[action="/account/discord/link"] button[type="submit"]"#)
        .await;
    on_discord_consent(&mut browser, &fake, "approve").await;
    browser.wait_for_path("/account").await;
    browser.wait_for_text("#discord", "Unlink Discord").await;
    assert!(
        browser.text_of("#discord").await.contains("moderator"),
        "the linked Discord account is named"
    );
    browser.check_page("linked").await;
    let linked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM discord_accounts WHERE user_id = $1 AND discord_user_id = $2",
    )
    .bind(user_id)
    .bind(MODERATOR as i64)
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(linked, 1, "linked to the signed-in local user");

    browser
        .click(r#"form[action="/account/discord/unlink"] button[type="submit"]"#)
        .await;
    browser.wait_for_text("main", "Discord is unlinked").await;
    browser.wait_for_text("#discord", "Link Discord").await;
    browser.check_page("unlinked").await;
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM discord_accounts").await,
        0
    );
    assert_eq!(audit_details(&app, "auth.discord_linked").await.len(), 1);
    assert_eq!(audit_details(&app, "auth.discord_unlinked").await.len(), 1);
    browser.close().await;
}

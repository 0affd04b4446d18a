//! Sign in with Discord end to end: guildhall's real OAuth2 client (authorization code, `state`,
//! PKCE S256) against the fake Discord's `/oauth2/authorize` (consent simulated, the test
//! follows the redirects as a browser would), `/oauth2/token`, `/users/@me` and
//! `/users/@me/guilds`; access from guild roles, recomputed from gateway events.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use guildhall::clock::Clock;

use super::{GUILD, WAIT, connected_at};
use crate::common::auth::{PASSWORD, admin_token, create_user, grant};
use crate::common::fake_discord::oauth::{Consent, oauth_vars};
use crate::common::fake_discord::{ADMIN, FakeDiscord, MEMBER, MODERATOR, OWNER, standard_guild};
use crate::common::pages::location;
use crate::common::{TestApp, audit_details as audit_actions, count, eventually};

/// Where browsers reach guildhall, as configured; the test maps it to the app's real address.
const PUBLIC: &str = "http://guildhall.test";
/// A guild the user is in but the bot is not.
const OTHER_GUILD: u64 = 1_300_000_000_000_000_000;
const STRANGER: u64 = 800_000_000_000_000_099;

/// A browser with no automatic redirects and the cookies the test hands it.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn oauth_app_with_clock(clock: Clock, extra: &[(&str, &str)]) -> (FakeDiscord, TestApp) {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let (fake, app) = connected_at(clock, move |env| {
        env.extend(oauth_vars(PUBLIC));
        env.extend(extra);
    })
    .await;
    // In the fake after the bot connected, so the bot never hears of it.
    let mut other = standard_guild(OTHER_GUILD);
    other.owner_id = ADMIN;
    fake.add_guild(other);
    fake.add_oauth_user(STRANGER, "stranger");
    (fake, app)
}

async fn oauth_app() -> (FakeDiscord, TestApp) {
    oauth_app_with_clock(Clock::System, &[]).await
}

fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (n, v) = pair.split_once('=')?;
            (n == name && !v.is_empty()).then(|| v.to_owned())
        })
}

/// `GET /auth/discord/start`: Discord's authorize URL and the binding cookie.
async fn start(app: &TestApp, next: &str) -> (String, String) {
    let response = browser()
        .get(app.url(&format!("/auth/discord/start?next={next}")))
        .send()
        .await
        .expect("start");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let binding = cookie_value(&response, "guildhall_discord_oauth").expect("binding cookie");
    (location(&response), binding)
}

/// Discord's consent screen: follows the authorize URL and returns where Discord sends the
/// browser back, mapped from the public URL to the app.
async fn consent(app: &TestApp, authorize_url: &str) -> String {
    let response = browser()
        .get(authorize_url)
        .send()
        .await
        .expect("authorize");
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "{:?}",
        response.text().await
    );
    let back = location(&response);
    assert!(
        back.starts_with(&format!("{PUBLIC}/auth/discord/callback?")),
        "{back}"
    );
    back.replace(PUBLIC, &app.address)
}

async fn callback(callback_url: &str, binding: Option<&str>) -> reqwest::Response {
    let mut request = browser().get(callback_url);
    if let Some(b) = binding {
        request = request.header(COOKIE, format!("guildhall_discord_oauth={b}"));
    }
    request.send().await.expect("callback")
}

/// The whole flow for the Discord user `who`; returns the callback's response.
async fn sign_in_as(fake: &FakeDiscord, app: &TestApp, who: u64) -> reqwest::Response {
    fake.set_consent(Consent::Approve(who));
    let (authorize, binding) = start(app, "/guilds").await;
    let back = consent(app, &authorize).await;
    callback(&back, Some(&binding)).await
}

/// Signs in and returns the session cookie's value.
async fn session_of(fake: &FakeDiscord, app: &TestApp, who: u64) -> String {
    let response = sign_in_as(fake, app, who).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", location(&response));
    cookie_value(&response, "guildhall_session").expect("session cookie")
}

/// Signs `who` in with Discord: the session, what `/api/v1/auth/me` says, and the user's id.
async fn signed_in(fake: &FakeDiscord, app: &TestApp, who: u64) -> (String, Value, i64) {
    let session = session_of(fake, app, who).await;
    let (_, me) = whoami(app, &session).await;
    let id = me["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a user id");
    (session, me, id)
}

/// `DELETE /api/v1/auth/discord/link` with `token`.
async fn unlink(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.call("DELETE", "/api/v1/auth/discord/link", Some(token), None)
        .await
}

async fn whoami(app: &TestApp, session: &str) -> (StatusCode, Value) {
    let response = browser()
        .get(app.url("/api/v1/auth/me"))
        .header(COOKIE, format!("guildhall_session={session}"))
        .send()
        .await
        .expect("me");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn guild_permissions(me: &Value, guild: u64) -> Vec<String> {
    me["guild_permissions"][guild.to_string()]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn set_mod_role(app: &TestApp, role: u64) {
    let admin = admin_token(app).await;
    let (status, body) = app
        .call(
            "PATCH",
            &format!("/api/v1/settings/{GUILD}"),
            Some(&admin),
            Some(json!({"mod_role": role.to_string()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn without_its_settings_discord_sign_in_is_off_and_the_api_and_sign_in_page_say_why() {
    let app = crate::common::spawn_app().await;
    let (status, body) = app.get_json("/api/v1/auth/discord").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["available"], false);
    assert_eq!(body["reason"], "not_configured");
    let response = browser()
        .get(app.url("/auth/discord/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "/sign-in?discord_error=discord_not_configured"
    );
}

#[actix_web::test]
async fn an_administrator_of_a_shared_guild_signs_in_with_discord_and_manages_only_that_guild() {
    let (fake, app) = oauth_app().await;
    let (status, available) = app.get_json("/api/v1/auth/discord").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(available["available"], true);
    assert_eq!(
        available["redirect_uri"],
        format!("{PUBLIC}/auth/discord/callback")
    );

    fake.set_consent(Consent::Approve(ADMIN));
    let (authorize, binding) = start(&app, "/guilds").await;
    let url = url::Url::parse(&authorize).unwrap();
    assert!(authorize.starts_with(&format!("{}/oauth2/authorize?", fake.url)));
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "identify guilds");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{PUBLIC}/auth/discord/callback"));
    assert!(q["state"].len() >= 16 && q["code_challenge"].len() >= 43);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM discord_oauth_requests").await,
        1
    );

    let back = consent(&app, &authorize).await;
    let response = callback(&back, Some(&binding)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("refresh").unwrap().to_str().unwrap(),
        "0; url=/guilds"
    );
    let session = cookie_value(&response, "guildhall_session").expect("session cookie");
    let token_call = fake
        .oauth_calls()
        .into_iter()
        .find(|c| c.path == "/api/v10/oauth2/token")
        .expect("token exchanged");
    assert!(
        token_call.params["code_verifier"].len() >= 43,
        "PKCE verifier sent"
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM discord_oauth_requests").await,
        0,
        "the request is used up"
    );

    let (status, me) = whoami(&app, &session).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me["username"],
        format!("discord_{ADMIN}"),
        "`admin` is the first local user's name, so the fallback name is used"
    );
    let here = guild_permissions(&me, GUILD);
    for p in [
        "settings.write",
        "modules.manage",
        "moderation.act",
        "audit.read",
    ] {
        assert!(here.contains(&p.to_owned()), "{p} in {here:?}");
    }
    assert!(
        guild_permissions(&me, OTHER_GUILD).is_empty(),
        "nothing in a guild the bot is not in (the user owns it)"
    );
    assert!(
        me["permissions"].as_array().unwrap().is_empty(),
        "nothing global"
    );

    let logins = audit_actions(&app, "auth.login").await;
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["via"], "discord");
    let granted = audit_actions(&app, "discord.access_granted").await;
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0]["after"], "manage");
    assert_eq!(granted[0]["cause"], "sign_in");
    assert_eq!(
        audit_actions(&app, "users.created_from_discord")
            .await
            .len(),
        1
    );

    // A second sign-in finds the same user and changes nothing.
    let again = session_of(&fake, &app, ADMIN).await;
    let (_, me_again) = whoami(&app, &again).await;
    assert_eq!(me_again["id"], me["id"]);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM discord_accounts").await,
        1
    );
    assert_eq!(audit_actions(&app, "discord.access_granted").await.len(), 1);
}

#[actix_web::test]
async fn the_guilds_moderator_role_gives_moderation_and_a_plain_member_gets_nothing() {
    let (fake, app) = oauth_app().await;
    set_mod_role(&app, GUILD + 2).await;

    let moderator = session_of(&fake, &app, MODERATOR).await;
    let (_, me_mod) = whoami(&app, &moderator).await;
    let here = guild_permissions(&me_mod, GUILD);
    assert!(here.contains(&"moderation.act".to_owned()), "{here:?}");
    assert!(!here.contains(&"settings.write".to_owned()), "{here:?}");

    let member = session_of(&fake, &app, MEMBER).await;
    let (_, me_member) = whoami(&app, &member).await;
    assert!(
        guild_permissions(&me_member, GUILD).is_empty(),
        "{me_member}"
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM discord_grants").await, 1);
}

#[actix_web::test]
async fn bad_callbacks_end_on_the_sign_in_page_with_no_session_and_nothing_stored() {
    let (fake, app) = oauth_app_with_clock(
        Clock::System,
        &[("GUILDHALL_DISCORD_OAUTH_TIMEOUT_MS", "2000")],
    )
    .await;
    let users_before = count(&app, "SELECT COUNT(*) FROM users").await;

    // A code used once already: the first sign-in succeeds, its callback URL is kept.
    fake.set_consent(Consent::Approve(MEMBER));
    let (authorize, binding) = start(&app, "/").await;
    let first = consent(&app, &authorize).await;
    assert_eq!(
        callback(&first, Some(&binding)).await.status(),
        StatusCode::OK
    );
    let used_code = url::Url::parse(&first)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let users_before = users_before + 1;
    let grants_before = count(&app, "SELECT COUNT(*) FROM discord_grants").await;

    let cases: Vec<(&str, &str)> = vec![
        ("missing state", "discord_missing_state"),
        ("unknown state", "discord_invalid_state"),
        ("no binding cookie", "discord_invalid_state"),
        ("another browser's cookie", "discord_invalid_state"),
        ("the same callback twice", "discord_invalid_state"),
        ("a reused code", "discord_invalid_grant"),
        ("an expired code", "discord_invalid_grant"),
        ("denied consent", "discord_access_denied"),
        ("a Discord error", "discord_error"),
        ("a Discord timeout", "discord_timeout"),
        ("a user in no shared guild", "discord_no_shared_guild"),
    ];
    for (case, code) in cases {
        fake.set_consent(Consent::Approve(MEMBER));
        let response = match case {
            "missing state" => callback(&app.url("/auth/discord/callback?code=x"), None).await,
            "unknown state" => {
                let (_, binding) = start(&app, "/").await;
                callback(
                    &app.url("/auth/discord/callback?code=x&state=forged"),
                    Some(&binding),
                )
                .await
            }
            "no binding cookie" | "another browser's cookie" => {
                let (authorize, _) = start(&app, "/").await;
                let (_, other) = start(&app, "/").await;
                let back = consent(&app, &authorize).await;
                let cookie = (case == "another browser's cookie").then_some(other.as_str());
                callback(&back, cookie).await
            }
            "the same callback twice" => {
                let (authorize, binding) = start(&app, "/").await;
                let back = consent(&app, &authorize).await;
                assert_eq!(
                    callback(&back, Some(&binding)).await.status(),
                    StatusCode::OK
                );
                callback(&back, Some(&binding)).await
            }
            "a reused code" => {
                let (authorize, binding) = start(&app, "/").await;
                let back = consent(&app, &authorize).await;
                let fresh = url::Url::parse(&back)
                    .unwrap()
                    .query_pairs()
                    .find(|(k, _)| k == "code")
                    .unwrap()
                    .1
                    .into_owned();
                callback(&back.replace(&fresh, &used_code), Some(&binding)).await
            }
            "an expired code" => {
                let (authorize, binding) = start(&app, "/").await;
                let back = consent(&app, &authorize).await;
                fake.expire_codes();
                callback(&back, Some(&binding)).await
            }
            "denied consent" => {
                fake.set_consent(Consent::Deny);
                let (authorize, binding) = start(&app, "/").await;
                callback(&consent(&app, &authorize).await, Some(&binding)).await
            }
            "a Discord error" => {
                fake.set_token_failure(Some((
                    500,
                    json!({"message": "500: Internal Server Error", "code": 0}),
                )));
                let response = sign_in_as(&fake, &app, MEMBER).await;
                fake.set_token_failure(None);
                response
            }
            "a Discord timeout" => {
                // Far past the 2 s timeout, so a slow machine cannot make the answer arrive in time.
                fake.set_oauth_delay(Some(Duration::from_secs(30)));
                let response = sign_in_as(&fake, &app, MEMBER).await;
                fake.set_oauth_delay(None);
                response
            }
            "a user in no shared guild" => sign_in_as(&fake, &app, STRANGER).await,
            other => unreachable!("{other}"),
        };
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{case}");
        assert_eq!(
            location(&response),
            format!("/sign-in?discord_error={code}"),
            "{case}"
        );
        assert!(
            cookie_value(&response, "guildhall_session").is_none(),
            "{case}: no session"
        );
        assert_eq!(
            count(&app, "SELECT COUNT(*) FROM users").await,
            users_before,
            "{case}: no user created"
        );
        assert_eq!(
            count(&app, "SELECT COUNT(*) FROM discord_grants").await,
            grants_before,
            "{case}: no access stored"
        );
        let failures = audit_actions(&app, "auth.discord_login_failed").await;
        assert_eq!(
            failures.last().map(|f| f["reason"].clone()),
            Some(json!(code)),
            "{case}: audited"
        );
    }
    let failed = audit_actions(&app, "auth.discord_login_failed").await.len();
    assert_eq!(failed, 11, "every failed attempt is audited once");
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM discord_accounts").await,
        1,
        "only the one good sign-in linked an account"
    );
}

#[actix_web::test]
async fn discord_callbacks_are_rate_limited_per_client() {
    let window = guildhall::services::discord_sign_in::CALLBACK_PER_IP.window;
    let clock = guildhall::clock::ManualClock::at_window_start(window);
    let (_fake, app) = oauth_app_with_clock(clock.into(), &[]).await;
    let limit = guildhall::services::discord_sign_in::CALLBACK_PER_IP.limit;
    let mut last = String::new();
    for _ in 0..=limit {
        let response = callback(&app.url("/auth/discord/callback?code=x"), None).await;
        last = location(&response);
    }
    assert_eq!(last, "/sign-in?discord_error=rate_limited");
    let failures = audit_actions(&app, "auth.discord_login_failed").await;
    assert_eq!(
        failures.len() as u32,
        limit + 1,
        "rate-limited attempts are audited too"
    );
}

#[actix_web::test]
async fn a_local_account_links_and_unlinks_discord_and_its_password_keeps_working() {
    let (fake, app) = oauth_app().await;
    let (user_id, username) = create_user(&app, "local", &[]).await;
    let (status, tokens) = app.login(&username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_owned();

    let response = app
        .send("POST", "/api/v1/auth/discord/link", Some(&token), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let binding = cookie_value(&response, "guildhall_discord_oauth").expect("binding");
    let body: Value = response.json().await.unwrap();
    fake.set_consent(Consent::Approve(ADMIN));
    let back = consent(&app, body["authorize_url"].as_str().unwrap()).await;
    let linked = callback(&back, Some(&binding)).await;
    assert_eq!(linked.status(), StatusCode::OK);
    assert!(
        cookie_value(&linked, "guildhall_session").is_none(),
        "linking starts no new session"
    );
    let (status, link) = app
        .call("GET", "/api/v1/auth/discord/link", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(link["linked"], true);
    assert_eq!(link["discord_user_id"], ADMIN.to_string());
    assert_eq!(audit_actions(&app, "auth.discord_linked").await.len(), 1);

    // Linking again is refused; Discord sign-in now reaches the local account.
    let (status, again) = app
        .call("POST", "/api/v1/auth/discord/link", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(again["error"]["code"], "discord_already_linked");
    let (_, me, _) = signed_in(&fake, &app, ADMIN).await;
    assert_eq!(me["id"], user_id.to_string());
    assert!(guild_permissions(&me, GUILD).contains(&"settings.write".to_owned()));

    // Unlinked: the access Discord gave goes, the password still signs in.
    let (status, _) = unlink(&app, &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM discord_grants").await, 0);
    let (_, me) = app.me(Some(&token)).await;
    assert!(guild_permissions(&me, GUILD).is_empty(), "{me}");
    let (status, _) = app.login(&username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(audit_actions(&app, "auth.discord_unlinked").await.len(), 1);
    let (status, body) = unlink(&app, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "discord_not_linked");
}

#[actix_web::test]
async fn an_account_made_by_discord_sign_in_cannot_unlink_without_a_password() {
    let (fake, app) = oauth_app().await;
    let (_, _, id) = signed_in(&fake, &app, MEMBER).await;
    let token = crate::common::auth::access_token(&app, id);
    let (status, body) = unlink(&app, &token).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "password_required");
}

#[actix_web::test]
async fn an_admin_turns_discord_sign_in_off_for_a_role_that_requires_mfa() {
    let (fake, app) = oauth_app().await;
    let admin = admin_token(&app).await;
    let (status, role) = app
        .create_role(
            &admin,
            json!({"name": "ops", "permissions": ["bot.view"], "require_mfa": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{role}");
    let role_id = role["id"].as_str().unwrap().to_owned();
    let viewer = guildhall::store::roles::find_by_name(&app.state.store, "viewer")
        .await
        .unwrap()
        .unwrap();

    let (status, body) = app
        .call(
            "PUT",
            &format!("/api/v1/roles/{}/discord-sign-in", viewer.id),
            Some(&admin),
            Some(json!({"allowed": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "role_does_not_require_mfa");
    let (status, body) = app
        .call(
            "PUT",
            &format!("/api/v1/roles/{role_id}/discord-sign-in"),
            Some(&admin),
            Some(json!({"allowed": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, read) = app
        .call(
            "GET",
            &format!("/api/v1/roles/{role_id}/discord-sign-in"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(read["allowed"], false);
    assert_eq!(audit_actions(&app, "roles.discord_sign_in").await.len(), 1);

    // A Discord user whose account holds the role is sent to the password sign-in.
    let (_, _, owner_id) = signed_in(&fake, &app, OWNER).await;
    grant(&app, owner_id, "ops", 0).await;
    let refused = sign_in_as(&fake, &app, OWNER).await;
    assert_eq!(
        location(&refused),
        "/sign-in?discord_error=discord_sign_in_disabled_for_role"
    );
    assert!(cookie_value(&refused, "guildhall_session").is_none());
    // Password sign-in of other users is untouched.
    let (_, name) = create_user(&app, "pw", &[]).await;
    let (status, _) = app.login(&name, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn a_user_with_mfa_who_signs_in_with_discord_still_gives_the_second_factor() {
    let (fake, app) = oauth_app().await;
    let (_, _, id) = signed_in(&fake, &app, MEMBER).await;
    let secret = guildhall::auth::totp::new_secret();
    sqlx::query("UPDATE users SET mfa_enabled = 1, mfa_secret = $2 WHERE id = $1")
        .bind(id)
        .bind(&secret)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    app.state.auth_cache.forget_user(id).await;

    let response = sign_in_as(&fake, &app, MEMBER).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(cookie_value(&response, "guildhall_session").is_none());
    let to = url::Url::parse(&format!("http://x{}", location(&response))).unwrap();
    assert_eq!(to.path(), "/sign-in");
    let mfa_token = to
        .query_pairs()
        .find(|(k, _)| k == "mfa_token")
        .expect("mfa token")
        .1
        .into_owned();
    let page = browser()
        .get(app.url(&location(&response)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("name=\"mfa_token\" value=\"{mfa_token}\"")),
        "the sign-in page continues with the second step"
    );
    let code =
        guildhall::auth::totp::code_at(&secret, jsonwebtoken::get_current_timestamp()).unwrap();
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/auth/login/mfa",
            None,
            Some(json!({"mfa_token": mfa_token, "code": code})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn losing_the_moderator_role_on_discord_removes_moderation_but_keeps_grants_made_by_hand() {
    let (fake, app) = oauth_app().await;
    set_mod_role(&app, GUILD + 2).await;
    let (session, me_before, id) = signed_in(&fake, &app, MODERATOR).await;
    assert!(guild_permissions(&me_before, GUILD).contains(&"moderation.act".to_owned()));
    grant(&app, id, "viewer", GUILD as i64).await;
    app.state.auth_cache.forget_user(id).await;

    let before = app
        .metric("guildhall_discord_events_total{type=\"GUILD_MEMBER_UPDATE\"}")
        .await;
    fake.update_member_roles(0, GUILD, MODERATOR, vec![GUILD + 1]);
    let lost = eventually(WAIT, || async {
        let (_, me) = whoami(&app, &session).await;
        !guild_permissions(&me, GUILD).contains(&"moderation.act".to_owned())
    })
    .await;
    assert!(lost, "moderation is gone");
    assert!(
        app.metric("guildhall_discord_events_total{type=\"GUILD_MEMBER_UPDATE\"}")
            .await
            > before
    );
    let (_, me_after) = whoami(&app, &session).await;
    let here = guild_permissions(&me_after, GUILD);
    assert!(
        here.contains(&"moderation.view".to_owned()) && here.contains(&"bot.view".to_owned()),
        "the viewer grant made by hand stays: {here:?}"
    );
    let revoked = audit_actions(&app, "discord.access_revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["cause"], "member_update");
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM role_grants WHERE user_id = {id}")
        )
        .await,
        1,
        "the hand-made viewer grant is still stored"
    );
}

#[actix_web::test]
async fn gaining_administrator_on_discord_grants_management_and_leaving_the_guild_removes_it() {
    let (fake, app) = oauth_app().await;
    let (session, me_before, _) = signed_in(&fake, &app, MEMBER).await;
    assert!(guild_permissions(&me_before, GUILD).is_empty());

    fake.update_member_roles(0, GUILD, MEMBER, vec![GUILD + 1, GUILD + 4]);
    let managed = eventually(WAIT, || async {
        let (_, me) = whoami(&app, &session).await;
        guild_permissions(&me, GUILD).contains(&"settings.write".to_owned())
    })
    .await;
    assert!(managed, "management granted from the gateway event");

    fake.remove_member(0, GUILD, MEMBER);
    let gone = eventually(WAIT, || async {
        let (_, me) = whoami(&app, &session).await;
        guild_permissions(&me, GUILD).is_empty()
    })
    .await;
    assert!(gone, "leaving the guild removes the access");
    let revoked = audit_actions(&app, "discord.access_revoked").await;
    assert_eq!(revoked.last().unwrap()["cause"], "member_left");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM discord_grants").await, 0);
}

#[actix_web::test]
async fn the_sign_in_page_offers_discord_when_configured_and_explains_a_failed_attempt() {
    let page = |app: &TestApp, path: &str| {
        let url = app.url(path);
        async move {
            browser()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let plain = crate::common::spawn_app().await;
    assert!(
        page(&plain, "/sign-in")
            .await
            .contains("Sign in with Discord is not configured on this instance.")
    );
    let (_fake, app) = oauth_app().await;
    let offered = page(&app, "/sign-in?next=/guilds").await;
    assert!(
        offered.contains("href=\"/auth/discord/start?next=%2Fguilds\""),
        "{offered}"
    );
    let explained = page(&app, "/sign-in?discord_error=discord_access_denied").await;
    assert!(
        explained.contains("Discord sign-in was cancelled."),
        "{explained}"
    );
    let unknown = page(&app, "/sign-in?discord_error=%3Cscript%3E").await;
    assert!(!unknown.contains("<script>") && unknown.contains("did not complete"));
}

#[actix_web::test]
async fn the_account_page_links_and_unlinks_a_discord_account() {
    use crate::common::pages::Visitor;
    let (fake, app) = oauth_app().await;
    let (_, username) = create_user(&app, "page", &[]).await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&username, PASSWORD).await;
    assert!(visitor.page("/account").await.contains("Link Discord"));
    // Browsers apply `form-action` to the redirect after "Link Discord": Discord is named there.
    let account = visitor.get("/account").await;
    let csp = account.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.ends_with(&format!("form-action 'self' {}", fake.url)),
        "{csp}"
    );

    let csrf = visitor.csrf().await;
    let started = visitor
        .post_form("/account/discord/link", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let authorize = location(&started);
    assert!(
        authorize.starts_with(&format!("{}/oauth2/authorize?", fake.url)),
        "{authorize} {:?}",
        started.text().await
    );
    let binding = visitor.cookies["guildhall_discord_oauth"].clone();
    fake.set_consent(Consent::Approve(MODERATOR));
    let back = consent(&app, &authorize).await;
    let linked = callback(&back, Some(&binding)).await;
    assert_eq!(linked.status(), StatusCode::OK);
    assert_eq!(
        linked.headers().get("refresh").unwrap().to_str().unwrap(),
        "0; url=/account"
    );
    let html = visitor.page("/account").await;
    assert!(
        html.contains("Unlink Discord") && html.contains("moderator"),
        "{html}"
    );

    let csrf = visitor.csrf().await;
    let unlinked = visitor
        .post_form("/account/discord/unlink", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(location(&unlinked), "/account#discord");
    let html = visitor.page("/account").await;
    assert!(html.contains("Discord is unlinked") && html.contains("Link Discord"));
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM discord_accounts").await,
        0
    );
}

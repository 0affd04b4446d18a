//! TOTP enrolment, sign-in with a second factor, replay refusal, recovery codes, MFA per role.

use guildhall::auth::totp;
use guildhall::shared::ratelimit::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::auth::{PASSWORD, access_token, create_user};
use crate::common::{spawn_app, spawn_app_with_clock};

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Enrols MFA for a fresh user; returns (user id, username, secret, recovery codes, access token).
async fn enrolled_user(
    app: &TestApp,
    roles: &[(&str, i64)],
) -> (i64, String, String, Vec<String>, String) {
    let (id, name) = create_user(app, "mfa", roles).await;
    let token = access_token(app, id);
    let (status, enrol) = app
        .call("POST", "/api/v1/auth/mfa/enable", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{enrol}");
    let secret = enrol["secret"].as_str().unwrap().to_owned();
    assert!(
        enrol["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/guildhall:")
    );
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        enrol["qr_png_base64"]
            .as_str()
            .unwrap()
            .trim_start_matches("data:image/png;base64,"),
    )
    .unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // An earlier step, so the sign-in below can use the current one.
    let code = totp::code_at(&secret, now() - 30).unwrap();
    let (status, done) = app
        .call(
            "POST",
            "/api/v1/auth/mfa/verify",
            Some(&token),
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let codes: Vec<String> = done["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let fresh = done["tokens"]["access_token"].as_str().unwrap().to_owned();
    (id, name, secret, codes, fresh)
}

async fn second_step(
    app: &TestApp,
    mfa_token: &str,
    field: &str,
    code: &str,
) -> (StatusCode, Value) {
    app.call(
        "POST",
        "/api/v1/auth/login/mfa",
        None,
        Some(json!({ "mfa_token": mfa_token, field: code })),
    )
    .await
}

#[actix_web::test]
async fn with_mfa_a_password_alone_does_not_sign_in_and_a_code_is_accepted_once() {
    let app = spawn_app().await;
    let (_, name, secret, _, _) = enrolled_user(&app, &[]).await;
    let (status, challenge) = app.login(&name, PASSWORD).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{challenge}");
    assert_eq!(challenge["mfa_required"], true);
    assert!(challenge.get("access_token").is_none());
    let mfa_token = challenge["mfa_token"].as_str().unwrap();
    let (status, _) = app.me(Some(mfa_token)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the challenge token is not an access token"
    );

    let code = totp::code_at(&secret, now()).unwrap();
    let (status, wrong) = second_step(&app, mfa_token, "code", "000000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}");
    let (status, tokens) = second_step(&app, mfa_token, "code", &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["access_token"].is_string());

    // The same code again, even with a fresh challenge: replay refused.
    let (_, challenge) = app.login(&name, PASSWORD).await;
    let (status, replay) = second_step(
        &app,
        challenge["mfa_token"].as_str().unwrap(),
        "code",
        &code,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{replay}");
    assert_eq!(replay["error"]["code"], "invalid_code");
    // And the code of the step before, within the skew window but older than the one used.
    let older = totp::code_at(&secret, now() - 30).unwrap();
    let (status, _) = second_step(
        &app,
        challenge["mfa_token"].as_str().unwrap(),
        "code",
        &older,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn recovery_codes_are_stored_hashed_and_work_once() {
    let app = spawn_app().await;
    let (id, name, _, codes, _) = enrolled_user(&app, &[]).await;
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT code_hash FROM mfa_recovery_codes WHERE user_id = $1")
            .bind(id)
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(stored.len(), 10);
    assert!(stored.iter().all(|h| !codes.contains(h) && h.len() == 64));
    let (_, challenge) = app.login(&name, PASSWORD).await;
    let t = challenge["mfa_token"].as_str().unwrap();
    let (status, body) = second_step(&app, t, "recovery_code", &codes[3].to_uppercase()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, challenge) = app.login(&name, PASSWORD).await;
    let t = challenge["mfa_token"].as_str().unwrap();
    assert_eq!(
        second_step(&app, t, "recovery_code", &codes[3]).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        second_step(&app, t, "recovery_code", &codes[4]).await.0,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn mfa_attempts_are_rate_limited_per_account() {
    // A clock standing still: the eight attempts share one window however slowly they run.
    let window = guildhall::services::accounts::MFA_PER_ACCOUNT.window;
    let clock = ManualClock::at_window_start(window);
    let app = spawn_app_with_clock(clock.clone().into(), |_| {}).await;
    let (_, name, secret, _, _) = enrolled_user(&app, &[]).await;
    let (_, challenge) = app.login(&name, PASSWORD).await;
    let t = challenge["mfa_token"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(second_step(&app, &t, "code", "123456").await.0);
    }
    // Enrolment spent one attempt of the account's five.
    assert!(
        statuses[..4].iter().all(|s| *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    assert!(
        statuses[4..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let code = totp::code_at(&secret, now()).unwrap();
    assert_eq!(
        second_step(&app, &t, "code", &code).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    clock.advance(window);
    let (status, body) = second_step(&app, &t, "code", &code).await;
    assert_eq!(status, StatusCode::OK, "a new window: {body}");
}

#[actix_web::test]
async fn enabling_and_disabling_mfa_revokes_earlier_tokens_and_is_audited() {
    let app = spawn_app().await;
    let (id, name) = create_user(&app, "flip", &[]).await;
    let (_, session) = app.login(&name, PASSWORD).await;
    let before = session["access_token"].as_str().unwrap().to_owned();
    let (_, enrol) = app
        .call("POST", "/api/v1/auth/mfa/enable", Some(&before), None)
        .await;
    let secret = enrol["secret"].as_str().unwrap().to_owned();
    let (status, done) = app
        .call(
            "POST",
            "/api/v1/auth/mfa/verify",
            Some(&before),
            Some(json!({ "code": totp::code_at(&secret, now() - 30).unwrap() })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(app.me(Some(&before)).await.0, StatusCode::UNAUTHORIZED);
    let after = done["tokens"]["access_token"].as_str().unwrap().to_owned();
    let (_, me) = app.me(Some(&after)).await;
    assert_eq!(me["mfa_enabled"], true);

    let (status, err) = app
        .call(
            "POST",
            "/api/v1/auth/mfa/disable",
            Some(&after),
            Some(json!({ "password": "not my password", "code": totp::code_at(&secret, now()).unwrap() })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, off) = app
        .call(
            "POST",
            "/api/v1/auth/mfa/disable",
            Some(&after),
            Some(json!({ "password": PASSWORD, "code": totp::code_at(&secret, now()).unwrap() })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{off}");
    assert_eq!(app.me(Some(&after)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login(&name, PASSWORD).await.0,
        StatusCode::OK,
        "no second factor any more"
    );
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE actor_user_id = $1 AND action LIKE 'auth.mfa%' ORDER BY id",
    )
    .bind(id)
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "auth.mfa_enrolment_started",
            "auth.mfa_enabled",
            "auth.mfa_disabled"
        ]
    );
}

#[actix_web::test]
async fn a_role_that_requires_mfa_grants_nothing_until_mfa_is_enabled() {
    let app = spawn_app().await;
    let admin = crate::common::auth::admin_token(&app).await;
    let (_, roles) = app.call("GET", "/api/v1/roles", Some(&admin), None).await;
    let moderator = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "moderator")
        .unwrap();
    let (status, body) = app
        .call(
            "PATCH",
            &format!("/api/v1/roles/{}", moderator["id"].as_str().unwrap()),
            Some(&admin),
            Some(json!({ "require_mfa": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (id, _) = create_user(&app, "needs", &[("moderator", 0)]).await;
    let token = access_token(&app, id);
    let (_, me) = app.me(Some(&token)).await;
    assert_eq!(me["permissions"], json!([]));
    assert_eq!(me["mfa_required"], true);
    let (_, _, _, _, fresh) = enrolled_user(&app, &[("moderator", 0)]).await;
    let (_, me) = app.me(Some(&fresh)).await;
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("moderation.act")),
        "{me}"
    );
    assert_eq!(me["mfa_required"], false);
}

/// The refresh families of a user: (alive, revoked).
async fn refresh_families(app: &TestApp, user_id: i64) -> (usize, usize) {
    let revoked: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT revoked_at FROM refresh_token_families WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
    let alive = revoked.iter().filter(|r| r.is_none()).count();
    (alive, revoked.len() - alive)
}

/// Signs in (one refresh family), starts enrolment and confirms it with the code of the step
/// before; returns the user id, the TOTP secret and the raw confirmation response.
async fn confirm_enrolment(app: &TestApp) -> (i64, String, reqwest::Response) {
    let (id, name) = create_user(app, "once", &[]).await;
    let (status, signed_in) = app.login(&name, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    let token = signed_in["access_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh_families(app, id).await, (1, 0));
    let (_, enrol) = app
        .call("POST", "/api/v1/auth/mfa/enable", Some(&token), None)
        .await;
    let secret = enrol["secret"].as_str().unwrap().to_owned();
    let code = totp::code_at(&secret, now() - 30).unwrap();
    let response = app
        .send(
            "POST",
            "/api/v1/auth/mfa/verify",
            Some(&token),
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    (id, secret, response)
}

/// The `name=value` pair of the session cookie a response sets.
fn session_cookie(response: &reqwest::Response) -> String {
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.starts_with("guildhall_session="), "{set_cookie}");
    set_cookie.split(';').next().unwrap().to_owned()
}

/// A state-changing request made the way the dashboard makes it: the cookie and its CSRF token.
async fn sign_out_with_cookie(app: &TestApp, cookie: &str, csrf: &str) -> (StatusCode, String) {
    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[actix_web::test]
async fn confirming_mfa_revokes_the_earlier_refresh_family_and_leaves_exactly_one_new_one() {
    let app = spawn_app().await;
    let (id, _, response) = confirm_enrolment(&app).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        refresh_families(&app, id).await,
        (1, 1),
        "one new family alive, the sign-in's revoked, no other"
    );
    // The one alive is the one whose token the body carries.
    let (status, refreshed) = app.refresh(&body["tokens"]["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
}

#[actix_web::test]
async fn the_csrf_token_in_the_mfa_confirmation_body_is_the_one_its_session_cookie_expects() {
    let app = spawn_app().await;
    let (_, _, response) = confirm_enrolment(&app).await;
    let cookie = session_cookie(&response);
    let body: Value = response.json().await.unwrap();
    let csrf = body["tokens"]["csrf_token"].as_str().unwrap();
    assert_eq!(csrf.len(), 32, "{body}");
    let (status, answer) = sign_out_with_cookie(&app, &cookie, csrf).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
}

#[actix_web::test]
async fn disabling_mfa_continues_in_one_session_whose_cookie_accepts_the_bodys_csrf_token() {
    let app = spawn_app().await;
    let (id, secret, response) = confirm_enrolment(&app).await;
    let body: Value = response.json().await.unwrap();
    let token = body["tokens"]["access_token"].as_str().unwrap().to_owned();
    let response = app
        .send(
            "POST",
            "/api/v1/auth/mfa/disable",
            Some(&token),
            Some(json!({ "password": PASSWORD, "code": totp::code_at(&secret, now()).unwrap() })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        refresh_families(&app, id).await,
        (1, 2),
        "sign-in and enrolment families revoked, one new one alive"
    );
    let cookie = session_cookie(&response);
    let body: Value = response.json().await.unwrap();
    let (status, answer) =
        sign_out_with_cookie(&app, &cookie, body["csrf_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
}

//! Sign-in, tokens and the auth extractor, including the hostile cases.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use guildhall::auth::tokens::{self, Extra, TokenType};
use guildhall::shared::ratelimit::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

use crate::common::auth::{PASSWORD, access_token, claims, create_user, forge, token_with_role};
use crate::common::{spawn_app, spawn_app_with, spawn_app_with_clock};

#[actix_web::test]
async fn login_returns_tokens_that_me_accepts_with_the_roles_permissions() {
    let app = spawn_app().await;
    let (_, name) = create_user(&app, "mod", &[("moderator", 0)]).await;
    let (status, body) = app.login(&name, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["refresh_expires_in"], 7 * 24 * 3600);
    let access = body["access_token"].as_str().unwrap();
    let (status, me) = app.me(Some(access)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], name.as_str());
    assert_eq!(me["via"], "access_token");
    let perms: Vec<&str> = me["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        perms.contains(&"moderation.act") && !perms.contains(&"users.manage"),
        "{perms:?}"
    );
}

#[actix_web::test]
async fn a_new_account_with_no_roles_holds_no_permissions() {
    let app = spawn_app().await;
    let (id, _) = create_user(&app, "plain", &[]).await;
    let token = access_token(&app, id);
    let (status, me) = app.me(Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["permissions"], json!([]));
    assert_eq!(me["guild_permissions"], json!({}));
}

#[actix_web::test]
async fn unknown_user_and_wrong_password_get_the_same_answer_and_both_are_audited() {
    let app = spawn_app().await;
    let (_, name) = create_user(&app, "victim", &[]).await;
    // Both cost one argon2 verification with the same parameters (the unit test
    // `an_unknown_user_costs_the_same_verification_as_a_real_hash`); here, they answer alike.
    let (s1, b1) = app.login(&name, "not the password at all").await;
    let (s2, b2) = app
        .login("nobody_by_this_name", "not the password at all")
        .await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(b1, b2, "the two failures must be indistinguishable");
    let entries = guildhall::store::audit::list(
        &app.state.store,
        &guildhall::store::audit::AuditFilter {
            action: Some("auth.login_failed".into()),
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")));
}

#[actix_web::test]
async fn thirty_wrong_passwords_in_a_row_are_rate_limited_and_then_even_the_right_one_waits() {
    // The limiter's clock stands still, so however slowly this machine runs the sign-ins, all
    // thirty fall in one window (a running clock could start a new one half-way through).
    let window = guildhall::services::accounts::LOGIN_PER_ACCOUNT.window;
    let clock = ManualClock::at_window_start(window);
    let app = spawn_app_with_clock(clock.clone().into(), |_| {}).await;
    let (_, name) = create_user(&app, "target", &[]).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let response = app
            .send(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "username": name, "password": "wrong password guess" })),
            )
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                retry,
                window.as_secs(),
                "Retry-After: the whole window is left"
            );
        }
        statuses.push(response.status());
    }
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((unauthorized, limited), (10, 20), "{statuses:?}");
    assert!(
        statuses[..10]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "the first ten are answered, the rest refused: {statuses:?}"
    );
    let (status, _) = app.login(&name, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    clock.advance(window - std::time::Duration::from_secs(1));
    assert_eq!(
        app.login(&name, PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "still waiting a second before the window ends"
    );
    clock.advance(std::time::Duration::from_secs(1));
    let (status, body) = app.login(&name, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "a new window: {body}");
}

#[actix_web::test]
async fn a_disabled_user_cannot_sign_in_and_loses_its_tokens() {
    let app = spawn_app().await;
    let (id, name) = create_user(&app, "gone", &[("viewer", 0)]).await;
    let token = access_token(&app, id);
    sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1")
        .bind(id)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    app.state.auth_cache.clear().await;
    assert_eq!(app.login(&name, PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = app.me(Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn hostile_tokens_are_refused_with_401() {
    use secrecy::ExposeSecret;
    let app = spawn_app().await;
    let (id, _) = create_user(&app, "holder", &[("admin", 0)]).await;
    let key = app
        .state
        .secrets
        .jwt_secret_key
        .expose_secret()
        .as_bytes()
        .to_vec();
    let hs256 = json!({ "alg": "HS256", "typ": "JWT" });
    let good = forge(&hs256.clone(), &claims(id, "access", 600), &key);
    let (status, _) = app.me(Some(&good)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the forging helper makes valid tokens"
    );

    let mut no_jti = claims(id, "access", 600);
    no_jti.as_object_mut().unwrap().remove("jti");
    let mut wrong_aud = claims(id, "access", 600);
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims(id, "access", 600);
    wrong_iss["iss"] = json!("evil");
    let mut future_nbf = claims(id, "access", 6000);
    future_nbf["nbf"] = json!(jsonwebtoken::get_current_timestamp() + 3000);
    let mut old_version = claims(id, "access", 600);
    old_version["ver"] = json!(-1);
    let unsigned = {
        let h = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT" }).to_string());
        let c = URL_SAFE_NO_PAD.encode(claims(id, "access", 600).to_string());
        format!("{h}.{c}.")
    };
    let cases: Vec<(&str, String)> = vec![
        ("garbage", "not.a.jwt".into()),
        ("empty segments", "..".into()),
        ("NUL bytes", "abc\u{0}def".replace('\u{0}', "%00")),
        (
            "expired",
            forge(&hs256.clone(), &claims(id, "access", -120), &key),
        ),
        (
            "foreign key",
            forge(
                &hs256.clone(),
                &claims(id, "access", 600),
                b"some other key",
            ),
        ),
        ("alg none", unsigned),
        (
            "alg HS512",
            forge(
                &json!({"alg":"HS512","typ":"JWT"}),
                &claims(id, "access", 600),
                &key,
            ),
        ),
        (
            "refresh as access",
            forge(&hs256.clone(), &claims(id, "refresh", 600), &key),
        ),
        (
            "mfa challenge as access",
            forge(&hs256.clone(), &claims(id, "mfa_challenge", 600), &key),
        ),
        (
            "session as bearer",
            forge(&hs256.clone(), &claims(id, "session", 600), &key),
        ),
        ("no jti", forge(&hs256.clone(), &no_jti, &key)),
        ("wrong audience", forge(&hs256.clone(), &wrong_aud, &key)),
        ("wrong issuer", forge(&hs256.clone(), &wrong_iss, &key)),
        ("not yet valid", forge(&hs256.clone(), &future_nbf, &key)),
        ("revoked version", forge(&hs256.clone(), &old_version, &key)),
        (
            "unknown user",
            forge(&hs256.clone(), &claims(999, "access", 600), &key),
        ),
        (
            "SQL in subject",
            forge(
                &hs256.clone(),
                &{
                    let mut c = claims(id, "access", 600);
                    c["sub"] = json!("1 OR 1=1");
                    c
                },
                &key,
            ),
        ),
    ];
    for (name, token) in cases {
        let (status, body) = app.me(Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{name}");
    }
    for header in ["Basic abc", "Bearer", "bearer x", "Token x"] {
        let response = app
            .client
            .get(app.url("/api/v1/auth/me"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
    }
    let (status, _) = app.me(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no credentials");
}

#[actix_web::test]
async fn an_access_token_is_refused_as_a_refresh_token() {
    let app = spawn_app().await;
    let (_, name) = create_user(&app, "rt", &[]).await;
    let (_, body) = app.login(&name, PASSWORD).await;
    let access = body["access_token"].as_str().unwrap();
    let (status, _) = app.refresh(access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let refresh = body["refresh_token"].as_str().unwrap();
    let (status, _) = app.me(Some(refresh)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "refresh token used as access token"
    );
    // Verified tokens are remembered by their text: one accepted as an access token is still
    // refused as a session cookie, whose type differs.
    let (status, _) = app.me(Some(access)).await;
    assert_eq!(status, StatusCode::OK);
    let status = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("Cookie", format!("guildhall_session={access}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "access token used as a session"
    );
}

#[actix_web::test]
async fn refresh_rotates_and_reusing_a_rotated_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let (_, name) = create_user(&app, "rot", &[]).await;
    let (_, first) = app.login(&name, PASSWORD).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |t: String| {
        let app = &app;
        async move { app.refresh(t).await }
    };
    let (status, second) = refresh(r1.clone()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2, "the refresh token rotates");
    let (status, me) = app.me(second["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::OK, "{me}");

    // The old token comes back: the family dies, including the newest token.
    assert_eq!(refresh(r1).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(r2).await.0, StatusCode::UNAUTHORIZED);
    let reuse = guildhall::store::audit::list(
        &app.state.store,
        &guildhall::store::audit::AuditFilter {
            action: Some("auth.refresh_reuse".into()),
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(reuse.len(), 1);

    // Another sign-in's family is unaffected.
    let (_, other) = app.login(&name, PASSWORD).await;
    assert_eq!(
        refresh(other["refresh_token"].as_str().unwrap().to_owned())
            .await
            .0,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn refresh_tokens_are_stored_only_as_digests() {
    let app = spawn_app().await;
    let (_, name) = create_user(&app, "dig", &[]).await;
    let (_, body) = app.login(&name, PASSWORD).await;
    let refresh = body["refresh_token"].as_str().unwrap();
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT current_token_hash FROM refresh_token_families")
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), 64, "hex SHA-256");
    assert!(!stored[0].contains(refresh) && !refresh.contains(&stored[0]));
}

#[actix_web::test]
async fn logout_invalidates_the_users_access_and_refresh_tokens() {
    let app = spawn_app().await;
    let (_, name) = create_user(&app, "out", &[]).await;
    let (_, a) = app.login(&name, PASSWORD).await;
    let (_, b) = app.login(&name, PASSWORD).await;
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/auth/logout",
            a["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for session in [&a, &b] {
        let (me, refresh) = app.session_statuses(session).await;
        assert_eq!(me, StatusCode::UNAUTHORIZED);
        assert_eq!(refresh, StatusCode::UNAUTHORIZED);
    }
}

#[actix_web::test]
async fn a_password_change_revokes_old_tokens_and_checks_the_policy() {
    let app = spawn_app().await;
    let (_, name) = create_user(&app, "pw", &[]).await;
    let (_, session) = app.login(&name, PASSWORD).await;
    let old = session["access_token"].as_str().unwrap();
    for (body, field) in [
        (
            json!({ "current_password": "wrong wrong wrong", "new_password": "a brand new passphrase" }),
            "current_password",
        ),
        (
            json!({ "current_password": PASSWORD, "new_password": "short" }),
            "new_password",
        ),
        (
            json!({ "current_password": PASSWORD, "new_password": "password1234" }),
            "new_password",
        ),
    ] {
        let (status, err) = app
            .call("POST", "/api/v1/auth/password", Some(old), Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().starts_with(field),
            "{err}"
        );
    }
    let (status, fresh) = app
        .call(
            "POST",
            "/api/v1/auth/password",
            Some(old),
            Some(json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(app.me(Some(old)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.me(fresh["access_token"].as_str()).await.0,
        StatusCode::OK
    );
    assert_eq!(app.login(&name, PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login(&name, "a brand new passphrase").await.0,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn login_sets_a_strict_http_only_session_cookie_that_needs_csrf_to_change_state() {
    let app = spawn_app().await;
    let (_, name) = create_user(&app, "web", &[("viewer", 0)]).await;
    let response = app
        .send(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({ "username": name, "password": PASSWORD })),
        )
        .await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("guildhall_session="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: no Secure flag"
    );
    let body: Value = response.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();

    let me = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK, "reads need no CSRF token");
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["via"], "session");

    let post = |csrf: Option<&str>| {
        let mut r = app
            .client
            .post(app.url("/api/v1/auth/logout"))
            .header("cookie", &pair);
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.send()
    };
    for bad in [None, Some("wrong"), Some("")] {
        let r = post(bad).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf_failed");
    }
    assert_eq!(
        post(Some(csrf)).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
}

#[actix_web::test]
async fn the_session_cookie_is_secure_behind_tls() {
    // TLS ends at a reverse proxy the daemon trusts (see deploy:: for untrusted peers).
    let app = spawn_app_with(|env| {
        env.insert("GUILDHALL_TRUSTED_PROXIES".into(), "127.0.0.1".into());
    })
    .await;
    let (_, name) = create_user(&app, "tls", &[]).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-proto", "https")
        .json(&json!({ "username": name, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[actix_web::test]
async fn login_bodies_are_strict_and_errors_name_the_field() {
    let app = spawn_app().await;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown field",
            json!({"username":"a","password":"b","admin":true}).to_string(),
            "admin",
        ),
        (
            "missing field",
            json!({"username":"a"}).to_string(),
            "password",
        ),
        (
            "wrong type",
            json!({"username":1,"password":"b"}).to_string(),
            "invalid type",
        ),
        ("malformed", "{\"username\": ".to_owned(), "invalid JSON"),
        (
            "NUL in username",
            json!({"username":"ad\u{0}min","password":"b"}).to_string(),
            "username",
        ),
        (
            "huge username",
            json!({"username":"x".repeat(5000),"password":"b"}).to_string(),
            "username",
        ),
        (
            "huge password",
            json!({"username":"a","password":"x".repeat(5000)}).to_string(),
            "password",
        ),
    ];
    for (name, body, needle) in cases {
        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}");
        let body: Value = response.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{name}: {message}");
    }
    // A body that is not declared as JSON is a 415, whatever it holds.
    for content_type in [None, Some("text/plain"), Some("multipart/form-data")] {
        let mut request = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .body(json!({"username":"a","password":"b"}).to_string());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unsupported_media_type");
    }
}

#[actix_web::test]
async fn a_ten_mib_body_is_refused_before_it_is_read() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(vec![b' '; 10 * 1024 * 1024])
        .send()
        .await;
    // The server may answer and close before the client finished sending.
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}

#[actix_web::test]
async fn tokens_issued_by_the_library_round_trip_through_the_api() {
    let app = spawn_app().await;
    let admin = token_with_role(&app, "admin", 0).await;
    let (status, me) = app.me(Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(me["permissions"].as_array().unwrap().len() >= 13);
    let (mfa, _) = tokens::issue(
        &app.state.secrets.jwt_secret_key,
        TokenType::MfaChallenge,
        me["id"].as_str().unwrap().parse().unwrap(),
        0,
        tokens::MFA_CHALLENGE_TTL,
        Extra::default(),
    )
    .unwrap();
    assert_eq!(app.me(Some(&mfa)).await.0, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn the_per_account_sign_in_limit_is_shared_by_instances_through_redis() {
    let Some(redis) = crate::common::redis_url() else {
        return;
    };
    let prefix = format!("test-{}", crate::common::random_suffix());
    let configure = |env: &mut std::collections::HashMap<String, String>| {
        env.insert("REDIS_URL".into(), redis.clone());
        env.insert("GUILDHALL_REDIS_PREFIX".into(), prefix.clone());
    };
    // One clock for both, standing still: the fourteen attempts share one window however
    // slowly they run.
    let clock =
        ManualClock::at_window_start(guildhall::services::accounts::LOGIN_PER_ACCOUNT.window);
    let a = spawn_app_with_clock(clock.clone().into(), configure).await;
    let b = spawn_app_with_clock(clock.into(), configure).await;
    let mut statuses = Vec::new();
    for i in 0..14 {
        let app = if i % 2 == 0 { &a } else { &b };
        statuses.push(app.login("shared_target", "wrong password guess").await.0);
    }
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        limited, 4,
        "10 attempts across both instances, not 10 each: {statuses:?}"
    );
}

/// Whether argon2 runs off the executor is checked without a clock by
/// `services::accounts::tests::hashing_and_verifying_passwords_leave_the_executor_free`; a bound
/// on `/health`'s latency here failed on a loaded machine with the hashing correctly offloaded.
#[actix_web::test]
async fn sign_ins_hash_off_the_executor_so_other_requests_are_not_stalled() {
    let app = spawn_app().await;
    let mut names = Vec::new();
    for _ in 0..16 {
        names.push(create_user(&app, "burst", &[]).await.1);
    }
    let probe = reqwest::Client::new();
    let logins: Vec<_> = names
        .iter()
        .map(|n| {
            let (client, url, n) = (app.client.clone(), app.url("/api/v1/auth/login"), n.clone());
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({ "username": n, "password": PASSWORD }))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    // Probes are answered while the sign-ins are in flight, and every sign-in succeeds.
    while !logins.iter().all(|l| l.is_finished()) {
        let status = probe.get(app.url("/health")).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK);
    }
    for l in logins {
        assert_eq!(l.await.unwrap(), StatusCode::OK);
    }
}

#[actix_web::test]
async fn a_change_made_by_another_instance_is_seen_within_the_cache_lifetime() {
    use guildhall::auth::cache::TTL;
    // Cache lifetimes count on a clock the test moves: the bound is checked to the millisecond
    // whatever the machine's speed.
    let clock = ManualClock::at(guildhall::ids::now_ms());
    let app = crate::common::spawn_app_with_clock(clock.clone().into(), |_| {}).await;
    let (id, _) = create_user(&app, "elsewhere", &[("viewer", 0)]).await;
    let token = access_token(&app, id);
    let me = || async { app.me(Some(&token)).await.0 };
    assert_eq!(me().await, StatusCode::OK);
    // Another instance disables the user: only the shared database changes.
    sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1")
        .bind(id)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    clock.advance(TTL - Duration::from_millis(1));
    assert_eq!(me().await, StatusCode::OK, "trusted within its lifetime");
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        me().await,
        StatusCode::UNAUTHORIZED,
        "read again once it ran out"
    );
}

/// Two instances on one database and one Redis; they share their signing keys, as a
/// deployment's instances do.
async fn two_instances_sharing_redis(
    redis: String,
) -> (crate::common::TestApp, crate::common::TestApp) {
    let prefix = format!("gh-test-{}", crate::common::random_suffix());
    let shared = move |env: &mut std::collections::HashMap<String, String>| {
        env.insert("REDIS_URL".into(), redis.clone());
        env.insert("GUILDHALL_REDIS_PREFIX".into(), prefix.clone());
        env.insert("JWT_SECRET_KEY".into(), "j".repeat(32) + &"k".repeat(32));
        env.insert("SECRET_KEY".into(), "s".repeat(32) + &"t".repeat(32));
    };
    let a = crate::common::spawn_app_with(shared.clone()).await;
    let db_url = a.db.url.clone();
    // `b`'s clock stands still: nothing it caches expires, so whatever it forgets, it forgot
    // because a message (or a new subscription) told it to.
    let frozen = ManualClock::at(guildhall::ids::now_ms());
    let b = crate::common::spawn_app_with_clock(frozen.into(), move |env| {
        shared(env);
        env.insert("DATABASE_URL".into(), db_url);
    })
    .await;
    (a, b)
}

/// `GET /api/v1/auth/me` on `app`, with an access token or an API key.
fn me(app: &crate::common::TestApp, credential: &str, api_key: bool) -> reqwest::RequestBuilder {
    let request = app.client.get(app.url("/api/v1/auth/me"));
    if api_key {
        request.header("X-API-Key", credential)
    } else {
        request.bearer_auth(credential)
    }
}

/// `app` refuses `credential` within `within`.
async fn refused_within(
    app: &crate::common::TestApp,
    credential: &str,
    api_key: bool,
    within: Duration,
) -> bool {
    crate::common::eventually(within, || async {
        me(app, credential, api_key).send().await.unwrap().status() == StatusCode::UNAUTHORIZED
    })
    .await
}

#[actix_web::test]
async fn with_redis_a_revocation_on_one_instance_takes_effect_on_the_others_at_once() {
    let Some(redis) = crate::common::redis_url() else {
        return;
    };
    let (a, b) = two_instances_sharing_redis(redis).await;
    crate::common::invalidations_delivered(&a, &b).await;
    let admin = crate::common::auth::admin_token(&a).await;
    let (id, _) = create_user(&a, "roaming", &[("viewer", 0)]).await;
    let token = access_token(&a, id);
    let key = crate::common::auth::api_key(&a, id, &["bot.view"], None).await;
    let prefix = key.split('_').nth(1).unwrap().to_owned();
    let key_id = guildhall::store::api_keys::find_by_prefix(&a.state.store, &prefix)
        .await
        .unwrap()
        .unwrap()
        .id;
    // `b` caches both, and its clock stands still: they would stay valid there for good
    // without the message. The bound is generous; a working message takes milliseconds.
    let bound = Duration::from_secs(10);
    for (credential, api_key) in [(&key, true), (&token, false)] {
        assert_eq!(
            me(&b, credential, api_key).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    let (status, answer) = a
        .call(
            "DELETE",
            &format!("/api/v1/api-keys/{key_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {answer}");
    assert!(
        refused_within(&b, &key, true, bound).await,
        "the revoked key still works on b"
    );
    let (status, answer) = a.patch_user(&admin, id, json!({ "disabled": true })).await;
    assert!(status.is_success(), "{status} {answer}");
    assert!(
        refused_within(&b, &token, false, bound).await,
        "the disabled user's token still works on b"
    );
}

#[actix_web::test]
async fn after_a_redis_outage_an_instance_subscribes_again_and_forgets_what_it_may_have_missed() {
    let Some(redis) = crate::common::redis_url() else {
        return;
    };
    let target = {
        let url = url::Url::parse(&redis).unwrap();
        format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(6379)
        )
    };
    let proxy = crate::common::proxy::Proxy::start(target);
    let (a, b) = two_instances_sharing_redis(format!("redis://127.0.0.1:{}/", proxy.port)).await;
    crate::common::invalidations_delivered(&a, &b).await;
    let (id, _) = create_user(&a, "outage", &[("viewer", 0)]).await;
    // Creating the user published invalidations; once they have reached `b`, nothing in
    // flight can remove the entry `b` caches next.
    crate::common::invalidations_delivered(&a, &b).await;
    let token = access_token(&a, id);
    let (status, _) = b.me(Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        b.state.auth_cache.user(id).is_some(),
        "b cached the user, so only a message can make it forget"
    );

    let subscribed = "guildhall_cache_invalidation_subscribed";
    assert_eq!(b.metric(subscribed).await, Some(1.0));
    proxy.cut();
    assert!(
        crate::common::eventually(std::time::Duration::from_secs(10), || async {
            b.metric(subscribed).await == Some(0.0)
        })
        .await,
        "the lost subscription is shown"
    );
    // While Redis is away the change cannot be published: `b` keeps its cached entry (its
    // clock stands still, so the entry's lifetime cannot end it).
    sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1")
        .bind(id)
        .execute(a.state.store.pool())
        .await
        .unwrap();
    a.state.auth_cache.forget_user(id).await;
    let (status, _) = b.me(Some(&token)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the message was lost, the entry kept"
    );

    // Subscribed again, `b` forgets everything it cached, since messages may have been lost.
    proxy.restore();
    assert!(
        crate::common::eventually(Duration::from_secs(10), || async {
            b.metric(subscribed).await == Some(1.0)
        })
        .await,
        "subscribed again"
    );
    assert!(
        refused_within(&b, &token, false, Duration::from_secs(5)).await,
        "what was missed is forgotten"
    );

    // And messages arrive again. `a` marked Redis down when its publish failed during the cut,
    // and then skips Redis (dropping what it would publish) until a probe finds it back, at
    // most once a second: b can subscribe again sooner than that. A ping is such a probe, so
    // once one succeeds, `a` publishes again.
    let a_redis = a.state.redis.clone().expect("a uses Redis");
    assert!(
        crate::common::eventually(Duration::from_secs(10), || async {
            a_redis.ping().await.is_ok() && a_redis.is_up()
        })
        .await,
        "a reaches Redis again"
    );
    sqlx::query("UPDATE users SET disabled = 0 WHERE id = $1")
        .bind(id)
        .execute(a.state.store.pool())
        .await
        .unwrap();
    a.state.auth_cache.forget_user(id).await;
    let accepted = crate::common::eventually(Duration::from_secs(5), || async {
        b.me(Some(&token)).await.0 == StatusCode::OK
    })
    .await;
    assert!(accepted, "re-enabled, and the message arrived");
}

//! Users, roles, registration and invites, API keys and the audit log over the API.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::auth::{PASSWORD, access_token, admin_token, api_key, create_user};
use crate::common::{TestApp, spawn_app};

const GUILD: &str = "333333333333333333";

/// Whether the audit log holds an entry for each of `actions`.
async fn audited(app: &TestApp, actions: &[&str]) -> bool {
    let recorded: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap();
    actions.iter().all(|a| recorded.iter().any(|r| r == a))
}

#[actix_web::test]
async fn an_admin_creates_a_user_with_a_guild_scoped_role_who_can_then_sign_in() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (status, user) = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(
                json!({ "username": "newmod", "password": "a long enough passphrase",
                "roles": [{ "role": "moderator", "guild_id": GUILD }] }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert!(user["id"].is_string(), "ids are strings: {user}");
    assert_eq!(user["roles"][0]["guild_id"], GUILD);
    let (status, session) = app.login("newmod", "a long enough passphrase").await;
    assert_eq!(status, StatusCode::OK);
    let (_, me) = app.me(session["access_token"].as_str()).await;
    assert_eq!(me["permissions"], json!([]));
    assert!(
        me["guild_permissions"][GUILD]
            .as_array()
            .unwrap()
            .contains(&json!("moderation.act"))
    );
    assert!(audited(&app, &["users.create"]).await);
}

#[actix_web::test]
async fn disabling_a_user_revokes_its_tokens_at_once() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (id, name) = create_user(&app, "victim", &[("viewer", 0)]).await;
    let (_, session) = app.login(&name, PASSWORD).await;
    let (status, body) = app
        .patch_user(&admin, id, json!({ "disabled": true }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["disabled"], true);
    let (me, refresh) = app.session_statuses(&session).await;
    assert_eq!(me, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh, StatusCode::UNAUTHORIZED);
    assert!(audited(&app, &["users.disable"]).await);
}

#[actix_web::test]
async fn nobody_can_grant_more_than_they_hold() {
    let app = spawn_app().await;
    // A user manager who is not an admin.
    let admin = admin_token(&app).await;
    let (status, role) = app
        .create_role(
            &admin,
            json!({ "name": "usermgr", "permissions": ["users.manage", "bot.view"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{role}");
    let (mgr, _) = create_user(&app, "mgr", &[("usermgr", 0)]).await;
    let token = access_token(&app, mgr);
    let (target, _) = create_user(&app, "target", &[]).await;
    for grant in [
        json!({ "role": "admin" }),
        json!({ "role": "moderator", "guild_id": GUILD }),
    ] {
        let (status, body) = app
            .patch_user(&token, target, json!({ "roles": [grant] }))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, _) = app
        .patch_user(&token, target, json!({ "roles": [{ "role": "usermgr" }] }))
        .await;
    assert_eq!(status, StatusCode::OK, "granting what one holds is fine");
    // Nor can the manager disable an admin.
    let (admin_id, _) = create_user(&app, "boss", &[("admin", 0)]).await;
    let (status, _) = app
        .patch_user(&token, admin_id, json!({ "disabled": true }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn roles_are_created_and_changed_with_checked_permission_names() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (status, err) = app
        .create_role(
            &admin,
            json!({ "name": "x", "permissions": ["bot.view", "bot.everything"] }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("permissions[1]"),
        "{err}"
    );
    let (status, err) = app
        .create_role(&admin, json!({ "name": "Bad Name", "permissions": [] }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("name"),
        "{err}"
    );
    let (status, role) = app
        .create_role(
            &admin,
            json!({ "name": "helper", "permissions": ["bot.view"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{role}");
    let id = role["id"].as_str().unwrap();
    let (status, role) = app
        .call(
            "PATCH",
            &format!("/api/v1/roles/{id}"),
            Some(&admin),
            Some(json!({ "permissions": ["bot.view", "settings.read"], "description": "helps" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{role}");
    assert_eq!(role["permissions"], json!(["bot.view", "settings.read"]));
    let (status, again) = app
        .create_role(&admin, json!({ "name": "helper", "permissions": [] }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (_, list) = app.call("GET", "/api/v1/roles", Some(&admin), None).await;
    let admin_role = list["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap();
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/roles/{}", admin_role["id"].as_str().unwrap()),
            Some(&admin),
            Some(json!({ "permissions": ["bot.view"] })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the admin role keeps every permission"
    );
    assert!(audited(&app, &["roles.create", "roles.update"]).await);
}

#[actix_web::test]
async fn registration_is_closed_until_opened_or_an_invite_is_used_once() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let register = |name: &str, invite: Option<&str>| {
        let mut body = json!({ "username": name, "password": "a long enough passphrase" });
        if let Some(i) = invite {
            body["invite"] = json!(i);
        }
        let app = &app;
        async move {
            app.call("POST", "/api/v1/auth/register", None, Some(body))
                .await
        }
    };
    assert_eq!(register("early", None).await.0, StatusCode::FORBIDDEN);
    let (status, invite) = app
        .call("POST", "/api/v1/users/invites", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let code = invite["invite"].as_str().unwrap();
    assert_eq!(
        register("bogus", Some("ghi_nope")).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, user) = register("invited", Some(code)).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(
        register("second", Some(code)).await.0,
        StatusCode::BAD_REQUEST,
        "single use"
    );
    let (status, _) = app
        .put_instance_settings(&admin, json!({ "registration_open": true }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, user) = register("walkin", None).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let (_, session) = app.login("walkin", "a long enough passphrase").await;
    let (_, me) = app.me(session["access_token"].as_str()).await;
    assert_eq!(
        me["permissions"],
        json!([]),
        "a new account starts with no permissions"
    );
    assert_eq!(register("walkin", None).await.0, StatusCode::CONFLICT);
    assert_eq!(register("x", None).await.0, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn an_api_key_is_shown_once_stored_hashed_and_works_until_revoked() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (status, created) = app
        .call(
            "POST",
            "/api/v1/api-keys",
            Some(&admin),
            Some(json!({ "name": "ci", "permissions": ["audit.read", "api_keys.manage"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let prefix = created["prefix"].as_str().unwrap();
    assert!(
        key.starts_with(&format!("ghk_{prefix}_")) && prefix.len() == 8,
        "{key}"
    );
    let stored: String = sqlx::query_scalar("SELECT secret_hash FROM api_keys WHERE prefix = $1")
        .bind(prefix)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert!(!key.contains(&stored) && stored.len() == 64);
    let (_, listed) = app
        .call("GET", "/api/v1/api-keys", Some(&admin), None)
        .await;
    assert!(
        !listed.to_string().contains(&key[13..]),
        "the secret is never listed"
    );

    // Both header forms work; the key holds only its permissions.
    let via_header = app
        .client
        .get(app.url("/api/v1/audit"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(via_header.status(), StatusCode::OK);
    assert_eq!(
        app.call("GET", "/api/v1/audit", Some(&key), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.call("GET", "/api/v1/users", Some(&key), None).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, me) = app.me(Some(&key)).await;
    assert_eq!(me["via"], "api_key");

    let id = created["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/api-keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call("GET", "/api/v1/audit", Some(&key), None).await.0,
        StatusCode::UNAUTHORIZED,
        "revoked"
    );
    assert!(audited(&app, &["api_keys.create", "api_keys.revoke"]).await);
    let (_, log) = app
        .call(
            "GET",
            "/api/v1/audit?action=api_keys.create",
            Some(&admin),
            None,
        )
        .await;
    assert!(
        !log.to_string().contains(&key),
        "the key never reaches the audit log"
    );
}

#[actix_web::test]
async fn a_key_cannot_exceed_its_creator_and_follows_the_creators_grants() {
    let app = spawn_app().await;
    let (id, _) = create_user(&app, "keymaker", &[("moderator", 0)]).await;
    // Moderators may not manage keys at all.
    let token = access_token(&app, id);
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/api-keys",
            Some(&token),
            Some(json!({ "name": "k", "permissions": ["audit.read"] })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (admin_id, _) = create_user(&app, "keyadmin", &[("moderator", 0)]).await;
    sqlx::query("INSERT INTO role_grants (user_id, role_id, guild_id, created_at) SELECT $1, id, 0, 0 FROM roles WHERE name = 'admin'")
        .bind(admin_id)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let admin = access_token(&app, admin_id);
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/api-keys",
            Some(&admin),
            Some(json!({ "name": "scoped", "permissions": ["audit.read"], "guild_id": GUILD })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let scoped = body["key"].as_str().unwrap().to_owned();
    let (status, _) = app.call("GET", "/api/v1/audit", Some(&scoped), None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a guild-scoped key reads only its guild"
    );
    let (status, _) = app
        .call(
            "GET",
            &format!("/api/v1/audit?guild={GUILD}"),
            Some(&scoped),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Take admin away from the creator: the key loses it on the next request.
    let boss = crate::common::auth::admin_token(&app).await;
    let (status, _) = app
        .patch_user(&boss, admin_id, json!({ "roles": [] }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            "GET",
            &format!("/api/v1/audit?guild={GUILD}"),
            Some(&scoped),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    for (body, field) in [
        (
            json!({ "name": "k", "permissions": ["nope"] }),
            "permissions[0]",
        ),
        (json!({ "name": "k", "permissions": [] }), "permissions"),
        (json!({ "name": "", "permissions": ["bot.view"] }), "name"),
        (
            json!({ "name": "k", "permissions": ["bot.view"], "expires_at": 1 }),
            "expires_at",
        ),
        (
            json!({ "name": "k", "permissions": ["bot.view"], "guild_id": "-5" }),
            "guild_id",
        ),
    ] {
        let boss = crate::common::auth::admin_token(&app).await;
        let (status, err) = app
            .call("POST", "/api/v1/api-keys", Some(&boss), Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().starts_with(field),
            "{field}: {err}"
        );
    }
}

#[actix_web::test]
async fn an_expired_key_is_refused_and_use_is_recorded_at_most_once_a_minute() {
    let app = spawn_app().await;
    let (id, _) = create_user(&app, "keyuser", &[("admin", 0)]).await;
    let key = api_key(&app, id, &["audit.read"], None).await;
    for _ in 0..3 {
        assert_eq!(
            app.call("GET", "/api/v1/audit", Some(&key), None).await.0,
            StatusCode::OK
        );
    }
    let used: Vec<Option<i64>> = sqlx::query_scalar("SELECT last_used_at FROM api_keys")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap();
    let first = used[0].expect("recorded");
    assert_eq!(
        app.call("GET", "/api/v1/audit", Some(&key), None).await.0,
        StatusCode::OK
    );
    let again: Option<i64> = sqlx::query_scalar("SELECT last_used_at FROM api_keys")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(again, Some(first), "not rewritten within a minute");
    sqlx::query("UPDATE api_keys SET expires_at = 1")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    // Written behind the daemon's back: wait out the authentication cache.
    app.state.auth_cache.clear().await;
    assert_eq!(
        app.call("GET", "/api/v1/audit", Some(&key), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let tampered = format!("{}X", &key[..key.len() - 1]);
    assert_eq!(
        app.call("GET", "/api/v1/audit", Some(&tampered), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn the_audit_log_filters_and_pages_with_a_cursor_and_cannot_be_changed() {
    let app = spawn_app().await;
    let (id, name) = create_user(&app, "auditor", &[("admin", 0)]).await;
    for _ in 0..5 {
        app.login(&name, "wrong password!!").await;
    }
    app.login(&name, PASSWORD).await;
    let token = access_token(&app, id);
    let (status, page) = app
        .call(
            "GET",
            &format!("/api/v1/audit?actor={id}&action=auth.login_failed&limit=2"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["ip"], "127.0.0.1");
    assert!(entries[0]["request_id"].is_string(), "{page}");
    let mut seen = entries.len();
    let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (_, next) = app
            .call(
                "GET",
                &format!("/api/v1/audit?actor={id}&action=auth.login_failed&limit=2&before={c}"),
                Some(&token),
                None,
            )
            .await;
        seen += next["entries"].as_array().unwrap().len();
        cursor = next["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, 5);
    let (_, all) = app
        .call("GET", "/api/v1/audit?action=auth.login", Some(&token), None)
        .await;
    assert_eq!(all["entries"].as_array().unwrap().len(), 1);
    let (_, none) = app
        .call("GET", "/api/v1/audit?from=0&to=1", Some(&token), None)
        .await;
    assert_eq!(none["entries"], json!([]));
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("actor=-1", "actor"),
        ("before=99999999999999999999", "before"),
        ("from=yesterday", "from"),
        ("sort=id", "sort"),
    ] {
        let (status, err) = app
            .call("GET", &format!("/api/v1/audit?{query}"), Some(&token), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            err["error"]["message"].as_str().unwrap().starts_with(param),
            "{query}: {err}"
        );
    }
    for method in ["PUT", "PATCH", "DELETE", "POST"] {
        let (status, _) = app
            .call(method, "/api/v1/audit", Some(&token), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}

#[actix_web::test]
async fn hostile_ids_and_strings_get_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    for raw in [
        "-1",
        "0",
        "18446744073709551616",
        "9223372036854775808",
        "abc",
        "1.5",
        "1%20OR%201=1",
        "%27%3B%20DROP%20TABLE%20users%3B--",
        "..%2F..%2Fetc%2Fpasswd",
        "%00",
        "1%00",
    ] {
        for (method, path) in [
            ("PATCH", "/api/v1/users/"),
            ("PATCH", "/api/v1/roles/"),
            ("DELETE", "/api/v1/api-keys/"),
        ] {
            let (status, err) = app
                .call(
                    method,
                    &format!("{path}{raw}"),
                    Some(&admin),
                    Some(json!({})),
                )
                .await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{method} {path}{raw}: {err}"
            );
            assert!(
                err["error"]["message"].as_str().unwrap().starts_with("id:"),
                "{err}"
            );
        }
    }
    for (field, value) in [
        ("username", json!("robert'); DROP TABLE users;--")),
        ("username", json!("../../etc/passwd")),
        ("username", json!("nul\u{0}byte")),
        ("password", json!("short\u{0}")),
    ] {
        let mut body = json!({ "username": "fine_name", "password": "a long enough passphrase" });
        body[field] = value;
        let (status, err) = app
            .call("POST", "/api/v1/users", Some(&admin), Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().starts_with(field),
            "{err}"
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(count, 2, "only the seeded admin and the test admin exist");
    let (_, err) = app
        .call(
            "PATCH",
            "/api/v1/users/5",
            Some(&admin),
            Some(json!({ "roles": [{ "role": "viewer", "guild_id": -3 }] })),
        )
        .await;
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("roles[0].guild_id"),
        "{err}"
    );
}

#[actix_web::test]
async fn every_body_refuses_unknown_fields_naming_them() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    for (method, path) in [
        ("POST", "/api/v1/users"),
        ("POST", "/api/v1/roles"),
        ("POST", "/api/v1/api-keys"),
        ("PUT", "/api/v1/instance/settings"),
        ("POST", "/api/v1/auth/refresh"),
        ("POST", "/api/v1/auth/register"),
    ] {
        let (status, err): (StatusCode, Value) = app
            .call(
                method,
                path,
                Some(&admin),
                Some(json!({ "is_admin": true })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("is_admin"),
            "{path}: {err}"
        );
    }
}

#[actix_web::test]
async fn the_last_administrator_cannot_be_demoted_or_disabled_and_nothing_changes() {
    let app = spawn_app().await;
    let (me, _) = create_user(&app, "owner", &[("admin", 0)]).await;
    let token = access_token(&app, me);
    let ids = |users: &Value| -> Vec<(String, String)> {
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["id"].as_str().unwrap().to_owned(),
                    u["username"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    // The first start seeded another administrator: with two, one may go.
    let (_, users) = app.call("GET", "/api/v1/users", Some(&token), None).await;
    let seeded = ids(&users)
        .into_iter()
        .find(|(_, name)| name == "admin")
        .map(|(id, _)| id)
        .expect("the seeded admin");
    let (status, body) = app
        .patch_user(&token, seeded, json!({ "disabled": true }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Now `me` is the last one: no demotion, no guild-only admin, no disabling.
    for change in [
        json!({ "roles": [] }),
        json!({ "roles": [{ "role": "viewer" }] }),
        json!({ "roles": [{ "role": "admin", "guild_id": "123456789012345678" }] }),
        json!({ "disabled": true }),
        json!({ "roles": [{ "role": "admin" }], "disabled": true }),
    ] {
        let (status, body) = app.patch_user(&token, me, change.clone()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{change}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("users.manage") && m.contains("roles.manage")),
            "{body}"
        );
    }
    // Nothing was changed: the token still works and still manages users.
    let (status, me_now) = app.me(Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        me_now["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("users.manage")),
        "{me_now}"
    );

    // A custom role that is the last one granting administration cannot be emptied either.
    let (status, role) = app
        .create_role(
            &token,
            json!({ "name": "keeper", "permissions": ["users.manage", "roles.manage"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{role}");
    let (status, body) = app
        .patch_user(&token, me, json!({ "roles": [{ "role": "keeper" }] }))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "moving to an equivalent role is fine: {body}"
    );
    let role_id = role["id"].as_str().unwrap();
    let (status, body) = app
        .call(
            "PATCH",
            &format!("/api/v1/roles/{role_id}"),
            Some(&token),
            Some(json!({ "permissions": ["users.manage"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // With a second administrator, the first may step down.
    let (other, _) = create_user(&app, "heir", &[("admin", 0)]).await;
    assert!(other > 0);
    let (status, body) = app.patch_user(&token, me, json!({ "roles": [] })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn revoking_a_users_tokens_also_forgets_the_cached_user_so_no_instance_trusts_it_further() {
    let app = spawn_app().await;
    let (id, name) = create_user(&app, "revoked", &[("viewer", 0)]).await;
    let (_, session) = app.login(&name, PASSWORD).await;
    let cache = &app.state.auth_cache;
    // The user as the request path caches it, holding the version the token carries.
    let cached = app.state.authenticator.user(id).await.unwrap().unwrap();
    assert_eq!(cached.token_version, 0);
    assert!(cache.user(id).is_some());

    let version = app.state.accounts.revoke_tokens(id).await.unwrap();
    assert_eq!(version, 1);
    assert!(
        cache.user(id).is_none(),
        "forgotten with the new version, not left to expire"
    );
    let (me, refresh) = app.session_statuses(&session).await;
    assert_eq!(me, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh,
        StatusCode::UNAUTHORIZED,
        "the refresh family went too"
    );
}

#[actix_web::test]
async fn every_way_of_creating_a_user_applies_the_password_policy_and_stores_an_argon2id_hash() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (status, body) = app
        .put_instance_settings(&admin, json!({ "registration_open": true }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The CLI's path is covered by `binary::migrate_and_revert_round_trip_and_user_create_is_audited`.
    for (path, token, name) in [
        ("/api/v1/users", Some(admin.as_str()), "made_by_admin"),
        ("/api/v1/auth/register", None, "self_made"),
    ] {
        let (status, body) = app
            .call(
                "POST",
                path,
                token,
                Some(json!({ "username": name, "password": "password1234" })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("password: is one of the most common"),
            "{path}: {body}"
        );
        let (status, body) = app
            .call(
                "POST",
                path,
                token,
                Some(json!({ "username": name, "password": PASSWORD })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {body}");
        let hash: String =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE username = $1")
                .bind(name)
                .fetch_one(app.state.store.pool())
                .await
                .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{path}: {hash}");
        assert_eq!(app.login(name, PASSWORD).await.0, StatusCode::OK, "{path}");
    }
}

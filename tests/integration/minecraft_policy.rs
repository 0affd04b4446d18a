//! The command policy per role over HTTP: `/api/v1/minecraft/policy`. What `GET` returns, `PUT`
//! accepts; a change is audited and the very next command follows it; bad input is refused
//! naming the field and changes nothing.

use guildhall::store::audit::{self, AuditFilter};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::auth::{admin_token, api_key, create_user, token_with_role};
use crate::common::fake_rcon::FakeRcon;
use crate::minecraft::{PASSWORD, app_with};

const POLICY: &str = "/api/v1/minecraft/policy";
const COMMAND: &str = "/api/v1/minecraft/servers/default/command";

async fn policy_updates(app: &TestApp) -> Vec<audit::AuditEntry> {
    audit::list(
        &app.state.store,
        &AuditFilter {
            action: Some("minecraft.policy_update".into()),
            limit: 100,
            ..AuditFilter::default()
        },
    )
    .await
    .unwrap()
}

async fn stored_policy(app: &TestApp) -> Value {
    let (status, body) = app
        .call("GET", POLICY, Some(&admin_token(app).await), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[actix_web::test]
async fn every_role_is_listed_with_its_policy_and_a_role_without_one_allows_nothing() {
    let app = crate::common::spawn_app().await;
    let body = stored_policy(&app).await;
    let roles = body["roles"].as_array().unwrap();
    let find = |name: &str| roles.iter().find(|r| r["role"] == name).cloned().unwrap();
    assert_eq!(find("admin")["allowed"], json!(["*"]));
    assert_eq!(
        find("moderator")["allowed"],
        json!(["list", "say", "whitelist", "kick"])
    );
    assert_eq!(find("viewer")["allowed"], json!([]));
    assert!(find("viewer").get("updated_at").is_none(), "{body}");

    let admin = admin_token(&app).await;
    let (status, one) = app
        .call("GET", &format!("{POLICY}/moderator"), Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, find("moderator"));
    let (status, body) = app
        .call("GET", &format!("{POLICY}/no-such-role"), Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}

#[actix_web::test]
async fn a_policy_change_is_audited_round_trips_and_the_next_command_follows_it() {
    let fake = FakeRcon::start(PASSWORD);
    let app = app_with(&fake, PASSWORD).await;
    let admin = admin_token(&app).await;
    let moderator = token_with_role(&app, "moderator", 0).await;
    let path = format!("{POLICY}/moderator");

    let (status, changed) = app
        .call(
            "PUT",
            &path,
            Some(&admin),
            Some(json!({"allowed": ["/Time", "minecraft:LIST", "time"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["role"], "moderator");
    assert_eq!(changed["allowed"], json!(["list", "time"]), "normalised");
    assert!(changed["updated_at"].as_i64().unwrap() > 0);

    let (status, body) = app
        .call(
            "POST",
            COMMAND,
            Some(&moderator),
            Some(json!({"command": "kick Alex"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "kick is no longer allowed: {body}"
    );
    let (status, body) = app
        .call(
            "POST",
            COMMAND,
            Some(&moderator),
            Some(json!({"command": "time set day"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "time is allowed now: {body}");
    assert_eq!(fake.commands(), ["time set day"]);

    let updates = policy_updates(&app).await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].target.as_deref(), Some("role:moderator"));
    assert_eq!(
        updates[0].details["before"],
        json!(["list", "say", "whitelist", "kick"])
    );
    assert_eq!(updates[0].details["after"], json!(["list", "time"]));

    // What GET returns, PUT accepts, and sending it back changes nothing but the time.
    let (_, read) = app.call("GET", &path, Some(&admin), None).await;
    assert_eq!(read["allowed"], changed["allowed"]);
    let (status, again) = app.call("PUT", &path, Some(&admin), Some(read)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["allowed"], json!(["list", "time"]));

    // An empty list allows nothing, and a role that had no policy can be given one.
    let (status, _) = app
        .call("PUT", &path, Some(&admin), Some(json!({"allowed": []})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            "POST",
            COMMAND,
            Some(&moderator),
            Some(json!({"command": "list"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, viewer) = app
        .call(
            "PUT",
            &format!("{POLICY}/viewer"),
            Some(&admin),
            Some(json!({"allowed": ["list"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{viewer}");
    assert_eq!(viewer["allowed"], json!(["list"]));
}

#[actix_web::test]
async fn bad_policy_bodies_are_refused_naming_the_field_and_change_nothing() {
    let app = crate::common::spawn_app().await;
    let admin = admin_token(&app).await;
    let before = stored_policy(&app).await;
    let path = format!("{POLICY}/moderator");
    let too_many: Vec<String> = (0..=100).map(|i| format!("c{i}")).collect();
    let cases: Vec<(&str, Value, StatusCode, &str, &str)> = vec![
        (
            "two words",
            json!({"allowed": ["op Alex"]}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "allowed:",
        ),
        (
            "a control character",
            json!({"allowed": ["say\nstop"]}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "allowed:",
        ),
        (
            "an empty entry",
            json!({"allowed": [""]}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "allowed:",
        ),
        (
            "over 100 entries",
            json!({ "allowed": too_many }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "allowed:",
        ),
        (
            "a string instead of a list",
            json!({"allowed": "list"}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "allowed",
        ),
        (
            "no list",
            json!({}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "allowed",
        ),
        (
            "an unknown field",
            json!({"allowed": [], "everything": true}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "everything",
        ),
        (
            "another role in the body",
            json!({"role": "admin", "allowed": []}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "role:",
        ),
    ];
    for (what, body, status, code, names) in cases {
        let (got, answer) = app.call("PUT", &path, Some(&admin), Some(body)).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{what}: {message}");
    }
    let (status, answer) = app
        .call(
            "PUT",
            &format!("{POLICY}/no-such-role"),
            Some(&admin),
            Some(json!({"allowed": ["list"]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(stored_policy(&app).await, before, "nothing changed");
    assert!(policy_updates(&app).await.is_empty(), "nothing audited");
}

#[actix_web::test]
async fn reading_the_policy_needs_minecraft_view_and_changing_it_minecraft_manage() {
    let app = crate::common::spawn_app().await;
    let path = format!("{POLICY}/moderator");
    let change = json!({"allowed": ["*"]});
    let viewer = token_with_role(&app, "viewer", 0).await;
    let moderator = token_with_role(&app, "moderator", 0).await;
    let (admin_id, _) = create_user(&app, "keyowner", &[("admin", 0)]).await;
    let read_only_key = api_key(&app, admin_id, &["minecraft.view"], None).await;
    for (who, token) in [
        ("viewer", &viewer),
        ("moderator", &moderator),
        ("key", &read_only_key),
    ] {
        let (status, _) = app.call("GET", &path, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{who} reads");
        let (status, _) = app
            .call("PUT", &path, Some(token), Some(change.clone()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who} may not change it");
    }
    let (status, _) = app.call("GET", POLICY, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(policy_updates(&app).await.is_empty());
}

//! `GET|PUT|PATCH /api/v1/settings/{guild_id}`: one representation for reading and writing,
//! partial updates, versions as ETags with `If-Match`, and no lost update when the API and
//! `/settings set` in Discord edit at the same time.

use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MATCH};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::auth::admin_token;
use crate::common::fake_discord::{ADMIN, Opt};
use crate::origin::{GUILD, connected, invoke};

fn path() -> String {
    format!("/api/v1/settings/{GUILD}")
}

/// Sends a settings request with an optional `If-Match`; returns status, ETag and body.
async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    if_match: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = app
        .client
        .request(method, app.url(&path()))
        .bearer_auth(token);
    if let Some(tag) = if_match {
        request = request.header(IF_MATCH, tag);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, etag, body)
}

#[actix_web::test]
async fn what_get_returns_put_accepts_with_one_field_changed_and_the_rest_kept() {
    let (_fake, app) = connected().await;
    let admin = admin_token(&app).await;
    let (status, _, _) = send(
        &app,
        &admin,
        reqwest::Method::PATCH,
        None,
        Some(json!({"log_channel": (GUILD + 11).to_string(), "mod_role": (GUILD + 2).to_string()})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, etag, mut doc) = send(&app, &admin, reqwest::Method::GET, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["guild_id"], GUILD.to_string());
    assert_eq!(etag, Some(format!("\"{}\"", doc["version"])));
    doc["settings"]["welcome_message"] = json!("Welcome, {user}!");
    let (status, new_etag, saved) =
        send(&app, &admin, reqwest::Method::PUT, None, Some(doc.clone())).await;
    assert_eq!(status, 200, "{saved}");
    assert_ne!(new_etag, etag);
    assert_eq!(saved["settings"]["welcome_message"], "Welcome, {user}!");
    assert_eq!(saved["settings"]["log_channel"], (GUILD + 11).to_string());
    assert_eq!(saved["settings"]["mod_role"], (GUILD + 2).to_string());
    let (_, _, again) = send(&app, &admin, reqwest::Method::GET, None, None).await;
    assert_eq!(again["settings"], saved["settings"]);

    // The document names its guild; another guild's is refused.
    doc["guild_id"] = json!("42");
    let (status, _, e) = send(&app, &admin, reqwest::Method::PUT, None, Some(doc)).await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("guild_id")
    );
}

#[actix_web::test]
async fn patch_changes_only_the_settings_it_names_and_null_clears_one() {
    let (_fake, app) = connected().await;
    let admin = admin_token(&app).await;
    for body in [
        json!({"log_channel": (GUILD + 11).to_string()}),
        json!({"welcome_message": "Hi {user}"}),
        json!({"log_channel": null}),
    ] {
        let (status, _, saved) = send(&app, &admin, reqwest::Method::PATCH, None, Some(body)).await;
        assert_eq!(status, 200, "{saved}");
    }
    let (_, _, doc) = send(&app, &admin, reqwest::Method::GET, None, None).await;
    assert_eq!(
        doc["settings"],
        json!({"log_channel": null, "mod_role": null, "welcome_channel": null,
               "welcome_message": "Hi {user}", "minecraft_server": null, "minecraft_role": null})
    );
    assert_eq!(doc["version"], 3);
    let (status, _, e) = send(&app, &admin, reqwest::Method::PATCH, None, Some(json!({}))).await;
    assert_eq!(status, 400, "{e}");
}

#[actix_web::test]
async fn a_write_based_on_a_stale_etag_is_refused_with_412_and_changes_nothing() {
    let (_fake, app) = connected().await;
    let admin = admin_token(&app).await;
    let (_, first, doc) = send(&app, &admin, reqwest::Method::GET, None, None).await;
    let first = first.unwrap();
    let (status, second, _) = send(
        &app,
        &admin,
        reqwest::Method::PATCH,
        Some(&first),
        Some(json!({"welcome_message": "first"})),
    )
    .await;
    assert_eq!(status, 200);
    for (method, body) in [
        (reqwest::Method::PATCH, json!({"welcome_message": "lost"})),
        (reqwest::Method::PUT, doc.clone()),
    ] {
        let (status, _, e) = send(&app, &admin, method, Some(&first), Some(body)).await;
        assert_eq!(status, 412, "{e}");
        assert_eq!(e["error"]["code"], "precondition_failed");
    }
    let (status, _, e) = send(
        &app,
        &admin,
        reqwest::Method::PATCH,
        Some("yesterday"),
        Some(json!({"welcome_message": "lost"})),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    let (_, now, doc) = send(&app, &admin, reqwest::Method::GET, None, None).await;
    assert_eq!(now, second);
    assert_eq!(doc["settings"]["welcome_message"], "first");
    // The current ETag matches, and `*` matches any.
    for tag in [now.as_deref().unwrap(), "*"] {
        let (status, _, _) = send(
            &app,
            &admin,
            reqwest::Method::PATCH,
            Some(tag),
            Some(json!({"welcome_message": "second"})),
        )
        .await;
        assert_eq!(status, 200, "{tag}");
    }
}

#[actix_web::test]
async fn the_api_and_discord_editing_at_the_same_time_lose_no_change() {
    const ROUNDS: u64 = 6;
    let (fake, app) = connected().await;
    let admin = admin_token(&app).await;
    // Discord sets the log channel, one round after another.
    let discord = async {
        for i in 0..ROUNDS {
            let channel = (GUILD + 100 + i).to_string();
            let (_, reply) = invoke(
                &fake,
                ADMIN,
                "settings",
                vec![Opt::sub(
                    "set",
                    vec![
                        Opt::string("key", "log_channel"),
                        Opt::string("value", &channel),
                    ],
                )],
            )
            .await;
            let text = reply["data"]["content"].as_str().unwrap_or_default();
            assert!(text.contains("is now"), "{reply}");
        }
    };
    // An API client patches the welcome message meanwhile.
    let patcher = async {
        for i in 0..ROUNDS {
            let (status, _, body) = send(
                &app,
                &admin,
                reqwest::Method::PATCH,
                None,
                Some(json!({"welcome_message": format!("hello {i}")})),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    // Another reads, changes the Minecraft server and writes the whole document back with
    // If-Match, reading again whenever someone else got there first.
    let replacer = async {
        let mut refused = 0;
        for i in 0..ROUNDS {
            loop {
                let (_, etag, mut doc) = send(&app, &admin, reqwest::Method::GET, None, None).await;
                doc["settings"]["minecraft_server"] = json!(format!("srv-{i}"));
                let (status, _, body) = send(
                    &app,
                    &admin,
                    reqwest::Method::PUT,
                    etag.as_deref(),
                    Some(doc),
                )
                .await;
                match status.as_u16() {
                    200 => break,
                    412 => refused += 1,
                    other => panic!("{other}: {body}"),
                }
            }
        }
        refused
    };
    let ((), (), refused) = tokio::join!(discord, patcher, replacer);
    let (_, _, doc) = send(&app, &admin, reqwest::Method::GET, None, None).await;
    let last = ROUNDS - 1;
    assert_eq!(
        doc["settings"]["log_channel"],
        (GUILD + 100 + last).to_string()
    );
    assert_eq!(doc["settings"]["welcome_message"], format!("hello {last}"));
    assert_eq!(doc["settings"]["minecraft_server"], format!("srv-{last}"));
    // Every accepted write bumped the version once, and was audited once.
    assert_eq!(doc["version"], 3 * ROUNDS);
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'settings.update'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(
        audited,
        3 * ROUNDS as i64,
        "{refused} PUTs were refused and retried"
    );
}

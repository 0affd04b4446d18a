//! The Discord resources of the HTTP API (moderation, settings, modules, bot) and the guild
//! configuration they share with the slash commands.

use super::*;

#[actix_web::test]
async fn a_module_change_on_one_instance_is_seen_by_another_through_redis() {
    let Some(redis) = crate::common::redis_url() else {
        return;
    };
    let prefix = format!("gh-test-{}", crate::common::random_suffix());
    let (redis_a, prefix_a) = (redis.clone(), prefix.clone());
    let a = spawn_app_with(move |env| {
        env.insert("REDIS_URL".into(), redis_a);
        env.insert("GUILDHALL_REDIS_PREFIX".into(), prefix_a);
    })
    .await;
    let db_url = a.db.url.clone();
    // `b`'s clock stands still: its entries never reach their lifetime (`SHARED_TTL`), so
    // whatever it forgets, a message told it to, however long a loaded machine takes.
    let frozen = guildhall::clock::ManualClock::at(guildhall::ids::now_ms());
    let b = spawn_app_with_clock(frozen.into(), move |env| {
        env.insert("REDIS_URL".into(), redis);
        env.insert("GUILDHALL_REDIS_PREFIX".into(), prefix);
        env.insert("DATABASE_URL".into(), db_url);
    })
    .await;
    let guild = GUILD as i64;
    a.state
        .store
        .upsert_guild(&guildhall::store::guilds::GuildUpsert {
            id: guild,
            name: "Shared".into(),
            icon: None,
            owner_id: Some(OWNER as i64),
            member_count: Some(3),
        })
        .await
        .unwrap();
    use guildhall::domain::settings::ModuleName;
    crate::common::invalidations_delivered(&a, &b).await;
    // Both instances read (and cache) the default: enabled.
    assert!(module_enabled(&a, guild, ModuleName::Moderation).await);
    assert!(module_enabled(&b, guild, ModuleName::Moderation).await);
    a.state
        .guilds
        .set_module(
            guildhall::domain::Snowflake::from_i64(guild).unwrap(),
            ModuleName::Moderation,
            false,
            guildhall::store::audit::Actor::System,
            Default::default(),
        )
        .await
        .unwrap();
    // The other instance sees it at once (the message's trip), not after a TTL.
    // A working message takes milliseconds; the bound is room for a loaded machine (with the
    // clock held still, only the message can make `b` forget).
    let soon = Duration::from_secs(10);
    assert!(
        eventually(soon, || async {
            !module_enabled(&b, guild, ModuleName::Moderation).await
        })
        .await
    );
    // A reload on one instance invalidates every guild everywhere.
    a.state
        .store
        .set_guild_module(guild, "admin", false)
        .await
        .unwrap();
    assert!(
        module_enabled(&b, guild, ModuleName::Admin).await,
        "still cached"
    );
    a.state.guild_config.reload_all().await;
    assert!(
        eventually(soon, || async {
            !module_enabled(&b, guild, ModuleName::Admin).await
        })
        .await
    );
}

/// Whether `module` is on in `guild` as `app` sees it (through its configuration cache).
async fn module_enabled(
    app: &TestApp,
    guild: i64,
    module: guildhall::domain::settings::ModuleName,
) -> bool {
    app.state
        .guild_config
        .get(guild)
        .await
        .unwrap()
        .module_enabled(module)
}

/// `PUT /api/v1/guilds/{GUILD}/modules/{module}` as `token`: turns `module` on or off.
async fn put_module(
    app: &TestApp,
    token: &str,
    module: &str,
    enabled: bool,
) -> (StatusCode, Value) {
    app.call(
        "PUT",
        &format!("/api/v1/guilds/{GUILD}/modules/{module}"),
        Some(token),
        Some(serde_json::json!({ "enabled": enabled })),
    )
    .await
}

/// A moderation body naming `user` and nothing else.
fn against(user: impl ToString) -> guildhall::web::api::moderation::ModerationBody {
    guildhall::web::api::moderation::ModerationBody {
        user_id: user.to_string(),
        reason: None,
        duration: None,
        delete_message_days: None,
    }
}

/// What `POST /guilds/{id}/moderation/{action}` does after authorisation: parse, one service
/// call, the error as the API maps it.
async fn moderate(
    state: &guildhall::state::AppState,
    actor: guildhall::store::audit::Actor,
    guild: guildhall::domain::Snowflake,
    action: &str,
    body: &guildhall::web::api::moderation::ModerationBody,
    origin: guildhall::domain::audit::AuditOrigin,
) -> Result<guildhall::store::cases::CaseRow, guildhall::web::error::ApiError> {
    let (target, action, reason) = guildhall::web::api::moderation::parse_action(action, body)?;
    let done = state
        .moderation
        .moderate(guildhall::services::moderation::Request {
            guild_id: guild,
            target,
            action,
            reason,
            actor,
            invoker: None,
            bot_permissions: None,
            origin,
        })
        .await?;
    Ok(done.case)
}

#[actix_web::test]
async fn moderation_from_the_api_runs_the_same_code_and_records_the_same_case_and_audit_entry() {
    use guildhall::store::audit::Actor;
    use guildhall::web::api::moderation::ModerationBody;
    let (fake, app) = connected().await;
    let dashboard_user = Actor::User {
        id: 7,
        username: "alice".into(),
    };
    let body = ModerationBody {
        reason: Some("from the dashboard".into()),
        ..against(MEMBER)
    };
    let case = moderate(
        &app.state,
        dashboard_user.clone(),
        guildhall::domain::Snowflake::new(GUILD).unwrap(),
        "kick",
        &body,
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(case.case_number, 1);
    assert_eq!(case.action, "kick");
    assert_eq!(case.actor_label, "user:alice");
    assert_eq!(
        fake.calls_matching("DELETE", &format!("/guilds/{GUILD}/members/{MEMBER}"))
            .len(),
        1
    );
    // A second kick, from Discord, gets the next number in the same sequence.
    let reply = invoke(
        &fake,
        MODERATOR,
        "kick",
        vec![Opt::user("user", OTHER_MEMBER)],
    )
    .await;
    assert!(content(&reply).contains("case #2"), "{reply}");
    let audit: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT action, actor_label, actor_user_id FROM audit_log WHERE action = 'moderation.kick' ORDER BY created_at, id",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(
        audit,
        vec![
            (
                "moderation.kick".to_owned(),
                "user:alice".to_owned(),
                Some(7)
            ),
            (
                "moderation.kick".to_owned(),
                format!("discord:{MODERATOR}"),
                None
            ),
        ]
    );

    // The bot's own checks apply to the API too: the owner is protected, bad input is named.
    let refusal = moderate(
        &app.state,
        dashboard_user.clone(),
        guildhall::domain::Snowflake::new(GUILD).unwrap(),
        "ban",
        &against(OWNER),
        Default::default(),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(refusal.code(), "cannot_moderate_owner");
    let bad: Vec<(&str, ModerationBody, &str)> = vec![
        (
            "timeout",
            ModerationBody {
                duration: Some("0s".into()),
                ..against(MEMBER)
            },
            "duration",
        ),
        ("timeout", against(MEMBER), "duration"),
        (
            "ban",
            ModerationBody {
                duration: Some("100y".into()),
                ..against(MEMBER)
            },
            "duration",
        ),
        (
            "ban",
            ModerationBody {
                delete_message_days: Some(9),
                ..against(MEMBER)
            },
            "delete_message_days",
        ),
        ("kick", against("someone"), "user_id"),
        (
            "kick",
            ModerationBody {
                reason: Some("x".repeat(600)),
                ..against(MEMBER)
            },
            "reason",
        ),
        ("explode", against(MEMBER), "action"),
    ];
    for (action, body, field) in bad {
        let e = moderate(
            &app.state,
            dashboard_user.clone(),
            guildhall::domain::Snowflake::new(GUILD).unwrap(),
            action,
            &body,
            Default::default(),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(e.code(), "invalid_field", "{action}: {e}");
        assert!(e.to_string().starts_with(field), "{action}: {e}");
    }
    let unknown = moderate(
        &app.state,
        dashboard_user,
        guildhall::domain::Snowflake::new(1_300_000_000_000_000_000).unwrap(),
        "warn",
        &against(MEMBER),
        Default::default(),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(unknown.code(), "unknown_guild");
    assert_eq!(
        app.state
            .store
            .list_cases(GUILD as i64, &Default::default(), 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[actix_web::test]
async fn settings_and_modules_from_the_api_are_validated_and_shared_with_discord() {
    use crate::common::auth::admin_token;
    let (fake, app) = connected().await;
    let admin = admin_token(&app).await;
    let path = format!("/api/v1/settings/{GUILD}");
    let (status, saved) = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(serde_json::json!({"log_channel": (GUILD + 11).to_string(), "welcome_message": "Hi {user}"})),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["settings"]["log_channel"], (GUILD + 11).to_string());
    // Bad keys and values are refused, naming the field, and change nothing.
    for (body, field) in [
        (serde_json::json!({"colour": "red"}), "colour"),
        (
            serde_json::json!({"log_channel": "#general"}),
            "log_channel",
        ),
        (serde_json::json!({"mod_role": true}), "mod_role"),
        (
            serde_json::json!({"minecraft_server": "bad name!"}),
            "minecraft_server",
        ),
    ] {
        let (status, e) = app.call("PATCH", &path, Some(&admin), Some(body)).await;
        assert_eq!(status, 400, "{e}");
        let message = e["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{e}");
    }
    let (status, shown) = app.call("GET", &path, Some(&admin), None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["settings"]["welcome_message"], "Hi {user}");
    assert_eq!(shown["settings"]["log_channel"], (GUILD + 11).to_string());
    let (status, e) = app
        .call("GET", "/api/v1/settings/abc", Some(&admin), None)
        .await;
    assert_eq!(
        (status.as_u16(), e["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    let (status, e) = app
        .call("GET", "/api/v1/settings/42", Some(&admin), None)
        .await;
    assert_eq!(
        (status.as_u16(), e["error"]["code"].as_str()),
        (404, Some("unknown_guild"))
    );

    // A module disabled from the API is disabled for the slash commands at once.
    let (status, _) = put_module(&app, &admin, "moderation", false).await;
    assert_eq!(status, 200);
    let reply = invoke(&fake, MODERATOR, "warn", vec![Opt::user("user", MEMBER)]).await;
    assert!(content(&reply).contains("module is disabled"), "{reply}");
    let (status, e) = put_module(&app, &admin, "fun", true).await;
    assert_eq!(
        (status.as_u16(), e["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    let (_, listed) = app.call("GET", "/api/v1/guilds", Some(&admin), None).await;
    assert_eq!(listed["guilds"].as_array().unwrap().len(), 1);
    let (_, one) = app
        .call(
            "GET",
            &format!("/api/v1/guilds/{GUILD}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(one["modules"]["moderation"], false);
    assert_eq!(one["settings"]["welcome_message"], "Hi {user}");
}

#[actix_web::test]
async fn reload_resyncs_the_commands_and_reloads_the_caches() {
    use guildhall::store::audit::Actor;
    let (fake, app) = connected().await;
    let result = guildhall::web::api::bot::reload(&app.state, Actor::System)
        .await
        .unwrap();
    assert_eq!(result["commands_registered"], 14);
    assert_eq!(fake.calls_matching("PUT", "/applications/").len(), 2);
    let status = guildhall::web::api::bot::status(&app.state).await.unwrap();
    assert_eq!(status.status.label(), "connected");
    let modules = guildhall::web::api::bot::modules(&app.state).await.unwrap();
    assert_eq!(modules["modules"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn the_http_api_moderates_and_configures_through_rbac() {
    use crate::common::auth::{access_token, admin_token, create_user};
    let (fake, app) = connected().await;
    let admin = admin_token(&app).await;
    let (status, body) = app
        .call("GET", "/api/v1/bot/status", Some(&admin), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "connected");
    assert_eq!(body["shards"][0]["stage"], "connected");
    assert_eq!(body["guilds"], 1);

    // A moderator of this guild may act here, through the same service as /kick.
    let (mod_id, _) = create_user(&app, "mod", &[("moderator", GUILD as i64)]).await;
    let moderator = access_token(&app, mod_id);
    let path = format!("/api/v1/guilds/{GUILD}/moderation/timeout");
    let (status, case) = app
        .call("POST", &path, Some(&moderator), Some(serde_json::json!({"user_id": MEMBER.to_string(), "duration": "10m", "reason": "calm down"})))
        .await;
    assert_eq!(status, 201, "{case}");
    assert_eq!(case["case_number"], 1);
    assert_eq!(case["action"], "timeout");
    let patches = fake.calls_matching("PATCH", &format!("/guilds/{GUILD}/members/{MEMBER}"));
    assert_eq!(patches.len(), 1);
    assert!(patches[0].body["communication_disabled_until"].is_string());
    // Bad input names its field; nothing happens.
    let (status, body) = app
        .call(
            "POST",
            &path,
            Some(&moderator),
            Some(serde_json::json!({"user_id": MEMBER.to_string(), "duration": "-5m"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("duration")
    );
    // A moderator of another guild may not.
    let (other_id, _) = create_user(&app, "othermod", &[("moderator", 42)]).await;
    let other = access_token(&app, other_id);
    let (status, _) = app
        .call(
            "POST",
            &path,
            Some(&other),
            Some(serde_json::json!({"user_id": MEMBER.to_string(), "duration": "10m"})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(fake.calls_matching("PATCH", "/guilds/").len(), 1);

    // Settings and modules from the API, seen by the bot.
    let (status, body) = app
        .call(
            "PATCH",
            &format!("/api/v1/settings/{GUILD}"),
            Some(&admin),
            Some(serde_json::json!({"mod_role": (GUILD + 2).to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let origin: (Option<String>, Option<String>) =
        sqlx::query_as("SELECT ip, request_id FROM audit_log WHERE action = 'settings.update'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(
        origin.0.as_deref(),
        Some("127.0.0.1"),
        "the API's audit entry carries the origin"
    );
    let (status, body) = app
        .call(
            "PUT",
            &format!("/api/v1/settings/{GUILD}"),
            Some(&admin),
            Some(serde_json::json!({"nonsense": 1})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_body");
    let (status, _) = put_module(&app, &admin, "moderation", false).await;
    assert_eq!(status, 200);
    let reply = invoke(&fake, MODERATOR, "kick", vec![Opt::user("user", MEMBER)]).await;
    assert!(content(&reply).contains("module is disabled"), "{reply}");
    let (status, body) = app
        .call(
            "GET",
            &format!("/api/v1/guilds/{GUILD}/cases"),
            Some(&moderator),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["cases"].as_array().unwrap().len(), 1);
    let (status, body) = app
        .call("GET", "/api/v1/guilds", Some(&moderator), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["guilds"][0]["id"], GUILD.to_string());
    // A moderator of another guild sees none of this one.
    let (status, body) = app.call("GET", "/api/v1/guilds", Some(&other), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["guilds"].as_array().unwrap().len(), 0);
    let (status, body) = app
        .call("POST", "/api/v1/bot/reload", Some(&admin), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["commands_registered"], 14);
}

#[actix_web::test]
async fn api_moderation_in_a_guild_the_bot_is_not_in_is_a_404_even_while_discord_is_away() {
    // No DISCORD_TOKEN: the gateway is not connected, and the guild is unknown. The caller's
    // mistake (the guild) is reported, not the daemon's state.
    let app = crate::common::spawn_app().await;
    let admin = crate::common::auth::admin_token(&app).await;
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/guilds/1/moderation/warn",
            Some(&admin),
            Some(serde_json::json!({ "user_id": "384100496390344704" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("guild 1")),
        "{body}"
    );
}

//! Slash commands end to end: an interaction from the fake Discord in, the reply and the side
//! effects out.

use super::*;

#[actix_web::test]
async fn kick_from_discord_deletes_the_member_replies_and_records_case_audit_and_log_embed() {
    let (fake, app) = connected().await;
    let log_channel = GUILD + 11;
    let reply = set_setting(&fake, "log_channel", &format!("<#{log_channel}>")).await;
    assert!(is_ephemeral(&reply), "{reply}");

    let reply = invoke(
        &fake,
        MODERATOR,
        "kick",
        vec![Opt::user("user", MEMBER), Opt::string("reason", "spamming")],
    )
    .await;
    assert!(content(&reply).contains("case #1"), "{reply}");
    let kicks = fake.calls_matching("DELETE", &format!("/guilds/{GUILD}/members/{MEMBER}"));
    assert_eq!(kicks.len(), 1);
    assert!(
        kicks[0]
            .audit_reason
            .as_deref()
            .unwrap_or_default()
            .contains("spamming")
    );

    let case = app
        .state
        .store
        .case_by_number(GUILD as i64, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.action, "kick");
    assert_eq!(case.target_user_id, MEMBER as i64);
    assert_eq!(case.moderator_id, Some(MODERATOR as i64));
    assert_eq!(case.reason.as_deref(), Some("spamming"));

    let audit: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT action, target FROM audit_log WHERE action = 'moderation.kick'")
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(
        audit,
        vec![(
            "moderation.kick".to_owned(),
            Some(format!("discord_user:{MEMBER}"))
        )]
    );

    let embeds = fake.calls_matching("POST", &format!("/channels/{log_channel}/messages"));
    assert_eq!(embeds.len(), 1);
    assert!(
        embeds[0].body["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("Case #1")
    );
    assert_eq!(
        app.metric("guildhall_discord_commands_total{command=\"kick\",outcome=\"ok\"}")
            .await,
        Some(1.0)
    );
    let _ = OTHER_MEMBER;
}

#[actix_web::test]
async fn a_command_of_a_disabled_module_answers_module_disabled_and_does_nothing() {
    let (fake, app) = connected().await;
    let reply = invoke(
        &fake,
        ADMIN,
        "module",
        vec![Opt::sub(
            "disable",
            vec![Opt::string("module", "moderation")],
        )],
    )
    .await;
    assert!(content(&reply).contains("disabled"), "{reply}");
    let before = fake.side_effects().len();
    let reply = invoke(&fake, MODERATOR, "kick", vec![Opt::user("user", MEMBER)]).await;
    assert!(is_ephemeral(&reply));
    assert!(
        content(&reply).contains("moderation module is disabled"),
        "{reply}"
    );
    assert_eq!(
        fake.side_effects().len(),
        before,
        "{:?}",
        fake.side_effects()
    );
    assert!(
        app.state
            .store
            .case_by_number(GUILD as i64, 1)
            .await
            .unwrap()
            .is_none()
    );
    // /help lists only enabled modules' commands.
    let help = invoke(&fake, MEMBER, "help", vec![]).await;
    let text = help["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!text.contains("/kick") && text.contains("/ping"), "{text}");
    // Enabling it again works through the same cache invalidation.
    invoke(
        &fake,
        ADMIN,
        "module",
        vec![Opt::sub(
            "enable",
            vec![Opt::string("module", "moderation")],
        )],
    )
    .await;
    let reply = invoke(&fake, MODERATOR, "warn", vec![Opt::user("user", MEMBER)]).await;
    assert!(content(&reply).contains("case #1"), "{reply}");
}

#[actix_web::test]
async fn missing_permissions_of_the_invoker_or_the_bot_are_refused_without_side_effects() {
    let (fake, app) = connected().await;
    let guild = standard_guild(GUILD);
    // A plain member cannot kick.
    let reply = invoke(&fake, MEMBER, "kick", vec![Opt::user("user", OTHER_MEMBER)]).await;
    assert!(is_ephemeral(&reply));
    assert!(content(&reply).contains("Kick Members"), "{reply}");
    // The bot without Ban Members cannot ban.
    let (id, payload) = fake.command_interaction_with(
        &guild,
        MODERATOR,
        fake_discord::perms::MODERATOR,
        fake_discord::perms::NONE,
        "ban",
        vec![Opt::user("user", MEMBER)],
    );
    fake.dispatch(0, "INTERACTION_CREATE", payload);
    assert!(eventually(WAIT, || async { !fake.replies_to(id).is_empty() }).await);
    let reply = fake.replies_to(id).remove(0);
    assert!(
        content(&reply).contains("bot needs the Ban Members"),
        "{reply}"
    );
    assert!(fake.side_effects().is_empty(), "{:?}", fake.side_effects());
    assert!(
        app.state
            .store
            .list_cases(GUILD as i64, &Default::default(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[actix_web::test]
async fn bad_input_gets_a_clear_ephemeral_answer_and_no_side_effect() {
    let (fake, app) = connected().await;
    let long = "x".repeat(513);
    let cases: Vec<(u64, &str, Vec<Opt>, &str)> = vec![
        (
            MODERATOR,
            "timeout",
            vec![Opt::user("user", MEMBER), Opt::string("duration", "0s")],
            "zero",
        ),
        (
            MODERATOR,
            "timeout",
            vec![Opt::user("user", MEMBER), Opt::string("duration", "-5m")],
            "negative",
        ),
        (
            MODERATOR,
            "timeout",
            vec![Opt::user("user", MEMBER), Opt::string("duration", "100y")],
            "maximum",
        ),
        (
            MODERATOR,
            "ban",
            vec![Opt::user("user", MEMBER), Opt::string("duration", "100y")],
            "maximum",
        ),
        (
            MODERATOR,
            "timeout",
            vec![
                Opt::user("user", MEMBER),
                Opt::string("duration", "garbage"),
            ],
            "not a duration",
        ),
        (
            MODERATOR,
            "purge",
            vec![Opt::int("count", 0)],
            "out of range",
        ),
        (
            MODERATOR,
            "purge",
            vec![Opt::int("count", 10_000)],
            "out of range",
        ),
        (
            MODERATOR,
            "kick",
            vec![Opt::user("user", MEMBER), Opt::string("reason", &long)],
            "513 characters",
        ),
        (
            MODERATOR,
            "kick",
            vec![Opt::user("user", ADMIN)],
            "not below yours",
        ),
        (
            MODERATOR,
            "kick",
            vec![Opt::user("user", BOT_ID)],
            "will not kick itself",
        ),
        (ADMIN, "ban", vec![Opt::user("user", OWNER)], "owner"),
        (
            MODERATOR,
            "kick",
            vec![Opt::user("user", MODERATOR)],
            "yourself",
        ),
        (
            ADMIN,
            "module",
            vec![Opt::sub("enable", vec![Opt::string("module", "fun")])],
            "not a module",
        ),
        (
            ADMIN,
            "settings",
            vec![Opt::sub(
                "set",
                vec![Opt::string("key", "colour"), Opt::string("value", "red")],
            )],
            "not a setting",
        ),
        (
            ADMIN,
            "settings",
            vec![Opt::sub(
                "set",
                vec![
                    Opt::string("key", "log_channel"),
                    Opt::string("value", "#general"),
                ],
            )],
            "not a channel",
        ),
        (
            MODERATOR,
            "case",
            vec![Opt::sub("show", vec![Opt::int("number", 99)])],
            "no case #99",
        ),
    ];
    for (invoker, command, options, expected) in cases {
        let reply = invoke(&fake, invoker, command, options).await;
        assert!(is_ephemeral(&reply), "/{command}: {reply}");
        assert!(
            content(&reply)
                .to_lowercase()
                .contains(&expected.to_lowercase()),
            "/{command} expected `{expected}`: {}",
            content(&reply)
        );
    }
    // Above the bot: a member whose role outranks the bot's (admin kicking a mod-above-bot).
    let mut guild = standard_guild(GUILD);
    guild
        .members
        .iter_mut()
        .find(|m| m.id == OTHER_MEMBER)
        .unwrap()
        .roles = vec![GUILD + 4];
    fake.add_guild(guild);
    let reply = invoke(&fake, OWNER, "kick", vec![Opt::user("user", OTHER_MEMBER)]).await;
    assert!(content(&reply).contains("below the bot's"), "{reply}");

    assert!(fake.side_effects().is_empty(), "{:?}", fake.side_effects());
    assert!(
        app.state
            .store
            .list_cases(GUILD as i64, &Default::default(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let settings = app.state.store.guild_settings(GUILD as i64).await.unwrap();
    assert_eq!(settings, Default::default());
}

#[actix_web::test]
async fn an_interaction_for_a_guild_the_bot_does_not_know_is_refused() {
    let (fake, _app) = connected().await;
    let reply = invoke_in(
        &fake,
        1_300_000_000_000_000_000,
        MODERATOR,
        "kick",
        vec![Opt::user("user", MEMBER)],
    )
    .await;
    assert!(is_ephemeral(&reply));
    assert!(content(&reply).contains("not known to the bot"), "{reply}");
    assert!(fake.side_effects().is_empty());
}

#[actix_web::test]
async fn a_temporary_ban_expires_by_itself_even_after_a_restart() {
    let fake = FakeDiscord::start().await;
    fake.add_guild(standard_guild(GUILD));
    let first = spawn_bot(&fake).await;
    wait_until_connected(&first, GUILD).await;
    let reply = invoke(
        &fake,
        MODERATOR,
        "ban",
        vec![
            Opt::user("user", MEMBER),
            Opt::string("duration", "3s"),
            Opt::string("reason", "cool off"),
        ],
    )
    .await;
    assert!(content(&reply).contains("case #1"), "{reply}");
    assert_eq!(
        fake.calls_matching("PUT", &format!("/guilds/{GUILD}/bans/{MEMBER}"))
            .len(),
        1
    );
    // Stop before it expires; a second daemon on the same database lifts it.
    first.handle.stop(true).await;
    let db_url = first.db.url.clone();
    let second = spawn_bot_with(&fake, move |env| {
        env.insert("DATABASE_URL".into(), db_url);
    })
    .await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            !fake
                .calls_matching("DELETE", &format!("/guilds/{GUILD}/bans/{MEMBER}"))
                .is_empty()
        })
        .await,
        "the ban was not lifted"
    );
    assert!(
        eventually(WAIT, || async {
            second
                .state
                .store
                .case_by_number(GUILD as i64, 2)
                .await
                .ok()
                .flatten()
                .is_some()
        })
        .await
    );
    let unban = second
        .state
        .store
        .case_by_number(GUILD as i64, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unban.action, "unban");
    assert_eq!(unban.actor_label, "system");
    assert!(
        second
            .state
            .store
            .case_by_number(GUILD as i64, 1)
            .await
            .unwrap()
            .unwrap()
            .resolved
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fake.calls_matching("DELETE", &format!("/guilds/{GUILD}/bans/"))
            .len(),
        1,
        "lifted once"
    );
}

#[actix_web::test]
async fn commands_go_to_the_dev_guild_when_one_is_configured() {
    let fake = FakeDiscord::start().await;
    fake.add_guild(standard_guild(GUILD));
    let _app = spawn_bot_with(&fake, |env| {
        env.insert("GUILDHALL_DEV_GUILD_ID".into(), GUILD.to_string());
    })
    .await;
    assert!(
        eventually(WAIT, || async {
            !fake.calls_matching("PUT", "/applications/").is_empty()
        })
        .await
    );
    let put = &fake.calls_matching("PUT", "/applications/")[0];
    assert_eq!(
        put.path,
        format!(
            "/applications/{}/guilds/{GUILD}/commands",
            fake_discord::APPLICATION_ID
        )
    );
}

#[actix_web::test]
async fn minecraft_commands_answer_not_configured_without_a_server_for_the_guild() {
    let (fake, _app) = connected().await;
    // The module is off by default.
    let reply = invoke(&fake, ADMIN, "mc", vec![Opt::sub("status", vec![])]).await;
    assert!(
        content(&reply).contains("minecraft module is disabled"),
        "{reply}"
    );
    invoke(
        &fake,
        ADMIN,
        "module",
        vec![Opt::sub("enable", vec![Opt::string("module", "minecraft")])],
    )
    .await;
    let reply = invoke(&fake, MEMBER, "mc", vec![Opt::sub("status", vec![])]).await;
    assert!(is_ephemeral(&reply));
    assert!(
        content(&reply).contains("Minecraft is not configured"),
        "{reply}"
    );
    // `/mc cmd` needs the configured role before anything else.
    let reply = invoke(
        &fake,
        ADMIN,
        "mc",
        vec![Opt::sub("cmd", vec![Opt::string("command", "stop")])],
    )
    .await;
    assert!(content(&reply).contains("Minecraft role"), "{reply}");
    assert!(fake.side_effects().is_empty());
}

#[actix_web::test]
async fn minecraft_commands_reach_the_guilds_server_over_rcon_and_are_audited() {
    use crate::common::fake_rcon::FakeRcon;
    let rcon = FakeRcon::start("mc-secret-pw");
    rcon.set_players(&["Steve", "Alex"]);
    let rcon_env = rcon.env();
    let (fake, app) = connected_with(|env| env.extend(rcon_env)).await;
    invoke(
        &fake,
        ADMIN,
        "module",
        vec![Opt::sub("enable", vec![Opt::string("module", "minecraft")])],
    )
    .await;

    // Any member may look; the answer comes from the server's `list`.
    let reply = invoke(&fake, MEMBER, "mc", vec![Opt::sub("players", vec![])]).await;
    let text = content(&reply);
    assert!(text.contains("Steve") && text.contains("Alex"), "{reply}");

    // Moderators (here: a member with Discord administrator rights) may speak and whitelist.
    let reply = invoke(
        &fake,
        ADMIN,
        "mc",
        vec![Opt::sub(
            "say",
            vec![Opt::string("text", "hello from discord")],
        )],
    )
    .await;
    assert!(content(&reply).contains("Said"), "{reply}");
    let whitelist = Opt {
        name: "whitelist".into(),
        kind: 2,
        value: Value::Array(vec![
            Opt::sub("add", vec![Opt::string("name", "Notch")]).to_json(),
        ]),
    };
    invoke(&fake, ADMIN, "mc", vec![whitelist]).await;
    let sent = rcon.commands();
    assert!(
        sent.iter().any(|c| c == "say hello from discord"),
        "{sent:?}"
    );
    assert!(sent.iter().any(|c| c == "whitelist add Notch"), "{sent:?}");

    // A plain member may not speak in game: refused before anything is sent.
    let before = rcon.commands().len();
    let reply = invoke(
        &fake,
        MEMBER,
        "mc",
        vec![Opt::sub("say", vec![Opt::string("text", "spam")])],
    )
    .await;
    assert!(is_ephemeral(&reply), "{reply}");
    assert_eq!(rcon.commands().len(), before, "nothing sent: {reply}");

    // Each command that ran has its audit entry, by the Discord user, naming the server.
    let entries = guildhall::store::audit::list(
        &app.state.store,
        &guildhall::store::audit::AuditFilter {
            action: Some("minecraft.command".into()),
            limit: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let by_admin: Vec<_> = entries
        .iter()
        .filter(|e| e.actor_label == format!("discord:{ADMIN}"))
        .collect();
    assert!(by_admin.len() >= 2, "{entries:#?}");
    assert!(
        by_admin
            .iter()
            .all(|e| e.target.as_deref() == Some("default")
                || e.target.as_deref().is_some_and(|t| t.contains("default"))),
        "{by_admin:#?}"
    );
}

#[actix_web::test]
async fn a_reply_discord_does_not_take_is_counted_as_an_error_not_ok() {
    let (fake, app) = connected().await;
    let counted = |outcome: &'static str| {
        let app = &app;
        async move {
            app.metric(&format!(
                "guildhall_discord_commands_total{{command=\"help\",outcome=\"{outcome}\"}}"
            ))
            .await
            .unwrap_or(0.0)
        }
    };
    invoke(&fake, MEMBER, "help", vec![]).await;
    assert!(eventually(WAIT, || async { counted("ok").await == 1.0 }).await);

    fake.set_interaction_callback_status(Some(500));
    invoke(&fake, MEMBER, "help", vec![]).await;
    assert!(
        eventually(WAIT, || async { counted("error").await == 1.0 }).await,
        "ok: {}, error: {}",
        counted("ok").await,
        counted("error").await
    );
    assert_eq!(
        counted("ok").await,
        1.0,
        "the undelivered reply is not an ok"
    );
}

#[actix_web::test]
async fn the_ban_sweeper_is_supervised_and_keeps_lifting_bans_after_a_restart() {
    let (fake, app) = connected().await;
    restart(&app.state.ban_sweeper, "test").await;
    assert!(
        eventually(WAIT, || async {
            app.metric("guildhall_actor_restarts_total{actor=\"ban_sweeper\"}")
                .await
                >= Some(1.0)
        })
        .await
    );
    let reply = invoke(
        &fake,
        MODERATOR,
        "ban",
        vec![Opt::user("user", MEMBER), Opt::string("duration", "2s")],
    )
    .await;
    assert!(content(&reply).contains("case #1"), "{reply}");
    assert!(
        eventually(Duration::from_secs(20), || async {
            !fake
                .calls_matching("DELETE", &format!("/guilds/{GUILD}/bans/{MEMBER}"))
                .is_empty()
        })
        .await,
        "the restarted sweeper did not lift the ban"
    );
    // The lifting's own case is recorded once Discord has answered.
    assert!(
        eventually(WAIT, || async {
            app.state
                .store
                .case_by_number(GUILD as i64, 2)
                .await
                .ok()
                .flatten()
                .is_some_and(|case| case.action == "unban")
        })
        .await
    );
}

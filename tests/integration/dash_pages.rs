//! The guild, Minecraft and account pages without a browser: each form works as a plain post
//! (CSRF field, 303 and a flash), errors come back beside their fields with the input kept,
//! controls the user lacks are absent, and a forged post is refused by the server anyway.

use guildhall::auth::totp;
use guildhall::store::cases::NewCase;
use guildhall::store::guilds::GuildUpsert;
use reqwest::StatusCode;

use crate::common::TestApp;
use crate::common::auth::{PASSWORD, create_user};
use crate::common::fake_rcon::FakeRcon;
use crate::common::pages::{Visitor, hidden_value, location};
use crate::common::{audit_details, spawn_app};
use crate::minecraft::app_with;

pub(crate) const GUILD: i64 = 333_333_333_333_333_333;
const OTHER_GUILD: i64 = 444_444_444_444_444_444;

pub(crate) async fn add_guild(app: &TestApp, id: i64, name: &str) {
    app.state
        .store
        .upsert_guild(&GuildUpsert {
            id,
            name: name.into(),
            icon: None,
            owner_id: Some(1),
            member_count: Some(5),
        })
        .await
        .unwrap();
}

/// A visitor signed in as a fresh user holding `roles`, and their CSRF token.
/// The log channel stored in the settings of [`GUILD`].
pub(crate) async fn saved_log_channel(app: &TestApp) -> Option<i64> {
    let saved = app
        .state
        .guilds
        .settings(guildhall::domain::Snowflake::new(GUILD as u64).unwrap())
        .await
        .unwrap();
    saved.settings.log_channel.map(|s| s.as_i64())
}

async fn signed_in<'a>(app: &'a TestApp, roles: &[(&str, i64)]) -> (Visitor<'a>, String) {
    let (_, username) = create_user(app, "page", roles).await;
    let mut visitor = Visitor::new(app);
    visitor.sign_in(&username, PASSWORD).await;
    let csrf = visitor.csrf().await;
    (visitor, csrf)
}

#[actix_web::test]
async fn a_module_toggled_on_the_guild_page_is_saved_and_shown_so_after_a_reload() {
    let app = spawn_app().await;
    add_guild(&app, GUILD, "Toggles").await;
    let (mut admin, csrf) = signed_in(&app, &[("admin", 0)]).await;
    let page = admin.page(&format!("/guilds/{GUILD}")).await;
    assert!(page.contains("Turn moderation off"), "enabled by default");

    let response = admin
        .post_form(
            &format!("/guilds/{GUILD}/modules/moderation"),
            &[("csrf_token", &csrf), ("enabled", "false")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/guilds/{GUILD}#modules"));
    let page = admin.page(&format!("/guilds/{GUILD}")).await;
    assert!(page.contains("Module moderation turned off"), "the flash");
    assert!(page.contains("Turn moderation on"), "{page}");
    let config = app.state.guild_config.get(GUILD).await.unwrap();
    assert!(!config.module_enabled(guildhall::domain::settings::ModuleName::Moderation));
}

#[actix_web::test]
async fn a_settings_error_is_shown_beside_its_field_with_the_input_kept_then_a_correct_save_is_stored()
 {
    let app = spawn_app().await;
    add_guild(&app, GUILD, "Settings").await;
    let (mut admin, csrf) = signed_in(&app, &[("admin", 0)]).await;
    let page = admin.page(&format!("/guilds/{GUILD}")).await;
    let version = hidden_value(&page, "version").unwrap();

    let response = admin
        .post_form(
            &format!("/guilds/{GUILD}"),
            &[
                ("csrf_token", &csrf),
                ("version", &version),
                ("log_channel", "not-a-channel"),
                ("welcome_message", "Hello {user}, kept as typed"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"id="log_channel-error""#), "{html}");
    assert!(html.contains(r#"aria-invalid="true""#));
    assert!(
        html.contains("value=\"not-a-channel\""),
        "the input is kept"
    );
    assert!(html.contains("Hello {user}, kept as typed"));
    assert_eq!(
        app.state
            .guilds
            .settings(guildhall::domain::Snowflake::new(GUILD as u64).unwrap())
            .await
            .unwrap()
            .settings,
        Default::default(),
        "nothing was saved"
    );

    let response = admin
        .post_form(
            &format!("/guilds/{GUILD}"),
            &[
                ("csrf_token", &csrf),
                ("version", &version),
                ("log_channel", "123456789012345678"),
                ("welcome_message", "Hello {user}"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = admin.page(&format!("/guilds/{GUILD}")).await;
    assert!(page.contains("Settings saved"));
    assert!(page.contains("value=\"123456789012345678\""), "{page}");
    assert_eq!(saved_log_channel(&app).await, Some(123_456_789_012_345_678));

    // The form of a stale version is refused, not silently overwritten.
    let response = admin
        .post_form(
            &format!("/guilds/{GUILD}"),
            &[
                ("csrf_token", &csrf),
                ("version", &version),
                ("log_channel", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn a_guild_scoped_moderator_sees_only_their_guild_and_no_control_they_lack() {
    let app = spawn_app().await;
    add_guild(&app, GUILD, "Theirs").await;
    add_guild(&app, OTHER_GUILD, "Another").await;
    let (mut moderator, csrf) = signed_in(&app, &[("moderator", GUILD)]).await;
    let list = moderator.page("/guilds").await;
    assert!(list.contains("Theirs"));
    assert!(!list.contains("Another"), "{list}");
    let page = moderator.page(&format!("/guilds/{GUILD}")).await;
    assert!(page.contains("Moderation action"), "moderators act");
    assert!(!page.contains("Save settings"), "settings are read-only");
    assert!(!page.contains("Turn moderation"), "no module toggles");
    let other = moderator.get(&format!("/guilds/{OTHER_GUILD}")).await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    // A forged toggle from their session is refused and changes nothing.
    let forged = moderator
        .post_form(
            &format!("/guilds/{GUILD}/modules/moderation"),
            &[("csrf_token", &csrf), ("enabled", "false")],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let config = app.state.guild_config.get(GUILD).await.unwrap();
    assert!(config.module_enabled(guildhall::domain::settings::ModuleName::Moderation));
}

#[actix_web::test]
async fn a_moderation_action_asks_for_confirmation_before_anything_happens() {
    let app = spawn_app().await;
    add_guild(&app, GUILD, "Confirm").await;
    let (mut moderator, csrf) = signed_in(&app, &[("moderator", 0)]).await;
    let response = moderator
        .post_form(
            &format!("/guilds/{GUILD}/moderation"),
            &[
                ("csrf_token", &csrf),
                ("action", "timeout"),
                ("user_id", "555555555555555555"),
                ("reason", "spam"),
                ("duration", "10m"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("Confirm: timeout"), "{html}");
    assert!(html.contains(r#"name="confirm" value="yes""#));
    assert_eq!(hidden_value(&html, "duration").as_deref(), Some("10m"));
    let cases = app
        .state
        .store
        .list_cases(GUILD, &Default::default(), 10)
        .await
        .unwrap();
    assert!(cases.is_empty(), "nothing happened yet");

    // A bad field is shown beside it before any confirmation.
    let response = moderator
        .post_form(
            &format!("/guilds/{GUILD}/moderation"),
            &[
                ("csrf_token", &csrf),
                ("action", "timeout"),
                ("user_id", "someone"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"id="user_id-error""#), "{html}");
}

#[actix_web::test]
async fn cases_are_filtered_by_user_action_and_reason_and_a_reason_edit_is_saved_and_audited() {
    let app = spawn_app().await;
    add_guild(&app, GUILD, "Cases").await;
    for (action, user, reason) in [
        ("warn", 10, "Spamming links"),
        ("kick", 11, "raid"),
        ("warn", 11, "caps"),
    ] {
        app.state
            .store
            .create_case(&NewCase {
                guild_id: GUILD,
                action: action.into(),
                target_user_id: user,
                moderator_id: None,
                actor_label: "test".into(),
                reason: Some(reason.into()),
                expires_at: None,
            })
            .await
            .unwrap();
    }
    let (mut moderator, csrf) = signed_in(&app, &[("moderator", GUILD)]).await;
    let rows = |html: &str| html.matches(&format!("/guilds/{GUILD}/cases/")).count();
    let all = moderator.page(&format!("/guilds/{GUILD}")).await;
    assert_eq!(rows(&all), 3);
    let warns = moderator
        .page(&format!("/guilds/{GUILD}?action=warn"))
        .await;
    assert_eq!(rows(&warns), 2);
    let user = moderator
        .page(&format!("/guilds/{GUILD}?user=11&action=warn"))
        .await;
    assert_eq!(rows(&user), 1);
    let search = moderator.page(&format!("/guilds/{GUILD}?q=SPAM")).await;
    assert_eq!(rows(&search), 1, "case-insensitive");
    assert!(search.contains("Spamming links"));

    let detail = moderator.page(&format!("/guilds/{GUILD}/cases/2")).await;
    assert!(detail.contains("raid"));
    let response = moderator
        .post_form(
            &format!("/guilds/{GUILD}/cases/2/reason"),
            &[("csrf_token", &csrf), ("reason", "raid with alts")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let detail = moderator.page(&format!("/guilds/{GUILD}/cases/2")).await;
    assert!(detail.contains("raid with alts"));
    let audited = audit_details(&app, "moderation.case_reason").await;
    assert_eq!(audited.len(), 1);
    let empty = moderator
        .post_form(
            &format!("/guilds/{GUILD}/cases/2/reason"),
            &[("csrf_token", &csrf), ("reason", "  ")],
        )
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let missing = moderator.get(&format!("/guilds/{GUILD}/cases/99")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_console_command_reaches_the_fake_rcon_server_and_its_output_shows() {
    let fake = FakeRcon::start(crate::minecraft::PASSWORD);
    let app = app_with(&fake, crate::minecraft::PASSWORD).await;
    let (mut admin, csrf) = signed_in(&app, &[("admin", 0)]).await;
    let page = admin.page("/minecraft/servers/default").await;
    assert!(page.contains(r#"id="console""#));

    // Without JavaScript: a post, a redirect, and the transcript on the page.
    let response = admin
        .post_form(
            "/minecraft/servers/default/console",
            &[("csrf_token", &csrf), ("command", "list")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(fake.commands(), ["list"]);
    let page = admin.page("/minecraft/servers/default").await;
    assert!(page.contains("players online"), "{page}");
    assert!(
        page.contains(r#"<option value="list">"#),
        "offered as history"
    );

    // With htmx: only the transcript line comes back.
    let response = admin
        .post_form_with(
            "/minecraft/servers/default/console",
            &[("csrf_token", &csrf), ("command", "echo hello")],
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let fragment = response.text().await.unwrap();
    assert!(fragment.starts_with("<li>"), "{fragment}");
    assert!(
        fragment.contains("echo hello") && fragment.contains("<pre>hello</pre>"),
        "{fragment}"
    );
    assert_eq!(fake.commands(), ["list", "echo hello"]);
}

/// The password typed into either server form: it must never appear in a page.
const RCON_SECRET: &str = "page-typed-rcon-secret";

async fn stored_password(app: &TestApp, name: &str) -> String {
    sqlx::query_scalar("SELECT password_encrypted FROM rcon_servers WHERE name = $1")
        .bind(name)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

/// The fields the add and edit forms share (the add form also names the server).
fn server_fields<'a>(
    csrf: &'a str,
    port: &'a str,
    password: &'a str,
    guilds: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", csrf),
        ("host", "localhost"),
        ("port", port),
        ("password", password),
        ("guilds", guilds),
        ("enabled", "on"),
    ]
}

/// A command typed into the console of the server `creative`.
async fn console(admin: &mut Visitor<'_>, csrf: &str, command: &str) -> StatusCode {
    admin
        .post_form(
            "/minecraft/servers/creative/console",
            &[("csrf_token", csrf), ("command", command)],
        )
        .await
        .status()
}

#[actix_web::test]
async fn a_server_is_added_and_edited_from_the_pages_and_its_password_is_never_sent_back() {
    let fake = FakeRcon::start(RCON_SECRET);
    let app = spawn_app().await;
    let (mut admin, csrf) = signed_in(&app, &[("admin", 0)]).await;
    let port = fake.port.to_string();
    const GUILDS: &str = "123456789012345678";

    // A bad port: named beside its field, the other input kept, the password not.
    let mut fields = server_fields(&csrf, "not a port", RCON_SECRET, GUILDS);
    fields.push(("name", "creative"));
    let refused = admin.post_form("/minecraft", &fields).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(html.contains(r#"id="port-error""#), "{html}");
    assert!(html.contains(r#"value="creative""#), "the name is kept");
    assert!(
        html.contains(&format!(r#"value="{GUILDS}""#)),
        "the guilds are kept"
    );
    assert!(!html.contains(RCON_SECRET), "the password is not sent back");
    assert!(
        app.state.minecraft.servers().await.unwrap().is_empty(),
        "nothing stored"
    );

    let mut fields = server_fields(&csrf, &port, RCON_SECRET, GUILDS);
    fields.push(("name", "creative"));
    let added = admin.post_form("/minecraft", &fields).await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&added), "/minecraft/servers/creative");
    let stored = stored_password(&app, "creative").await;
    assert!(!stored.contains(RCON_SECRET), "stored encrypted");
    let page = admin.page("/minecraft/servers/creative").await;
    assert!(page.contains("Server creative added"), "the flash");
    assert!(
        !page.contains(RCON_SECRET) && !page.contains(&stored),
        "{page}"
    );
    assert!(page.contains(r#"id="edit-password""#), "the edit form");
    // The stored password works: a console command reaches the server.
    assert_eq!(
        console(&mut admin, &csrf, "list").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(fake.commands(), ["list"]);

    // An edit with a bad port and a new password typed: refused, nothing changed, the
    // password not sent back.
    let edit = "/minecraft/servers/creative";
    let fields = server_fields(&csrf, "70000", "another-typed-secret", "");
    let refused = admin.post_form(edit, &fields).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(html.contains(r#"id="edit-port-error""#), "{html}");
    assert!(html.contains(r#"value="70000""#), "the typed port is kept");
    assert!(!html.contains("another-typed-secret") && !html.contains(RCON_SECRET));
    assert_eq!(stored_password(&app, "creative").await, stored);

    // A blank password keeps the stored one; the guild link changes.
    let fields = server_fields(&csrf, &port, "", "876543210987654321");
    let saved = admin.post_form(edit, &fields).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&saved), edit);
    assert_eq!(stored_password(&app, "creative").await, stored, "kept");
    let server = app
        .state
        .minecraft
        .server_for_guild(876_543_210_987_654_321)
        .await
        .unwrap();
    assert_eq!(server.as_str(), "creative");
    let page = admin.page(edit).await;
    assert!(page.contains("Server saved"), "the flash");
    assert!(page.contains(r#"value="876543210987654321""#), "{page}");
    assert!(!page.contains(RCON_SECRET));
    assert_eq!(
        console(&mut admin, &csrf, "list").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        fake.commands(),
        ["list", "list"],
        "the kept password still works"
    );
}

#[actix_web::test]
async fn a_viewer_sees_no_minecraft_controls_and_a_forged_command_from_their_session_is_refused() {
    let fake = FakeRcon::start(crate::minecraft::PASSWORD);
    let app = app_with(&fake, crate::minecraft::PASSWORD).await;
    let (mut viewer, csrf) = signed_in(&app, &[("viewer", 0)]).await;
    let list = viewer.page("/minecraft").await;
    assert!(!list.contains("Add a server"));
    assert!(
        !list.contains(r#"action="/minecraft/policy/"#),
        "policy is read-only"
    );
    let page = viewer.page("/minecraft/servers/default").await;
    assert!(!page.contains(r#"id="console""#));
    assert!(!page.contains("New schedule"));
    for (path, fields) in [
        (
            "/minecraft/servers/default/console",
            vec![("command", "op Eve")],
        ),
        ("/minecraft/policy/viewer", vec![("allowed", "*")]),
        (
            "/minecraft/servers/default/schedules",
            vec![("cron", "0 4 * * *"), ("command", "stop")],
        ),
    ] {
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend(fields);
        let response = viewer.post_form(path, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert!(fake.commands().is_empty());
    // Without the CSRF field the post is refused as unauthenticated, whoever sends it.
    let (mut admin, _) = signed_in(&app, &[("admin", 0)]).await;
    let response = admin
        .post_form("/minecraft/servers/default/console", &[("command", "stop")])
        .await;
    assert_ne!(response.status(), StatusCode::SEE_OTHER);
    assert!(fake.commands().is_empty());
}

#[actix_web::test]
async fn the_policy_form_saves_a_role_policy_and_a_bad_entry_is_shown_beside_it() {
    let app = spawn_app().await;
    let (mut admin, csrf) = signed_in(&app, &[("admin", 0)]).await;
    let response = admin
        .post_form(
            "/minecraft/policy/viewer",
            &[("csrf_token", &csrf), ("allowed", "list, /Time")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let policy = app.state.minecraft.policy("viewer").await.unwrap();
    assert_eq!(policy.allowed, ["list", "time"]);
    let response = admin
        .post_form(
            "/minecraft/policy/viewer",
            &[("csrf_token", &csrf), ("allowed", "list op;stop")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"id="allowed-viewer-error""#), "{html}");
    assert!(html.contains(r#"value="list op;stop""#), "kept as typed");
    assert_eq!(
        app.state.minecraft.policy("viewer").await.unwrap().allowed,
        ["list", "time"]
    );
}

#[actix_web::test]
async fn schedules_are_created_paused_resumed_and_deleted_from_the_server_page() {
    let fake = FakeRcon::start(crate::minecraft::PASSWORD);
    let app = app_with(&fake, crate::minecraft::PASSWORD).await;
    let (mut admin, csrf) = signed_in(&app, &[("admin", 0)]).await;
    let bad = admin
        .post_form(
            "/minecraft/servers/default/schedules",
            &[
                ("csrf_token", &csrf),
                ("cron", "every day"),
                ("command", "save-all"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.unwrap();
    assert!(html.contains(r#"id="cron-error""#), "{html}");
    assert!(html.contains(r#"value="save-all""#));

    let created = admin
        .post_form(
            "/minecraft/servers/default/schedules",
            &[
                ("csrf_token", &csrf),
                ("cron", "0 4 * * *"),
                ("command", "save-all"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let name = guildhall::minecraft::ServerName::parse("default").unwrap();
    let schedules = app.state.minecraft.schedules(&name).await.unwrap();
    assert_eq!(schedules.len(), 1);
    let path = format!("/minecraft/servers/default/schedules/{}", schedules[0].id);
    for (op, enabled) in [("pause", false), ("resume", true)] {
        let response = admin
            .post_form(&path, &[("csrf_token", &csrf), ("op", op)])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{op}");
        let now = app.state.minecraft.schedules(&name).await.unwrap();
        assert_eq!(now[0].enabled, enabled, "{op}");
    }
    let page = admin.page("/minecraft/servers/default").await;
    assert!(
        page.contains("save-all") && page.contains("never"),
        "{page}"
    );
    let response = admin
        .post_form(&path, &[("csrf_token", &csrf), ("op", "delete")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        app.state
            .minecraft
            .schedules(&name)
            .await
            .unwrap()
            .is_empty()
    );
}

#[actix_web::test]
async fn mfa_is_enrolled_from_the_account_page_with_a_png_qr_code_and_recovery_codes_shown_once_and_turned_off_there()
 {
    let app = spawn_app().await;
    let (user_id, username) = create_user(&app, "page", &[("viewer", 0)]).await;
    let mut user = Visitor::new(&app);
    user.sign_in(&username, PASSWORD).await;
    let csrf = user.csrf().await;
    let page = user.page("/account").await;
    assert!(page.contains("Set up MFA"));
    let qr = user.get("/account/mfa/qr.png").await;
    assert_eq!(qr.status(), StatusCode::CONFLICT, "no enrolment yet");

    let response = user
        .post_form("/account/mfa/start", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = user.page("/account").await;
    assert!(page.contains(r#"src="/account/mfa/qr.png""#));
    let qr = user.get("/account/mfa/qr.png").await;
    assert_eq!(qr.status(), StatusCode::OK);
    assert_eq!(qr.headers()["content-type"], "image/png");
    assert_eq!(qr.headers()["cache-control"], "no-store");
    let png = qr.bytes().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));

    let wrong = user
        .post_form(
            "/account/mfa/confirm",
            &[("csrf_token", &csrf), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text().await.unwrap().contains(r#"id="code-error""#));

    let secret = page
        .split("Key: <code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap()
        .to_owned();
    let code = totp::code_at(&secret, jsonwebtoken::get_current_timestamp()).unwrap();
    let enabled = user
        .post_form(
            "/account/mfa/confirm",
            &[("csrf_token", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(enabled.status(), StatusCode::OK);
    let html = enabled.text().await.unwrap();
    assert_eq!(html.matches("<li><code>").count(), 10, "ten recovery codes");
    assert!(html.contains("shown only now"));
    // The new session (cookie kept by the visitor) works; the codes are never shown again.
    let page = user.page("/account").await;
    assert!(page.contains("Turn MFA off"));
    assert!(!page.contains("shown only now"));

    // Turning it off takes the password and a second factor; a recovery code will do.
    let recovery = html
        .split("<li><code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap()
        .to_owned();
    let csrf = user.csrf().await;
    for (password, code, field) in [
        ("not my password", recovery.as_str(), "password-error"),
        (PASSWORD, "000000", "code-error"),
    ] {
        let refused = user
            .post_form(
                "/account/mfa/disable",
                &[
                    ("csrf_token", &csrf),
                    ("password", password),
                    ("code", code),
                ],
            )
            .await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = refused.text().await.unwrap();
        assert!(html.contains(&format!(r#"id="{field}""#)), "{html}");
        assert!(
            !html.contains("not my password"),
            "a password is never sent back"
        );
        assert!(mfa_enabled(&app, user_id).await, "still on after a refusal");
    }
    let off = user
        .post_form(
            "/account/mfa/disable",
            &[
                ("csrf_token", &csrf),
                ("password", PASSWORD),
                ("code", &recovery),
            ],
        )
        .await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&off), "/account");
    assert!(!mfa_enabled(&app, user_id).await);
    // The visitor holds the new session the answer set; the page offers enrolment again.
    let page = user.page("/account").await;
    assert!(page.contains("MFA is off"), "the flash");
    assert!(page.contains("Set up MFA"), "{page}");
    let actions = audit_details(&app, "auth.mfa_disabled").await;
    assert_eq!(actions.len(), 1, "audited once");
}

async fn mfa_enabled(app: &TestApp, user_id: i64) -> bool {
    guildhall::store::users::credentials_by_id(&app.state.store, user_id)
        .await
        .unwrap()
        .unwrap()
        .mfa_enabled
}

#[actix_web::test]
async fn a_wrong_current_password_is_shown_beside_its_field_and_a_right_one_changes_it() {
    let app = spawn_app().await;
    let (mut user, csrf) = signed_in(&app, &[("viewer", 0)]).await;
    let response = user
        .post_form(
            "/account/password",
            &[
                ("csrf_token", &csrf),
                ("current_password", "not my password"),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains(r#"id="current_password-error""#)
    );
    let response = user
        .post_form(
            "/account/password",
            &[
                ("csrf_token", &csrf),
                ("current_password", PASSWORD),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = user.page("/account").await;
    assert!(page.contains("Password changed"), "the new session works");
}

#[actix_web::test]
async fn an_api_key_created_on_the_page_is_shown_once_works_and_is_revoked_from_the_list() {
    let app = spawn_app().await;
    let (mut admin, csrf) = signed_in(&app, &[("admin", 0)]).await;
    let bad = admin
        .post_form(
            "/admin/api-keys",
            &[
                ("csrf_token", &csrf),
                ("name", "ci"),
                ("permissions", "bot.fly"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains(r#"value="ci""#), "kept");

    let created = admin
        .post_form(
            "/admin/api-keys",
            &[
                ("csrf_token", &csrf),
                ("name", "ci"),
                ("permissions", "bot.view"),
                ("permissions", "audit.read"),
                ("expires_days", "30"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let html = created.text().await.unwrap();
    let key = html
        .split(r#"id="new-api-key">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    let (status, _) = app.call("GET", "/api/v1/audit", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK, "the key works");
    let list = admin.page("/admin/api-keys").await;
    assert!(!list.contains(&key), "shown only once");
    assert!(list.contains("Revoke ci"));

    let keys = guildhall::store::api_keys::list(&app.state.store, None)
        .await
        .unwrap();
    let response = admin
        .post_form(
            &format!("/admin/api-keys/{}/revoke", keys[0].id),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let list = admin.page("/admin/api-keys").await;
    assert!(
        list.contains("revoked") && !list.contains("Revoke ci"),
        "{list}"
    );
    assert!(
        crate::common::eventually(std::time::Duration::from_secs(5), || async {
            app.call("GET", "/api/v1/audit", Some(&key), None).await.0 == StatusCode::UNAUTHORIZED
        })
        .await,
        "the revoked key is refused"
    );
}

#[actix_web::test]
async fn a_viewer_sees_no_admin_controls_and_a_forged_admin_request_from_their_session_is_refused()
{
    let app = spawn_app().await;
    let (mut viewer, csrf) = signed_in(&app, &[("viewer", 0)]).await;
    let overview = viewer.page("/").await;
    assert!(
        !overview.contains(r#"href="/admin""#),
        "no Administration entry"
    );
    for path in ["/admin", "/admin/roles", "/admin/api-keys"] {
        assert_eq!(
            viewer.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let users_before = guildhall::store::users::list(&app.state.store)
        .await
        .unwrap()
        .len();
    for (path, fields) in [
        (
            "/admin/users",
            vec![
                ("username", "intruder"),
                ("password", "a long enough password"),
                ("roles", "admin"),
            ],
        ),
        ("/admin/instance", vec![("registration_open", "on")]),
        (
            "/admin/api-keys",
            vec![("name", "x"), ("permissions", "bot.view")],
        ),
        ("/admin/invites", vec![]),
        (
            "/admin/roles",
            vec![("name", "x"), ("permissions", "bot.view")],
        ),
    ] {
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend(fields);
        let response = viewer.post_form(path, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let users_after = guildhall::store::users::list(&app.state.store)
        .await
        .unwrap()
        .len();
    assert_eq!(users_before, users_after);
    assert!(
        !guildhall::store::instance_settings::registration_open(&app.state.store)
            .await
            .unwrap()
    );
}

#[actix_web::test]
async fn users_are_created_given_guild_scoped_roles_and_disabled_from_the_administration_page() {
    let app = spawn_app().await;
    let (mut admin, csrf) = signed_in(&app, &[("admin", 0)]).await;
    let bad = admin
        .post_form(
            "/admin/users",
            &[
                ("csrf_token", &csrf),
                ("username", "x"),
                ("password", "a long enough password"),
                ("roles", "viewer"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.unwrap();
    assert!(html.contains(r#"id="username-error""#), "{html}");
    assert!(
        !html.contains("a long enough password"),
        "the password is not sent back"
    );

    let created = admin
        .post_form(
            "/admin/users",
            &[
                ("csrf_token", &csrf),
                ("username", "newmod"),
                ("password", "a long enough password"),
                ("roles", "moderator@123456789012345678"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let user = guildhall::store::users::list(&app.state.store)
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.username == "newmod")
        .unwrap();
    assert_eq!(user.roles[0].guild_id, 123_456_789_012_345_678);
    let page = admin.page("/admin").await;
    assert!(page.contains("moderator@123456789012345678"));

    let response = admin
        .post_form(
            &format!("/admin/users/{}", user.id),
            &[("csrf_token", &csrf), ("op", "disable")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        guildhall::store::users::summary(&app.state.store, user.id)
            .await
            .unwrap()
            .disabled
    );

    let invite = admin
        .post_form("/admin/invites", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(invite.status(), StatusCode::OK);
    assert!(invite.text().await.unwrap().contains(r#"id="invite-code""#));
    let saved = admin
        .post_form(
            "/admin/instance",
            &[("csrf_token", &csrf), ("registration_open", "on")],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert!(
        guildhall::store::instance_settings::registration_open(&app.state.store)
            .await
            .unwrap()
    );
}

#[actix_web::test]
async fn a_role_is_created_and_its_permissions_changed_from_the_roles_page() {
    let app = spawn_app().await;
    let (mut admin, csrf) = signed_in(&app, &[("admin", 0)]).await;
    let created = admin
        .post_form(
            "/admin/roles",
            &[
                ("csrf_token", &csrf),
                ("name", "auditor"),
                ("permissions", "audit.read"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let role = guildhall::store::roles::find_by_name(&app.state.store, "auditor")
        .await
        .unwrap()
        .unwrap();
    let saved = admin
        .post_form(
            &format!("/admin/roles/{}", role.id),
            &[
                ("csrf_token", &csrf),
                ("description", "reads"),
                ("permissions", "audit.read"),
                ("permissions", "logs.view"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let role = guildhall::store::roles::find(&app.state.store, role.id)
        .await
        .unwrap();
    assert_eq!(role.permissions.len(), 2);
    assert_eq!(role.description, "reads");
    let bad = admin
        .post_form(
            "/admin/roles",
            &[
                ("csrf_token", &csrf),
                ("name", "Bad Name"),
                ("permissions", "audit.read"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains(r#"id="name-error""#));
}

//! The links page (`/guilds/{id}/minecraft/links`) without a browser: an admin links a member
//! with a plain form post and unlinks after a confirmation page, through the same service as
//! the API (the fake Minecraft server's whitelist follows); refusals show beside their field
//! with the input kept; a viewer sees the links but no control, and the server refuses their
//! posts anyway. The browser flow is in `tests/integration/browser/links_flow.rs`.

use guildhall::clock::Clock;
use guildhall::store::minecraft_links as links;
use reqwest::StatusCode;
use serde_json::json;

use super::GUILD;
use super::links::{ROLE, links_of, world};
use crate::common::auth::{PASSWORD, create_user};
use crate::common::fake_discord::{MEMBER, MODERATOR, OTHER_MEMBER};
use crate::common::fake_rcon::FakeRcon;
use crate::common::pages::{Visitor, hidden_value, location};
use crate::common::{TestApp, audit_details};

/// The guild's id, for the browser flow (the `discord` module's `GUILD`).
pub(crate) const GUILD_ID: u64 = GUILD;

/// A visitor signed in as a fresh user holding `roles`, and their CSRF token.
async fn signed_in<'a>(app: &'a TestApp, roles: &[(&str, i64)]) -> (Visitor<'a>, String) {
    let (_, username) = create_user(app, "links", roles).await;
    let mut visitor = Visitor::new(app);
    visitor.sign_in(&username, PASSWORD).await;
    let csrf = visitor.csrf().await;
    (visitor, csrf)
}

/// Posts the page's link form as `visitor` would.
async fn post_link(
    visitor: &mut Visitor<'_>,
    csrf: &str,
    user: &str,
    minecraft_name: &str,
) -> reqwest::Response {
    visitor
        .post_form(
            &page_path(),
            &[
                ("csrf_token", csrf),
                ("user_id", user),
                ("minecraft_name", minecraft_name),
            ],
        )
        .await
}

fn page_path() -> String {
    format!("/guilds/{GUILD}/minecraft/links")
}

fn unlink_path(user: u64) -> String {
    format!("/guilds/{GUILD}/minecraft/links/{user}/unlink")
}

async fn linked_name(app: &TestApp, user: u64) -> Option<String> {
    links::of_member(&app.state.store, GUILD as i64, user as i64)
        .await
        .unwrap()
        .map(|l| l.minecraft_name)
}

#[actix_web::test]
async fn an_admin_links_a_member_from_the_page_and_unlinks_them_after_a_confirmation_step() {
    let w = world(Clock::System).await;
    let (mut admin, csrf) = signed_in(&w.app, &[("admin", 0)]).await;

    // The guild page leads to the links page, which starts empty with the link form.
    let guild_page = admin.page(&format!("/guilds/{GUILD}")).await;
    assert!(guild_page.contains(&format!(r#"href="{}""#, page_path())));
    let page = admin.page(&page_path()).await;
    assert!(page.contains("No Minecraft account is linked"), "{page}");
    assert!(page.contains(&format!(r#"action="{}""#, page_path())));
    assert!(page.contains(&ROLE.to_string()), "the Minecraft role shown");
    assert!(page.contains("not run yet"), "no reconciliation yet");

    let response = post_link(&mut admin, &csrf, &MEMBER.to_string(), "Steve").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), page_path());
    assert!(w.rcon.is_whitelisted("Steve"), "{:?}", w.rcon.commands());
    let page = admin.page(&page_path()).await;
    assert!(
        page.contains(&format!(
            "Linked Steve to member {MEMBER} and added to the whitelist"
        )),
        "the flash: {page}"
    );
    assert!(page.contains(r#"data-link="Steve""#), "{page}");
    assert!(page.contains(r#"<span class="pill pill-up">yes</span>"#));
    // The same link the API lists, made by the same service (one link entry, audited).
    let body = links_of(&w).await;
    assert_eq!(body["links"][0]["minecraft_name"], "Steve", "{body}");
    assert_eq!(body["links"][0]["whitelisted"], true, "{body}");
    assert_eq!(audit_details(&w.app, "minecraft.link").await.len(), 1);

    // A reconciliation's result shows on the page.
    let (status, _) = w
        .app
        .call(
            "POST",
            &format!("/api/v1/guilds/{GUILD}/minecraft/whitelist/reconcile"),
            Some(&w.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = admin.page(&page_path()).await;
    assert!(
        page.contains("0 added, 0 removed, 0 failed, 0 left alone"),
        "{page}"
    );

    // Unlinking asks first: neither the confirmation page nor a post without `confirm`
    // changes anything.
    let confirm = admin.page(&unlink_path(MEMBER)).await;
    assert!(confirm.contains("Unlink Steve?"), "{confirm}");
    assert!(confirm.contains(r#"name="confirm" value="yes""#));
    let response = admin
        .post_form(&unlink_path(MEMBER), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("Unlink Steve?"));
    assert_eq!(linked_name(&w.app, MEMBER).await.as_deref(), Some("Steve"));
    assert!(w.rcon.is_whitelisted("Steve"));

    let response = admin
        .post_form(
            &unlink_path(MEMBER),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), page_path());
    assert!(!w.rcon.is_whitelisted("Steve"));
    assert_eq!(linked_name(&w.app, MEMBER).await, None);
    assert_eq!(audit_details(&w.app, "minecraft.unlink").await.len(), 1);
    let page = admin.page(&page_path()).await;
    assert!(
        page.contains(&format!(
            "Unlinked Steve from member {MEMBER} and removed from the whitelist"
        )),
        "{page}"
    );
    assert!(page.contains("No Minecraft account is linked"));
    // Unlinking again: the page says it is not linked (404), nothing else happens.
    let response = admin
        .post_form(
            &unlink_path(MEMBER),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_refused_link_shows_its_error_beside_the_field_with_the_input_kept() {
    let mut w = world(Clock::System).await;
    let (mut admin, csrf) = signed_in(&w.app, &[("admin", 0)]).await;
    // Alex is linked to another member through the API.
    let (status, body) = w
        .app
        .call(
            "PUT",
            &format!("/api/v1/guilds/{GUILD}/minecraft/links/{OTHER_MEMBER}"),
            Some(&w.admin),
            Some(json!({"minecraft_name": "Alex"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let changes = |rcon: &FakeRcon| {
        rcon.commands()
            .into_iter()
            .filter(|c| c.starts_with("whitelist") || c.starts_with("tellraw"))
            .count()
    };
    let before = changes(&w.rcon);

    for ((user, name), field, says) in [
        (
            (MODERATOR.to_string(), "no way"),
            "minecraft_name",
            "is not a Minecraft player name",
        ),
        (
            (MODERATOR.to_string(), "alex"),
            "minecraft_name",
            "already linked to a member",
        ),
        (("not-an-id".to_owned(), "Steve"), "user_id", ""),
        (
            (OTHER_MEMBER.to_string(), "Steve"),
            "user_id",
            "already linked to the Minecraft name Alex",
        ),
        (
            ("4242424242424242".to_owned(), "Steve"),
            "user_id",
            "not a member of the guild",
        ),
    ] {
        let response = post_link(&mut admin, &csrf, &user, name).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{user} {name}"
        );
        let html = response.text().await.unwrap();
        let error = format!(r#"<p class="field-error" id="{field}-error">"#);
        let at = html
            .find(&error)
            .unwrap_or_else(|| panic!("{user} {name}: no {field} error in {html}"));
        let message = &html[at + error.len()..];
        let message = &message[..message.find("</p>").unwrap()];
        assert!(!message.is_empty() && message.contains(says), "{message}");
        assert!(html.contains(r#"aria-invalid="true""#));
        // Both inputs come back as typed.
        assert!(
            html.contains(&format!(r#"value="{}""#, pages_escape(&user))),
            "{html}"
        );
        assert!(html.contains(&format!(r#"value="{}""#, pages_escape(name))));
    }
    // Nothing reached the server, nothing was linked.
    assert_eq!(changes(&w.rcon), before, "{:?}", w.rcon.commands());
    assert_eq!(linked_name(&w.app, MODERATOR).await, None);

    // The server down: an error page saying so, nothing stored.
    w.rcon.refuse();
    let response = post_link(&mut admin, &csrf, &MEMBER.to_string(), "Steve").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Temporarily unavailable")
    );
    assert_eq!(linked_name(&w.app, MEMBER).await, None);
}

fn pages_escape(text: &str) -> String {
    guildhall::web::pages::escape(text)
}

#[actix_web::test]
async fn a_viewer_sees_the_links_without_controls_and_the_server_refuses_their_posts() {
    let w = world(Clock::System).await;
    let (status, body) = w
        .app
        .call(
            "PUT",
            &format!("/api/v1/guilds/{GUILD}/minecraft/links/{MEMBER}"),
            Some(&w.admin),
            Some(json!({"minecraft_name": "Steve"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let (mut viewer, csrf) = signed_in(&w.app, &[("viewer", 0)]).await;
    let page = viewer.page(&page_path()).await;
    assert!(page.contains(r#"data-link="Steve""#), "the link is listed");
    assert!(
        !page.contains(&format!(r#"action="{}""#, page_path())),
        "no link form"
    );
    assert!(!page.contains("data-unlink"), "no unlink control");
    assert!(hidden_value(&page, "csrf_token").is_some());

    // The server refuses anyway: the confirmation page, a link and an unlink.
    assert_eq!(
        viewer.get(&unlink_path(MEMBER)).await.status(),
        StatusCode::FORBIDDEN
    );
    let response = post_link(&mut viewer, &csrf, &MODERATOR.to_string(), "Alex").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = viewer
        .post_form(
            &unlink_path(MEMBER),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(linked_name(&w.app, MEMBER).await.as_deref(), Some("Steve"));
    assert_eq!(linked_name(&w.app, MODERATOR).await, None);
    assert!(w.rcon.is_whitelisted("Steve"));

    // A post without the CSRF token is refused even for an admin.
    let (mut admin, _) = signed_in(&w.app, &[("admin", 0)]).await;
    let response = admin
        .post_form(&unlink_path(MEMBER), &[("confirm", "yes")])
        .await;
    // As every page form: a post without the session's token is a bad request.
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(w.rcon.is_whitelisted("Steve"));

    // Someone without Minecraft access in the guild does not get the page at all; an admin of
    // this guild only (a guild-scoped grant) gets the controls.
    let (mut nobody, _) = signed_in(&w.app, &[]).await;
    assert_eq!(
        nobody.get(&page_path()).await.status(),
        StatusCode::FORBIDDEN
    );
    let (mut guild_admin, _) = signed_in(&w.app, &[("admin", GUILD as i64)]).await;
    let page = guild_admin.page(&page_path()).await;
    assert!(page.contains("data-unlink=\"Steve\""), "{page}");
}

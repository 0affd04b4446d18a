//! The dashboard's page framework and sign-in, without a browser: redirects to sign-in and
//! back, the sign-in form with and without MFA, messages that reveal no username, CSRF on
//! forms, sign-out, the navigation by permission, and the overview.

use guildhall::auth::totp;
use reqwest::StatusCode;
use serde_json::json;

use guildhall::store::audit::{Actor, NewAuditEntry};

use crate::common::auth::{PASSWORD, create_user};
use crate::common::pages::{Visitor, enrol_mfa, hidden_value, location};
use crate::common::{TestApp, spawn_app};

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

#[actix_web::test]
async fn a_page_asked_for_without_a_session_redirects_to_sign_in_and_names_the_page() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    let response = visitor.get("/?since=12").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/sign-in?next=%2F%3Fsince%3D12");
    let overview = visitor.get("/").await;
    assert_eq!(overview.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&overview), "/sign-in");
    // The sign-in page itself needs no session and carries the page to come back to.
    let html = visitor.page("/sign-in?next=%2Faudit").await;
    assert_eq!(hidden_value(&html, "next").as_deref(), Some("/audit"));
}

#[actix_web::test]
async fn an_htmx_request_without_a_session_is_told_to_navigate_to_sign_in() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    let response = visitor
        .get_with("/overview/status", &[("hx-request", "true")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["hx-redirect"],
        "/sign-in?next=%2Foverview%2Fstatus"
    );
}

#[actix_web::test]
async fn signing_in_through_the_form_comes_back_to_the_page_asked_for_and_only_to_a_local_one() {
    let app = spawn_app().await;
    let (_, username) = create_user(&app, "page", &[("admin", 0)]).await;
    let mut visitor = Visitor::new(&app);
    let response = visitor
        .post_sign_in(&username, PASSWORD, Some("/audit"))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/audit");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("guildhall_session="))
        .unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let html = visitor.page("/").await;
    assert!(html.contains(&username), "the layout names the user");

    let mut other = Visitor::new(&app);
    for foreign in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let response = other.post_sign_in(&username, PASSWORD, Some(foreign)).await;
        assert_eq!(location(&response), "/", "{foreign}");
    }
}

#[actix_web::test]
async fn a_wrong_password_and_an_unknown_username_get_the_same_answer() {
    let app = spawn_app().await;
    let (_, username) = create_user(&app, "page", &[("viewer", 0)]).await;
    let mut visitor = Visitor::new(&app);
    let mut answers = Vec::new();
    for name in [username.as_str(), "nobody_by_this_name"] {
        let response = visitor.post_sign_in(name, "not the password", None).await;
        let status = response.status();
        let html = response.text().await.unwrap();
        assert!(html.contains("Wrong username or password."), "{html}");
        assert!(
            html.contains(&format!(r#"value="{name}""#)),
            "the username typed is kept"
        );
        answers.push((status, html.replace(name, "NAME")));
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[0], answers[1], "nothing tells the two apart");
    assert!(!visitor.cookies.contains_key("guildhall_session"));
}

#[actix_web::test]
async fn an_empty_field_is_named_beside_the_field() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    let response = visitor.post_sign_in("someone", "", None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"id="password-error""#), "{html}");
    assert!(html.contains(r#"aria-describedby="password-error""#));
    assert!(html.contains("Enter your password."));
}

#[actix_web::test]
async fn too_many_attempts_on_one_account_say_it_is_locked_for_a_while() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    let mut last = None;
    // The per-account limit is 10 attempts in 15 minutes, for any name typed.
    for _ in 0..11 {
        let response = visitor.post_sign_in("someone_unknown", "wrong", None).await;
        last = Some((response.status(), response.text().await.unwrap()));
    }
    let (status, html) = last.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(html.contains("it is locked for now"), "{html}");
    assert!(html.contains("Try again in"), "{html}");
}

#[actix_web::test]
async fn a_sign_in_form_posted_from_another_site_is_refused() {
    let app = spawn_app().await;
    let (_, username) = create_user(&app, "page", &[("viewer", 0)]).await;
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/sign-in"))
        .header("origin", "https://evil.example")
        .form(&[("username", username.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("set-cookie").is_none());
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
}

#[actix_web::test]
async fn with_mfa_the_password_leads_to_a_code_step_and_a_wrong_code_is_named_beside_its_field() {
    let app = spawn_app().await;
    let (username, secret, _) = enrol_mfa(&app).await;
    let mut visitor = Visitor::new(&app);
    let response = visitor
        .post_sign_in(&username, PASSWORD, Some("/audit"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!visitor.cookies.contains_key("guildhall_session"));
    let html = response.text().await.unwrap();
    let mfa_token = hidden_value(&html, "mfa_token").unwrap();
    assert!(html.contains("Use a recovery code instead"));

    let wrong = visitor
        .post_form(
            "/sign-in/mfa",
            &[
                ("mfa_token", &mfa_token),
                ("code", "000000"),
                ("next", "/audit"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains(r#"id="code-error""#));

    let code = totp::code_at(&secret, now()).unwrap();
    let right = visitor
        .post_form(
            "/sign-in/mfa",
            &[
                ("mfa_token", &mfa_token),
                ("code", &code),
                ("next", "/audit"),
            ],
        )
        .await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&right), "/audit");
    assert!(visitor.cookies.contains_key("guildhall_session"));
}

#[actix_web::test]
async fn a_recovery_code_signs_in_once_when_the_authenticator_is_lost() {
    let app = spawn_app().await;
    let (username, _, codes) = enrol_mfa(&app).await;
    for attempt in 0..2 {
        let mut visitor = Visitor::new(&app);
        let html = visitor
            .post_sign_in(&username, PASSWORD, None)
            .await
            .text()
            .await
            .unwrap();
        let mfa_token = hidden_value(&html, "mfa_token").unwrap();
        let response = visitor
            .post_form(
                "/sign-in/mfa",
                &[("mfa_token", &mfa_token), ("recovery_code", &codes[0])],
            )
            .await;
        if attempt == 0 {
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            assert!(visitor.cookies.contains_key("guildhall_session"));
        } else {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "used once");
            let html = response.text().await.unwrap();
            assert!(html.contains(r#"id="recovery_code-error""#), "{html}");
            assert!(html.contains("<details class=\"recovery\" open>"));
        }
    }
}

#[actix_web::test]
async fn a_form_posted_without_the_session_csrf_token_is_refused_and_with_it_accepted() {
    let app = spawn_app().await;
    let (_, username) = create_user(&app, "page", &[("viewer", 0)]).await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&username, PASSWORD).await;
    let refused = visitor.post_form("/sign-out", &[]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("X-CSRF-Token"));
    let forged = visitor
        .post_form("/sign-out", &[("csrf_token", "not-the-token")])
        .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(
        visitor.cookies.contains_key("guildhall_session"),
        "still signed in"
    );
    assert_eq!(visitor.get("/").await.status(), StatusCode::OK);

    let csrf = visitor.csrf().await;
    let signed_out = visitor
        .post_form("/sign-out", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_out), "/sign-in");
    assert!(!visitor.cookies.contains_key("guildhall_session"));
    let html = visitor.page("/sign-in").await;
    assert!(
        html.contains("Signed out."),
        "the flash message is shown once"
    );
    assert!(!visitor.page("/sign-in").await.contains("Signed out."));
}

#[actix_web::test]
async fn signing_out_ends_the_session_so_its_old_cookie_leads_back_to_sign_in() {
    let app = spawn_app().await;
    let (_, username) = create_user(&app, "page", &[("viewer", 0)]).await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&username, PASSWORD).await;
    let old_cookie = visitor.cookies["guildhall_session"].clone();
    let csrf = visitor.csrf().await;
    visitor
        .post_form("/sign-out", &[("csrf_token", &csrf)])
        .await;
    visitor
        .cookies
        .insert("guildhall_session".into(), old_cookie);
    // The auth cache keeps a user for at most its lifetime; the sign-out invalidates it at once.
    let response = visitor.get("/").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/sign-in");
}

#[actix_web::test]
async fn the_navigation_lists_only_the_sections_the_user_may_see() {
    let app = spawn_app().await;
    let (_, admin) = create_user(&app, "nav", &[("admin", 0)]).await;
    let (_, nobody) = create_user(&app, "nav", &[]).await;
    let mut a = Visitor::new(&app);
    a.sign_in(&admin, PASSWORD).await;
    let html = a.page("/").await;
    assert!(html.contains(r#"href="/audit""#), "{html}");
    assert!(html.contains(r#"href="/logs""#));
    assert!(html.contains(r#"<a href="/" aria-current="page">Overview</a>"#));
    let mut n = Visitor::new(&app);
    n.sign_in(&nobody, PASSWORD).await;
    let html = n.page("/").await;
    assert!(!html.contains(r#"href="/audit""#), "{html}");
    assert!(!html.contains(r#"href="/logs""#));
    assert!(!html.contains("Recent audit entries"));
    assert!(
        !html.contains("ws-connect"),
        "no live stream without bot.view"
    );
}

#[actix_web::test]
async fn the_overview_shows_the_status_what_is_not_configured_and_the_charts() {
    let app = spawn_app().await;
    let (_, admin) = create_user(&app, "ov", &[("admin", 0)]).await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&admin, PASSWORD).await;
    let html = visitor.page("/").await;
    for text in [
        "Not configured yet",
        "DISCORD_TOKEN is not set",
        "RCON_HOST",
        "REDIS_URL is not set",
        "Commands per minute",
        "Gateway latency",
        "HTTP server errors per minute",
        "<svg class=\"sparkline\"",
        r#"ws-connect="/ws/status""#,
        r#"hx-get="/overview/status""#,
        "Recent audit entries",
        "auth.login",
    ] {
        assert!(html.contains(text), "{text} in {html}");
    }
    let fragment = visitor
        .get_with("/overview/status", &[("hx-request", "true")])
        .await;
    assert_eq!(fragment.status(), StatusCode::OK);
    let fragment = fragment.text().await.unwrap();
    assert!(fragment.contains("Discord") && !fragment.contains("<html"));
}

async fn signed_in<'a>(app: &'a TestApp, roles: &[(&str, i64)]) -> Visitor<'a> {
    let (_, name) = create_user(app, "pg", roles).await;
    let mut visitor = Visitor::new(app);
    visitor.sign_in(&name, PASSWORD).await;
    visitor
}

/// `n` entries with `action`, each with its number as target.
async fn record(app: &TestApp, action: &str, n: usize) {
    for i in 0..n {
        app.state
            .audit
            .record(
                NewAuditEntry::new(Actor::System, action)
                    .target(format!("t{i}"))
                    .details(json!({ "n": i })),
            )
            .await
            .unwrap();
    }
}

#[actix_web::test]
async fn a_missing_permission_is_an_html_page_that_says_so() {
    let app = spawn_app().await;
    let mut visitor = signed_in(&app, &[]).await;
    for path in ["/logs", "/audit", "/audit/export?format=csv"] {
        let response = visitor.get(path).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Not allowed"), "{path}: {html}");
    }
}

#[actix_web::test]
async fn the_audit_log_filters_by_action_and_loads_older_entries_as_the_reader_scrolls() {
    let app = spawn_app().await;
    record(&app, "test.bulk", 60).await;
    let mut visitor = signed_in(&app, &[("admin", 0)]).await;
    let html = visitor.page("/audit?action=test.bulk").await;
    assert_eq!(html.matches("<tr><td><time").count(), 50, "one page");
    assert!(
        !html.contains("auth.login</a>"),
        "only the action asked for"
    );
    let start = html
        .find(r#"hx-get="/audit/rows?action=test.bulk&amp;before="#)
        .unwrap();
    assert!(html[start..].contains(r#"hx-trigger="revealed""#));
    assert!(
        html.contains(r#"<a href="/audit?action=test.bulk&amp;before="#),
        "a link without script"
    );
    let more = &html[start + r#"hx-get=""#.len()..];
    let more = more[..more.find('"').unwrap()].replace("&amp;", "&");
    let rest = visitor.get_with(&more, &[("hx-request", "true")]).await;
    assert_eq!(rest.status(), StatusCode::OK);
    let rest = rest.text().await.unwrap();
    assert_eq!(rest.matches("<tr><td><time").count(), 10, "the older ten");
    assert!(!rest.contains("revealed"), "nothing older");
    assert!(rest.contains(">t0<"), "the oldest is among them");
}

#[actix_web::test]
async fn a_bad_filter_is_named_beside_its_field_and_the_input_is_kept() {
    let app = spawn_app().await;
    let mut visitor = signed_in(&app, &[("admin", 0)]).await;
    let response = visitor
        .get("/audit?from=yesterday&actor=nobody_by_this_name")
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"id="from-error""#), "{html}");
    assert!(html.contains(r#"id="actor-error""#));
    assert!(html.contains(r#"value="yesterday""#));
}

#[actix_web::test]
async fn the_filtered_audit_view_exports_as_csv_and_json_and_an_entry_has_its_detail() {
    let app = spawn_app().await;
    record(&app, "test.export", 3).await;
    record(&app, "test.other", 2).await;
    let mut visitor = signed_in(&app, &[("admin", 0)]).await;
    let csv = visitor
        .get("/audit/export?format=csv&action=test.export")
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("guildhall-audit.csv")
    );
    let csv = csv.text().await.unwrap();
    assert_eq!(csv.lines().count(), 4, "a header and three entries: {csv}");
    assert!(csv.starts_with("id,created_at,"));
    assert!(!csv.contains("test.other"));
    let json: serde_json::Value = visitor
        .get("/audit/export?format=json&action=test.export")
        .await
        .json()
        .await
        .unwrap();
    let entries = json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["target"], "t2", "newest first");
    let id = entries[0]["id"].as_str().unwrap();
    let detail = visitor.page(&format!("/audit/{id}")).await;
    assert!(
        detail.contains("test.export") && detail.contains("&quot;n&quot;: 2"),
        "{detail}"
    );
    assert_eq!(
        visitor.get("/audit/1").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn the_live_log_page_is_for_holders_of_logs_view_and_loads_its_viewer() {
    let app = spawn_app().await;
    let mut admin = signed_in(&app, &[("admin", 0)]).await;
    let html = admin.page("/logs").await;
    assert!(html.contains(r#"x-data="logViewer""#));
    assert!(
        html.contains("/static/js/guildhall."),
        "the component's script"
    );
    assert!(html.contains(r#"id="log-level""#) && html.contains(r#"id="log-pause""#));
}

//! Headers every response carries (security, caching) and how static assets are served:
//! hashed names, strong ETags and 304s, gzip, HEAD wherever GET works.

use reqwest::{Method, StatusCode};

use crate::common::auth::{PASSWORD, create_user};
use crate::common::{TestApp, spawn_app_with};

async fn app() -> TestApp {
    spawn_app_with(|env| {
        env.insert("GUILDHALL_API_DOCS".into(), "true".into());
    })
    .await
}

/// What a route's answer must say about caching and framing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// An HTML page: the page policy, a referrer policy, no-store.
    Page,
    /// JSON or text with account data, tokens or live state: no-store.
    Private,
    /// A static asset: cached, never no-store.
    Asset,
}

/// Method, path, JSON body, bearer token, what the answer must say.
type Case<'a> = (
    Method,
    String,
    Option<serde_json::Value>,
    Option<&'a str>,
    Kind,
);

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[actix_web::test]
async fn every_response_carries_nosniff_and_pages_carry_the_policy() {
    let app = app().await;
    let (status, body) = login_as_new_admin(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let css = crate_asset_url("css/guildhall.css");
    let cases: Vec<Case> = vec![
        (Method::GET, "/".into(), None, None, Kind::Page),
        (Method::GET, "/docs".into(), None, None, Kind::Page),
        (Method::GET, "/health".into(), None, None, Kind::Private),
        (Method::GET, "/ready".into(), None, None, Kind::Private),
        (Method::GET, "/metrics".into(), None, None, Kind::Private),
        (
            Method::GET,
            "/api/openapi.json".into(),
            None,
            None,
            Kind::Private,
        ),
        (
            Method::GET,
            "/api/v1/auth/me".into(),
            None,
            Some(access.as_str()),
            Kind::Private,
        ),
        (
            Method::GET,
            "/api/v1/auth/me".into(),
            None,
            None,
            Kind::Private,
        ),
        (
            Method::POST,
            "/api/v1/auth/login".into(),
            Some(serde_json::json!({"username": "nobody_here", "password": "wrong password!"})),
            None,
            Kind::Private,
        ),
        (
            Method::POST,
            "/api/v1/auth/refresh".into(),
            Some(serde_json::json!({"refresh_token": refresh})),
            None,
            Kind::Private,
        ),
        (
            Method::GET,
            "/no/such/route".into(),
            None,
            None,
            Kind::Private,
        ),
        (Method::GET, css.clone(), None, None, Kind::Asset),
        (
            Method::GET,
            "/static/css/guildhall.css".into(),
            None,
            None,
            Kind::Asset,
        ),
        (
            Method::GET,
            "/docs/redoc.standalone.js".into(),
            None,
            None,
            Kind::Asset,
        ),
    ];
    for (method, path, body, token, kind) in cases {
        let mut request = app.client.request(method.clone(), app.url(&path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let what = format!("{method} {path} ({})", response.status());
        assert_eq!(
            header(&response, "x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        let cache = header(&response, "cache-control").unwrap_or_default();
        let csp = header(&response, "content-security-policy");
        match kind {
            Kind::Page => {
                assert_eq!(cache, "no-store", "{what}");
                let csp = csp.unwrap_or_else(|| panic!("{what}: no CSP"));
                for directive in [
                    "default-src 'none'",
                    "script-src 'self';",
                    "frame-ancestors 'none'",
                    "base-uri 'none'",
                    "form-action 'self'",
                ] {
                    assert!(csp.contains(directive), "{what}: {directive} in {csp}");
                }
                assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
                assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
                assert!(header(&response, "referrer-policy").is_some(), "{what}");
                let html = response.text().await.unwrap();
                assert_no_inline_code(&what, &html);
            }
            Kind::Private => {
                assert_eq!(cache, "no-store", "{what}");
                assert!(csp.is_none(), "{what}: a policy on a non-page");
            }
            Kind::Asset => {
                assert!(cache.starts_with("public, max-age="), "{what}: {cache}");
                assert!(header(&response, "etag").is_some(), "{what}");
            }
        }
    }
}

async fn login_as_new_admin(app: &TestApp) -> (StatusCode, serde_json::Value) {
    let (_, username) = create_user(app, "hdrlogin", &[("admin", 0)]).await;
    app.login(&username, PASSWORD).await
}

fn crate_asset_url(path: &str) -> String {
    guildhall::web::assets::url(path)
}

/// No `<script>` with a body, no `<style>` element, no `style=` or `on…=` attribute: the page
/// policy would block them, so a page that has one is broken in the browser.
fn assert_no_inline_code(what: &str, html: &str) {
    let lower = html.to_ascii_lowercase();
    for (i, _) in lower.match_indices("<script") {
        let rest = &lower[i..];
        let open_end = rest.find('>').unwrap();
        assert!(rest[..open_end].contains(" src="), "{what}: inline script");
        assert!(
            rest[open_end + 1..].starts_with("</script>"),
            "{what}: script with a body"
        );
    }
    assert!(!lower.contains("<style"), "{what}: <style> element");
    assert!(!lower.contains(" style="), "{what}: style attribute");
    for event in [
        " onclick=",
        " onload=",
        " onerror=",
        " onsubmit=",
        " onchange=",
    ] {
        assert!(!lower.contains(event), "{what}: {event} handler");
    }
}

#[actix_web::test]
async fn the_docs_page_allows_only_its_own_nonce_for_styles() {
    let app = app().await;
    let first = app.get("/docs").await;
    let csp = header(&first, "content-security-policy")
        .unwrap()
        .to_owned();
    let html = first.text().await.unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap()
        .to_owned();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "{html}");
    let second = app.get("/docs").await;
    let other = header(&second, "content-security-policy").unwrap();
    assert!(!other.contains(&nonce), "a nonce is never reused");
}

#[actix_web::test]
async fn pages_link_every_asset_by_a_hashed_name_that_serves_it_immutable() {
    let app = app().await;
    let html = app.get("/").await.text().await.unwrap();
    let links: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/static/"))
        .collect();
    assert!(
        links.len() >= 4,
        "css, htmx, its ws extension, alpine: {links:?}"
    );
    for link in links {
        let response = app.get(link).await;
        assert_eq!(response.status(), StatusCode::OK, "{link}");
        assert_eq!(
            header(&response, "cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{link}"
        );
    }
    assert!(html.contains(r#"<meta name="htmx-config""#));
    assert!(html.contains(r#""allowEval":false"#));
    assert!(html.contains(r#""includeIndicatorStyles":false"#));
}

#[actix_web::test]
async fn a_matching_if_none_match_is_a_304_without_a_body() {
    let app = app().await;
    for path in [
        crate_asset_url("vendor/htmx/htmx.min.js"),
        "/static/css/guildhall.css".to_owned(),
    ] {
        let first = app.get(&path).await;
        let etag = header(&first, "etag").unwrap().to_owned();
        assert!(
            etag.starts_with('"') && !etag.starts_with("W/"),
            "strong: {etag}"
        );
        let again = app
            .client
            .get(app.url(&path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(header(&again, "etag"), Some(etag.as_str()));
        assert!(again.bytes().await.unwrap().is_empty());
        let stale = app
            .client
            .get(app.url(&path))
            .header("if-none-match", "\"something-else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), StatusCode::OK, "{path}");
    }
}

#[actix_web::test]
async fn assets_are_gzipped_for_clients_that_accept_it() {
    let app = app().await;
    let path = crate_asset_url("vendor/alpine/alpine-csp.min.js");
    let plain = app.get(&path).await;
    assert_eq!(header(&plain, "content-encoding"), None);
    let plain_len = plain.bytes().await.unwrap().len();
    let zipped = app
        .client
        .get(app.url(&path))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&zipped, "content-encoding"), Some("gzip"));
    assert_eq!(header(&zipped, "vary"), Some("Accept-Encoding"));
    let zipped_etag = header(&zipped, "etag").unwrap().to_owned();
    let body = zipped.bytes().await.unwrap();
    assert!(body.len() * 2 < plain_len, "{} vs {plain_len}", body.len());
    assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip magic");
    // The compressed representation's own tag revalidates too.
    let again = app
        .client
        .get(app.url(&path))
        .header("accept-encoding", "gzip")
        .header("if-none-match", &zipped_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

#[actix_web::test]
async fn head_is_answered_wherever_get_is_with_the_same_headers_and_no_body() {
    let app = app().await;
    let token = crate::common::auth::admin_token(&app).await;
    let paths = [
        "/".to_owned(),
        "/docs".to_owned(),
        "/health".to_owned(),
        "/ready".to_owned(),
        "/metrics".to_owned(),
        "/api/openapi.json".to_owned(),
        "/api/v1/auth/me".to_owned(),
        "/api/v1/guilds".to_owned(),
        "/static/css/guildhall.css".to_owned(),
        crate_asset_url("vendor/htmx/ws.min.js"),
        "/docs/redoc.standalone.js".to_owned(),
    ];
    for path in paths {
        let get = app
            .client
            .get(app.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let head = app
            .client
            .head(app.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert!(get.status().is_success(), "GET {path}: {}", get.status());
        for name in [
            "content-type",
            "cache-control",
            "x-content-type-options",
            "etag",
        ] {
            assert_eq!(
                header(&head, name),
                header(&get, name),
                "HEAD {path}: {name}"
            );
        }
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
    // A route without GET still refuses HEAD.
    let head = app
        .client
        .head(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::METHOD_NOT_ALLOWED);
}

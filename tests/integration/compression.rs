//! Pages and JSON are sent compressed to clients that accept it (brotli or gzip), and nothing
//! else changes: identity without `Accept-Encoding`, the static assets compressed once (never
//! twice), `HEAD`, `/metrics`. And every dashboard page's first load (its HTML and every asset
//! it links, as sent to a browser accepting gzip) weighs under 100 KiB, measured.

use std::io::Read;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, ETAG, VARY};

use crate::common::auth::{PASSWORD, create_user};
use crate::common::fake_rcon::FakeRcon;
use crate::common::pages::{Visitor, hidden_value};
use crate::common::{TestApp, spawn_app};
use crate::dash_pages::{GUILD, add_guild};

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .expect("valid brotli");
    out
}

async fn signed_in(app: &TestApp) -> Visitor<'_> {
    let (_, username) = create_user(app, "zip", &[("admin", 0)]).await;
    let mut visitor = Visitor::new(app);
    visitor.sign_in(&username, PASSWORD).await;
    visitor
}

/// A page's HTML with its CSRF token (masked afresh for every response) made constant, so two
/// fetches of one page compare equal.
fn without_token(html: &str) -> String {
    match hidden_value(html, "csrf_token") {
        Some(token) => html.replace(&token, "TOKEN"),
        None => html.to_owned(),
    }
}

#[actix_web::test]
async fn a_signed_in_page_asked_for_with_gzip_or_brotli_comes_back_encoded_and_decodes_to_the_same_html()
 {
    let app = spawn_app().await;
    let mut visitor = signed_in(&app).await;
    let plain = visitor.get("/audit").await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(plain.headers().get(CONTENT_ENCODING).is_none(), "identity");
    let plain = plain.text().await.unwrap();
    assert!(plain.contains("<h1>Audit log</h1>"));

    for (accept, coding, decode) in [
        ("gzip", "gzip", gunzip as fn(&[u8]) -> Vec<u8>),
        ("gzip, deflate, br, zstd", "br", unbrotli),
        ("br;q=0.5, gzip", "gzip", gunzip),
    ] {
        let response = visitor
            .get_with("/audit", &[("accept-encoding", accept)])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_ENCODING], coding, "{accept}");
        assert!(
            response.headers().get_all(VARY).iter().any(|v| v
                .to_str()
                .unwrap()
                .to_ascii_lowercase()
                .contains("accept-encoding")),
            "Vary: Accept-Encoding"
        );
        let wire = response.bytes().await.unwrap();
        let html = String::from_utf8(decode(&wire)).unwrap();
        assert_eq!(without_token(&html), without_token(&plain), "{accept}");
        assert!(
            wire.len() * 2 < html.len(),
            "{accept}: {} bytes for {}",
            wire.len(),
            html.len()
        );
    }

    // The form posted with a token from a compressed page still works (it is masked).
    let token = hidden_value(&plain, "csrf_token").unwrap();
    let signed_out = visitor
        .post_form("/sign-out", &[("csrf_token", &token)])
        .await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn head_json_metrics_and_static_assets_keep_their_own_encoding() {
    let app = spawn_app().await;
    let mut visitor = signed_in(&app).await;
    // HEAD answers as GET would, encoding included, without a body.
    let head = app
        .client
        .head(app.url("/api/openapi.json"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()[CONTENT_ENCODING], "gzip");
    assert!(head.bytes().await.unwrap().is_empty());

    // JSON over a kilobyte is compressed too.
    let json = app
        .client
        .get(app.url("/api/openapi.json"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(json.headers()[CONTENT_ENCODING], "gzip");
    let document: serde_json::Value =
        serde_json::from_slice(&gunzip(&json.bytes().await.unwrap())).unwrap();
    assert!(document["paths"].is_object());

    // /metrics (Prometheus text) is left as it is.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.headers().get(CONTENT_ENCODING).is_none());
    assert!(metrics.text().await.unwrap().contains("# TYPE"));

    // A static asset is compressed once, with its own tag: one gunzip gives the file.
    let page = visitor.page("/audit").await;
    let script = page
        .split('"')
        .find(|s| s.starts_with("/static/vendor/htmx/htmx.min.") && s.ends_with(".js"))
        .expect("the page links htmx")
        .to_owned();
    let asset = visitor
        .get_with(&script, &[("accept-encoding", "gzip, br")])
        .await;
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(asset.headers()[CONTENT_ENCODING], "gzip");
    assert!(asset.headers()[ETAG].to_str().unwrap().ends_with("-gz\""));
    let text = String::from_utf8(gunzip(&asset.bytes().await.unwrap())).unwrap();
    assert!(text.contains("htmx"), "plain JavaScript after one gunzip");
}

/// The `/static/` URLs a page links (scripts, stylesheets, icons), each once.
fn linked_assets(html: &str) -> Vec<String> {
    let mut assets: Vec<String> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/static/") && !s.contains(char::is_whitespace))
        .map(str::to_owned)
        .collect();
    assets.sort();
    assets.dedup();
    assets
}

const FIRST_LOAD_LIMIT: usize = 100 * 1024;

/// Bytes sent for `path` and every asset it links, asked for as a browser accepting gzip
/// asks: (HTML bytes, number of assets, total bytes).
async fn weigh(visitor: &mut Visitor<'_>, path: &str) -> (usize, usize, usize) {
    let response = visitor.get_with(path, &[("accept-encoding", "gzip")]).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let gzipped = response.headers().get(CONTENT_ENCODING).is_some();
    let wire = response.bytes().await.unwrap();
    let html = if gzipped {
        gunzip(&wire)
    } else {
        wire.to_vec()
    };
    assert!(
        gzipped || html.len() < guildhall::web::compress::MIN_BYTES,
        "{path}: {} B sent uncompressed",
        html.len()
    );
    let html = String::from_utf8(html).unwrap();
    let assets = linked_assets(&html);
    assert!(!assets.is_empty(), "{path} links its assets");
    let mut total = wire.len();
    for asset in &assets {
        let response = visitor
            .get_with(asset, &[("accept-encoding", "gzip")])
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}: {asset}");
        total += response.bytes().await.unwrap().len();
    }
    (wire.len(), assets.len(), total)
}

#[actix_web::test]
async fn every_dashboard_pages_first_load_is_under_100_kib_as_sent_compressed() {
    let fake = FakeRcon::start(crate::minecraft::PASSWORD);
    let app = crate::minecraft::app_with(&fake, crate::minecraft::PASSWORD).await;
    add_guild(&app, GUILD, "Weights").await;
    let pages = [
        "/".to_owned(),
        "/audit".to_owned(),
        "/logs".to_owned(),
        "/guilds".to_owned(),
        format!("/guilds/{GUILD}"),
        format!("/guilds/{GUILD}/minecraft/links"),
        "/minecraft".to_owned(),
        "/minecraft/servers/default".to_owned(),
        "/admin".to_owned(),
        "/admin/roles".to_owned(),
        "/admin/api-keys".to_owned(),
        "/account".to_owned(),
    ];
    let mut visitor = signed_in(&app).await;
    let mut report = Vec::new();
    for path in &pages {
        let (html, assets, total) = weigh(&mut visitor, path).await;
        report.push(format!(
            "{path}: {total} B ({html} B HTML + {assets} assets)"
        ));
        assert!(
            total < FIRST_LOAD_LIMIT,
            "{path}: first load {total} B, over {FIRST_LOAD_LIMIT} B"
        );
    }
    // Signed out, the sign-in page is a first load too.
    let mut stranger = Visitor::new(&app);
    let (html, assets, total) = weigh(&mut stranger, "/sign-in").await;
    report.push(format!(
        "/sign-in: {total} B ({html} B HTML + {assets} assets)"
    ));
    assert!(total < FIRST_LOAD_LIMIT, "/sign-in: {total} B");
    eprintln!("first load, gzip accepted:\n  {}", report.join("\n  "));
}

//! The route-permission mechanism: every route under /api/v1 declares its access rule.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, test, web};
use guildhall::web::extract::{self, Access};

use crate::common::spawn_app;

#[actix_web::test]
async fn a_resource_mounted_without_a_declaration_is_refused_before_its_handler_runs() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let app = test::init_service(
        App::new().service(
            web::scope(extract::API_PREFIX)
                .wrap(from_fn(extract::require_declared))
                .route(
                    "/sneaky/{id}",
                    web::get().to(move || {
                        counter.fetch_add(1, Ordering::SeqCst);
                        async { HttpResponse::Ok().finish() }
                    }),
                ),
        ),
    )
    .await;
    let response = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/sneaky/1")
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "the undeclared handler must not run"
    );
    let unmatched = test::call_service(
        &app,
        test::TestRequest::get().uri("/api/v1/nothing").to_request(),
    )
    .await;
    assert_eq!(unmatched.status(), 404, "unmatched paths are still 404");
}

#[actix_web::test]
async fn every_route_of_the_running_api_is_declared_and_none_is_public_by_accident() {
    let _app = spawn_app().await;
    let routes = extract::declared_routes();
    assert!(routes.len() >= 10, "{routes:?}");
    // Public routes are the sign-in family only: adding another needs a deliberate edit here.
    let public: Vec<String> = routes
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        public,
        [
            "GET /api/v1/auth/discord",
            "POST /api/v1/auth/login",
            "POST /api/v1/auth/login/mfa",
            "POST /api/v1/auth/refresh",
            "POST /api/v1/auth/register",
        ]
    );
}

#[actix_web::test]
async fn the_openapi_document_lists_exactly_the_declared_routes() {
    let app = spawn_app().await;
    let (status, doc) = app.get_json("/api/openapi.json").await;
    assert_eq!(status, 200);
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let declared: std::collections::BTreeSet<String> = extract::declared_routes()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    let phantom: Vec<_> = documented
        .difference(&declared)
        .filter(|r| !r.starts_with("GET /health"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "declared but not in OpenAPI: {undocumented:?}"
    );
    assert!(
        phantom.is_empty(),
        "in OpenAPI but not mounted: {phantom:?}"
    );
}

/// Clients and fuzzers read the document to build requests: every path parameter says what the
/// handler accepts, and a value it documents as valid is not refused as malformed.
#[actix_web::test]
async fn every_path_parameter_documents_the_pattern_its_handler_accepts() {
    let app = spawn_app().await;
    let (_, doc) = app.get_json("/api/openapi.json").await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for param in operation["parameters"].as_array().into_iter().flatten() {
                if param["in"] != "path" {
                    continue;
                }
                let name = param["name"].as_str().unwrap();
                let pattern = param["schema"]["pattern"].as_str();
                assert!(
                    pattern.is_some(),
                    "{method} {path}: path parameter `{name}` has no pattern"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "{checked}");
    // An id matching the documented pattern but naming nothing is a 404, not a 400.
    let admin = crate::common::auth::admin_token(&app).await;
    for path in [
        "/api/v1/settings/999999999999999999",
        "/api/v1/guilds/999999999999999999",
        "/api/v1/minecraft/servers/no-such-server",
    ] {
        let (status, body) = app.call("GET", path, Some(&admin), None).await;
        assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{path}: {body}");
    }
}

#[actix_web::test]
async fn the_docs_page_is_served_from_vendored_assets_in_debug_builds_and_can_be_turned_off() {
    let app = spawn_app().await;
    let page = app.get("/docs").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/docs/redoc.standalone.js") && !html.contains("://"),
        "{html}"
    );
    let js = app.get("/docs/redoc.standalone.js").await;
    assert_eq!(js.status(), 200);
    assert!(js.bytes().await.unwrap().len() > 500_000);
    let off = crate::common::spawn_app_with(|env| {
        env.insert("GUILDHALL_API_DOCS".into(), "false".into());
    })
    .await;
    assert_eq!(off.get("/docs").await.status(), 404);
    assert_eq!(
        off.get("/api/openapi.json").await.status(),
        200,
        "the document stays available"
    );
}

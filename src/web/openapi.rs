//! The OpenAPI document (`/api/openapi.json`), generated from the handlers' `#[utoipa::path]`
//! annotations and the body types' `ToSchema` derives, and the ReDoc page at `/docs` (vendored
//! under `static/vendor/redoc`, no CDN). Each API module contributes a `Doc` (an `OpenApi`
//! derive listing its paths), merged in [`document`]; the test suite checks the document against
//! the declared routes, so a route without documentation (or the reverse) fails CI.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::api;
use super::error::ApiError;

/// `{"error":{"code":"snake_case_code","message":"human text"}}`
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// Serves `/docs` when on: by default in debug builds, by `GUILDHALL_API_DOCS` in release.
#[derive(Debug, Clone, Copy)]
pub struct DocsEnabled(pub bool);

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT access token or API key")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "ghk_<prefix>_<secret>",
            ))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::extract::SESSION_COOKIE,
                "Dashboard session; state-changing requests also need X-CSRF-Token",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "guildhall",
        description = "Discord bot and dashboard daemon. Errors are \
            `{\"error\":{\"code\",\"message\"}}`; ids are decimal strings."
    ),
    paths(health),
    components(schemas(ErrorBody)),
    modifiers(&Security)
)]
struct Root;

/// Liveness probe.
#[utoipa::path(get, path = "/health", tag = "probes",
    responses((status = 200, description = "The process is up", content_type = "application/json")))]
#[allow(dead_code)]
fn health() {}

/// The whole document: the root plus every API module's paths.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = Root::openapi();
        for part in api::docs() {
            doc.merge(part);
        }
        doc
    })
}

fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| serde_json::to_string(document()).unwrap_or_else(|_| "{}".into()))
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}

/// ReDoc styles itself with `<style>` elements (styled-components): they carry the page's
/// nonce (ReDoc passes its `nonce` option to them), the one thing the page policy adds.
fn docs_page_html(nonce: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>guildhall API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/api/openapi.json" nonce="{nonce}"></redoc>
<script src="/docs/redoc.standalone.js"></script></body></html>"#
    )
}

fn docs_enabled(setting: Option<web::Data<DocsEnabled>>) -> Result<(), ApiError> {
    if setting.is_some_and(|s| s.0) {
        Ok(())
    } else {
        Err(ApiError::NotFound(
            "API docs are off; set GUILDHALL_API_DOCS=true".into(),
        ))
    }
}

pub async fn docs_page(
    req: HttpRequest,
    setting: Option<web::Data<DocsEnabled>>,
) -> Result<HttpResponse, ApiError> {
    use base64::Engine;
    docs_enabled(setting)?;
    let nonce = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 18]>());
    let csp = super::headers::page_csp(
        Some(req.connection_info().host()),
        &format!(" 'nonce-{nonce}'"),
    )
    // ReDoc's icons are data: images in its styles; its search index runs in a blob: worker.
    .replace("img-src 'self'", "img-src 'self' data:")
        + "; worker-src 'self' blob:";
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .body(docs_page_html(&nonce)))
}

pub async fn redoc_js(
    req: HttpRequest,
    setting: Option<web::Data<DocsEnabled>>,
) -> Result<HttpResponse, ApiError> {
    docs_enabled(setting)?;
    let asset = super::assets::named("vendor/redoc/redoc.standalone.js")
        .ok_or_else(|| ApiError::NotFound("ReDoc is not bundled".into()))?;
    Ok(super::assets::respond(&req, asset, false))
}

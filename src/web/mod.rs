//! The HTTP surface: JSON API under `/api/v1`, dashboard pages, probes and metrics.

pub mod api;
pub mod assets;
pub mod client;
pub mod compress;
pub mod error;
pub mod extract;
pub mod headers;
pub mod health;
pub mod middleware;
pub mod openapi;
pub mod pages;
pub mod request_span;
pub mod validate;
pub mod ws;

use actix_web::{HttpRequest, web};

use error::ApiError;
use middleware::MAX_BODY_BYTES;

/// Routes and extractor configuration. Middleware is applied in `startup`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .app_data(
            web::JsonConfig::default()
                .limit(MAX_BODY_BYTES)
                .error_handler(validate::json_error),
        )
        .service(web::resource("/health").route(web::get().to(health::health)))
        .service(web::resource("/ready").route(web::get().to(health::ready)))
        .service(
            web::scope(extract::API_PREFIX)
                .wrap(actix_web::middleware::from_fn(extract::require_declared))
                .configure(api::configure),
        )
        .service(web::resource("/api/openapi.json").route(web::get().to(openapi::openapi_json)))
        .service(web::resource("/docs").route(web::get().to(openapi::docs_page)))
        .service(web::resource("/docs/redoc.standalone.js").route(web::get().to(openapi::redoc_js)))
        .configure(ws::configure)
        .configure(api::auth::discord::configure_browser)
        .configure(pages::configure)
        .service(web::resource("/static/{path:.*}").route(web::get().to(assets::asset)));
}

/// `/metrics`: mounted by `startup` on the main listener, or alone on `GUILDHALL_METRICS_BIND`.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(metrics)));
}

/// Anything no route matched.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Prometheus text format: the application registry (HTTP, actors, audit, uptime) and the
/// default registry, which holds the process collector (CPU, memory, file descriptors).
pub async fn metrics(
    state: web::Data<crate::state::AppState>,
) -> Result<actix_web::HttpResponse, ApiError> {
    use prometheus::{Encoder, TextEncoder};
    let mut families = state.metrics.registry.gather();
    families.extend(prometheus::gather());
    let mut body = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut body)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("encoding metrics: {e}")))?;
    Ok(actix_web::HttpResponse::Ok()
        .content_type(prometheus::TEXT_FORMAT)
        .body(body))
}

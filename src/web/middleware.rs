//! Cross-cutting request handling: request ids, the body size limit, rate limits and the JSON
//! shape of framework-generated errors.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, Next};
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use tracing_actix_web::RequestId;

use super::error::{ApiError, error_json};
use super::request_span::is_probe;
use crate::state::AppState;

/// Request bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The edge of every request, in one pass (one boxed future instead of three): refuses a
/// declared body over the limit, applies the default per-client rate limit (not to probes or
/// static assets), and echoes the request id `TracingLogger` assigned (and put on the request's
/// log lines) as `X-Request-Id` on every answer, refusals included. Bodies without a declared
/// length (chunked) are held to the same limit by the payload extractors' configuration.
pub async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // Copy the id out: holding a clone of the request would stop the router from matching it.
    let id = req.extensions().get::<RequestId>().map(ToString::to_string);
    let mut res = match refuse(&req).await {
        Some(error) => req
            .into_response(error.error_response())
            .map_into_right_body(),
        None => next.call(req).await?.map_into_left_body(),
    };
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(res)
}

async fn refuse(req: &ServiceRequest) -> Option<ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Some(ApiError::PayloadTooLarge);
    }
    let path = req.path();
    if is_probe(path) || path.starts_with("/static/") {
        return None;
    }
    let state = req.app_data::<web::Data<AppState>>()?;
    let quota = state.default_quota?;
    let client = req
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    let decision = state.rate_limiter.hit("global", &client, quota).await;
    (!decision.allowed).then(|| ApiError::RateLimited {
        retry_after_secs: decision.reset_after.as_secs().max(1),
    })
}

/// Gives every error response the JSON error shape: 404s from routing, 405s from resources,
/// extractor errors (bad JSON, bodies over the limit) and anything else the framework makes.
/// Responses that are already JSON pass untouched.
pub fn json_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let already_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if already_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let detail = res.response().error().map(ToString::to_string);
    let (req, old) = res.into_parts();
    let (code, message) = describe(status, req.method().as_str(), req.path(), detail);
    let mut new = HttpResponse::build(status);
    new.content_type("application/json");
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = old.headers().get(&name) {
            new.insert_header((name, value.clone()));
        }
    }
    let response = new.body(error_json(code, &message));
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}

fn describe(
    status: StatusCode,
    method: &str,
    path: &str,
    detail: Option<String>,
) -> (&'static str, String) {
    match status {
        StatusCode::NOT_FOUND => ("not_found", format!("no route for {method} {path}")),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "request body is larger than the 1 MiB limit".to_owned(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            detail.unwrap_or_else(|| "unsupported content type".into()),
        ),
        s if s.is_client_error() => (
            "bad_request",
            detail.unwrap_or_else(|| s.canonical_reason().unwrap_or("bad request").to_owned()),
        ),
        // Server errors never show their cause to the client.
        _ => ("internal_error", "internal error".to_owned()),
    }
}

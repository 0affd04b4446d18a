//! The root span of every request. Leaner than tracing-actix-web's default (which formats a
//! dozen fields per request): probes get a DEBUG span, free when DEBUG is filtered out, since
//! an orchestrator polling them many times a second must not cost the API its throughput.
//!
//! It also writes the one log line of every request answered with an error (status ≥ 400),
//! whichever layer answered it, with route, status, error code and request id, and counts it
//! in `guildhall_http_errors_total{code,status}`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{Error, HttpMessage, web};
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use super::error::{ApiError, ErrorInfo};
use crate::state::AppState;

pub struct RequestSpan;

/// Paths an orchestrator or scraper polls.
pub fn is_probe(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let method = request.method().as_str();
        let path = request.path();
        if is_probe(path) {
            tracing::debug_span!("probe", method, path, request_id, status = Empty)
        } else {
            let route = request.match_pattern().unwrap_or_default();
            let client = super::client::origin(request.request()).key();
            tracing::info_span!(
                "request",
                method,
                route,
                path,
                client,
                request_id,
                status = Empty,
                error = Empty,
            )
        }
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        match outcome {
            Ok(response) => {
                let status = response.status();
                span.record("status", status.as_u16());
                if status.as_u16() < 400 {
                    return;
                }
                let info = response.response().extensions().get::<ErrorInfo>().cloned();
                let (code, detail) = match (info, response.response().error()) {
                    (Some(info), _) => (info.code, info.detail),
                    (None, Some(error)) => (
                        error.as_error::<ApiError>().map_or("error", ApiError::code),
                        error.to_string(),
                    ),
                    // A handler that answered an error status without an error (`/ready`).
                    (None, None) => ("none", String::new()),
                };
                span.record("error", detail.as_str());
                let request = response.request();
                // A probe's 503 (`/ready` while the database is down) is its answer, not an error.
                if !is_probe(request.path())
                    && let Some(state) = request.app_data::<web::Data<AppState>>()
                {
                    state
                        .metrics
                        .http_errors
                        .with_label_values(&[code, status.as_str()])
                        .inc();
                }
                log_failure(
                    request.path(),
                    request.match_pattern(),
                    status,
                    code,
                    &detail,
                );
            }
            Err(error) => {
                // Unreachable in practice: the edge turns every error into a response.
                let response_error = error.as_response_error();
                let status = response_error.status_code();
                span.record("status", status.as_u16());
                span.record("error", tracing::field::display(response_error));
                let code = error.as_error::<ApiError>().map_or("error", ApiError::code);
                log_failure("", None, status, code, &response_error.to_string());
            }
        }
    }
}

/// The one line a failed request writes, at a level that says who must act: ERROR only for a
/// server error an operator must look into; WARN for a dependency that is down (503; the
/// outage itself is logged once, at ERROR, where it is detected) and for rate limiting; INFO
/// for the refusals a client brought on itself. Probes stay at DEBUG.
fn log_failure(path: &str, route: Option<String>, status: StatusCode, code: &str, detail: &str) {
    let route = route.as_deref().unwrap_or(path);
    let status_code = status.as_u16();
    if is_probe(path) {
        tracing::debug!(
            route,
            status = status_code,
            code,
            error = detail,
            "probe answered an error"
        );
    } else if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        tracing::warn!(
            route,
            status = status_code,
            code,
            error = detail,
            "request refused"
        );
    } else if status.is_server_error() {
        tracing::error!(
            route,
            status = status_code,
            code,
            error = detail,
            "request failed"
        );
    } else {
        tracing::info!(
            route,
            status = status_code,
            code,
            error = detail,
            "request refused"
        );
    }
}

//! The root span of every request. Leaner than tracing-actix-web's default (which formats a
//! dozen fields per request): probes get a DEBUG span, free when DEBUG is filtered out, since
//! an orchestrator polling them many times a second must not cost the API its throughput.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{RequestId, RootSpanBuilder};

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
            let client = request
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
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
                span.record("status", response.status().as_u16());
                if let Some(error) = response.response().error() {
                    span.record("error", tracing::field::display(error));
                }
            }
            Err(error) => {
                let response_error = error.as_response_error();
                span.record("status", response_error.status_code().as_u16());
                span.record("error", tracing::field::display(response_error));
            }
        }
    }
}

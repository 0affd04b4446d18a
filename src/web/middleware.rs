//! Cross-cutting request handling: request ids, the body size limit, rate limits, the JSON
//! shape of framework-generated errors and the compression of pages and JSON (`compress`).

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use futures_util::future::{Either, LocalBoxFuture};
use tracing_actix_web::RequestId;

use super::error::{ApiError, ErrorInfo, error_json};
use super::request_span::is_probe;
use crate::state::AppState;

/// Request bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The edge of every request, as one middleware layer: refuses a declared body over the limit,
/// applies the default per-client rate limit (not to probes or static assets), gives every
/// error response the JSON error shape (see `json_errors`) and echoes the request id that
/// `TracingLogger` assigned (and put on the request's log lines) as `X-Request-Id` on every
/// answer, refusals included, with the security and caching headers of `headers`; compresses
/// HTML and JSON bodies for clients that accept it (`compress`); routes HEAD as GET. Bodies
/// without a declared length (chunked) are held to the same
/// limit by the payload extractors' configuration.
///
/// Hand-written rather than `from_fn`: probes (polled many times a second) pass through
/// without a boxed future.
pub struct Edge;

impl<S, B> Transform<S, ServiceRequest> for Edge
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = EdgeService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(EdgeService {
            service: Rc::new(service),
        }))
    }
}

pub struct EdgeService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for EdgeService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Either<
        EdgeFuture<S::Future, B>,
        LocalBoxFuture<'static, Result<Self::Response, Self::Error>>,
    >;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        // HEAD is answered wherever GET is: routed as GET, and the HTTP layer (which saw HEAD
        // when it decoded the request) sends the headers without the body.
        if req.method() == Method::HEAD {
            req.head_mut().method = Method::GET;
        }
        // Copy the id out: holding a clone of the request would stop the router matching it.
        let id = req.extensions().get::<RequestId>().map(ToString::to_string);
        if let Some(error) = oversized(&req) {
            return Either::Left(EdgeFuture::done(refusal(req, &error, id)));
        }
        let path = req.path();
        let limited = !(is_probe(path) || path.starts_with("/static/"));
        if !limited {
            return Either::Left(EdgeFuture::inner(self.service.call(req), id));
        }
        let service = self.service.clone();
        Either::Right(Box::pin(async move {
            if let Some(error) = rate_limited(&req).await {
                return Ok(refusal(req, &error, id));
            }
            let res = service.call(req).await?;
            Ok(finish(res, id))
        }))
    }
}

pin_project_lite::pin_project! {
    /// The future of a request that needs no asynchronous check before the inner service.
    #[project = EdgeFutureProj]
    pub enum EdgeFuture<F, B> {
        Done { response: Option<ServiceResponse<EitherBody<B>>> },
        Inner { #[pin] future: F, id: Option<String> },
    }
}

impl<F, B> EdgeFuture<F, B> {
    fn done(response: ServiceResponse<EitherBody<B>>) -> Self {
        EdgeFuture::Done {
            response: Some(response),
        }
    }

    fn inner(future: F, id: Option<String>) -> Self {
        EdgeFuture::Inner { future, id }
    }
}

impl<F, B> Future for EdgeFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            EdgeFutureProj::Done { response } => match response.take() {
                Some(res) => Poll::Ready(Ok(res)),
                None => Poll::Pending,
            },
            EdgeFutureProj::Inner { future, id } => {
                let res = ready!(future.poll(cx))?;
                Poll::Ready(Ok(finish(res, id.take())))
            }
        }
    }
}

/// Reshapes a non-JSON error response and adds the request id header.
fn finish<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    id: Option<String>,
) -> ServiceResponse<EitherBody<B>> {
    let res = if res.status().is_client_error() || res.status().is_server_error() {
        reshape_error(res)
    } else {
        super::compress::response(res)
    };
    with_request_id(res, id)
}

/// Answers for the edge itself, without calling the inner service.
fn refusal<B: MessageBody + 'static>(
    req: ServiceRequest,
    error: &ApiError,
    id: Option<String>,
) -> ServiceResponse<EitherBody<B>> {
    with_request_id(
        req.into_response(error.error_response())
            .map_into_right_body(),
        id,
    )
}

/// The request id and the headers every response carries (`headers::secure`).
fn with_request_id<B>(mut res: ServiceResponse<B>, id: Option<String>) -> ServiceResponse<B> {
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    super::headers::secure(res)
}

fn oversized(req: &ServiceRequest) -> Option<ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    declared
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
        .then_some(ApiError::PayloadTooLarge)
}

async fn rate_limited(req: &ServiceRequest) -> Option<ApiError> {
    let state = req.app_data::<web::Data<AppState>>()?;
    let quota = state.default_quota?;
    let client = super::client::origin(req.request()).key();
    let decision = state.rate_limiter.hit("global", &client, quota).await;
    (!decision.allowed).then(|| ApiError::RateLimited {
        retry_after_secs: decision.reset_after.as_secs().max(1),
    })
}

/// Gives an error response the JSON error shape: 404s from routing, 405s from resources,
/// extractor errors (bad JSON, bodies over the limit) and anything else the framework makes.
/// Responses that are already JSON (or a dashboard page's HTML error page) pass untouched.
fn reshape_error<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> ServiceResponse<EitherBody<B>> {
    // Dashboard pages answer their errors as HTML pages (with their own `ErrorInfo`).
    let already_shaped = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
    });
    if already_shaped {
        return super::compress::response(res);
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
    let mut new = new.body(error_json(code, &message));
    new.extensions_mut().insert(ErrorInfo {
        code,
        detail: message,
    });
    ServiceResponse::new(req, new.map_into_boxed_body()).map_into_right_body()
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

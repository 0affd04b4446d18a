//! The signed-in page: who is asking (through the same authentication function as the API),
//! what the layout shows them (navigation, flash messages, the CSRF token for forms) and how
//! the page is answered. Without a valid session a page redirects to sign-in and comes back.
//!
//! ```ignore
//! pub async fn audit(page: SignedIn, state: web::Data<AppState>) -> PageResult {
//!     page.require(Permission::AuditRead)?;          // a 403 page when not held
//!     let entries = /* the same service call as the API route */;
//!     page.render(AuditPage { chrome: page.chrome("Audit log"), entries })
//! }
//! ```

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use sailfish::TemplateSimple;

use super::flash::{self, Flash};
use super::nav::{self, NavItem};
use crate::auth::authenticate::Principal;
use crate::auth::rbac::Permission;
use crate::domain::audit::AuditOrigin;
use crate::state::AppState;
use crate::store::audit::NewAuditEntry;
use crate::web::error::{ApiError, ErrorInfo};
use crate::web::extract::{SESSION_COOKIE, authenticate_request_with, origin_of};

/// Where a signed-out visitor is sent.
pub const SIGN_IN_PATH: &str = "/sign-in";
/// The name of the hidden form field that carries the session's CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

pub type PageResult = Result<HttpResponse, PageError>;

/// What every page's layout needs; a page template has a `chrome: Chrome` field and includes
/// `layout_head.stpl` / `layout_foot.stpl`, which read it.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub title: String,
    /// The path asked for (the current navigation entry is marked with `aria-current`).
    pub path: String,
    /// The signed-in user's name; `None` on the sign-in and error pages.
    pub user: Option<String>,
    /// The session's CSRF token: put it in every form with [`Chrome::csrf_field`]; htmx
    /// requests send it as `X-CSRF-Token` (the layout's `hx-headers`).
    pub csrf: String,
    pub nav: Vec<NavItem>,
    pub flash: Vec<Flash>,
}

impl Chrome {
    /// A page with no signed-in user (sign-in, error pages).
    pub fn public(title: &str) -> Self {
        Chrome {
            title: title.to_owned(),
            ..Chrome::default()
        }
    }

    /// The hidden input every state-changing form carries.
    pub fn csrf_field(&self) -> String {
        format!(
            r#"<input type="hidden" name="{CSRF_FIELD}" value="{}">"#,
            crate::web::pages::escape(&self.csrf)
        )
    }

    /// `hx-headers` for the `<body>`: htmx sends the CSRF token as a header on every request.
    pub fn hx_headers(&self) -> String {
        serde_json::json!({ "X-CSRF-Token": self.csrf }).to_string()
    }
}

/// A signed-in caller of a page: the principal and its grants, and the layout's data.
pub struct SignedIn {
    principal: Principal,
    path: String,
    csrf: String,
    flash: Vec<Flash>,
    origin: AuditOrigin,
}

impl std::ops::Deref for SignedIn {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl SignedIn {
    /// Authenticates `req` like the API does; `form_csrf` is a posted form's hidden field.
    pub(super) async fn authenticate(
        req: &HttpRequest,
        form_csrf: Option<&str>,
    ) -> Result<Self, PageError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AppState missing")))?;
        let principal = match authenticate_request_with(state, req, form_csrf).await {
            Ok(p) => p,
            Err(ApiError::Unauthorized) => return Err(PageError::sign_in(req)),
            Err(e) => return Err(e.into()),
        };
        // Masked afresh for each page, since pages are sent compressed (see `auth::csrf`).
        let csrf = req
            .cookie(SESSION_COOKIE)
            .and_then(|c| state.authenticator.session_csrf(c.value()))
            .map(|token| crate::auth::csrf::mask(&token))
            .unwrap_or_default();
        Ok(SignedIn {
            principal,
            path: req.path().to_owned(),
            csrf,
            flash: flash::read(req),
            origin: origin_of(req),
        })
    }

    /// The principal: user, grants, how they signed in.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// May the caller do `permission` globally (`guild` = `None`) or in `guild`?
    pub fn can(&self, permission: Permission, guild: Option<i64>) -> bool {
        self.principal.grants.allows(permission, guild)
    }

    /// May the caller do `permission` in at least one guild (or globally)?
    pub fn can_anywhere(&self, permission: Permission) -> bool {
        self.principal.grants.allows_anywhere(permission)
    }

    /// Refuses the page (a 403 page) unless `permission` is held globally.
    pub fn require(&self, permission: Permission) -> Result<(), PageError> {
        if self.principal.grants.allows_globally(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden.into())
        }
    }

    /// Refuses the page unless `permission` is held globally or for `guild`.
    pub fn require_in(&self, permission: Permission, guild: i64) -> Result<(), PageError> {
        if self.principal.grants.allows(permission, Some(guild)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden.into())
        }
    }

    /// Where the request came from, for service calls that write audit entries.
    pub fn origin(&self) -> &AuditOrigin {
        &self.origin
    }

    /// An audit entry by this caller, with the request's origin attached.
    pub fn entry(&self, action: &str) -> NewAuditEntry {
        NewAuditEntry::new(self.principal.actor.clone(), action).origin(self.origin.clone())
    }

    /// The session's CSRF token.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// The layout's data for a page titled `title`.
    pub fn chrome(&self, title: &str) -> Chrome {
        Chrome {
            title: title.to_owned(),
            path: self.path.clone(),
            user: Some(self.principal.username.clone()),
            csrf: self.csrf.clone(),
            nav: nav::visible(&self.principal, &self.path),
            flash: self.flash.clone(),
        }
    }

    /// Renders `page` as a 200 HTML response (and clears the flash messages it showed).
    pub fn render<T: TemplateSimple>(&self, page: T) -> PageResult {
        self.render_status(StatusCode::OK, page)
    }

    /// Renders `page` with `status` (422 for a form shown again with its errors: htmx swaps
    /// it in, see the layout's `htmx-config`).
    pub fn render_status<T: TemplateSimple>(&self, status: StatusCode, page: T) -> PageResult {
        let mut response = html(status, page)?;
        if !self.flash.is_empty() {
            flash::clear(&mut response);
        }
        Ok(response)
    }

    /// After a successful form post: a 303 to `to` with a flash message shown there.
    pub fn redirect_with(&self, to: &str, message: Flash) -> HttpResponse {
        let mut response = see_other(to);
        flash::set(&mut response, &message);
        response
    }
}

impl FromRequest for SignedIn {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { SignedIn::authenticate(&req, None).await })
    }
}

/// Renders a template into an HTML response with `status`.
pub fn html<T: TemplateSimple>(status: StatusCode, page: T) -> PageResult {
    let body = page
        .render_once()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("rendering a page: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// A `303 See Other` to a local path (the answer to a form post, so a reload does not post
/// again). htmx follows it itself.
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, safe_next(Some(to))))
        .finish()
}

/// `next` if it is a path on this site, else `/`: only a single leading slash, no scheme,
/// no host, no backslash or control character (which browsers may read as a host).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 2048
                && !n.chars().any(|c| c == '\\' || c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Is this request made by htmx (rather than a full page load)?
pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("hx-request")
}

/// Why a page was not served.
#[derive(Debug)]
pub enum PageError {
    /// No valid session: go to sign-in and come back to `next`.
    SignIn { next: String, htmx: bool },
    /// Anything else, shown as an HTML error page with the error's status.
    Api(ApiError),
}

impl PageError {
    fn sign_in(req: &HttpRequest) -> Self {
        // A form post cannot be replayed after sign-in: come back to the page instead.
        let next = if req.method() == Method::GET {
            match req.query_string() {
                "" => req.path().to_owned(),
                q => format!("{}?{q}", req.path()),
            }
        } else {
            req.headers()
                .get("hx-current-url")
                .and_then(|v| v.to_str().ok())
                .and_then(|u| url::Url::parse(u).ok())
                .map_or_else(|| req.path().to_owned(), |u| u.path().to_owned())
        };
        PageError::SignIn {
            next: safe_next(Some(&next)),
            htmx: is_htmx(req),
        }
    }

    /// Where a signed-out visitor is sent to come back to `next`.
    pub fn sign_in_url(next: &str) -> String {
        if next == "/" {
            return SIGN_IN_PATH.to_owned();
        }
        let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
        format!("{SIGN_IN_PATH}?{query}")
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Api(e)
    }
}

impl From<crate::services::admin::AdminError> for PageError {
    fn from(e: crate::services::admin::AdminError) -> Self {
        PageError::Api(e.into())
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::SignIn { .. } => f.write_str("authentication required"),
            PageError::Api(e) => write!(f, "{e}"),
        }
    }
}

#[derive(TemplateSimple)]
#[template(path = "error.stpl")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    heading: &'static str,
    message: String,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn { htmx: true, .. } => StatusCode::OK,
            PageError::SignIn { htmx: false, .. } => StatusCode::SEE_OTHER,
            PageError::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            // htmx would follow a redirect inside the fragment; it navigates on HX-Redirect.
            PageError::SignIn { next, htmx: true } => HttpResponse::Ok()
                .insert_header(("HX-Redirect", PageError::sign_in_url(next)))
                .finish(),
            PageError::SignIn { next, htmx: false } => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, PageError::sign_in_url(next)))
                .finish(),
            PageError::Api(e) => error_page(e),
        }
    }
}

fn error_page(e: &ApiError) -> HttpResponse {
    let status = e.status_code();
    let heading = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    let page = ErrorPage {
        chrome: Chrome::public(heading),
        status: status.as_u16(),
        heading,
        // `Display` of an internal error is the bare "internal error": no cause leaks.
        message: e.to_string(),
    };
    let mut response = match page.render_once() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(_) => e.error_response(),
    };
    if let ApiError::RateLimited { retry_after_secs } = e
        && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response.extensions_mut().insert(ErrorInfo {
        code: e.code(),
        detail: format!("{e:?}"),
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_accepted_as_the_page_to_come_back_to() {
        for (given, kept) in [
            (Some("/audit?actor=1"), "/audit?actor=1"),
            (Some("/"), "/"),
            (Some("//evil.example/x"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("javascript:alert(1)"), "/"),
            (Some("/a\nb"), "/"),
            (Some(""), "/"),
            (None, "/"),
        ] {
            assert_eq!(safe_next(given), kept, "{given:?}");
        }
    }

    #[test]
    fn the_sign_in_address_carries_the_page_to_come_back_to_encoded() {
        assert_eq!(PageError::sign_in_url("/"), "/sign-in");
        assert_eq!(
            PageError::sign_in_url("/audit?actor=1&x=2"),
            "/sign-in?next=%2Faudit%3Factor%3D1%26x%3D2"
        );
    }
}

//! Who is calling, and may they call this route.
//!
//! Every route under `/api/v1` is mounted through [`declare`], which records the [`Access`] it
//! needs in one registry and wraps the resource in a middleware that enforces it before the
//! handler runs. A resource mounted any other way is refused (500, logged) by
//! [`require_declared`], and the test suite checks the registry against the OpenAPI document.
//!
//! ```ignore
//! use actix_web::web;
//! use crate::auth::rbac::Permission as P;
//! use crate::web::extract::{Access, Auth, declare};
//!
//! pub fn configure(cfg: &mut web::ServiceConfig) {
//!     // Guild-scoped: allowed with a global grant, or a grant for the guild in the path.
//!     cfg.service(
//!         declare("/settings/{guild_id}")
//!             .get(Access::Guild(P::SettingsRead, "guild_id"), get_settings)
//!             .put(Access::Guild(P::SettingsWrite, "guild_id"), put_settings),
//!     );
//!     cfg.service(declare("/bot/status").get(Access::Global(P::BotView), bot_status));
//! }
//!
//! async fn put_settings(auth: Auth, body: web::Json<Update>) -> Result<HttpResponse, ApiError> {
//!     let guild_id = auth.guild()?; // already parsed and checked against the grant
//!     state.audit.record(auth.entry("settings.update").guild(guild_id)).await?;
//!     ...
//! }
//! ```
//!
//! Mount declared resources directly in the `/api/v1` scope (no nested `web::scope`), so the
//! registry's paths are the real ones.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Mutex;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{HttpServiceFactory, Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::{Next, from_fn};
use actix_web::{
    FromRequest, Handler, HttpMessage, HttpRequest, Resource, Responder, ResponseError, web,
};

use super::error::ApiError;
use crate::auth::authenticate::{Credential, Intent, Principal};
use crate::auth::rbac::Permission;
use crate::domain::Snowflake;
use crate::domain::audit::AuditOrigin;
use crate::state::AppState;
use crate::store::audit::NewAuditEntry;

/// The prefix of the scope [`declare`]d paths are mounted in.
pub const API_PREFIX: &str = "/api/v1";
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");
pub const SESSION_COOKIE: &str = "guildhall_session";

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (sign-in, registration, token refresh).
    Public,
    /// Any valid user token, session or API key; the handler acts on the caller's own account.
    SignedIn,
    /// The permission held through a global grant.
    Global(Permission),
    /// The permission held globally or for the guild whose id is the named path parameter.
    Guild(Permission, &'static str),
    /// The permission held globally or in at least one guild; the handler narrows what it
    /// returns to [`Auth::guilds_with`].
    AnyGuild(Permission),
}

impl Access {
    pub fn permission(self) -> Option<Permission> {
        match self {
            Access::Public | Access::SignedIn => None,
            Access::Global(p) | Access::Guild(p, _) | Access::AnyGuild(p) => Some(p),
        }
    }
}

/// One declared route: full path pattern, method and its access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecl {
    pub path: String,
    pub method: Method,
    pub access: Access,
}

/// Every declared route, keyed by (full path pattern, method). Filled as workers configure
/// their apps; identical re-declarations are idempotent.
static REGISTRY: Mutex<BTreeMap<(String, String), Access>> = Mutex::new(BTreeMap::new());

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<(String, String), Access>> {
    match REGISTRY.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// All declared routes of the API, sorted by path then method.
pub fn declared_routes() -> Vec<RouteDecl> {
    // Configuring a throwaway app runs every `declare`, so the table is complete even before
    // (or without) a server's workers configuring theirs.
    drop(actix_web::App::new().service(web::scope(API_PREFIX).configure(super::api::configure)));
    registry()
        .iter()
        .filter_map(|((path, method), access)| {
            Some(RouteDecl {
                path: path.clone(),
                method: method.parse().ok()?,
                access: *access,
            })
        })
        .collect()
}

fn is_declared_path(path: &str) -> bool {
    registry()
        .range((path.to_owned(), String::new())..)
        .next()
        .is_some_and(|((p, _), _)| p == path)
}

/// Starts declaring a resource at `path` (relative to `/api/v1`).
pub fn declare(path: &'static str) -> Declared {
    Declared {
        path,
        rules: Vec::new(),
        resource: web::resource(path),
    }
}

/// A resource being declared: each method with its handler and access rule.
pub struct Declared {
    path: &'static str,
    rules: Vec<(Method, Access)>,
    resource: Resource,
}

macro_rules! method_fns {
    ($($name:ident => $method:ident;)*) => {
        $(
            #[doc = concat!("Adds a `", stringify!($method), "` handler with its access rule.")]
            pub fn $name<F, Args>(self, access: Access, handler: F) -> Self
            where
                F: Handler<Args>,
                Args: FromRequest + 'static,
                F::Output: Responder + 'static,
            {
                self.route(Method::$method, access, handler)
            }
        )*
    };
}

impl Declared {
    method_fns! {
        get => GET;
        post => POST;
        put => PUT;
        patch => PATCH;
        delete => DELETE;
    }

    fn route<F, Args>(mut self, method: Method, access: Access, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let full = format!("{API_PREFIX}{}", self.path);
        registry().insert((full, method.to_string()), access);
        self.rules.push((method.clone(), access));
        self.resource = self.resource.route(web::route().method(method).to(handler));
        self
    }
}

impl HttpServiceFactory for Declared {
    fn register(self, config: &mut actix_web::dev::AppService) {
        let rules: Rc<[(Method, Access)]> = self.rules.into();
        self.resource
            .wrap(from_fn(move |req: ServiceRequest, next: Next<_>| {
                let rules = Rc::clone(&rules);
                async move { enforce(&rules, req, next).await }
            }))
            .register(config);
    }
}

/// Refuses any request that matched a resource which was not [`declare`]d, before its
/// handler runs. Wraps the `/api/v1` scope.
pub async fn require_declared(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(pattern) = req.resource_map().match_pattern(req.path())
        && !is_declared_path(&pattern)
    {
        // Logged (once, at ERROR, with this cause) by the request span.
        let error = ApiError::Internal(anyhow::anyhow!("route {pattern} declares no access rule"));
        return Ok(req
            .into_response(error.error_response())
            .map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

async fn enforce<B: MessageBody + 'static>(
    rules: &[(Method, Access)],
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(access) = rules
        .iter()
        .find(|(m, _)| m == req.method())
        .map(|(_, a)| *a)
    else {
        // No rule for this method: the resource answers 405 without running a handler.
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    match authorise(&req, access).await {
        Ok(Some(ctx)) => {
            req.extensions_mut().insert(ctx);
        }
        Ok(None) => {}
        Err(error) => {
            return Ok(req
                .into_response(error.error_response())
                .map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// What the enforcing middleware hands the handler.
#[derive(Debug, Clone)]
struct AuthContext {
    principal: Rc<Principal>,
    guild: Option<Snowflake>,
}

async fn authorise(req: &ServiceRequest, access: Access) -> Result<Option<AuthContext>, ApiError> {
    if access == Access::Public {
        return Ok(None);
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AppState missing")))?;
    let principal = authenticate_request(state, req.request()).await?;
    let mut guild = None;
    let allowed = match access {
        Access::Public | Access::SignedIn => true,
        Access::Global(p) => principal.grants.allows_globally(p),
        Access::Guild(p, param) => {
            let raw = req.match_info().get(param).unwrap_or_default();
            let id = Snowflake::parse(raw).map_err(|e| ApiError::invalid_field(param, e))?;
            guild = Some(id);
            principal.grants.allows(p, Some(id.as_i64()))
        }
        Access::AnyGuild(p) => principal.grants.allows_anywhere(p),
    };
    if !allowed {
        return Err(ApiError::Forbidden);
    }
    Ok(Some(AuthContext {
        principal: Rc::new(principal),
        guild,
    }))
}

/// Parses a Discord snowflake (or any id) from a path or query parameter: a decimal integer in
/// 1..=i64::MAX (ids are stored as BIGINT). Anything else is a 400 naming the parameter.
pub fn parse_snowflake(param: &str, raw: &str) -> Result<i64, ApiError> {
    Snowflake::parse(raw)
        .map(Snowflake::as_i64)
        .map_err(|e| ApiError::invalid_field(param, e))
}

/// A path parameter holding an id, e.g. `path_id(&req, "id")`.
pub fn path_id(req: &HttpRequest, param: &str) -> Result<i64, ApiError> {
    parse_snowflake(param, req.match_info().get(param).unwrap_or_default())
}

/// Reads the caller's credential off the request (`Authorization: Bearer`, `X-API-Key` or the
/// session cookie, in that order) and authenticates it. The access check of every declared
/// route and the WebSocket handshakes call this one function. A credential that is present but
/// unreadable is a 401, never a fallback to the next kind.
pub async fn authenticate_request(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Principal, ApiError> {
    authenticate_request_with(state, req, None).await
}

/// [`authenticate_request`] for a dashboard form posted without JavaScript: its CSRF token
/// comes in a hidden field (`form_csrf`) when the request carries no `X-CSRF-Token` header.
pub async fn authenticate_request_with(
    state: &AppState,
    req: &HttpRequest,
    form_csrf: Option<&str>,
) -> Result<Principal, ApiError> {
    let headers = req.headers();
    let cookie;
    let credential = if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        Credential::Bearer(token.trim())
    } else if let Some(value) = headers.get(API_KEY_HEADER) {
        Credential::ApiKey(value.to_str().map_err(|_| ApiError::Unauthorized)?.trim())
    } else if let Some(found) = req.cookie(SESSION_COOKIE) {
        cookie = found;
        let intent = if is_state_changing(req.method()) {
            Intent::Change {
                csrf: headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .or(form_csrf),
            }
        } else {
            Intent::Read
        };
        Credential::Session {
            token: cookie.value(),
            intent,
        }
    } else {
        return Err(ApiError::Unauthorized);
    };
    Ok(state.authenticator.authenticate(credential).await?)
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Where a request came from, for audit entries: address, user agent and request id.
pub fn origin_of(req: &HttpRequest) -> AuditOrigin {
    const MAX_UA: usize = 512;
    AuditOrigin::http(
        super::client::origin(req).ip.map(|ip| ip.to_string()),
        req.headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_UA).collect()),
        req.extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(ToString::to_string),
    )
}

/// The client address as a rate-limit key.
pub fn client_key(origin: &AuditOrigin) -> &str {
    origin.ip.as_deref().unwrap_or("unknown")
}

impl FromRequest for AuditOrigin {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(origin_of(req)))
    }
}

/// The caller of a route declared with an access rule other than `Public`. Extracting it on a
/// `Public` route (or a route not mounted through [`declare`]) is a 401, so a handler can never
/// run unauthenticated by mistake.
#[derive(Debug, Clone)]
pub struct Auth {
    ctx: AuthContext,
    origin: AuditOrigin,
}

impl std::ops::Deref for Auth {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.ctx.principal
    }
}

impl Auth {
    /// The guild id from the path of a `Guild`-scoped route, already checked against the grant;
    /// also recorded as `guild` on the current span (the handler's, which declares the field).
    pub fn guild(&self) -> Result<Snowflake, ApiError> {
        let guild = self
            .ctx
            .guild
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("route is not guild-scoped")))?;
        tracing::Span::current().record("guild", guild.as_i64());
        Ok(guild)
    }

    /// Checks a further permission in the handler (e.g. one that depends on the body).
    pub fn require(&self, permission: Permission, guild: Option<i64>) -> Result<(), ApiError> {
        if self.grants.allows(permission, guild) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// Guilds where the caller holds `permission` through a guild grant (for `AnyGuild` routes).
    pub fn guilds_with(&self, permission: Permission) -> Vec<i64> {
        self.grants.guilds_with(permission)
    }

    /// Where the request came from, for audit entries.
    pub fn origin(&self) -> &AuditOrigin {
        &self.origin
    }

    /// An audit entry by this caller, with the request's origin attached.
    pub fn entry(&self, action: &str) -> NewAuditEntry {
        NewAuditEntry::new(self.actor.clone(), action).origin(self.origin.clone())
    }
}

impl FromRequest for Auth {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ctx = req.extensions().get::<AuthContext>().cloned();
        std::future::ready(match ctx {
            Some(ctx) => Ok(Auth {
                ctx,
                origin: origin_of(req),
            }),
            None => Err(ApiError::Unauthorized.into()),
        })
    }
}

//! Sign in with Discord. The browser routes (`GET /auth/discord/start`, `GET
//! /auth/discord/callback`) send the browser to Discord and take it back; the API routes say
//! whether Discord sign-in is available, link and unlink the caller's Discord account, and turn
//! Discord sign-in off for a role. All of it calls `services::discord_sign_in`.

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::rbac::Permission;
use crate::domain::audit::AuditOrigin;
use crate::services::accounts::SignIn;
use crate::services::discord_sign_in::{self, Callback, Failure, Finished, Started};
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::{Access, Auth, declare, path_id};
use crate::web::pages::escape;
use crate::web::validate::Json;

/// Binds an authorization request to the browser that started it. `Lax`, because the callback
/// is a top-level navigation coming from Discord's site, where a `Strict` cookie is not sent.
pub const BINDING_COOKIE: &str = "guildhall_discord_oauth";
const BINDING_PATH: &str = "/auth/discord";
/// Where a failed attempt, or the second-factor step, continues.
const SIGN_IN_PAGE: &str = "/sign-in";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(declare("/auth/discord").get(Access::Public, status))
        .service(
            declare("/auth/discord/link")
                .get(Access::SignedIn, link_status)
                .post(Access::SignedIn, start_link)
                .delete(Access::SignedIn, unlink),
        )
        .service(
            declare("/roles/{id}/discord-sign-in")
                .get(Access::Global(Permission::RolesManage), role_switch)
                .put(Access::Global(Permission::RolesManage), set_role_switch),
        );
}

/// The routes the browser navigates to (outside `/api/v1`).
pub fn configure_browser(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/discord/start").route(web::get().to(start)))
        .service(web::resource("/auth/discord/callback").route(web::get().to(callback)));
}

#[derive(Serialize, ToSchema)]
pub struct DiscordAvailability {
    pub available: bool,
    /// Why not, when it is not: `not_configured`.
    pub reason: Option<&'static str>,
    /// Where the browser starts a Discord sign-in (`?next=/path` to come back there).
    pub sign_in_url: Option<&'static str>,
    /// The redirect URI to register with the Discord application.
    pub redirect_uri: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/auth/discord", tag = "auth",
    responses((status = 200, description = "Whether Discord sign-in is available", body = DiscordAvailability)))]
pub async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let a = state.discord_sign_in.availability();
    Ok(HttpResponse::Ok().json(DiscordAvailability {
        available: a.available,
        reason: a.reason,
        sign_in_url: a.available.then_some("/auth/discord/start"),
        redirect_uri: a.redirect_uri,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct DiscordLinkStatus {
    pub linked: bool,
    #[schema(value_type = Option<String>)]
    #[serde(serialize_with = "crate::web::validate::opt_id_string")]
    pub discord_user_id: Option<i64>,
    pub discord_username: Option<String>,
    /// Unix milliseconds.
    pub linked_at: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/auth/discord/link", tag = "auth",
    responses((status = 200, body = DiscordLinkStatus),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn link_status(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let link = state.discord_sign_in.link_of(&auth).await?;
    Ok(HttpResponse::Ok().json(DiscordLinkStatus {
        linked: link.is_some(),
        discord_user_id: link.as_ref().map(|l| l.discord_user_id),
        discord_username: link.as_ref().map(|l| l.discord_username.clone()),
        linked_at: link.as_ref().map(|l| l.linked_at),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct LinkStarted {
    /// Send the browser here; Discord brings it back to `/auth/discord/callback`, which links
    /// the account and continues to `/account`.
    pub authorize_url: String,
}

#[utoipa::path(post, path = "/api/v1/auth/discord/link", tag = "auth",
    responses((status = 200, description = "Follow `authorize_url` in this browser (a cookie binds the request to it)", body = LinkStarted),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 404, description = "discord_not_configured", body = crate::web::openapi::ErrorBody),
        (status = 409, description = "discord_already_linked", body = crate::web::openapi::ErrorBody),
        (status = 429, body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn start_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    let started = state.discord_sign_in.start_link(&auth).await?;
    Ok(HttpResponse::Ok()
        .cookie(binding_cookie(&req, started.binding))
        .json(LinkStarted {
            authorize_url: started.authorize_url,
        }))
}

#[utoipa::path(delete, path = "/api/v1/auth/discord/link", tag = "auth",
    responses((status = 204, description = "Unlinked; the access Discord gave is gone"),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 404, description = "discord_not_linked", body = crate::web::openapi::ErrorBody),
        (status = 409, description = "password_required", body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn unlink(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    state.discord_sign_in.unlink(&auth, auth.origin()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDiscordSignIn {
    /// `false`: holders of the role cannot sign in with Discord (only for a role that
    /// requires MFA; they sign in with their password and second factor).
    pub allowed: bool,
}

#[utoipa::path(get, path = "/api/v1/roles/{id}/discord-sign-in", tag = "roles",
    params(("id" = String, Path, description = "Role id", pattern = "^[1-9][0-9]{0,18}$")),
    responses((status = 200, body = RoleDiscordSignIn),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 403, body = crate::web::openapi::ErrorBody),
        (status = 404, body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn role_switch(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&req, "id")?;
    let allowed = state.discord_sign_in.role_sign_in(id).await?;
    Ok(HttpResponse::Ok().json(RoleDiscordSignIn { allowed }))
}

#[utoipa::path(put, path = "/api/v1/roles/{id}/discord-sign-in", tag = "roles",
    params(("id" = String, Path, description = "Role id", pattern = "^[1-9][0-9]{0,18}$")), request_body = RoleDiscordSignIn,
    responses((status = 200, body = RoleDiscordSignIn),
        (status = 400, body = crate::web::openapi::ErrorBody),
        (status = 401, body = crate::web::openapi::ErrorBody),
        (status = 403, body = crate::web::openapi::ErrorBody),
        (status = 404, body = crate::web::openapi::ErrorBody),
        (status = 409, description = "role_does_not_require_mfa", body = crate::web::openapi::ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all, fields(user = auth.user_id))]
pub async fn set_role_switch(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    body: Json<RoleDiscordSignIn>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&req, "id")?;
    state
        .discord_sign_in
        .set_role_sign_in(auth.actor.clone(), id, body.allowed, auth.origin())
        .await?;
    Ok(HttpResponse::Ok().json(RoleDiscordSignIn {
        allowed: body.allowed,
    }))
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// `GET /auth/discord/start?next=/path`: to Discord's consent screen (303), or back to the
/// sign-in page with the reason when it cannot start.
#[tracing::instrument(skip_all)]
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: AuditOrigin,
    query: web::Query<StartQuery>,
) -> HttpResponse {
    match state
        .discord_sign_in
        .start_sign_in(query.next.as_deref(), &origin)
        .await
    {
        Ok(Started {
            authorize_url,
            binding,
        }) => HttpResponse::SeeOther()
            .insert_header(("Location", authorize_url))
            .insert_header(("Cache-Control", "no-store"))
            .cookie(binding_cookie(&req, binding))
            .finish(),
        Err(failure) => to_sign_in_page(&req, failure),
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/discord/callback`: Discord brings the browser back here.
#[tracing::instrument(skip_all)]
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: AuditOrigin,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    let binding = req.cookie(BINDING_COOKIE);
    let outcome = state
        .discord_sign_in
        .callback(
            Callback {
                code: query.code.as_deref(),
                state: query.state.as_deref(),
                error: query.error.as_deref(),
                binding: binding.as_ref().map(Cookie::value),
            },
            &origin,
        )
        .await;
    match outcome {
        Ok(Finished::SignedIn(SignIn::Session(session), next)) => {
            let cookie = super::session_cookie(&req, session.cookie_value, session.cookie_max_age);
            continue_to(&req, &next)
                .cookie(cookie)
                .body(continue_page(&next))
        }
        Ok(Finished::SignedIn(SignIn::SecondFactorNeeded { mfa_token, .. }, next)) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("mfa_token", &mfa_token)
                .append_pair("next", &next)
                .append_pair("via", "discord")
                .finish();
            HttpResponse::SeeOther()
                .insert_header(("Location", format!("{SIGN_IN_PAGE}?{query}")))
                .insert_header(("Cache-Control", "no-store"))
                .cookie(binding_removal(&req))
                .finish()
        }
        Ok(Finished::Linked(next)) => continue_to(&req, &next).body(continue_page(&next)),
        Err(failure) => to_sign_in_page(&req, failure),
    }
}

/// A page that moves on to `next` by itself. A redirect would not do: the navigation began
/// on Discord's site, and a browser does not send the `SameSite=Strict` session cookie on a
/// redirect chain that started on another site; a refresh from this page is same-site.
fn continue_to(req: &HttpRequest, next: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Refresh", format!("0; url={}", escape(next))))
        .cookie(binding_removal(req));
    response
}

fn continue_page(next: &str) -> String {
    let next = escape(next);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0; url={next}\"><title>Signed in</title></head>\
         <body><p>Signed in with Discord. <a href=\"{next}\">Continue</a></p></body></html>"
    )
}

fn to_sign_in_page(req: &HttpRequest, failure: Failure) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            "Location",
            format!("{SIGN_IN_PAGE}?discord_error={}", failure.code()),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(binding_removal(req))
        .finish()
}

pub(crate) fn binding_cookie(req: &HttpRequest, value: String) -> Cookie<'static> {
    Cookie::build(BINDING_COOKIE, value)
        .path(BINDING_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(crate::web::client::origin(req).https)
        .max_age(time::Duration::seconds(
            i64::try_from(discord_sign_in::REQUEST_TTL.as_secs()).unwrap_or(600),
        ))
        .finish()
}

fn binding_removal(req: &HttpRequest) -> Cookie<'static> {
    let mut c = binding_cookie(req, String::new());
    c.make_removal();
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::discord_sign_in::local_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_next(Some("/guilds/1")), "/guilds/1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "guilds",
            "",
        ] {
            assert_eq!(local_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_next(None), "/");
    }

    #[test]
    fn the_continue_page_escapes_its_target() {
        let page = continue_page("/a\"><script>");
        assert!(!page.contains("<script>") && page.contains("&quot;&gt;&lt;script&gt;"));
    }
}

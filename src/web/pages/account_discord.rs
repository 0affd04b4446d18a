//! The Discord part of the account page: link the signed-in user's Discord account (the same
//! consent and callback as Discord sign-in, through `services::discord_sign_in`) or unlink it.
//! The API routes are `POST` / `DELETE /api/v1/auth/discord/link`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{Flash, PageForm, PageResult, SignedIn};
use crate::auth::authenticate::Principal;
use crate::state::AppState;
use crate::store::discord_accounts::Link;
use crate::web::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/account/discord/link").route(web::post().to(link)))
        .service(web::resource("/account/discord/unlink").route(web::post().to(unlink)));
}

/// What the account page shows about Discord.
pub struct DiscordSection {
    /// Discord sign-in is configured on this instance.
    pub available: bool,
    pub link: Option<Link>,
}

pub async fn section(state: &AppState, principal: &Principal) -> Result<DiscordSection, ApiError> {
    Ok(DiscordSection {
        available: state.discord_sign_in.availability().available,
        link: state.discord_sign_in.link_of(principal).await?,
    })
}

/// Marks the account page's response so its "Link Discord" form may be answered with the
/// redirect to Discord's consent screen (see [`FormRedirectsTo`]).
///
/// [`FormRedirectsTo`]: crate::web::headers::FormRedirectsTo
pub fn allow_link_redirect(state: &AppState, response: &mut HttpResponse) {
    if let Some(origin) = state.discord_sign_in.authorize_origin() {
        response
            .extensions_mut()
            .insert(crate::web::headers::FormRedirectsTo(origin.to_owned()));
    }
}

#[derive(Deserialize)]
pub struct Empty {}

/// `POST /account/discord/link`: to Discord's consent screen; the callback links and comes
/// back to the account page.
pub async fn link(
    req: actix_web::HttpRequest,
    form: PageForm<Empty>,
    state: web::Data<AppState>,
) -> PageResult {
    let (page, _) = form.into_parts();
    match state.discord_sign_in.start_link(&page).await {
        // Discord's consent screen is on another site: `see_other` keeps to local paths.
        Ok(started) => Ok(HttpResponse::SeeOther()
            .insert_header((actix_web::http::header::LOCATION, started.authorize_url))
            .cookie(crate::web::api::auth::discord::binding_cookie(
                &req,
                started.binding,
            ))
            .finish()),
        Err(e) => Ok(refused(&page, ApiError::from(e))),
    }
}

/// `POST /account/discord/unlink`.
pub async fn unlink(form: PageForm<Empty>, state: web::Data<AppState>) -> PageResult {
    let (page, _) = form.into_parts();
    match state.discord_sign_in.unlink(&page, page.origin()).await {
        Ok(()) => Ok(page.redirect_with(
            "/account#discord",
            Flash::ok("Discord is unlinked; the access it gave is gone."),
        )),
        Err(e) => Ok(refused(&page, ApiError::from(e))),
    }
}

fn refused(page: &SignedIn, e: ApiError) -> HttpResponse {
    page.redirect_with("/account#discord", Flash::error(e.to_string()))
}

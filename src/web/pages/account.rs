//! The account page (`/account`): change the password, enrol MFA (a QR code rendered by
//! guildhall, confirmed with a first code, recovery codes shown once) and turn it off. Each
//! form calls the same `Accounts` function as its `/api/v1/auth/...` route. Changing the
//! password and turning MFA on or off revoke every earlier session, so those answers carry
//! the one new session cookie.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use sailfish::TemplateSimple;
use secrecy::SecretString;
use serde::Deserialize;

use super::form::{answer, answer_with};
use super::page::see_other;
use super::{Chrome, FieldErrors, Flash, PageForm, PageResult, SignedIn, flash};
use crate::services::accounts::mfa::MfaState;
use crate::services::accounts::{AccountError, Session};
use crate::state::AppState;
use crate::types::NewPassword;
use crate::web::api::auth::session_cookie;
use crate::web::error::ApiError;

pub const PATH: &str = "/account";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(PATH).route(web::get().to(account)))
        .service(web::resource("/account/password").route(web::post().to(change_password)))
        .service(web::resource("/account/mfa/start").route(web::post().to(start_mfa)))
        .service(web::resource("/account/mfa/qr.png").route(web::get().to(qr_png)))
        .service(web::resource("/account/mfa/confirm").route(web::post().to(confirm_mfa)))
        .service(web::resource("/account/mfa/disable").route(web::post().to(disable_mfa)))
        .configure(super::account_discord::configure);
}

#[derive(TemplateSimple)]
#[template(path = "pages/account.stpl")]
struct AccountPage {
    chrome: Chrome,
    mfa: MfaState,
    /// Shown once, right after MFA was turned on.
    recovery_codes: Vec<String>,
    password_errors: FieldErrors,
    mfa_errors: FieldErrors,
    discord: super::account_discord::DiscordSection,
}

async fn render(
    page: &SignedIn,
    state: &AppState,
    status: StatusCode,
    password_errors: FieldErrors,
    mfa_errors: FieldErrors,
) -> PageResult {
    let mfa = state
        .accounts
        .mfa_state(page)
        .await
        .map_err(ApiError::from)?;
    let mut response = page.render_status(
        status,
        AccountPage {
            chrome: page.chrome("Account"),
            mfa,
            recovery_codes: Vec::new(),
            password_errors,
            mfa_errors,
            discord: super::account_discord::section(state, page).await?,
        },
    )?;
    super::account_discord::allow_link_redirect(state, &mut response);
    Ok(response)
}

pub async fn account(page: SignedIn, state: web::Data<AppState>) -> PageResult {
    render(
        &page,
        &state,
        StatusCode::OK,
        FieldErrors::new(),
        FieldErrors::new(),
    )
    .await
}

/// A refusal shown on the form: a wrong code goes beside the code field; anything that is not
/// the user's to fix is an error page.
fn form_errors(e: AccountError) -> Result<FieldErrors, super::PageError> {
    if matches!(e, AccountError::InvalidCode) {
        let mut errors = FieldErrors::new();
        errors.add("code", "is invalid, expired or already used");
        return Ok(errors);
    }
    FieldErrors::from_api(ApiError::from(e))
}

/// After a change that replaced every session: the new session's cookie and a note.
fn with_new_session(req: &HttpRequest, session: Session, note: &str) -> HttpResponse {
    let mut response = see_other(PATH);
    let _ = response.add_cookie(&session_cookie(
        req,
        session.cookie_value,
        session.cookie_max_age,
    ));
    flash::set(&mut response, &Flash::ok(note));
    response
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub current_password: String,
    #[serde(default)]
    pub new_password: String,
}

pub async fn change_password(
    req: HttpRequest,
    form: PageForm<PasswordForm>,
    state: web::Data<AppState>,
) -> PageResult {
    let (page, input) = form.into_parts();
    let result = async {
        let new = NewPassword::parse(SecretString::from(input.new_password.clone()))
            .map_err(|m| ApiError::invalid_field("new_password", m))?;
        let current = SecretString::from(input.current_password.clone());
        state
            .accounts
            .change_password(&page, &current, new, page.origin())
            .await
            .map_err(ApiError::from)
    }
    .await;
    answer(
        result,
        |session| {
            let note = "Password changed; every other session was signed out.";
            with_new_session(&req, session, note)
        },
        |errors| {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render(&page, &state, status, errors, FieldErrors::new())
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn start_mfa(form: PageForm<Empty>, state: web::Data<AppState>) -> PageResult {
    let (page, _) = form.into_parts();
    state
        .accounts
        .start_mfa_enrolment(&page, page.origin())
        .await
        .map_err(ApiError::from)?;
    Ok(page.redirect_with(
        "/account#mfa",
        Flash::ok("Scan the QR code with your authenticator app, then enter the code it shows."),
    ))
}

/// The enrolment QR code, rendered here as PNG (no external service sees the secret).
pub async fn qr_png(page: SignedIn, state: web::Data<AppState>) -> PageResult {
    let png = state
        .accounts
        .mfa_enrolment_qr_png(&page)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(png))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub code: String,
}

/// Turns MFA on: the page with the recovery codes (shown this once) and the new session.
pub async fn confirm_mfa(
    req: HttpRequest,
    form: PageForm<CodeForm>,
    state: web::Data<AppState>,
) -> PageResult {
    let (page, input) = form.into_parts();
    let code = input.code.trim();
    match state
        .accounts
        .confirm_mfa_enrolment(&page, code, page.origin())
        .await
    {
        Ok(enabled) => {
            let mut chrome = page.chrome("Account");
            // The page's forms must carry the new session's token: the old one is revoked.
            chrome.csrf = crate::auth::csrf::mask(&enabled.session.csrf_token);
            chrome.flash = vec![Flash::ok("MFA is on. Every other session was signed out.")];
            let mut response = page.render(AccountPage {
                chrome,
                mfa: MfaState::On,
                recovery_codes: enabled.recovery_codes,
                password_errors: FieldErrors::new(),
                mfa_errors: FieldErrors::new(),
                discord: super::account_discord::section(&state, &page).await?,
            })?;
            super::account_discord::allow_link_redirect(&state, &mut response);
            let _ = response.add_cookie(&session_cookie(
                &req,
                enabled.session.cookie_value,
                enabled.session.cookie_max_age,
            ));
            Ok(response)
        }
        Err(e) => {
            let errors = form_errors(e)?;
            render(
                &page,
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                FieldErrors::new(),
                errors,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct DisableForm {
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub code: String,
}

pub async fn disable_mfa(
    req: HttpRequest,
    form: PageForm<DisableForm>,
    state: web::Data<AppState>,
) -> PageResult {
    let (page, input) = form.into_parts();
    let password = SecretString::from(input.password.clone());
    let result = state
        .accounts
        .disable_mfa(&page, &password, input.code.trim(), page.origin())
        .await;
    answer_with(
        result,
        form_errors,
        |session| {
            let note = "MFA is off; every other session was signed out.";
            with_new_session(&req, session, note)
        },
        |errors| {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render(&page, &state, status, FieldErrors::new(), errors)
        },
    )
    .await
}

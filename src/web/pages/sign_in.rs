//! Sign in (password, then the second factor when MFA is enabled, with a recovery code as the
//! fallback) and sign out. The same accounts service as `POST /api/v1/auth/login` and
//! `/login/mfa`; the session cookie is the API's. Messages never say whether a username exists:
//! an unknown user, a disabled one and a wrong password read alike, and the per-account limit
//! ("locked") counts attempts on any name typed.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use sailfish::TemplateSimple;
use secrecy::SecretString;
use serde::Deserialize;

use super::flash::{self, Flash};
use super::form::{self, FieldErrors};
use super::page::{Chrome, PageError, PageResult, SignedIn, html, safe_next};
use crate::domain::audit::AuditOrigin;
use crate::services::accounts::session::SecondFactor;
use crate::services::accounts::{AccountError, Session, SignIn};
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::{SESSION_COOKIE, origin_of};
use crate::web::validate;

const MAX_PASSWORD_BYTES: usize = 4096;
const MAX_CODE_BYTES: usize = 64;
const MAX_TOKEN_BYTES: usize = 4096;

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
    /// Why a Discord sign-in ended here (`/auth/discord/callback`).
    discord_error: Option<String>,
    /// A Discord sign-in of a user with MFA continues with the second step.
    mfa_token: Option<String>,
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct SecondStep {
    #[serde(default)]
    mfa_token: String,
    code: Option<String>,
    recovery_code: Option<String>,
    next: Option<String>,
}

#[derive(TemplateSimple)]
#[template(path = "pages/sign_in.stpl")]
struct SignInPage {
    chrome: Chrome,
    username: String,
    next: String,
    errors: FieldErrors,
    /// `Some(start URL)` when Discord sign-in is available; `None`: the page says it is off.
    discord: Option<String>,
}

#[derive(TemplateSimple)]
#[template(path = "pages/sign_in_mfa.stpl")]
struct SecondFactorPage {
    chrome: Chrome,
    mfa_token: String,
    next: String,
    errors: FieldErrors,
    /// The recovery-code form is open (the user chose it, or it was the one that failed).
    recovery: bool,
}

/// `GET /sign-in`: the form, or straight on to `next` for a visitor already signed in.
pub async fn form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> PageResult {
    let next = safe_next(query.next.as_deref());
    if req.cookie(SESSION_COOKIE).is_some() && SignedIn::authenticate(&req, None).await.is_ok() {
        return Ok(super::page::see_other(&next));
    }
    if let Some(mfa_token) = query
        .mfa_token
        .as_deref()
        .filter(|t| t.len() <= MAX_TOKEN_BYTES)
    {
        return html(
            StatusCode::OK,
            SecondFactorPage {
                chrome: Chrome::public("Sign in: second step"),
                mfa_token: mfa_token.to_owned(),
                next,
                errors: FieldErrors::new(),
                recovery: false,
            },
        );
    }
    let mut chrome = Chrome::public("Sign in");
    chrome.flash = flash::read(&req);
    let clear = !chrome.flash.is_empty();
    let mut errors = FieldErrors::new();
    errors.general = query
        .discord_error
        .as_deref()
        .map(|code| crate::services::discord_sign_in::Failure::message_for(code).to_owned());
    let discord = state.discord_sign_in.availability().available.then(|| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .finish();
        format!("/auth/discord/start?{query}")
    });
    let mut response = html(
        StatusCode::OK,
        SignInPage {
            chrome,
            username: String::new(),
            next,
            errors,
            discord,
        },
    )?;
    if clear {
        flash::clear(&mut response);
    }
    Ok(response)
}

/// A sign-in form must come from this site (login CSRF: a foreign page signing the browser in
/// to the attacker's account). Browsers send `Origin` with every form post.
fn same_site(req: &HttpRequest) -> Result<(), PageError> {
    crate::web::ws::same_origin(req).map_err(PageError::from)
}

/// `POST /sign-in`: the password step.
pub async fn submit(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> PageResult {
    same_site(&req)?;
    let input: Credentials = form::parse(&body)?;
    let next = safe_next(input.next.as_deref());
    let origin = origin_of(&req);
    let again = |status: StatusCode, errors: FieldErrors, username: String| {
        html(
            status,
            SignInPage {
                chrome: Chrome::public("Sign in"),
                username,
                next: next.clone(),
                errors,
                discord: None,
            },
        )
    };
    let mut errors = FieldErrors::new();
    let username = match validate::text("username", &input.username, 1, 64) {
        Ok(u) => u.to_owned(),
        Err(_) => {
            errors.add("username", "Enter your username.");
            input.username.chars().take(64).collect()
        }
    };
    if input.password.is_empty() {
        errors.add("password", "Enter your password.");
    } else if validate::secret_len("password", &input.password, MAX_PASSWORD_BYTES).is_err() {
        errors.add("password", "That password is too long.");
    }
    if !errors.is_empty() {
        return again(StatusCode::BAD_REQUEST, errors, username);
    }
    let password = SecretString::from(input.password);
    match state.accounts.sign_in(&username, &password, &origin).await {
        Ok(SignIn::Session(session)) => Ok(signed_in(&req, session, &next)),
        Ok(SignIn::SecondFactorNeeded { mfa_token, .. }) => html(
            StatusCode::OK,
            SecondFactorPage {
                chrome: Chrome::public("Sign in: second step"),
                mfa_token,
                next,
                errors: FieldErrors::new(),
                recovery: false,
            },
        ),
        Err(e) => {
            let (status, message) = refusal(e)?;
            let mut errors = FieldErrors::new();
            errors.general = Some(message);
            again(status, errors, username)
        }
    }
}

/// `POST /sign-in/mfa`: the TOTP code, or a recovery code instead.
pub async fn second_factor(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> PageResult {
    same_site(&req)?;
    let input: SecondStep = form::parse(&body)?;
    let next = safe_next(input.next.as_deref());
    let recovery = input.code.is_none() && input.recovery_code.is_some();
    let again = |status: StatusCode, errors: FieldErrors| {
        html(
            status,
            SecondFactorPage {
                chrome: Chrome::public("Sign in: second step"),
                mfa_token: input.mfa_token.clone(),
                next: next.clone(),
                errors,
                recovery,
            },
        )
    };
    let field = if recovery { "recovery_code" } else { "code" };
    let factor = match (input.code.as_deref(), input.recovery_code.as_deref()) {
        (Some(c), _) if !c.trim().is_empty() => SecondFactor::Totp(c.trim()),
        (None, Some(r)) if !r.trim().is_empty() => SecondFactor::RecoveryCode(r.trim()),
        _ => {
            let mut errors = FieldErrors::new();
            errors.add(field, "Enter the code.");
            return again(StatusCode::BAD_REQUEST, errors);
        }
    };
    let code_len = match factor {
        SecondFactor::Totp(c) | SecondFactor::RecoveryCode(c) => c.len(),
    };
    if code_len > MAX_CODE_BYTES || input.mfa_token.len() > MAX_TOKEN_BYTES {
        let mut errors = FieldErrors::new();
        errors.add(field, "That code is too long.");
        return again(StatusCode::BAD_REQUEST, errors);
    }
    let origin: AuditOrigin = origin_of(&req);
    match state
        .accounts
        .sign_in_second_factor(&input.mfa_token, factor, &origin)
        .await
    {
        Ok(session) => Ok(signed_in(&req, session, &next)),
        Err(AccountError::InvalidCode) => {
            let mut errors = FieldErrors::new();
            errors.add(
                field,
                "That code is not valid: it may be mistyped, expired or already used.",
            );
            again(StatusCode::UNAUTHORIZED, errors)
        }
        // The challenge expired (or was tampered with): the password step starts again.
        Err(AccountError::Unauthenticated) => {
            let mut response = super::page::see_other(&PageError::sign_in_url(&next));
            flash::set(
                &mut response,
                &Flash::error("That sign-in took too long. Enter your password again."),
            );
            Ok(response)
        }
        Err(e) => {
            let (status, message) = refusal(e)?;
            let mut errors = FieldErrors::new();
            errors.general = Some(message);
            again(status, errors)
        }
    }
}

/// `POST /sign-out`: ends every session of the user (the API's sign-out) and forgets the
/// cookie. Needs the CSRF token, so another site cannot sign the user out.
pub async fn sign_out(
    form: super::PageForm<serde::de::IgnoredAny>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> PageResult {
    let page = form.page;
    state
        .accounts
        .sign_out(page.principal(), page.origin())
        .await
        .map_err(ApiError::from)?;
    let mut gone =
        crate::web::api::auth::session_cookie(&req, String::new(), std::time::Duration::ZERO);
    gone.make_removal();
    let mut response = page.redirect_with(super::page::SIGN_IN_PATH, Flash::ok("Signed out."));
    let _ = response.add_cookie(&gone);
    Ok(response)
}

/// Sets the session cookie and goes on to `next`.
fn signed_in(req: &HttpRequest, session: Session, next: &str) -> HttpResponse {
    let cookie =
        crate::web::api::auth::session_cookie(req, session.cookie_value, session.cookie_max_age);
    HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, next.to_owned()))
        .finish()
}

/// What the sign-in form says for a refusal, and with which status. Anything that is not the
/// user's to fix (the database, the audit log) is an error page.
fn refusal(e: AccountError) -> Result<(StatusCode, String), PageError> {
    match e {
        AccountError::Unauthenticated | AccountError::WrongPassword => Ok((
            StatusCode::UNAUTHORIZED,
            "Wrong username or password.".to_owned(),
        )),
        AccountError::RateLimited { retry_after } => Ok((
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many sign-in attempts for this account or from this address: it is locked \
                 for now. Try again in {}.",
                wait_text(retry_after.as_secs())
            ),
        )),
        AccountError::InvalidCode => Ok((
            StatusCode::UNAUTHORIZED,
            "That code is not valid: it may be mistyped, expired or already used.".to_owned(),
        )),
        other => Err(ApiError::from(other).into()),
    }
}

fn wait_text(secs: u64) -> String {
    match secs {
        0..=1 => "a second".to_owned(),
        2..=59 => format!("{secs} seconds"),
        60..=119 => "a minute".to_owned(),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::wait_text;

    #[test]
    fn the_wait_after_too_many_attempts_reads_in_words() {
        assert_eq!(wait_text(1), "a second");
        assert_eq!(wait_text(42), "42 seconds");
        assert_eq!(wait_text(60), "a minute");
        assert_eq!(wait_text(14 * 60 + 1), "15 minutes");
    }
}

//! Forms: [`PageForm`] reads a posted `application/x-www-form-urlencoded` body, checks the
//! session's CSRF token (the hidden `csrf_token` field, or the `X-CSRF-Token` header htmx
//! sends) through the same authentication function as the API, and deserialises the rest.
//! [`FieldErrors`] carries validation errors back to the form, shown next to their fields.
//!
//! [`answer`] turns the service call's result into the answer: the success response, or the
//! form again with the errors.
//!
//! ```ignore
//! #[derive(Deserialize)]
//! struct Rename { name: String }
//!
//! pub async fn rename(form: PageForm<Rename>, state: web::Data<AppState>) -> PageResult {
//!     let (page, input) = form.into_parts();
//!     let result = service_call(&input.name).await;
//!     answer(
//!         result,
//!         |_| page.redirect_with("/things", Flash::ok("Renamed")),
//!         // Not a field error (a 5xx, a lost session): an error page instead.
//!         |errors| render_form(&page, StatusCode::UNPROCESSABLE_ENTITY, input, errors),
//!     )
//!     .await
//! }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::de::DeserializeOwned;

use super::escape;
use super::page::{CSRF_FIELD, PageError, PageResult, SignedIn};
use crate::web::error::ApiError;

/// A form body is far smaller than the API's JSON limit.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A posted form from a signed-in user whose CSRF token matched.
pub struct PageForm<T> {
    pub page: SignedIn,
    pub input: T,
}

impl<T> PageForm<T> {
    pub fn into_parts(self) -> (SignedIn, T) {
        (self.page, self.input)
    }
}

/// The hidden CSRF field of a urlencoded body, if any.
fn csrf_of(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v)
}

/// Deserialises a urlencoded form body (the CSRF field is ignored unless `T` names it).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(body).map_err(|e| ApiError::bad_request(format!("form: {e}")))
}

impl<T: DeserializeOwned + 'static> FromRequest for PageForm<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = body.await.map_err(|_| ApiError::PayloadTooLarge)?;
            if body.len() > MAX_FORM_BYTES {
                return Err(ApiError::PayloadTooLarge.into());
            }
            let csrf = csrf_of(&body);
            let page = SignedIn::authenticate(&req, csrf.as_deref()).await?;
            let input = parse(&body)?;
            Ok(PageForm { page, input })
        })
    }
}

/// The answer to a form post once its service call has run: `done` builds the response to a
/// success (usually a redirect with a flash note); a refusal the user can act on renders the
/// form again through `again`, with the errors beside their fields (see
/// [`FieldErrors::from_api`]); anything else (a 5xx, a lost session) is an error page.
pub async fn answer<T, E, Again>(
    result: Result<T, E>,
    done: impl FnOnce(T) -> HttpResponse,
    again: impl FnOnce(FieldErrors) -> Again,
) -> PageResult
where
    E: Into<ApiError>,
    Again: Future<Output = PageResult>,
{
    answer_with(result, |e| FieldErrors::from_api(e.into()), done, again).await
}

/// [`answer`] for a form that places some refusals itself: `errors` turns the error into the
/// form's errors, or into `Err` for an error page.
pub async fn answer_with<T, E, Again>(
    result: Result<T, E>,
    errors: impl FnOnce(E) -> Result<FieldErrors, PageError>,
    done: impl FnOnce(T) -> HttpResponse,
    again: impl FnOnce(FieldErrors) -> Again,
) -> PageResult
where
    Again: Future<Output = PageResult>,
{
    match result {
        Ok(value) => Ok(done(value)),
        Err(e) => again(errors(e)?).await,
    }
}

/// Validation errors by field name, shown beside their fields. The form keeps the user's input
/// (the handler renders it again with the values it received).
#[derive(Debug, Clone, Default)]
pub struct FieldErrors {
    errors: BTreeMap<String, String>,
    /// An error that belongs to no field (shown above the form).
    pub general: Option<String>,
}

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.errors.insert(field.to_owned(), message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty() && self.general.is_none()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    /// Turns a service's refusal into field errors: `invalid_field` ("name: problem") goes next
    /// to its field, any other 4xx above the form. A 5xx or an authentication failure is not a
    /// form error and comes back as `Err`, to be shown as an error page.
    pub fn from_api(error: ApiError) -> Result<Self, PageError> {
        use actix_web::ResponseError;
        let status = error.status_code();
        if status.is_server_error() || matches!(error, ApiError::Unauthorized) {
            return Err(error.into());
        }
        let mut errors = FieldErrors::new();
        let message = error.to_string();
        match (error.code(), message.split_once(": ")) {
            ("invalid_field", Some((field, problem))) => errors.add(field, problem),
            _ => errors.general = Some(message),
        }
        Ok(errors)
    }

    /// The errors as one line, for a form too small to show them beside fields (a table row):
    /// the general error, else the first of `fields` that has one, as `field: message`.
    pub fn one_line(&self, fields: &[&str]) -> String {
        self.general
            .clone()
            .or_else(|| {
                fields
                    .iter()
                    .find_map(|f| self.get(f).map(|m| format!("{f}: {m}")))
            })
            .unwrap_or_else(|| "refused".into())
    }

    /// Attributes for a field's input: `aria-invalid` and `aria-describedby` pointing at its
    /// message when it has an error. Use as `<input name="x" <%- errors.attrs("x") %>>`.
    pub fn attrs(&self, field: &str) -> String {
        if self.errors.contains_key(field) {
            format!(
                r#"aria-invalid="true" aria-describedby="{}-error""#,
                escape(field)
            )
        } else {
            String::new()
        }
    }

    /// The message under a field (nothing when it has none): `<%- errors.message("x") %>`.
    pub fn message(&self, field: &str) -> String {
        match self.errors.get(field) {
            Some(m) => format!(
                r#"<p class="field-error" id="{}-error">{}</p>"#,
                escape(field),
                escape(m)
            ),
            None => String::new(),
        }
    }

    /// The general error above the form (nothing when there is none).
    pub fn summary(&self) -> String {
        match &self.general {
            Some(m) => format!(
                r#"<p class="banner banner-bad" role="alert">{}</p>"#,
                escape(m)
            ),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_field_error_is_shown_beside_its_field_and_escaped() {
        let errors =
            FieldErrors::from_api(ApiError::invalid_field("prefix", "must be <5 chars")).unwrap();
        assert_eq!(errors.get("prefix"), Some("must be <5 chars"));
        assert!(errors.message("prefix").contains("must be &lt;5 chars"));
        assert!(
            errors
                .attrs("prefix")
                .contains(r#"aria-describedby="prefix-error""#)
        );
        assert_eq!(errors.attrs("other"), "");
    }

    #[test]
    fn a_refusal_without_a_field_is_shown_above_the_form_and_a_server_error_is_not_a_form_error() {
        let errors = FieldErrors::from_api(ApiError::Conflict("taken".into())).unwrap();
        assert_eq!(errors.general.as_deref(), Some("taken"));
        assert!(FieldErrors::from_api(ApiError::Internal(anyhow::anyhow!("x"))).is_err());
    }

    #[test]
    fn one_line_prefers_the_general_error_then_the_named_fields_in_order() {
        let mut errors = FieldErrors::new();
        errors.add("description", "too long");
        errors.add("permissions", "not a known permission");
        assert_eq!(
            errors.one_line(&["permissions", "description"]),
            "permissions: not a known permission"
        );
        assert_eq!(errors.one_line(&["roles"]), "refused");
        errors.general = Some("the admin role always holds every permission".into());
        assert_eq!(
            errors.one_line(&["permissions"]),
            "the admin role always holds every permission"
        );
    }

    #[actix_web::test]
    async fn answer_runs_done_on_success_again_on_a_refusal_and_fails_on_a_server_error() {
        use actix_web::http::StatusCode;
        let done = |n: u16| HttpResponse::build(StatusCode::from_u16(n).unwrap()).finish();
        let again = |errors: FieldErrors| async move {
            assert_eq!(errors.get("name"), Some("is empty"));
            Ok(HttpResponse::UnprocessableEntity().finish())
        };
        let ok = answer(Ok::<_, ApiError>(303), done, again).await.unwrap();
        assert_eq!(ok.status(), StatusCode::SEE_OTHER);
        let refused = answer(
            Err::<u16, _>(ApiError::invalid_field("name", "is empty")),
            done,
            again,
        )
        .await
        .unwrap();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let failed = answer(
            Err::<u16, _>(ApiError::Internal(anyhow::anyhow!("disk full"))),
            done,
            // Would answer 200: a server error must never reach the form.
            |_| async { Ok(HttpResponse::Ok().finish()) },
        )
        .await;
        assert!(failed.is_err());
    }

    #[test]
    fn the_csrf_field_is_read_from_a_form_body() {
        assert_eq!(csrf_of(b"a=1&csrf_token=abc%20d"), Some("abc d".into()));
        assert_eq!(csrf_of(b"a=1"), None);
    }
}

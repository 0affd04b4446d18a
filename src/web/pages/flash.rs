//! Flash messages: a short note shown once on the page a form post redirects to ("Settings
//! saved"). Carried in a short-lived, HttpOnly, SameSite=Strict cookie, so it needs no server
//! state and survives the redirect; the page that shows it clears it.

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::{HttpRequest, HttpResponse};

const COOKIE: &str = "guildhall_flash";
/// A message longer than this is cut (a cookie must stay small).
const MAX_CHARS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ok,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub kind: Kind,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Self {
        Flash {
            kind: Kind::Ok,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Flash {
            kind: Kind::Error,
            text: text.into(),
        }
    }

    /// The CSS class of its banner.
    pub fn class(&self) -> &'static str {
        match self.kind {
            Kind::Ok => "banner banner-ok",
            Kind::Error => "banner banner-bad",
        }
    }

    /// Errors are announced at once by screen readers; confirmations politely.
    pub fn role(&self) -> &'static str {
        match self.kind {
            Kind::Ok => "status",
            Kind::Error => "alert",
        }
    }
}

/// The flash message the request carries, if any. Anything unreadable is ignored: the cookie
/// holds nothing but text to show (escaped, like all template output).
pub fn read(req: &HttpRequest) -> Vec<Flash> {
    let Some(cookie) = req.cookie(COOKIE) else {
        return Vec::new();
    };
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(cookie.value()) else {
        return Vec::new();
    };
    pairs
        .into_iter()
        .filter_map(|(kind, text)| {
            let kind = match kind.as_str() {
                "ok" => Kind::Ok,
                "error" => Kind::Error,
                _ => return None,
            };
            Some(Flash {
                kind,
                text: text.chars().take(MAX_CHARS).collect(),
            })
        })
        .take(3)
        .collect()
}

fn cookie(value: String) -> Cookie<'static> {
    Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(time::Duration::seconds(60))
        .finish()
}

/// Sets `message` to be shown on the next page.
pub fn set(response: &mut HttpResponse, message: &Flash) {
    let kind = match message.kind {
        Kind::Ok => "ok",
        Kind::Error => "error",
    };
    let text: String = message.text.chars().take(MAX_CHARS).collect();
    let value = serde_urlencoded::to_string([(kind, text)]).unwrap_or_default();
    // A cookie that cannot be added (it cannot fail for this shape) only loses the note.
    let _ = response.add_cookie(&cookie(value));
}

/// Removes the flash cookie (after the page showed it).
pub fn clear(response: &mut HttpResponse) {
    let mut gone = cookie(String::new());
    gone.make_removal();
    let _ = response.add_cookie(&gone);
}

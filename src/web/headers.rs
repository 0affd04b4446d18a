//! The security and caching headers every response carries, added by `middleware::Edge` after
//! the handler (and the error reshaping) ran, so no route can forget them:
//! - every response: `X-Content-Type-Options: nosniff`, and `Cache-Control: no-store` unless the
//!   handler chose a caching policy itself (static assets do). Tokens, account data and signed-in
//!   pages are therefore never stored by a browser or a proxy, whichever route carries them.
//! - HTML: a Content-Security-Policy that allows only this origin (no inline script or style, no
//!   framing, no `<base>`, forms post only here), `Referrer-Policy` and `X-Frame-Options` for
//!   browsers that predate `frame-ancestors`. A page that needs a nonce (the ReDoc page) sets its
//!   own policy, built with [`page_csp`], and keeps it. A page whose form is answered with a
//!   redirect to another site marks its response with [`FormRedirectsTo`] (see there).

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderMap, HeaderValue};

pub const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
pub const REFERRER_POLICY: HeaderValue = HeaderValue::from_static("same-origin");
pub const FRAME_OPTIONS: HeaderValue = HeaderValue::from_static("DENY");

/// Put in a page response's extensions when one of the page's forms is answered with a
/// redirect to this other origin (`https://discord.com`): browsers apply `form-action` to every
/// redirect that follows a submission, so with `form-action 'self'` alone the account page's
/// "Link Discord" button would be stopped before Discord's consent screen. The origin is added
/// to that page's `form-action` only.
#[derive(Debug, Clone)]
pub struct FormRedirectsTo(pub String);

/// The policy of every HTML page. `extra` adds source expressions per directive (a nonce).
/// `connect-src 'self'` covers `ws:`/`wss:` to the same host in CSP 3 browsers; the explicit
/// `ws://host wss://host` is there for the ones that read `'self'` as http(s) only.
pub fn page_csp(host: Option<&str>, style_extra: &str) -> String {
    page_csp_with_form_target(host, style_extra, None)
}

/// [`page_csp`], with `form_target` (an origin, see [`FormRedirectsTo`]) also allowed as the
/// destination of a form; left out if it is not a plain origin.
pub fn page_csp_with_form_target(
    host: Option<&str>,
    style_extra: &str,
    form_target: Option<&str>,
) -> String {
    let sockets = host
        .filter(|h| is_plain_host(h))
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    let forms = form_target
        .filter(|o| is_plain_origin(o))
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'{style_extra}; img-src 'self'; \
         font-src 'self'; connect-src 'self'{sockets}; manifest-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'{forms}"
    )
}

/// `http(s)://host[:port]` and nothing else (no path, nothing that could close the directive).
fn is_plain_origin(origin: &str) -> bool {
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|host| !host.contains('/') && is_plain_host(host))
}

/// A `Host` value safe to echo into a policy: name or address and port, nothing that could
/// close the directive (`;`, spaces, quotes).
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
}

/// Adds the headers above to a finished response.
pub fn secure<B>(mut res: ServiceResponse<B>) -> ServiceResponse<B> {
    let html = is_html(res.headers());
    let csp = (html && !res.headers().contains_key(header::CONTENT_SECURITY_POLICY)).then(|| {
        let info = res.request().connection_info();
        let target = res
            .response()
            .extensions()
            .get::<FormRedirectsTo>()
            .cloned();
        page_csp_with_form_target(Some(info.host()), "", target.as_ref().map(|t| t.0.as_str()))
    });
    let headers = res.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, NO_STORE);
    }
    if html {
        if let Some(value) = csp.and_then(|csp| HeaderValue::from_str(&csp).ok()) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
        headers.insert(header::REFERRER_POLICY, REFERRER_POLICY);
        headers.insert(header::X_FRAME_OPTIONS, FRAME_OPTIONS);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_policy_allows_only_this_origin_and_no_inline_code() {
        let csp = page_csp(Some("example.org:8080"), "");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "font-src 'self'",
            "connect-src 'self' ws://example.org:8080 wss://example.org:8080",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
    }

    #[test]
    fn a_host_that_could_inject_a_directive_is_left_out_of_the_policy() {
        for host in ["evil; script-src *", "a b", "x'y", ""] {
            let csp = page_csp(Some(host), "");
            assert!(csp.contains("connect-src 'self'; "), "{host}: {csp}");
            assert!(!csp.contains('*'), "{host}: {csp}");
        }
        assert!(page_csp(Some("[::1]:80"), "").contains("ws://[::1]:80"));
    }

    #[test]
    fn a_form_target_is_added_to_form_action_only_when_it_is_a_plain_origin() {
        let csp = page_csp_with_form_target(Some("example.org"), "", Some("https://discord.com"));
        assert!(
            csp.ends_with("form-action 'self' https://discord.com"),
            "{csp}"
        );
        let fake = page_csp_with_form_target(None, "", Some("http://127.0.0.1:4000"));
        assert!(
            fake.ends_with("form-action 'self' http://127.0.0.1:4000"),
            "{fake}"
        );
        for bad in [
            "https://discord.com/oauth2",
            "https://x; script-src *",
            "javascript:alert(1)",
            "discord.com",
            "https://",
        ] {
            let csp = page_csp_with_form_target(None, "", Some(bad));
            assert!(csp.ends_with("form-action 'self'"), "{bad}: {csp}");
        }
    }
}

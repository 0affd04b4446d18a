//! The security and caching headers every response carries, added by `middleware::Edge` after
//! the handler (and the error reshaping) ran, so no route can forget them:
//! - every response: `X-Content-Type-Options: nosniff`, and `Cache-Control: no-store` unless the
//!   handler chose a caching policy itself (static assets do). Tokens, account data and signed-in
//!   pages are therefore never stored by a browser or a proxy, whichever route carries them.
//! - HTML: a Content-Security-Policy that allows only this origin (no inline script or style, no
//!   framing, no `<base>`, forms post only here), `Referrer-Policy` and `X-Frame-Options` for
//!   browsers that predate `frame-ancestors`. A page that needs a nonce (the ReDoc page) sets its
//!   own policy, built with [`page_csp`], and keeps it.

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderMap, HeaderValue};

pub const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
pub const REFERRER_POLICY: HeaderValue = HeaderValue::from_static("same-origin");
pub const FRAME_OPTIONS: HeaderValue = HeaderValue::from_static("DENY");

/// The policy of every HTML page. `extra` adds source expressions per directive (a nonce).
/// `connect-src 'self'` covers `ws:`/`wss:` to the same host in CSP 3 browsers; the explicit
/// `ws://host wss://host` is there for the ones that read `'self'` as http(s) only.
pub fn page_csp(host: Option<&str>, style_extra: &str) -> String {
    let sockets = host
        .filter(|h| is_plain_host(h))
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'{style_extra}; img-src 'self'; \
         font-src 'self'; connect-src 'self'{sockets}; manifest-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
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
        page_csp(Some(info.host()), "")
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
}

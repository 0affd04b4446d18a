//! Static assets compiled into the binary, so an installed daemon needs no asset directory, no
//! Node and no CDN. Each asset is served under its plain name and under a content-hashed name
//! (`css/guildhall.<hash>.css`, what templates link through [`url`]): the hashed name is cached
//! for a year as immutable, the plain one for an hour; both carry a strong `ETag` (a 304 for a
//! matching `If-None-Match`) and are sent gzip-compressed to clients that accept it (compressed
//! once, on first use or by [`warm`] at start).

use std::io::Write;
use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use super::error::ApiError;

pub struct Asset {
    pub path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../../static/", $path)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("css/guildhall.css", "text/css; charset=utf-8"),
    asset!("js/guildhall.js", "text/javascript; charset=utf-8"),
    asset!("vendor/htmx/htmx.min.js", "text/javascript; charset=utf-8"),
    asset!("vendor/htmx/ws.min.js", "text/javascript; charset=utf-8"),
    asset!(
        "vendor/alpine/alpine-csp.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "vendor/redoc/redoc.standalone.js",
        "text/javascript; charset=utf-8"
    ),
];

/// Cache lifetimes: a hashed name never changes content; a plain one may after an upgrade.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const REVALIDATE: HeaderValue = HeaderValue::from_static("public, max-age=3600");
/// Below this, gzip saves less than its header and the CPU it costs.
const MIN_GZIP_BYTES: usize = 1024;

pub struct Prepared {
    asset: &'static Asset,
    /// `css/guildhall.0123456789abcdef.css`
    hashed_path: String,
    /// The identity representation's strong tag; the gzip one is this with `-gz` appended.
    etag: String,
    gzip: OnceLock<Option<Vec<u8>>>,
}

impl Prepared {
    fn gzip(&self) -> Option<&[u8]> {
        self.gzip
            .get_or_init(|| {
                if self.asset.body.len() < MIN_GZIP_BYTES {
                    return None;
                }
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                encoder.write_all(self.asset.body).ok()?;
                encoder.finish().ok()
            })
            .as_deref()
    }
}

fn table() -> &'static [Prepared] {
    static TABLE: OnceLock<Vec<Prepared>> = OnceLock::new();
    TABLE.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = hex::encode(Sha256::digest(asset.body));
                let short = &digest[..16];
                let hashed_path = match asset.path.rsplit_once('.') {
                    Some((stem, ext)) => format!("{stem}.{short}.{ext}"),
                    None => format!("{}.{short}", asset.path),
                };
                Prepared {
                    asset,
                    hashed_path,
                    etag: format!("\"{}\"", &digest[..32]),
                    gzip: OnceLock::new(),
                }
            })
            .collect()
    })
}

/// Compresses every asset ahead of the first request (called from a background thread at start).
pub fn warm() {
    for prepared in table() {
        let _ = prepared.gzip();
    }
}

/// The URL a page links an asset by: its content-hashed name. An unknown path (a typo in a
/// template) yields the plain URL, which then answers 404 and shows up in tests.
pub fn url(path: &str) -> String {
    table().iter().find(|p| p.asset.path == path).map_or_else(
        || format!("/static/{path}"),
        |p| format!("/static/{}", p.hashed_path),
    )
}

/// The asset and whether it was asked for by its hashed (immutable) name.
fn find(path: &str) -> Option<(&'static Prepared, bool)> {
    table().iter().find_map(|p| {
        if p.hashed_path == path {
            Some((p, true))
        } else if p.asset.path == path {
            Some((p, false))
        } else {
            None
        }
    })
}

pub fn named(path: &str) -> Option<&'static Prepared> {
    find(path).map(|(p, _)| p)
}

pub async fn asset(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let wanted = path.into_inner();
    let (prepared, immutable) =
        find(&wanted).ok_or_else(|| ApiError::NotFound(format!("asset `{wanted}` not found")))?;
    Ok(respond(&req, prepared, immutable))
}

/// The asset, compressed if the client accepts gzip, or a 304 if it has it already.
pub fn respond(req: &HttpRequest, prepared: &'static Prepared, immutable: bool) -> HttpResponse {
    let gzip = accepts_gzip(req).then(|| prepared.gzip()).flatten();
    let etag = match gzip {
        Some(_) => format!("{}-gz\"", prepared.etag.trim_end_matches('"')),
        None => prepared.etag.clone(),
    };
    let not_modified = matches_if_none_match(req, &prepared.etag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((
            header::CACHE_CONTROL,
            if immutable { IMMUTABLE } else { REVALIDATE },
        ))
        .insert_header((header::VARY, "Accept-Encoding"));
    if not_modified {
        return response.finish();
    }
    response.content_type(prepared.asset.content_type);
    match gzip {
        Some(body) => response
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(body),
        None => response.body(prepared.asset.body),
    }
}

/// `Accept-Encoding` names gzip (or `*`) with a non-zero weight.
fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// Weak comparison (RFC 9110 13.1.2): either representation's tag, weak or strong, matches.
fn matches_if_none_match(req: &HttpRequest, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == "*" || t == bare || t.strip_suffix("-gz") == Some(bare))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn every_asset_has_a_hashed_name_that_finds_it_as_immutable() {
        for asset in ASSETS {
            let url = url(asset.path);
            let hashed = url.strip_prefix("/static/").unwrap();
            assert_ne!(hashed, asset.path);
            let (found, immutable) = find(hashed).unwrap();
            assert_eq!(found.asset.path, asset.path);
            assert!(immutable);
            assert!(!find(asset.path).unwrap().1);
        }
        assert_eq!(url("nope.js"), "/static/nope.js");
    }

    #[test]
    fn gzip_is_chosen_only_when_the_client_accepts_it() {
        let cases = [
            (None, false),
            (Some("gzip"), true),
            (Some("br, gzip;q=0.5"), true),
            (Some("GZIP"), true),
            (Some("gzip;q=0"), false),
            (Some("identity"), false),
            (Some("*"), true),
        ];
        for (header, expected) in cases {
            let mut req = TestRequest::default();
            if let Some(h) = header {
                req = req.insert_header((header::ACCEPT_ENCODING, h));
            }
            assert_eq!(accepts_gzip(&req.to_http_request()), expected, "{header:?}");
        }
    }

    #[test]
    fn if_none_match_matches_either_representation_and_weak_tags() {
        let tag = "\"abc\"";
        let cases = [
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            ("\"abc-gz\"", true),
            ("\"x\", \"abc\"", true),
            ("*", true),
            ("\"abd\"", false),
        ];
        for (header, expected) in cases {
            let req = TestRequest::default()
                .insert_header((header::IF_NONE_MATCH, header))
                .to_http_request();
            assert_eq!(matches_if_none_match(&req, tag), expected, "{header}");
        }
    }

    #[test]
    fn compressed_assets_decompress_to_the_original() {
        use std::io::Read;
        let css = named("css/guildhall.css").unwrap();
        let gz = css.gzip().unwrap();
        assert!(gz.len() < css.asset.body.len());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, css.asset.body);
    }
}

//! Compression of the responses the handlers build in memory: dashboard pages (HTML) and JSON,
//! brotli or gzip as the client's `Accept-Encoding` prefers, done by the edge middleware once
//! the handler has answered.
//!
//! Not actix-web's `middleware::Compress`: that one wraps every body (WebSocket streams and
//! probes included), hands each chunk over 1 KiB to a blocking thread, answers 406 to an
//! `Accept-Encoding` it cannot satisfy, and keeps a strong `ETag` on a representation it
//! changed. Here only whole bodies of the two types are touched, compressed inline (a page is
//! tens of kilobytes: well under a millisecond), and the rest passes as it was:
//! - a response that is already encoded (the static assets, compressed once at start with
//!   their own tags), a WebSocket upgrade, a stream (CSV export), `/metrics` (its own type);
//! - a response with an `ETag`: its tag names the identity bytes, and a client sends it back
//!   in `If-Match`, so it must stay valid for what the client got;
//! - bodies under [`MIN_BYTES`], where the encoding costs more than it saves.

use std::io::Write;

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, AcceptEncoding, Encoding, Header, HeaderValue};

/// Below this a body is sent as it is.
pub const MIN_BYTES: usize = 1024;
/// brotli quality 5 and gzip level 6: near their best ratio for HTML at a fraction of the CPU
/// of the maximum settings (those suit the static assets, compressed once).
const BROTLI_QUALITY: u32 = 5;
const BROTLI_WINDOW: u32 = 22;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    fn header(self) -> HeaderValue {
        match self {
            Coding::Brotli => HeaderValue::from_static("br"),
            Coding::Gzip => HeaderValue::from_static("gzip"),
        }
    }

    pub fn encode(self, body: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Coding::Brotli => {
                let mut out = Vec::with_capacity(body.len() / 4);
                {
                    let mut writer = brotli::CompressorWriter::new(
                        &mut out,
                        4096,
                        BROTLI_QUALITY,
                        BROTLI_WINDOW,
                    );
                    writer.write_all(body)?;
                    writer.flush()?;
                }
                Ok(out)
            }
            Coding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4),
                    flate2::Compression::default(),
                );
                encoder.write_all(body)?;
                encoder.finish()
            }
        }
    }
}

/// The coding the client prefers among brotli and gzip (its q-values decide; on a tie brotli),
/// or `None` when it accepts neither or sent no `Accept-Encoding`.
pub fn preferred<T: actix_web::HttpMessage>(req: &T) -> Option<Coding> {
    static SUPPORTED: [Encoding; 3] = [Encoding::brotli(), Encoding::gzip(), Encoding::identity()];
    let accepted = AcceptEncoding::parse(req).ok()?;
    match accepted.negotiate(SUPPORTED.iter())? {
        e if e == Encoding::brotli() => Some(Coding::Brotli),
        e if e == Encoding::gzip() => Some(Coding::Gzip),
        _ => None,
    }
}

/// Whether a response of this status and these headers is one to compress (see the module
/// comment); the body's size is checked separately.
fn eligible(status: StatusCode, headers: &header::HeaderMap) -> bool {
    let ok_status = !matches!(
        status,
        StatusCode::SWITCHING_PROTOCOLS
            | StatusCode::NO_CONTENT
            | StatusCode::PARTIAL_CONTENT
            | StatusCode::NOT_MODIFIED
    );
    let textual = headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"text/html") || v.starts_with(b"application/json")
    });
    ok_status
        && textual
        && !headers.contains_key(header::CONTENT_ENCODING)
        && !headers.contains_key(header::ETAG)
}

/// The response, compressed when it qualifies and the client accepts a coding we offer.
pub fn response<B: MessageBody + 'static>(
    mut res: ServiceResponse<B>,
) -> ServiceResponse<EitherBody<B>> {
    let big_enough = matches!(
        res.response().body().size(),
        BodySize::Sized(n) if n >= MIN_BYTES as u64
    );
    if !(big_enough && eligible(res.status(), res.headers())) {
        return res.map_into_left_body();
    }
    // Whatever this client asked, a cache must key this answer on Accept-Encoding.
    res.headers_mut()
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let Some(coding) = preferred(res.request()) else {
        return res.map_into_left_body();
    };
    res.map_body(|head, body| match body.try_into_bytes() {
        Ok(bytes) => match coding.encode(&bytes) {
            Ok(compressed) => {
                head.headers_mut()
                    .insert(header::CONTENT_ENCODING, coding.header());
                EitherBody::right(BoxBody::new(compressed))
            }
            // Encoding into memory does not fail; were it to, the identity bytes still serve.
            Err(_) => EitherBody::right(BoxBody::new(bytes)),
        },
        // Sized but not in memory: left as it is.
        Err(body) => EitherBody::left(body),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_clients_preference_picks_the_coding() {
        let cases = [
            (Some("gzip, deflate, br, zstd"), Some(Coding::Brotli)),
            (Some("gzip"), Some(Coding::Gzip)),
            (Some("br;q=0.5, gzip"), Some(Coding::Gzip)),
            (Some("gzip;q=0, br;q=0"), None),
            (Some("identity"), None),
            (Some("deflate"), None),
            (None, None),
        ];
        for (accept, expected) in cases {
            let mut req = TestRequest::default();
            if let Some(accept) = accept {
                req = req.insert_header((header::ACCEPT_ENCODING, accept));
            }
            assert_eq!(preferred(&req.to_http_request()), expected, "{accept:?}");
        }
    }

    #[test]
    fn both_codings_decode_back_to_the_same_bytes() {
        let body = "<li>guildhall</li>".repeat(500);
        let gz = Coding::Gzip.encode(body.as_bytes()).unwrap();
        let mut back = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, body);
        let br = Coding::Brotli.encode(body.as_bytes()).unwrap();
        let mut back = String::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, body);
        assert!(br.len() < body.len() / 10 && gz.len() < body.len() / 10);
    }

    #[test]
    fn only_uncompressed_untagged_html_and_json_qualify() {
        let headers = |pairs: &[(header::HeaderName, &'static str)]| {
            let mut map = header::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(name.clone(), HeaderValue::from_static(value));
            }
            map
        };
        let html = (header::CONTENT_TYPE, "text/html; charset=utf-8");
        let json = (header::CONTENT_TYPE, "application/json");
        let cases = [
            (StatusCode::OK, headers(std::slice::from_ref(&html)), true),
            (
                StatusCode::NOT_FOUND,
                headers(std::slice::from_ref(&json)),
                true,
            ),
            (
                StatusCode::OK,
                headers(&[(header::CONTENT_TYPE, "text/plain; version=0.0.4")]),
                false,
            ),
            (
                StatusCode::OK,
                headers(&[(header::CONTENT_TYPE, "text/css")]),
                false,
            ),
            (
                StatusCode::OK,
                headers(&[json.clone(), (header::ETAG, "\"v1\"")]),
                false,
            ),
            (
                StatusCode::OK,
                headers(&[html.clone(), (header::CONTENT_ENCODING, "gzip")]),
                false,
            ),
            (StatusCode::SWITCHING_PROTOCOLS, headers(&[]), false),
            (StatusCode::NOT_MODIFIED, headers(&[html]), false),
        ];
        for (status, headers, expected) in cases {
            assert_eq!(eligible(status, &headers), expected, "{status} {headers:?}");
        }
    }
}

//! Who a request comes from. Behind a reverse proxy every connection's peer is the proxy, so the
//! client's address and scheme travel in `X-Forwarded-For` / `X-Forwarded-Proto` — headers that
//! anybody can also send. They are believed only when the peer is one of
//! `GUILDHALL_TRUSTED_PROXIES`, and then only up to the first hop that is not trusted.
//!
//! Everything that needs the client (rate limits, the audit log, the request logs, the
//! `Secure` cookie decision) asks [`origin`], so no two places can disagree about who a client is.

use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;

pub use crate::config::TrustedProxies;

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// Where a request really comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOrigin {
    /// `None` only for requests without a socket (in-memory test requests).
    pub ip: Option<IpAddr>,
    /// The client reached us over HTTPS (as a trusted proxy reports; guildhall itself speaks
    /// plain HTTP), so cookies may be marked `Secure`.
    pub https: bool,
}

impl ClientOrigin {
    /// The client address as a rate-limit key.
    pub fn key(&self) -> String {
        self.ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// The client of `req`, with the trusted proxies the application was configured with.
pub fn origin(req: &HttpRequest) -> ClientOrigin {
    let peer = req.peer_addr().map(|a| a.ip());
    match req.app_data::<TrustedProxies>() {
        Some(trusted) if !trusted.is_empty() => resolve(peer, req.headers(), trusted),
        _ => ClientOrigin {
            ip: peer.map(canonical),
            https: false,
        },
    }
}

/// The rule itself, free of actix so that it can be tested on its own: headers count only when
/// the peer is trusted; the client is the right-most `X-Forwarded-For` entry that is not a
/// trusted proxy (entries left of it were written by the client and prove nothing).
pub fn resolve(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> ClientOrigin {
    let Some(peer) = peer.map(canonical) else {
        return ClientOrigin {
            ip: None,
            https: false,
        };
    };
    if !trusted.contains(peer) {
        return ClientOrigin {
            ip: Some(peer),
            https: false,
        };
    }
    // Several X-Forwarded-For headers form one list, in order.
    let hops: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop a trusted proxy wrote but that is no address: the nearest known one stands.
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    let https = headers
        .get(X_FORWARDED_PROTO)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|scheme| scheme.trim().eq_ignore_ascii_case("https"));
    ClientOrigin {
        ip: Some(client),
        https,
    }
}

/// `203.0.113.7`, `2001:db8::1`, and the `addr:port` / `[v6]:port` forms some proxies write.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

use crate::config::canonical_ip as canonical;

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// (peer, headers, expected client, expected https)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, bool);

    #[test]
    fn the_client_is_the_right_most_untrusted_hop_behind_trusted_proxies() {
        let trusted = TrustedProxies::parse("127.0.0.1, ::1, 10.0.0.0/8").unwrap();
        let cases: &[Case] = &[
            // No proxy configured in front: the peer itself.
            ("198.51.100.9", &[], "198.51.100.9", false),
            // An untrusted peer forging headers gets nothing from them.
            (
                "198.51.100.9",
                &[
                    ("x-forwarded-for", "203.0.113.1"),
                    ("x-forwarded-proto", "https"),
                ],
                "198.51.100.9",
                false,
            ),
            // A trusted proxy: the address it appended.
            (
                "127.0.0.1",
                &[
                    ("x-forwarded-for", "203.0.113.7"),
                    ("x-forwarded-proto", "https"),
                ],
                "203.0.113.7",
                true,
            ),
            // A forged chain: the client prepended addresses; the proxy appended the real one.
            (
                "127.0.0.1",
                &[("x-forwarded-for", "10.1.2.3, 1.1.1.1, 203.0.113.7")],
                "203.0.113.7",
                false,
            ),
            // Two trusted hops (load balancer, then nginx): skipped right to left.
            (
                "::1",
                &[("x-forwarded-for", "203.0.113.7, 10.0.0.5")],
                "203.0.113.7",
                false,
            ),
            // Split over two headers, which is one list.
            (
                "127.0.0.1",
                &[
                    ("x-forwarded-for", "192.0.2.1"),
                    ("x-forwarded-for", "203.0.113.7, 10.0.0.5"),
                ],
                "203.0.113.7",
                false,
            ),
            // Every hop trusted: the left-most is as far as anyone can tell.
            (
                "127.0.0.1",
                &[("x-forwarded-for", "10.0.0.9, 10.0.0.5")],
                "10.0.0.9",
                false,
            ),
            // Garbage written by a trusted hop: the nearest known address stands.
            (
                "127.0.0.1",
                &[("x-forwarded-for", "203.0.113.7, unknown")],
                "127.0.0.1",
                false,
            ),
            // Ports and IPv6.
            (
                "127.0.0.1",
                &[("x-forwarded-for", "[2001:db8::7]:4711")],
                "2001:db8::7",
                false,
            ),
            // A trusted proxy without the header: the proxy itself.
            ("127.0.0.1", &[], "127.0.0.1", false),
            // Dual-stack listeners see IPv4 peers as mapped addresses.
            (
                "::ffff:127.0.0.1",
                &[
                    ("x-forwarded-for", "203.0.113.7"),
                    ("x-forwarded-proto", "HTTPS"),
                ],
                "203.0.113.7",
                true,
            ),
        ];
        for (peer, pairs, client, https) in cases {
            let got = resolve(Some(ip(peer)), &headers(pairs), &trusted);
            assert_eq!(
                got,
                ClientOrigin {
                    ip: Some(ip(client)),
                    https: *https
                },
                "peer {peer} with {pairs:?}"
            );
        }
    }

    #[test]
    fn with_no_trusted_proxy_forwarding_headers_are_ignored_even_from_loopback() {
        let got = resolve(
            Some(ip("127.0.0.1")),
            &headers(&[
                ("x-forwarded-for", "203.0.113.1"),
                ("x-forwarded-proto", "https"),
            ]),
            &TrustedProxies::default(),
        );
        assert_eq!(got.ip, Some(ip("127.0.0.1")));
        assert!(!got.https);
    }
}

//! `GUILDHALL_TRUSTED_PROXIES`: the reverse proxies whose forwarding headers `web::client`
//! believes.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

/// The proxies whose forwarding headers are believed. Empty (the default) believes nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// A list of addresses or CIDR blocks separated by commas or whitespace, e.g.
    /// `127.0.0.1, ::1, 10.0.0.0/8`. A bare address trusts that address alone.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let nets = raw
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| format!("`{entry}` is neither an IP address nor a CIDR block"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(nets.into()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for net in self.0.iter() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// A dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`; they are the same client.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn trusted_proxy_lists_parse_addresses_and_blocks_and_refuse_the_rest() {
        let parsed = TrustedProxies::parse(" 127.0.0.1,::1  10.0.0.0/8 192.168.1.77/24").unwrap();
        assert_eq!(
            parsed.to_string(),
            "127.0.0.1/32,::1/128,10.0.0.0/8,192.168.1.0/24"
        );
        assert!(parsed.contains(ip("192.168.1.200")));
        assert!(!parsed.contains(ip("192.168.2.1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        for bad in ["localhost", "10.0.0.0/33", "1.2.3"] {
            let err = TrustedProxies::parse(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}

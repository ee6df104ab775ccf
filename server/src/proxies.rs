//! Which client address a request comes from, behind load balancers.
//!
//! The address matters: it is throttled, logged, and shown to a superseded tab ("taken over
//! from 203.0.113.7"). `X-Forwarded-For` is written by whoever sent the request, so it is
//! believed only from the proxies named in `--trusted-proxies`: from anyone else, the client
//! is the TCP peer, whatever the header says.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The header a proxy appends the address it received the request from to.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `X-Forwarded-For` is believed. Empty (the default): none.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self(networks.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|network| network.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with `headers`.
    ///
    /// From an untrusted peer: the peer. From a trusted one: walking `X-Forwarded-For` from
    /// its right end (the entry the nearest proxy wrote), the first address that is not a
    /// trusted proxy. Entries left of it were written by the client and prove nothing. If
    /// an entry cannot be read, the walk stops at the last address it could trust.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        // Several headers count as one list, in order (RFC 9110, section 5.3).
        let values: Vec<&str> = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .map(|value| value.to_str().unwrap_or(""))
            .collect();
        let entries = values.iter().flat_map(|value| value.split(',')).rev();
        for entry in entries {
            let Some(hop) = parse_hop(entry.trim()) else {
                break;
            };
            client = hop;
            if !self.contains(hop) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, or one with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))?;
    Some(ip.to_canonical())
}

/// Parses one `--trusted-proxies` entry: a CIDR block, or a single address.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("{text:?} is not an IP address or a CIDR block (e.g. 10.0.0.0/8, ::1)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|n| parse_network(n).unwrap()))
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(FORWARDED_FOR, value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        let headers = forwarded(&["198.51.100.1"]);
        assert_eq!(
            none.client_ip(ip("203.0.113.9"), &headers),
            ip("203.0.113.9")
        );
        let some = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            some.client_ip(ip("203.0.113.9"), &headers),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_client_and_a_forged_prefix_is_ignored() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client forged "1.1.1.1"; the proxy appended the address it really saw.
        let headers = forwarded(&["1.1.1.1, 203.0.113.9"]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &headers),
            ip("203.0.113.9")
        );
        // Two trusted proxies in a row, over two headers.
        let headers = forwarded(&["1.1.1.1, 203.0.113.9", "10.1.2.3"]);
        assert_eq!(
            trusted.client_ip(ip("10.9.9.9"), &headers),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_trusted_peer_without_a_usable_header_is_its_own_client() {
        let trusted = proxies(&["127.0.0.1/32"]);
        let peer = ip("127.0.0.1");
        assert_eq!(trusted.client_ip(peer, &HeaderMap::new()), peer);
        // Garbage stops the walk at the last address that could be trusted.
        let headers = forwarded(&["203.0.113.9, not-an-ip"]);
        assert_eq!(trusted.client_ip(peer, &headers), peer);
        // Every entry a trusted proxy: the left-most one is as far as anyone can tell.
        let headers = forwarded(&["127.0.0.1"]);
        assert_eq!(trusted.client_ip(peer, &headers), peer);
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_read() {
        let trusted = proxies(&["::1"]);
        let headers = forwarded(&["[2001:db8::7]:4711"]);
        assert_eq!(trusted.client_ip(ip("::1"), &headers), ip("2001:db8::7"));
        let headers = forwarded(&["::ffff:203.0.113.9"]);
        assert_eq!(trusted.client_ip(ip("::1"), &headers), ip("203.0.113.9"));
        // A mapped IPv4 peer matches an IPv4 block.
        let v4 = proxies(&["127.0.0.0/8"]);
        let headers = forwarded(&["198.51.100.4"]);
        assert_eq!(
            v4.client_ip(ip("::ffff:127.0.0.1"), &headers),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn a_bad_network_is_named_in_the_error() {
        assert_eq!(
            parse_network("10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(parse_network(" ::1 ").unwrap().to_string(), "::1/128");
        let error = parse_network("10.0.0.0/33").unwrap_err();
        assert!(error.contains("\"10.0.0.0/33\""), "{error}");
        assert!(parse_network("proxy.example").is_err());
    }
}

//! The client's address, which anonymous rate limits count by: the TCP peer, or, when the peer is one of
//! `THUMBQ_TRUSTED_PROXIES`, the address those proxies forwarded.
//!
//! Only a trusted peer's forwarding headers are read, and only from the right: each proxy appends the address it
//! received the request from, so the right-most address that is not itself a trusted proxy is the first one no
//! trusted party vouches for beyond. Anything left of it was written by the client and proves nothing. Written
//! here because the crates that do this (axum-client-ip and the like) trust a fixed header or the left-most entry,
//! which a client can pick.
//!
//! `X-Forwarded-For` is read when present (nginx, Envoy, Traefik, HAProxy and cloud load balancers set it);
//! `Forwarded` (RFC 7239) only when it is absent, so a client cannot add a `Forwarded` header of its own that an
//! `X-Forwarded-For` proxy passes through.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName, header};
use ipnet::IpNet;

/// The address a request counts against: `peer`, unless `peer` is a trusted proxy and the forwarding headers name
/// an untrusted address.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let xff = HeaderName::from_static("x-forwarded-for");
    let chain: Vec<Option<IpAddr>> = if headers.contains_key(&xff) {
        values(headers, &xff).map(parse_hop).collect()
    } else {
        values(headers, &header::FORWARDED).map(forwarded_for).collect()
    };
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if is_trusted(*ip, trusted) => {}
            Some(ip) => return *ip,
            // A hop that is not an address (`unknown`, an obfuscated name, garbage): nothing past it can be
            // trusted, and it names no bucket of its own, so the request counts against the proxy.
            None => return peer,
        }
    }
    // Every hop was a trusted proxy (or there were none): the request began inside.
    chain.first().copied().flatten().unwrap_or(peer)
}

/// Whether `ip` is one of the trusted proxies (IPv4-mapped IPv6 peers compared as IPv4).
pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|net| net.contains(&ip))
}

/// Every comma-separated entry of every instance of a header, in order.
fn values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a str> {
    headers.get_all(name).iter().flat_map(|v| v.to_str().unwrap_or("\u{0}").split(',')).map(str::trim)
}

/// One `X-Forwarded-For` hop: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1` or `[2001:db8::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
        .map(|ip| ip.to_canonical())
}

/// The `for=` address of one `Forwarded` element (`for=192.0.2.60;proto=http`, `for="[2001:db8::17]:4711"`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
        .and_then(|(_, value)| parse_hop(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let peer: IpAddr = "203.0.113.7".parse().unwrap();
        let spoof = headers(&[("x-forwarded-for", "198.51.100.1"), ("forwarded", "for=198.51.100.2")]);
        assert_eq!(client_ip(peer, &spoof, &[]), peer);
        assert_eq!(client_ip(peer, &spoof, &nets(&["10.0.0.0/8"])), peer);
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        // The client wrote the left-most entry itself; the ingress appended the address it saw.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.9")]);
        assert_eq!(client_ip(proxy, &h, &trusted), "198.51.100.9".parse::<IpAddr>().unwrap());
        // Two trusted hops (a CDN edge inside, then the ingress), across two header lines and with ports.
        let h = headers(&[("x-forwarded-for", "198.51.100.9:5555"), ("x-forwarded-for", "10.9.9.9, [fd00::1]:80")]);
        assert_eq!(client_ip(proxy, &h, &trusted), "198.51.100.9".parse::<IpAddr>().unwrap());
        // Forwarded only when there is no X-Forwarded-For.
        let h = headers(&[("forwarded", "for=1.1.1.1, for=\"[2001:db8::17]:4711\";proto=https")]);
        assert_eq!(client_ip(proxy, &h, &trusted), "2001:db8::17".parse::<IpAddr>().unwrap());
        let h = headers(&[("forwarded", "for=1.1.1.1"), ("x-forwarded-for", "198.51.100.9")]);
        assert_eq!(client_ip(proxy, &h, &trusted), "198.51.100.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn what_cannot_be_read_counts_against_the_proxy() {
        let trusted = nets(&["10.0.0.0/8"]);
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        for value in ["unknown", "not-an-address", "1.1.1.1, garbage"] {
            assert_eq!(client_ip(proxy, &headers(&[("x-forwarded-for", value)]), &trusted), proxy, "{value}");
        }
        assert_eq!(client_ip(proxy, &headers(&[("forwarded", "for=_hidden")]), &trusted), proxy);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy, "no header: the proxy's own request");
        // Only trusted hops: the left-most, which a trusted proxy wrote.
        let h = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]);
        assert_eq!(client_ip(proxy, &h, &trusted), "10.0.0.5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn mapped_ipv6_peers_match_ipv4_proxies() {
        let peer: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(is_trusted(peer, &nets(&["10.0.0.0/8"])));
    }
}

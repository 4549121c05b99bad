//! Which IP addresses are globally reachable: one table per family, drawn from the IANA IPv4 and IPv6
//! Special-Purpose Address Registries (each row names its RFC), and the IPv4 addresses that IPv6 translation and
//! tunnelling forms carry. An address is judged by what it reaches, never by how it is written.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is globally reachable: in no range of the tables that is not, and, for an IPv6 address that
/// carries IPv4 addresses (mapped, compatible, SIIT, NAT64, 6to4, Teredo), carrying none that is not.
pub(super) fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !internal_v4(v4),
        IpAddr::V6(v6) => !internal_v6(v6),
    }
}

/// IPv4 ranges that are not globally reachable: the IANA IPv4 Special-Purpose Address Registry's entries marked
/// so, and multicast. All of 192.0.0.0/24 is refused, the PCP and TURN anycast addresses (192.0.0.9, .10) too,
/// though the registry calls them global: they answer from the nearest server, often the caller's own gateway.
const V4_INTERNAL: [(Ipv4Addr, u8); 15] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network" (RFC 791)
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private (RFC 1918)
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared, carrier-grade NAT; Alibaba Cloud's metadata (RFC 6598)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback (RFC 1122)
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, with 169.254.169.254 metadata (RFC 3927)
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private (RFC 1918)
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments, DS-Lite, NAT64 discovery (RFC 6890)
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation, TEST-NET-1 (RFC 5737)
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast, deprecated; 6a44 relay (RFC 7526, RFC 6751)
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private (RFC 1918)
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking (RFC 2544)
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation, TEST-NET-2 (RFC 5737)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation, TEST-NET-3 (RFC 5737)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast (RFC 5771; not in the registry, not unicast)
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, with 255.255.255.255 limited broadcast (RFC 1112, RFC 919)
];

/// How far an IPv6 range reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// Not globally reachable: refused.
    Internal,
    /// Globally reachable, though inside a range that is not.
    Global,
    /// It carries an IPv4 address (or two) and goes where that goes: judged by them.
    Carries(Embedding),
}

/// Where an IPv6 address carries the IPv4 address it reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Embedding {
    /// In its last 32 bits (RFC 6052's /96 form, mapped, compatible, SIIT).
    Low32,
    /// In bits 16..48, the 6to4 router's address (RFC 3056).
    SixToFour,
    /// The Teredo server in bits 32..64 and the client, inverted, in the last 32 bits (RFC 4380).
    Teredo,
}

/// IPv6 ranges of the IANA IPv6 Special-Purpose Address Registry, and the few other ranges that are not global
/// unicast. The longest prefix that holds an address decides; an address in none is global. All of 2001:1::/32
/// is refused, the PCP, TURN and SRP anycast addresses too, for the reason given for 192.0.0.0/24.
const V6_RANGES: [(Ipv6Addr, u8, Reach); 25] = {
    use Embedding::*;
    use Reach::*;
    [
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 128, Internal), // unspecified (RFC 4291)
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128, Internal), // loopback (RFC 4291)
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96, Carries(Low32)), // IPv4-compatible, deprecated (RFC 4291)
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, Carries(Low32)), // IPv4-mapped: a socket to the IPv4 (RFC 4291)
        (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, Carries(Low32)), // IPv4-translated, SIIT (RFC 2765, RFC 7915)
        (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, Carries(Low32)), // NAT64 well-known prefix (RFC 6052)
        (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, Internal),    // local-use NAT64 (RFC 8215)
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, Internal),        // discard-only (RFC 6666)
        (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64, Internal),        // dummy prefix (RFC 9780)
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, Internal),       // IETF protocol assignments (RFC 2928)
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, Carries(Teredo)), // Teredo (RFC 4380)
        (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48, Internal),       // benchmarking (RFC 5180)
        (Ipv6Addr::new(0x2001, 3, 0, 0, 0, 0, 0, 0), 32, Global),         // AMT (RFC 7450)
        (Ipv6Addr::new(0x2001, 4, 0x112, 0, 0, 0, 0, 0), 48, Global),     // AS112-v6 (RFC 7535)
        (Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28, Internal),    // ORCHID, deprecated (RFC 4843)
        (Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28, Global),      // ORCHIDv2 (RFC 7343)
        (Ipv6Addr::new(0x2001, 0x30, 0, 0, 0, 0, 0, 0), 28, Global),      // drone remote ID, DETs (RFC 9374)
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, Internal),   // documentation (RFC 3849)
        (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, Carries(SixToFour)), // 6to4 (RFC 3056)
        (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, Internal),       // documentation (RFC 9637)
        (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16, Internal),       // segment routing SIDs (RFC 9602)
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, Internal), // unique local, AWS's fd00:ec2::254 (RFC 4193)
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, Internal), // link-local (RFC 4291)
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, Internal), // site-local, deprecated (RFC 3879)
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, Internal), // multicast (RFC 4291; not unicast)
    ]
};

/// The network mask of a prefix of `len` bits (a shift by the full width is `None`: a /0 masks nothing).
fn mask_v4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// The network mask of an IPv6 prefix of `len` bits.
fn mask_v6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    V4_INTERNAL.iter().any(|&(net, len)| u32::from(ip) & mask_v4(len) == u32::from(net))
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let holds = |&&(net, len, _): &&(Ipv6Addr, u8, Reach)| u128::from(ip) & mask_v6(len) == u128::from(net);
    let reach = V6_RANGES.iter().filter(holds).max_by_key(|(_, len, _)| *len).map(|(_, _, reach)| *reach);
    match reach {
        None | Some(Reach::Global) => false,
        Some(Reach::Internal) => true,
        Some(Reach::Carries(embedding)) => carried_v4(ip, embedding).into_iter().flatten().any(internal_v4),
    }
}

/// The IPv4 addresses an IPv6 address carries, in the form its range uses.
fn carried_v4(ip: Ipv6Addr, embedding: Embedding) -> [Option<Ipv4Addr>; 2] {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match embedding {
        Embedding::Low32 => [Some(v4(s[6], s[7])), None],
        Embedding::SixToFour => [Some(v4(s[1], s[2])), None],
        // The client's address is stored inverted ("obfuscated") so that NATs do not rewrite it.
        Embedding::Teredo => [Some(v4(s[2], s[3])), Some(v4(!s[6], !s[7]))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(text: &str) -> bool {
        is_global(text.parse().unwrap_or_else(|_| panic!("{text} is an address")))
    }

    #[test]
    fn every_special_purpose_range_that_is_not_globally_reachable_is_refused() {
        for ip in [
            "192.88.99.1",    // 6to4 relay anycast
            "192.0.0.170",    // NAT64 discovery
            "192.0.0.9",      // PCP anycast: the nearest server may be one's own gateway
            "192.0.2.10",     // TEST-NET-1
            "198.51.100.7",   // TEST-NET-2
            "203.0.113.9",    // TEST-NET-3
            "198.19.255.255", // benchmarking
            "100::1",         // discard-only
            "100:0:0:1::1",   // dummy prefix
            "2001:2::1",      // benchmarking
            "2001:10::1",     // ORCHID
            "2001:1::1",      // PCP anycast
            "2001:100::1",    // unassigned IETF protocol assignments
            "3fff::1",        // documentation
            "5f00::1",        // segment routing
        ] {
            assert!(!global(ip), "{ip}");
        }
        // Globally reachable: public addresses, the registry's exceptions, and the edges of refused ranges.
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "192.31.196.1", // AS112
            "192.52.193.1", // AMT
            "192.0.3.1",    // just past TEST-NET-1
            "198.20.0.1",   // just past benchmarking
            "192.88.100.1", // just past the 6to4 relay
            "2001:3::1",    // AMT
            "2001:20::1",   // ORCHIDv2
            "2001:200::1",  // just past 2001::/23
            "2400:cb00::1",
        ] {
            assert!(global(ip), "{ip}");
        }
    }

    #[test]
    fn translation_prefixes_are_judged_by_the_ipv4_address_they_carry_or_refused_when_local() {
        for ip in [
            "64:ff9b:1::a00:1",                     // local-use NAT64, whatever it carries
            "64:ff9b:1::808:808",                   // even a public address
            "::ffff:0:a9fe:a9fe",                   // SIIT of 169.254.169.254
            "::ffff:0:10.0.0.1",                    // SIIT
            "64:ff9b::a9fe:a9fe",                   // NAT64 of the metadata service
            "2002:c058:6301::",                     // 6to4 of the 6to4 relay
            "2001:0:4136:e378:8000:63bf:f5ff:fffe", // Teredo, client 10.0.0.1
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo, client 192.0.2.45 (RFC 4380's example)
            "2001:0:a00:1::f7f7:f7f7",              // Teredo, server 10.0.0.1
        ] {
            assert!(!global(ip), "{ip}");
        }
        for ip in [
            "64:ff9b::808:808",
            "::ffff:0:8.8.8.8",
            "::ffff:8.8.8.8",
            "2002:808:808::",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo, server 65.54.227.120, client 8.8.8.8
        ] {
            assert!(global(ip), "{ip}");
        }
    }

    #[test]
    fn every_range_in_the_tables_is_a_network_address() {
        for (net, len) in V4_INTERNAL {
            assert_eq!(u32::from(net) & !mask_v4(len), 0, "{net}/{len}");
        }
        for (net, len, _) in V6_RANGES {
            assert_eq!(u128::from(net) & !mask_v6(len), 0, "{net}/{len}");
        }
    }
}

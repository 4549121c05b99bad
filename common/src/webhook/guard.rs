//! The address guard of outgoing webhooks (SSRF): a `callback_url` may only reach the public internet, unless
//! `THUMBQ_WEBHOOK_ALLOW_PRIVATE=1`. The URL is checked when the upload names it (scheme, host, literal addresses,
//! length), and every address its host resolves to is checked again at delivery, by the resolver the HTTP client
//! connects through, so the connection goes to an address that was checked and no second lookup can swap it (DNS
//! rebinding). Which addresses are public is decided in [`ranges`]. Written here because no maintained crate covers
//! the IPv4-in-IPv6 forms and the cloud metadata names (`Ipv6Addr::is_global` is unstable and ignores embedded
//! IPv4 addresses).

mod ranges;

use std::net::IpAddr;

use url::{Host, Url};

/// Longest `callback_url` accepted, as given and as stored (normalised and percent-encoded).
pub const MAX_URL_LEN: usize = 2048;

/// Host names of cloud metadata services that do not look internal by their address alone.
const METADATA_HOSTS: [&str; 3] = ["metadata.google.internal", "metadata.goog", "metadata"];

/// Why a webhook target is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// Not a URL, or longer than [`MAX_URL_LEN`] as given or once normalised.
    #[error("callback_url is not a URL: {0}")]
    NotAUrl(String),
    /// A scheme other than http and https, credentials in the URL, or no host.
    #[error("callback_url must be an http or https URL with a host and no credentials")]
    Scheme,
    /// An address that is not on the public internet.
    #[error(
        "callback_url reaches {0}, an internal address (loopback, private, link-local, metadata or another \
         special-purpose range that is not globally reachable): refused (a receiver inside your own network needs \
         THUMBQ_WEBHOOK_ALLOW_PRIVATE=1 on the service)"
    )]
    Internal(IpAddr),
    /// A cloud metadata service's name.
    #[error("callback_url names a cloud metadata service: refused")]
    Metadata,
}

/// Checks a `callback_url`: http or https, a host, no user or password, at most [`MAX_URL_LEN`] characters as
/// stored; with `allow_private` off, no internal literal address and no metadata host name. Decimal, octal and
/// hexadecimal IPv4 spellings (`2130706433`, `0177.0.0.1`) are addresses too: the WHATWG parser reads them as
/// such, so they are checked as addresses.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, Refusal> {
    let too_long = |what: &str| Refusal::NotAUrl(format!("longer than {MAX_URL_LEN} characters{what}"));
    if text.len() > MAX_URL_LEN {
        return Err(too_long(""));
    }
    let url = Url::parse(text).map_err(|e| Refusal::NotAUrl(e.to_string()))?;
    // Parsing percent-encodes (a space becomes `%20`), so the URL stored and sent can be three times the text:
    // the bound holds for what is kept, or a URL accepted here would only be refused at delivery.
    if url.as_str().len() > MAX_URL_LEN {
        return Err(too_long(" once normalised (percent-encoded)"));
    }
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Scheme);
    }
    let host = url.host().ok_or(Refusal::Scheme)?;
    if !allow_private {
        match host {
            Host::Ipv4(ip) => check_ip(IpAddr::V4(ip))?,
            Host::Ipv6(ip) => check_ip(IpAddr::V6(ip))?,
            Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if METADATA_HOSTS.contains(&name.as_str()) {
                    return Err(Refusal::Metadata);
                }
            }
        }
    }
    Ok(url)
}

/// Refuses every address that is not globally reachable: each range of the IANA special-purpose registries
/// that is not (loopback, private, shared, link-local with the metadata services, documentation, benchmarking,
/// local-use translation, discard-only...), multicast, and any IPv6 address carrying an IPv4 address that is
/// refused (mapped, compatible, SIIT, NAT64, 6to4, Teredo).
pub fn check_ip(ip: IpAddr) -> Result<(), Refusal> {
    if ranges::is_global(ip) { Ok(()) } else { Err(Refusal::Internal(ip)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        check_url(url, false).is_err()
    }

    #[test]
    fn public_http_and_https_urls_pass() {
        for url in [
            "https://hooks.example.com/thumbq",
            "http://93.184.216.34:8080/hook?x=1",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
            "https://8.8.8.8/",
            "https://1.1.1.1/",
            "https://[2606:4700::1111]/",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
    }

    #[test]
    fn other_schemes_credentials_and_garbage_are_refused_even_when_private_targets_are_allowed() {
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com:70/",
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "not a url",
            "/relative/path",
        ] {
            assert!(check_url(url, true).is_err(), "{url}");
        }
        assert!(check_url(&format!("https://example.com/{}", "a".repeat(MAX_URL_LEN)), true).is_err());
    }

    #[test]
    fn the_length_bound_holds_for_the_url_as_stored_after_percent_encoding() {
        // 1,029 characters as given; each space becomes `%20`, so 3,029 once normalised.
        let spaced = format!("https://hooks.example.com/{}end", " ".repeat(1000));
        assert_eq!(spaced.len(), 1029);
        assert_eq!(Url::parse(&spaced).unwrap().as_str().len(), 3029);
        let refusal = check_url(&spaced, true).unwrap_err();
        assert!(refusal.to_string().contains("once normalised"), "{refusal}");
        // The longest URL that needs no encoding passes as it is.
        let longest = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN - 26));
        assert_eq!(check_url(&longest, false).unwrap().as_str().len(), MAX_URL_LEN);
    }

    #[test]
    fn loopback_private_link_local_and_metadata_addresses_are_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://127.1.2.3:9000/",
            "http://10.0.0.5/",
            "http://172.16.3.4/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.100.100.200/",
            "http://0.0.0.0/",
            "http://255.255.255.255/",
            "http://224.0.0.1/",
            "http://240.0.0.1/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.google.internal./",
            "http://metadata/",
        ] {
            assert!(refused(url), "{url}");
        }
        assert!(check_url("http://172.32.0.1/", false).is_ok(), "just outside 172.16/12");
        assert!(check_url("http://100.128.0.1/", false).is_ok(), "just outside 100.64/10");
    }

    #[test]
    fn the_special_purpose_forms_the_hostile_test_found_are_refused_at_upload() {
        for url in crate::fixtures::SPECIAL_PURPOSE_WEBHOOK_URLS {
            let refusal = check_url(url, false).unwrap_err();
            assert!(matches!(refusal, Refusal::Internal(_)), "{url}: {refusal}");
        }
    }

    #[test]
    fn decimal_octal_and_hex_spellings_of_internal_addresses_are_refused() {
        for url in [
            "http://2130706433/",   // 127.0.0.1 as one decimal number
            "http://0177.0.0.1/",   // octal
            "http://0x7f.0.0.1/",   // hexadecimal
            "http://0x7f000001/",   // one hexadecimal number
            "http://127.1/",        // short form
            "http://017700000001/", // one octal number
            "http://2852039166/",   // 169.254.169.254
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://012.0.0.1/", // 10.0.0.1
        ] {
            assert!(refused(url), "{url}");
        }
    }

    #[test]
    fn ipv6_forms_of_internal_addresses_are_refused() {
        for url in [
            "http://[::1]/",
            "http://[::]/",
            "http://[0:0:0:0:0:0:0:1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::127.0.0.1]/",
            "http://[::10.0.0.1]/",
            "http://[64:ff9b::10.1.2.3]/",
            "http://[2002:7f00:1::]/",
            "http://[2002:a9fe:a9fe::1]/",
            "http://[fd00:ec2::254]/",
            "http://[fc00::1]/",
            "http://[fe80::1]/",
            "http://[fec0::1]/",
            "http://[ff02::1]/",
            "http://[2001:db8::1]/",
        ] {
            assert!(refused(url), "{url}");
        }
        assert!(check_url("http://[::ffff:8.8.8.8]/", false).is_ok(), "a mapped public address");
        assert!(check_url("http://[2002:808:808::]/", false).is_ok(), "6to4 of a public address");
    }

    #[test]
    fn with_private_targets_allowed_loopback_passes() {
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("http://localhost:9000/hook", true).is_ok());
        assert!(check_url("http://[::1]:9000/hook", true).is_ok());
    }

    #[test]
    fn resolved_addresses_are_checked_one_by_one() {
        assert!(check_ip("127.0.0.1".parse().unwrap()).is_err());
        assert!(check_ip("::ffff:10.1.1.1".parse().unwrap()).is_err());
        assert!(check_ip("64:ff9b:1::a00:1".parse().unwrap()).is_err());
        assert!(check_ip("93.184.216.34".parse().unwrap()).is_ok());
        assert!(check_ip("2606:4700::1111".parse().unwrap()).is_ok());
    }
}

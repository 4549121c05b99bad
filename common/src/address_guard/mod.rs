//! The address guard of requests to URLs that users name (SSRF): a webhook's `callback_url` and an import's
//! `source` may only reach the public internet, unless the service allows private targets for that purpose
//! (`THUMBQ_WEBHOOK_ALLOW_PRIVATE`, `THUMBQ_FETCH_ALLOW_PRIVATE`). The URL is checked when a request names it
//! (scheme, host, literal addresses, length), and every address its host resolves to is checked again when it is
//! reached, by the resolver the worker's HTTP client connects through, so the connection goes to an address that
//! was checked and no second lookup can swap it (DNS rebinding). Which addresses are public is decided in
//! [`ranges`]. Written here because no maintained crate covers the IPv4-in-IPv6 forms and the cloud metadata names
//! (`Ipv6Addr::is_global` is unstable and ignores embedded IPv4 addresses).

mod ranges;

use std::net::IpAddr;

use url::{Host, Url};

/// Longest URL accepted, as given and as stored (normalised and percent-encoded).
pub const MAX_URL_LEN: usize = 2048;

/// Host names of cloud metadata services that do not look internal by their address alone.
const METADATA_HOSTS: [&str; 3] = ["metadata.google.internal", "metadata.goog", "metadata"];

/// What a guarded URL is for: it names the field and the setting in refusals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A completion webhook's `callback_url`.
    Webhook,
    /// An import's `source`, fetched by a worker.
    Fetch,
}

impl Purpose {
    /// The request field that names the URL.
    pub fn field(self) -> &'static str {
        match self {
            Self::Webhook => "callback_url",
            Self::Fetch => "source",
        }
    }

    /// The setting that allows private targets.
    pub fn setting(self) -> &'static str {
        match self {
            Self::Webhook => "THUMBQ_WEBHOOK_ALLOW_PRIVATE",
            Self::Fetch => "THUMBQ_FETCH_ALLOW_PRIVATE",
        }
    }
}

/// Why a URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// Not a URL, or longer than [`MAX_URL_LEN`] as given or once normalised.
    #[error("{field} is not a URL: {reason}", field = .0.field(), reason = .1)]
    NotAUrl(Purpose, String),
    /// A scheme other than http and https, credentials in the URL, or no host.
    #[error("{} must be an http or https URL with a host and no credentials", .0.field())]
    Scheme(Purpose),
    /// An address that is not on the public internet.
    #[error(
        "{field} reaches {ip}, an internal address (loopback, private, link-local, metadata or another special-purpose \
         range that is not globally reachable): refused (a target inside your own network needs {setting}=1 on the \
         service)",
        field = .0.field(),
        ip = .1,
        setting = .0.setting()
    )]
    Internal(Purpose, IpAddr),
    /// A cloud metadata service's name.
    #[error("{} names a cloud metadata service: refused", .0.field())]
    Metadata(Purpose),
}

/// Checks a URL for `purpose`: http or https, a host, no user or password, at most [`MAX_URL_LEN`] characters as
/// stored; with `allow_private` off, no internal literal address and no metadata host name. Decimal, octal and
/// hexadecimal IPv4 spellings (`2130706433`, `0177.0.0.1`) are addresses too: the WHATWG parser reads them as
/// such, so they are checked as addresses.
pub fn check_url(text: &str, allow_private: bool, purpose: Purpose) -> Result<Url, Refusal> {
    let too_long = |what: &str| Refusal::NotAUrl(purpose, format!("longer than {MAX_URL_LEN} characters{what}"));
    if text.len() > MAX_URL_LEN {
        return Err(too_long(""));
    }
    let url = Url::parse(text).map_err(|e| Refusal::NotAUrl(purpose, e.to_string()))?;
    // Parsing percent-encodes (a space becomes `%20`), so the URL stored and sent can be three times the text:
    // the bound holds for what is kept, or a URL accepted here would only be refused when it is reached.
    if url.as_str().len() > MAX_URL_LEN {
        return Err(too_long(" once normalised (percent-encoded)"));
    }
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Scheme(purpose));
    }
    let host = url.host().ok_or(Refusal::Scheme(purpose))?;
    if !allow_private {
        match host {
            Host::Ipv4(ip) => check_ip(IpAddr::V4(ip), purpose)?,
            Host::Ipv6(ip) => check_ip(IpAddr::V6(ip), purpose)?,
            Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if METADATA_HOSTS.contains(&name.as_str()) {
                    return Err(Refusal::Metadata(purpose));
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
pub fn check_ip(ip: IpAddr, purpose: Purpose) -> Result<(), Refusal> {
    if ranges::is_global(ip) { Ok(()) } else { Err(Refusal::Internal(purpose, ip)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        check_url(url, false, Purpose::Webhook).is_err()
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
            assert!(check_url(url, false, Purpose::Webhook).is_ok(), "{url}");
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
            assert!(check_url(url, true, Purpose::Webhook).is_err(), "{url}");
        }
        assert!(
            check_url(&format!("https://example.com/{}", "a".repeat(MAX_URL_LEN)), true, Purpose::Webhook).is_err()
        );
    }

    #[test]
    fn the_length_bound_holds_for_the_url_as_stored_after_percent_encoding() {
        // 1,029 characters as given; each space becomes `%20`, so 3,029 once normalised.
        let spaced = format!("https://hooks.example.com/{}end", " ".repeat(1000));
        assert_eq!(spaced.len(), 1029);
        assert_eq!(Url::parse(&spaced).unwrap().as_str().len(), 3029);
        let refusal = check_url(&spaced, true, Purpose::Webhook).unwrap_err();
        assert!(refusal.to_string().contains("once normalised"), "{refusal}");
        // The longest URL that needs no encoding passes as it is.
        let longest = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN - 26));
        assert_eq!(check_url(&longest, false, Purpose::Webhook).unwrap().as_str().len(), MAX_URL_LEN);
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
        assert!(check_url("http://172.32.0.1/", false, Purpose::Webhook).is_ok(), "just outside 172.16/12");
        assert!(check_url("http://100.128.0.1/", false, Purpose::Webhook).is_ok(), "just outside 100.64/10");
    }

    #[test]
    fn the_special_purpose_forms_the_hostile_test_found_are_refused_at_upload() {
        for url in crate::fixtures::SPECIAL_PURPOSE_WEBHOOK_URLS {
            let refusal = check_url(url, false, Purpose::Webhook).unwrap_err();
            assert!(matches!(refusal, Refusal::Internal(..)), "{url}: {refusal}");
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
        assert!(check_url("http://[::ffff:8.8.8.8]/", false, Purpose::Webhook).is_ok(), "a mapped public address");
        assert!(check_url("http://[2002:808:808::]/", false, Purpose::Webhook).is_ok(), "6to4 of a public address");
    }

    #[test]
    fn with_private_targets_allowed_loopback_passes() {
        assert!(check_url("http://127.0.0.1:9000/hook", true, Purpose::Webhook).is_ok());
        assert!(check_url("http://localhost:9000/hook", true, Purpose::Webhook).is_ok());
        assert!(check_url("http://[::1]:9000/hook", true, Purpose::Webhook).is_ok());
    }

    #[test]
    fn a_refusal_names_the_field_and_the_setting_of_its_purpose() {
        let refusal = check_url("http://10.0.0.1/a.jpg", false, Purpose::Fetch).unwrap_err().to_string();
        assert!(refusal.starts_with("source reaches 10.0.0.1"), "{refusal}");
        assert!(refusal.contains("THUMBQ_FETCH_ALLOW_PRIVATE=1"), "{refusal}");
        let refusal = check_url("ftp://example.com/", false, Purpose::Webhook).unwrap_err().to_string();
        assert!(refusal.starts_with("callback_url must be"), "{refusal}");
    }

    #[test]
    fn resolved_addresses_are_checked_one_by_one() {
        assert!(check_ip("127.0.0.1".parse().unwrap(), Purpose::Webhook).is_err());
        assert!(check_ip("::ffff:10.1.1.1".parse().unwrap(), Purpose::Webhook).is_err());
        assert!(check_ip("64:ff9b:1::a00:1".parse().unwrap(), Purpose::Webhook).is_err());
        assert!(check_ip("93.184.216.34".parse().unwrap(), Purpose::Webhook).is_ok());
        assert!(check_ip("2606:4700::1111".parse().unwrap(), Purpose::Webhook).is_ok());
    }
}

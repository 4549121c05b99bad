//! Who may use the API, and how fast: `THUMBQ_AUTH`, key seeding, rate limits.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use ipnet::IpNet;

use super::{SettingsError, env::Env};

use crate::access::{Rate, RateLimit, Secret};

/// Whether requests need an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Anyone who can reach the API may do everything (a loopback bind, a trusted network).
    Off,
    /// Every route but health, readiness, the docs and thumbnail downloads needs a key with the right scope.
    Keys,
}

/// Access settings of the API.
#[derive(Clone, Debug)]
pub struct AccessSettings {
    /// `THUMBQ_AUTH`, default `auto`: `off`, `keys`, or `auto` (off when `THUMBQ_BIND` is a loopback address, keys
    /// otherwise), so a public bind is never open by accident.
    pub auth: AuthMode,
    /// `THUMBQ_API_KEYS_FILE`, default none: a JSON file of keys (`[{"name", "key", "scopes", "rate", "burst"}]`)
    /// stored at start-up, for deployments that keep secrets elsewhere.
    pub keys_file: Option<PathBuf>,
    /// `THUMBQ_RATE_LIMIT`, default `20/s`, and `THUMBQ_RATE_BURST`, default `40`: each key's limit unless the key
    /// has its own.
    pub key_rate: RateLimit,
    /// `THUMBQ_ANON_RATE_LIMIT`, default `off` on a loopback `THUMBQ_BIND` and `100/s` elsewhere (as
    /// `THUMBQ_AUTH=auto` decides), and `THUMBQ_ANON_RATE_BURST`, default `200`: the limit per client address for
    /// requests without a key (every request when auth is off; downloads when it is on). Requests with an unknown
    /// key are charged here too.
    pub anonymous_rate: RateLimit,
    /// `THUMBQ_TRUSTED_PROXIES`, default none: CIDRs (`10.0.0.0/8,fd00::/8`) of the proxies in front of the API
    /// (an ingress, a load balancer). Only when the TCP peer is one of them is the client's address taken from
    /// `X-Forwarded-For` / `Forwarded` (the right-most address that is not itself a trusted proxy); otherwise those
    /// headers are ignored, so a client cannot pick its own rate-limit bucket.
    pub trusted_proxies: Vec<IpNet>,
    /// `THUMBQ_ALLOWED_HOSTS`, default none: host names (no port) the API answers to besides loopback names and
    /// the host of `THUMBQ_PUBLIC_URL`, comma-separated, or `*` for any. Checked only while auth is off (a page
    /// on another site could otherwise reach a keys-off API through DNS rebinding); with keys on any host is
    /// answered.
    pub allowed_hosts: AllowedHosts,
    /// `THUMBQ_METRICS_OPEN`, default `false`: serve `/metrics` without a key, for a scraper inside the cluster.
    pub metrics_open: bool,
    /// `THUMBQ_CORS_ORIGINS`, default none: comma-separated origins (`https://app.example.com`) whose pages may call
    /// the API from a browser. None: no CORS headers, and browsers keep other sites' pages out.
    pub cors_origins: Vec<String>,
    /// `THUMBQ_SIGNED_URLS`, default `false`: thumbnail URLs carry an expiry and an HMAC-SHA256 signature
    /// (`?expires=…&sig=…`), and downloads without a valid one get `403`.
    pub signed_urls: Option<UrlSigning>,
}

/// Which `Host` names a keys-off API answers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedHosts {
    /// Any host (`THUMBQ_ALLOWED_HOSTS=*`).
    Any,
    /// Loopback names, the public URL's host, and these (lower-case, no port).
    Listed(Vec<String>),
}

/// How download URLs are signed.
#[derive(Clone, Debug)]
pub struct UrlSigning {
    /// `THUMBQ_URL_SIGNING_KEY`, required with signed URLs: at least 32 characters, the same in every API process.
    pub key: Secret,
    /// `THUMBQ_SIGNED_URL_TTL_SECS`, default `3600`: how long a signed URL works.
    pub ttl: Duration,
}

/// The shortest signing key accepted: 32 characters of a random key are well over 128 bits.
const MIN_SIGNING_KEY_LEN: usize = 32;

impl AccessSettings {
    pub(super) fn read(env: &Env<'_>, bind: SocketAddr) -> Result<Self, SettingsError> {
        let auth = match env.string("THUMBQ_AUTH", "auto").as_str() {
            "off" => AuthMode::Off,
            "keys" => AuthMode::Keys,
            "auto" if bind.ip().is_loopback() => AuthMode::Off,
            "auto" => AuthMode::Keys,
            other => return Err(env.error("THUMBQ_AUTH", other, "expected `off`, `keys` or `auto`")),
        };
        let limit = |rate_var, default_rate: &str, burst_var, default_burst| -> Result<RateLimit, SettingsError> {
            let rate = env.string(rate_var, default_rate);
            let rate: Rate = rate.parse().map_err(|e: String| env.error(rate_var, &rate, &e))?;
            Ok(RateLimit { rate, burst: env.positive(burst_var, default_burst)? })
        };
        Ok(Self {
            auth,
            keys_file: Some(env.string("THUMBQ_API_KEYS_FILE", "")).filter(|f| !f.is_empty()).map(PathBuf::from),
            key_rate: limit("THUMBQ_RATE_LIMIT", "20/s", "THUMBQ_RATE_BURST", 40)?,
            // On a loopback bind every client is a local script: no limit unless asked for.
            anonymous_rate: limit(
                "THUMBQ_ANON_RATE_LIMIT",
                if bind.ip().is_loopback() { "off" } else { "100/s" },
                "THUMBQ_ANON_RATE_BURST",
                200,
            )?,
            trusted_proxies: cidrs(env)?,
            allowed_hosts: allowed_hosts(env)?,
            metrics_open: env.flag("THUMBQ_METRICS_OPEN", false)?,
            cors_origins: origins(env)?,
            signed_urls: signing(env)?,
        })
    }
}

/// `THUMBQ_CORS_ORIGINS`: each an origin, `scheme://host[:port]`, nothing after it.
fn origins(env: &Env<'_>) -> Result<Vec<String>, SettingsError> {
    let list = env.string("THUMBQ_CORS_ORIGINS", "");
    let mut origins = Vec::new();
    for origin in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        let valid = host.is_some_and(|h| !h.is_empty() && !h.contains('/') && h.bytes().all(|b| b.is_ascii_graphic()));
        if !valid {
            let reason = "each origin is scheme://host[:port], such as https://app.example.com (no path, no *)";
            return Err(env.error("THUMBQ_CORS_ORIGINS", origin, reason));
        }
        origins.push(origin.to_owned());
    }
    Ok(origins)
}

/// `THUMBQ_TRUSTED_PROXIES`: CIDRs, or bare addresses (a single host).
fn cidrs(env: &Env<'_>) -> Result<Vec<IpNet>, SettingsError> {
    let list = env.string("THUMBQ_TRUSTED_PROXIES", "");
    list.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| env.error("THUMBQ_TRUSTED_PROXIES", c, "expected CIDRs such as 10.0.0.0/8, fd00::/8"))
        })
        .collect()
}

/// `THUMBQ_ALLOWED_HOSTS`: `*`, or host names without a port.
fn allowed_hosts(env: &Env<'_>) -> Result<AllowedHosts, SettingsError> {
    let list = env.string("THUMBQ_ALLOWED_HOSTS", "");
    if list.trim() == "*" {
        return Ok(AllowedHosts::Any);
    }
    let mut hosts = Vec::new();
    for host in list.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        if host.contains(['/', ':', '*']) && !host.starts_with('[') {
            let reason = "each entry is a host name or address without scheme or port (or * alone for any host)";
            return Err(env.error("THUMBQ_ALLOWED_HOSTS", host, reason));
        }
        hosts.push(host.to_ascii_lowercase());
    }
    Ok(AllowedHosts::Listed(hosts))
}

/// `THUMBQ_SIGNED_URLS` and, when on, its key and TTL.
fn signing(env: &Env<'_>) -> Result<Option<UrlSigning>, SettingsError> {
    if !env.flag("THUMBQ_SIGNED_URLS", false)? {
        return Ok(None);
    }
    let key = env.string("THUMBQ_URL_SIGNING_KEY", "");
    if key.len() < MIN_SIGNING_KEY_LEN {
        let reason = format!("THUMBQ_SIGNED_URLS=1 needs a key of at least {MIN_SIGNING_KEY_LEN} characters");
        return Err(env.error("THUMBQ_URL_SIGNING_KEY", "(hidden)", &reason));
    }
    let ttl = Duration::from_secs(env.positive("THUMBQ_SIGNED_URL_TTL_SECS", 3600)?);
    Ok(Some(UrlSigning { key: Secret::new(key), ttl }))
}

#[cfg(test)]
mod tests {
    use crate::Settings;

    fn read(vars: &[(&str, &str)]) -> Settings {
        Settings::from_lookup(|var| vars.iter().find(|(name, _)| *name == var).map(|(_, v)| (*v).to_owned())).unwrap()
    }

    #[test]
    fn the_anonymous_limit_is_off_on_loopback_and_on_elsewhere_unless_set() {
        assert_eq!(read(&[]).access.anonymous_rate.rate.interval_us(), 0, "a local script is never throttled");
        let public = read(&[("THUMBQ_BIND", "0.0.0.0:8000")]).access.anonymous_rate;
        assert_eq!((public.rate.to_string().as_str(), public.burst), ("100/s", 200));
        let set = read(&[("THUMBQ_ANON_RATE_LIMIT", "5/s")]).access.anonymous_rate;
        assert_eq!(set.rate.to_string(), "5/s");
    }

    #[test]
    fn trusted_proxies_and_allowed_hosts_are_read_and_checked() {
        let settings = read(&[
            ("THUMBQ_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8,192.0.2.7"),
            ("THUMBQ_ALLOWED_HOSTS", "Thumbs.Internal"),
        ]);
        let nets: Vec<String> = settings.access.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "fd00::/8", "192.0.2.7/32"]);
        assert_eq!(settings.access.allowed_hosts, super::AllowedHosts::Listed(vec!["thumbs.internal".into()]));
        assert_eq!(read(&[("THUMBQ_ALLOWED_HOSTS", "*")]).access.allowed_hosts, super::AllowedHosts::Any);
        for (var, bad) in [
            ("THUMBQ_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("THUMBQ_ALLOWED_HOSTS", "http://x"),
            ("THUMBQ_ALLOWED_HOSTS", "x:80"),
        ] {
            let error = Settings::from_lookup(|v| (v == var).then(|| bad.to_owned())).unwrap_err();
            assert!(error.to_string().contains(var), "{error}");
        }
    }
}

//! Who may use the API, and how fast: `THUMBQ_AUTH`, key seeding, rate limits.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use ipnet::IpNet;

use super::{
    Secret, SettingsError,
    env::{Env, Out},
    var::{Described, Refused, Var, list},
};

use crate::api_key::{Rate, RateLimit};

/// `auto` is `None`: off or keys as `THUMBQ_BIND` decides.
static AUTH: Var<Option<AuthMode>> = Var::new(
    "THUMBQ_AUTH",
    "auto",
    "`off`, `keys`, or `auto`: off when `THUMBQ_BIND` is a loopback address, keys otherwise ([security](docs/security.md))",
    |s| match s {
        "off" => Ok(Some(AuthMode::Off)),
        "keys" => Ok(Some(AuthMode::Keys)),
        "auto" => Ok(None),
        _ => Err(Refused::new("expected `off`, `keys` or `auto`")),
    },
    |mode| {
        match mode {
            Some(AuthMode::Off) => "off",
            Some(AuthMode::Keys) => "keys",
            None => "auto",
        }
        .to_owned()
    },
);
static KEYS_FILE: Var<Option<PathBuf>> = Var::new(
    "THUMBQ_API_KEYS_FILE",
    "",
    "JSON file of keys stored at start-up: `[{\"name\", \"key\", \"scopes\": \"upload,read\", \"rate\"?, \"burst\"?}]`",
    |s| Ok(Some(s).filter(|f| !f.is_empty()).map(PathBuf::from)),
    |file| file.as_ref().map(|f| f.display().to_string()).unwrap_or_default(),
);
static RATE_LIMIT: Var<Rate> = Var::parsed(
    "THUMBQ_RATE_LIMIT",
    "20/s",
    "Each key's sustained rate unless it has its own (`10/s`, `600/m`, `1000/h`, `off`)",
);
static RATE_BURST: Var<u32> = Var::positive("THUMBQ_RATE_BURST", "40", "Each key's burst unless it has its own");
/// Empty: `off` on a loopback bind, `100/s` elsewhere.
static ANON_RATE_LIMIT: Var<Option<Rate>> = Var::new(
    "THUMBQ_ANON_RATE_LIMIT",
    "",
    "Rate per client address for requests without a key (all of them when auth is off) or with an unknown one",
    |s| if s.is_empty() { Ok(None) } else { super::var::parse(s).map(Some) },
    |rate| rate.map(|r| r.to_string()).unwrap_or_default(),
);
static ANON_RATE_BURST: Var<u32> =
    Var::positive("THUMBQ_ANON_RATE_BURST", "200", "Burst per client address for requests without a key");
static TRUSTED_PROXIES: Var<Vec<IpNet>> = Var::new(
    "THUMBQ_TRUSTED_PROXIES",
    "",
    "CIDRs of the proxies in front of the API; only from them is the client's address read from `X-Forwarded-For`/`Forwarded`",
    cidrs,
    |nets| nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
);
static ALLOWED_HOSTS: Var<AllowedHosts> = Var::new(
    "THUMBQ_ALLOWED_HOSTS",
    "",
    "With auth off: `Host` names answered besides loopback names and `THUMBQ_PUBLIC_URL`'s host (`*`: any); others get `421`",
    allowed_hosts,
    |hosts| match hosts {
        AllowedHosts::Any => "*".to_owned(),
        AllowedHosts::Listed(hosts) => hosts.join(","),
    },
);
static METRICS_OPEN: Var<bool> =
    Var::flag("THUMBQ_METRICS_OPEN", "0", "`1`: `/metrics` answers without a key (for a scraper inside the cluster)");
static CORS_ORIGINS: Var<Vec<String>> = Var::new(
    "THUMBQ_CORS_ORIGINS",
    "",
    "Comma-separated origins (`https://app.example.com`) whose pages may call the API from a browser; none: CORS off",
    origins,
    |o| o.join(","),
);
static SIGNED_URLS: Var<bool> = Var::flag(
    "THUMBQ_SIGNED_URLS",
    "0",
    "`1`: thumbnail URLs carry an expiry and an HMAC-SHA256 signature; unsigned or expired downloads get `403`",
);
static URL_SIGNING_KEY: Var<String> = Var::text(
    "THUMBQ_URL_SIGNING_KEY",
    "",
    "The signing key, at least 32 characters, the same in every API process (required with signed URLs)",
);
static SIGNED_URL_TTL: Var<Duration> = Var::secs("THUMBQ_SIGNED_URL_TTL_SECS", "3600", "How long a signed URL works");

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] = &[
    &AUTH,
    &KEYS_FILE,
    &RATE_LIMIT,
    &RATE_BURST,
    &ANON_RATE_LIMIT,
    &ANON_RATE_BURST,
    &TRUSTED_PROXIES,
    &ALLOWED_HOSTS,
    &CORS_ORIGINS,
    &SIGNED_URLS,
    &URL_SIGNING_KEY,
    &SIGNED_URL_TTL,
    &METRICS_OPEN,
];

/// Whether requests need an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Anyone who can reach the API may do everything (a loopback bind, a trusted network).
    Off,
    /// Every route but health, readiness, the docs and thumbnail downloads needs a key with the right scope.
    Keys,
}

/// Access settings of the API.
#[derive(Clone, Debug, PartialEq)]
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
#[derive(Clone, Debug, PartialEq)]
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
        let auth = env.get(&AUTH)?.unwrap_or(if bind.ip().is_loopback() { AuthMode::Off } else { AuthMode::Keys });
        Ok(Self {
            auth,
            keys_file: env.get(&KEYS_FILE)?,
            key_rate: RateLimit { rate: env.get(&RATE_LIMIT)?, burst: env.get(&RATE_BURST)? },
            anonymous_rate: RateLimit {
                // On a loopback bind every client is a local script: no limit unless asked for.
                rate: env.get(&ANON_RATE_LIMIT)?.unwrap_or(if bind.ip().is_loopback() {
                    Rate::UNLIMITED
                } else {
                    Rate { count: 100, per: Duration::from_secs(1) }
                }),
                burst: env.get(&ANON_RATE_BURST)?,
            },
            trusted_proxies: env.get(&TRUSTED_PROXIES)?,
            allowed_hosts: env.get(&ALLOWED_HOSTS)?,
            metrics_open: env.get(&METRICS_OPEN)?,
            cors_origins: env.get(&CORS_ORIGINS)?,
            signed_urls: signing(env)?,
        })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&AUTH, &Some(self.auth));
        out.put(&KEYS_FILE, &self.keys_file);
        out.put(&RATE_LIMIT, &self.key_rate.rate);
        out.put(&RATE_BURST, &self.key_rate.burst);
        out.put(&ANON_RATE_LIMIT, &Some(self.anonymous_rate.rate));
        out.put(&ANON_RATE_BURST, &self.anonymous_rate.burst);
        out.put(&TRUSTED_PROXIES, &self.trusted_proxies);
        out.put(&ALLOWED_HOSTS, &self.allowed_hosts);
        out.put(&CORS_ORIGINS, &self.cors_origins);
        out.put(&SIGNED_URLS, &self.signed_urls.is_some());
        match &self.signed_urls {
            Some(signing) => {
                out.put(&URL_SIGNING_KEY, &signing.key.expose().to_owned());
                out.put(&SIGNED_URL_TTL, &signing.ttl);
            }
            None => {
                out.put_default(&URL_SIGNING_KEY);
                out.put_default(&SIGNED_URL_TTL);
            }
        }
        out.put(&METRICS_OPEN, &self.metrics_open);
    }
}

/// `THUMBQ_CORS_ORIGINS`: each an origin, `scheme://host[:port]`, nothing after it.
fn origins(text: &str) -> Result<Vec<String>, Refused> {
    let mut origins = Vec::new();
    for origin in list(text) {
        let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        let valid = host.is_some_and(|h| !h.is_empty() && !h.contains('/') && h.bytes().all(|b| b.is_ascii_graphic()));
        if !valid {
            let reason = "each origin is scheme://host[:port], such as https://app.example.com (no path, no *)";
            return Err(Refused::showing(origin, reason));
        }
        origins.push(origin.to_owned());
    }
    Ok(origins)
}

/// `THUMBQ_TRUSTED_PROXIES`: CIDRs, or bare addresses (a single host).
fn cidrs(text: &str) -> Result<Vec<IpNet>, Refused> {
    list(text)
        .map(|c| {
            c.parse::<IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| Refused::showing(c, "expected CIDRs such as 10.0.0.0/8, fd00::/8"))
        })
        .collect()
}

/// `THUMBQ_ALLOWED_HOSTS`: `*`, or host names without a port.
fn allowed_hosts(text: &str) -> Result<AllowedHosts, Refused> {
    if text.trim() == "*" {
        return Ok(AllowedHosts::Any);
    }
    let mut hosts = Vec::new();
    for host in list(text) {
        if host.contains(['/', ':', '*']) && !host.starts_with('[') {
            let reason = "each entry is a host name or address without scheme or port (or * alone for any host)";
            return Err(Refused::showing(host, reason));
        }
        hosts.push(host.to_ascii_lowercase());
    }
    Ok(AllowedHosts::Listed(hosts))
}

/// `THUMBQ_SIGNED_URLS` and, when on, its key and TTL.
fn signing(env: &Env<'_>) -> Result<Option<UrlSigning>, SettingsError> {
    if !env.get(&SIGNED_URLS)? {
        return Ok(None);
    }
    let key = env.get(&URL_SIGNING_KEY)?;
    if key.len() < MIN_SIGNING_KEY_LEN {
        let reason = format!("THUMBQ_SIGNED_URLS=1 needs a key of at least {MIN_SIGNING_KEY_LEN} characters");
        return Err(env.error("THUMBQ_URL_SIGNING_KEY", "(hidden)", &reason));
    }
    let ttl = env.get(&SIGNED_URL_TTL)?;
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

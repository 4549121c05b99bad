//! Who may use the API, and how fast: `THUMBQ_AUTH`, key seeding, rate limits.

use std::{net::SocketAddr, path::PathBuf};

use super::{SettingsError, env::Env};
use std::time::Duration;

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
    /// `THUMBQ_ANON_RATE_LIMIT`, default `100/s`, and `THUMBQ_ANON_RATE_BURST`, default `200`: the limit per client
    /// address for requests without a key (every request when auth is off; downloads when it is on).
    pub anonymous_rate: RateLimit,
    /// `THUMBQ_METRICS_OPEN`, default `false`: serve `/metrics` without a key, for a scraper inside the cluster.
    pub metrics_open: bool,
    /// `THUMBQ_CORS_ORIGINS`, default none: comma-separated origins (`https://app.example.com`) whose pages may call
    /// the API from a browser. None: no CORS headers, and browsers keep other sites' pages out.
    pub cors_origins: Vec<String>,
    /// `THUMBQ_SIGNED_URLS`, default `false`: thumbnail URLs carry an expiry and an HMAC-SHA256 signature
    /// (`?expires=…&sig=…`), and downloads without a valid one get `403`.
    pub signed_urls: Option<UrlSigning>,
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
            anonymous_rate: limit("THUMBQ_ANON_RATE_LIMIT", "100/s", "THUMBQ_ANON_RATE_BURST", 200)?,
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

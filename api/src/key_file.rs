//! The key file that `THUMBQ_API_KEYS_FILE` names, read and checked at start-up and stored in Redis; and the rule
//! that a key's own rate limit shares with the `keys create` command ([`own_limit`]).

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use thumbq_common::{
    api_key::{Rate, RateLimit, Scopes, valid_key_name},
    state_store::{StateStore, api_keys::KeySpec},
};

/// One key of a `THUMBQ_API_KEYS_FILE`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileEntry {
    name: String,
    key: String,
    scopes: String,
    rate: Option<String>,
    burst: Option<u32>,
    quota_mb: Option<u64>,
}

/// A checked key from a key file.
#[derive(Debug)]
pub struct KeySeed {
    spec: KeySpec,
    key: String,
}

/// A key's own rate limit, when `rate` or `burst` is given; the default fills in the other.
pub fn own_limit(rate: Option<Rate>, burst: Option<u32>, default: RateLimit) -> Option<RateLimit> {
    (rate.is_some() || burst.is_some())
        .then(|| RateLimit { rate: rate.unwrap_or(default.rate), burst: burst.unwrap_or(default.burst).max(1) })
}

/// The shortest key a file may hold: a short key could be guessed.
const MIN_SEEDED_KEY_LEN: usize = 32;

/// Reads and checks a key file: a JSON array of
/// `{"name", "key", "scopes": "upload,read", "rate"?: "10/s", "burst"?: 20, "quota_mb"?: 500}`.
pub fn read_key_file(path: &Path, default: RateLimit) -> anyhow::Result<Vec<KeySeed>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let seeds: Vec<KeyFileEntry> =
        serde_json::from_str(&text).with_context(|| format!("{} is not a JSON array of keys", path.display()))?;
    seeds
        .into_iter()
        .map(|seed| {
            let fail = |e: String| anyhow::anyhow!("{}: key {:?}: {e}", path.display(), seed.name);
            valid_key_name(&seed.name).map_err(fail)?;
            if seed.key.len() < MIN_SEEDED_KEY_LEN {
                return Err(fail(format!("the key must be at least {MIN_SEEDED_KEY_LEN} characters")));
            }
            let scopes: Scopes = seed.scopes.parse().map_err(fail)?;
            let rate = seed.rate.as_deref().map(str::parse::<Rate>).transpose().map_err(fail)?;
            let spec = KeySpec {
                limit: own_limit(rate, seed.burst, default),
                quota_bytes: seed.quota_mb.map(|mb| mb << 20),
                ..KeySpec::new(&seed.name, scopes)
            };
            Ok(KeySeed { spec, key: seed.key.clone() })
        })
        .collect()
}

/// Stores the keys of a key file, replacing keys of the same names; retries until Redis answers (the API starts
/// while its services are down).
pub async fn seed_keys(states: StateStore, keys: Vec<KeySeed>) {
    for KeySeed { spec, key } in keys {
        let mut delay = std::time::Duration::from_millis(200);
        while let Err(e) = states.create_key(&spec, &key, true).await {
            tracing::warn!(error = %e, key = spec.name, "could not store a key from THUMBQ_API_KEYS_FILE; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(10));
        }
    }
    tracing::info!("keys from THUMBQ_API_KEYS_FILE stored");
}

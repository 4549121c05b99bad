//! API keys and rate limits in Redis, shared by every API process.
//!
//! - `<prefix>apikey:<sha256>`: one hash per key (name, scopes, created_at, last_used, and its own rate and burst
//!   when it has them); the key itself is never stored.
//! - `<prefix>apikeys`: name → hash, so names are unique and a key can be listed and revoked by name.
//! - `<prefix>rate:<bucket>`: a GCRA bucket, the theoretical arrival time of the next request in microseconds.
//!
//! Authenticating a request and charging its rate limit is one Lua script: one round trip per request.

use chrono::{DateTime, Utc};
use redis::Script;
use serde::Serialize;

use super::{StateError, StateStore};
use crate::access::{RateLimit, Scopes, key_hash};

/// GCRA (the generic cell rate algorithm, as in ATM networks and redis-cell) over one Redis string. A request is
/// allowed when it would not push the bucket's theoretical arrival time more than `burst` intervals past now.
/// Time is Redis's own (`TIME`), so every API process shares one clock. Returns allowed (1/0), remaining requests,
/// microseconds until the bucket is full again, and microseconds until a request would be allowed.
const GCRA: &str = r"
local function gcra(key, interval, burst)
  if interval <= 0 then return {1, burst, 0, 0} end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local tolerance = interval * burst
  if new_tat - now > tolerance then
    return {0, 0, tat - now, new_tat - now - tolerance}
  end
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
  return {1, math.floor((tolerance - (new_tat - now)) / interval), new_tat - now, 0}
end
";

/// KEYS[1]: the key's hash. ARGV: now (RFC 3339), the rate-bucket prefix, the default interval (µs) and burst.
/// Returns nil for an unknown key, else name, scopes, then the GCRA verdict under the key's own limit or the
/// default.
const AUTHORIZE: &str = r"
local record = redis.call('HMGET', KEYS[1], 'name', 'scopes', 'interval_us', 'burst')
if not record[1] then return false end
redis.call('HSET', KEYS[1], 'last_used', ARGV[1])
local interval = tonumber(record[3]) or tonumber(ARGV[3])
local burst = tonumber(record[4]) or tonumber(ARGV[4])
local verdict = gcra(ARGV[2] .. 'key:' .. record[1], interval, burst)
return {record[1], record[2], verdict[1], verdict[2], verdict[3], verdict[4], burst}
";

/// KEYS[1]: the bucket. ARGV: interval (µs), burst.
const CHARGE: &str = r"
local verdict = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {verdict[1], verdict[2], verdict[3], verdict[4], tonumber(ARGV[2])}
";

/// The outcome of charging a request to a rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateVerdict {
    /// Whether the request may go ahead.
    pub allowed: bool,
    /// The burst: requests allowed at once.
    pub limit: u32,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Microseconds until the limit is whole again.
    pub reset_us: u64,
    /// Microseconds until a refused request would be allowed (0 when allowed).
    pub retry_after_us: u64,
}

impl RateVerdict {
    fn from_script(values: &[i64]) -> Self {
        let at = |i: usize| values.get(i).copied().unwrap_or(0).max(0) as u64;
        Self {
            allowed: at(0) == 1,
            remaining: at(1) as u32,
            reset_us: at(2),
            retry_after_us: at(3),
            limit: at(4) as u32,
        }
    }
}

/// A known key that presented itself.
#[derive(Clone, Debug)]
pub struct Authorized {
    /// The key's name.
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
    /// Its rate limit, charged with this request.
    pub rate: RateVerdict,
}

/// A key as `keys list` shows it (never the key itself).
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    /// Its name.
    pub name: String,
    /// What it may do.
    pub scopes: String,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When it was last used.
    pub last_used: Option<DateTime<Utc>>,
    /// Its own rate (`10/s`), when it has one.
    pub rate: Option<String>,
    /// Its own burst, when it has one.
    pub burst: Option<u32>,
}

/// Why a key could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Another key has this name.
    #[error("a key named {0:?} exists; revoke it first or choose another name")]
    NameTaken(String),
    /// Redis failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// The access scripts of a store.
#[derive(Clone)]
pub(super) struct AccessScripts {
    authorize: Script,
    charge: Script,
}

impl AccessScripts {
    pub(super) fn new() -> Self {
        Self { authorize: Script::new(&format!("{GCRA}{AUTHORIZE}")), charge: Script::new(&format!("{GCRA}{CHARGE}")) }
    }
}

impl StateStore {
    /// Stores a new key (its hash only) under a unique name; `replace` overwrites a key of the same name (seeding
    /// from a file at every start).
    pub async fn create_key(
        &self,
        name: &str,
        key: &str,
        scopes: &Scopes,
        own_limit: Option<RateLimit>,
        replace: bool,
    ) -> Result<(), KeyError> {
        let (hash, index) = (key_hash(key), self.keys.api_keys());
        let mut fields =
            vec![("name", name.to_owned()), ("scopes", scopes.to_string()), ("created_at", Utc::now().to_rfc3339())];
        if let Some(limit) = own_limit {
            fields.push(("rate", limit.rate.to_string()));
            fields.push(("interval_us", limit.rate.interval_us().to_string()));
            fields.push(("burst", limit.burst.to_string()));
        }
        let record = self.keys.api_key(&hash);
        let stored = self
            .run(async |conn| {
                let previous: Option<String> = redis::cmd("HGET").arg(&index).arg(name).query_async(conn).await?;
                if previous.is_some() && !replace {
                    return Ok(false);
                }
                let mut pipe = redis::pipe();
                pipe.atomic();
                if let Some(previous) = previous {
                    pipe.del(self.keys.api_key(&previous)).ignore();
                }
                pipe.hset_multiple(&record, &fields).ignore().hset(&index, name, &hash).ignore();
                pipe.query_async::<()>(conn).await.map(|()| true)
            })
            .await?;
        if stored { Ok(()) } else { Err(KeyError::NameTaken(name.to_owned())) }
    }

    /// Every key, by name.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, StateError> {
        let index = self.keys.api_keys();
        let hashes: Vec<(String, String)> =
            self.run(async |conn| redis::cmd("HGETALL").arg(&index).query_async(conn).await).await?;
        let mut keys = Vec::with_capacity(hashes.len());
        for (name, hash) in hashes {
            let record = self.keys.api_key(&hash);
            let fields: std::collections::HashMap<String, String> =
                self.run(async |conn| redis::cmd("HGETALL").arg(&record).query_async(conn).await).await?;
            let time =
                |field: &str| fields.get(field).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc());
            keys.push(KeyInfo {
                scopes: fields.get("scopes").cloned().unwrap_or_default(),
                created_at: time("created_at"),
                last_used: time("last_used"),
                rate: fields.get("rate").cloned(),
                burst: fields.get("burst").and_then(|b| b.parse().ok()),
                name,
            });
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    /// Revokes the key named `name` at once; false when there is none.
    pub async fn revoke_key(&self, name: &str) -> Result<bool, StateError> {
        let index = self.keys.api_keys();
        self.run(async |conn| {
            let hash: Option<String> = redis::cmd("HGET").arg(&index).arg(name).query_async(conn).await?;
            let Some(hash) = hash else { return Ok(false) };
            redis::pipe().atomic().del(self.keys.api_key(&hash)).hdel(&index, name).query_async::<()>(conn).await?;
            Ok(true)
        })
        .await
    }

    /// Looks `key` up and charges one request to its rate limit (`default` unless the key has its own); `None`
    /// for an unknown or revoked key.
    pub async fn authorize(&self, key: &str, default: RateLimit) -> Result<Option<Authorized>, StateError> {
        let record = self.keys.api_key(&key_hash(key));
        let mut invocation = self.scripts.authorize.key(record);
        invocation
            .arg(Utc::now().to_rfc3339())
            .arg(self.keys.rate_bucket(""))
            .arg(default.rate.interval_us())
            .arg(default.burst);
        let answer: Option<(String, String, i64, i64, i64, i64, i64)> =
            self.run(async |conn| invocation.invoke_async(conn).await).await?;
        Ok(answer.map(|(name, scopes, allowed, remaining, reset, retry, limit)| Authorized {
            name,
            scopes: scopes.parse().unwrap_or_default(),
            rate: RateVerdict::from_script(&[allowed, remaining, reset, retry, limit]),
        }))
    }

    /// Charges one request to the rate-limit bucket `bucket` (a client address, say).
    pub async fn charge(&self, bucket: &str, limit: RateLimit) -> Result<RateVerdict, StateError> {
        let mut invocation = self.scripts.charge.key(self.keys.rate_bucket(bucket));
        invocation.arg(limit.rate.interval_us()).arg(limit.burst);
        let values: Vec<i64> = self.run(async |conn| invocation.invoke_async(conn).await).await?;
        Ok(RateVerdict::from_script(&values))
    }
}

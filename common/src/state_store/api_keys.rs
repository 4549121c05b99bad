//! API keys and rate limits in Redis, shared by every API process.
//!
//! - `<prefix>apikey:<sha256>`: one hash per key (name, scopes, created_at, last_used, and its own rate and burst
//!   when it has them); the key itself is never stored.
//! - `<prefix>apikeys`: name → hash, so names are unique and a key can be listed and revoked by name.
//! - `<prefix>rate:<bucket>`: a GCRA bucket, the theoretical arrival time of the next request in microseconds.
//! - `<prefix>inflight:<key name>`: for a key with a storage quota, its unfinished tasks (id → `<bytes>:<ms>`); the
//!   transition script releases a task's entry when it finishes, erasure when it is deleted, and entries older than
//!   the record TTL are dropped at the next upload (a task whose record expired unfinished).
//!
//! Authenticating a request and charging its rate limit is one Lua script: one round trip per request.

use chrono::{DateTime, Utc};
use redis::Script;
use serde::Serialize;

use super::{StateError, StateStore};
use crate::api_key::{RateLimit, Scopes, key_hash};

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
local record = redis.call('HMGET', KEYS[1], 'name', 'scopes', 'interval_us', 'burst', 'quota_bytes')
if not record[1] then return false end
redis.call('HSET', KEYS[1], 'last_used', ARGV[1])
local interval = tonumber(record[3]) or tonumber(ARGV[3])
local burst = tonumber(record[4]) or tonumber(ARGV[4])
local verdict = gcra(ARGV[2] .. 'key:' .. record[1], interval, burst)
return {record[1], record[2], verdict[1], verdict[2], verdict[3], verdict[4], burst, tonumber(record[5]) or -1}
";

/// What [`AUTHORIZE`] answers for a known key: name, scopes, allowed, remaining, reset (µs), retry after (µs),
/// burst, quota in bytes (-1: none).
type AuthorizeReply = (String, String, i64, i64, i64, i64, i64, i64);

/// KEYS[1]: the bucket. ARGV: interval (µs), burst.
const CHARGE: &str = r"
local verdict = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {verdict[1], verdict[2], verdict[3], verdict[4], tonumber(ARGV[2])}
";

/// KEYS[1]: the key's in-flight hash. ARGV: task id, its bytes, the quota, now (ms), the record TTL (ms). Returns
/// the bytes in flight before this task, and whether it fitted (then it is recorded).
// KEYS: 1 the key's in-flight hash on the task's shard. ARGV: 1 task id, 2 its bytes, 3 the quota, 4 now ms, 5 the
// record TTL in ms, 6 the bytes in flight on the other shards (a cluster's).
const RESERVE: &str = r"
local used = tonumber(ARGV[6])
local entries = redis.call('HGETALL', KEYS[1])
local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 1, #entries, 2 do
  local bytes, at = string.match(entries[i + 1], '(%d+):(%d+)')
  if tonumber(at) < now - ttl then redis.call('HDEL', KEYS[1], entries[i]) else used = used + tonumber(bytes) end
end
if used + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return {used, 0} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl)
return {used, 1}
";

/// What a new key may do and how much.
#[derive(Clone, Debug)]
pub struct KeySpec {
    /// Its unique name.
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
    /// Its own rate limit (else the default).
    pub limit: Option<RateLimit>,
    /// Its storage quota: bytes of originals of its unfinished tasks (else none).
    pub quota_bytes: Option<u64>,
}

impl KeySpec {
    /// A key with `scopes` and the default limit, no quota.
    pub fn new(name: &str, scopes: Scopes) -> Self {
        Self { name: name.to_owned(), scopes, limit: None, quota_bytes: None }
    }
}

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
    /// Its storage quota in bytes, if it has one.
    pub quota_bytes: Option<u64>,
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
    /// Its storage quota in bytes, when it has one.
    pub quota_bytes: Option<u64>,
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
    reserve: Script,
}

impl AccessScripts {
    pub(super) fn new() -> Self {
        Self {
            authorize: Script::new(&format!("{GCRA}{AUTHORIZE}")),
            charge: Script::new(&format!("{GCRA}{CHARGE}")),
            reserve: Script::new(RESERVE),
        }
    }
}

impl StateStore {
    /// Stores a new key (its hash only) under a unique name; `replace` overwrites a key of the same name (seeding
    /// from a file at every start).
    pub async fn create_key(&self, spec: &KeySpec, key: &str, replace: bool) -> Result<(), KeyError> {
        let (hash, index, name) = (key_hash(key), self.keys.api_keys(), spec.name.as_str());
        let mut fields = vec![
            ("name", name.to_owned()),
            ("scopes", spec.scopes.to_string()),
            ("created_at", Utc::now().to_rfc3339()),
        ];
        if let Some(limit) = spec.limit {
            fields.push(("rate", limit.rate.to_string()));
            fields.push(("interval_us", limit.rate.interval_us().to_string()));
            fields.push(("burst", limit.burst.to_string()));
        }
        if let Some(quota) = spec.quota_bytes {
            fields.push(("quota_bytes", quota.to_string()));
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
                quota_bytes: fields.get("quota_bytes").and_then(|b| b.parse().ok()),
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
        let answer: Option<AuthorizeReply> = self.run(async |conn| invocation.invoke_async(conn).await).await?;
        Ok(answer.map(|(name, scopes, allowed, remaining, reset, retry, limit, quota)| Authorized {
            name,
            scopes: scopes.parse().unwrap_or_default(),
            rate: RateVerdict::from_script(&[allowed, remaining, reset, retry, limit]),
            quota_bytes: u64::try_from(quota).ok(),
        }))
    }

    /// Counts `bytes` of task `id` against `owner`'s storage quota of `quota` bytes; `Err(used)` (the bytes already
    /// in flight) when it does not fit. Released when the task finishes or is deleted.
    ///
    /// On a cluster the key's tasks in flight are on every shard, and a script reaches one: the other shards' are
    /// read first and added, so two uploads at the same moment on two shards may both fit where only one would
    /// (each sees the other's bytes only once reserved). The quota bounds storage, not exactly to the byte.
    pub async fn reserve_quota(
        &self,
        owner: &str,
        id: crate::task::TaskId,
        bytes: u64,
        quota: u64,
    ) -> Result<Result<(), u64>, StateError> {
        let shard = self.keys.shard_of(id);
        let (now, ttl_ms) = (Utc::now().timestamp_millis(), self.ttl.as_millis() as u64);
        let elsewhere = async |other: super::Shard| -> Result<u64, StateError> {
            let key = self.keys.in_flight(other, owner);
            let entries: Vec<String> =
                self.run(async |conn| redis::cmd("HVALS").arg(&key).query_async(conn).await).await?;
            Ok(entries.iter().filter_map(|entry| live_bytes(entry, now, ttl_ms)).sum())
        };
        let others = self.keys.shards().filter(|other| *other != shard).map(elsewhere);
        let elsewhere: u64 = futures_util::future::try_join_all(others).await?.into_iter().sum();
        let mut invocation = self.scripts.reserve.key(self.keys.in_flight(shard, owner));
        invocation.arg(id.to_string()).arg(bytes).arg(quota).arg(now).arg(ttl_ms).arg(elsewhere);
        let (used, fitted): (u64, u8) = self.run(async |conn| invocation.invoke_async(conn).await).await?;
        Ok(if fitted == 1 { Ok(()) } else { Err(used) })
    }

    /// Charges one request to the rate-limit bucket `bucket` (a client address, say).
    pub async fn charge(&self, bucket: &str, limit: RateLimit) -> Result<RateVerdict, StateError> {
        let mut invocation = self.scripts.charge.key(self.keys.rate_bucket(bucket));
        invocation.arg(limit.rate.interval_us()).arg(limit.burst);
        let values: Vec<i64> = self.run(async |conn| invocation.invoke_async(conn).await).await?;
        Ok(RateVerdict::from_script(&values))
    }
}

/// The bytes of an in-flight entry (`<bytes>:<ms>`) not older than the record TTL (`RESERVE` drops the older).
fn live_bytes(entry: &str, now_ms: i64, ttl_ms: u64) -> Option<u64> {
    let (bytes, at) = entry.split_once(':')?;
    let at: i64 = at.parse().ok()?;
    (at >= now_ms.saturating_sub(ttl_ms as i64)).then(|| bytes.parse().ok()).flatten()
}

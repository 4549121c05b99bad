//! Redis: the connection, the prefix of thumbq's keys, how long records live, Sentinel failover or a Redis Cluster.

use std::time::Duration;

use super::{
    SettingsError,
    env::{Env, Out},
    var::{Described, Refused, Var, list},
};

static URL: Var<String> = Var::text("THUMBQ_REDIS_URL", "redis://127.0.0.1:6379", "Redis");
static KEY_PREFIX: Var<String> = Var::text("THUMBQ_KEY_PREFIX", "thumbq:", "Prefix of every Redis key and channel");
static RESULT_TTL: Var<Duration> =
    Var::secs("THUMBQ_RESULT_TTL_SECS", "86400", "Task records expire this long after their last change");
static TIMEOUT: Var<Duration> = Var::millis("THUMBQ_REDIS_TIMEOUT_MS", "2000", "Bound on each Redis command");
static SENTINELS: Var<Vec<String>> = Var::new(
    "THUMBQ_REDIS_SENTINELS",
    "",
    "`host:port` of Redis Sentinels, comma-separated: thumbq asks them for the primary and follows failovers; `THUMBQ_REDIS_URL` then only gives the password and database",
    |s| Ok(list(s).map(str::to_owned).collect()),
    |v| v.join(","),
);
static CLUSTER: Var<Vec<String>> = Var::new(
    "THUMBQ_REDIS_CLUSTER",
    "",
    "`host:port` of Redis Cluster nodes to start from, comma-separated: thumbq's state is sharded over the cluster; `THUMBQ_REDIS_URL` then only gives the password",
    |s| Ok(list(s).map(str::to_owned).collect()),
    |v| v.join(","),
);
static MASTER_NAME: Var<String> =
    Var::text("THUMBQ_REDIS_MASTER_NAME", "thumbq", "The name the sentinels monitor the primary under");
static REPLICA_WAIT: Var<Duration> = Var::new(
    "THUMBQ_REDIS_WAIT_MS",
    "200",
    "With sentinels or a cluster: how long a task's creation or state change waits for a replica to confirm it (`WAIT 1`)",
    replica_wait,
    |d| d.as_millis().to_string(),
);

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] =
    &[&URL, &KEY_PREFIX, &RESULT_TTL, &TIMEOUT, &SENTINELS, &MASTER_NAME, &CLUSTER, &REPLICA_WAIT];

/// Redis settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisSettings {
    /// `THUMBQ_REDIS_URL`, default `redis://127.0.0.1:6379`.
    pub url: String,
    /// `THUMBQ_KEY_PREFIX`, default `thumbq:`: prefix of every Redis key and channel thumbq uses.
    pub key_prefix: String,
    /// `THUMBQ_RESULT_TTL_SECS`, default `86400` (24 h): how long task records are kept after their last change.
    pub result_ttl: Duration,
    /// `THUMBQ_REDIS_TIMEOUT_MS`, default `2000`: bound on getting a connection and on each command.
    pub timeout: Duration,
    /// `THUMBQ_REDIS_SENTINELS`, default none: `host:port` of Redis Sentinels, comma-separated. When set, thumbq
    /// asks them for the primary of `THUMBQ_REDIS_MASTER_NAME` (default `thumbq`) and follows failovers;
    /// `THUMBQ_REDIS_URL` then gives only the password and database.
    pub sentinels: Vec<String>,
    /// `THUMBQ_REDIS_MASTER_NAME`, default `thumbq`: the name the sentinels monitor the primary under.
    pub master_name: String,
    /// `THUMBQ_REDIS_CLUSTER`, default none: `host:port` of Redis Cluster nodes to start from, comma-separated.
    /// When set, thumbq's keys are spread over the cluster's shards (see docs/architecture.md) and
    /// `THUMBQ_REDIS_URL` gives only the password. Not with `THUMBQ_REDIS_SENTINELS`.
    pub cluster: Vec<String>,
    /// `THUMBQ_REDIS_WAIT_MS`, default `200` (at most `400`): with sentinels or a cluster, how long a task's creation or state
    /// change waits for a replica to confirm it (`WAIT 1`) before going on without (logged; the next 5 s of
    /// writes then do not wait).
    pub replica_wait: Duration,
}

impl RedisSettings {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        let (cluster, sentinels, key_prefix): (Vec<String>, Vec<String>, String) =
            (env.get(&CLUSTER)?, env.get(&SENTINELS)?, env.get(&KEY_PREFIX)?);
        if !cluster.is_empty() && !sentinels.is_empty() {
            return Err(env.error(
                CLUSTER.name(),
                &cluster.join(","),
                "a cluster has no sentinels: set one of the two",
            ));
        }
        // On a cluster the first `{...}` of a key names its slot: thumbq puts its own there (a shard's).
        if !cluster.is_empty() && key_prefix.contains(['{', '}']) {
            return Err(env.error(KEY_PREFIX.name(), &key_prefix, "on a Redis Cluster the prefix may not hold { or }"));
        }
        Ok(Self {
            url: env.get(&URL)?,
            key_prefix,
            result_ttl: env.get(&RESULT_TTL)?,
            timeout: env.get(&TIMEOUT)?,
            sentinels,
            master_name: env.get(&MASTER_NAME)?,
            cluster,
            replica_wait: env.get(&REPLICA_WAIT)?,
        })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&URL, &self.url);
        out.put(&KEY_PREFIX, &self.key_prefix);
        out.put(&RESULT_TTL, &self.result_ttl);
        out.put(&TIMEOUT, &self.timeout);
        out.put(&SENTINELS, &self.sentinels);
        out.put(&MASTER_NAME, &self.master_name);
        out.put(&CLUSTER, &self.cluster);
        out.put(&REPLICA_WAIT, &self.replica_wait);
    }
}

/// `THUMBQ_REDIS_WAIT_MS`: milliseconds, 1 to 400.
fn replica_wait(text: &str) -> Result<Duration, Refused> {
    match super::var::positive::<u64>(text).map(Duration::from_millis)? {
        // The Redis client gives up on any reply after 500 ms; WAIT must answer before that.
        wait if wait > Duration::from_millis(400) => {
            Err(Refused::showing(&wait.as_millis().to_string(), "at most 400"))
        }
        wait => Ok(wait),
    }
}

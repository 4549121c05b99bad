//! Task records and live workers in Redis.
//!
//! - `<prefix>task:<id>`: one string per task, a compact JSON object ([`codec`]), expiring `result_ttl` after its
//!   last change.
//! - `<prefix>index:all`: the creation-time index behind listing ([`index`]).
//! - `<prefix>events`: a pub/sub channel announcing each task's end ([`event`]); the API's long poll waits on it.
//! - `<prefix>index:owner:<key>`: each API key's tasks, for listings without `admin`, and `<prefix>index:job:<id>`
//!   each bulk job's items ([`index`]);
//!   `<prefix>erased:<id>`: the mark an erased task leaves ([`erasure`]).
//! - `<prefix>history:<ms>`: finished tasks and their latency per 10-second bucket, for the dashboard and `/stats`
//!   ([`history`]).
//! - `<prefix>worker:<id>`, `<prefix>workers`: the worker registry ([`workers`]).
//! - `<prefix>job:<id>`, `<prefix>jobs`, `<prefix>jobs:running`, `<prefix>jobs:pump`: bulk jobs ([`jobs`]).
//! - `<prefix>apikey:<sha256>`, `<prefix>apikeys`, `<prefix>rate:<bucket>`: API keys and rate limits ([`api_keys`]).
//!
//! Every transition runs as one Lua script ([`transition`]) that checks the state machine inside Redis; so does a
//! replay's return to PENDING ([`requeue`]), refused for an erased or cancelled task. A record an earlier version
//! wrote (a hash) is converted the first time it is met ([`StateStore::convert_legacy`]).

pub mod api_keys;
pub mod codec;
mod connection;
pub mod dedupe;
pub mod erasure;
pub mod event;
pub mod history;
pub mod idempotency;
pub mod index;
pub mod jobs;
pub mod keys;
pub mod requeue;
pub mod transition;
pub mod workers;

use std::{sync::Arc, time::Duration};

use redis::Script;

pub use connection::{Connection, primary_client};
pub use event::parse as parse_event;
pub use index::{Among, IndexEntry, InvalidCursor, Page};
pub use keys::{Keys, Shard};

use crate::{reconnect::Outage, settings::RedisSettings, task::TaskId};

/// Failures talking to Redis; all are transient from the task's point of view.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Redis could not be reached or did not answer in time.
    #[error("redis is unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be read back (written by an incompatible version).
    #[error("task record {id} is unreadable: {reason}")]
    Corrupt {
        /// The task.
        id: TaskId,
        /// What is wrong.
        reason: String,
    },
    /// A task record written by an earlier version (a hash) that could not be converted (see
    /// [`StateStore::convert_legacy`]).
    #[error("a task record is in an earlier version's layout and could not be converted")]
    OldRecord,
    /// A stored job could not be read back.
    #[error("job {id} is unreadable: {reason}")]
    CorruptJob {
        /// The job.
        id: crate::job::JobId,
        /// What is wrong.
        reason: String,
    },
}

/// The outcome of a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// The record moved to the new state.
    Applied,
    /// The record is in this state, which the transition may not leave (terminal, or a later attempt).
    Refused(crate::task::TaskStatus),
    /// No record exists (never created, withdrawn by the API, or expired).
    Missing,
}

/// How long durable writes go on without `WAIT` after no replica confirmed one.
const REPLICA_RECHECK: Duration = Duration::from_secs(5);

/// The Redis-backed store of task records; cheap to clone.
#[derive(Clone)]
pub struct StateStore {
    pool: connection::Pools,
    /// With Sentinel or a cluster: how long a task-state write waits for a replica to have it (`WAIT 1`).
    replica_wait: Option<Duration>,
    keys: Keys,
    ttl: Duration,
    success_ttl: Option<Duration>,
    /// How long a job item's record lives after its last change (`THUMBQ_JOB_ITEM_TTL_SECS`).
    item_ttl: Duration,
    timeout: Duration,
    transition: Script,
    scripts: api_keys::AccessScripts,
    outage: Arc<Outage>,
    replica_outage: Arc<Outage>,
    /// Until when durable writes skip `WAIT`: set when no replica confirmed one (see [`StateStore::run_durable`]).
    replica_missing_until: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
    /// When this process last trimmed each index (see [`index::TrimClock`]).
    trims: Arc<index::TrimClock>,
    /// The finished tasks this process has not yet added to the dashboard's history (see [`history::Tally`]).
    history: Arc<history::Tally>,
}

impl StateStore {
    /// A store over a connection pool; connections are opened lazily, so this succeeds while Redis is down.
    pub fn new(settings: &RedisSettings) -> Result<Self, StateError> {
        Ok(Self {
            pool: connection::Pools::new(settings)?,
            replica_wait: (!settings.sentinels.is_empty() || !settings.cluster.is_empty())
                .then_some(settings.replica_wait),
            keys: if settings.cluster.is_empty() {
                Keys::new(&settings.key_prefix)
            } else {
                Keys::sharded(&settings.key_prefix)
            },
            ttl: settings.result_ttl,
            success_ttl: None,
            item_ttl: settings.result_ttl,
            timeout: settings.timeout,
            transition: transition::script(),
            scripts: api_keys::AccessScripts::new(),
            trims: Arc::default(),
            history: Arc::default(),
            outage: Arc::new(Outage::new("redis")),
            replica_outage: Arc::new(Outage::new("redis replica")),
            replica_missing_until: Arc::default(),
        })
    }

    /// Keeps the records of successful tasks for `ttl` instead of the result TTL, so that they expire with their
    /// thumbnails (`THUMBQ_THUMBNAIL_TTL_SECS`); `None` changes nothing.
    pub fn keeping_successes_for(mut self, ttl: Option<Duration>) -> Self {
        self.success_ttl = ttl;
        self
    }

    /// Keeps job items' records for `ttl` after their last change (`THUMBQ_JOB_ITEM_TTL_SECS`).
    pub fn keeping_job_items_for(mut self, ttl: Duration) -> Self {
        self.item_ttl = ttl;
        self
    }

    /// The names of this store's keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), StateError> {
        self.run(async |conn| redis::cmd("PING").query_async::<()>(conn).await).await
    }

    /// Runs one command on a pooled connection within the configured timeout.
    async fn run<T>(
        &self,
        command: impl AsyncFnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StateError> {
        self.run_with(command, None).await
    }

    /// Runs a write that a task's fate depends on (its creation, its transitions), on the server holding `key`:
    /// with Sentinel or a cluster, it returns only once a replica has it too, or `THUMBQ_REDIS_WAIT_MS` has passed. Replication is asynchronous, so without
    /// this a failover could drop a SUCCESS whose message was already acked, or a task the API already accepted.
    /// When no replica confirms (none left after a failover, or one resyncing), writes go on without waiting for
    /// [`REPLICA_RECHECK`], then try again: the service stays up, with the risk logged.
    async fn run_durable<T>(
        &self,
        key: &str,
        command: impl AsyncFnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StateError> {
        self.run_with(command, Some(key)).await
    }

    async fn run_with<T>(
        &self,
        command: impl AsyncFnOnce(&mut Connection) -> redis::RedisResult<T>,
        durable: Option<&str>,
    ) -> Result<T, StateError> {
        let work = async {
            let pooled = self.pool.get().await?;
            let mut conn = pooled.connection();
            let mut result = command(&mut conn).await;
            if let (Ok(_), Some(key), Some(wait)) = (&result, durable, self.replica_wait) {
                let skipping = self
                    .replica_missing_until
                    .lock()
                    .ok()
                    .and_then(|u| *u)
                    .is_some_and(|u| u > tokio::time::Instant::now());
                if !skipping {
                    // WAIT covers every write this connection sent before it, this one included.
                    let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                    let missing = match conn.wait_for_replica(key, millis).await {
                        Ok(0) => {
                            self.replica_outage.failed(&format!(
                                "no replica confirmed a write within {wait:?}; writes go on unreplicated"
                            ));
                            Some(tokio::time::Instant::now() + REPLICA_RECHECK)
                        }
                        Ok(_) => {
                            self.replica_outage.recovered();
                            None
                        }
                        Err(e) => {
                            result = Err(e);
                            None
                        }
                    };
                    if let Ok(mut until) = self.replica_missing_until.lock() {
                        *until = missing;
                    }
                }
            }
            result.map_err(|e| {
                if is_wrong_type(&e) {
                    // Only a task record changed type (see `on_record`): not an outage.
                    return StateError::OldRecord;
                }
                let message = e.to_string();
                pooled.discard_if_broken(&e);
                StateError::Unavailable(message)
            })
        };
        let result = tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| Err(StateError::Unavailable(format!("no answer within {:?}", self.timeout))));
        match &result {
            Err(StateError::Unavailable(e)) => self.outage.failed(e),
            _ => self.outage.recovered(),
        }
        result
    }
}

impl StateStore {
    /// Runs `op` on the record of task `id`; when `op` met a record of an earlier version, converts it and runs
    /// `op` again.
    ///
    /// `op` is a closure that makes a future rather than an async closure: the futures of async closures taken as
    /// `impl AsyncFn` are not `Send` (rust-lang/rust#100013), and the worker spawns these.
    async fn on_record<T, F>(&self, id: TaskId, op: impl Fn() -> F) -> Result<T, StateError>
    where
        F: Future<Output = Result<T, StateError>>,
    {
        match op().await {
            Err(StateError::OldRecord) => {
                self.convert_legacy(id).await?;
                op().await
            }
            other => other,
        }
    }

    /// Rewrites the record of `id` from the hash an earlier version wrote into this version's value, keeping its
    /// lifetime, so that an upgrade loses no record and stalls no task in flight. The hash is read, converted here,
    /// and replaced by a script only if its history is still what was read (a writer of the earlier version may
    /// still be running during a rolling upgrade).
    pub async fn convert_legacy(&self, id: TaskId) -> Result<(), StateError> {
        static CONVERT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(
                "if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 1 end \
                 if (redis.call('HGET', KEYS[1], 'history') or '') ~= ARGV[2] then return 0 end \
                 local ttl = redis.call('PTTL', KEYS[1]) redis.call('DEL', KEYS[1]) \
                 if ttl > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl) \
                 else redis.call('SET', KEYS[1], ARGV[1]) end return 1",
            )
        });
        let key = self.keys.task(id);
        for _ in 0..3 {
            let fields: std::collections::HashMap<String, String> =
                match self.run(async |conn| redis::cmd("HGETALL").arg(&key).query_async(conn).await).await {
                    Err(StateError::OldRecord) => return Ok(()), // a value already: converted meanwhile
                    fields => fields?,
                };
            if fields.is_empty() {
                return Ok(());
            }
            let record = codec::legacy::from_fields(&fields).map_err(|reason| StateError::Corrupt { id, reason })?;
            let (value, history) = (codec::encode(&record), fields.get("history").cloned().unwrap_or_default());
            let done: i64 = self
                .run_durable(&key, async |conn| CONVERT.key(&key).arg(&value).arg(&history).invoke_async(conn).await)
                .await?;
            if done == 1 {
                return Ok(());
            }
        }
        Err(StateError::OldRecord)
    }
}

/// Whether Redis refused a command, or one of a pipeline's, for the type of its key: a task record in an earlier
/// version's layout.
fn is_wrong_type(e: &redis::RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
        || e.clone().into_server_errors().is_some_and(|errors| errors.iter().any(|(_, e)| e.code() == "WRONGTYPE"))
}

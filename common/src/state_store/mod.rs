//! Task records and live workers in Redis.
//!
//! - `<prefix>task:<id>`: one hash per task ([`codec`]), expiring `result_ttl` after its last change.
//! - `<prefix>index:all`, `<prefix>index:<STATUS>`: the creation-time indexes behind listing ([`index`]).
//! - `<prefix>events`: a pub/sub channel carrying every change ([`event`]); the API's long poll waits on it.
//! - `<prefix>finished`: tasks finished in the last hour, for `/stats`.
//! - `<prefix>worker:<id>`, `<prefix>workers`: the worker registry ([`workers`]).
//! - `<prefix>apikey:<sha256>`, `<prefix>apikeys`, `<prefix>rate:<bucket>`: API keys and rate limits ([`access`]).
//!
//! Every transition runs as one Lua script ([`transition`]) that checks the state machine inside Redis.

pub mod access;
pub mod codec;
pub mod event;
pub mod index;
pub mod keys;
pub mod transition;
pub mod workers;

use std::{sync::Arc, time::Duration};

use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};
use redis::Script;

pub use event::parse as parse_event;
pub use index::{IndexEntry, InvalidCursor, Page};
pub use keys::Keys;

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

/// The Redis-backed store of task records; cheap to clone.
#[derive(Clone)]
pub struct StateStore {
    pool: Pool,
    keys: Keys,
    ttl: Duration,
    success_ttl: Option<Duration>,
    timeout: Duration,
    transition: Script,
    scripts: access::AccessScripts,
    outage: Arc<Outage>,
}

impl StateStore {
    /// A store over a connection pool; connections are opened lazily, so this succeeds while Redis is down.
    pub fn new(settings: &RedisSettings) -> Result<Self, StateError> {
        let mut config = Config::from_url(settings.url.clone());
        let timeouts =
            Timeouts { wait: Some(settings.timeout), create: Some(settings.timeout), recycle: Some(settings.timeout) };
        config.pool = Some(PoolConfig { timeouts, ..PoolConfig::new(32) });
        let pool = config.create_pool(Some(Runtime::Tokio1)).map_err(|e| StateError::Unavailable(e.to_string()))?;
        Ok(Self {
            pool,
            keys: Keys::new(&settings.key_prefix),
            ttl: settings.result_ttl,
            success_ttl: None,
            timeout: settings.timeout,
            transition: transition::script(),
            scripts: access::AccessScripts::new(),
            outage: Arc::new(Outage::new("redis")),
        })
    }

    /// Keeps the records of successful tasks for `ttl` instead of the result TTL, so that they expire with their
    /// thumbnails (`THUMBQ_THUMBNAIL_TTL_SECS`); `None` changes nothing.
    pub fn keeping_successes_for(mut self, ttl: Option<Duration>) -> Self {
        self.success_ttl = ttl;
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
        command: impl AsyncFnOnce(&mut deadpool_redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StateError> {
        let work = async {
            let mut conn = self.pool.get().await.map_err(|e| StateError::Unavailable(e.to_string()))?;
            command(&mut conn).await.map_err(|e| StateError::Unavailable(e.to_string()))
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

//! Where the state store's connections come from: one Redis (`THUMBQ_REDIS_URL`), or the primary that Redis
//! Sentinel names (`THUMBQ_REDIS_SENTINELS`), looked up again for every new connection so that a failover is
//! followed.

use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolConfig, RecycleResult, Timeouts};
use deadpool_redis::{Runtime, sentinel};
use redis::{ErrorKind, IntoConnectionInfo, RedisError, ServerErrorKind, aio::MultiplexedConnection};

use super::StateError;
use crate::settings::RedisSettings;

/// A pooled connection used this recently is handed out again without a check. deadpool-redis checks every
/// connection with `UNWATCH` + `PING` before each use: a round trip as dear as the command itself, half of all
/// round trips under load. A connection that dies unchecked fails its command, which is discarded (see
/// [`Pooled::discard_if_broken`]) and reported as Redis being unavailable, as a failure right after a check is; the
/// window is HikariCP's `aliveBypassWindowMs` default. thumbq never uses `WATCH`, so there is none to undo.
const CHECKED_IF_IDLE_FOR: Duration = Duration::from_millis(500);

/// deadpool-redis's manager (direct or through Sentinel), its check skipped for recently used connections.
pub(super) struct CheckedWhenIdle<M>(M);

impl<M> managed::Manager for CheckedWhenIdle<M>
where
    M: managed::Manager<Type = MultiplexedConnection, Error = RedisError>,
{
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        self.0.create().await
    }

    async fn recycle(&self, conn: &mut MultiplexedConnection, metrics: &Metrics) -> RecycleResult<RedisError> {
        if metrics.last_used() < CHECKED_IF_IDLE_FOR {
            return Ok(());
        }
        self.0.recycle(conn, metrics).await
    }
}

type Pool<M> = managed::Pool<CheckedWhenIdle<M>>;

/// A pool of `manager`'s connections on tokio; connects to nothing yet.
fn pool<M>(manager: M, config: PoolConfig) -> Result<Pool<M>, managed::BuildError>
where
    M: managed::Manager<Type = MultiplexedConnection, Error = RedisError>,
{
    managed::Pool::builder(CheckedWhenIdle(manager)).config(config).runtime(Runtime::Tokio1).build()
}

/// The connection pool: straight to one Redis, or through Sentinel to the current primary.
#[derive(Clone)]
pub(super) enum Pools {
    Direct(Pool<deadpool_redis::Manager>),
    Sentinel(Pool<sentinel::Manager>),
}

/// A pooled connection of either kind.
pub(super) enum Pooled {
    Direct(Object<CheckedWhenIdle<deadpool_redis::Manager>>),
    Sentinel(Object<CheckedWhenIdle<sentinel::Manager>>),
}

impl Pools {
    /// Builds the pool; connects to nothing yet.
    pub(super) fn new(settings: &RedisSettings) -> Result<Self, StateError> {
        let timeouts =
            Timeouts { wait: Some(settings.timeout), create: Some(settings.timeout), recycle: Some(settings.timeout) };
        let config = PoolConfig { timeouts, ..PoolConfig::new(32) };
        let unavailable = |e: &dyn std::fmt::Display| StateError::Unavailable(e.to_string());
        if settings.sentinels.is_empty() {
            let manager = deadpool_redis::Manager::new(settings.url.as_str()).map_err(|e| unavailable(&e))?;
            return pool(manager, config).map(Self::Direct).map_err(|e| unavailable(&e));
        }
        let manager = sentinel::Manager::new(
            sentinel_urls(settings),
            settings.master_name.clone(),
            Some(node_info(settings).map_err(|e| unavailable(&e))?),
            sentinel::SentinelServerType::Master,
        )
        .map_err(|e| unavailable(&e))?;
        pool(manager, config).map(Self::Sentinel).map_err(|e| unavailable(&e))
    }

    pub(super) async fn get(&self) -> Result<Pooled, StateError> {
        let unavailable = |e: &dyn std::fmt::Display| StateError::Unavailable(e.to_string());
        match self {
            Self::Direct(pool) => pool.get().await.map(Pooled::Direct).map_err(|e| unavailable(&e)),
            Self::Sentinel(pool) => pool.get().await.map(Pooled::Sentinel).map_err(|e| unavailable(&e)),
        }
    }
}

impl Pooled {
    pub(super) fn connection(&mut self) -> &mut MultiplexedConnection {
        match self {
            Self::Direct(conn) => conn,
            Self::Sentinel(conn) => conn,
        }
    }

    /// Leaves a connection that failed out of the pool. A pooled connection idle for a while is checked with a
    /// PING before reuse, but a demoted primary still answers PING while it refuses writes (`READONLY`): after a
    /// failover, only a new connection (through Sentinel) reaches the new primary.
    pub(super) fn discard_if_broken(self, error: &RedisError) {
        let broken = error.is_io_error()
            || error.is_connection_dropped()
            || error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly);
        if broken {
            match self {
                Self::Direct(conn) => drop(Object::take(conn)),
                Self::Sentinel(conn) => drop(Object::take(conn)),
            }
        }
    }
}

/// A client of the current primary, for a connection outside the pool (the API's event subscription): call it
/// again for every reconnect.
pub async fn primary_client(settings: &RedisSettings) -> redis::RedisResult<redis::Client> {
    if settings.sentinels.is_empty() {
        return redis::Client::open(settings.url.as_str());
    }
    let node_info = redis::sentinel::SentinelNodeConnectionInfo::default()
        .set_redis_connection_info(settings.url.as_str().into_connection_info()?.redis_settings().clone());
    let mut client = redis::sentinel::SentinelClient::build(
        sentinel_urls(settings),
        settings.master_name.clone(),
        Some(node_info),
        redis::sentinel::SentinelServerType::Master,
    )?;
    client.async_get_client().await
}

fn sentinel_urls(settings: &RedisSettings) -> Vec<String> {
    settings.sentinels.iter().map(|address| format!("redis://{address}")).collect()
}

/// The database and credentials of `THUMBQ_REDIS_URL`, used on whichever server Sentinel names.
fn node_info(settings: &RedisSettings) -> redis::RedisResult<sentinel::SentinelNodeConnectionInfo> {
    let info = settings.url.as_str().into_connection_info()?;
    Ok(sentinel::SentinelNodeConnectionInfo {
        tls_mode: None,
        redis_connection_info: Some(info.redis_settings().clone().into()),
    })
}

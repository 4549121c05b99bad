//! Where the state store's connections come from: one Redis (`THUMBQ_REDIS_URL`), or the primary that Redis
//! Sentinel names (`THUMBQ_REDIS_SENTINELS`), looked up again for every new connection so that a failover is
//! followed.

use deadpool_redis::{PoolConfig, Runtime, Timeouts, sentinel};
use redis::{ErrorKind, IntoConnectionInfo, RedisError, ServerErrorKind, aio::MultiplexedConnection};

use super::StateError;
use crate::settings::RedisSettings;

/// The connection pool: straight to one Redis, or through Sentinel to the current primary.
#[derive(Clone)]
pub(super) enum Pools {
    Direct(deadpool_redis::Pool),
    Sentinel(sentinel::Pool),
}

/// A pooled connection of either kind.
pub(super) enum Pooled {
    Direct(deadpool_redis::Connection),
    Sentinel(sentinel::Connection),
}

impl Pools {
    /// Builds the pool; connects to nothing yet.
    pub(super) fn new(settings: &RedisSettings) -> Result<Self, StateError> {
        let timeouts =
            Timeouts { wait: Some(settings.timeout), create: Some(settings.timeout), recycle: Some(settings.timeout) };
        let pool = Some(PoolConfig { timeouts, ..PoolConfig::new(32) });
        let unavailable = |e: &dyn std::fmt::Display| StateError::Unavailable(e.to_string());
        if settings.sentinels.is_empty() {
            let config = deadpool_redis::Config { pool, ..deadpool_redis::Config::from_url(settings.url.clone()) };
            return config.create_pool(Some(Runtime::Tokio1)).map(Self::Direct).map_err(|e| unavailable(&e));
        }
        let config = sentinel::Config {
            urls: Some(sentinel_urls(settings)),
            server_type: sentinel::SentinelServerType::Master,
            master_name: settings.master_name.clone(),
            connections: None,
            node_connection_info: Some(node_info(settings).map_err(|e| unavailable(&e))?),
            pool,
        };
        config.create_pool(Some(Runtime::Tokio1)).map(Self::Sentinel).map_err(|e| unavailable(&e))
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

    /// Leaves a connection that failed out of the pool. A pooled connection is checked with a PING before reuse,
    /// but a demoted primary still answers PING while it refuses writes (`READONLY`): after a failover, only a new
    /// connection (through Sentinel) reaches the new primary.
    pub(super) fn discard_if_broken(self, error: &RedisError) {
        let broken = error.is_io_error()
            || error.is_connection_dropped()
            || error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly);
        if broken {
            match self {
                Self::Direct(conn) => drop(deadpool_redis::Connection::take(conn)),
                Self::Sentinel(conn) => drop(sentinel::Connection::take(conn)),
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

//! Where the state store's connections come from: one Redis (`THUMBQ_REDIS_URL`), the primary that Redis
//! Sentinel names (`THUMBQ_REDIS_SENTINELS`), looked up again for every new connection so that a failover is
//! followed, or a Redis Cluster (`THUMBQ_REDIS_CLUSTER`), whose client routes each command to its slot's primary
//! and follows failovers and resharding itself.

use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolConfig, RecycleResult, Timeouts};
use deadpool_redis::{Runtime, cluster, sentinel};
use redis::{
    Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value,
    aio::{ConnectionLike, MultiplexedConnection},
    cluster_async::ClusterConnection,
    cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr},
};

use super::StateError;
use crate::settings::RedisSettings;

/// A pooled connection used this recently is handed out again without a check. deadpool-redis checks every
/// connection with `UNWATCH` + `PING` before each use: a round trip as dear as the command itself, half of all
/// round trips under load. A connection that dies unchecked fails its command, which is discarded (see
/// [`Pooled::discard_if_broken`]) and reported as Redis being unavailable, as a failure right after a check is; the
/// window is HikariCP's `aliveBypassWindowMs` default. thumbq never uses `WATCH`, so there is none to undo.
const CHECKED_IF_IDLE_FOR: Duration = Duration::from_millis(500);

/// deadpool-redis's manager (direct, through Sentinel or of a cluster), its check skipped for recently used
/// connections.
pub(super) struct CheckedWhenIdle<M>(M);

impl<M> managed::Manager for CheckedWhenIdle<M>
where
    M: managed::Manager<Error = RedisError>,
{
    type Type = M::Type;
    type Error = RedisError;

    async fn create(&self) -> Result<M::Type, RedisError> {
        self.0.create().await
    }

    async fn recycle(&self, conn: &mut M::Type, metrics: &Metrics) -> RecycleResult<RedisError> {
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
    M: managed::Manager<Error = RedisError>,
{
    managed::Pool::builder(CheckedWhenIdle(manager)).config(config).runtime(Runtime::Tokio1).build()
}

/// The connection pool: straight to one Redis, through Sentinel to the current primary, or to a cluster.
#[derive(Clone)]
pub(super) enum Pools {
    Direct(Pool<deadpool_redis::Manager>),
    Sentinel(Pool<sentinel::Manager>),
    Cluster(Pool<cluster::Manager>),
}

/// A pooled connection of any kind.
pub(super) enum Pooled {
    Direct(Object<CheckedWhenIdle<deadpool_redis::Manager>>),
    Sentinel(Object<CheckedWhenIdle<sentinel::Manager>>),
    Cluster(Object<CheckedWhenIdle<cluster::Manager>>),
}

/// What the store's commands run on: a connection to one Redis, or a cluster's (which routes each command, and
/// each pipeline, by its keys' slot: a pipeline's keys must share one). Both are handles on a multiplexed
/// connection, cheap to clone.
#[derive(Clone)]
pub enum Connection {
    /// One Redis (directly or through Sentinel).
    Single(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

impl Connection {
    /// `WAIT 1 <millis>` on the server that holds `key`: the number of replicas that have every write this
    /// connection sent it. On a cluster, the client would send a `WAIT` without a route to every primary.
    pub(super) async fn wait_for_replica(&mut self, key: &str, millis: u64) -> redis::RedisResult<u64> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(1).arg(millis);
        match self {
            Self::Single(conn) => wait.query_async(conn).await,
            Self::Cluster(conn) => {
                let route = Route::with_slot(Slot::for_key(key), SlotAddr::Master);
                let reply =
                    conn.route_command(wait, RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)));
                Ok(redis::from_redis_value(reply.await?)?)
            }
        }
    }
}

impl Pools {
    /// Builds the pool; connects to nothing yet.
    pub(super) fn new(settings: &RedisSettings) -> Result<Self, StateError> {
        let timeouts =
            Timeouts { wait: Some(settings.timeout), create: Some(settings.timeout), recycle: Some(settings.timeout) };
        let config = PoolConfig { timeouts, ..PoolConfig::new(32) };
        let unavailable = |e: &dyn std::fmt::Display| StateError::Unavailable(e.to_string());
        if !settings.cluster.is_empty() {
            let manager = cluster::Manager::new(cluster_nodes(settings).map_err(|e| unavailable(&e))?, false)
                .map_err(|e| unavailable(&e))?;
            return pool(manager, config).map(Self::Cluster).map_err(|e| unavailable(&e));
        }
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
            Self::Cluster(pool) => pool.get().await.map(Pooled::Cluster).map_err(|e| unavailable(&e)),
        }
    }
}

impl Pooled {
    pub(super) fn connection(&self) -> Connection {
        match self {
            Self::Direct(conn) => Connection::Single((**conn).clone()),
            Self::Sentinel(conn) => Connection::Single((**conn).clone()),
            Self::Cluster(conn) => Connection::Cluster((**conn).clone()),
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
                Self::Cluster(conn) => drop(Object::take(conn)),
            }
        }
    }
}

/// A client of the current primary, for a connection outside the pool (the API's event subscription): call it
/// again for every reconnect. On a cluster, of the first node that answers (pub/sub is cluster-wide).
pub async fn primary_client(settings: &RedisSettings) -> redis::RedisResult<redis::Client> {
    if !settings.cluster.is_empty() {
        let mut last = None;
        for node in cluster_nodes(settings)? {
            let client = redis::Client::open(node)?;
            let answered = async {
                redis::cmd("PING").query_async::<()>(&mut client.get_multiplexed_async_connection().await?).await
            };
            match tokio::time::timeout(settings.timeout, answered).await {
                Ok(Ok(())) => return Ok(client),
                Ok(Err(e)) => last = Some(e),
                Err(_) => last = Some(RedisError::from((ErrorKind::Io, "no answer in time"))),
            }
        }
        return Err(last.unwrap_or_else(|| RedisError::from((ErrorKind::Client, "no cluster node given"))));
    }
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

/// The cluster's seed nodes, with the credentials of `THUMBQ_REDIS_URL` (a cluster has only database 0).
fn cluster_nodes(settings: &RedisSettings) -> redis::RedisResult<Vec<redis::ConnectionInfo>> {
    let info = settings.url.as_str().into_connection_info()?;
    let info = info.clone().set_redis_settings(info.redis_settings().clone().set_db(0));
    settings
        .cluster
        .iter()
        .map(|node| {
            let (host, port) =
                node.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse().ok()?))).ok_or_else(|| {
                    RedisError::from((ErrorKind::InvalidClientConfig, "a cluster node is not host:port", node.clone()))
                })?;
            Ok(info.clone().set_addr(ConnectionAddr::Tcp(host.to_owned(), port)))
        })
        .collect()
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

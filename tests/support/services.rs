//! The shared RabbitMQ and Redis as the end-to-end tests and the bench use them: where they listen, and deleting
//! what a run created there. Also compiled into `bench/end_to_end.rs`.

use lapin::options::QueueDeleteOptions;
use thumbq_common::{
    broker,
    settings::{AmqpSettings, RedisSettings},
};

/// The host and port of a `scheme://[user:pass@]host:port/...` URL.
pub fn address_of(url: &str) -> std::net::SocketAddr {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    std::net::ToSocketAddrs::to_socket_addrs(host_port).expect("a resolvable address").next().expect("an address")
}

/// How long a test's queues are left alone after its API and workers stopped, before they are deleted.
///
/// RabbitMQ 3.10's at-least-once dead-letter worker (one per quorum queue that dead-letters) crashes if its queue is
/// deleted while it starts up, and two such crashes within seconds kill its supervisor, after which no quorum queue
/// with at-least-once dead-lettering can start on the node until an operator restarts that supervisor (seen here:
/// a stopping API's last topology declare landed 2 ms before the clean-up's delete). The start-up takes
/// milliseconds; nothing observable over AMQP says when it is over, hence a pause rather than a condition.
const QUEUE_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// Deletes `queues`, ignoring errors (a test's verdict is already in).
pub async fn delete_queues(amqp: &AmqpSettings, queues: &[impl AsRef<str>]) {
    tokio::time::sleep(QUEUE_SETTLE).await;
    if let Ok(connection) = broker::connect(amqp, "thumbq cleanup").await {
        if let Ok(channel) = connection.create_channel().await {
            for queue in queues {
                let _ = channel.queue_delete(queue.as_ref().into(), QueueDeleteOptions::default()).await;
            }
        }
        let _ = connection.close(200, "done".into()).await;
    }
}

/// Deletes every Redis key under the prefix, ignoring errors.
pub async fn delete_keys(redis: &RedisSettings) {
    let Ok(nodes) = keys_by_node(redis).await else { return };
    for (url, keys) in nodes.iter().filter(|(_, keys)| !keys.is_empty()) {
        let Ok(mut conn) = redis_connection(url).await else { continue };
        // One key a command: on a Redis Cluster, one command's keys must share a slot.
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("DEL").arg(key).ignore();
        }
        let _: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
    }
}

/// Every key under `redis.key_prefix` (a test's own prefix, so KEYS scans only a handful), on every primary of a
/// Redis Cluster.
pub async fn keys_under(redis: &RedisSettings) -> redis::RedisResult<Vec<String>> {
    Ok(keys_by_node(redis).await?.into_iter().flat_map(|(_, keys)| keys).collect())
}

/// Bytes Redis holds for the keys under `redis.key_prefix`, by its own estimate of each (`MEMORY USAGE`): one
/// test's or stack's keys, where the server's `used_memory` moves with all other work on it. On a Redis Cluster,
/// the primaries' copies (each replica holds as much again).
pub async fn bytes_under(redis: &RedisSettings) -> redis::RedisResult<u64> {
    Ok(bytes_by_key(redis).await?.iter().map(|(_, bytes)| bytes).sum())
}

/// Each key under `redis.key_prefix` with the bytes Redis holds for it (`MEMORY USAGE`).
pub async fn bytes_by_key(redis: &RedisSettings) -> redis::RedisResult<Vec<(String, u64)>> {
    let mut sized = Vec::new();
    for (url, keys) in keys_by_node(redis).await? {
        let mut conn = redis_connection(&url).await?;
        for chunk in keys.chunks(1000) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0);
            }
            let usages: Vec<Option<u64>> = pipe.query_async(&mut conn).await?;
            sized.extend(chunk.iter().cloned().zip(usages.into_iter().map(Option::unwrap_or_default)));
        }
    }
    Ok(sized)
}

/// The keys under `redis.key_prefix` of each node that holds them as a primary: the Redis of `redis.url`, or every
/// primary among a Redis Cluster's nodes (passwordless, as the tests' and the bench's are).
async fn keys_by_node(redis: &RedisSettings) -> redis::RedisResult<Vec<(String, Vec<String>)>> {
    let urls = match redis.cluster.as_slice() {
        [] => vec![redis.url.clone()],
        nodes => nodes.iter().map(|node| format!("redis://{node}")).collect(),
    };
    let mut found = Vec::new();
    for url in urls {
        let mut conn = match redis_connection(&url).await {
            Ok(conn) => conn,
            Err(_) if !redis.cluster.is_empty() => continue, // a cluster node a test killed
            Err(e) => return Err(e),
        };
        if !redis.cluster.is_empty() {
            let replication: String = redis::cmd("INFO").arg("replication").query_async(&mut conn).await?;
            if !replication.contains("role:master") {
                continue;
            }
        }
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}*", redis.key_prefix)).query_async(&mut conn).await?;
        found.push((url, keys));
    }
    Ok(found)
}

/// A connection to the Redis at `url`.
pub async fn redis_connection(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(url)?.get_multiplexed_async_connection().await
}

/// `INFO <section>` of the loopback Redis (or sentinel) on `port`; `None` while it does not answer.
pub async fn node_info(port: u16, section: &str) -> Option<String> {
    ask_node(port, redis::cmd("INFO").arg(section)).await
}

/// One command to the loopback Redis node on `port`, on a connection of its own (the node may be one a test killed);
/// `None` while it does not answer.
pub async fn ask_node<T: redis::FromRedisValue>(port: u16, command: &redis::Cmd) -> Option<T> {
    let mut conn = redis_connection(&format!("redis://127.0.0.1:{port}")).await.ok()?;
    command.query_async(&mut conn).await.ok()
}

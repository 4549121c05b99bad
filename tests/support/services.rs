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
    let Ok(keys) = keys_under(redis).await else { return };
    if !keys.is_empty()
        && let Ok(mut conn) = redis_connection(&redis.url).await
    {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// Every key under `redis.key_prefix` (a test's own prefix, so KEYS scans only a handful).
pub async fn keys_under(redis: &RedisSettings) -> redis::RedisResult<Vec<String>> {
    let mut conn = redis_connection(&redis.url).await?;
    redis::cmd("KEYS").arg(format!("{}*", redis.key_prefix)).query_async(&mut conn).await
}

/// Bytes Redis holds for the keys under `redis.key_prefix`, by its own estimate of each (`MEMORY USAGE`): one
/// test's or stack's keys, where the server's `used_memory` moves with all other work on it.
pub async fn bytes_under(redis: &RedisSettings) -> redis::RedisResult<u64> {
    Ok(bytes_by_key(redis).await?.iter().map(|(_, bytes)| bytes).sum())
}

/// Each key under `redis.key_prefix` with the bytes Redis holds for it (`MEMORY USAGE`).
pub async fn bytes_by_key(redis: &RedisSettings) -> redis::RedisResult<Vec<(String, u64)>> {
    let keys = keys_under(redis).await?;
    let mut conn = redis_connection(&redis.url).await?;
    let mut sized = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(1000) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0);
        }
        let usages: Vec<Option<u64>> = pipe.query_async(&mut conn).await?;
        sized.extend(chunk.iter().cloned().zip(usages.into_iter().map(Option::unwrap_or_default)));
    }
    Ok(sized)
}

/// A connection to the Redis at `url`.
pub async fn redis_connection(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(url)?.get_multiplexed_async_connection().await
}

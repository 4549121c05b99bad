//! Live workers in Redis: each worker writes `<prefix>worker:<id>` (JSON, expiring after three heartbeats) and its
//! id in the sorted set `<prefix>workers` (score: last heartbeat), so a worker that dies disappears on its own.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{StateError, StateStore};

/// A worker as it reports itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkerInfo {
    /// The worker's id (`THUMBQ_WORKER_ID`).
    #[schema(example = "host-a:worker-1")]
    pub id: String,
    /// Host name.
    #[schema(example = "host-a")]
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Tasks it runs at once.
    pub concurrency: u16,
    /// thumbq version.
    #[schema(example = "0.1.0")]
    pub version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// Tasks it brought to SUCCESS.
    pub done: u64,
    /// Tasks it brought to FAILURE.
    pub failed: u64,
    /// Tasks it is running now.
    pub in_flight: u64,
}

impl StateStore {
    /// Records a heartbeat; the entry expires after `ttl` without another.
    pub async fn heartbeat(&self, info: &WorkerInfo, ttl: Duration) -> Result<(), StateError> {
        let (key, set) = (self.keys.worker(&info.id), self.keys.workers());
        let json = serde_json::to_string(info).expect("WorkerInfo serialises");
        let score = info.heartbeat_at.timestamp_millis();
        self.run(async |conn| {
            let mut pipe = redis::pipe();
            pipe.set_ex(&key, &json, ttl.as_secs().max(1)).ignore().zadd(&set, &info.id, score).ignore();
            pipe.query_async(conn).await
        })
        .await
    }

    /// Removes a worker at once (on graceful shutdown).
    pub async fn unregister(&self, id: &str) -> Result<(), StateError> {
        let (key, set) = (self.keys.worker(id), self.keys.workers());
        self.run(async |conn| redis::pipe().del(&key).ignore().zrem(&set, id).ignore().query_async(conn).await).await
    }

    /// Live workers, most recent heartbeat first; entries of workers whose heartbeat expired are dropped.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, StateError> {
        let set = self.keys.workers();
        let ids: Vec<String> = self.run(async |conn| conn.zrevrange(&set, 0, -1).await).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.worker(id)).collect();
        let values: Vec<Option<String>> =
            self.run(async |conn| redis::cmd("MGET").arg(&keys).query_async(conn).await).await?;
        let mut live = Vec::new();
        for (id, value) in ids.iter().zip(values) {
            match value.and_then(|v| serde_json::from_str(&v).ok()) {
                Some(info) => live.push(info),
                None => self.run(async |conn| conn.zrem::<_, _, ()>(&set, id).await).await?,
            }
        }
        Ok(live)
    }
}

//! The last hour of finished tasks, per 10-second bucket, for the dashboard's charts. The transition script writes
//! the buckets (`<prefix>history:<start ms>`: counts by final status, latency from upload) with Redis's clock, so
//! every API process reads the same history and a page reload keeps it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{StateError, StateStore};

/// Width of a bucket, seconds.
pub const BUCKET_SECONDS: u64 = 10;
/// Buckets kept: one hour.
pub const BUCKETS: u64 = 360;

/// Tasks that finished within one bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryBucket {
    /// The bucket's start; it covers the next 10 seconds.
    pub start: DateTime<Utc>,
    /// Tasks that reached SUCCESS.
    pub success: u64,
    /// Tasks that reached FAILURE.
    pub failure: u64,
    /// Tasks cancelled (REVOKED).
    pub revoked: u64,
    /// Mean time from upload to SUCCESS or FAILURE, milliseconds; none without such tasks.
    #[schema(example = 840.5)]
    pub latency_ms_mean: Option<f64>,
    /// Longest time from upload to SUCCESS or FAILURE, milliseconds.
    #[schema(example = 2210)]
    pub latency_ms_max: Option<u64>,
}

impl HistoryBucket {
    fn from_fields(start: DateTime<Utc>, fields: &HashMap<String, u64>) -> Self {
        let count = |name: &str| fields.get(name).copied().unwrap_or(0);
        let latencies = count("latency_count");
        Self {
            start,
            success: count("success"),
            failure: count("failure"),
            revoked: count("revoked"),
            latency_ms_mean: (latencies > 0).then(|| count("latency_ms_sum") as f64 / latencies as f64),
            latency_ms_max: fields.get("latency_ms_max").copied(),
        }
    }
}

impl StateStore {
    /// The last hour's buckets, oldest first, the current (partial) one last. Two round trips: Redis's clock, then
    /// every bucket pipelined.
    pub async fn history(&self) -> Result<Vec<HistoryBucket>, StateError> {
        let prefix = self.keys.history_prefix();
        let (seconds, micros): (u64, u64) = self.run(async |conn| redis::cmd("TIME").query_async(conn).await).await?;
        let width = BUCKET_SECONDS * 1000;
        let current = (seconds * 1000 + micros / 1000) / width * width;
        let starts: Vec<u64> = (0..BUCKETS).rev().map(|i| current - i * width).collect();
        let buckets: Vec<HashMap<String, u64>> = self
            .run(async |conn| {
                let mut pipe = redis::pipe();
                starts.iter().for_each(|start| {
                    pipe.hgetall(format!("{prefix}{start}"));
                });
                pipe.query_async(conn).await
            })
            .await?;
        let time = |ms: u64| DateTime::from_timestamp_millis(ms as i64).unwrap_or_default();
        Ok(starts
            .iter()
            .zip(&buckets)
            .map(|(start, fields)| HistoryBucket::from_fields(time(*start), fields))
            .collect())
    }
}

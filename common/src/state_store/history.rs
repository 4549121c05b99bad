//! The last hour of finished tasks, per 10-second bucket, for the dashboard's charts. The buckets live in Redis
//! (`<prefix>history:<start ms>`: counts by final status, latency from upload), so every API process reads the same
//! history and a page reload keeps it.
//!
//! Each process counts the tasks it finished in a [`Tally`] and adds it to the buckets at most once a second, with
//! one script per bucket: done by the transition script, the counts cost 5 Redis commands on every task (3
//! `HINCRBY`, a `HGET` for the longest latency, an `EXPIRE`); now about 7 a second per busy process, whatever its
//! rate. The price: the chart is up to a second late, and a process killed with `-9` loses its last second of
//! counts (a graceful stop writes them); the tasks' records are never affected.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{StateError, StateStore};
use crate::task::TaskStatus;

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

/// How often a process writes its counts.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Adds one bucket's counts (ARGV: success, failure, revoked, latency sum, latency count, longest latency, the
/// bucket's lifetime in seconds) to its hash (KEYS[1]).
const ADD: &str = r"
local fields = {'success', 'failure', 'revoked', 'latency_ms_sum', 'latency_count'}
for i, field in ipairs(fields) do
  if ARGV[i] ~= '0' then redis.call('HINCRBY', KEYS[1], field, ARGV[i]) end
end
if ARGV[5] ~= '0' and tonumber(ARGV[6]) > (tonumber(redis.call('HGET', KEYS[1], 'latency_ms_max')) or -1) then
  redis.call('HSET', KEYS[1], 'latency_ms_max', ARGV[6])
end
redis.call('EXPIRE', KEYS[1], ARGV[7])
";

/// One bucket's counts, as a process gathers them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    success: u64,
    failure: u64,
    revoked: u64,
    latency_ms_sum: u64,
    latency_count: u64,
    latency_ms_max: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.success += other.success;
        self.failure += other.failure;
        self.revoked += other.revoked;
        self.latency_ms_sum += other.latency_ms_sum;
        self.latency_count += other.latency_count;
        self.latency_ms_max = self.latency_ms_max.max(other.latency_ms_max);
    }
}

/// The counts this process has not written yet, by bucket start (ms); shared by the clones of a [`StateStore`].
#[derive(Debug, Default)]
pub(super) struct Tally {
    buckets: Mutex<BTreeMap<u64, Counts>>,
    /// Whether a task is writing the counts every [`FLUSH_EVERY`] (it ends when there is nothing left).
    flushing: AtomicBool,
    /// Held while counts are being written, so a flush returns only once nothing taken is still on its way.
    writing: tokio::sync::Mutex<()>,
}

impl Tally {
    /// Counts a task that reached `status` (terminal) at `at_ms`, `latency_ms` after its upload if known.
    pub(super) fn count(&self, at_ms: i64, status: TaskStatus, latency_ms: Option<i64>) {
        let width = BUCKET_SECONDS as i64 * 1000;
        let mut counts = Counts::default();
        match status {
            TaskStatus::Success => counts.success = 1,
            TaskStatus::Failure => counts.failure = 1,
            TaskStatus::Revoked => counts.revoked = 1,
            _ => return,
        }
        // Cancelled tasks have no latency: nothing was made.
        if let Some(latency) = latency_ms.filter(|_| status != TaskStatus::Revoked) {
            let latency = latency.max(0) as u64;
            (counts.latency_ms_sum, counts.latency_count, counts.latency_ms_max) = (latency, 1, latency);
        }
        self.merge([((at_ms.max(0) - at_ms.max(0) % width) as u64, counts)]);
    }

    fn merge(&self, more: impl IntoIterator<Item = (u64, Counts)>) {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (start, counts) in more {
            buckets.entry(start).or_default().add(&counts);
        }
    }

    fn take(&self) -> BTreeMap<u64, Counts> {
        std::mem::take(&mut *self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn is_empty(&self) -> bool {
        self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
    }
}

impl StateStore {
    /// Starts writing this process's counts every [`FLUSH_EVERY`], unless that is already under way.
    pub(super) fn flush_history_soon(&self) {
        if self.history.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                // Redis's outage is logged where it is met (once, not every second); the counts wait for it.
                if let Err(e) = store.flush_history().await {
                    tracing::debug!(error = %e, "the dashboard's history could not be written; trying again");
                }
                if store.history.is_empty() {
                    store.history.flushing.store(false, Ordering::Release);
                    // A count that arrived between the check and the store found `flushing` still set.
                    if store.history.is_empty() || store.history.flushing.swap(true, Ordering::AcqRel) {
                        return;
                    }
                }
            }
        });
    }

    /// Writes the counts this process has gathered into the history's buckets now (after any write under way): at
    /// a graceful stop, so none is lost. What cannot be written is kept for the next try (at most the hour the
    /// history shows).
    pub async fn flush_history(&self) -> Result<(), StateError> {
        let _writing = self.history.writing.lock().await;
        let buckets = self.history.take();
        let width = BUCKET_SECONDS * 1000;
        // A bucket outlives the hour it is shown for by one bucket, so the oldest one shown is never half gone.
        let ttl = BUCKET_SECONDS * (BUCKETS + 1);
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(ADD));
        let mut buckets = buckets.into_iter();
        while let Some((start, c)) = buckets.next() {
            let key = format!("{}{start}", self.keys.history_prefix());
            let args = [c.success, c.failure, c.revoked, c.latency_ms_sum, c.latency_count, c.latency_ms_max, ttl];
            let written: Result<(), StateError> =
                self.run(async |conn| SCRIPT.key(&key).arg(&args[..]).invoke_async(conn).await).await;
            if let Err(e) = written {
                // This bucket and the rest wait for the next try, unless they have left the hour shown.
                let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
                let shown = |(start, _): &(u64, Counts)| start + width * BUCKETS > now;
                self.history.merge(std::iter::once((start, c)).chain(buckets).filter(shown));
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_by_bucket_and_status_with_latency_for_made_tasks_only() {
        let tally = Tally::default();
        tally.count(1_765_000_012_345, TaskStatus::Success, Some(800));
        tally.count(1_765_000_019_999, TaskStatus::Failure, Some(1_200));
        tally.count(1_765_000_015_000, TaskStatus::Revoked, Some(5_000));
        tally.count(1_765_000_020_000, TaskStatus::Success, None);
        tally.count(1_765_000_020_000, TaskStatus::Started, Some(1));
        let buckets = tally.take();
        let first = Counts {
            success: 1,
            failure: 1,
            revoked: 1,
            latency_ms_sum: 2_000,
            latency_count: 2,
            latency_ms_max: 1_200,
        };
        let second = Counts { success: 1, ..Counts::default() };
        assert_eq!(buckets, BTreeMap::from([(1_765_000_010_000, first), (1_765_000_020_000, second)]));
        assert!(tally.is_empty(), "taken");
    }
}

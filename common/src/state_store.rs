//! Task records in Redis: one hash per task at `<prefix>task:<id>`, expiring `result_ttl` after its last change, and
//! a pub/sub channel `<prefix>events` that carries `<id> <STATUS>` for every change (the API's long poll waits on
//! it; [`parse_event`] reads it).
//!
//! Every transition runs as one Lua script that checks the state machine ([`TaskStatus::may_become`]) inside Redis,
//! so concurrent or late writers (a redelivered message, a slow worker) can never move a task backwards.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};
use redis::{AsyncCommands, Script};
use std::collections::HashMap;

use crate::{
    reconnect::Outage,
    settings::RedisSettings,
    task::{FailureKind, ImageInfo, TaskId, TaskRecord, TaskStatus},
};

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
    Refused(TaskStatus),
    /// No record exists (never created, withdrawn by the API, or expired).
    Missing,
}

// KEYS[1] record key, KEYS[2] finished-tasks set. ARGV: channel, id, ttl secs, new status, attempt, then field/value pairs; an empty value
// deletes the field. Mirrors TaskStatus::may_become, which its unit test pins down.
const TRANSITION: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if not cur[1] then return 'MISSING' end
local rank = {PENDING = 0, STARTED = 1, RETRY = 2, SUCCESS = 3, FAILURE = 3}
local attempts = tonumber(cur[2]) or 0
local attempt = tonumber(ARGV[5])
if cur[1] == 'SUCCESS' or cur[1] == 'FAILURE' then return cur[1] end
if attempt < attempts or (attempt == attempts and rank[ARGV[4]] < rank[cur[1]]) then return cur[1] end
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'attempts', ARGV[5])
for i = 6, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[4] == 'SUCCESS' or ARGV[4] == 'FAILURE' then
  -- KEYS[2]: finished tasks of the last hour, by finish time in ms, for /stats.
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('ZADD', KEYS[2], ms, ARGV[2] .. ' ' .. ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (ms - 3600000))
end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. ARGV[4])
return 'OK'
";

/// The Redis-backed store of task records.
#[derive(Clone)]
pub struct StateStore {
    pool: Pool,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    transition: Script,
    outage: std::sync::Arc<Outage>,
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
            prefix: settings.key_prefix.clone(),
            ttl: settings.result_ttl,
            timeout: settings.timeout,
            transition: Script::new(TRANSITION),
            outage: std::sync::Arc::new(Outage::new("redis")),
        })
    }

    /// The key of a task's record.
    pub fn key(&self, id: TaskId) -> String {
        format!("{}task:{id}", self.prefix)
    }

    /// The sorted set indexing task ids by creation time (milliseconds), for listing; trimmed to the record TTL.
    pub fn index_key(&self) -> String {
        format!("{}tasks", self.prefix)
    }

    /// The sorted set of tasks finished in the last hour (`<id> <STATUS>`, scored by finish time in ms).
    pub fn finished_key(&self) -> String {
        format!("{}finished", self.prefix)
    }

    /// Tasks that reached SUCCESS and FAILURE since `since` (at most an hour back).
    pub async fn finished_since(&self, since: DateTime<Utc>) -> Result<(u64, u64), StateError> {
        let key = self.finished_key();
        let members: Vec<String> =
            self.run(async |conn| conn.zrangebyscore(&key, since.timestamp_millis(), "+inf").await).await?;
        let successes = members.iter().filter(|m| m.ends_with(" SUCCESS")).count() as u64;
        Ok((successes, members.len() as u64 - successes))
    }

    /// The prefix of every key of this store.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The pub/sub channel announcing changed task ids.
    pub fn events_channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), StateError> {
        self.run(async |conn| redis::cmd("PING").query_async::<()>(conn).await).await
    }

    /// Writes the record of a newly accepted task.
    pub async fn create(&self, record: &TaskRecord) -> Result<(), StateError> {
        let key = self.key(record.id);
        let fields = to_fields(record);
        let ttl = self.ttl.as_secs() as i64;
        let (channel, event) = (self.events_channel(), format!("{} {}", record.id, record.status));
        let (index, created) = (self.index_key(), record.created_at.timestamp_millis());
        // Index entries older than the TTL point at expired records: trimming them here keeps the index bounded.
        let expired_before = Utc::now().timestamp_millis() - ttl * 1000;
        self.run(async |conn| {
            let mut pipe = redis::pipe();
            pipe.atomic().hset_multiple(&key, &fields).ignore().expire(&key, ttl).ignore();
            pipe.zadd(&index, record.id.to_string(), created).ignore();
            pipe.zrembyscore(&index, "-inf", format!("({expired_before}")).ignore();
            pipe.publish(&channel, &event).ignore().query_async(conn).await
        })
        .await
    }

    /// Records newest first, created before `before` when given, with `status` when given; at most `limit`.
    pub async fn list(
        &self,
        status: Option<TaskStatus>,
        limit: usize,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<TaskRecord>, StateError> {
        const PAGE: isize = 100;
        const MAX_SCANNED: isize = 5_000;
        let index = self.index_key();
        let max = before.map_or("+inf".to_owned(), |t| format!("({}", t.timestamp_millis()));
        let mut found = Vec::new();
        let mut offset = 0;
        while found.len() < limit && offset < MAX_SCANNED {
            let ids: Vec<String> =
                self.run(async |conn| conn.zrevrangebyscore_limit(&index, &max, "-inf", offset, PAGE).await).await?;
            for id in &ids {
                let Ok(id) = id.parse::<TaskId>() else { continue };
                // An expired record leaves its index entry behind until the next trim: skip it.
                if let Some(record) = self.get(id).await? {
                    if status.is_none_or(|s| s == record.status) && found.len() < limit {
                        found.push(record);
                    }
                }
            }
            if ids.len() < PAGE as usize {
                break;
            }
            offset += PAGE;
        }
        Ok(found)
    }

    /// Puts a task back to PENDING with no attempts, whatever its state: the operator's override when replaying a
    /// dead letter. Keeps the source info; recreates the record if it expired.
    pub async fn requeue(&self, envelope: &crate::task::TaskEnvelope) -> Result<(), StateError> {
        let key = self.key(envelope.id);
        let source = self.get(envelope.id).await?.and_then(|r| r.source);
        let record = TaskRecord::pending(envelope, source);
        let fields = to_fields(&record);
        let ttl = self.ttl.as_secs() as i64;
        let (channel, event) = (self.events_channel(), format!("{} {}", record.id, record.status));
        self.run(async |conn| {
            let mut pipe = redis::pipe();
            pipe.atomic().del(&key).ignore().hset_multiple(&key, &fields).ignore().expire(&key, ttl).ignore();
            pipe.publish(&channel, &event).ignore().query_async(conn).await
        })
        .await
    }

    /// Reads a task's record; `None` when unknown or expired.
    pub async fn get(&self, id: TaskId) -> Result<Option<TaskRecord>, StateError> {
        let key = self.key(id);
        let fields: HashMap<String, String> = self.run(async |conn| conn.hgetall(&key).await).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        from_fields(&fields).map(Some).map_err(|reason| StateError::Corrupt { id, reason })
    }

    /// Deletes a task's record (the API withdrawing an upload it could not queue).
    pub async fn delete(&self, id: TaskId) -> Result<(), StateError> {
        let (key, index) = (self.key(id), self.index_key());
        self.run(async |conn| {
            redis::pipe().del(&key).ignore().zrem(&index, id.to_string()).ignore().query_async(conn).await
        })
        .await
    }

    /// Records that `worker` started attempt `attempt`.
    pub async fn start(&self, id: TaskId, attempt: u32, worker: &str) -> Result<Update, StateError> {
        let fields = [("started_at", now()), ("worker", worker.to_owned()), ("next_retry_at", String::new())];
        self.apply(id, TaskStatus::Started, attempt, &fields).await
    }

    /// Records that attempt `attempt` failed transiently and the next runs at `next_at`.
    pub async fn retry(
        &self,
        id: TaskId,
        attempt: u32,
        error: &str,
        next_at: DateTime<Utc>,
    ) -> Result<Update, StateError> {
        let fields = [("error", error.to_owned()), ("next_retry_at", next_at.to_rfc3339())];
        self.apply(id, TaskStatus::Retry, attempt, &fields).await
    }

    /// Records the stored thumbnail.
    pub async fn succeed(&self, id: TaskId, attempt: u32, result: &ImageInfo) -> Result<Update, StateError> {
        let fields = [
            ("finished_at", now()),
            ("result", json(result)),
            ("error", String::new()),
            ("error_kind", String::new()),
            ("next_retry_at", String::new()),
        ];
        self.apply(id, TaskStatus::Success, attempt, &fields).await
    }

    /// Records that the task ended without a thumbnail.
    pub async fn fail(&self, id: TaskId, attempt: u32, error: &str, kind: FailureKind) -> Result<Update, StateError> {
        let fields = [
            ("finished_at", now()),
            ("error", error.to_owned()),
            ("error_kind", kind.as_str().to_owned()),
            ("next_retry_at", String::new()),
        ];
        self.apply(id, TaskStatus::Failure, attempt, &fields).await
    }

    async fn apply(
        &self,
        id: TaskId,
        status: TaskStatus,
        attempt: u32,
        fields: &[(&str, String)],
    ) -> Result<Update, StateError> {
        let mut invocation = self.transition.key(self.key(id));
        invocation.key(self.finished_key());
        invocation
            .arg(self.events_channel())
            .arg(id.to_string())
            .arg(self.ttl.as_secs())
            .arg(status.to_string())
            .arg(attempt);
        for (field, value) in fields {
            invocation.arg(*field).arg(value);
        }
        let reply: String = self.run(async |conn| invocation.invoke_async(conn).await).await?;
        Ok(match reply.as_str() {
            "OK" => Update::Applied,
            "MISSING" => Update::Missing,
            other => Update::Refused(other.parse().map_err(|reason| StateError::Corrupt { id, reason })?),
        })
    }

    /// Runs one command on a pooled connection within the configured timeout.
    pub(crate) async fn run<T>(
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

/// Reads an event published on the events channel: the task and the status it moved to.
pub fn parse_event(payload: &str) -> Option<(TaskId, TaskStatus)> {
    let (id, status) = payload.split_once(' ')?;
    Some((id.parse().ok()?, status.parse().ok()?))
}

fn now() -> String {
    Utc::now().to_rfc3339()
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("record fields always serialise")
}

/// A record as hash fields; `None` fields are left out.
fn to_fields(record: &TaskRecord) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", record.id.to_string()),
        ("name", record.name.clone()),
        ("task", record.task.clone()),
        ("status", record.status.to_string()),
        ("attempts", record.attempts.to_string()),
        ("args", json(&record.args)),
        ("created_at", record.created_at.to_rfc3339()),
    ];
    let optional = [
        ("started_at", record.started_at.map(|t| t.to_rfc3339())),
        ("finished_at", record.finished_at.map(|t| t.to_rfc3339())),
        ("next_retry_at", record.next_retry_at.map(|t| t.to_rfc3339())),
        ("worker", record.worker.clone()),
        ("error", record.error.clone()),
        ("error_kind", record.error_kind.map(|k| k.as_str().to_owned())),
        ("source", record.source.as_ref().map(json)),
        ("result", record.result.as_ref().map(json)),
    ];
    fields.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    fields
}

/// Rebuilds a record from its hash fields.
fn from_fields(fields: &HashMap<String, String>) -> Result<TaskRecord, String> {
    let text = |name: &str| fields.get(name).cloned().ok_or_else(|| format!("field {name} is missing"));
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, String> {
        fields
            .get(name)
            .map(|v| DateTime::parse_from_rfc3339(v).map(|t| t.to_utc()).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    let parsed = |name: &str| -> Result<Option<serde_json::Value>, String> {
        fields.get(name).map(|v| serde_json::from_str(v).map_err(|e| format!("{name}: {e}"))).transpose()
    };
    let error_kind = fields.get("error_kind").map(|k| serde_json::Value::String(k.clone()));
    let value = serde_json::json!({
        "id": text("id")?,
        "name": text("name")?,
        "task": text("task")?,
        "status": text("status")?,
        "attempts": text("attempts")?.parse::<u32>().map_err(|e| format!("attempts: {e}"))?,
        "args": parsed("args")?,
        "created_at": time("created_at")?,
        "started_at": time("started_at")?,
        "finished_at": time("finished_at")?,
        "next_retry_at": time("next_retry_at")?,
        "worker": fields.get("worker"),
        "error": fields.get("error"),
        "error_kind": error_kind,
        "source": parsed("source")?,
        "result": parsed("result")?,
    });
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Fit, OutputFormat, ResizeArgs, TaskEnvelope};

    #[test]
    fn record_round_trips_through_hash_fields() {
        let args = ResizeArgs { width: 10, height: 20, fit: Fit::Fill, format: OutputFormat::Png };
        let envelope = TaskEnvelope::new(TaskId::new(), args, Utc::now());
        let source = ImageInfo { format: "gif".into(), width: 4, height: 5, bytes: 60 };
        let mut record = TaskRecord::pending(&envelope, Some(source));
        record.error = Some("disk full".into());
        record.error_kind = Some(FailureKind::Internal);
        record.worker = Some("w:1".into());
        let fields: HashMap<String, String> = to_fields(&record).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let back = from_fields(&fields).unwrap();
        // RFC 3339 keeps nanoseconds, so the record comes back identical.
        assert_eq!(back, record);
    }
}

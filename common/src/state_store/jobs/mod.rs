//! Bulk jobs in Redis:
//!
//! - `<prefix>job:<id>`: a hash: `id`, `status`, `spec` (JSON), `query`, `owner`, `template` (the envelope every item
//!   is made from), `created_ms`, `finished_ms`, `total`, `listed`, `queued`, `done`, `failed`, and `cursor` (the
//!   last item queued: a `sources` index, the last key listed under a prefix, or a `rerender` job's last index
//!   entry examined).
//! - `<prefix>job:<id>:sources`: a `{"sources"}` job's URLs, read by index; deleted once every one is queued.
//! - `<prefix>job:<id>:failures`: the first failures (`{task_id, error_code}`), appended by the transition script;
//!   `<prefix>job:<id>:failed`: every failed item's id (a set), and `<prefix>job:<id>:retry` those to make again
//!   (`POST /jobs/{id}/retry-failed`, a list the pump takes from before any new item).
//! - `<prefix>jobs`: every job by creation time, for `GET /jobs`; `<prefix>jobs:running`: the jobs the pump walks;
//!   `<prefix>jobs:pump`: the pump's lease, held by one worker at a time. On a cluster a job's keys are on its shard
//!   with its items, and `jobs`, `jobs:running` and `jobs:ended` are kept per shard and read together.
//!
//! An item's end is counted into its job by the transition script itself ([`FINISH_JOB`]), so a count can neither
//! be lost nor made twice; the same script ends the job once every item has ended. What the job pump reads and
//! moves is in `pump`.

mod pump;

pub use pump::PumpView;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};

use super::{StateError, StateStore};
use crate::{
    job::{Job, JobFailure, JobId, JobSpec, JobStatus, KEPT_FAILURES},
    task::TaskEnvelope,
};

/// Lua: ends the job at `jkey` (DONE, its end time, out of the running set `running`) when it is running, fully
/// listed, and every item has ended; its keys then expire after its `ttl` (`THUMBQ_JOB_TTL_SECS`, written when it
/// is made: `job_keys` names them); a job with a `callback_url` goes on the ended list (`jobs:ended`, beside
/// `running`: [`Keys::jobs_ended`](super::Keys::jobs_ended)), whose webhooks the pump sends. Shared by the
/// transition script, the pump's scripts and cancelling.
pub const FINISH_JOB: &str = r"
local function job_keys(jkey, id)
  local prefix = string.sub(jkey, 1, #jkey - #id - 4)
  return {jkey, jkey .. ':failures', jkey .. ':failed', jkey .. ':retry', jkey .. ':sources', prefix .. 'index:job:' .. id}
end
local function job_ended(jkey, running, id)
  redis.call('HINCRBY', jkey, 'ends', 1)
  redis.call('SREM', running, id)
  local ttl = tonumber(redis.call('HGET', jkey, 'ttl'))
  if ttl then
    for _, key in ipairs(job_keys(jkey, id)) do redis.call('EXPIRE', key, ttl) end
  end
  if redis.call('HEXISTS', jkey, 'callback_url') == 1 then
    redis.call('RPUSH', string.sub(running, 1, -8) .. 'ended', id)
  end
end
local function finish_job(jkey, running, ms)
  local j = redis.call('HMGET', jkey, 'status', 'listed', 'total', 'done', 'failed', 'cancelled', 'id')
  local ended = (tonumber(j[4]) or 0) + (tonumber(j[5]) or 0) + (tonumber(j[6]) or 0)
  if j[1] == 'RUNNING' and j[2] == '1' and ended >= (tonumber(j[3]) or 0) then
    redis.call('HSET', jkey, 'status', 'DONE', 'finished_ms', ms)
    job_ended(jkey, running, j[7])
  end
end
";

/// Lua, after [`FINISH_JOB`]: an item's end counted into its job (the job's hash, its failures' list, the running
/// set; the task id, its terminal status, its error code, now in ms). Called by the transition script, which needs
/// `kept_failures` defined.
pub const COUNT_ITEM: &str = r"
local function count_item(jkey, failures, running, id, status, code, ms)
  if redis.call('EXISTS', jkey) == 0 then return end
  if status == 'SUCCESS' then
    redis.call('HINCRBY', jkey, 'done', 1)
  elseif status == 'REVOKED' then
    redis.call('HINCRBY', jkey, 'cancelled', 1)
  else
    redis.call('HINCRBY', jkey, 'failed', 1)
    redis.call('SADD', jkey .. ':failed', id)
    if redis.call('LLEN', failures) < kept_failures then
      redis.call('RPUSH', failures, cjson.encode({task_id = id, error_code = code or cjson.null}))
    end
  end
  finish_job(jkey, running, ms)
end
";

/// A new job, as the API makes it.
pub struct NewJob<'a> {
    /// Its id.
    pub id: JobId,
    /// What it makes thumbnails of.
    pub spec: &'a JobSpec,
    /// The upload parameters, as a query string.
    pub query: &'a str,
    /// The key that made it.
    pub owner: Option<&'a str>,
    /// The envelope each item's is made from.
    pub template: &'a TaskEnvelope,
    /// Where the job is POSTed when it ends (checked by the guard).
    pub callback_url: Option<&'a str>,
    /// How long it is kept once it has ended (`THUMBQ_JOB_TTL_SECS`).
    pub ttl: std::time::Duration,
}

impl StateStore {
    /// Records a new RUNNING job (and a `sources` job's URLs) for the pump to start.
    pub async fn create_job(&self, job: &NewJob<'_>) -> Result<(), StateError> {
        let key = self.keys.job(job.id);
        let now = Utc::now().timestamp_millis();
        let spec = match job.spec {
            JobSpec::Prefix(prefix) => serde_json::json!({ "prefix": prefix }),
            JobSpec::Sources(sources) => serde_json::json!({ "sources": sources.len() }),
            JobSpec::Rerender(filter) => serde_json::json!({ "rerender": filter }),
        };
        let mut fields = vec![
            ("id", job.id.to_string()),
            ("status", JobStatus::Running.to_string()),
            ("spec", spec.to_string()),
            ("query", job.query.to_owned()),
            ("template", String::from_utf8(job.template.to_json()).unwrap_or_default()),
            ("created_ms", now.to_string()),
            ("ttl", job.ttl.as_secs().to_string()),
            ("total", "0".into()),
            ("listed", "0".into()),
            ("queued", "0".into()),
            ("done", "0".into()),
            ("failed", "0".into()),
        ];
        fields.extend(job.owner.map(|owner| ("owner", owner.to_owned())));
        fields.extend(job.callback_url.map(|url| ("callback_url", url.to_owned())));
        if let JobSpec::Sources(sources) = job.spec {
            // Known in full: listed at once.
            fields.retain(|(name, _)| !matches!(*name, "total" | "listed"));
            fields.extend([("total", sources.len().to_string()), ("listed", "1".into())]);
        }
        let shard = self.keys.shard_of_job(job.id);
        let (all, running, sources) =
            (self.keys.jobs(shard), self.keys.jobs_running(shard), self.keys.job_sources(job.id));
        self.run_durable(&key, async |conn| {
            let mut pipe = redis::pipe();
            pipe.atomic().hset_multiple(&key, &fields).ignore();
            if let JobSpec::Sources(urls) = job.spec
                && !urls.is_empty()
            {
                pipe.rpush(&sources, urls).ignore();
            }
            pipe.zadd(&all, job.id.to_string(), now).ignore().sadd(&running, job.id.to_string()).ignore();
            pipe.query_async::<()>(conn).await
        })
        .await?;
        self.raise_jobs_generation().await;
        Ok(())
    }

    /// The job, if it exists.
    pub async fn job(&self, id: JobId) -> Result<Option<Job>, StateError> {
        let (key, failures) = (self.keys.job(id), self.keys.job_failures(id));
        let (fields, failures): (HashMap<String, String>, Vec<String>) =
            self.run(async |conn| redis::pipe().hgetall(&key).lrange(&failures, 0, -1).query_async(conn).await).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        job_from(&fields, &failures).map(Some).map_err(|reason| StateError::CorruptJob { id, reason })
    }

    /// The newest `limit` jobs, only `owner`'s when given.
    pub async fn jobs(&self, owner: Option<&str>, limit: usize) -> Result<Vec<Job>, StateError> {
        // A key's jobs are few: read the newest 1,000 (of every shard, merged) and keep its own (an admin's listing
        // reads them all).
        let read = async |shard: super::Shard| -> Result<Vec<(String, f64)>, StateError> {
            let all = self.keys.jobs(shard);
            self.run(async |conn| conn.zrevrange_withscores(&all, 0, 999).await).await
        };
        let mut ids: Vec<(String, f64)> =
            futures_util::future::try_join_all(self.keys.shards().map(read)).await?.into_iter().flatten().collect();
        ids.sort_by(|a, b| b.1.total_cmp(&a.1));
        ids.truncate(1000);
        let mut jobs = Vec::new();
        for id in ids.iter().filter_map(|(id, _)| id.parse::<JobId>().ok()) {
            if jobs.len() == limit {
                break;
            }
            match self.job(id).await? {
                Some(job) if owner.is_none() || job.owner.as_deref() == owner => jobs.push(job),
                Some(_) => {}
                // Expired (`THUMBQ_JOB_TTL_SECS`): its entry goes too.
                None => {
                    let all = self.keys.jobs(self.keys.shard_of_job(id));
                    self.run(async |conn| conn.zrem::<_, _, ()>(&all, id.to_string()).await).await?;
                }
            }
        }
        Ok(jobs)
    }

    /// The jobs the pump walks: running (and paused) ones.
    pub async fn running_jobs(&self) -> Result<Vec<JobId>, StateError> {
        let read = async |shard: super::Shard| -> Result<Vec<String>, StateError> {
            let running = self.keys.jobs_running(shard);
            self.run(async |conn| conn.smembers(&running).await).await
        };
        let ids = futures_util::future::try_join_all(self.keys.shards().map(read)).await?;
        Ok(ids.iter().flatten().filter_map(|id| id.parse().ok()).collect())
    }

    /// Up to `count` jobs that ended with a webhook still to queue, oldest first (of each shard).
    pub async fn ended_jobs(&self, count: usize) -> Result<Vec<JobId>, StateError> {
        let read = async |shard: super::Shard| -> Result<Vec<String>, StateError> {
            let key = self.keys.jobs_ended(shard);
            self.run(async |conn| conn.lrange(&key, 0, count as isize - 1).await).await
        };
        let ids = futures_util::future::try_join_all(self.keys.shards().map(read)).await?;
        Ok(ids.iter().flatten().filter_map(|id| id.parse().ok()).take(count).collect())
    }

    /// Takes job `id` off the ended list once its webhook is queued.
    pub async fn forget_ended_job(&self, id: JobId) -> Result<(), StateError> {
        let key = self.keys.jobs_ended(self.keys.shard_of_job(id));
        self.run(async |conn| conn.lrem::<_, _, ()>(&key, 1, id.to_string()).await).await
    }

    /// Writes the job's webhook deliveries into it, if it still exists.
    pub async fn record_job_webhook(&self, id: JobId, log: &crate::task::WebhookLog) -> Result<(), StateError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'webhook', ARGV[1]) end",
            )
        });
        let (key, value) = (self.keys.job(id), super::codec::json(log));
        self.run(async |conn| SCRIPT.key(&key).arg(&value).invoke_async::<()>(conn).await).await
    }

    /// A job's status, if the job exists.
    pub async fn job_status(&self, id: JobId) -> Result<Option<JobStatus>, StateError> {
        let key = self.keys.job(id);
        let status: Option<String> = self.run(async |conn| conn.hget(&key, "status").await).await?;
        status.map(|s| s.parse().map_err(|e: String| corrupt(id, &e))).transpose()
    }

    /// Moves job `id` to `to` if it is in one of `from`: its status before (the change was made only if that is one
    /// of `from`), or `None` when there is no such job. A cancelled job leaves the pump's set and gets its end time.
    pub async fn change_job_status(
        &self,
        id: JobId,
        from: &[JobStatus],
        to: JobStatus,
    ) -> Result<Option<JobStatus>, StateError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(&format!(
                "{FINISH_JOB}\n\
                 local cur = redis.call('HGET', KEYS[1], 'status') \
                 if not cur then return false end \
                 local allowed = false \
                 for i = 3, #ARGV do if ARGV[i] == cur then allowed = true end end \
                 if not allowed then return cur end \
                 redis.call('HSET', KEYS[1], 'status', ARGV[1]) \
                 if ARGV[1] == 'CANCELLED' and cur ~= 'CANCELLED' then \
                   local now = redis.call('TIME') \
                   redis.call('HSET', KEYS[1], 'finished_ms', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)) \
                   job_ended(KEYS[1], KEYS[2], ARGV[2]) \
                 end \
                 return cur"
            ))
        });
        let keys = [self.keys.job(id), self.keys.jobs_running(self.keys.shard_of_job(id))];
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let before: Option<String> = self
            .run_durable(&keys[0], async |conn| {
                SCRIPT.key(&keys[..]).arg(to.as_str()).arg(id.to_string()).arg(&from).invoke_async(conn).await
            })
            .await?;
        before.map(|s| s.parse().map_err(|e: String| corrupt(id, &e))).transpose()
    }

    /// Sets every failed item of job `id` to be made again (the pump takes them before new items, within the
    /// window): they leave `failed` and `queued`, the job's kept failures are cleared, and a DONE job runs again.
    /// The number of items, or `None` when the job is missing; refused (`Err` with its status) when cancelled.
    pub async fn retry_failed(&self, id: JobId) -> Result<Option<Result<u64, JobStatus>>, StateError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(&format!(
                "{FINISH_JOB}\n\
                 local status = redis.call('HGET', KEYS[1], 'status') \
                 if not status then return false end \
                 if status == 'CANCELLED' then return status end \
                 local ids = redis.call('SMEMBERS', KEYS[2]) \
                 if #ids == 0 then return '0' end \
                 for _, id in ipairs(ids) do redis.call('RPUSH', KEYS[3], id) end \
                 redis.call('DEL', KEYS[2], KEYS[4]) \
                 redis.call('HINCRBY', KEYS[1], 'failed', -#ids) \
                 redis.call('HINCRBY', KEYS[1], 'queued', -#ids) \
                 if status == 'DONE' then \
                   redis.call('HSET', KEYS[1], 'status', 'RUNNING') \
                   redis.call('HDEL', KEYS[1], 'finished_ms') \
                 end \
                 redis.call('SADD', KEYS[5], ARGV[1]) \
                 for _, key in ipairs(job_keys(KEYS[1], ARGV[1])) do redis.call('PERSIST', key) end \
                 return tostring(#ids)"
            ))
        });
        let keys = [
            self.keys.job(id),
            self.keys.job_failed(id),
            self.keys.job_retry(id),
            self.keys.job_failures(id),
            self.keys.jobs_running(self.keys.shard_of_job(id)),
        ];
        let reply: Option<String> = self
            .run_durable(&keys[0], async |conn| SCRIPT.key(&keys[..]).arg(id.to_string()).invoke_async(conn).await)
            .await?;
        if reply.as_deref().is_some_and(|r| r.parse::<u64>().is_ok_and(|n| n > 0)) {
            self.raise_jobs_generation().await;
        }
        Ok(reply.map(|reply| match reply.parse::<u64>() {
            Ok(count) => Ok(count),
            Err(_) => Err(reply.parse().unwrap_or(JobStatus::Cancelled)),
        }))
    }
}

pub(super) fn corrupt(id: JobId, reason: &str) -> StateError {
    StateError::CorruptJob { id, reason: reason.to_owned() }
}

/// A job from its hash fields and kept failures.
fn job_from(fields: &HashMap<String, String>, failures: &[String]) -> Result<Job, String> {
    let text = |name: &str| fields.get(name).cloned().ok_or_else(|| format!("job field {name} is missing"));
    let count = |name: &str| fields.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let time =
        |name: &str| fields.get(name).and_then(|v| v.parse::<i64>().ok()).and_then(DateTime::from_timestamp_millis);
    let failures = failures
        .iter()
        .take(KEPT_FAILURES)
        .map(|f| serde_json::from_str::<JobFailure>(f).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    // The pump counts a batch as queued (and, listing, as found) after publishing it, and its first items may end
    // before that: a reader never sees more ended than queued, nor more queued than found.
    let queued = count("queued").max(count("done") + count("failed") + count("cancelled"));
    let job = Job {
        id: text("id")?.parse().map_err(|e: crate::job::InvalidJobId| e.to_string())?,
        status: text("status")?.parse()?,
        spec: serde_json::from_str(&text("spec")?).map_err(|e| e.to_string())?,
        query: text("query")?,
        owner: fields.get("owner").cloned(),
        callback_url: fields.get("callback_url").cloned(),
        total: count("total").max(queued),
        listed: fields.get("listed").is_some_and(|v| v == "1"),
        queued,
        done: count("done"),
        failed: count("failed"),
        cancelled: count("cancelled"),
        rate: 0.0,
        eta_secs: None,
        created_at: time("created_ms").ok_or("job field created_ms is missing")?,
        finished_at: time("finished_ms"),
        failures,
        ends: count("ends"),
        webhook: fields.get("webhook").and_then(|w| serde_json::from_str(w).ok()),
        status_url: None,
    };
    Ok(job.with_rate(Utc::now()))
}

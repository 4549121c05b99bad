//! What the workers' job pump reads of a job and how it moves it on: its lease, a job's view, the next items (URLs
//! by index; retries), and the scripts that move the cursor and the counts once items are queued.

use std::time::Duration;

use redis::{AsyncCommands, Script};

use super::{FINISH_JOB, corrupt};
use crate::{
    job::{JobId, JobSpec, JobStatus},
    state_store::{StateError, StateStore},
    task::{TaskEnvelope, TaskId},
};

/// What the pump needs of a job.
#[derive(Debug)]
pub struct PumpView {
    /// Its status.
    pub status: JobStatus,
    /// What it makes thumbnails of.
    pub spec: JobSpec,
    /// Its items' envelope.
    pub template: TaskEnvelope,
    /// Its owner.
    pub owner: Option<String>,
    /// The last item queued.
    pub cursor: Option<String>,
    /// Items queued, and ended.
    pub queued: u64,
    /// Items ended (done, failed, cancelled).
    pub ended: u64,
    /// Whether every item has been found.
    pub listed: bool,
    /// Items found so far.
    pub total: u64,
}

impl StateStore {
    /// Takes or keeps the pump's lease for `ttl`: whether `worker` holds it.
    pub async fn hold_pump_lease(&self, worker: &str, ttl: Duration) -> Result<bool, StateError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(
                "local holder = redis.call('GET', KEYS[1]) \
                 if holder and holder ~= ARGV[1] then return 0 end \
                 redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1",
            )
        });
        let key = self.keys.job_pump();
        let ms = ttl.as_millis() as u64;
        let held: i64 = self.run(async |conn| SCRIPT.key(&key).arg(worker).arg(ms).invoke_async(conn).await).await?;
        Ok(held == 1)
    }

    /// What the pump needs of job `id`; `None` when it is gone (its id is dropped from the running set).
    pub async fn pump_view(&self, id: JobId) -> Result<Option<PumpView>, StateError> {
        let key = self.keys.job(id);
        let names = [
            "status",
            "spec",
            "template",
            "owner",
            "cursor",
            "queued",
            "done",
            "failed",
            "listed",
            "total",
            "cancelled",
        ];
        let values: Vec<Option<String>> =
            self.run(async |conn| redis::cmd("HMGET").arg(&key).arg(&names[..]).query_async(conn).await).await?;
        let [status, spec, template, owner, cursor, queued, done, failed, listed, total, cancelled] =
            <[Option<String>; 11]>::try_from(values).map_err(|_| corrupt(id, "fields"))?;
        let Some(status) = status else {
            let running = self.keys.jobs_running();
            self.run(async |conn| conn.srem::<_, _, ()>(&running, id.to_string()).await).await?;
            return Ok(None);
        };
        let count = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        Ok(Some(PumpView {
            status: status.parse().map_err(|e: String| corrupt(id, &e))?,
            spec: pump_spec(spec.as_deref()),
            template: TaskEnvelope::from_json(template.unwrap_or_default().as_bytes())
                .map_err(|e| corrupt(id, &e.to_string()))?,
            owner,
            cursor,
            queued: count(&queued),
            ended: count(&done) + count(&failed) + count(&cancelled),
            listed: listed.as_deref() == Some("1"),
            total: count(&total),
        }))
    }

    /// Takes the first `taken` items off job `id`'s retries once the pump has queued them again, but for `kept`
    /// (their records are gone), which count as failed again. Ends the job if every item has ended.
    pub async fn advance_retries(&self, id: JobId, taken: u64, kept: &[TaskId]) -> Result<(), StateError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(&format!(
                "{FINISH_JOB}\n\
                 if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
                 redis.call('LTRIM', KEYS[2], ARGV[1], -1) \
                 redis.call('HINCRBY', KEYS[1], 'queued', ARGV[1] - (#ARGV - 1)) \
                 for i = 2, #ARGV do redis.call('SADD', KEYS[3], ARGV[i]) redis.call('HINCRBY', KEYS[1], 'failed', 1) end \
                 local now = redis.call('TIME') \
                 finish_job(KEYS[1], KEYS[4], tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)) \
                 return 1"
            ))
        });
        let keys = [self.keys.job(id), self.keys.job_retry(id), self.keys.job_failed(id), self.keys.jobs_running()];
        let kept: Vec<String> = kept.iter().map(ToString::to_string).collect();
        self.run_durable(async |conn| SCRIPT.key(&keys[..]).arg(taken).arg(&kept).invoke_async::<i64>(conn).await)
            .await
            .map(drop)
    }

    /// Up to `count` items of job `id` to make again, oldest first.
    pub async fn job_retries(&self, id: JobId, count: u64) -> Result<Vec<TaskId>, StateError> {
        let key = self.keys.job_retry(id);
        let ids: Vec<String> = self.run(async |conn| conn.lrange(&key, 0, count as isize - 1).await).await?;
        Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
    }

    /// Up to `count` URLs of a `sources` job from index `from`.
    pub async fn job_sources(&self, id: JobId, from: u64, count: u64) -> Result<Vec<String>, StateError> {
        let key = self.keys.job_sources(id);
        let (start, stop) = (from as isize, (from + count) as isize - 1);
        self.run(async |conn| conn.lrange(&key, start, stop).await).await
    }

    /// Moves the job on after the pump queued `queued` more items (and found `found` more) up to `cursor`; with
    /// `listed`, every item has been found. Ends the job if every item has already ended.
    pub async fn advance_job(
        &self,
        id: JobId,
        cursor: &str,
        queued: u64,
        found: u64,
        listed: bool,
    ) -> Result<(), StateError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(&format!(
                "{FINISH_JOB}\n\
                 if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
                 redis.call('HSET', KEYS[1], 'cursor', ARGV[1]) \
                 redis.call('HINCRBY', KEYS[1], 'queued', ARGV[2]) \
                 redis.call('HINCRBY', KEYS[1], 'total', ARGV[3]) \
                 if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'listed', '1') redis.call('DEL', KEYS[3]) end \
                 local now = redis.call('TIME') \
                 finish_job(KEYS[1], KEYS[2], tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)) \
                 return 1"
            ))
        });
        let keys = [self.keys.job(id), self.keys.jobs_running(), self.keys.job_sources(id)];
        let listed = if listed { "1" } else { "0" };
        self.run_durable(async |conn| {
            SCRIPT.key(&keys[..]).arg(cursor).arg(queued).arg(found).arg(listed).invoke_async::<i64>(conn).await
        })
        .await
        .map(drop)
    }
}

/// The spec as the pump reads it from the stored summary: the prefix, or `Sources` (whose URLs not queued yet are
/// read by [`StateStore::job_sources`]).
fn pump_spec(stored: Option<&str>) -> JobSpec {
    let spec: serde_json::Value = serde_json::from_str(stored.unwrap_or_default()).unwrap_or_default();
    match spec.get("prefix").and_then(|p| p.as_str()) {
        Some(prefix) => JobSpec::Prefix(prefix.to_owned()),
        None => JobSpec::Sources(Vec::new()),
    }
}

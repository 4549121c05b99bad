//! What the workers' job pump reads of a job and how it moves it on: its lease, a job's view, the next items (URLs
//! by index; retries), and the scripts that move the cursor and the counts once items are queued.

use std::time::Duration;

use redis::{AsyncCommands, Script};

use super::{FINISH_JOB, corrupt};
use crate::{
    job::{JobId, JobSpec, JobStatus, RerenderFilter},
    state_store::{
        StateError, StateStore,
        index::{IndexEntry, entry_ids},
    },
    task::{TaskEnvelope, TaskId, TaskRecord},
};

/// Index entries a `rerender` job examines in one turn at most.
const EXAMINED: usize = 500;

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
    /// When it was made, in epoch ms: a `rerender` job takes the tasks made before.
    pub created_ms: i64,
}

impl StateStore {
    /// The jobs' generation: raised after every job that starts running (created, or its failed items set to run
    /// again), 0 before any. A pump that read it, then found no job, needs to look again only once it moves.
    pub async fn jobs_generation(&self) -> Result<u64, StateError> {
        let key = self.keys.jobs_generation();
        let generation: Option<u64> = self.run(async |conn| conn.get(&key).await).await?;
        Ok(generation.unwrap_or(0))
    }

    /// Raises the jobs' generation, after a job was added to its shard's running set (after, so that a pump that
    /// reads the new generation finds the job). Not fatal when it fails: idle pumps read every shard at least
    /// every few seconds anyway.
    pub(super) async fn raise_jobs_generation(&self) {
        let key = self.keys.jobs_generation();
        if let Err(e) = self.run(async |conn| conn.incr::<_, _, u64>(&key, 1).await).await {
            tracing::warn!(error = %e, "the jobs' generation was not raised: the pump finds the job within seconds");
        }
    }

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
            "created_ms",
        ];
        let values: Vec<Option<String>> =
            self.run(async |conn| redis::cmd("HMGET").arg(&key).arg(&names[..]).query_async(conn).await).await?;
        let [status, spec, template, owner, cursor, queued, done, failed, listed, total, cancelled, created_ms] =
            <[Option<String>; 12]>::try_from(values).map_err(|_| corrupt(id, "fields"))?;
        let Some(status) = status else {
            let running = self.keys.jobs_running(self.keys.shard_of_job(id));
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
            created_ms: created_ms.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0),
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
        let running = self.keys.jobs_running(self.keys.shard_of_job(id));
        let keys = [self.keys.job(id), self.keys.job_retry(id), self.keys.job_failed(id), running];
        let kept: Vec<String> = kept.iter().map(ToString::to_string).collect();
        self.run_durable(&keys[0], async |conn| {
            SCRIPT.key(&keys[..]).arg(taken).arg(&kept).invoke_async::<i64>(conn).await
        })
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

    /// The next of a `rerender` job's tasks: at most `take` records of successful tasks (of the filter's owner,
    /// if any) made before `before_ms` that match `filter`, after the index entry `after`; with the cursor to go on
    /// from, and whether the index is exhausted. It examines at most [`EXAMINED`] entries, so a sparse filter
    /// moves on through a large index without holding a turn long.
    pub async fn rerender_candidates(
        &self,
        filter: &RerenderFilter,
        after: Option<&str>,
        before_ms: i64,
        take: usize,
    ) -> Result<(Vec<TaskRecord>, Option<String>, bool), StateError> {
        let keys = &self.keys;
        let indexes: Vec<String> = match &filter.owner {
            Some(owner) => keys.shards().map(|shard| keys.index_of_owner(shard, owner)).collect(),
            None => keys.shards().map(|shard| keys.index_all(shard)).collect(),
        };
        let min = after.map_or_else(|| "-".to_owned(), |entry| format!("({entry}"));
        // Tasks made in the job's own millisecond are taken; the job's items are in no index this one reads.
        let max = format!("({:013}", before_ms.max(0) + 1);
        let entries = self.entries(&indexes, (&min, &max), EXAMINED, false).await?;
        let (mut cursor, mut exhausted) = (entries.last().cloned(), entries.len() < EXAMINED);
        let mut taken = Vec::new();
        // Expired records (their entries go at the next trim) and those the filter does not name are passed by.
        for record in self.records(&entry_ids(&entries)).await?.into_iter().flatten().filter(|r| filter.matches(r)) {
            if taken.len() == take {
                cursor = taken.last().map(|r: &TaskRecord| IndexEntry::of(r.id, r.created_at).to_string());
                exhausted = false;
                break;
            }
            taken.push(record);
        }
        Ok((taken, cursor, exhausted))
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
        let keys = [self.keys.job(id), self.keys.jobs_running(self.keys.shard_of_job(id)), self.keys.job_sources(id)];
        let listed = if listed { "1" } else { "0" };
        self.run_durable(&keys[0], async |conn| {
            SCRIPT.key(&keys[..]).arg(cursor).arg(queued).arg(found).arg(listed).invoke_async::<i64>(conn).await
        })
        .await
        .map(drop)
    }
}

/// The spec as the pump reads it from the stored summary: the prefix, the filter, or `Sources` (whose URLs not
/// queued yet are read by [`StateStore::job_sources`]).
fn pump_spec(stored: Option<&str>) -> JobSpec {
    let spec: serde_json::Value = serde_json::from_str(stored.unwrap_or_default()).unwrap_or_default();
    if let Some(prefix) = spec.get("prefix").and_then(|p| p.as_str()) {
        return JobSpec::Prefix(prefix.to_owned());
    }
    match spec.get("rerender").map(|f| serde_json::from_value::<RerenderFilter>(f.clone())) {
        Some(Ok(filter)) => JobSpec::Rerender(filter),
        _ => JobSpec::Sources(Vec::new()),
    }
}

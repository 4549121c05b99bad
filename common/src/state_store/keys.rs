//! The names of every Redis key and channel thumbq uses, all under one prefix (`THUMBQ_KEY_PREFIX`).

use crate::{
    job::JobId,
    task::{TaskId, TaskStatus},
};

/// Key names under a prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A task's record: a hash.
    pub fn task(&self, id: TaskId) -> String {
        format!("{}task:{id}", self.prefix)
    }

    /// Every task, newest last: a sorted set of [`IndexEntry`](super::IndexEntry) members, all scored 0, so that
    /// the members' own order (creation time, then id) is the order and a member is an exact cursor.
    pub fn index_all(&self) -> String {
        format!("{}index:all", self.prefix)
    }

    /// What earlier versions kept and this one does not, deleted by each API process with its first upload: the
    /// per-status indexes (`<prefix>index:<STATUS>`; a listing by status reads [`Self::index_all`] and skips the
    /// other states) and the finished set (`<prefix>finished`; `/stats` counts from the history's buckets).
    /// Together they cost 7 Redis commands and 300 bytes a task.
    pub fn legacy(&self) -> Vec<String> {
        let statuses = TaskStatus::ALL.iter().map(|status| format!("{}index:{status}", self.prefix));
        statuses.chain([format!("{}finished", self.prefix)]).collect()
    }

    /// The tasks one API key uploaded, laid out like [`Self::index_all`]: what a key without `admin` lists.
    pub fn index_of_owner(&self, owner: &str) -> String {
        format!("{}index:owner:{owner}", self.prefix)
    }

    /// The items of one bulk job, laid out like [`Self::index_all`]: `GET /tasks?job=`.
    pub fn index_of_job(&self, job: JobId) -> String {
        format!("{}index:job:{job}", self.prefix)
    }

    /// The mark an erased task leaves behind (see [`erasure`](super::erasure)).
    pub fn erased(&self, id: TaskId) -> String {
        format!("{}erased:{id}", self.prefix)
    }

    /// The task that made thumbnails of an original with parameters (`fingerprint`) for `owner`, for `dedupe=true`.
    pub fn dedupe(&self, owner: &str, fingerprint: &str) -> String {
        format!("{}dedupe:{owner}:{fingerprint}", self.prefix)
    }

    /// An upload's `Idempotency-Key` `key` of the API key `owner` (empty with keys off).
    pub fn idempotency(&self, owner: &str, key: &str) -> String {
        format!("{}idempotency:{owner}:{key}", self.prefix)
    }

    /// A job: a hash (see [`jobs`](super::jobs)).
    pub fn job(&self, id: JobId) -> String {
        format!("{}job:{id}", self.prefix)
    }

    /// The prefix of every job's hash, for the transition script (which reads an item's job id from its record).
    pub fn job_prefix(&self) -> String {
        format!("{}job:", self.prefix)
    }

    /// A `sources` job's URLs: a list.
    pub fn job_sources(&self, id: JobId) -> String {
        format!("{}job:{id}:sources", self.prefix)
    }

    /// A job's first failures: a list.
    pub fn job_failures(&self, id: JobId) -> String {
        format!("{}job:{id}:failures", self.prefix)
    }

    /// Every failed item of a job: a set of task ids.
    pub fn job_failed(&self, id: JobId) -> String {
        format!("{}job:{id}:failed", self.prefix)
    }

    /// A job's items to make again: a list of task ids.
    pub fn job_retry(&self, id: JobId) -> String {
        format!("{}job:{id}:retry", self.prefix)
    }

    /// Every job by creation time: a sorted set.
    pub fn jobs(&self) -> String {
        format!("{}jobs", self.prefix)
    }

    /// The jobs the pump walks: a set.
    pub fn jobs_running(&self) -> String {
        format!("{}jobs:running", self.prefix)
    }

    /// The jobs that ended and have a webhook to send: a list of job ids. Beside [`Self::jobs_running`], whose
    /// name the scripts derive it from.
    pub fn jobs_ended(&self) -> String {
        format!("{}jobs:ended", self.prefix)
    }

    /// The job pump's lease: a string holding the worker's id.
    pub fn job_pump(&self) -> String {
        format!("{}jobs:pump", self.prefix)
    }

    /// The prefix of the per-10-second history buckets (`<prefix>history:<bucket start, epoch ms>`, hashes of
    /// finished tasks by status and their latency, written by each process about once a second, kept an hour).
    pub fn history_prefix(&self) -> String {
        format!("{}history:", self.prefix)
    }

    /// The pub/sub channel announcing tasks that ended (what a long poll waits for).
    pub fn events(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// A worker's registry entry.
    pub fn worker(&self, id: &str) -> String {
        format!("{}worker:{id}", self.prefix)
    }

    /// The sorted set of worker ids by last heartbeat.
    pub fn workers(&self) -> String {
        format!("{}workers", self.prefix)
    }

    /// An API key's record, by the key's SHA-256.
    pub fn api_key(&self, hash: &str) -> String {
        format!("{}apikey:{hash}", self.prefix)
    }

    /// Key names to their hashes.
    pub fn api_keys(&self) -> String {
        format!("{}apikeys", self.prefix)
    }

    /// A key's unfinished tasks and their originals' sizes, for its storage quota.
    pub fn in_flight(&self, key_name: &str) -> String {
        format!("{}inflight:{key_name}", self.prefix)
    }

    /// The prefix of [`Self::in_flight`], for the transition script.
    pub fn in_flight_prefix(&self) -> String {
        format!("{}inflight:", self.prefix)
    }

    /// A rate-limit bucket (`key:<name>` for a key, `addr:<ip>` for a client without one).
    pub fn rate_bucket(&self, bucket: &str) -> String {
        format!("{}rate:{bucket}", self.prefix)
    }
}

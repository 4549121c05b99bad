//! The names of every Redis key and channel thumbq uses, all under one prefix (`THUMBQ_KEY_PREFIX`).
//!
//! On a Redis Cluster (`THUMBQ_REDIS_CLUSTER`) a Lua script may only touch keys of one hash slot, so after the
//! prefix comes a hash tag: a task's keys, and the indexes, quota and job sets its scripts touch, carry its shard's
//! tag (one of [`SHARD_TAGS`], picked by the task id's last byte), and are kept once per shard and merged on read;
//! a job's keys carry its shard's (its items' ids share its last byte, so they are on its shard); the API keys,
//! rate buckets, history, workers and the job pump's lease carry one global tag. Single-key data (idempotency,
//! dedupe) and the events channel (pub/sub is cluster-wide) carry none. On one Redis there are no tags and one shard,
//! and the names are those of earlier versions.

use std::fmt;

use crate::{
    job::JobId,
    task::{TaskId, TaskStatus},
};

/// The hash tags of a cluster's shards, chosen so that their slots are spread evenly over the 16,384 (one in the
/// middle of each sixteenth: 511, 1518, 2579 ... 15882), so any even split of the slots over primaries gets a fair
/// share. Part of every key's name: never change them. Sixteen shards spread thumbq over at most sixteen primaries;
/// a listing reads every shard's index.
pub const SHARD_TAGS: [&str; 16] =
    ["18", "249", "72", "223", "105", "2", "64", "235", "265", "34", "413", "155", "273", "22", "219", "48"];

/// The tag of the keys that are not a task's or a job's on a cluster.
const GLOBAL_TAG: &str = "{g}:";

/// One of the store's shards: the only one on a single Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard(u8);

/// Key names under a prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
    /// Each shard's tag as it goes into a key (`{18}:`), or one empty tag on a single Redis.
    tags: Vec<String>,
    /// The global tag as it goes into a key, or nothing.
    global: &'static str,
}

impl Keys {
    /// Keys under `prefix` on one Redis.
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned(), tags: vec![String::new()], global: "" }
    }

    /// Keys under `prefix` on a Redis Cluster: hash-tagged, in [`SHARD_TAGS`]'s shards.
    pub fn sharded(prefix: &str) -> Self {
        let tags = SHARD_TAGS.iter().map(|tag| format!("{{{tag}}}:")).collect();
        Self { prefix: prefix.to_owned(), tags, global: GLOBAL_TAG }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the keys are spread over shards (a cluster).
    pub fn is_sharded(&self) -> bool {
        self.tags.len() > 1
    }

    /// Every shard.
    pub fn shards(&self) -> impl Iterator<Item = Shard> + use<> {
        (0..self.tags.len() as u8).map(Shard)
    }

    /// Task `id`'s shard.
    pub fn shard_of(&self, id: TaskId) -> Shard {
        Shard(id.spread() % self.tags.len() as u8)
    }

    /// Job `id`'s shard, its items' too.
    pub fn shard_of_job(&self, id: JobId) -> Shard {
        Shard(id.spread() % self.tags.len() as u8)
    }

    /// `<prefix><tag><name>`.
    fn on(&self, shard: Shard, name: fmt::Arguments<'_>) -> String {
        format!("{}{}{name}", self.prefix, self.tags[usize::from(shard.0)])
    }

    /// `<prefix><global tag><name>`.
    fn global(&self, name: fmt::Arguments<'_>) -> String {
        format!("{}{}{name}", self.prefix, self.global)
    }

    /// A task's record: a string (see [`codec`](super::codec)).
    pub fn task(&self, id: TaskId) -> String {
        self.on(self.shard_of(id), format_args!("task:{id}"))
    }

    /// Every task, newest last: a sorted set of [`IndexEntry`](super::IndexEntry) members, all scored 0, so that
    /// the members' own order (creation time, then id) is the order and a member is an exact cursor.
    /// One per shard, holding the shard's tasks.
    pub fn index_all(&self, shard: Shard) -> String {
        self.on(shard, format_args!("index:all"))
    }

    /// What earlier versions kept and this one does not, deleted by each API process with its first upload: the
    /// per-status indexes (`<prefix>index:<STATUS>`; a listing by status reads [`Self::index_all`] and skips the
    /// other states) and the finished set (`<prefix>finished`; `/stats` counts from the history's buckets).
    /// Together they cost 7 Redis commands and 300 bytes a task.
    /// None on a cluster, which no earlier version used.
    pub fn legacy(&self) -> Vec<String> {
        if self.is_sharded() {
            return Vec::new();
        }
        let statuses = TaskStatus::ALL.iter().map(|status| format!("{}index:{status}", self.prefix));
        statuses.chain([format!("{}finished", self.prefix)]).collect()
    }

    /// The tasks one API key uploaded, laid out like [`Self::index_all`] (one per shard): what a key without
    /// `admin` lists.
    pub fn index_of_owner(&self, shard: Shard, owner: &str) -> String {
        self.on(shard, format_args!("index:owner:{owner}"))
    }

    /// The items of one bulk job, laid out like [`Self::index_all`]: `GET /tasks?job=`.
    pub fn index_of_job(&self, job: JobId) -> String {
        self.on(self.shard_of_job(job), format_args!("index:job:{job}"))
    }

    /// The mark an erased task leaves behind (see [`erasure`](super::erasure)).
    pub fn erased(&self, id: TaskId) -> String {
        self.on(self.shard_of(id), format_args!("erased:{id}"))
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
        self.on(self.shard_of_job(id), format_args!("job:{id}"))
    }

    /// The prefix of the hash of every job on `shard`, for the transition script (which reads an item's job id
    /// from its record; an item is on its job's shard).
    pub fn job_prefix(&self, shard: Shard) -> String {
        self.on(shard, format_args!("job:"))
    }

    /// A `sources` job's URLs: a list.
    pub fn job_sources(&self, id: JobId) -> String {
        self.on(self.shard_of_job(id), format_args!("job:{id}:sources"))
    }

    /// A job's first failures: a list.
    pub fn job_failures(&self, id: JobId) -> String {
        self.on(self.shard_of_job(id), format_args!("job:{id}:failures"))
    }

    /// Every failed item of a job: a set of task ids.
    pub fn job_failed(&self, id: JobId) -> String {
        self.on(self.shard_of_job(id), format_args!("job:{id}:failed"))
    }

    /// A job's items to make again: a list of task ids.
    pub fn job_retry(&self, id: JobId) -> String {
        self.on(self.shard_of_job(id), format_args!("job:{id}:retry"))
    }

    /// Every job of a shard by creation time: a sorted set.
    pub fn jobs(&self, shard: Shard) -> String {
        self.on(shard, format_args!("jobs"))
    }

    /// The jobs of a shard the pump walks: a set.
    pub fn jobs_running(&self, shard: Shard) -> String {
        self.on(shard, format_args!("jobs:running"))
    }

    /// The jobs that ended and have a webhook to send: a list of job ids. Beside [`Self::jobs_running`], whose
    /// name the scripts derive it from.
    pub fn jobs_ended(&self, shard: Shard) -> String {
        self.on(shard, format_args!("jobs:ended"))
    }

    /// The jobs' generation: a counter raised after a job starts running, so that an idle pump reads this one key
    /// and not the running and ended sets of every shard (32 reads a turn on a cluster).
    pub fn jobs_generation(&self) -> String {
        self.global(format_args!("jobs:generation"))
    }

    /// The job pump's lease: a string holding the worker's id.
    pub fn job_pump(&self) -> String {
        self.global(format_args!("jobs:pump"))
    }

    /// The prefix of the per-10-second history buckets (`<prefix>history:<bucket start, epoch ms>`, hashes of
    /// finished tasks by status and their latency, written by each process about once a second, kept an hour).
    pub fn history_prefix(&self) -> String {
        self.global(format_args!("history:"))
    }

    /// The pub/sub channel announcing tasks that ended (what a long poll waits for); a cluster's channels are
    /// cluster-wide.
    pub fn events(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// A worker's registry entry.
    pub fn worker(&self, id: &str) -> String {
        self.global(format_args!("worker:{id}"))
    }

    /// The sorted set of worker ids by last heartbeat.
    pub fn workers(&self) -> String {
        self.global(format_args!("workers"))
    }

    /// An API key's record, by the key's SHA-256.
    pub fn api_key(&self, hash: &str) -> String {
        self.global(format_args!("apikey:{hash}"))
    }

    /// Key names to their hashes.
    pub fn api_keys(&self) -> String {
        self.global(format_args!("apikeys"))
    }

    /// A key's unfinished tasks of a shard and their originals' sizes, for its storage quota.
    pub fn in_flight(&self, shard: Shard, key_name: &str) -> String {
        self.on(shard, format_args!("inflight:{key_name}"))
    }

    /// The prefix of [`Self::in_flight`], for the transition script.
    pub fn in_flight_prefix(&self, shard: Shard) -> String {
        self.on(shard, format_args!("inflight:"))
    }

    /// A rate-limit bucket (`key:<name>` for a key, `addr:<ip>` for a client without one).
    pub fn rate_bucket(&self, bucket: &str) -> String {
        self.global(format_args!("rate:{bucket}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::Slot;

    fn slot(key: &str) -> Slot {
        Slot::for_key(key)
    }

    #[test]
    fn on_one_redis_the_names_are_those_of_earlier_versions() {
        let keys = Keys::new("p:");
        let (id, job) = (TaskId::new(), JobId::new());
        let shard = keys.shard_of(id);
        assert_eq!(keys.shards().collect::<Vec<_>>(), [shard]);
        assert_eq!(keys.task(id), format!("p:task:{id}"));
        assert_eq!(keys.index_all(shard), "p:index:all");
        assert_eq!(keys.index_of_owner(shard, "k"), "p:index:owner:k");
        assert_eq!(keys.in_flight(shard, "k"), "p:inflight:k");
        assert_eq!(keys.job(job), format!("p:job:{job}"));
        assert_eq!(keys.index_of_job(job), format!("p:index:job:{job}"));
        assert_eq!(keys.jobs(shard), "p:jobs");
        assert_eq!(keys.jobs_running(shard), "p:jobs:running");
        assert_eq!(keys.history_prefix(), "p:history:");
        assert_eq!(keys.api_keys(), "p:apikeys");
        assert_eq!(keys.legacy().len(), TaskStatus::ALL.len() + 1);
    }

    #[test]
    fn on_a_cluster_what_one_script_touches_shares_a_slot() {
        let keys = Keys::sharded("p:");
        let id = TaskId::new();
        let shard = keys.shard_of(id);
        let task = slot(&keys.task(id));
        // The transition script, creation, erasure and replay.
        for key in [
            keys.erased(id),
            keys.index_all(shard),
            keys.index_of_owner(shard, "k"),
            keys.in_flight(shard, "k"),
            keys.jobs_running(shard),
            keys.jobs_ended(shard),
        ] {
            assert_eq!(slot(&key), task, "{key}");
        }
        // A job's item counts into its job's keys from its own transition.
        let job = JobId::new();
        let item = crate::job::item_id(job, &crate::task::Import::Key("a.png".into()));
        assert_eq!(slot(&keys.task(item)), slot(&keys.job(job)));
        assert_eq!(keys.job_prefix(keys.shard_of(item)), keys.job(job).trim_end_matches(&job.to_string()));
        for key in [keys.index_of_job(job), keys.job_failures(job), keys.jobs(keys.shard_of_job(job))] {
            assert_eq!(slot(&key), slot(&keys.job(job)), "{key}");
        }
        // What the API-key script and the history pipeline touch.
        let global = slot(&keys.api_key("h"));
        for key in [keys.rate_bucket("key:k"), keys.api_keys(), keys.workers(), format!("{}1", keys.history_prefix())] {
            assert_eq!(slot(&key), global, "{key}");
        }
        assert!(keys.legacy().is_empty(), "no earlier version ran on a cluster");
    }

    #[test]
    fn the_shards_spread_over_the_slots_evenly() {
        let keys = Keys::sharded("any-prefix:");
        let slots: Vec<u16> = keys
            .shards()
            .map(|shard| {
                // `Slot` tells its number to nobody: found by comparison.
                let at = slot(&keys.index_all(shard));
                (0..16_384).find(|n| Slot::new(*n) == Some(at)).unwrap()
            })
            .collect();
        // One in each sixteenth of the 16,384 slots.
        for (i, slot) in slots.iter().enumerate() {
            assert_eq!(usize::from(*slot) / 1024, i, "{slots:?}");
        }
        // Ids spread over every shard.
        let used: std::collections::HashSet<Shard> = (0..2000).map(|_| keys.shard_of(TaskId::new())).collect();
        assert_eq!(used.len(), SHARD_TAGS.len());
    }
}

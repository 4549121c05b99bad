//! Finding tasks: the creation-time indexes behind `GET /tasks`.
//!
//! Each index is a sorted set whose members all score 0 and read `<creation ms, 13 digits>:<id>`, so Redis orders
//! them by creation time and then id, and a member is an exact position: a page that ends at member `m` is followed
//! by exactly the members below `m` (`ZREVRANGEBYLEX … (m`), with nothing skipped or repeated however many tasks
//! share a millisecond. Entries older than the record TTL are trimmed by uploads, each index at most once a second
//! by each API process ([`TrimClock`]): a listing passes by an entry whose record has expired, so a trim only keeps
//! the sets bounded, and done on every upload it was 7 of the 51 Redis commands a task cost.

use std::{collections::HashMap, fmt, str::FromStr};

use chrono::{DateTime, Utc};
use redis::AsyncCommands;

use super::{StateError, StateStore, codec};
use crate::{
    job::JobId,
    task::{TaskId, TaskRecord, TaskStatus},
};

/// A task's position in the indexes, `<creation ms>:<id>`; handed to clients as the cursor of the next page.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexEntry(String);

impl IndexEntry {
    /// The entry of the task `id` created at `created_at`.
    pub fn of(id: TaskId, created_at: DateTime<Utc>) -> Self {
        Self(format!("{:013}:{id}", created_at.timestamp_millis().max(0)))
    }

    /// The entry as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IndexEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text that is not an index entry (a cursor a client made up or mangled).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a cursor from a previous page")]
pub struct InvalidCursor;

impl FromStr for IndexEntry {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (millis, id) = s.split_once(':').ok_or(InvalidCursor)?;
        if millis.len() != 13 || !millis.bytes().all(|b| b.is_ascii_digit()) || id.parse::<TaskId>().is_err() {
            return Err(InvalidCursor);
        }
        Ok(Self(s.to_owned()))
    }
}

/// One page of tasks, newest first.
#[derive(Debug)]
pub struct Page {
    /// The records.
    pub records: Vec<TaskRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<IndexEntry>,
}

/// Whose tasks a listing reads.
#[derive(Clone, Copy, Debug)]
pub enum Among<'a> {
    /// Every task.
    All,
    /// The tasks one API key uploaded.
    Owner(&'a str),
    /// A bulk job's items.
    Job(JobId),
}

/// When each index was last trimmed by this process: each is trimmed at most once per
/// [`TrimClock::EVERY`].
#[derive(Debug, Default)]
pub(super) struct TrimClock {
    last: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    /// Whether this process has deleted the per-status indexes of earlier versions (with its first upload).
    legacy_dropped: std::sync::atomic::AtomicBool,
}

impl TrimClock {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(1);
    /// Indexes remembered at most (an owner's or a job's each): past it the clock starts again, and every index is
    /// trimmed once more.
    const REMEMBERED: usize = 10_000;

    /// Whether `index` is due a trim, counting it as trimmed now if it is.
    pub(super) fn due(&self, index: &str) -> bool {
        let now = std::time::Instant::now();
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.get(index).is_some_and(|at| now.duration_since(*at) < Self::EVERY) {
            return false;
        }
        if last.len() >= Self::REMEMBERED {
            last.clear();
        }
        last.insert(index.to_owned(), now);
        true
    }

    /// True the first time only.
    fn legacy_due(&self) -> bool {
        !self.legacy_dropped.swap(true, std::sync::atomic::Ordering::Relaxed)
    }
}

/// The most index entries one page of a listing examines (see [`StateStore::list`]).
pub const MAX_EXAMINED: usize = 1000;

impl StateStore {
    /// Writes the record of a newly accepted task and indexes it. A job's item goes in its job's index only, and
    /// lives for the items' TTL: a finished item must cost Redis little, and a million of them must not bury the
    /// interactive tasks in `GET /tasks`.
    pub async fn create(&self, record: &TaskRecord) -> Result<(), StateError> {
        let key = self.keys.task(record.id);
        let entry = IndexEntry::of(record.id, record.created_at);
        let ttl = if record.job.is_some() { self.item_ttl } else { self.ttl };
        let expired_before = IndexEntry::of(record.id, Utc::now() - ttl).0[..13].to_owned();
        let shard = self.keys.shard_of(record.id);
        let indexes: Vec<String> = match record.job {
            Some(job) => vec![self.keys.index_of_job(job)],
            None => {
                let mut indexes = vec![self.keys.index_all(shard)];
                indexes.extend(record.owner.as_deref().map(|owner| self.keys.index_of_owner(shard, owner)));
                indexes
            }
        };
        // Entries older than the TTL point at expired records: trimming them keeps the indexes bounded.
        let mut trimmed = indexes.clone();
        trimmed.retain(|index| self.trims.due(index));
        // What earlier versions kept and nothing reads or trims any more.
        let legacy = if self.trims.legacy_due() { self.keys.legacy() } else { Vec::new() };
        // One script, so the record never exists without its lifetime or its index entries: MULTI and EXEC would
        // be two more commands on every upload.
        static CREATE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                "redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[1]) \
                 for i = 2, #KEYS do redis.call('ZADD', KEYS[i], 0, ARGV[2]) end",
            )
        });
        let mut invocation = CREATE.key(&key);
        invocation.key(&indexes).arg(ttl.as_secs()).arg(entry.as_str()).arg(codec::encode(record));
        self.run_durable(&key, async |conn| invocation.invoke_async::<()>(conn).await).await?;
        if trimmed.is_empty() && legacy.is_empty() {
            return Ok(());
        }
        self.run(async |conn| {
            let mut pipe = redis::pipe();
            for index in &trimmed {
                pipe.zrembylex(index, "-", format!("({expired_before}")).ignore();
            }
            if !legacy.is_empty() {
                pipe.unlink(&legacy).ignore();
            }
            pipe.query_async(conn).await
        })
        .await
    }

    /// Whether the task has a record.
    pub async fn exists(&self, id: TaskId) -> Result<bool, StateError> {
        let key = self.keys.task(id);
        self.run(async |conn| conn.exists(&key).await).await
    }

    /// Records newest first, with `status` when given, `among` some tasks, starting after `after` (a previous
    /// page's `next`).
    ///
    /// A listing filtered by status reads its index (every task's, an owner's or a job's) and skips the other
    /// states, examining at most [`MAX_EXAMINED`] entries per page: a page may come up short with a `next` cursor
    /// to go on from. (Per-status indexes would make such pages full, for 5 more Redis commands on every task.)
    pub async fn list(
        &self,
        status: Option<TaskStatus>,
        among: Among<'_>,
        limit: usize,
        after: Option<&IndexEntry>,
    ) -> Result<Page, StateError> {
        let indexes: Vec<String> = match among {
            Among::Owner(owner) => self.keys.shards().map(|shard| self.keys.index_of_owner(shard, owner)).collect(),
            Among::Job(job) => vec![self.keys.index_of_job(job)],
            Among::All => self.keys.shards().map(|shard| self.keys.index_all(shard)).collect(),
        };
        let mut max = after.map_or_else(|| "+".to_owned(), |entry| format!("({entry}"));
        let mut records = Vec::with_capacity(limit);
        let mut examined = 0;
        // One more than asked, to know whether a next page exists. Entries of expired records are skipped, so a
        // round may come up short; each round costs two round trips (the range, then the records pipelined).
        loop {
            // Filtered by status, most entries may be of other states: rounds of 100 at least keep the round trips
            // few (at most 10 rounds for MAX_EXAMINED).
            let want = (limit + 1 - records.len()).max(if status.is_some() { 100 } else { 0 });
            let entries = self.newest_entries(&indexes, &max, want).await?;
            let ids = entry_ids(&entries);
            if ids.is_empty() {
                return Ok(Page { records, next: None });
            }
            for record in self.records(&ids).await? {
                // Expired (its entry goes at the next trim), or moved on since the range was read.
                let Some(record) = record else { continue };
                if status.is_some_and(|s| s != record.status) {
                    continue;
                }
                if records.len() == limit {
                    let next = records.last().map(|r: &TaskRecord| IndexEntry::of(r.id, r.created_at));
                    return Ok(Page { records, next });
                }
                records.push(record);
            }
            examined += entries.len();
            match entries.last() {
                Some(last) if entries.len() == want && examined >= MAX_EXAMINED => {
                    let next = last.parse().ok();
                    return Ok(Page { records, next });
                }
                Some(last) if entries.len() == want => max = format!("({last}"),
                _ => return Ok(Page { records, next: None }),
            }
        }
    }

    /// The entries of `indexes` (an index's part on each shard, or one index) below `max` (an exclusive `(entry`,
    /// or `+`), newest first, at most `count`.
    pub(super) async fn newest_entries(
        &self,
        indexes: &[String],
        max: &str,
        count: usize,
    ) -> Result<Vec<String>, StateError> {
        self.entries(indexes, ("-", max), count, true).await
    }

    /// The entries of `indexes` within `(min, max)` (in `ZRANGEBYLEX`'s terms), at most `count`, newest or oldest
    /// first: every part read at once, then merged (entries sort alike on every shard: creation time, then id).
    pub(super) async fn entries(
        &self,
        indexes: &[String],
        (min, max): (&str, &str),
        count: usize,
        newest_first: bool,
    ) -> Result<Vec<String>, StateError> {
        let read = async |index: &String| -> Result<Vec<String>, StateError> {
            let count = count as isize;
            self.run(async |conn| match newest_first {
                true => conn.zrevrangebylex_limit(index, max, min, 0, count).await,
                false => conn.zrangebylex_limit(index, min, max, 0, count).await,
            })
            .await
        };
        let mut entries: Vec<String> =
            futures_util::future::try_join_all(indexes.iter().map(read)).await?.into_iter().flatten().collect();
        if indexes.len() > 1 {
            entries.sort_unstable();
            if newest_first {
                entries.reverse();
            }
            entries.truncate(count);
        }
        Ok(entries)
    }

    /// The records of `ids` in one pipelined round trip (one per shard on a cluster, all at once); `None` for
    /// those unknown or expired.
    pub(crate) async fn records(&self, ids: &[TaskId]) -> Result<Vec<Option<TaskRecord>>, StateError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // A cluster's pipeline reaches one slot: one per shard.
        let mut by_shard: HashMap<super::Shard, Vec<usize>> = HashMap::new();
        for (at, id) in ids.iter().enumerate() {
            by_shard.entry(self.keys.shard_of(*id)).or_default().push(at);
        }
        let read = async |positions: &Vec<usize>| {
            self.run(async |conn| {
                let mut pipe = redis::pipe();
                positions.iter().for_each(|at| {
                    pipe.get(self.keys.task(ids[*at]));
                });
                pipe.query_async::<Vec<Option<String>>>(conn).await
            })
            .await
            .map(|values| positions.iter().copied().zip(values).collect::<Vec<_>>())
        };
        let fetched = futures_util::future::try_join_all(by_shard.values().map(read)).await.map(|parts| {
            let mut values = vec![None; ids.len()];
            for (at, value) in parts.into_iter().flatten() {
                values[at] = value;
            }
            values
        });
        let fetched = match fetched {
            // Some are an earlier version's: read one by one, each converted (only just after an upgrade).
            Err(StateError::OldRecord) => {
                let mut records = Vec::with_capacity(ids.len());
                for id in ids {
                    records.push(self.get(*id).await?);
                }
                return Ok(records);
            }
            fetched => fetched?,
        };
        ids.iter().zip(&fetched).map(|(id, value)| parse_record(*id, value.as_deref())).collect()
    }

    /// Reads a task's record; `None` when unknown or expired.
    pub async fn get(&self, id: TaskId) -> Result<Option<TaskRecord>, StateError> {
        let key = self.keys.task(id);
        let key = &key;
        let value: Option<String> = self.on_record(id, move || self.run(async move |conn| conn.get(key).await)).await?;
        parse_record(id, value.as_deref())
    }

    /// Deletes a task's record and index entries (the API withdrawing an upload it could not queue).
    pub async fn delete(&self, record: &TaskRecord) -> Result<(), StateError> {
        let key = self.keys.task(record.id);
        self.run_durable(&key, async |conn| self.deletion(record).query_async(conn).await).await
    }

    /// The atomic pipeline that deletes a task's record, its index entries and its share of its key's quota (all
    /// on the task's shard).
    pub(super) fn deletion(&self, record: &TaskRecord) -> redis::Pipeline {
        let (key, entry) = (self.keys.task(record.id), IndexEntry::of(record.id, record.created_at));
        let shard = self.keys.shard_of(record.id);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore().zrem(self.keys.index_all(shard), entry.as_str()).ignore();
        if let Some(owner) = &record.owner {
            pipe.zrem(self.keys.index_of_owner(shard, owner), entry.as_str()).ignore();
            pipe.hdel(self.keys.in_flight(shard, owner), record.id.to_string()).ignore();
        }
        if let Some(job) = record.job {
            pipe.zrem(self.keys.index_of_job(job), entry.as_str()).ignore();
        }
        pipe
    }
}

/// The task ids of index entries as read from Redis.
pub(crate) fn entry_ids(entries: &[String]) -> Vec<TaskId> {
    entries.iter().filter_map(|e| e.split_once(':').and_then(|(_, id)| id.parse().ok())).collect()
}

/// A record from its stored value; `None` for none (unknown or expired).
fn parse_record(id: TaskId, value: Option<&str>) -> Result<Option<TaskRecord>, StateError> {
    value.map(|value| codec::decode(id, value).map_err(|reason| StateError::Corrupt { id, reason })).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_sort_by_creation_time_then_id_and_parse_back() {
        let early = DateTime::from_timestamp_millis(999).unwrap();
        let late = DateTime::from_timestamp_millis(1_763_900_000_123).unwrap();
        let (a, b) = (IndexEntry::of(TaskId::new(), early), IndexEntry::of(TaskId::new(), late));
        assert!(a < b, "{a} sorts before {b}");
        assert_eq!(a.as_str()[..13], *"0000000000999");
        assert_eq!(b.to_string().parse::<IndexEntry>(), Ok(b));
        for bad in ["", "123:abc", &format!("123:{}", TaskId::new()), &format!("x763900000123:{}", TaskId::new())] {
            assert_eq!(bad.parse::<IndexEntry>(), Err(InvalidCursor), "{bad}");
        }
    }
}

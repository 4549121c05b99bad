//! Moving a task from one state to the next, as one Lua script run inside Redis, so concurrent or late writers (a
//! redelivered message, a slow worker) can never move a task backwards. The script's rank and terminal tables are
//! generated from [`TaskStatus`], the one state machine; a test checks script and Rust agree on every pair.

use chrono::{DateTime, Utc};
use redis::Script;

use super::{
    StateError, StateStore, Update, codec, event,
    jobs::{COUNT_ITEM, FINISH_JOB},
};
use crate::job::KEPT_FAILURES;
use crate::task::{ImageInfo, OperatorAction, Rendition, TaskErrorCode, TaskId, TaskStatus, WebhookLog};

// KEYS: 1 record.
// ARGV: 1 channel, 2 event payload, 3 ttl secs, 4 new status, 5 attempt (empty: the record's own, for a cancel),
// 6 the task's id, 7 the in-flight hashes' prefix (storage quotas), 8 the jobs' prefix, 9 the running jobs' set,
// 10 a job item's ttl secs (in place of 3), 11 now in ms (the caller's clock: Redis's TIME would be one more
// command), 12 the worker (STARTED), 13 the error and 14 its code (RETRY, FAILURE), 15 the next attempt's time in ms
// (RETRY), 16 stored fields to set, as a JSON object (a success's result), or empty.
// Returns OK (with a terminal status, `OK <upload ms>`, the ms empty for a job's item), MISSING, or the status that
// refused the change.
//
// Every command a script runs counts in Redis's load as if a client had sent it: the record is one value (see
// `codec`), read with one GET and written with one SET that also sets its lifetime (kept as it is on STARTED).
const BODY: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return 'MISSING' end
local r = cjson.decode(raw)
local log = r.h or {}
-- A change is {status, ms since creation, attempt, detail, code} (see codec/compact.rs): the latest's attempt is
-- the record's.
local attempts = log[#log] and log[#log][3] or 0
local attempt = tonumber(ARGV[5]) or attempts
if terminal[r.s] then return r.s end
if attempt < attempts or (attempt == attempts and rank[ARGV[4]] < rank[r.s]) then return r.s end
local ms = tonumber(ARGV[11])
local change = {ARGV[4], ms - r.c, attempt}
if ARGV[12] ~= '' then change[4] = ARGV[12] end
if ARGV[13] ~= '' then change[4] = ARGV[13]; change[5] = ARGV[14] end
log[#log + 1] = change
while #log > 50 do table.remove(log, 1) end
r.h = log
r.s = ARGV[4]
r.q = tonumber(ARGV[15])
if ARGV[16] ~= '' then
  for field, value in pairs(cjson.decode(ARGV[16])) do r[field] = value end
end
local value = cjson.encode(r)
if ARGV[4] == 'STARTED' then
  redis.call('SET', KEYS[1], value, 'KEEPTTL')
else
  redis.call('SET', KEYS[1], value, 'EX', r.j and ARGV[10] or ARGV[3])
end
if terminal[ARGV[4]] then
  if r.o then redis.call('HDEL', ARGV[7] .. r.o, ARGV[6]) end
  -- A job's item: its end counted into the job, which ends with its last item.
  if r.j then
    count_item(ARGV[8] .. r.j, ARGV[8] .. r.j .. ':failures', ARGV[9], ARGV[6], ARGV[4], change[5], ms)
  end
  -- Only a task's end is announced, with the record: a long poll waits for nothing else, and needs no read.
  redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. value)
  -- The dashboard's history is counted by the caller (see history.rs), from the upload's time (a job's item
  -- counts without a latency).
  if r.j then return 'OK ' end
  return 'OK ' .. string.format('%d', r.c)
end
return 'OK'
";

/// The script: tables generated from [`TaskStatus`], then [`BODY`].
pub fn script() -> Script {
    let rank: Vec<String> = TaskStatus::ALL.iter().map(|s| format!("{s} = {}", s.rank())).collect();
    let terminal: Vec<String> =
        TaskStatus::ALL.iter().filter(|s| s.is_terminal()).map(|s| format!("{s} = true")).collect();
    Script::new(&format!(
        "local rank = {{{}}}\nlocal terminal = {{{}}}\nlocal kept_failures = {}\n{FINISH_JOB}{COUNT_ITEM}{BODY}",
        rank.join(", "),
        terminal.join(", "),
        KEPT_FAILURES,
    ))
}

/// What a transition writes besides the new state (see the script's ARGV 12 to 16).
#[derive(Default)]
struct Details<'a> {
    worker: &'a str,
    error: &'a str,
    code: Option<TaskErrorCode>,
    next_at: Option<DateTime<Utc>>,
    fields: String,
}

impl StateStore {
    /// Records that `worker` started attempt `attempt`.
    pub async fn start(&self, id: TaskId, attempt: u32, worker: &str) -> Result<Update, StateError> {
        self.apply(id, TaskStatus::Started, attempt, Details { worker, ..Details::default() }).await
    }

    /// Records that attempt `attempt` failed transiently, with `error` (the message) and its `code`, and the next
    /// runs at `next_at`.
    pub async fn retry(
        &self,
        id: TaskId,
        attempt: u32,
        error: &str,
        code: TaskErrorCode,
        next_at: DateTime<Utc>,
    ) -> Result<Update, StateError> {
        let change = Details { error, code: Some(code), next_at: Some(next_at), ..Details::default() };
        self.apply(id, TaskStatus::Retry, attempt, change).await
    }

    /// Records the stored thumbnail, and with renditions every rendition with its result; of an import, also what
    /// its original turned out to be (`source`), which only the worker that read it knows.
    pub async fn succeed(
        &self,
        id: TaskId,
        attempt: u32,
        result: &ImageInfo,
        renditions: &[Rendition],
        source: Option<&ImageInfo>,
    ) -> Result<Update, StateError> {
        let fields = codec::success_fields(result, renditions, source);
        self.apply(id, TaskStatus::Success, attempt, Details { fields, ..Details::default() }).await
    }

    /// Records that the task ended without a thumbnail, with `error` (the message) and its `code` (whose kind the
    /// record shows).
    pub async fn fail(&self, id: TaskId, attempt: u32, error: &str, code: TaskErrorCode) -> Result<Update, StateError> {
        self.apply(id, TaskStatus::Failure, attempt, Details { error, code: Some(code), ..Details::default() }).await
    }

    /// Cancels the task unless it has finished: REVOKED, whatever attempt it is at.
    pub async fn revoke(&self, id: TaskId) -> Result<Update, StateError> {
        self.apply(id, TaskStatus::Revoked, None, Details::default()).await
    }

    /// Writes the webhook's deliveries into the record, if the record still exists (an erased or expired task
    /// must not come back without a TTL). Not a state change: the task's status stays. Returns whether the record
    /// was there.
    pub async fn record_webhook(&self, id: TaskId, log: &WebhookLog) -> Result<bool, StateError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(
                "local raw = redis.call('GET', KEYS[1]) if not raw then return 0 end \
                 local r = cjson.decode(raw) r.wh = cjson.decode(ARGV[1]) \
                 redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL') return 1",
            )
        });
        let (key, value) = (self.keys.task(id), codec::json(log));
        let (key, value) = (&key, &value);
        let written: i64 = self
            .on_record(id, move || self.run(async move |conn| SCRIPT.key(key).arg(value).invoke_async(conn).await))
            .await?;
        Ok(written == 1)
    }

    /// Appends what an operator did to the task's `actions`, if the record still exists. Not a state change.
    /// Returns whether the record was there.
    pub async fn record_action(&self, id: TaskId, action: &str, by: Option<&str>) -> Result<bool, StateError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(
                "local raw = redis.call('GET', KEYS[1]) if not raw then return 0 end \
                 local r = cjson.decode(raw) r.ac = r.ac or {} r.ac[#r.ac + 1] = cjson.decode(ARGV[1]) \
                 redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL') return 1",
            )
        });
        let entry = OperatorAction { at: Utc::now(), action: action.to_owned(), by: by.map(str::to_owned) };
        let (key, value) = (self.keys.task(id), codec::json(&entry));
        let (key, value) = (&key, &value);
        let written: i64 = self
            .on_record(id, move || self.run(async move |conn| SCRIPT.key(key).arg(value).invoke_async(conn).await))
            .await?;
        Ok(written == 1)
    }

    async fn apply(
        &self,
        id: TaskId,
        status: TaskStatus,
        attempt: impl Into<Option<u32>>,
        details: Details<'_>,
    ) -> Result<Update, StateError> {
        let (keys, now_ms) = (&self.keys, Utc::now().timestamp_millis());
        // Every key the script touches is on the task's shard (a job's item is on its job's).
        let (key, shard) = (keys.task(id), keys.shard_of(id));
        let mut invocation = self.transition.key(&key);
        invocation
            .arg(keys.events())
            .arg(event::payload(id, status))
            .arg(if status == TaskStatus::Success { self.success_ttl.unwrap_or(self.ttl) } else { self.ttl }.as_secs())
            .arg(status.to_string())
            .arg(attempt.into().map(|a| a.to_string()).unwrap_or_default())
            .arg(id.to_string())
            .arg(keys.in_flight_prefix(shard))
            .arg(keys.job_prefix(shard))
            .arg(keys.jobs_running(shard))
            .arg(self.item_ttl.as_secs())
            .arg(now_ms)
            .arg(details.worker)
            .arg(details.error)
            .arg(details.code.map_or("", TaskErrorCode::as_str))
            .arg(details.next_at.map(|at| at.timestamp_millis().to_string()).unwrap_or_default())
            .arg(&details.fields);
        let (invocation, key) = (&invocation, &key);
        let reply: String = self
            .on_record(id, move || self.run_durable(key, async move |conn| invocation.invoke_async(conn).await))
            .await?;
        if let Some(created) = reply.strip_prefix("OK ") {
            self.history.count(now_ms, status, created.parse().ok().map(|created: i64| now_ms - created));
            self.flush_history_soon();
            return Ok(Update::Applied);
        }
        Ok(match reply.as_str() {
            "OK" => Update::Applied,
            "MISSING" => Update::Missing,
            other => Update::Refused(other.parse().map_err(|reason| StateError::Corrupt { id, reason })?),
        })
    }
}

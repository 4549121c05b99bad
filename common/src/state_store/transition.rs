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
// command), then field/value pairs; an empty value deletes the field.
// Returns OK (with a terminal status, `OK <upload ms>`, the ms empty for a job's item), MISSING, or the status that
// refused the change.
//
// Every command a script runs counts in Redis's load as if a client had sent it, so the script reads the record
// once (the fields to delete too, to delete only those there), writes it with one HSET, and sets its lifetime again
// only when it may have changed (not on STARTED).
const BODY: &str = r"
local names = {'status', 'attempts', 'index', 'owner', 'history', 'job', 'worker', 'error', 'error_code'}
local read = #names
for i = 12, #ARGV, 2 do
  if ARGV[i + 1] == '' then names[#names + 1] = ARGV[i] end
end
local cur = redis.call('HMGET', KEYS[1], unpack(names))
if not cur[1] then return 'MISSING' end
local attempts = tonumber(cur[2]) or 0
local attempt = tonumber(ARGV[5]) or attempts
if terminal[cur[1]] then return cur[1] end
if attempt < attempts or (attempt == attempts and rank[ARGV[4]] < rank[cur[1]]) then return cur[1] end
local given = {}
for i = 12, #ARGV, 2 do given[ARGV[i]] = ARGV[i + 1] end
-- A field as the record will have it: given now, or as it was.
local function after(field, i)
  local value = given[field]
  if value == nil then value = cur[i] end
  if value == '' or not value then return nil end
  return value
end
local ms = tonumber(ARGV[11])
local log = cur[5] and cjson.decode(cur[5]) or {}
local change = {status = ARGV[4], at = ms, attempt = attempt}
if ARGV[4] == 'STARTED' then change.worker = after('worker', 7) end
if ARGV[4] == 'RETRY' or ARGV[4] == 'FAILURE' then
  change.error = after('error', 8)
  change.error_code = after('error_code', 9)
end
log[#log + 1] = change
while #log > 50 do table.remove(log, 1) end
local set = {'status', ARGV[4], 'attempts', attempt, 'history', cjson.encode(log)}
for i = 12, #ARGV, 2 do
  if ARGV[i + 1] ~= '' then set[#set + 1] = ARGV[i]; set[#set + 1] = ARGV[i + 1] end
end
redis.call('HSET', KEYS[1], unpack(set))
local gone = {}
for i = read + 1, #names do
  if cur[i] then gone[#gone + 1] = names[i] end
end
if #gone > 0 then redis.call('HDEL', KEYS[1], unpack(gone)) end
if ARGV[4] ~= 'STARTED' then redis.call('EXPIRE', KEYS[1], cur[6] and ARGV[10] or ARGV[3]) end
if terminal[ARGV[4]] then
  if cur[4] then redis.call('HDEL', ARGV[7] .. cur[4], ARGV[6]) end
  -- A job's item: its end counted into the job, which ends with its last item.
  local job = cur[6]
  if job then
    local code = after('error_code', 9)
    count_item(ARGV[8] .. job, ARGV[8] .. job .. ':failures', ARGV[9], ARGV[6], ARGV[4], code, ms)
  end
  -- Only a task's end is announced: a long poll waits for nothing else.
  redis.call('PUBLISH', ARGV[1], ARGV[2])
  -- The dashboard's history is counted by the caller (see history.rs), from the upload's time when there is one.
  return 'OK ' .. (string.match(cur[3] or '', '^(%d+):') or '')
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

impl StateStore {
    /// Records that `worker` started attempt `attempt`.
    pub async fn start(&self, id: TaskId, attempt: u32, worker: &str) -> Result<Update, StateError> {
        let fields = [("started_at", now()), ("worker", worker.to_owned()), ("next_retry_at", String::new())];
        self.apply(id, TaskStatus::Started, attempt, &fields).await
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
        let fields = [
            ("error", error.to_owned()),
            ("error_code", code.as_str().to_owned()),
            ("next_retry_at", next_at.to_rfc3339()),
        ];
        self.apply(id, TaskStatus::Retry, attempt, &fields).await
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
        let mut fields = vec![
            ("finished_at", now()),
            ("result", codec::json(result)),
            ("error", String::new()),
            ("error_code", String::new()),
            ("error_kind", String::new()),
            ("next_retry_at", String::new()),
        ];
        if !renditions.is_empty() {
            fields.push(("renditions", codec::json(&renditions)));
        }
        if let Some(source) = source {
            fields.push(("source", codec::json(source)));
        }
        self.apply(id, TaskStatus::Success, attempt, &fields).await
    }

    /// Records that the task ended without a thumbnail, with `error` (the message), its `code` and the code's kind.
    pub async fn fail(&self, id: TaskId, attempt: u32, error: &str, code: TaskErrorCode) -> Result<Update, StateError> {
        let fields = [
            ("finished_at", now()),
            ("error", error.to_owned()),
            ("error_code", code.as_str().to_owned()),
            ("error_kind", code.kind().as_str().to_owned()),
            ("next_retry_at", String::new()),
        ];
        self.apply(id, TaskStatus::Failure, attempt, &fields).await
    }

    /// Cancels the task unless it has finished: REVOKED, whatever attempt it is at.
    pub async fn revoke(&self, id: TaskId) -> Result<Update, StateError> {
        self.apply(id, TaskStatus::Revoked, None, &[("finished_at", now()), ("next_retry_at", String::new())]).await
    }

    /// Writes the webhook's deliveries into the record, if the record still exists (an erased or expired task
    /// must not come back as a hash without a TTL). Not a state change: the task's status stays. Returns whether
    /// the record was there.
    pub async fn record_webhook(&self, id: TaskId, log: &WebhookLog) -> Result<bool, StateError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
                 redis.call('HSET', KEYS[1], 'webhook', ARGV[1]) return 1",
            )
        });
        let (key, value) = (self.keys.task(id), codec::json(log));
        let written: i64 = self.run(async |conn| SCRIPT.key(&key).arg(&value).invoke_async(conn).await).await?;
        Ok(written == 1)
    }

    /// Appends what an operator did to the task's `actions`, if the record still exists. Not a state change.
    /// Returns whether the record was there.
    pub async fn record_action(&self, id: TaskId, action: &str, by: Option<&str>) -> Result<bool, StateError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
                 local actions = cjson.decode(redis.call('HGET', KEYS[1], 'actions') or '[]') \
                 actions[#actions + 1] = cjson.decode(ARGV[1]) \
                 redis.call('HSET', KEYS[1], 'actions', cjson.encode(actions)) return 1",
            )
        });
        let entry = OperatorAction { at: Utc::now(), action: action.to_owned(), by: by.map(str::to_owned) };
        let (key, value) = (self.keys.task(id), codec::json(&entry));
        let written: i64 = self.run(async |conn| SCRIPT.key(&key).arg(&value).invoke_async(conn).await).await?;
        Ok(written == 1)
    }

    async fn apply(
        &self,
        id: TaskId,
        status: TaskStatus,
        attempt: impl Into<Option<u32>>,
        fields: &[(&str, String)],
    ) -> Result<Update, StateError> {
        let (keys, now_ms) = (&self.keys, Utc::now().timestamp_millis());
        let mut invocation = self.transition.key(keys.task(id));
        invocation
            .arg(keys.events())
            .arg(event::payload(id, status))
            .arg(if status == TaskStatus::Success { self.success_ttl.unwrap_or(self.ttl) } else { self.ttl }.as_secs())
            .arg(status.to_string())
            .arg(attempt.into().map(|a| a.to_string()).unwrap_or_default())
            .arg(id.to_string())
            .arg(keys.in_flight_prefix())
            .arg(keys.job_prefix())
            .arg(keys.jobs_running())
            .arg(self.item_ttl.as_secs())
            .arg(now_ms);
        for (field, value) in fields {
            invocation.arg(*field).arg(value);
        }
        let reply: String = self.run_durable(async |conn| invocation.invoke_async(conn).await).await?;
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

fn now() -> String {
    Utc::now().to_rfc3339()
}

//! Replaying a task: its record back to PENDING as one Lua script run inside Redis, so a concurrent erase (the
//! record deleted) or cancel (REVOKED) either happens first, and the replay is refused, or after, and acts on the
//! replayed task. Nothing brings back a record that is gone or a task that was cancelled.

use redis::Script;

use super::{StateError, StateStore, Update, codec};
use crate::task::{OperatorAction, TaskEnvelope, TaskRecord};

/// The action a replay records in the task's `actions`.
pub const REPLAYED: &str = "replayed";

/// How often the task was replayed: its generation, 0 for a task never replayed. Derived from the record's
/// `actions` (the script below writes the action with the reset, in one step), so every reader of one version of
/// the record agrees on it; the webhooks' idempotency keys carry it.
pub fn replays(record: &TaskRecord) -> usize {
    record.actions.iter().filter(|a| a.action == REPLAYED).count()
}

// KEYS: 1 record, 2 the index of every task. ARGV: 1 ttl secs, 2 the index entry, 3 the action (JSON), 4 the
// prefix of the per-key indexes, then the fresh record's field/value pairs. No event: a long poll waits only for
// a task's end.
const BODY: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'status', 'index', 'source', 'owner', 'history', 'actions')
if not cur[1] then return 'MISSING' end
if cur[1] == 'REVOKED' then return cur[1] end
redis.call('DEL', KEYS[1])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if cur[3] then redis.call('HSET', KEYS[1], 'source', cur[3]) end
if cur[4] then redis.call('HSET', KEYS[1], 'owner', cur[4]) end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local log = cur[5] and cjson.decode(cur[5]) or {}
log[#log + 1] = {status = 'PENDING', at = ms, attempt = 0}
while #log > 50 do table.remove(log, 1) end
redis.call('HSET', KEYS[1], 'history', cjson.encode(log))
local actions = cur[6] and cjson.decode(cur[6]) or {}
actions[#actions + 1] = cjson.decode(ARGV[3])
redis.call('HSET', KEYS[1], 'actions', cjson.encode(actions))
-- A job's item stays in its job's index only (see `create`).
if not redis.call('HGET', KEYS[1], 'job') then
  redis.call('HSET', KEYS[1], 'index', ARGV[2])
  if cur[2] then redis.call('ZREM', KEYS[2], cur[2]) end
  if cur[4] then
    if cur[2] then redis.call('ZREM', ARGV[4] .. cur[4], cur[2]) end
    redis.call('ZADD', ARGV[4] .. cur[4], 0, ARGV[2])
  end
  redis.call('ZADD', KEYS[2], 0, ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 'OK'
";

impl StateStore {
    /// Puts a task back to PENDING with no attempts, `replayed` (by the key `by`) added to its actions: the
    /// operator's override when replaying a dead letter. Keeps the source, the owner, the history (a PENDING entry
    /// added) and the actions. Refused, changing nothing, when the record is gone ([`Update::Missing`]: erased or
    /// expired) or the task was cancelled ([`Update::Refused`] with REVOKED).
    pub async fn requeue(&self, envelope: &TaskEnvelope, by: Option<&str>) -> Result<Update, StateError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(BODY));
        let fresh = TaskRecord::pending(envelope, None);
        let entry = super::IndexEntry::of(fresh.id, fresh.created_at);
        let action = OperatorAction { at: chrono::Utc::now(), action: REPLAYED.to_owned(), by: by.map(str::to_owned) };
        let mut invocation = SCRIPT.key(self.keys.task(fresh.id));
        invocation
            .key(self.keys.index_all())
            .arg(if fresh.job.is_some() { self.item_ttl } else { self.ttl }.as_secs())
            .arg(entry.as_str())
            .arg(codec::json(&action))
            .arg(self.keys.index_of_owner(""));
        // The script appends to the stored history and actions rather than replacing them.
        for (field, value) in codec::to_fields(&fresh).into_iter().filter(|(f, _)| !matches!(*f, "history" | "actions"))
        {
            invocation.arg(field).arg(value);
        }
        let reply: String = self.run_durable(async |conn| invocation.invoke_async(conn).await).await?;
        Ok(match reply.as_str() {
            "OK" => Update::Applied,
            "MISSING" => Update::Missing,
            other => Update::Refused(other.parse().map_err(|reason| StateError::Corrupt { id: fresh.id, reason })?),
        })
    }
}

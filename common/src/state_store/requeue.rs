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
// prefix of the per-key indexes, 5 the fresh record (stored), 6 the task's id. No event: a long poll waits only for
// a task's end.
const BODY: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return 'MISSING' end
local cur = cjson.decode(raw)
if cur.s == 'REVOKED' then return cur.s end
local r = cjson.decode(ARGV[5])
r.src = cur.src
r.o = cur.o
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
-- Times in the history count from the creation time, which the replay moves.
local log = cur.h or {}
for _, change in ipairs(log) do change[2] = change[2] + cur.c - r.c end
log[#log + 1] = {'PENDING', ms - r.c, 0}
while #log > 50 do table.remove(log, 1) end
r.h = log
local actions = cur.ac or {}
actions[#actions + 1] = cjson.decode(ARGV[3])
r.ac = actions
redis.call('SET', KEYS[1], cjson.encode(r), 'EX', ARGV[1])
-- A job's item stays in its job's index only (see `create`).
if not r.j then
  local old = string.format('%013d:%s', cur.c, ARGV[6])
  redis.call('ZREM', KEYS[2], old)
  if r.o then
    redis.call('ZREM', ARGV[4] .. r.o, old)
    redis.call('ZADD', ARGV[4] .. r.o, 0, ARGV[2])
  end
  redis.call('ZADD', KEYS[2], 0, ARGV[2])
end
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
        let (key, shard) = (self.keys.task(fresh.id), self.keys.shard_of(fresh.id));
        let mut invocation = SCRIPT.key(&key);
        invocation
            .key(self.keys.index_all(shard))
            .arg(if fresh.job.is_some() { self.item_ttl } else { self.ttl }.as_secs())
            .arg(entry.as_str())
            .arg(codec::json(&action))
            .arg(self.keys.index_of_owner(shard, ""))
            .arg(codec::encode(&fresh))
            .arg(fresh.id.to_string());
        let (invocation, key) = (&invocation, &key);
        let reply: String = self
            .on_record(fresh.id, move || self.run_durable(key, async move |conn| invocation.invoke_async(conn).await))
            .await?;
        Ok(match reply.as_str() {
            "OK" => Update::Applied,
            "MISSING" => Update::Missing,
            other => Update::Refused(other.parse().map_err(|reason| StateError::Corrupt { id: fresh.id, reason })?),
        })
    }
}

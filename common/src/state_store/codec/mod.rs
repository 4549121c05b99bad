//! A [`TaskRecord`] as Redis keeps it: one string per task holding a compact JSON object, about 400 bytes for a
//! finished thumbnail. A hash of one field per record field cost 1,450 bytes (its history passes the listpack
//! limits, so Redis keeps it as a hash table); at 1,000 uploads a second and a day's lifetime that is the difference
//! between 290 GB of Redis and about 60.
//!
//! What makes it small: short keys; times as epoch milliseconds; arrays where field names would be most of the
//! bytes ([`compact`]: a state change is `["STARTED",12,1,"host:42"]`, its time in milliseconds since the record's
//! creation; an image `["jpeg",1920,1080,245760]`; the arguments `[100,100,"contain","jpeg"]`); nothing stored
//! that can be derived. The id is in the key, the
//! name follows from the id and the arguments, the index entry from the creation time; `attempts`, `started_at`,
//! `worker`, `finished_at`, `error`, `error_code` and `error_kind` are read from the history, which records each
//! with the state change that set it.
//!
//! The transition scripts decode, change and re-encode the value with Redis's `cjson`, which has two quirks this
//! reader allows for: an empty list comes back as `{}`, and a number may be written in exponent form.

mod compact;
pub mod legacy;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use compact::Change;

use crate::{
    job::JobId,
    task::{
        ImageInfo, Import, OperatorAction, RESIZE_TASK, Rendition, ResizeArgs, StateChange, TaskErrorCode, TaskId,
        TaskRecord, TaskStatus, ThumbnailName, WebhookLog,
    },
};

/// A value as JSON text.
pub fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("record fields always serialise")
}

/// The stored form. The key names are read and written by the Lua scripts too (`transition`, `requeue`).
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(rename = "s")]
    status: TaskStatus,
    #[serde(rename = "a", with = "compact::args")]
    args: ResizeArgs,
    #[serde(rename = "c", with = "millis")]
    created_at: DateTime<Utc>,
    #[serde(rename = "h", default)]
    history: Vec<Change>,
    #[serde(rename = "q", default, skip_serializing_if = "Option::is_none", with = "millis::optional")]
    next_retry_at: Option<DateTime<Utc>>,
    #[serde(rename = "src", default, skip_serializing_if = "Option::is_none", with = "compact::image")]
    source: Option<ImageInfo>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none", with = "compact::image")]
    result: Option<ImageInfo>,
    #[serde(rename = "rn", default, skip_serializing_if = "Vec::is_empty")]
    renditions: Vec<Rendition>,
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    callback_url: Option<String>,
    #[serde(rename = "wh", default, skip_serializing_if = "Option::is_none")]
    webhook: Option<WebhookLog>,
    #[serde(rename = "ac", default, skip_serializing_if = "Vec::is_empty")]
    actions: Vec<OperatorAction>,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    deduplicated_from: Option<TaskId>,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    import: Option<Import>,
    #[serde(rename = "j", default, skip_serializing_if = "Option::is_none")]
    job: Option<JobId>,
    #[serde(rename = "ro", default, skip_serializing_if = "Option::is_none")]
    rendition_of: Option<TaskId>,
    /// The task's name, stored only when it is not [`RESIZE_TASK`].
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    task: Option<String>,
}

/// The record as stored.
pub fn encode(record: &TaskRecord) -> String {
    let history = record.history.iter().map(|c| Change::of(c, record.created_at)).collect();
    json(&Stored {
        status: record.status,
        args: record.args,
        created_at: record.created_at,
        history,
        next_retry_at: record.next_retry_at,
        source: record.source.clone(),
        result: record.result.clone(),
        renditions: record.renditions.clone(),
        owner: record.owner.clone(),
        callback_url: record.callback_url.clone(),
        webhook: record.webhook.clone(),
        actions: record.actions.clone(),
        deduplicated_from: record.deduplicated_from,
        import: record.import.clone(),
        job: record.job,
        rendition_of: record.rendition_of,
        task: Some(&record.task).filter(|t| *t != RESIZE_TASK).cloned(),
    })
}

/// What a transition's fields look like stored, for the script to merge into the record: `result`, `renditions`
/// and `source` of a success.
pub fn success_fields(result: &ImageInfo, renditions: &[Rendition], source: Option<&ImageInfo>) -> String {
    let mut fields = serde_json::json!({ "r": compact::image::value(result) });
    if !renditions.is_empty() {
        fields["rn"] = serde_json::json!(renditions);
    }
    if let Some(source) = source {
        fields["src"] = compact::image::value(source);
    }
    fields.to_string()
}

/// The record of task `id` from its stored value.
pub fn decode(id: TaskId, text: &str) -> Result<TaskRecord, String> {
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    empty_objects_as_lists(&mut value);
    let stored: Stored = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let history: Vec<StateChange> = stored.history.into_iter().map(|c| c.into_change(stored.created_at)).collect();
    // The current run: what came after the latest PENDING (a replay starts a new one).
    let run = &history[history.iter().rposition(|c| c.status == TaskStatus::Pending).unwrap_or(0)..];
    let started = run.iter().rev().find(|c| c.status == TaskStatus::Started);
    let finished = run.last().filter(|c| stored.status.is_terminal() && c.status == stored.status);
    // A success clears the error of an earlier attempt; a retry's error stays while the next attempt runs.
    let failed = run.iter().rev().find(|c| c.error.is_some()).filter(|_| stored.status != TaskStatus::Success);
    let error_code = failed.and_then(|c| c.error_code);
    let name = ThumbnailName::primary(id, stored.args.format, &stored.renditions).to_string();
    Ok(TaskRecord {
        id,
        name,
        task: stored.task.unwrap_or_else(|| RESIZE_TASK.to_owned()),
        status: stored.status,
        // Every change records its attempt: the latest is the record's.
        attempts: history.last().map_or(0, |c| c.attempt),
        args: stored.args,
        created_at: stored.created_at,
        started_at: started.map(|c| c.at),
        finished_at: finished.map(|c| c.at),
        next_retry_at: stored.next_retry_at,
        worker: started.and_then(|c| c.worker.clone()),
        error: failed.and_then(|c| c.error.clone()),
        error_code,
        error_kind: error_code.filter(|_| stored.status == TaskStatus::Failure).map(TaskErrorCode::kind),
        source: stored.source,
        result: stored.result,
        renditions: stored.renditions,
        callback_url: stored.callback_url,
        webhook: stored.webhook,
        history,
        actions: stored.actions,
        owner: stored.owner,
        url: None,
        deduplicated_from: stored.deduplicated_from,
        import: stored.import,
        job: stored.job,
        rendition_of: stored.rendition_of,
        variants: Vec::new(),
    })
}

/// `cjson` encodes an empty Lua table, which is how it decoded an empty list, as `{}`. No object in a record is
/// ever empty (each has required fields), so every `{}` was a list.
fn empty_objects_as_lists(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) if map.is_empty() => *value = serde_json::Value::Array(Vec::new()),
        serde_json::Value::Object(map) => map.values_mut().for_each(empty_objects_as_lists),
        serde_json::Value::Array(items) => items.iter_mut().for_each(empty_objects_as_lists),
        _ => {}
    }
}

/// Times as epoch milliseconds, the Lua scripts' clock; read as a float too (`cjson` may write `1.7639e+12`).
mod millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(at.timestamp_millis())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let ms = f64::deserialize(deserializer)?.round() as i64;
        DateTime::from_timestamp_millis(ms).ok_or_else(|| serde::de::Error::custom("a time out of range"))
    }

    pub mod optional {
        use super::*;

        pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
            super::deserialize(deserializer).map(Some)
        }
    }
}

#[cfg(test)]
mod tests;

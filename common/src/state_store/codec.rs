//! A [`TaskRecord`] as the fields of a Redis hash and back: scalars as text, times as RFC 3339 (nanoseconds kept),
//! nested values as JSON. `None` fields are left out; fields this version does not know are ignored. The `history`
//! field is appended to by the transition script, which has only Redis's clock in milliseconds: its times are
//! stored as epoch milliseconds.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::task::{StateChange, TaskRecord};

/// The hash field holding the task's index entry (not part of the record).
pub const INDEX_FIELD: &str = "index";

/// A value as JSON text.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("record fields always serialise")
}

/// A record as hash fields; `None` fields are left out.
pub fn to_fields(record: &TaskRecord) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", record.id.to_string()),
        ("name", record.name.clone()),
        ("task", record.task.clone()),
        ("status", record.status.to_string()),
        ("attempts", record.attempts.to_string()),
        ("args", json(&record.args)),
        ("created_at", record.created_at.to_rfc3339()),
    ];
    let optional = [
        ("started_at", record.started_at.map(|t| t.to_rfc3339())),
        ("finished_at", record.finished_at.map(|t| t.to_rfc3339())),
        ("next_retry_at", record.next_retry_at.map(|t| t.to_rfc3339())),
        ("worker", record.worker.clone()),
        ("error", record.error.clone()),
        ("error_code", record.error_code.map(|c| c.as_str().to_owned())),
        ("error_kind", record.error_kind.map(|k| k.as_str().to_owned())),
        ("source", record.source.as_ref().map(json)),
        ("result", record.result.as_ref().map(json)),
        ("owner", record.owner.clone()),
        ("renditions", Some(&record.renditions).filter(|r| !r.is_empty()).map(json)),
        ("callback_url", record.callback_url.clone()),
        ("webhook", record.webhook.as_ref().map(json)),
        ("history", Some(stored_history(&record.history))),
        ("actions", Some(&record.actions).filter(|a| !a.is_empty()).map(json)),
        ("deduplicated_from", record.deduplicated_from.map(|id| id.to_string())),
        ("import", record.import.as_ref().map(json)),
        ("job", record.job.map(|id| id.to_string())),
        ("rendition_of", record.rendition_of.map(|id| id.to_string())),
    ];
    fields.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    fields
}

/// The state changes as stored: `at` in epoch milliseconds.
fn stored_history(history: &[StateChange]) -> String {
    let entries: Vec<serde_json::Value> = history
        .iter()
        .map(|change| {
            let mut entry = serde_json::to_value(change).expect("state changes always serialise");
            entry["at"] = change.at.timestamp_millis().into();
            entry
        })
        .collect();
    json(&entries)
}

/// The stored state changes with their `at` back as RFC 3339 (records written before the field existed have none).
fn parsed_history(stored: Option<serde_json::Value>) -> Result<serde_json::Value, String> {
    let mut entries = stored.unwrap_or_else(|| serde_json::json!([]));
    // cjson, in the transition script, writes an empty table as `{}`.
    if entries.as_object().is_some_and(serde_json::Map::is_empty) {
        entries = serde_json::json!([]);
    }
    for entry in entries.as_array_mut().ok_or("history: not a list")? {
        // Lua numbers are doubles: cjson may write a whole number of milliseconds in exponent form.
        let ms = entry["at"].as_f64().ok_or("history: a time is not in milliseconds")?.round() as i64;
        let at = DateTime::from_timestamp_millis(ms).ok_or("history: a time is out of range")?;
        entry["at"] = serde_json::to_value(at).map_err(|e| e.to_string())?;
    }
    Ok(entries)
}

/// Rebuilds a record from its hash fields.
pub fn from_fields(fields: &HashMap<String, String>) -> Result<TaskRecord, String> {
    let text = |name: &str| fields.get(name).cloned().ok_or_else(|| format!("field {name} is missing"));
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, String> {
        fields
            .get(name)
            .map(|v| DateTime::parse_from_rfc3339(v).map(|t| t.to_utc()).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    let parsed = |name: &str| -> Result<Option<serde_json::Value>, String> {
        fields.get(name).map(|v| serde_json::from_str(v).map_err(|e| format!("{name}: {e}"))).transpose()
    };
    let text_value = |name: &str| fields.get(name).map(|v| serde_json::Value::String(v.clone()));
    let value = serde_json::json!({
        "id": text("id")?,
        "name": text("name")?,
        "task": text("task")?,
        "status": text("status")?,
        "attempts": text("attempts")?.parse::<u32>().map_err(|e| format!("attempts: {e}"))?,
        "args": parsed("args")?,
        "created_at": time("created_at")?,
        "started_at": time("started_at")?,
        "finished_at": time("finished_at")?,
        "next_retry_at": time("next_retry_at")?,
        "worker": fields.get("worker"),
        "error": fields.get("error"),
        "error_code": text_value("error_code"),
        "error_kind": text_value("error_kind"),
        "source": parsed("source")?,
        "result": parsed("result")?,
        "owner": fields.get("owner"),
        "renditions": parsed("renditions")?.unwrap_or_else(|| serde_json::json!([])),
        "callback_url": fields.get("callback_url"),
        "webhook": parsed("webhook")?,
        "history": parsed_history(parsed("history")?)?,
        "actions": parsed("actions")?.unwrap_or_else(|| serde_json::json!([])),
        "deduplicated_from": fields.get("deduplicated_from"),
        "import": parsed("import")?,
        "job": fields.get("job"),
        "rendition_of": fields.get("rendition_of"),
    });
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Fit, ImageInfo, OutputFormat, ResizeArgs, TaskEnvelope, TaskErrorCode, TaskId};

    #[test]
    fn record_round_trips_through_hash_fields() {
        let args = ResizeArgs::new(10, 20, Fit::Fill, OutputFormat::Png);
        let large = ResizeArgs::new(640, 480, Fit::Contain, OutputFormat::Webp);
        let renditions = vec![("small".parse().unwrap(), args), ("large".parse().unwrap(), large)];
        let envelope = TaskEnvelope::with_renditions(TaskId::new(), renditions, Utc::now());
        let source = ImageInfo { format: "gif".into(), width: 4, height: 5, bytes: 60, thumbhash: None, frames: None };
        let mut record = TaskRecord::pending(&envelope, Some(source));
        record.error = Some("disk full".into());
        record.error_code = Some(TaskErrorCode::StoreFailed);
        record.error_kind = Some(TaskErrorCode::StoreFailed.kind());
        record.worker = Some("w:1".into());
        record.owner = Some("mobile-app".into());
        record.import = Some(crate::task::Import::Key("photos/a.gif".into()));
        record.job = Some(crate::job::JobId::new());
        record.renditions[1].result = record.source.clone();
        record.callback_url = Some("https://hooks.example.com/thumbq".into());
        record.webhook = Some(crate::task::WebhookLog {
            state: crate::task::WebhookState::Delivered,
            attempts: vec![crate::task::WebhookAttempt {
                attempt: 1,
                at: Utc::now(),
                status: Some(200),
                error: None,
                ms: 12,
            }],
        });
        record.history.push(crate::task::StateChange {
            status: crate::task::TaskStatus::Started,
            at: DateTime::from_timestamp_millis(1_763_900_000_123).unwrap(),
            attempt: 1,
            worker: Some("w:1".into()),
            error: None,
            error_code: None,
        });
        record.history.push(crate::task::StateChange {
            status: crate::task::TaskStatus::Retry,
            at: DateTime::from_timestamp_millis(1_763_900_000_456).unwrap(),
            attempt: 1,
            worker: None,
            error: Some("the image cannot be decoded: truncated".into()),
            error_code: Some(TaskErrorCode::CorruptImage),
        });
        record.actions.push(crate::task::OperatorAction { at: Utc::now(), action: "replayed".into(), by: None });
        // The history's times are kept to the millisecond, the script's precision.
        record.history[0].at = DateTime::from_timestamp_millis(record.created_at.timestamp_millis()).unwrap();
        let mut fields: HashMap<String, String> =
            to_fields(&record).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        fields.insert(INDEX_FIELD.into(), "not part of the record".into());
        // RFC 3339 keeps nanoseconds, so the record comes back identical.
        assert_eq!(from_fields(&fields).unwrap(), record);
        assert_eq!(fields["error_code"], "store_failed", "stored as its name, like the kind");
        // A record written before the history existed, or whose script wrote an empty table, reads back.
        fields.insert("history".into(), "{}".into());
        assert!(from_fields(&fields).unwrap().history.is_empty());
        fields.remove("history");
        assert!(from_fields(&fields).unwrap().history.is_empty());
        // A record written before codes existed reads back without one.
        fields.remove("error_code");
        assert_eq!(from_fields(&fields).unwrap().error_code, None);
    }
}

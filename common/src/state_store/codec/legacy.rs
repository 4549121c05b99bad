//! Records as versions before the packed value wrote them: one Redis hash per task, scalars as text, times as
//! RFC 3339, nested values as JSON, the `history` field's times in epoch milliseconds. Read only, to convert such a
//! record the first time this version meets it (see [`StateStore::convert_legacy`](super::super::StateStore)).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::task::TaskRecord;

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
    use crate::task::{FailureKind, TaskErrorCode, TaskStatus};

    /// A FAILURE record as the previous version wrote it (fields copied from a Redis of that version).
    fn written_by_the_previous_version() -> HashMap<String, String> {
        [
            ("id", "0193f6a4-3b52-7c3e-9a0e-3f1d2c4b5a69"),
            ("name", "0193f6a4-3b52-7c3e-9a0e-3f1d2c4b5a69.png"),
            ("task", "thumbq.resize"),
            ("status", "FAILURE"),
            ("attempts", "1"),
            ("args", r#"{"width":10,"height":20,"fit":"fill","format":"png"}"#),
            ("created_at", "2025-11-23T12:13:20.123456789+00:00"),
            ("started_at", "2025-11-23T12:13:20.200000000+00:00"),
            ("finished_at", "2025-11-23T12:13:20.456000000+00:00"),
            ("worker", "w:1"),
            ("error", "the image cannot be decoded: truncated"),
            ("error_code", "corrupt_image"),
            ("error_kind", "invalid_image"),
            ("source", r#"{"format":"gif","width":4,"height":5,"bytes":60}"#),
            ("owner", "mobile-app"),
            ("index", "1763900000123:0193f6a4-3b52-7c3e-9a0e-3f1d2c4b5a69"),
            (
                "history",
                r#"[{"status":"PENDING","at":1763900000123,"attempt":0},{"status":"STARTED","at":1.763900000200e+12,"attempt":1,"worker":"w:1"},{"status":"FAILURE","at":1763900000456,"attempt":1,"error":"the image cannot be decoded: truncated","error_code":"corrupt_image"}]"#,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn a_record_of_the_previous_version_reads_back() {
        let mut fields = written_by_the_previous_version();
        let record = from_fields(&fields).unwrap();
        assert_eq!(record.status, TaskStatus::Failure);
        assert_eq!(record.error_code, Some(TaskErrorCode::CorruptImage));
        assert_eq!(record.error_kind, Some(FailureKind::InvalidImage));
        assert_eq!(record.created_at.timestamp_nanos_opt(), Some(1_763_900_000_123_456_789));
        assert_eq!(record.source.unwrap().bytes, 60);
        assert_eq!(record.owner.as_deref(), Some("mobile-app"));
        // Lua wrote one time in exponent form; it reads back to the millisecond.
        assert_eq!(record.history[1].at.timestamp_millis(), 1_763_900_000_200);
        assert_eq!(record.history[2].error_code, Some(TaskErrorCode::CorruptImage));
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

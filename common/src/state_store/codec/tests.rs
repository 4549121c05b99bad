use super::*;
use crate::task::{FailureKind, Fit, OutputFormat, TaskEnvelope, WebhookAttempt, WebhookState};

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn change(status: TaskStatus, ms: i64, attempt: u32) -> StateChange {
    StateChange { status, at: at(ms), attempt, worker: None, error: None, error_code: None }
}

/// A task that failed once, then succeeded, as the transition script leaves it.
fn finished() -> TaskRecord {
    let args = ResizeArgs::new(100, 100, Fit::Contain, OutputFormat::Jpeg);
    let mut record = TaskRecord::pending(&TaskEnvelope::new(TaskId::new(), args, at(1_763_900_000_123)), None);
    record.source = Some(ImageInfo {
        format: "jpeg".into(),
        width: 1920,
        height: 1080,
        bytes: 245_760,
        thumbhash: None,
        frames: None,
    });
    let error = "the store failed: disk full".to_owned();
    record.history.extend([
        StateChange { worker: Some("host-a:4242".into()), ..change(TaskStatus::Started, 1_763_900_000_135, 1) },
        StateChange {
            error: Some(error),
            error_code: Some(TaskErrorCode::StoreFailed),
            ..change(TaskStatus::Retry, 1_763_900_000_170, 1)
        },
        StateChange { worker: Some("host-b:77".into()), ..change(TaskStatus::Started, 1_763_900_001_170, 2) },
        change(TaskStatus::Success, 1_763_900_001_200, 2),
    ]);
    record.status = TaskStatus::Success;
    record.attempts = 2;
    record.started_at = Some(at(1_763_900_001_170));
    record.finished_at = Some(at(1_763_900_001_200));
    record.worker = Some("host-b:77".into());
    record.result = Some(ImageInfo {
        format: "jpeg".into(),
        width: 100,
        height: 56,
        bytes: 3_000,
        thumbhash: Some("1QcSHQRnh493V4dIh4eXh1h4kJUI".into()),
        frames: None,
    });
    record
}

#[test]
fn a_finished_record_round_trips_and_its_derived_fields_follow_the_history() {
    let record = finished();
    let stored = encode(&record);
    assert_eq!(decode(record.id, &stored).unwrap(), record);
    // The point of the packed form: a quarter of the 1,450 bytes a hash of a record like this cost, though this
    // task ran twice.
    assert!(stored.len() < 330, "{} bytes: {stored}", stored.len());
    for derived in ["\"id\"", "\"name\"", &record.id.to_string(), "started_at", "finished_at", "error_kind"] {
        assert!(!stored.contains(derived), "{derived} is derived, not stored: {stored}");
    }
}

#[test]
fn errors_are_read_from_the_history_of_the_current_run() {
    let mut record = finished();
    // While the second attempt runs, the first one's error is still shown.
    record.history.pop();
    record.status = TaskStatus::Started;
    record.finished_at = None;
    record.result = None;
    record.error = Some("the store failed: disk full".into());
    record.error_code = Some(TaskErrorCode::StoreFailed);
    assert_eq!(decode(record.id, &encode(&record)).unwrap(), record);
    // A failure carries its kind.
    record.history.push(StateChange {
        error: Some("cannot decode".into()),
        error_code: Some(TaskErrorCode::CorruptImage),
        ..change(TaskStatus::Failure, 1_763_900_002_000, 2)
    });
    record.status = TaskStatus::Failure;
    (record.error, record.error_code) = (Some("cannot decode".into()), Some(TaskErrorCode::CorruptImage));
    record.error_kind = Some(FailureKind::InvalidImage);
    record.finished_at = Some(at(1_763_900_002_000));
    assert_eq!(decode(record.id, &encode(&record)).unwrap(), record);
    // A replay starts a new run: nothing of the previous one is current.
    record.history.push(change(TaskStatus::Pending, 1_763_900_003_000, 0));
    let replayed = decode(record.id, &encode(&TaskRecord { status: TaskStatus::Pending, ..record })).unwrap();
    assert_eq!(
        (replayed.started_at, replayed.finished_at, replayed.worker, replayed.error, replayed.error_kind),
        (None, None, None, None, None)
    );
    assert_eq!(replayed.history.len(), 6, "the history is kept whole");
}

#[test]
fn what_cjson_writes_back_reads() {
    let mut record = finished();
    record.webhook = Some(WebhookLog { state: WebhookState::Pending, attempts: Vec::new() });
    let mut value: serde_json::Value = serde_json::from_str(&encode(&record)).unwrap();
    // An empty list as `{}`, a time in exponent form, `/` escaped.
    value["wh"]["attempts"] = serde_json::json!({});
    let stored = value.to_string().replace("1763900000123", "1.763900000123e+12");
    assert!(stored.contains("e+12"), "{stored}");
    assert_eq!(decode(record.id, &stored).unwrap(), record);
    record.webhook = Some(WebhookLog {
        state: WebhookState::Delivered,
        attempts: vec![WebhookAttempt { attempt: 1, at: at(1_763_900_002_000), status: Some(200), error: None, ms: 9 }],
    });
    record.callback_url = Some("https://hooks.example.com/thumbq".into());
    let stored = encode(&record).replace('/', "\\/");
    assert_eq!(decode(record.id, &stored).unwrap(), record);
}

#[test]
fn a_renditions_task_is_named_after_its_first_rendition_and_other_fields_are_kept() {
    let small = ResizeArgs {
        quality: Some(70),
        focus: Some(crate::task::Focus { x: 0.3, y: 0.75 }),
        animated: true,
        ..ResizeArgs::new(10, 20, Fit::Cover, OutputFormat::Webp)
    };
    let large = ResizeArgs::new(640, 480, Fit::Contain, OutputFormat::Webp);
    let renditions = vec![("small".parse().unwrap(), small), ("large".parse().unwrap(), large)];
    let envelope = TaskEnvelope::with_renditions(TaskId::new(), renditions, at(1_763_900_000_000));
    let mut record = TaskRecord::pending(&envelope, None);
    record.owner = Some("mobile-app".into());
    // An animation without a thumbhash: a null holds the thumbhash's place.
    record.source =
        Some(ImageInfo { format: "gif".into(), width: 4, height: 5, bytes: 60, thumbhash: None, frames: Some(24) });
    record.import = Some(Import::Key("photos/a.gif".into()));
    record.job = Some(JobId::new());
    record.rendition_of = Some(TaskId::new());
    record.deduplicated_from = Some(TaskId::new());
    record.next_retry_at = Some(at(1_763_900_009_000));
    record.actions.push(OperatorAction { at: at(1_763_900_005_000), action: "replayed".into(), by: None });
    record.task = "thumbq.other".into();
    let back = decode(record.id, &encode(&record)).unwrap();
    assert_eq!(back, record);
    assert_eq!(back.name, format!("{}-small.webp", record.id));
}

#[test]
fn an_unreadable_value_is_an_error_not_a_panic() {
    for bad in ["", "[]", "{}", r#"{"s":"SUCCESS"}"#, r#"{"s":"NOPE","a":{},"c":0}"#] {
        assert!(decode(TaskId::new(), bad).is_err(), "{bad}");
    }
}

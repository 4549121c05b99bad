//! The Redis state machine, on real Redis: transitions only move forward, whatever order writers arrive in.

use chrono::Utc;
use thumbq_common::{
    TaskEnvelope, TaskId, TaskRecord, TaskStatus,
    state_store::{Among, StateStore, Update},
    task::{Fit, ImageInfo, OutputFormat, ResizeArgs, TaskErrorCode},
};

use crate::support::ScratchRedis;

async fn store_with_task() -> (StateStore, TaskId, ScratchRedis) {
    let scratch = ScratchRedis::new();
    let store = StateStore::new(&scratch.0).unwrap();
    let args = ResizeArgs::new(10, 10, Fit::Cover, OutputFormat::Png);
    let envelope = TaskEnvelope::new(TaskId::new(), args, Utc::now());
    let source = ImageInfo { format: "png".into(), width: 20, height: 20, bytes: 99, thumbhash: None, frames: None };
    store.create(&TaskRecord::pending(&envelope, Some(source))).await.unwrap();
    (store, envelope.id, scratch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_started_never_overwrites_success_or_retry() {
    let (store, id, _scratch) = store_with_task().await;
    let result = ImageInfo { format: "png".into(), width: 10, height: 10, bytes: 50, thumbhash: None, frames: None };
    assert_eq!(store.start(id, 1, "w1").await.unwrap(), Update::Applied);
    assert_eq!(store.retry(id, 1, "disk full", TaskErrorCode::StoreFailed, Utc::now()).await.unwrap(), Update::Applied);
    let retrying = store.get(id).await.unwrap().unwrap();
    assert_eq!(retrying.error_code, Some(TaskErrorCode::StoreFailed), "RETRY carries its error's code");
    assert_eq!(retrying.history.last().unwrap().error_code, Some(TaskErrorCode::StoreFailed), "so does its history");
    assert_eq!(store.start(id, 1, "late").await.unwrap(), Update::Refused(TaskStatus::Retry));
    assert_eq!(store.start(id, 2, "w2").await.unwrap(), Update::Applied);
    assert_eq!(
        store.retry(id, 1, "stale", TaskErrorCode::StoreFailed, Utc::now()).await.unwrap(),
        Update::Refused(TaskStatus::Started)
    );
    assert_eq!(store.succeed(id, 2, &result, &[], None).await.unwrap(), Update::Applied);
    assert_eq!(store.start(id, 3, "late").await.unwrap(), Update::Refused(TaskStatus::Success));
    assert_eq!(
        store.fail(id, 2, "late", TaskErrorCode::StoreFailed).await.unwrap(),
        Update::Refused(TaskStatus::Success)
    );

    let record = store.get(id).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Success);
    assert_eq!((record.attempts, record.worker.as_deref()), (2, Some("w2")));
    assert_eq!(record.error, None, "SUCCESS clears the error of earlier attempts");
    assert_eq!(record.error_code, None, "and its code");
    assert_eq!(record.next_retry_at, None);
    assert_eq!(record.result, Some(result));
    // Counted once, with its latency from the upload, in the bucket of the moment it ended.
    store.flush_history().await.unwrap();
    let buckets = store.history().await.unwrap();
    let ended: Vec<_> = buckets.iter().filter(|b| b.success + b.failure + b.revoked > 0).collect();
    let [bucket] = ended[..] else { panic!("one bucket counts the task: {ended:?}") };
    assert_eq!((bucket.success, bucket.failure, bucket.revoked), (1, 0, 0));
    let waited = (Utc::now() - record.created_at).num_milliseconds() as u64;
    assert!(bucket.latency_ms_max.is_some_and(|max| max <= waited), "{bucket:?} after {waited} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_of_an_unknown_task_are_refused_as_missing() {
    let scratch = ScratchRedis::new();
    let store = StateStore::new(&scratch.0).unwrap();
    let id = TaskId::new();
    assert_eq!(store.start(id, 1, "w").await.unwrap(), Update::Missing);
    assert_eq!(store.get(id).await.unwrap(), None, "a refused transition creates nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transition_script_agrees_with_the_state_machine_on_every_pair_and_listings_follow() {
    let (store, _, scratch) = store_with_task().await;
    let mut conn = scratch.redis().await;
    let result = ImageInfo { format: "png".into(), width: 1, height: 1, bytes: 1, thumbhash: None, frames: None };
    for current in TaskStatus::ALL {
        for current_attempt in 1..=2 {
            for next in [TaskStatus::Started, TaskStatus::Retry, TaskStatus::Success, TaskStatus::Failure] {
                for attempt in 1..=3 {
                    // A record in `current` at `current_attempt`, indexed under `current`.
                    let args = ResizeArgs::new(1, 1, Fit::Cover, OutputFormat::Png);
                    let envelope = TaskEnvelope::new(TaskId::new(), args, Utc::now());
                    let mut record = TaskRecord::pending(&envelope, None);
                    record.status = current;
                    record.attempts = current_attempt;
                    // As the record says it: its history ends with the change that brought it there.
                    record.history.push(thumbq_common::task::StateChange {
                        status: current,
                        at: record.created_at,
                        attempt: current_attempt,
                        worker: None,
                        error: None,
                        error_code: None,
                    });
                    store.create(&record).await.unwrap();
                    let id = envelope.id;
                    let update = match next {
                        TaskStatus::Started => store.start(id, attempt, "w").await,
                        TaskStatus::Retry => {
                            store.retry(id, attempt, "e", TaskErrorCode::StoreFailed, Utc::now()).await
                        }
                        TaskStatus::Success => store.succeed(id, attempt, &result, &[], None).await,
                        _ => store.fail(id, attempt, "e", TaskErrorCode::StoreFailed).await,
                    }
                    .unwrap();
                    let allowed = current.may_become(current_attempt, next, attempt);
                    let case = format!("{current}@{current_attempt} -> {next}@{attempt}");
                    assert_eq!(update == Update::Applied, allowed, "{case}: {update:?}");
                    let now_in = if allowed { next } else { current };
                    assert_eq!(store.get(id).await.unwrap().unwrap().status, now_in, "{case}");
                    let members: Vec<String> = redis::cmd("ZRANGE")
                        .arg(store.keys().index_all(store.keys().shard_of(id)))
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    let indexed = members.iter().filter(|m| m.ends_with(&id.to_string())).count();
                    assert_eq!(indexed, 1, "{case}: a task stays in the index of every task, once");
                    // A listing by status finds the task under its status only.
                    let other = if now_in == TaskStatus::Started { TaskStatus::Success } else { TaskStatus::Started };
                    for status in [now_in, other] {
                        let page = store.list(Some(status), Among::All, 1000, None).await.unwrap();
                        let listed = page.records.iter().any(|r| r.id == id);
                        assert_eq!(listed, status == now_in, "{case}: listed under {status}");
                    }
                }
            }
        }
    }
    store.flush_history().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_upload_deletes_what_earlier_versions_kept_and_a_status_listing_pages_through_others() {
    let scratch = ScratchRedis::new();
    let mut conn = scratch.redis().await;
    let prefix = &scratch.0.key_prefix;
    let legacy = [format!("{prefix}index:SUCCESS"), format!("{prefix}index:PENDING"), format!("{prefix}finished")];
    for key in &legacy {
        let _: () = redis::cmd("ZADD").arg(key).arg(0).arg("old").query_async(&mut conn).await.unwrap();
    }
    let store = StateStore::new(&scratch.0).unwrap();
    // 120 tasks, one in every 40 SUCCESS: a page of SUCCESS tasks looks past the others in rounds.
    let mut successes = Vec::new();
    for i in 0..120 {
        let args = ResizeArgs::new(1, 1, Fit::Cover, OutputFormat::Png);
        let envelope = TaskEnvelope::new(TaskId::new(), args, Utc::now() + chrono::Duration::milliseconds(i));
        store.create(&TaskRecord::pending(&envelope, None)).await.unwrap();
        if i % 40 == 0 {
            let result =
                ImageInfo { format: "png".into(), width: 1, height: 1, bytes: 1, thumbhash: None, frames: None };
            store.start(envelope.id, 1, "w").await.unwrap();
            store.succeed(envelope.id, 1, &result, &[], None).await.unwrap();
            successes.push(envelope.id);
        }
    }
    let exists: usize = redis::cmd("EXISTS").arg(&legacy[..]).query_async(&mut conn).await.unwrap();
    assert_eq!(exists, 0, "the per-status indexes and the finished set are gone");
    let (mut listed, mut cursor) = (Vec::new(), None);
    loop {
        let page = store.list(Some(TaskStatus::Success), Among::All, 2, cursor.as_ref()).await.unwrap();
        assert!(page.records.iter().all(|r| r.status == TaskStatus::Success));
        listed.extend(page.records.iter().map(|r| r.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    successes.reverse();
    assert_eq!(listed, successes, "every SUCCESS task once, newest first");
    store.flush_history().await.unwrap();
}

/// A record as the previous version wrote it: a hash, `history` times in epoch milliseconds.
async fn write_previous_version_record(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    status: &str,
) -> TaskId {
    let id = TaskId::new();
    let created = Utc::now() - chrono::Duration::seconds(5);
    let ms = created.timestamp_millis();
    let mut history = vec![serde_json::json!({"status": "PENDING", "at": ms, "attempt": 0})];
    let mut fields = vec![
        ("id", id.to_string()),
        ("name", format!("{id}.png")),
        ("task", "thumbq.resize".to_owned()),
        ("status", status.to_owned()),
        ("args", r#"{"width":10,"height":10,"fit":"cover","format":"png"}"#.to_owned()),
        ("created_at", created.to_rfc3339()),
        ("source", r#"{"format":"png","width":20,"height":20,"bytes":99}"#.to_owned()),
        ("index", format!("{ms:013}:{id}")),
    ];
    if status == "SUCCESS" {
        history.push(serde_json::json!({"status": "STARTED", "at": ms + 10, "attempt": 1, "worker": "old:1"}));
        history.push(serde_json::json!({"status": "SUCCESS", "at": ms + 30, "attempt": 1}));
        fields.extend([
            ("attempts", "1".to_owned()),
            ("worker", "old:1".to_owned()),
            ("started_at", (created + chrono::Duration::milliseconds(10)).to_rfc3339()),
            ("finished_at", (created + chrono::Duration::milliseconds(30)).to_rfc3339()),
            ("result", r#"{"format":"png","width":10,"height":10,"bytes":50}"#.to_owned()),
        ]);
    } else {
        fields.push(("attempts", "0".to_owned()));
    }
    fields.push(("history", serde_json::Value::from(history).to_string()));
    let key = format!("{prefix}task:{id}");
    let _: () = redis::pipe()
        .hset_multiple(&key, &fields)
        .expire(&key, 3600)
        .zadd(format!("{prefix}index:all"), format!("{ms:013}:{id}"), 0)
        .query_async(conn)
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_an_earlier_version_wrote_are_converted_when_first_met_and_keep_their_lifetime() {
    let scratch = ScratchRedis::new();
    let mut conn = scratch.redis().await;
    let prefix = scratch.0.key_prefix.clone();
    let store = StateStore::new(&scratch.0).unwrap();
    let finished = write_previous_version_record(&mut conn, &prefix, "SUCCESS").await;
    let pending = write_previous_version_record(&mut conn, &prefix, "PENDING").await;
    let listed = write_previous_version_record(&mut conn, &prefix, "SUCCESS").await;

    // Read: every field as the earlier version showed it.
    let record = store.get(finished).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts, record.worker.as_deref()), (TaskStatus::Success, 1, Some("old:1")));
    assert_eq!(record.result.map(|r| r.bytes), Some(50));
    assert_eq!(record.name, format!("{finished}.png"));
    assert_eq!(record.history.len(), 3);
    let key = format!("{prefix}task:{finished}");
    let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await.unwrap();
    let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut conn).await.unwrap();
    assert_eq!(kind, "string", "converted in place");
    assert!((3590..=3600).contains(&ttl), "its lifetime kept: {ttl}");

    // A task in flight during the upgrade finishes: the transition converts it first.
    let result = ImageInfo { format: "png".into(), width: 10, height: 10, bytes: 50, thumbhash: None, frames: None };
    assert_eq!(store.start(pending, 1, "new:1").await.unwrap(), Update::Applied);
    assert_eq!(store.succeed(pending, 1, &result, &[], None).await.unwrap(), Update::Applied);
    let record = store.get(pending).await.unwrap().unwrap();
    assert_eq!((record.status, record.worker.as_deref()), (TaskStatus::Success, Some("new:1")));
    let statuses: Vec<TaskStatus> = record.history.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [TaskStatus::Pending, TaskStatus::Started, TaskStatus::Success]);

    // A listing meeting one converts it too, and lists them all.
    let page = store.list(None, Among::All, 10, None).await.unwrap();
    let ids: std::collections::HashSet<TaskId> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [finished, pending, listed].into());
    let kind: String = redis::cmd("TYPE").arg(format!("{prefix}task:{listed}")).query_async(&mut conn).await.unwrap();
    assert_eq!(kind, "string");
    store.flush_history().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_record_costs_redis_a_few_hundred_bytes() {
    let (store, id, scratch) = store_with_task().await;
    let result = ImageInfo {
        format: "png".into(),
        width: 10,
        height: 10,
        bytes: 50,
        thumbhash: Some("1QcSHQRnh493V4dIh4eXh1h4kJUI".into()),
        frames: None,
    };
    store.start(id, 1, "host-a:4242").await.unwrap();
    store.succeed(id, 1, &result, &[], None).await.unwrap();
    let mut conn = scratch.redis().await;
    let key = format!("{}task:{id}", scratch.0.key_prefix);
    let bytes: u64 = redis::cmd("MEMORY").arg("USAGE").arg(&key).query_async(&mut conn).await.unwrap();
    // One string; a hash of one field per record field was 1,576 bytes by the same measure.
    assert!(bytes < 600, "{bytes} bytes");
    let value: String = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
    assert_eq!(store.get(id).await.unwrap().unwrap().result, Some(result), "{value}");
    store.flush_history().await.unwrap();
}

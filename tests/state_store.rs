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
                        .arg(store.keys().index_all())
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

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
}

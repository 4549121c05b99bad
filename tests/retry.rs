//! Transient failures on batches of 50: retried through RabbitMQ delay queues with growing delays, then SUCCESS once
//! the fault heals, or FAILURE and a dead letter for every task once attempts run out.

use std::{path::PathBuf, time::Duration};

use image::ImageFormat;
use thumbq_common::{
    TaskStatus,
    broker::REASON_HEADER,
    dead_letters::{DeadLetters, Handled, Selection, Treatment},
    fixtures::sample_image,
    settings::StoreLocation,
    task::FailureKind,
};

use crate::support::{
    Backend, TestApp, on_each_store, proxy::Proxy, queues::header_text, services::address_of, spawn_api_with_store,
    watcher::statuses,
};

const BATCH: usize = 50;

fn images() -> Vec<Vec<u8>> {
    (0..BATCH).map(|i| sample_image(ImageFormat::Png, 64 + i as u32, 64)).collect()
}

/// How a test breaks its worker's file store and heals it.
enum StoreFault {
    /// A file where the local store's thumbnail folder should be (permissions do not stop root).
    Folder(PathBuf),
    /// The worker reaches the S3 server through a proxy that can cut it off.
    Link(Proxy),
}

impl StoreFault {
    /// Starts `app`'s worker with a store this fault can break.
    async fn start_worker(app: &TestApp) -> Self {
        let Some(s3) = &app.s3 else {
            app.start_worker().await;
            return Self::Folder(app.thumbnails_dir());
        };
        let proxy = Proxy::start(address_of(&s3.endpoint)).await;
        let mut settings = app.settings.clone();
        settings.store.location =
            StoreLocation::Object(s3.location_via(&format!("http://127.0.0.1:{}", proxy.port), "thumbq"));
        let store = thumbq_common::file_store::open(&settings.store).await.unwrap();
        app.start_worker_with(settings, store).await;
        Self::Link(proxy)
    }

    fn set(&self, broken: bool) {
        match (self, broken) {
            (Self::Folder(dir), broken) => crate::support::break_folder(dir, broken),
            (Self::Link(proxy), true) => proxy.cut(),
            (Self::Link(proxy), false) => proxy.restore(),
        }
    }
}

on_each_store!(a_store_fault_is_retried_and_every_task_succeeds_once_it_heals);
async fn a_store_fault_is_retried_and_every_task_succeeds_once_it_heals(backend: Backend) {
    // Delays of 0.2, 0.8, 3.2, 12.8 s: room to heal before anything runs out of attempts.
    let app = spawn_api_with_store(backend, |s| {
        s.retry.base = Duration::from_millis(200);
        s.retry.factor = 4;
        s.retry.cap = Duration::from_secs(20);
        s.retry.max_attempts = 5;
    })
    .await;
    let fault = StoreFault::start_worker(&app).await;
    fault.set(true);
    let mut watcher = app.watch().await;
    let accepted = app.upload_batch(images(), 4).await;

    let all_retried = async || {
        for task in &accepted {
            if !app.task(task.id).await.history.iter().any(|change| change.status == TaskStatus::Retry) {
                return false;
            }
        }
        true
    };
    crate::support::eventually("every task is retried", all_retried).await;
    // The error stays on the record through the next attempt's STARTED, so this holds whichever state it is in.
    let retrying = app.task(accepted[0].id).await;
    assert!(retrying.error.as_deref().unwrap_or("").contains("file store"), "{retrying:?}");

    fault.set(false);
    assert_eq!(app.assert_all_finished(&accepted).await, BATCH);
    watcher.until_count(TaskStatus::Success, BATCH).await;
    let history = statuses(&app.task(accepted[0].id).await.history);
    assert_eq!(history[..3], [TaskStatus::Pending, TaskStatus::Started, TaskStatus::Retry]);
    for task in &accepted {
        assert!(app.task(task.id).await.attempts >= 2);
    }
    app.stop().await;
}

on_each_store!(a_lasting_fault_fails_every_task_after_the_last_attempt_and_the_dead_letters_can_be_replayed);
async fn a_lasting_fault_fails_every_task_after_the_last_attempt_and_the_dead_letters_can_be_replayed(
    backend: Backend,
) {
    // Delays jittered within [d/2, d] for d = 0.1, 0.4, 1.6 s: the ranges do not overlap, so they must grow.
    let app = spawn_api_with_store(backend, |s| {
        s.retry.base = Duration::from_millis(100);
        s.retry.factor = 4;
        s.retry.cap = Duration::from_secs(10);
        s.retry.max_attempts = 4;
        // Every task's attempt at once: a failing S3 attempt takes most of a second (the client's own retries of
        // a refused connection), and the measured delays must not include waiting behind the rest of the batch.
        s.worker.concurrency = BATCH as u16;
    })
    .await;
    let fault = StoreFault::start_worker(&app).await;
    fault.set(true);
    let accepted = app.upload_batch(images(), 4).await;

    // Follow one task through its attempts: each delay is the time from its RETRY to its next STARTED, both read
    // from the record's history, which the transition script stamps with Redis's clock. (Timing the events as
    // they arrived measured the test's own lag on a loaded machine: two events read back to back gave 0 ms.)
    let task = accepted[0].id;
    crate::support::eventually("the first task fails for good", async || {
        app.task(task).await.status == TaskStatus::Failure
    })
    .await;
    let history = app.task(task).await.history;
    let delays: Vec<i64> = history
        .windows(2)
        .filter(|w| w[0].status == TaskStatus::Retry && w[1].status == TaskStatus::Started)
        .map(|w| (w[1].at - w[0].at).num_milliseconds())
        .collect();
    assert_eq!(delays.len(), 3, "{delays:?}");
    assert!(delays.windows(2).all(|w| w[0] < w[1]), "delays grow: {delays:?}");

    assert_eq!(app.assert_all_finished(&accepted).await, 0);
    for task in &accepted {
        let response = app.wait_for_thumbnail(&task.name).await;
        assert_eq!(response.status(), 500, "retries exhausted on an internal fault");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!((&body["error"]["code"], &body["error"]["kind"]), (&"store_failed".into(), &"internal".into()));
        let record = app.task(task.id).await;
        assert_eq!((record.attempts, record.error_kind), (4, Some(FailureKind::Internal)));
    }
    let letters = app.peek_dead_letters().await;
    assert_eq!(letters.len(), BATCH, "every exhausted task is dead-lettered once");
    for (body, headers) in &letters {
        let envelope = thumbq_common::TaskEnvelope::from_json(body).unwrap();
        assert_eq!(envelope.attempt, 4);
        assert_eq!(header_text(headers, REASON_HEADER), "retries_exhausted");
    }

    // The operator fixes the fault and replays: every task runs again from attempt 1 and succeeds; poison stays.
    fault.set(false);
    app.publish_raw(b"not a task", None).await;
    let poisoned = async || app.peek_dead_letters().await.len() > BATCH;
    crate::support::eventually("the poison message is dead-lettered", poisoned).await;
    let dead = DeadLetters::open(&app.settings, "test replay").await.unwrap();
    let replayed = dead.handle(&app.states, Treatment::Replay, Selection::All { limit: None }, None).await.unwrap();
    dead.close().await;
    assert_eq!(replayed, Handled { tasks: BATCH, kept: 1, discarded: 0, skipped: 0 });
    assert_eq!(app.assert_all_finished(&accepted).await, BATCH);
    for task in &accepted {
        assert_eq!(app.task(task.id).await.attempts, 1, "a replay starts the attempts afresh");
    }
    let left = app.drain_dead_letters().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, b"not a task");
    app.stop().await;
}

//! Delivery guarantees: duplicates are harmless, poison messages are dead-lettered.

use image::ImageFormat;
use thumbq_common::{TaskEnvelope, TaskStatus, broker::REASON_HEADER, fixtures::sample_image, task::RESIZE_TASK};

use crate::support::{TestApp, spawn_api, spawn_api_configured};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_delivered_twice_leaves_one_correct_thumbnail() {
    let app = spawn_api().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Jpeg, 300, 200), "").await;
    // A second copy of the same message, as after a worker crash before its ack, queued before any worker runs.
    let record = app.task(accepted.id).await;
    let duplicate = TaskEnvelope {
        version: thumbq_common::task::ENVELOPE_VERSION,
        id: accepted.id,
        task: RESIZE_TASK.into(),
        args: record.args,
        renditions: Vec::new(),
        callback_url: None,
        // As the API published it (`THUMBQ_KEEP_ORIGINALS` is on by default).
        keep_original: true,
        source_task: None,
        import: None,
        job: None,
        attempt: 1,
        created_at: record.created_at,
    };
    app.publish_raw(&duplicate.to_json(), Some(&accepted.id.to_string())).await;
    let mut watcher = app.watch().await;
    app.start_worker().await;
    app.start_worker().await;

    watcher.until(accepted.id, TaskStatus::Success).await;
    let first = app.wait_for_thumbnail(&accepted.name).await.bytes().await.unwrap();
    assert_eq!(image::load_from_memory(&first).unwrap().width(), 100);

    // After SUCCESS, a third copy is skipped: the record and the thumbnail stay as they are.
    let finished = app.task(accepted.id).await;
    app.publish_raw(&duplicate.to_json(), Some(&accepted.id.to_string())).await;
    let probe = app.upload_ok(sample_image(ImageFormat::Png, 16, 16), "").await;
    app.wait_for_thumbnail(&probe.name).await; // the queue has moved past the third copy
    assert_eq!(app.task(accepted.id).await, finished);
    assert_eq!(app.wait_for_thumbnail(&accepted.name).await.bytes().await.unwrap(), first);
    let files = TestApp::files_in(&app.thumbnails_dir());
    assert_eq!(files.len(), 2, "one thumbnail per task, no temporary files: {files:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_and_the_worker_goes_on() {
    let app = spawn_api().await;
    // A known task whose message arrives in an envelope version this worker does not run.
    let stranded = app.upload_ok(sample_image(ImageFormat::Png, 16, 16), "").await;
    app.purge_work_queue().await;
    let mut future_version =
        serde_json::to_value(TaskEnvelope::new(stranded.id, app.task(stranded.id).await.args, chrono::Utc::now()))
            .unwrap();
    future_version["version"] = 2.into();
    app.publish_raw(future_version.to_string().as_bytes(), None).await;
    app.start_worker().await;
    let unknown_task = serde_json::json!({
        "version": 1, "id": uuid::Uuid::new_v4(), "task": "celery.backend_cleanup",
        "args": {"width": 1, "height": 1, "fit": "cover", "format": "png"}, "attempt": 1, "created_at": chrono::Utc::now(),
    });
    app.publish_raw(b"\x00\xffnot json at all", Some("garbage")).await;
    app.publish_raw(unknown_task.to_string().as_bytes(), None).await;

    let good = app.upload_batch((0..50).map(|i| sample_image(ImageFormat::Png, 40 + i, 40)).collect(), 4).await;
    assert_eq!(app.assert_all_finished(&good).await, 50, "the worker is unharmed");

    let mut letters = Vec::new();
    crate::support::eventually("three dead letters", async || {
        letters.extend(app.drain_dead_letters().await);
        letters.len() >= 3
    })
    .await;
    assert_eq!(letters.len(), 3, "every poison message is dead-lettered");
    let bodies: Vec<&[u8]> = letters.iter().map(|(body, _)| body.as_slice()).collect();
    assert!(bodies.contains(&&b"\x00\xffnot json at all"[..]));
    for (_, headers) in &letters {
        let reason = crate::support::queues::header_text(headers, REASON_HEADER);
        assert_eq!(reason, "poison");
    }
    let record = app.task(stranded.id).await;
    assert_eq!(record.status, TaskStatus::Failure, "a task named by a poison message is not left PENDING");
    assert!(record.error.unwrap().contains("unsupported envelope version 2"));
    assert_eq!(record.error_code, Some(thumbq_common::task::TaskErrorCode::InvalidMessage));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_tag_every_line_about_a_task_with_its_id() {
    let app = spawn_api().await;
    let worker = crate::support::process::WorkerProcess::spawn_logging_json(&app.settings, "logger");
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 16, 16), "").await;
    assert_eq!(app.wait_for_thumbnail(&accepted.name).await.status(), 200);
    let log = worker.log().await;

    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert!(lines.len() >= 3, "{log}");
    let id = accepted.id.to_string();
    let about_task: Vec<&serde_json::Value> = lines.iter().filter(|l| l.to_string().contains(&id)).collect();
    assert!(!about_task.is_empty(), "the task is logged: {log}");
    for line in about_task {
        assert_eq!(line["span"]["task_id"], id.as_str(), "a line about the task carries task_id: {line}");
    }
    assert!(lines.iter().any(|l| l["span"]["task_id"] == id.as_str() && l["message"] == "task handled"), "{log}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_of_a_finished_task_that_cannot_delete_its_original_is_acked_not_retried() {
    // Long retry delays: a retry scheduled by mistake would sit in a delay queue where the test can see it.
    let app = spawn_api_configured(|s| {
        s.retry.base = std::time::Duration::from_secs(60);
        s.retry.cap = std::time::Duration::from_secs(60);
        // Originals deleted after success, as the clean-up this test breaks.
        s.store.keep_originals = false;
    })
    .await;
    let store = crate::support::faulty_store::FaultyStore::wrap(app.store.clone());
    let mut settings = app.settings.clone();
    settings.worker.concurrency = 1; // one delivery at a time: the duplicate is settled before the probe starts
    app.start_worker_with(settings, store.clone()).await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 64, 48), "").await;
    assert_eq!(app.wait_for_thumbnail(&accepted.name).await.status(), 200);
    let finished = app.task(accepted.id).await;

    store.fail_deletes(true);
    let duplicate = TaskEnvelope::new(accepted.id, finished.args, finished.created_at);
    app.publish_raw(&duplicate.to_json(), Some(&accepted.id.to_string())).await;
    let probe = app.upload_ok(sample_image(ImageFormat::Png, 16, 16), "").await;
    assert_eq!(app.wait_for_thumbnail(&probe.name).await.status(), 200);

    assert!(store.deletes.load(std::sync::atomic::Ordering::SeqCst) >= 2, "the duplicate tried to clean up");
    for queue in app.topology.queue_names() {
        assert_eq!(app.queue_depth(queue).await, 0, "{queue} holds a message: the duplicate was not simply acked");
    }
    assert_eq!(app.task(accepted.id).await, finished, "the finished record is untouched");
    app.stop().await;
}

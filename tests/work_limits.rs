//! Bounded work per task (issue 23, item 10): an upload whose thumbnails would hold a core for too long is refused
//! before anything is kept, and a task that runs past its time limit fails instead of running on.

use std::time::Duration;

use image::ImageFormat;
use thumbq_common::{
    TaskStatus,
    fixtures::sample_image,
    task::{FailureKind, TaskErrorCode},
};

use crate::support::{TestApp, eventually, spawn_api, spawn_api_configured};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_renditions_near_2048_in_avif_at_quality_100_are_refused_and_nothing_is_kept() {
    let app = spawn_api().await;
    let jpeg = || sample_image(ImageFormat::Jpeg, 640, 480);
    // The attack: one small upload that took 48 s of worker CPU.
    let sizes: Vec<String> = (0..8).map(|i| format!("{0}x{0}", 2048 - i)).collect();
    let query = format!("sizes={}&format=avif&quality=100&fit=fill", sizes.join(","));
    let response = app.upload(jpeg(), &query).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap_or_default();
    let limit = format!("limit of {} ms", app.settings.limits.max_task_work_ms);
    assert!(message.contains(&limit) && message.contains("fewer or smaller sizes"), "{body}");
    assert!(TestApp::files_in(&app.originals_dir()).is_empty(), "a refused upload stores nothing");
    assert!(app.redis_keys().await.is_empty(), "a refused upload records nothing");
    assert_eq!(app.queue_depth(&app.settings.amqp.queue).await, 0, "a refused upload queues nothing");

    // The dearest single thumbnail, and every default preset at once, stay within the default limit.
    app.upload_ok(jpeg(), "width=2048&height=2048&fit=fill&format=avif&quality=100").await;
    app.upload_ok(jpeg(), "preset=thumb,small,medium,large&format=avif&quality=100").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_over_its_time_limit_fails_for_good_with_time_limit_and_its_message_is_acked() {
    // No time at all: the pipeline gives up at its first check, after the decode.
    let app = spawn_api_configured(|s| s.worker.task_time_limit = Duration::ZERO).await;
    app.start_worker().await;
    let task = app.upload_ok(sample_image(ImageFormat::Jpeg, 640, 480), "preset=thumb,small").await;

    let failed = async || app.task(task.id).await.status == TaskStatus::Failure;
    eventually("the task fails", failed).await;
    let record = app.task(task.id).await;
    assert_eq!(record.error_kind, Some(FailureKind::TimeLimit));
    assert_eq!(record.error_code, Some(TaskErrorCode::TimeLimit));
    let error = record.error.unwrap_or_default();
    assert!(error.starts_with("time limit: ") && error.contains("0 of 2 thumbnail(s)"), "{error}");
    assert_eq!(record.attempts, 1, "not retried");
    let download = app.get(&format!("/thumbnails/{}", task.name)).await;
    assert_eq!(download.status(), 422, "the upload's own weight, not a fault of the service");
    assert_eq!(download.json::<serde_json::Value>().await.unwrap()["error"]["code"], "time_limit");

    let queue = app.settings.amqp.queue.clone();
    eventually("the message is taken", async || app.queue_depth(&queue).await == 0).await;
    eventually("the original is deleted", async || TestApp::files_in(&app.originals_dir()).is_empty()).await;
    app.stop_workers().await;
    assert_eq!(app.queue_depth(&queue).await, 0, "acknowledged, not put back");
    assert!(app.drain_dead_letters().await.is_empty(), "a permanent failure is not a dead letter");
    assert!(app.stored_thumbnails().await.is_empty(), "nothing was stored");
    app.stop().await;
}

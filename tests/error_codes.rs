//! Task records carry a stable error code beside the message (issue 24, "Errors a program can branch on"): the same
//! code in `GET /tasks/{id}`, the listing, the download's `error.code` and the dead-letter listing.

use image::ImageFormat;
use thumbq_common::{
    TaskEnvelope, TaskStatus,
    fixtures::sample_image,
    task::{FailureKind, TaskErrorCode},
};

use crate::support::{TestApp, eventually, spawn_api_with, spawn_app};

/// The record's code and kind as `GET /tasks/{id}` answers them, read as JSON: what a client sees on the wire.
async fn wire_code(app: &TestApp, id: impl std::fmt::Display) -> (serde_json::Value, serde_json::Value) {
    let record: serde_json::Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
    (record["error_code"].clone(), record["error_kind"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_image_fails_with_corrupt_image_in_its_record_the_listing_and_its_download() {
    let app = spawn_app().await;
    let jpeg = sample_image(ImageFormat::Jpeg, 640, 480);
    let broken = app.upload_ok(jpeg[..jpeg.len() / 2].to_vec(), "").await;

    let download = app.wait_for_thumbnail(&broken.name).await;
    assert_eq!(download.status(), 422);
    let body: serde_json::Value = download.json().await.unwrap();
    assert_eq!(body["error"], serde_json::json!({"code": "corrupt_image", "kind": "invalid_image"}), "{body}");
    assert_eq!(wire_code(&app, broken.id).await, ("corrupt_image".into(), "invalid_image".into()));
    let page: serde_json::Value = app.get("/tasks?status=FAILURE").await.json().await.unwrap();
    let listed = page["tasks"].as_array().unwrap().iter().find(|t| t["id"] == broken.id.to_string()).cloned();
    assert_eq!(listed.unwrap_or_default()["error_code"], "corrupt_image", "{page}");
    let record = app.task(broken.id).await;
    let failure = record.history.last().unwrap();
    assert_eq!((failure.status, failure.error_code), (TaskStatus::Failure, Some(TaskErrorCode::CorruptImage)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_original_is_gone_fails_with_original_missing_and_answers_500() {
    let app = spawn_api_with(|_| {}).await;
    let task = app.upload_ok(sample_image(ImageFormat::Png, 32, 32), "").await;
    for file in TestApp::files_in(&app.originals_dir()) {
        std::fs::remove_file(file).unwrap();
    }
    app.start_worker().await;

    eventually("the task fails", async || app.task(task.id).await.status == TaskStatus::Failure).await;
    let record = app.task(task.id).await;
    assert_eq!(record.error_code, Some(TaskErrorCode::OriginalMissing));
    assert_eq!(record.error_kind, Some(FailureKind::Internal), "the kind is the code's");
    let download = app.get(&format!("/thumbnails/{}", task.name)).await;
    assert_eq!(download.status(), 500);
    let body: serde_json::Value = download.json().await.unwrap();
    assert_eq!(body["error"], serde_json::json!({"code": "original_missing", "kind": "internal"}), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_worker_cannot_run_is_invalid_message_in_its_record_and_the_dead_letter_listing() {
    let app = spawn_api_with(|_| {}).await;
    // A known task whose message arrives in an envelope version this worker does not run.
    let stranded = app.upload_ok(sample_image(ImageFormat::Png, 16, 16), "").await;
    app.purge_work_queue().await;
    let envelope = TaskEnvelope::new(stranded.id, app.task(stranded.id).await.args, chrono::Utc::now());
    let mut future_version = serde_json::to_value(envelope).unwrap();
    future_version["version"] = 2.into();
    app.publish_raw(future_version.to_string().as_bytes(), None).await;
    app.start_worker().await;

    eventually("the task fails", async || app.task(stranded.id).await.status == TaskStatus::Failure).await;
    assert_eq!(wire_code(&app, stranded.id).await, ("invalid_message".into(), "internal".into()));
    eventually("the message is dead-lettered", async || !app.peek_dead_letters().await.is_empty()).await;
    let listing: serde_json::Value = app.get("/dead-letters").await.json().await.unwrap();
    assert_eq!(listing["dead_letters"][0]["error_code"], "invalid_message", "{listing}");
    app.stop().await;
}

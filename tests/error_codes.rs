//! Task records carry a stable error code beside the message (issue 24, "Errors a program can branch on"): the same
//! code in `GET /tasks/{id}`, the listing, the history and the download's `error.code`. (The dead-letter listing's
//! code is checked in console.rs, a poison message's in delivery.rs.)

use image::ImageFormat;
use thumbq_common::{
    TaskStatus,
    fixtures::{sample_image, truncated_jpeg},
    task::{FailureKind, TaskErrorCode},
};

use crate::support::{TestApp, eventually, spawn_api, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_image_fails_with_corrupt_image_in_its_record_the_listing_and_its_download() {
    let app = spawn_app().await;
    let broken = app.upload_ok(truncated_jpeg(640, 480), "").await;

    let download = app.wait_for_thumbnail(&broken.name).await;
    assert_eq!(download.status(), 422);
    let body: serde_json::Value = download.json().await.unwrap();
    assert_eq!(body["error"], serde_json::json!({"code": "corrupt_image", "kind": "invalid_image"}), "{body}");
    // As a client reads it on the wire.
    let record: serde_json::Value = app.get(&format!("/tasks/{}", broken.id)).await.json().await.unwrap();
    assert_eq!((&record["error_code"], &record["error_kind"]), (&"corrupt_image".into(), &"invalid_image".into()));
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
    let app = spawn_api().await;
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

//! Kept originals (`THUMBQ_KEEP_ORIGINALS`, `keep_original`) and renditions made from them later
//! (`POST /tasks/{id}/renditions`).

use image::{GenericImageView, ImageFormat};
use thumbq_api::routes::thumbnails::Accepted;
use thumbq_common::{fixtures::sample_image, task::TaskStatus};

use crate::support::{Backend, TestApp, eventually, on_each_store, spawn_app, spawn_app_with_store};

/// `POST /tasks/{id}/renditions?<query>`.
async fn renditions_later(app: &TestApp, id: impl std::fmt::Display, query: &str) -> reqwest::Response {
    app.client.post(format!("{}/tasks/{id}/renditions?{query}", app.base)).send().await.unwrap()
}

on_each_store!(an_original_is_kept_and_more_renditions_are_made_from_it_later);
async fn an_original_is_kept_and_more_renditions_are_made_from_it_later(backend: Backend) {
    let app = spawn_app_with_store(backend).await;
    let first = app.upload_ok(sample_image(ImageFormat::Jpeg, 640, 480), "").await;
    assert_eq!(app.download_image(&first.name).await.dimensions(), (100, 100));
    eventually("the task has ended", async || app.task(first.id).await.status == TaskStatus::Success).await;
    assert_eq!(app.stored_originals().await, vec![first.id], "kept after its success");

    let response = renditions_later(&app, first.id, "sizes=64x48,320x240&format=webp").await;
    assert_eq!(response.status(), 202);
    let later: Accepted = response.json().await.unwrap();
    assert_ne!(later.id, first.id, "a task of its own");
    let files: Vec<&str> = later.renditions.iter().map(|r| r.file.as_str()).collect();
    assert_eq!(files, [format!("{}-64x48.webp", later.id), format!("{}-320x240.webp", later.id)]);
    for (rendition, size) in later.renditions.iter().zip([(64, 48), (320, 240)]) {
        assert_eq!(app.download_image(&rendition.file).await.dimensions(), size);
    }
    let record = app.task(later.id).await;
    assert_eq!(record.status, TaskStatus::Success);
    assert_eq!(record.source.map(|s| (s.format, s.width)), Some(("jpeg".to_owned(), 640)), "the original's");
    eventually("the later task has ended", async || app.task(later.id).await.finished_at.is_some()).await;
    assert_eq!(app.stored_originals().await, vec![first.id], "the later task neither copies nor deletes it");

    // Erasing the first task erases its original: nothing more can be made from it.
    let deleted = app.client.delete(format!("{}/thumbnails/{}", app.base, first.name)).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(app.stored_originals().await.is_empty());
    assert_eq!(renditions_later(&app, first.id, "sizes=10x10").await.status(), 404, "its record went with it");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_original_not_kept_is_deleted_and_renditions_later_get_409() {
    let app = spawn_app().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 64, 48), "keep_original=false").await;
    app.download_image(&accepted.name).await;
    eventually("the original is deleted", async || app.stored_originals().await.is_empty()).await;
    let response = renditions_later(&app, accepted.id, "sizes=32x24").await;
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "original_not_kept", "{body}");
    for (query, status) in [("sizes=0x0", 400), ("widht=5", 400)] {
        let kept = app.upload_ok(sample_image(ImageFormat::Png, 64, 48), "").await;
        app.download_image(&kept.name).await;
        assert_eq!(renditions_later(&app, kept.id, query).await.status(), status, "{query}");
    }
    let unknown = thumbq_common::task::TaskId::new();
    assert_eq!(renditions_later(&app, unknown, "sizes=10x10").await.status(), 404);
    assert_eq!(renditions_later(&app, "not-a-task", "sizes=10x10").await.status(), 400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_setting_off_originals_are_deleted_after_success() {
    let app = crate::support::spawn_api_configured(|s| s.store.keep_originals = false).await;
    app.start_worker().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 64, 48), "").await;
    app.download_image(&accepted.name).await;
    eventually("the original is deleted", async || app.stored_originals().await.is_empty()).await;
    // Unless the upload asks to keep it.
    let kept = app.upload_ok(sample_image(ImageFormat::Png, 64, 48), "keep_original=true").await;
    app.download_image(&kept.name).await;
    eventually("the task has ended", async || app.task(kept.id).await.finished_at.is_some()).await;
    assert_eq!(app.stored_originals().await, vec![kept.id]);
    app.stop().await;
}

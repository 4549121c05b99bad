//! `dedupe=true`: the same original with the same parameters again gets copies of the first task's thumbnails, at
//! once, without a second decode; anything else is a task of its own.

use image::ImageFormat;
use thumbq_common::{fixtures::sample_image, task::TaskStatus};

use crate::support::{Backend, on_each_store, spawn_app_with_store};

on_each_store!(the_same_original_and_parameters_again_get_copies_without_a_second_decode);
async fn the_same_original_and_parameters_again_get_copies_without_a_second_decode(backend: Backend) {
    let app = spawn_app_with_store(backend).await;
    let photo = sample_image(ImageFormat::Jpeg, 640, 480);
    let query = "dedupe=true&sizes=64x48,32x24&format=webp";
    let first = app.upload_ok(photo.clone(), query).await;
    let made = app.wait_for_thumbnail(&first.renditions[0].file).await.bytes().await.unwrap();
    assert_eq!(app.task(first.id).await.status, TaskStatus::Success);

    let again = app.upload_ok(photo.clone(), query).await;
    assert_ne!(again.id, first.id, "a task of its own");
    assert_eq!(again.status, TaskStatus::Success, "done at once");
    let record = app.task(again.id).await;
    assert_eq!((record.status, record.deduplicated_from, record.attempts), (TaskStatus::Success, Some(first.id), 0));
    assert!(record.worker.is_none() && record.started_at.is_none(), "no worker decoded it");
    assert_eq!(record.renditions[1].result.as_ref().map(|r| (r.width, r.height)), Some((32, 24)));
    let copied = app.wait_for_thumbnail(&again.renditions[0].file).await.bytes().await.unwrap();
    assert_eq!(copied, made, "the same bytes, under its own name");

    // Another parameter, another image, or no dedupe: a task that runs.
    for (bytes, query) in [
        (photo.clone(), "dedupe=true&sizes=64x48,32x24&format=png"),
        (sample_image(ImageFormat::Jpeg, 641, 480), "dedupe=true&sizes=64x48,32x24&format=webp"),
        (photo.clone(), "sizes=64x48,32x24&format=webp"),
    ] {
        let other = app.upload_ok(bytes, query).await;
        assert_eq!(other.status, TaskStatus::Pending, "{query}");
        app.wait_for_thumbnail(&other.renditions[0].file).await;
        assert_eq!(app.task(other.id).await.deduplicated_from, None, "{query}");
    }
    // Erasing the first leaves the copy whole.
    let deleted = app.client.delete(format!("{}/thumbnails/{}", app.base, first.name)).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get(&format!("/thumbnails/{}", again.renditions[1].file)).await.status(), 200);
    app.stop().await;
}

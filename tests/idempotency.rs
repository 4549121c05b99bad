//! `Idempotency-Key` on uploads: a retry gets the first answer and makes no second task, also while the first is
//! being stored; the same key on another request is a 422; a failed first request leaves the key free.

use image::ImageFormat;
use thumbq_api::routes::thumbnails::Accepted;
use thumbq_common::fixtures::sample_image;

use crate::support::{TestApp, spawn_app};

/// `POST /thumbnails?<query>` of `bytes` with `Idempotency-Key: key`.
async fn upload(app: &TestApp, key: &str, bytes: Vec<u8>, query: &str) -> reqwest::Response {
    let form = reqwest::multipart::Form::new().part("image", reqwest::multipart::Part::bytes(bytes));
    let url = format!("{}/thumbnails?{query}", app.base);
    app.client.post(url).header("idempotency-key", key).multipart(form).send().await.unwrap()
}

async fn accepted(response: reqwest::Response) -> (Accepted, String) {
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    (response.json().await.unwrap(), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_key_gets_the_first_answer_and_makes_no_second_task() {
    let app = spawn_app().await;
    let photo = sample_image(ImageFormat::Jpeg, 320, 240);
    let (first, location) = accepted(upload(&app, "upload-1", photo.clone(), "width=64&height=48").await).await;
    let (again, again_location) = accepted(upload(&app, "upload-1", photo.clone(), "width=64&height=48").await).await;
    assert_eq!((again.id, again.url, again_location), (first.id, first.url.clone(), location));
    assert_eq!(app.stored_originals().await, vec![first.id], "one task");
    assert_eq!(app.download_image(&first.name).await.width(), 64);

    // Another request under the same key: refused, nothing made.
    for (bytes, query) in
        [(photo.clone(), "width=65&height=48"), (sample_image(ImageFormat::Png, 20, 20), "width=64&height=48")]
    {
        let response = upload(&app, "upload-1", bytes, query).await;
        assert_eq!(response.status(), 422, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "idempotency_mismatch");
    }
    // Another key: another task.
    let (other, _) = accepted(upload(&app, "upload-2", photo, "width=64&height=48").await).await;
    assert_ne!(other.id, first.id);
    assert_eq!(app.stored_originals().await.len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_make_one_task_and_a_failed_first_frees_the_key() {
    let app = spawn_app().await;
    // A large upload, so that the second request arrives while the first is still being stored.
    let photo = sample_image(ImageFormat::Png, 2000, 1500);
    let (a, b) = tokio::join!(upload(&app, "same", photo.clone(), ""), upload(&app, "same", photo.clone(), ""));
    let ((a, _), (b, _)) = (accepted(a).await, accepted(b).await);
    assert_eq!(a.id, b.id, "one task for both");
    assert_eq!(app.stored_originals().await, vec![a.id]);

    // A refused first request (not an image) leaves the key free for the real upload.
    assert_eq!(upload(&app, "retry-me", b"not an image".to_vec(), "").await.status(), 415);
    let (made, _) = accepted(upload(&app, "retry-me", sample_image(ImageFormat::Png, 20, 20), "").await).await;
    assert_ne!(made.id, a.id);
    for bad in ["has space", &"k".repeat(256)] {
        assert_eq!(upload(&app, bad, photo.clone(), "").await.status(), 400, "{bad}");
    }
    app.stop().await;
}

//! What only an object store does: presigned redirects, start-up checks of the bucket, readiness. The end-to-end
//! suites that run on both stores (upload and download, retries, a killed worker, replay) are in their own files,
//! as their `on_s3_` twins.

use std::time::Duration;

use image::{GenericImageView, ImageFormat};
use thumbq_common::{file_store, fixtures::sample_image, settings::StoreLocation};

use crate::support::{Backend, s3::S3Server, spawn_api_with_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redirects_a_download_is_a_302_to_a_presigned_url_that_serves_the_thumbnail() {
    let app = spawn_api_with_store(Backend::S3, |s| s.store.download_redirect = Some(Duration::from_secs(120))).await;
    app.start_worker().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Jpeg, 640, 480), "width=120&height=90").await;
    app.wait_for_thumbnail(&accepted.name).await; // follows the redirect, so it waits for SUCCESS

    let no_follow = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = no_follow.get(format!("{}/thumbnails/{}", app.base, accepted.name)).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["cache-control"], "private, max-age=60");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let s3 = app.s3.as_ref().unwrap();
    assert!(
        location.starts_with(&format!("{}/{}/thumbq/thumbnails/{}?", s3.endpoint, s3.bucket, accepted.name)),
        "{location}"
    );
    assert!(location.contains("X-Amz-Signature=") && location.contains("X-Amz-Expires=120"), "{location}");

    // The store serves the bytes itself, with the API's content type and caching.
    let stored = no_follow.get(&location).send().await.unwrap();
    assert_eq!(stored.status(), 200);
    assert_eq!(stored.headers()["content-type"], "image/jpeg");
    assert_eq!(stored.headers()["cache-control"], "public, max-age=31536000, immutable");
    let image = image::load_from_memory(&stored.bytes().await.unwrap()).unwrap();
    assert_eq!(image.dimensions(), (120, 90));

    // No redirect to nothing: a name that was never made is a 404 from the API.
    let missing = no_follow.get(format!("{}/thumbnails/{}.png", app.base, uuid::Uuid::new_v4())).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_stops_start_up_with_the_stores_own_message() {
    let server = S3Server::start().await;
    let mut location = server.location("thumbq");
    location.url = "s3://no-such-bucket/thumbq".into();
    let mut settings = crate::support::test_settings().store;
    settings.location = StoreLocation::Object(location);
    let error = file_store::open(&settings).await.err().expect("a missing bucket is refused");
    let message = error.to_string();
    assert!(message.contains("s3://no-such-bucket/thumbq is not usable"), "{message}");
    assert!(message.contains("NoSuchBucket") || message.contains("does not exist"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_reports_an_object_store_that_stopped_answering() {
    let mut app = spawn_api_with_store(Backend::S3, |s| s.store.timeout = Duration::from_secs(2)).await;
    assert_eq!(app.get("/ready").await.status(), 200);
    drop(app.s3.take()); // the S3 server stops
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["redis"], "ok");
    assert!(body["checks"]["store"].as_str().unwrap().starts_with("the file store is unavailable"), "{body}");
    app.stop().await;
}

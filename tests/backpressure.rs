//! Backpressure: a full work queue refuses uploads at the broker (503, nothing kept), and the bytes of uploads in
//! flight are bounded, so a burst of maximum-size uploads cannot exhaust the API's memory.

use image::ImageFormat;
use reqwest::StatusCode;
use thumbq_common::fixtures::sample_image;

use crate::support::{TestApp, eventually, process::ApiProcess, spawn_api_configured};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_queue_depth_uploads_get_503_and_nothing_is_kept() {
    let app = spawn_api_configured(|s| s.amqp.max_queue_depth = 3).await;
    let image = || sample_image(ImageFormat::Png, 32, 32);
    // A quorum queue refuses once it holds *more* than its x-max-length: the fourth task is still taken.
    for _ in 0..4 {
        app.upload_ok(image(), "").await;
    }
    let refused = app.upload(image(), "").await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("queue is full"), "{body}");
    assert_eq!(TestApp::files_in(&app.originals_dir()).len(), 4, "the refused original is withdrawn");
    let listed = app.get("/tasks").await.json::<thumbq_api::routes::tasks::TaskPage>().await.unwrap().tasks;
    assert_eq!(listed.len(), 4, "the refused task's record is withdrawn");
    assert_eq!(app.queue_depth(&app.settings.amqp.queue).await, 4);

    // Once workers drain the queue, uploads are accepted again.
    app.start_worker().await;
    let queue = app.settings.amqp.queue.clone();
    eventually("the queue drains", async || app.queue_depth(&queue).await == 0).await;
    app.upload_ok(image(), "").await;
    app.stop().await;
}

/// Peak resident memory an API process gains while 32 clients each send a maximum-size (25 MiB) upload at once.
async fn peak_growth_for_32_maximum_uploads(upload_memory_mb: u32) -> (u64, Vec<StatusCode>) {
    let app = spawn_api_configured(|s| s.limits.upload_memory_mb = upload_memory_mb).await;
    let api = ApiProcess::spawn(&app.settings).await;
    let client = reqwest::Client::new();
    // Warm up the process's allocator and connections with one small upload.
    let form = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(sample_image(ImageFormat::Png, 8, 8)));
    assert_eq!(client.post(format!("{}/thumbnails", api.base)).multipart(form).send().await.unwrap().status(), 202);
    let before = api.peak_rss_mib();
    // Not an image: each is read whole, then refused (415), so nothing reaches the disk or the queue.
    let body = bytes::Bytes::from(vec![b'x'; app.settings.limits.max_upload_bytes]);
    let mut uploads = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (client, url, body) = (client.clone(), format!("{}/thumbnails", api.base), body.clone());
        uploads.spawn(async move {
            client.post(url).header("content-type", "image/png").body(body).send().await.unwrap().status()
        });
    }
    let statuses = uploads.join_all().await;
    let grown = api.peak_rss_mib() - before;
    api.kill().await;
    app.stop().await;
    (grown, statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_maximum_size_uploads_at_once_stay_within_the_upload_memory() {
    let (grown, statuses) = peak_growth_for_32_maximum_uploads(128).await;
    for status in &statuses {
        assert!([StatusCode::UNSUPPORTED_MEDIA_TYPE, StatusCode::SERVICE_UNAVAILABLE].contains(status), "{status}");
    }
    assert!(statuses.contains(&StatusCode::UNSUPPORTED_MEDIA_TYPE), "uploads were read: {statuses:?}");
    eprintln!("API peak grew by {grown} MiB for 32 × 25 MiB uploads within a 128 MiB budget");
    assert!(grown <= 128 + 32, "the API's peak memory grew by {grown} MiB");
}

//! Bad input and missing services: the right status, a JSON `{"error": …, "code": …}` body, and nothing left behind.

use image::ImageFormat;
use thumbq_common::{
    TaskStatus,
    fixtures::{png_header, sample_image, truncated_jpeg},
    task::FailureKind,
};

use crate::support::{TestApp, spawn_api, spawn_api_configured, spawn_app};

/// Asserts the status and that the body is `{"error": "<non-empty message>", "code": "<snake_case>"}`; returns the
/// message and the code.
async fn error_of(response: reqwest::Response, status: u16) -> (String, String) {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap_or_else(|| panic!("no error message in {body}")).to_owned();
    let code = body["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}")).to_owned();
    assert!(!message.is_empty() && !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    (message, code)
}

/// [`error_of`], for tests that read the message.
async fn expect_error(response: reqwest::Response, status: u16) -> String {
    error_of(response, status).await.0
}

/// Asserts the status and the code of an error answer: what a program branches on.
async fn expect_code(response: reqwest::Response, status: u16, code: &str) {
    let (message, got) = error_of(response, status).await;
    assert_eq!(got, code, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_are_not_usable_images_are_refused_with_the_right_status() {
    let app = spawn_api().await;
    let png = || sample_image(ImageFormat::Png, 32, 32);

    expect_code(app.upload(Vec::new(), "").await, 400, "missing_image").await;
    expect_code(app.upload(b"just some text, named x.png".to_vec(), "").await, 415, "not_an_image").await;
    // Media that names other media: FFmpeg would follow them (docs/security.md#videos); thumbq never takes them.
    let playlist = b"#EXTM3U\n#EXTINF:2,\nhttp://127.0.0.1:9/segment.ts\n#EXT-X-ENDLIST\n".to_vec();
    expect_code(app.upload(playlist, "").await, 415, "not_an_image").await;
    expect_code(app.upload(b"ffconcat version 1.0\nfile '/etc/passwd'\n".to_vec(), "").await, 415, "not_an_image")
        .await;
    // A Photoshop document: known, and declined (docs/api.md says why).
    expect_code(app.upload(b"8BPS\0\x01\0\0\0\0\0\0\0\x03".to_vec(), "").await, 415, "unsupported_format").await;
    expect_code(app.upload(png_header(100_000, 100_000), "").await, 422, "too_many_pixels").await;
    let broken = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRbroken".to_vec();
    expect_code(app.upload(broken, "").await, 422, "unreadable_image").await;

    let wrong_field = expect_error(app.upload_field("file", png(), "").await, 400).await;
    assert!(wrong_field.contains("`image`") && wrong_field.contains("file"), "{wrong_field}");
    expect_code(app.upload_raw(png(), "text/plain", "").await, 415, "unsupported_content_type").await;
    expect_code(app.upload_raw(png(), "", "").await, 400, "missing_image").await;
    expect_error(app.upload_raw(Vec::new(), "image/png", "").await, 400).await;

    for query in ["width=0", "height=2049", "width=abc", "fit=zoom", "format=tiff"] {
        expect_code(app.upload(png(), query).await, 400, "invalid_parameter").await;
    }
    expect_code(app.upload(png(), "widht=10").await, 400, "unknown_parameter").await;
    assert!(TestApp::files_in(&app.originals_dir()).is_empty(), "refused uploads store nothing");
    assert!(app.redis_keys().await.is_empty(), "refused uploads record nothing");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_the_size_limit_is_refused_with_413() {
    let app = spawn_api_configured(|s| s.limits.max_upload_bytes = 10_000).await;
    let big = sample_image(ImageFormat::Bmp, 100, 100); // 30 KB of pixels
    assert!(big.len() > 10_000);
    expect_code(app.upload(big.clone(), "").await, 413, "too_large").await;
    expect_error(app.upload_raw(big, "image/bmp", "").await, 413).await;
    let small = sample_image(ImageFormat::Png, 8, 8);
    assert_eq!(app.upload(small, "").await.status(), 202);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_parameters_on_downloads_are_refused() {
    let app = spawn_api().await;
    let id = uuid::Uuid::new_v4();
    expect_error(app.get(&format!("/thumbnails/{id}.png")).await, 404).await;
    expect_error(app.get(&format!("/tasks/{id}")).await, 404).await;
    expect_error(app.get("/tasks/not-a-uuid").await, 400).await;
    expect_error(app.get(&format!("/thumbnails/{id}.png?wait=31")).await, 400).await;
    expect_error(app.get(&format!("/thumbnails/{id}.png?wait=-1")).await, 400).await;
    expect_error(app.get("/no/such/route").await, 404).await;

    // Path traversal, raw and encoded: never a file from outside the thumbnail folder.
    std::fs::write(app.store_dir().join("secret.png"), b"secret").unwrap();
    for path in [
        "/thumbnails/..%2F..%2Fetc%2Fpasswd",
        "/thumbnails/..%2Fsecret.png",
        "/thumbnails/%2E%2E%2Fsecret.png",
        "/thumbnails/..%5Csecret.png",
        "/thumbnails/secret.png",
        &format!("/thumbnails/{id}.png%00.txt"),
    ] {
        let response = app.get(path).await;
        let status = response.status().as_u16();
        assert!(status == 400 || status == 404, "{path} answered {status}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("root:") && !body.contains("secret\""), "{path} leaked {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap_or_else(|_| panic!("{path} answered non-JSON {body}"));
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_jpeg_fails_with_an_error_and_the_worker_goes_on() {
    let app = spawn_app().await;
    let broken = app.upload_ok(truncated_jpeg(640, 480), "").await;
    let good = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "").await;

    let response = app.wait_for_thumbnail(&broken.name).await;
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "FAILURE", "error": {"code": "corrupt_image", "kind": "invalid_image"}})
    );
    let record = app.task(broken.id).await;
    assert_eq!(record.status, TaskStatus::Failure);
    assert_eq!(record.error_kind, Some(FailureKind::InvalidImage));
    assert!(record.error.as_deref().unwrap_or("").contains("truncated"), "{record:?}");
    assert_eq!(record.attempts, 1, "a permanent failure is not retried");

    assert_eq!(app.wait_for_thumbnail(&good.name).await.status(), 200, "the next task still succeeds");
    assert!(app.drain_dead_letters().await.is_empty(), "an invalid image is not a dead letter");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rabbitmq_unreachable_uploads_get_503_and_leave_nothing_behind() {
    let app = spawn_api_configured(|s| {
        s.amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into(); // nothing listens on port 1
        s.amqp.timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let response = app.upload(sample_image(ImageFormat::Png, 32, 32), "").await;
    assert_eq!(response.headers()["retry-after"], "5");
    let message = expect_error(response, 503).await;
    assert!(message.contains("rabbitmq"), "{message}");
    assert!(TestApp::files_in(&app.originals_dir()).is_empty(), "no original is left behind");
    assert!(app.redis_keys().await.is_empty(), "no task record is left behind");

    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200, "downloads and task records are still served");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!((body["status"].as_str(), body["checks"]["redis"].as_str()), (Some("degraded"), Some("ok")));
    assert_ne!(body["checks"]["rabbitmq"], "ok");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_unreachable_uploads_get_503_and_leave_nothing_behind() {
    let app = spawn_api_configured(|s| {
        s.redis.url = "redis://127.0.0.1:1".into();
        s.redis.timeout = std::time::Duration::from_millis(500);
    })
    .await;
    let response = app.upload(sample_image(ImageFormat::Png, 32, 32), "").await;
    let message = expect_error(response, 503).await;
    assert!(message.contains("redis"), "{message}");
    assert!(TestApp::files_in(&app.originals_dir()).is_empty());
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["rabbitmq"], "ok");
    assert_ne!(ready["checks"]["redis"], "ok");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_made_outside_the_handlers_are_json_too() {
    let app = spawn_api_configured(|s| s.http.request_timeout = std::time::Duration::from_secs(1)).await;
    let method = app.client.delete(format!("{}/health", app.base)).send().await.unwrap();
    assert_eq!(method.headers()["allow"], "GET,HEAD");
    let message = expect_error(method, 405).await;
    assert!(message.contains("Allow"), "{message}");

    // No worker: a long poll outlasts the 1 s request timeout.
    let pending = app.upload_ok(sample_image(ImageFormat::Png, 8, 8), "").await;
    expect_error(app.get(&format!("/thumbnails/{}?wait=5", pending.name)).await, 408).await;

    expect_error(app.get(&format!("/health?{}", "a".repeat(10_000))).await, 414).await;
    let big_header = app.client.get(format!("{}/health", app.base)).header("x-big", "b".repeat(20_000));
    expect_error(big_header.send().await.unwrap(), 431).await;
    expect_error(app.get("/tasks/%FF%FE").await, 400).await;
    expect_error(app.get("/thumbnails/%C0%AF.png").await, 400).await;
    expect_error(app.get("/docs/no-such-file.js").await, 404).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_broker_that_accepts_and_goes_silent_every_upload_answers_within_the_amqp_timeout() {
    let silent = crate::support::proxy::SilentServer::start().await;
    let timeout = std::time::Duration::from_secs(1);
    let app = spawn_api_configured(|s| {
        s.amqp.url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", silent.port);
        s.amqp.timeout = timeout;
    })
    .await;
    let uploads = (0..8).map(|i| {
        let app = &app;
        async move {
            let started = std::time::Instant::now();
            let response = app.upload(sample_image(ImageFormat::Png, 16 + i, 16), "").await;
            (response.status().as_u16(), started.elapsed())
        }
    });
    let ready = async {
        let started = std::time::Instant::now();
        (app.get("/ready").await.status().as_u16(), started.elapsed())
    };
    let (answers, ready) = tokio::join!(futures_util::future::join_all(uploads), ready);
    // Uploads are refused; readiness, which RabbitMQ does not decide, answers within the same bound.
    let expected: Vec<u16> = answers.iter().map(|_| 503).chain([200]).collect();
    for ((status, took), expected) in answers.into_iter().chain([ready]).zip(expected) {
        assert_eq!(status, expected);
        assert!(took < timeout + std::time::Duration::from_secs(1), "answered after {took:?}");
    }
    assert!(TestApp::files_in(&app.originals_dir()).is_empty(), "refused uploads leave no original");
    app.stop().await;
}

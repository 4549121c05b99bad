//! Imports (`POST /thumbnails` with a JSON body): `{"source": URL}` fetched by a worker through the address guard,
//! and `{"key": KEY}` read from the import store (`THUMBQ_IMPORT_URL`, a folder or S3), with every refusal.

use image::{GenericImageView, ImageFormat};
use serde_json::json;
use thumbq_common::{
    fixtures::sample_image,
    task::{Import, TaskId, TaskStatus},
};

use crate::support::{
    Backend, TestApp, eventually,
    library::library_location,
    on_each_store,
    origin::{Answer, Origin},
    spawn_api_configured, spawn_api_with_store,
};

/// The upload limit of these tests: the sample photo fits, the large body does not.
const LIMIT: usize = 300_000;

/// Waits until task `id` ends, and gives its record.
async fn ended(app: &TestApp, id: TaskId) -> thumbq_common::TaskRecord {
    eventually("the task ends", async || app.task(id).await.status.is_terminal()).await;
    app.task(id).await
}

/// The code of a failed task, as its record and its download say it (which must agree).
async fn failure_code(app: &TestApp, id: TaskId, name: &str) -> String {
    let record = ended(app, id).await;
    assert_eq!(record.status, TaskStatus::Failure, "{record:?}");
    let download = app.get(&format!("/thumbnails/{name}")).await;
    assert_eq!(download.status(), 422, "a source that cannot be read is the request's fault");
    let body: serde_json::Value = download.json().await.unwrap();
    let code = record.error_code.expect("a code").as_str().to_owned();
    assert_eq!(body["error"]["code"], code.as_str(), "{body}");
    assert_eq!(body["error"]["kind"], if code == "not_an_image" { "invalid_image" } else { "source" }, "{body}");
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_is_fetched_through_redirects_and_each_bad_source_fails_with_its_code() {
    let photo = sample_image(ImageFormat::Jpeg, 640, 480);
    assert!(photo.len() < LIMIT);
    let large = vec![0xFF; LIMIT + 1];
    let redirect = |to: &str| Answer::Redirect(to.to_owned());
    let origin = Origin::start([
        ("/photo.jpg", Answer::Bytes(photo.clone())),
        ("/r1", redirect("/photo.jpg")),
        ("/r2", redirect("/r1")),
        ("/r3", redirect("/r2")),
        ("/r4", redirect("/r3")),
        ("/to-file", redirect("file:///etc/passwd")),
        ("/forbidden", Answer::Status(403)),
        ("/gone", Answer::Status(410)),
        ("/large", Answer::Bytes(large.clone())),
        ("/large-streamed", Answer::Streamed(large)),
        ("/text", Answer::Bytes(b"hello, I am not an image".to_vec())),
        ("/flaky.jpg", Answer::FailsFirst(1, 503, photo)),
    ])
    .await;
    let app = spawn_api_configured(|settings| {
        settings.import.allow_private = true;
        settings.limits.max_upload_bytes = LIMIT;
    })
    .await;
    app.start_worker().await;

    // Three redirects are followed; no format given: WebP, which keeps any transparency the API could not see.
    let source = origin.url("/r3");
    let accepted = app.import_ok(json!({ "source": source }), "sizes=64x48,32x32&fit=fill").await;
    assert!(accepted.name.ends_with("-64x48.webp"), "{}", accepted.name);
    let made = app.wait_for_thumbnail(&accepted.name).await;
    assert_eq!(made.status(), 200);
    let thumbnail = image::load_from_memory_with_format(&made.bytes().await.unwrap(), ImageFormat::WebP).unwrap();
    assert_eq!(thumbnail.dimensions(), (64, 48));
    assert_eq!(app.download_image(&accepted.renditions[1].file).await.dimensions(), (32, 32));
    let record = app.task(accepted.id).await;
    assert_eq!(record.import, Some(Import::Source(source)));
    let info = record.source.expect("what the worker read");
    assert_eq!((info.format.as_str(), info.width, info.height), ("jpeg", 640, 480));
    assert_eq!(app.stored_originals().await, vec![accepted.id], "kept, as an upload's, for renditions later");

    // A 503 is retried, and the second attempt fetches it.
    let flaky = app.import_ok(json!({ "source": origin.url("/flaky.jpg") }), "format=png").await;
    assert_eq!(app.download_image(&flaky.name).await.dimensions(), (100, 100));
    let history = app.task(flaky.id).await.history;
    let retried = |c: &thumbq_common::task::StateChange| {
        c.status == TaskStatus::Retry && c.error_code.map(|c| c.as_str()) == Some("fetch_failed")
    };
    assert!(history.iter().any(retried), "{history:?}");

    let failing = [
        ("/r4", "fetch_refused"),
        ("/to-file", "fetch_refused"),
        ("/forbidden", "fetch_failed"),
        ("/gone", "source_not_found"),
        ("/nowhere.jpg", "source_not_found"),
        ("/large", "source_too_large"),
        ("/large-streamed", "source_too_large"),
        ("/text", "not_an_image"),
    ];
    for (path, code) in failing {
        let accepted = app.import_ok(json!({ "source": origin.url(path) }), "").await;
        assert_eq!(failure_code(&app, accepted.id, &accepted.name).await, code, "{path}");
        let record = app.task(accepted.id).await;
        assert_eq!(record.attempts, 1, "{path}: permanent, not retried");
    }
    assert_eq!(origin.requested().iter().filter(|p| *p == "/forbidden").count(), 1);
    assert!(!origin.requested().iter().any(|p| p == "/etc/passwd"));
    let mut stored = app.stored_originals().await;
    stored.sort_by_key(ToString::to_string);
    let mut kept = vec![accepted.id, flaky.id];
    kept.sort_by_key(ToString::to_string);
    assert_eq!(stored, kept, "a source that failed stored nothing");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_address_is_refused_before_anything_connects_to_it() {
    let origin = Origin::start([("/photo.jpg", Answer::Bytes(sample_image(ImageFormat::Png, 8, 8)))]).await;
    let app = spawn_api_configured(|_| {}).await;
    app.start_worker().await;
    // A literal address is refused by the API.
    let response = app.import(json!({ "source": origin.url("/photo.jpg") }), "").await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "source_refused", "{body}");
    assert!(body["error"].as_str().unwrap().contains("THUMBQ_FETCH_ALLOW_PRIVATE"), "{body}");
    // A name is resolved by the worker, and refused for the address it resolves to.
    let port = origin.base.rsplit(':').next().unwrap();
    let accepted = app.import_ok(json!({ "source": format!("http://localhost:{port}/photo.jpg") }), "").await;
    assert_eq!(failure_code(&app, accepted.id, &accepted.name).await, "fetch_refused");
    assert!(origin.requested().is_empty(), "nothing connected: {:?}", origin.requested());
    app.stop().await;
}

on_each_store!(an_image_is_imported_by_key_and_a_key_cannot_leave_the_prefix);
async fn an_image_is_imported_by_key_and_a_key_cannot_leave_the_prefix(backend: Backend) {
    let library = tempfile::tempdir().unwrap();
    let folder = library.path().join("library");
    std::fs::create_dir_all(&folder).unwrap();
    // Beside the import folder: what an escaping key would reach.
    std::fs::write(library.path().join("secret.png"), sample_image(ImageFormat::Png, 8, 8)).unwrap();
    let app = spawn_api_with_store(backend, |settings| {
        settings.import.location = Some(library_location(settings, &folder));
        settings.limits.max_upload_bytes = LIMIT;
    })
    .await;
    app.put_in_library("photos/2024/a.png", sample_image(ImageFormat::Png, 300, 200)).await;
    app.put_in_library("photos/large.jpg", vec![0xFF; LIMIT + 1]).await;
    app.start_worker().await;

    let accepted = app.import_ok(json!({ "key": "photos/2024/a.png" }), "width=60&height=40&format=png").await;
    assert_eq!(app.download_image(&accepted.name).await.dimensions(), (60, 40));
    let record = app.task(accepted.id).await;
    assert_eq!(record.import, Some(Import::Key("photos/2024/a.png".into())));
    assert_eq!(record.source.map(|s| (s.format, s.width, s.height)), Some(("png".into(), 300, 200)));

    for (key, code) in [("photos/2024/b.png", "source_not_found"), ("photos/large.jpg", "source_too_large")] {
        let accepted = app.import_ok(json!({ "key": key }), "").await;
        assert_eq!(failure_code(&app, accepted.id, &accepted.name).await, code, "{key}");
    }
    for key in ["../secret.png", "/secret.png", "photos/../../secret.png", "photos//a.png", ""] {
        let response = app.import(json!({ "key": key }), "").await;
        assert_eq!(response.status(), 400, "{key}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_import_key", "{key}: {body}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_retried_with_its_idempotency_key_makes_one_task() {
    let origin = Origin::start([("/a.png", Answer::Bytes(sample_image(ImageFormat::Png, 40, 30)))]).await;
    let app = spawn_api_configured(|settings| settings.import.allow_private = true).await;
    let send = async |body: serde_json::Value| {
        let url = format!("{}/thumbnails?format=png&width=20&height=15&fit=fill", app.base);
        app.client.post(url).header("Idempotency-Key", "import-1").json(&body).send().await.unwrap()
    };
    let body = json!({ "source": origin.url("/a.png") });
    let (first, again) = tokio::join!(send(body.clone()), send(body.clone()));
    let (first, again): (serde_json::Value, serde_json::Value) =
        (first.json().await.unwrap(), again.json().await.unwrap());
    assert_eq!(first, again, "the same 202");
    let other = send(json!({ "source": origin.url("/b.png") })).await;
    assert_eq!(other.status(), 422);
    let body: serde_json::Value = other.json().await.unwrap();
    assert_eq!(body["code"], "idempotency_mismatch", "{body}");
    app.start_worker().await;
    assert_eq!(app.download_image(first["name"].as_str().unwrap()).await.dimensions(), (20, 15));
    assert_eq!(origin.requested(), ["/a.png"], "one task, one fetch");
    app.stop().await;
}

//! Erasure and cancellation: `DELETE /thumbnails/{name}` removes everything of a task, `DELETE /tasks/{id}` revokes
//! one that has not finished, and retention expires thumbnails with their records.

use std::{
    sync::atomic::Ordering,
    time::{Duration, SystemTime},
};

use image::ImageFormat;
use reqwest::StatusCode;
use thumbq_common::{
    TaskRecord, TaskStatus,
    api_key::{Scopes, generate_key},
    file_store::LocalFileStore,
    fixtures::sample_image,
    settings::AuthMode,
    state_store::api_keys::KeySpec,
};
use thumbq_worker::sweeper::{Ages, sweep};

use crate::support::{TestApp, eventually, faulty_store::FaultyStore, spawn_api, spawn_api_configured, spawn_app};

async fn delete(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.delete(format!("{}{path}", app.base)).send().await.expect("the API answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_thumbnail_erases_the_thumbnail_its_original_and_its_record() {
    let app = spawn_app().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Jpeg, 320, 200), "").await;
    assert_eq!(app.wait_for_thumbnail(&accepted.name).await.status(), 200);

    let path = format!("/thumbnails/{}", accepted.name);
    assert_eq!(delete(&app, &path).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/tasks/{}", accepted.id)).await.status(), StatusCode::NOT_FOUND);
    let listed = app.get("/tasks").await.json::<thumbq_api::routes::tasks::TaskPage>().await.unwrap().tasks;
    assert!(listed.is_empty(), "not listed any more: {listed:?}");
    assert!(app.thumbnails().is_empty() && TestApp::files_in(&app.originals_dir()).is_empty());
    let task_keys: Vec<String> = app.redis_keys().await.into_iter().filter(|k| k.contains("task:")).collect();
    assert!(task_keys.is_empty(), "{task_keys:?}");
    assert_eq!(delete(&app, &path).await.status(), StatusCode::NO_CONTENT, "idempotent");
    assert_eq!(delete(&app, "/thumbnails/not-a-name").await.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_task_is_revoked_and_the_worker_acknowledges_it_without_work() {
    let app = spawn_api().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "").await;
    let cancel = delete(&app, &format!("/tasks/{}", accepted.id)).await;
    assert_eq!(cancel.status(), 200);
    let record: TaskRecord = cancel.json().await.unwrap();
    assert_eq!((record.status, record.attempts), (TaskStatus::Revoked, 0));
    assert!(record.finished_at.is_some());
    assert!(TestApp::files_in(&app.originals_dir()).is_empty(), "the original is deleted");

    app.start_worker().await;
    let queue = app.settings.amqp.queue.clone();
    eventually("the worker takes the message", async || app.queue_depth(&queue).await == 0).await;
    app.stop_workers().await;
    assert_eq!(app.queue_depth(&queue).await, 0, "acknowledged, not put back");
    assert_eq!(app.task(accepted.id).await.status, TaskStatus::Revoked, "never started");
    assert!(app.thumbnails().is_empty());
    let gone = app.get(&format!("/thumbnails/{}", accepted.name)).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert_eq!(gone.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"status": "REVOKED"}));
    assert_eq!(delete(&app, &format!("/tasks/{}", accepted.id)).await.status(), 200, "cancelling again is harmless");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_finished_task_is_a_conflict() {
    let app = spawn_app().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "").await;
    assert_eq!(app.wait_for_thumbnail(&accepted.name).await.status(), 200);
    let response = delete(&app, &format!("/tasks/{}", accepted.id)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("DELETE /thumbnails/"), "{body}");
    assert_eq!(app.task(accepted.id).await.status, TaskStatus::Success);
    assert_eq!(delete(&app, &format!("/tasks/{}", uuid::Uuid::new_v4())).await.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_deleted_while_its_thumbnail_is_written_leaves_nothing_behind() {
    let app = spawn_api().await;
    let store = FaultyStore::wrap(app.store.clone());
    store.hold_thumbnail_writes(true);
    app.start_worker_with(app.settings.clone(), store.clone()).await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Jpeg, 320, 200), "").await;
    eventually("the worker is writing the thumbnail", async || store.held_writes.load(Ordering::SeqCst) == 1).await;

    assert_eq!(delete(&app, &format!("/thumbnails/{}", accepted.name)).await.status(), 204);
    store.hold_thumbnail_writes(false);
    let queue = app.settings.amqp.queue.clone();
    eventually("the worker finishes with the message", async || app.queue_depth(&queue).await == 0).await;
    app.stop_workers().await;
    assert!(app.thumbnails().is_empty(), "the worker removed the thumbnail it wrote after the delete");
    assert_eq!(app.get(&format!("/thumbnails/{}", accepted.name)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/tasks/{}", accepted.id)).await.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_only_the_uploader_or_an_admin_may_cancel_or_delete() {
    let app = spawn_api_configured(|s| s.access.auth = AuthMode::Keys).await;
    let mut keys = Vec::new();
    for (name, scopes) in [("alice", "upload"), ("bob", "upload,read"), ("root", "admin")] {
        let key = generate_key();
        app.states.create_key(&KeySpec::new(name, scopes.parse::<Scopes>().unwrap()), &key, false).await.unwrap();
        keys.push(key);
    }
    let [alice, bob, root] = [&keys[0], &keys[1], &keys[2]];
    let upload = async |key: &str| -> serde_json::Value {
        let part = reqwest::multipart::Part::bytes(sample_image(ImageFormat::Png, 32, 32)).file_name("a.png");
        let form = reqwest::multipart::Form::new().part("image", part);
        let response =
            app.client.post(format!("{}/thumbnails", app.base)).bearer_auth(key).multipart(form).send().await.unwrap();
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    };
    let call = async |method: reqwest::Method, path: String, key: &str| {
        app.client.request(method, format!("{}{path}", app.base)).bearer_auth(key).send().await.unwrap().status()
    };
    let (first, second) = (upload(alice).await, upload(alice).await);
    let task = |t: &serde_json::Value| format!("/tasks/{}", t["id"].as_str().unwrap());
    let thumbnail = |t: &serde_json::Value| format!("/thumbnails/{}", t["name"].as_str().unwrap());

    // Another key's task is not there for it (a 403 would confirm it exists).
    assert_eq!(call(reqwest::Method::DELETE, task(&first), bob).await, StatusCode::NOT_FOUND);
    assert_eq!(call(reqwest::Method::DELETE, thumbnail(&first), bob).await, StatusCode::NOT_FOUND);
    assert_eq!(app.client.delete(format!("{}{}", app.base, task(&first))).send().await.unwrap().status(), 401);
    assert_eq!(call(reqwest::Method::DELETE, task(&first), alice).await, StatusCode::OK);
    assert_eq!(call(reqwest::Method::DELETE, thumbnail(&second), root).await, StatusCode::NO_CONTENT);
    assert_eq!(call(reqwest::Method::GET, task(&second), bob).await, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_expires_thumbnails_with_their_records() {
    let week = Duration::from_secs(7 * 86_400);
    let app = spawn_api_configured(|s| s.store.thumbnail_ttl = Some(week)).await;
    app.start_worker().await;
    let (old, new) = (
        app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "").await,
        app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "").await,
    );
    for accepted in [&old, &new] {
        assert_eq!(app.wait_for_thumbnail(&accepted.name).await.status(), 200);
    }
    // The record of a success lives as long as its thumbnail, not the 24 h result TTL.
    let mut redis = app.redis().await;
    let ttl: i64 = redis::cmd("TTL").arg(app.states.keys().task(old.id)).query_async(&mut redis).await.unwrap();
    assert!(ttl > 86_400 && ttl <= week.as_secs() as i64, "record TTL {ttl} s");

    let file = std::fs::File::options().write(true).open(app.thumbnails_dir().join(&old.name)).unwrap();
    file.set_modified(SystemTime::now() - week - Duration::from_secs(60)).unwrap();
    let store = LocalFileStore::open(&app.store_dir()).unwrap();
    let ages = Ages {
        record_ttl: app.settings.redis.result_ttl,
        temporary: Duration::from_secs(3600),
        thumbnail_ttl: Some(week),
    };
    assert_eq!(sweep(&store, &app.states, ages).await.unwrap().thumbnails, 1);
    assert_eq!(app.get(&format!("/thumbnails/{}", old.name)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/tasks/{}", old.id)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/thumbnails/{}", new.name)).await.status(), StatusCode::OK, "younger ones stay");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_racing_an_erasure_gets_404_not_500() {
    let app = spawn_app().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "").await;
    assert_eq!(app.wait_for_thumbnail(&accepted.name).await.status(), 200);
    // The moment inside `DELETE /thumbnails` when the file is gone and the SUCCESS record not yet.
    std::fs::remove_file(app.thumbnails_dir().join(&accepted.name)).unwrap();
    let response = app.get(&format!("/thumbnails/{}", accepted.name)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

//! Tenants apart (issue 23: items 1, 5, 11, 16): a key sees and changes only the tasks it uploaded, a download
//! tells only the task's state, a wrong name erases nothing, and an erased thumbnail is never served again.

use std::time::Duration;

use image::ImageFormat;
use reqwest::{Method, StatusCode};
use thumbq_api::routes::{tasks::TaskPage, thumbnails::Accepted};
use thumbq_common::{
    TaskRecord, TaskStatus,
    api_key::{Scopes, generate_key},
    fixtures::sample_image,
    settings::{AuthMode, Secret, UrlSigning},
    state_store::api_keys::KeySpec,
    task::ThumbnailName,
};

use crate::support::{TestApp, spawn_api, spawn_api_configured, watcher::statuses};

/// A key named `name` with `scopes`, made straight in the app's Redis.
async fn key(app: &TestApp, name: &str, scopes: &str) -> String {
    let key = generate_key();
    app.states.create_key(&KeySpec::new(name, scopes.parse::<Scopes>().unwrap()), &key, false).await.unwrap();
    key
}

async fn call(app: &TestApp, method: Method, path: &str, key: Option<&str>) -> reqwest::Response {
    let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", app.base) };
    let mut request = app.client.request(method, url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

async fn upload_as(app: &TestApp, key: &str, query: &[(&str, &str)]) -> Accepted {
    let part = reqwest::multipart::Part::bytes(sample_image(ImageFormat::Jpeg, 64, 48)).file_name("a.jpg");
    let response = app
        .client
        .post(format!("{}/thumbnails", app.base))
        .query(query)
        .bearer_auth(key)
        .multipart(reqwest::multipart::Form::new().part("image", part))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.json().await.unwrap()
}

fn keys_on(s: &mut thumbq_common::Settings) {
    s.access.auth = AuthMode::Keys;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_name_or_another_keys_task_is_a_404_that_erases_nothing() {
    // No worker: tenant A's task stays PENDING with its original stored.
    let app = spawn_api_configured(keys_on).await;
    let (a, b) = (key(&app, "tenant-a", "upload,read").await, key(&app, "tenant-b", "upload,read").await);
    let accepted = upload_as(&app, &a, &[]).await;
    assert!(accepted.name.ends_with(".jpg"));
    let other_extension = accepted.name.replace(".jpg", ".png");
    let other_rendition = accepted.name.replace(".jpg", "-small.jpg");

    for name in [&accepted.name, &other_extension, &other_rendition] {
        let response = call(&app, Method::DELETE, &format!("/thumbnails/{name}"), Some(&b)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "tenant B erasing {name}");
    }
    assert_eq!(call(&app, Method::DELETE, &format!("/tasks/{}", accepted.id), Some(&b)).await.status(), 404);
    // The owner naming a file the task does not have: the same 404, and nothing is touched.
    for name in [&other_extension, &other_rendition] {
        let response = call(&app, Method::DELETE, &format!("/thumbnails/{name}"), Some(&a)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "tenant A erasing {name}");
    }
    assert_eq!(app.stored_originals().await, vec![accepted.id], "the original is still there");
    let record = app.states.get(accepted.id).await.unwrap().expect("the record is still there");
    assert_eq!((record.status, record.owner.as_deref()), (TaskStatus::Pending, Some("tenant-a")));

    // The owner with the right name erases it.
    let response = call(&app, Method::DELETE, &format!("/thumbnails/{}", accepted.name), Some(&a)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(app.stored_originals().await.is_empty() && app.states.get(accepted.id).await.unwrap().is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reads_and_lists_only_its_own_tasks_unless_it_is_admin() {
    let signing =
        UrlSigning { key: Secret::new("a-test-signing-key-of-32-chars-at-least".into()), ttl: Duration::from_secs(60) };
    let app = spawn_api_configured(|s| {
        keys_on(s);
        s.access.signed_urls = Some(signing);
    })
    .await;
    let (a, b) = (key(&app, "tenant-a", "upload,read").await, key(&app, "tenant-b", "upload,read").await);
    let (reader, admin) = (key(&app, "reader", "read").await, key(&app, "admin", "admin").await);
    let mine = upload_as(&app, &a, &[]).await;
    let theirs = upload_as(&app, &b, &[]).await;

    let status_url = format!("/tasks/{}", mine.id);
    let own: TaskRecord = call(&app, Method::GET, &status_url, Some(&a)).await.json().await.unwrap();
    assert!(own.url.is_some_and(|u| u.contains("sig=")), "the owner gets a signed URL");
    for other in [&b, &reader] {
        let response = call(&app, Method::GET, &status_url, Some(other)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "another key's task is not confirmed to exist");
        assert!(!response.text().await.unwrap().contains("sig="), "and no URL is signed for it");
        let waited = call(&app, Method::GET, &format!("{status_url}?wait=1"), Some(other)).await;
        assert!(waited.status() == 404 || waited.status() == 400, "long poll: {}", waited.status());
    }
    assert_eq!(call(&app, Method::GET, &status_url, Some(&admin)).await.status(), StatusCode::OK);

    let ids = async |key: &str, query: &str| -> Vec<_> {
        let listed: TaskPage =
            call(&app, Method::GET, &format!("/tasks{query}"), Some(key)).await.json().await.unwrap();
        listed.tasks.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(ids(&a, "").await, vec![mine.id]);
    assert_eq!(ids(&a, "?status=PENDING").await, vec![mine.id]);
    assert_eq!(ids(&b, "").await, vec![theirs.id]);
    assert!(ids(&reader, "").await.is_empty(), "a key that uploaded nothing lists nothing");
    let all = ids(&admin, "").await;
    assert!(all.len() == 2 && all.contains(&mine.id) && all.contains(&theirs.id), "admin lists every task: {all:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_tells_the_state_and_nothing_of_the_record() {
    let app = spawn_api_configured(|s| {
        keys_on(s);
        s.webhook.secret = Some(Secret::new("a-webhook-secret".into()));
        s.webhook.allow_private = true;
    })
    .await;
    let a = key(&app, "tenant-a", "upload,read").await;
    let callback = "https://hooks.example.com/thumbq?token=receiver-secret";
    let accepted = upload_as(&app, &a, &[("callback_url", callback)]).await;

    // Without any key: the state, nothing else (no owner, no callback URL with its secret, no fresh URLs).
    let pending = call(&app, Method::GET, &accepted.url, None).await;
    assert_eq!(pending.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = pending.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "PENDING"}));

    // A failure: the state and an error code; cancelled: the state.
    app.states.start(accepted.id, 1, "w").await.unwrap();
    app.states
        .fail(
            accepted.id,
            1,
            "file store error at path \"/srv/secret/.tmp-1\"",
            thumbq_common::task::TaskErrorCode::StoreFailed,
        )
        .await
        .unwrap();
    let failed = call(&app, Method::GET, &accepted.url, None).await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = failed.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "FAILURE", "error": {"code": "store_failed", "kind": "internal"}}));

    let other = upload_as(&app, &a, &[]).await;
    assert_eq!(call(&app, Method::DELETE, &format!("/tasks/{}", other.id), Some(&a)).await.status(), 200);
    let gone = call(&app, Method::GET, &other.url, None).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert_eq!(gone.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"status": "REVOKED"}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thumbnail_erased_while_its_task_ran_is_never_served() {
    // The race of a worker that writes its thumbnail after the erasure, made deterministic: the task is STARTED,
    // erased, and only then does its file appear in the store, as that worker would write it.
    let app = spawn_api().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Jpeg, 64, 48), "").await;
    app.states.start(accepted.id, 1, "w").await.unwrap();
    assert_eq!(call(&app, Method::DELETE, &format!("/thumbnails/{}", accepted.name), None).await.status(), 204);
    let name: ThumbnailName = accepted.name.parse().unwrap();
    app.store.put_thumbnail(&name, sample_image(ImageFormat::Jpeg, 10, 10)).await.unwrap();

    let path = format!("/thumbnails/{}", accepted.name);
    for _ in 0..3 {
        assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND, "an erased task's file was served");
    }
    assert!(app.states.get(accepted.id).await.unwrap().is_none(), "no record was rebuilt for it");
    app.store.delete_thumbnail(&name).await.unwrap();

    // A thumbnail whose record merely expired is still served, and its record rebuilt.
    let kept = app.upload_ok(sample_image(ImageFormat::Jpeg, 64, 48), "").await;
    let record = app.states.get(kept.id).await.unwrap().unwrap();
    app.states.delete(&record).await.unwrap();
    let kept_name: ThumbnailName = kept.name.parse().unwrap();
    app.store.put_thumbnail(&kept_name, sample_image(ImageFormat::Jpeg, 10, 10)).await.unwrap();
    assert_eq!(app.get(&format!("/thumbnails/{}", kept.name)).await.status(), StatusCode::OK);
    crate::support::eventually("the lost record is rebuilt", async || app.states.exists(kept.id).await.unwrap()).await;
    // Its state and its history agree, and it says why the history is short.
    let rebuilt = app.task(kept.id).await;
    assert_eq!(rebuilt.status, TaskStatus::Success);
    assert_eq!(statuses(&rebuilt.history), [TaskStatus::Success]);
    assert_eq!(rebuilt.actions.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["rebuilt"]);
    app.store.delete_thumbnail(&kept_name).await.unwrap();
    app.store.delete_original(kept.id).await.unwrap();
    app.stop().await;
}

//! `{"rerender": {…}}` jobs: the kept originals of earlier tasks made again with new parameters (the preset
//! migration), each once, in the bulk lane; tasks whose original was not kept, and the job's own items, are passed
//! by; a key makes only its own tasks again.

use image::{GenericImageView, ImageFormat};
use serde_json::json;
use thumbq_api::routes::thumbnails::Accepted;
use thumbq_common::{
    api_key::{Scopes, generate_key},
    fixtures::sample_image,
    job::{Job, JobStatus, rerender_id},
    settings::AuthMode,
    state_store::api_keys::KeySpec,
    task::{TaskId, TaskStatus},
};

use crate::{
    jobs::{post_job, start_job, until_done},
    support::{Backend, TestApp, eventually, on_each_store, spawn_api_configured, spawn_app_with_store},
};

/// Uploads an image with `query` and waits for its task to end in SUCCESS.
async fn made(app: &TestApp, query: &str) -> Accepted {
    let accepted = app.upload_ok(sample_image(ImageFormat::Jpeg, 320, 240), query).await;
    eventually("the upload succeeds", async || app.task(accepted.id).await.status == TaskStatus::Success).await;
    accepted
}

on_each_store!(a_rerender_job_makes_the_kept_originals_of_a_preset_again_and_passes_by_the_rest);
async fn a_rerender_job_makes_the_kept_originals_of_a_preset_again_and_passes_by_the_rest(backend: Backend) {
    let app = spawn_app_with_store(backend).await;
    let thumbs = [made(&app, "preset=thumb").await, made(&app, "preset=thumb").await];
    let small = made(&app, "preset=small").await;
    let not_kept = made(&app, "preset=thumb&keep_original=false").await;
    eventually("the original not kept is deleted", async || !app.stored_originals().await.contains(&not_kept.id)).await;

    let job = start_job(&app, json!({"rerender": {"preset": "thumb"}}), "sizes=40x30&fit=fill&format=png").await;
    let ended = until_done(&app, job.id, 50).await;
    assert!(ended.listed);
    assert_eq!((ended.total, ended.done, ended.failed), (2, 2, 0), "the two kept thumbs only: {ended:?}");
    for from in &thumbs {
        let record = app.task(rerender_id(job.id, from.id)).await;
        assert_eq!((record.job, record.rendition_of), (Some(job.id), Some(from.id)));
        assert_eq!((record.status, record.attempts), (TaskStatus::Success, 1));
        assert_eq!(record.source.map(|s| (s.format, s.width, s.height)), Some(("jpeg".into(), 320, 240)));
        assert_eq!(app.download_image(&record.renditions[0].file).await.dimensions(), (40, 30));
    }

    // Every kept success, made before the job: the first job's items (in their job's index only) are not among
    // them, so it ends after the three.
    let all = start_job(&app, json!({"rerender": {}}), "width=24&height=24&format=png").await;
    let ended = until_done(&app, all.id, 50).await;
    assert_eq!((ended.total, ended.done), (3, 3), "{ended:?}");
    let page: serde_json::Value = app.get(&format!("/tasks?job={}&limit=10", all.id)).await.json().await.unwrap();
    let from: Vec<&str> = page["tasks"].as_array().unwrap().iter().filter_map(|t| t["rendition_of"].as_str()).collect();
    for upload in [&thumbs[0], &thumbs[1], &small] {
        assert!(from.contains(&upload.id.to_string().as_str()), "{from:?}");
    }
    let kept: std::collections::HashSet<TaskId> = app.stored_originals().await.into_iter().collect();
    let expected = [thumbs[0].id, thumbs[1].id, small.id].into_iter().collect();
    assert_eq!(kept, expected, "the originals stay, read and never copied or deleted by the items");

    for (body, status) in [
        (json!({"rerender": {"preset": "Not A Name!"}}), 400),
        (json!({"rerender": {"presets": "thumb"}}), 400),
        (json!({"rerender": {}, "prefix": "a"}), 400),
    ] {
        let response = post_job(&app, body.clone(), "").await;
        assert_eq!(response.status(), status, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert!(error["code"].is_string(), "{error}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rerenders_its_own_tasks_only() {
    let app = spawn_api_configured(|s| s.access.auth = AuthMode::Keys).await;
    app.start_worker().await;
    let mut keys = Vec::new();
    for name in ["tenant-a", "tenant-b"] {
        let key = generate_key();
        app.states
            .create_key(&KeySpec::new(name, "upload,read".parse::<Scopes>().unwrap()), &key, false)
            .await
            .unwrap();
        keys.push(key);
    }
    let upload = async |key: &str| {
        let part = reqwest::multipart::Part::bytes(sample_image(ImageFormat::Png, 64, 48)).file_name("a.png");
        let form = reqwest::multipart::Form::new().part("image", part);
        let url = format!("{}/thumbnails", app.base);
        let response = app.client.post(url).bearer_auth(key).multipart(form).send().await.unwrap();
        assert_eq!(response.status(), 202);
        let accepted: Accepted = response.json().await.unwrap();
        eventually("the upload succeeds", async || status_of(&app, accepted.id).await == Some(TaskStatus::Success))
            .await;
        accepted
    };
    let own = upload(&keys[0]).await;
    upload(&keys[1]).await;
    let create = async |body: serde_json::Value| {
        let url = format!("{}/jobs?width=16&height=16", app.base);
        app.client.post(url).bearer_auth(&keys[0]).json(&body).send().await.unwrap()
    };

    let refused = create(json!({"rerender": {"owner": "tenant-b"}})).await;
    assert_eq!(refused.status(), 403, "another key's tasks need admin");
    let response = create(json!({"rerender": {}})).await;
    assert_eq!(response.status(), 202);
    let job: Job = response.json().await.unwrap();
    assert_eq!(job.spec, json!({"rerender": {"owner": "tenant-a"}}), "its own tasks, whatever it named");
    let ended = async || app.states.job(job.id).await.unwrap().expect("the job");
    eventually("the job ends", async || ended().await.status == JobStatus::Done).await;
    assert_eq!((ended().await.total, ended().await.done), (1, 1));
    assert_eq!(status_of(&app, rerender_id(job.id, own.id)).await, Some(TaskStatus::Success));
    app.stop().await;
}

/// A task's status, read in Redis (the API needs a key).
async fn status_of(app: &TestApp, id: TaskId) -> Option<TaskStatus> {
    app.states.get(id).await.unwrap().map(|record| record.status)
}

//! thumbq's state on a Redis Cluster of the test's own (3 primaries, 3 replicas): what a user does works as on one
//! Redis, with the tasks spread over the primaries; and a primary killed with SIGKILL mid-batch loses no task.

use std::collections::HashSet;

use image::{GenericImageView, ImageFormat};
use reqwest::{Method, StatusCode};
use serde_json::json;
use thumbq_api::routes::{stats::Stats, tasks::TaskPage, thumbnails::Accepted};
use thumbq_common::{
    TaskStatus,
    api_key::{Rate, RateLimit, Scopes, generate_key},
    fixtures::sample_image,
    job::JobStatus,
    settings::AuthMode,
    state_store::api_keys::KeySpec,
    task::TaskId,
};

use crate::support::{
    TestApp, eventually,
    origin::{Answer, Origin},
    redis_cluster::RedisCluster,
    spawn_api_configured,
};

/// A key named `name` with `scopes`, made straight in the cluster.
async fn key(app: &TestApp, spec: KeySpec) -> String {
    let key = generate_key();
    app.states.create_key(&spec, &key, false).await.unwrap();
    key
}

async fn call(app: &TestApp, method: Method, path: &str, key: &str) -> reqwest::Response {
    app.client.request(method, format!("{}{path}", app.base)).bearer_auth(key).send().await.unwrap()
}

async fn upload_as(app: &TestApp, key: &str, width: u32, idempotency: Option<&str>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(sample_image(ImageFormat::Jpeg, width, 48)).file_name("a.jpg");
    let mut request = app
        .client
        .post(format!("{}/thumbnails?width=32&height=24&fit=fill", app.base))
        .bearer_auth(key)
        .multipart(reqwest::multipart::Form::new().part("image", part));
    if let Some(idempotency) = idempotency {
        request = request.header("Idempotency-Key", idempotency);
    }
    request.send().await.unwrap()
}

/// Every page of `path` (`/tasks?...`) as `key`: the ids, in the order served.
async fn walk(app: &TestApp, path: &str, key: &str) -> Vec<TaskId> {
    let (mut ids, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let page_path = match &cursor {
            Some(cursor) => format!("{path}&cursor={cursor}"),
            None => path.to_owned(),
        };
        let response = call(app, Method::GET, &page_path, key).await;
        assert_eq!(response.status(), StatusCode::OK, "{page_path}");
        let page: TaskPage = response.json().await.unwrap();
        ids.extend(page.tasks.iter().map(|t| t.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_listings_keys_limits_and_jobs_work_on_a_redis_cluster() {
    const UPLOADS: usize = 16;
    let cluster = RedisCluster::start().await;
    let app = spawn_api_configured(|s| {
        cluster.configure(&mut s.redis);
        s.access.auth = AuthMode::Keys;
        s.import.allow_private = true; // the job's origin is on loopback
    })
    .await;
    let all_scopes: Scopes = "upload,read,admin".parse().unwrap();
    let admin = key(&app, KeySpec::new("ops", all_scopes)).await;
    let tenant = key(&app, KeySpec::new("tenant", "upload,read".parse().unwrap())).await;
    let limit = RateLimit { rate: "1/h".parse::<Rate>().unwrap(), burst: 2 };
    let limited = key(&app, KeySpec { limit: Some(limit), ..KeySpec::new("limited", "read".parse().unwrap()) }).await;
    app.start_worker().await;

    // Uploads, each downloaded by a long poll that the task's end wakes.
    let mut accepted = Vec::new();
    for i in 0..UPLOADS {
        let response = upload_as(&app, &tenant, 64 + i as u32, None).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        accepted.push(response.json::<Accepted>().await.unwrap());
    }
    for task in &accepted {
        assert_eq!(app.download_image(&task.name).await.dimensions(), (32, 24));
    }
    let mut primaries = HashSet::new();
    for task in &accepted {
        primaries.insert(cluster.primary_of(&app.states.keys().task(task.id)).await);
    }
    assert!(primaries.len() >= 2, "the tasks are spread over the primaries: {primaries:?}");

    // The tenant's listing, page by page across the shards: every task once, newest first.
    let listed = walk(&app, "/tasks?limit=5", &tenant).await;
    let newest_first: Vec<TaskId> = accepted.iter().rev().map(|a| a.id).collect();
    assert_eq!(listed, newest_first, "every task once, newest first");
    let succeeded = walk(&app, "/tasks?limit=3&status=SUCCESS", &admin).await;
    assert_eq!(succeeded, newest_first);
    assert!(walk(&app, "/tasks?limit=3&status=FAILURE", &admin).await.is_empty());

    // The dashboard's counts.
    eventually("the history counts every success", async || {
        let stats: Stats = call(&app, Method::GET, "/stats", &admin).await.json().await.unwrap();
        stats.last_minute.success == UPLOADS as u64
    })
    .await;

    // A rate limit: a burst of 2, then 429.
    let statuses: Vec<u16> = futures_util::future::join_all(
        (0..3).map(|_| async { call(&app, Method::GET, "/tasks?limit=1", &limited).await.status().as_u16() }),
    )
    .await;
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1, "{statuses:?}");

    // A storage quota counts the key's tasks in flight on every shard.
    let (here, there) = two_tasks_on_two_shards(&app);
    assert_eq!(app.states.reserve_quota("quota", here, 600_000, 1_000_000).await.unwrap(), Ok(()));
    assert_eq!(app.states.reserve_quota("quota", there, 600_000, 1_000_000).await.unwrap(), Err(600_000));

    // An upload retried with its idempotency key is one task.
    let first: Accepted = upload_as(&app, &tenant, 80, Some("once")).await.json().await.unwrap();
    let again: Accepted = upload_as(&app, &tenant, 80, Some("once")).await.json().await.unwrap();
    assert_eq!(first.id, again.id);
    app.download_image(&first.name).await;

    // An erased task is gone from its shard's record and index.
    let erased = &accepted[3];
    let response = call(&app, Method::DELETE, &format!("/thumbnails/{}", erased.name), &tenant).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(call(&app, Method::GET, &format!("/tasks/{}", erased.id), &tenant).await.status(), 404);
    assert!(!walk(&app, "/tasks?limit=50", &tenant).await.contains(&erased.id));

    // A job of URLs: its items on its shard, counted into it by their transitions.
    let png = sample_image(ImageFormat::Png, 40, 30);
    let origin = Origin::start([
        ("/a.png", Answer::Bytes(png.clone())),
        ("/b.png", Answer::Bytes(png.clone())),
        ("/c.png", Answer::Bytes(png.clone())),
        ("/d.png", Answer::Bytes(png)),
    ])
    .await;
    let sources: Vec<String> = ["/a.png", "/b.png", "/c.png", "/d.png"].iter().map(|p| origin.url(p)).collect();
    // Idle pumps read only the jobs' generation (on the global tag), not the 16 shards' job sets: it moves with a job.
    let generation = app.states.jobs_generation().await.unwrap();
    let response = app
        .client
        .post(format!("{}/jobs?width=20&height=15", app.base))
        .bearer_auth(&admin)
        .json(&json!({ "sources": sources }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: thumbq_common::job::Job = response.json().await.unwrap();
    assert!(app.states.jobs_generation().await.unwrap() > generation, "a new job raises the jobs' generation");
    let done = until_done_as(&app, job.id, &admin).await;
    assert_eq!((done.status, done.done, done.failed), (JobStatus::Done, 4, 0));
    let items = walk(&app, &format!("/tasks?limit=2&job={}", job.id), &admin).await;
    assert_eq!(items.len(), 4);
    for item in items {
        let record = app.states.get(item).await.unwrap().expect("the item's record");
        assert_eq!(record.status, TaskStatus::Success);
    }
    let jobs: Vec<thumbq_common::job::Job> = call(&app, Method::GET, "/jobs", &admin).await.json().await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![job.id]);
    app.stop().await;
}

/// Job `id` once it is DONE, read as `key`.
async fn until_done_as(app: &TestApp, id: thumbq_common::job::JobId, key: &str) -> thumbq_common::job::Job {
    let read = async || -> thumbq_common::job::Job {
        call(app, Method::GET, &format!("/jobs/{id}"), key).await.json().await.unwrap()
    };
    eventually("the job ends", async || read().await.status == JobStatus::Done).await;
    read().await
}

/// Uploads in the batch of the primary kill.
const BATCH: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_cluster_primary_mid_batch_loses_no_task() {
    let cluster = RedisCluster::start().await;
    let app = spawn_api_configured(|s| cluster.configure(&mut s.redis)).await;
    app.start_worker().await;
    let photos = (0..BATCH).map(|i| sample_image(ImageFormat::Jpeg, 800 + i as u32, 600)).collect();
    // The primary of the first shard, whose tasks a sixteenth of the batch is.
    let victim = cluster.primary_of(&app.states.keys().index_all(app.states.keys().shards().next().unwrap())).await;

    let fault = async {
        eventually("20 thumbnails are stored", async || app.stored_thumbnails().await.len() >= 20).await;
        cluster.kill(victim);
    };
    let (accepted, ()) = tokio::join!(app.upload_batch(photos, 4), fault);
    assert_eq!(accepted.len(), BATCH);
    cluster.until_healthy(5).await;
    assert_ne!(
        cluster.primary_of(&app.states.keys().index_all(app.states.keys().shards().next().unwrap())).await,
        victim
    );

    assert_eq!(app.assert_all_finished(&accepted).await, BATCH, "every accepted task succeeded");
    assert_eq!(app.stored_thumbnails().await.len(), BATCH, "one thumbnail each");
    app.stop().await;
}

/// Two fresh task ids on different shards.
fn two_tasks_on_two_shards(app: &TestApp) -> (TaskId, TaskId) {
    let keys = app.states.keys();
    let here = TaskId::new();
    let there = std::iter::repeat_with(TaskId::new).find(|id| keys.shard_of(*id) != keys.shard_of(here)).unwrap();
    (here, there)
}

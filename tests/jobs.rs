//! Bulk jobs (`POST /jobs`): every object under a prefix of the import store, or a list of URLs, made into
//! thumbnails a window at a time in the bulk lane, each item once, the job's counts and status kept as it runs.

use image::{GenericImageView, ImageFormat};
use serde_json::{Value, json};
use thumbq_common::{
    fixtures::sample_image,
    job::{Job, JobId, JobStatus, item_id},
    settings::StoreLocation,
    task::{Import, TaskStatus},
};

use std::time::Duration;

use crate::support::{
    Backend, TestApp, eventually,
    library::library_location,
    on_each_store,
    origin::{Answer, Origin},
    process::{ApiProcess, WorkerProcess},
    spawn_api_configured, spawn_api_with_store,
    wait::Wait,
};

/// `POST /jobs?<query>` with `body`.
pub(crate) async fn post_job(app: &TestApp, body: Value, query: &str) -> reqwest::Response {
    app.client.post(format!("{}/jobs?{query}", app.base)).json(&body).send().await.unwrap()
}

/// Starts a job and asserts `202`.
pub(crate) async fn start_job(app: &TestApp, body: Value, query: &str) -> Job {
    let response = post_job(app, body, query).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 202, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// The job now.
pub(crate) async fn job(app: &TestApp, id: JobId) -> Job {
    let response = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Waits until the job is DONE, checking on the way that it never holds more than `window` items in flight.
pub(crate) async fn until_done(app: &TestApp, id: JobId, window: u64) -> Job {
    eventually("the job ends", async || {
        let now = job(app, id).await;
        let in_flight = now.queued - now.done - now.failed;
        assert!(in_flight <= window, "{in_flight} items in flight, over the window of {window}: {now:?}");
        assert!(now.done + now.failed <= now.total, "{now:?}");
        now.status == JobStatus::Done
    })
    .await;
    job(app, id).await
}

on_each_store!(a_job_over_a_prefix_makes_each_item_once_a_window_at_a_time_and_ends);
async fn a_job_over_a_prefix_makes_each_item_once_a_window_at_a_time_and_ends(backend: Backend) {
    const WINDOW: u32 = 4;
    let library = tempfile::tempdir().unwrap();
    let folder = library.path().join("library");
    std::fs::create_dir_all(&folder).unwrap();
    let app = spawn_api_with_store(backend, |settings| {
        settings.import.location = Some(library_location(settings, &folder));
        settings.jobs.window = WINDOW;
    })
    .await;
    let png = sample_image(ImageFormat::Png, 48, 32);
    let mut keys: Vec<String> = (0..23).map(|i| format!("photos/{}/{i:02}.png", i % 3)).collect();
    for key in &keys {
        app.put_in_library(key, png.clone()).await;
    }
    app.put_in_library("photos/not-an-image.png", b"plain text".to_vec()).await;
    app.put_in_library("elsewhere/outside.png", png.clone()).await;
    // A sibling whose name starts with the prefix's: a folder prefix is not a string prefix.
    app.put_in_library("photos-old/outside.png", png.clone()).await;
    app.start_worker().await;

    let started = start_job(&app, json!({ "prefix": "photos/" }), "width=24&height=16&fit=fill&format=png").await;
    assert_eq!(started.status, JobStatus::Running);
    assert_eq!(started.status_url.as_deref(), Some(format!("{}/jobs/{}", app.base, started.id).as_str()));
    let ended = until_done(&app, started.id, u64::from(WINDOW)).await;
    assert!(ended.listed);
    assert_eq!((ended.total, ended.queued, ended.done, ended.failed), (24, 24, 23, 1), "{ended:?}");
    assert_eq!(ended.failures.len(), 1);
    assert_eq!(ended.failures[0].error_code.map(|c| c.as_str()), Some("not_an_image"));
    assert!(ended.finished_at.is_some());

    keys.push("photos/not-an-image.png".into());
    for key in &keys {
        let id = item_id(started.id, &Import::Key(key.clone()));
        let record = app.task(id).await;
        assert_eq!(record.job, Some(started.id));
        assert_eq!(record.attempts, 1, "{key}: made once");
        if key.ends_with("not-an-image.png") {
            assert_eq!(record.status, TaskStatus::Failure);
        } else {
            assert_eq!(record.status, TaskStatus::Success, "{key}");
            assert_eq!(app.download_image(&record.name).await.dimensions(), (24, 16));
        }
    }
    assert_eq!(app.stored_thumbnails().await.len(), 23, "one thumbnail an item, nothing outside the prefix");
    let page: Value = app.get(&format!("/tasks?job={}&limit=100", started.id)).await.json().await.unwrap();
    let items = page["tasks"].as_array().unwrap();
    assert_eq!(items.len(), 24, "GET /tasks?job= lists the job's items");
    assert!(items.iter().all(|t| t["job"] == started.id.to_string()));
    assert_eq!(app.get(&format!("/tasks?job={}", JobId::new())).await.status(), 404);
    let listed: Vec<Job> = app.get("/jobs").await.json().await.unwrap();
    assert_eq!(listed.iter().map(|j| j.id).collect::<Vec<_>>(), [started.id]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_urls_fetches_each_and_counts_what_failed() {
    let origin = Origin::start([
        ("/a.png", Answer::Bytes(sample_image(ImageFormat::Png, 40, 30))),
        ("/b.jpg", Answer::Bytes(sample_image(ImageFormat::Jpeg, 64, 48))),
        ("/c.webp", Answer::Bytes(sample_image(ImageFormat::WebP, 20, 20))),
        ("/busy.png", Answer::Status(503)),
    ])
    .await;
    let app = spawn_api_configured(|settings| settings.import.allow_private = true).await;
    app.start_worker().await;
    let paths = ["/a.png", "/b.jpg", "/c.webp", "/missing.png", "/busy.png"];
    let sources: Vec<String> = paths.iter().map(|p| origin.url(p)).collect();
    let started = start_job(&app, json!({ "sources": sources }), "sizes=16x16").await;
    assert_eq!((started.total, started.listed), (5, true), "a list is known in full");
    let ended = until_done(&app, started.id, 50).await;
    assert_eq!((ended.done, ended.failed), (3, 2), "{ended:?}");
    let mut codes: Vec<&str> = ended.failures.iter().filter_map(|f| f.error_code.map(|c| c.as_str())).collect();
    codes.sort_unstable();
    assert_eq!(codes, ["fetch_failed", "source_not_found"]);
    let busy = app.task(item_id(started.id, &Import::Source(sources[4].clone()))).await;
    assert_eq!(busy.attempts, app.settings.retry.max_attempts, "a 503 is retried until the attempts run out");
    let dead = format!("{}.bulk.dead", app.topology.work);
    assert_eq!(app.queue_depth(&dead).await, 0, "a job's item is its job's failure, not a dead letter");
    let first = app.task(item_id(started.id, &Import::Source(sources[0].clone()))).await;
    let name = &first.renditions[0].file;
    assert!(name.ends_with("-16x16.webp"), "{name}");
    assert_eq!(app.download_image(name).await.dimensions(), (16, 16));
    let requested = origin.requested();
    for path in ["/a.png", "/b.jpg", "/c.webp", "/missing.png"] {
        assert_eq!(requested.iter().filter(|p| *p == path).count(), 1, "{path} fetched once: {requested:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_cannot_run_is_refused_with_its_code() {
    let app = spawn_api_configured(|_| {}).await;
    let cases = [
        (json!({ "prefix": "photos" }), "imports_disabled"),
        (json!({ "sources": [] }), "invalid_parameter"),
        (json!({ "sources": ["http://127.0.0.1:9/a.png"] }), "source_refused"),
        (json!({ "sources": ["https://images.example.com/a.png"], "prefix": "x" }), "malformed_body"),
        (json!({ "everything": true }), "malformed_body"),
    ];
    for (body, code) in cases {
        let response = post_job(&app, body.clone(), "").await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["code"], code, "{body}: {answer}");
    }
    let too_many: Vec<String> = (0..10_001).map(|i| format!("https://images.example.com/{i}.png")).collect();
    assert_eq!(post_job(&app, json!({ "sources": too_many }), "").await.status(), 400);
    let with_dedupe = post_job(&app, json!({ "sources": ["https://images.example.com/a.png"] }), "dedupe=true").await;
    assert_eq!(with_dedupe.status(), 400);
    assert_eq!(app.get("/jobs/not-a-job").await.status(), 400);
    let unknown = app.get(&format!("/jobs/{}", JobId::new())).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["code"], "job_not_found");
    app.stop().await;
}

/// `POST /jobs/{id}/<action>` (or `DELETE /jobs/{id}` for `cancel`): the job after it.
async fn act(app: &TestApp, id: JobId, action: &str) -> reqwest::Response {
    let request = match action {
        "cancel" => app.client.delete(format!("{}/jobs/{id}", app.base)),
        action => app.client.post(format!("{}/jobs/{id}/{action}", app.base)),
    };
    request.send().await.unwrap()
}

/// An app whose import store holds `count` photos under `photos/`, a job window of 2, and one worker.
async fn library_app(folder: &std::path::Path, count: usize) -> TestApp {
    let app = spawn_api_configured(|settings| {
        settings.import.location = Some(StoreLocation::Local(folder.to_path_buf()));
        settings.jobs.window = 2;
    })
    .await;
    let photo = sample_image(ImageFormat::Jpeg, 800, 600);
    for i in 0..count {
        app.put_in_library(&format!("photos/{i:03}.jpg"), photo.clone()).await;
    }
    app.start_worker().await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_job_starts_nothing_new_until_resumed() {
    let library = tempfile::tempdir().unwrap();
    let app = library_app(library.path(), 30).await;
    let started = start_job(&app, json!({ "prefix": "photos" }), "").await;
    eventually("some items are done", async || job(&app, started.id).await.done >= 2).await;
    let paused: Job = act(&app, started.id, "pause").await.json().await.unwrap();
    assert_eq!(paused.status, JobStatus::Paused);
    // What was queued ends; at most one more window is handed out by a turn of the pump already under way.
    eventually("the items in flight end", async || {
        let now = job(&app, started.id).await;
        now.queued == now.done + now.failed
    })
    .await;
    let settled = job(&app, started.id).await;
    assert!(settled.queued <= paused.queued + 2, "{settled:?} after {paused:?}");
    assert!(settled.done < 30, "paused before the end: {settled:?}");
    assert_eq!(settled.status, JobStatus::Paused);
    assert_eq!(act(&app, started.id, "pause").await.status(), 200, "pausing again changes nothing");

    let resumed: Job = act(&app, started.id, "resume").await.json().await.unwrap();
    assert_eq!(resumed.status, JobStatus::Running);
    let ended = until_done(&app, started.id, 2).await;
    assert_eq!((ended.done, ended.failed, ended.cancelled), (30, 0, 0), "{ended:?}");
    assert_eq!(act(&app, started.id, "pause").await.status(), 409, "a DONE job cannot be paused");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_starts_no_item_after_it() {
    let library = tempfile::tempdir().unwrap();
    let app = library_app(library.path(), 30).await;
    let started = start_job(&app, json!({ "prefix": "photos" }), "").await;
    eventually("some items are done", async || job(&app, started.id).await.done >= 2).await;
    let response = act(&app, started.id, "cancel").await;
    let cancelled_at = chrono::Utc::now();
    assert_eq!(response.status(), 200);
    let cancelled: Job = response.json().await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(cancelled.finished_at.is_some());
    eventually("every queued item has ended", async || {
        let now = job(&app, started.id).await;
        now.queued == now.done + now.failed + now.cancelled
    })
    .await;
    let settled = job(&app, started.id).await;
    assert_eq!(settled.status, JobStatus::Cancelled);
    assert!(settled.done < 30 && settled.queued <= cancelled.queued + 2, "{settled:?}");
    // Read until the counts and the records agree: the pump may still be queuing a batch it read before the cancel,
    // whose items a worker revokes as they arrive.
    let revoked_records = async || {
        let mut revoked = 0u64;
        for i in 0..30 {
            let id = item_id(started.id, &Import::Key(format!("photos/{i:03}.jpg")));
            let response = app.get(&format!("/tasks/{id}")).await;
            if response.status() == 404 {
                continue; // never queued
            }
            let record: thumbq_common::TaskRecord = response.json().await.unwrap();
            if let Some(started_at) = record.started_at {
                assert!(started_at < cancelled_at + chrono::Duration::seconds(5), "{id} started after the cancel");
            }
            revoked += u64::from(record.status == TaskStatus::Revoked);
        }
        revoked
    };
    eventually("each queued item not started is REVOKED and counted", async || {
        revoked_records().await == job(&app, started.id).await.cancelled
    })
    .await;
    assert_eq!(act(&app, started.id, "cancel").await.status(), 200, "cancelling again changes nothing");
    assert_eq!(act(&app, started.id, "resume").await.status(), 409);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_s_failed_items_are_made_again_on_retry_failed() {
    let png = sample_image(ImageFormat::Png, 40, 30);
    let origin =
        Origin::start([("/a.png", Answer::Bytes(png.clone())), ("/b.png", Answer::FailsFirst(1, 404, png))]).await;
    let app = spawn_api_configured(|settings| settings.import.allow_private = true).await;
    app.start_worker().await;
    let sources = [origin.url("/a.png"), origin.url("/b.png")];
    let started = start_job(&app, json!({ "sources": sources }), "format=png&width=20&height=15&fit=fill").await;
    let first = until_done(&app, started.id, 50).await;
    assert_eq!((first.done, first.failed, first.failures.len()), (1, 1, 1), "{first:?}");

    // The DONE job runs again: idle pumps, which read only the jobs' generation, see it move.
    let generation = app.states.jobs_generation().await.unwrap();
    let response = act(&app, started.id, "retry-failed").await;
    assert_eq!(response.status(), 200);
    assert!(app.states.jobs_generation().await.unwrap() > generation, "retry-failed raises the jobs' generation");
    let again = until_done(&app, started.id, 50).await;
    assert_eq!((again.total, again.done, again.failed), (2, 2, 0), "{again:?}");
    assert!(again.failures.is_empty());
    let b = app.task(item_id(started.id, &Import::Source(sources[1].clone()))).await;
    assert_eq!(b.status, TaskStatus::Success);
    assert!(b.actions.iter().any(|a| a.action == "replayed"), "{:?}", b.actions);
    assert_eq!(app.download_image(&b.name).await.dimensions(), (20, 15));
    assert_eq!(origin.requested().iter().filter(|p| *p == "/b.png").count(), 2);
    assert_eq!(origin.requested().iter().filter(|p| *p == "/a.png").count(), 1, "what succeeded is not made again");

    // Long enough (a hundred items) not to end before it is cancelled.
    let many: Vec<String> = (0..100).map(|i| origin.url(&format!("/none/{i}.png"))).collect();
    let cancelled = start_job(&app, json!({ "sources": many }), "").await;
    assert_eq!(act(&app, cancelled.id, "cancel").await.status(), 200);
    assert_eq!(act(&app, cancelled.id, "retry-failed").await.status(), 409);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_a_killed_worker_and_api_and_makes_each_item_once() {
    let library = tempfile::tempdir().unwrap();
    let app = spawn_api_configured(|settings| {
        settings.import.location = Some(StoreLocation::Local(library.path().to_path_buf()));
        settings.jobs.window = 4;
    })
    .await;
    let photo = sample_image(ImageFormat::Jpeg, 800, 600);
    for i in 0..40 {
        app.put_in_library(&format!("photos/{i:03}.jpg"), photo.clone()).await;
    }
    // The API and the one worker (which runs the pump) as processes, to be killed mid-job.
    let api = ApiProcess::spawn(&app.settings).await;
    let mut victim = WorkerProcess::spawn(&app.settings, "victim");
    let response = app.client.post(format!("{}/jobs", api.base)).json(&json!({ "prefix": "photos" })).send().await;
    let started: Job = response.unwrap().json().await.unwrap();
    eventually("some items are done", async || job(&app, started.id).await.done >= 5).await;
    victim.kill().await; // SIGKILL: items in flight, perhaps a batch half queued
    api.kill().await;

    let api = ApiProcess::spawn(&app.settings).await;
    app.start_worker().await; // takes the pump's lease once the dead worker's runs out
    let ended: Job = Wait::new("the job ends on the new worker")
        .within(Duration::from_secs(60))
        .until_ok(async || {
            let url = format!("{}/jobs/{}", api.base, started.id);
            let now: Job =
                app.client.get(url).send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
            if now.status == JobStatus::Done {
                Ok(now)
            } else {
                Err(format!("{:?} {}/{}", now.status, now.done, now.total))
            }
        })
        .await;
    assert_eq!((ended.total, ended.queued, ended.done, ended.failed), (40, 40, 40, 0), "{ended:?}");
    assert_eq!(app.stored_thumbnails().await.len(), 40, "one thumbnail an item");
    for i in 0..40 {
        let record = app.task(item_id(started.id, &Import::Key(format!("photos/{i:03}.jpg")))).await;
        assert_eq!(record.status, TaskStatus::Success);
    }
    let page: Value = app.get(&format!("/tasks?job={}&limit=100", started.id)).await.json().await.unwrap();
    assert_eq!(page["tasks"].as_array().unwrap().len(), 40, "one task an item, however often it was queued");
    api.kill().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jobs_share_the_lane_so_a_small_one_ends_before_a_large_one_started_first() {
    let library = tempfile::tempdir().unwrap();
    let app = library_app(library.path(), 40).await;
    let photo = sample_image(ImageFormat::Jpeg, 800, 600);
    for i in 0..4 {
        app.put_in_library(&format!("small/{i}.jpg"), photo.clone()).await;
    }
    let large = start_job(&app, json!({ "prefix": "photos" }), "").await;
    eventually("the large job has begun", async || job(&app, large.id).await.done >= 1).await;
    let small = start_job(&app, json!({ "prefix": "small" }), "").await;
    let small = until_done(&app, small.id, 2).await;
    assert_eq!(small.done, 4);
    let large_then = job(&app, large.id).await;
    assert_eq!(large_then.status, JobStatus::Running, "the small job did not wait for the large one: {large_then:?}");
    assert!(large_then.done < 40);
    assert_eq!(until_done(&app, large.id, 2).await.done, 40);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_retried_with_its_idempotency_key_is_made_once() {
    let library = tempfile::tempdir().unwrap();
    let app = spawn_api_configured(|settings| {
        settings.import.location = Some(StoreLocation::Local(library.path().to_path_buf()));
    })
    .await;
    let send = async |body: Value| {
        let url = format!("{}/jobs?width=10&height=10", app.base);
        app.client.post(url).header("Idempotency-Key", "job-1").json(&body).send().await.unwrap()
    };
    let (first, again) = tokio::join!(send(json!({ "prefix": "photos" })), send(json!({ "prefix": "photos" })));
    assert_eq!((first.status(), again.status()), (reqwest::StatusCode::ACCEPTED, reqwest::StatusCode::ACCEPTED));
    let (first, again): (Job, Job) = (first.json().await.unwrap(), again.json().await.unwrap());
    assert_eq!(first.id, again.id, "the same job");
    let other = send(json!({ "prefix": "elsewhere" })).await;
    assert_eq!(other.status(), 422);
    let jobs: Vec<Job> = app.get("/jobs").await.json().await.unwrap();
    assert_eq!(jobs.len(), 1);
    // The same key on an upload is another request.
    let upload = app
        .client
        .post(format!("{}/thumbnails?width=10&height=10", app.base))
        .header("Idempotency-Key", "job-1")
        .json(&json!({ "key": "photos" }))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 422);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_job_item_costs_under_500_bytes_of_redis_once_its_record_expires() {
    use futures_util::StreamExt;
    use thumbq_common::{
        state_store::{StateStore, jobs::NewJob},
        task::{Fit, ImageInfo, OutputFormat, ResizeArgs, TaskEnvelope, TaskId, TaskRecord},
    };
    const ITEMS: usize = 10_000;
    let scratch = crate::support::ScratchRedis::new();
    let store = StateStore::new(&scratch.0).unwrap().keeping_job_items_for(Duration::from_secs(2));
    let template =
        TaskEnvelope::new(TaskId::new(), ResizeArgs::new(100, 100, Fit::Cover, OutputFormat::Jpeg), chrono::Utc::now());
    let job = JobId::new();
    let spec = thumbq_common::job::JobSpec::Prefix("photos".into());
    store
        .create_job(&NewJob {
            id: job,
            spec: &spec,
            query: "",
            owner: Some("bulk"),
            template: &template,
            callback_url: None,
            ttl: Duration::from_secs(60),
        })
        .await
        .unwrap();
    let result =
        ImageInfo { format: "jpeg".into(), width: 100, height: 100, bytes: 3000, thumbhash: None, frames: None };
    // Each item as the pump and a worker would make it: created, started, succeeded (a tenth failed).
    futures_util::stream::iter(0..ITEMS)
        .for_each_concurrent(32, |i| {
            let (store, template, result) = (&store, &template, &result);
            async move {
                let import = Import::Key(format!("photos/{i:05}.jpg"));
                let id = item_id(job, &import);
                let envelope = template.for_item(job, id, import, chrono::Utc::now());
                let record = TaskRecord { owner: Some("bulk".into()), ..TaskRecord::pending(&envelope, None) };
                store.create(&record).await.unwrap();
                store.start(id, 1, "w").await.unwrap();
                if i % 10 == 0 {
                    let code = thumbq_common::task::TaskErrorCode::NotAnImage;
                    store.fail(id, 1, "not an image", code).await.unwrap();
                } else {
                    store.succeed(id, 1, result, &[], None).await.unwrap();
                }
            }
        })
        .await;
    store.advance_job(job, "photos/09999.jpg", ITEMS as u64, ITEMS as u64, true).await.unwrap();
    let ended = store.job(job).await.unwrap().unwrap();
    assert_eq!((ended.status, ended.done, ended.failed), (JobStatus::Done, 9_000, 1_000), "{ended:?}");

    let mut redis = scratch.redis().await;
    let pattern = format!("{}*", scratch.0.key_prefix);
    // SCAN, not KEYS: the test Redis is shared.
    let keys = async |redis: &mut redis::aio::MultiplexedConnection| -> Vec<String> {
        let (mut cursor, mut found) = (0u64, Vec::new());
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(redis)
                .await
                .unwrap();
            found.extend(batch);
            if next == 0 {
                return found;
            }
            cursor = next;
        }
    };
    let mut left = Vec::new();
    Wait::new("the items' records expire")
        .within(Duration::from_secs(60))
        .until(async || {
            left = keys(&mut redis).await;
            !left.iter().any(|k| k.contains(":task:"))
        })
        .await;
    let bytes = crate::support::services::bytes_under(&scratch.0).await.unwrap();
    let per_item = bytes / ITEMS as u64;
    println!("{ITEMS} finished job items: {bytes} bytes of Redis in {} keys, {per_item} bytes an item", left.len());
    assert!(per_item <= 500, "{per_item} bytes an item: {left:?}");
    // The job itself still says what happened.
    let kept = store.job(job).await.unwrap().unwrap();
    assert_eq!((kept.done, kept.failed, kept.failures.len()), (9_000, 1_000, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_a_callback_url_posts_itself_signed_once_it_ends() {
    let png = sample_image(ImageFormat::Png, 40, 30);
    let origin = Origin::start([("/a.png", Answer::Bytes(png.clone())), ("/b.png", Answer::Bytes(png))]).await;
    let receiver = crate::support::receiver::Receiver::start(&[200]).await;
    let app = spawn_api_configured(|settings| {
        crate::webhooks::webhooks_on(settings, true);
        settings.import.allow_private = true;
    })
    .await;
    app.start_worker().await;
    let query = format!("sizes=16x16&callback_url={}", receiver.url);
    let started = start_job(&app, json!({ "sources": [origin.url("/a.png"), origin.url("/b.png")] }), &query).await;
    assert_eq!(started.callback_url.as_deref(), Some(receiver.url.as_str()));
    until_done(&app, started.id, 50).await;
    eventually("the job's webhook arrives", async || !receiver.received().is_empty()).await;
    let delivered = job(&app, started.id).await;
    let request = &receiver.received()[0];
    assert_eq!(request.header("thumbq-event"), "job.done");
    assert_eq!(request.header("idempotency-key"), format!("job:{}:job.done:1", started.id));
    assert!(crate::webhooks::verified(&request.body, request.header("thumbq-signature")));
    let body = request.json();
    assert_eq!((body["id"].as_str(), body["status"].as_str()), (Some(started.id.to_string().as_str()), Some("DONE")));
    assert_eq!(body["done"], 2);
    assert_eq!(body["status_url"], format!("{}/jobs/{}", app.base, started.id));
    eventually("the delivery is logged", async || {
        job(&app, started.id).await.webhook.is_some_and(|log| log.state == thumbq_common::task::WebhookState::Delivered)
    })
    .await;
    assert_eq!(delivered.done, 2);
    assert_eq!(receiver.received().len(), 1, "one webhook for the job, none for its items");

    // A cancelled job says so.
    let many: Vec<String> = (0..100).map(|i| origin.url(&format!("/none/{i}.png"))).collect();
    let cancelled = start_job(&app, json!({ "sources": many }), &query).await;
    assert_eq!(act(&app, cancelled.id, "cancel").await.status(), 200);
    eventually("the cancelled job's webhook arrives", async || receiver.received().len() == 2).await;
    assert_eq!(receiver.received()[1].header("thumbq-event"), "job.cancelled");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_job_expires_after_its_ttl_with_its_keys() {
    use thumbq_common::{
        state_store::{StateStore, jobs::NewJob},
        task::{Fit, OutputFormat, ResizeArgs, TaskEnvelope, TaskId},
    };
    let scratch = crate::support::ScratchRedis::new();
    let store = StateStore::new(&scratch.0).unwrap();
    let template =
        TaskEnvelope::new(TaskId::new(), ResizeArgs::new(10, 10, Fit::Cover, OutputFormat::Png), chrono::Utc::now());
    let (job, spec) = (JobId::new(), thumbq_common::job::JobSpec::Prefix("empty".into()));
    let new = NewJob {
        id: job,
        spec: &spec,
        query: "",
        owner: None,
        template: &template,
        callback_url: None,
        ttl: Duration::from_secs(1),
    };
    store.create_job(&new).await.unwrap();
    // An empty prefix, listed: the job ends at once, and its keys start to expire.
    store.advance_job(job, "", 0, 0, true).await.unwrap();
    assert_eq!(store.job(job).await.unwrap().unwrap().status, JobStatus::Done);
    assert_eq!(store.jobs(None, 10).await.unwrap().len(), 1);
    Wait::new("the ended job expires")
        .within(Duration::from_secs(30))
        .until(async || store.job(job).await.unwrap().is_none())
        .await;
    assert!(store.jobs(None, 10).await.unwrap().is_empty(), "nor is it listed");
    let mut redis = scratch.redis().await;
    let left: Vec<String> = redis::cmd("ZRANGE")
        .arg(store.keys().jobs(store.keys().shard_of_job(job)))
        .arg(0)
        .arg(-1)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(left.is_empty(), "the listing forgot it: {left:?}");
}

//! The worker registry (`GET /workers`) and the task browser (`GET /tasks`).

use std::time::Duration;

use image::ImageFormat;
use thumbq_api::routes::tasks::TaskPage;
use thumbq_common::{
    TaskEnvelope, TaskId, TaskRecord,
    fixtures::{sample_image, truncated_jpeg},
    state_store::workers::WorkerInfo,
    task::{Fit, ImageInfo, OutputFormat, ResizeArgs},
};

use crate::support::{
    TestApp, eventually,
    process::{WorkerProcess, worker_id},
    spawn_api, spawn_api_configured, spawn_app,
    wait::Wait,
};

/// Polls `GET /workers` until `condition` holds and returns that answer; fails the test, showing the last answer,
/// after the deadline.
async fn workers_until(app: &TestApp, what: &str, condition: impl Fn(&[WorkerInfo]) -> bool) -> Vec<WorkerInfo> {
    Wait::new(what)
        .until_ok(async || {
            let workers: Vec<WorkerInfo> = app.get("/workers").await.json().await.unwrap();
            if condition(&workers) { Ok(workers) } else { Err(workers) }
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_register_count_their_tasks_and_leave_or_expire() {
    let app = spawn_api_configured(|s| s.worker.heartbeat = Duration::from_secs(1)).await;
    let mut steady = WorkerProcess::spawn(&app.settings, "steady");
    let mut doomed = WorkerProcess::spawn(&app.settings, "doomed");
    let (steady_id, doomed_id) = (worker_id(&app.settings, "steady"), worker_id(&app.settings, "doomed"));
    let workers = workers_until(&app, "both workers registered", |w| w.len() == 2).await;
    let entry = workers.iter().find(|w| w.id == steady_id).expect("steady is listed");
    assert_eq!((entry.concurrency, entry.version.as_str()), (2, env!("CARGO_PKG_VERSION")));

    let accepted = app.upload_batch((0..6).map(|i| sample_image(ImageFormat::Png, 20 + i, 20)).collect(), 2).await;
    assert_eq!(app.assert_all_finished(&accepted).await, 6);
    workers_until(&app, "counters add up to the batch", |w| {
        w.iter().map(|w| w.done).sum::<u64>() == 6 && w.iter().all(|w| w.in_flight == 0 && w.failed == 0)
    })
    .await;

    doomed.kill().await; // no goodbye: its entry expires after three missed heartbeats
    workers_until(&app, "the killed worker expired", |w| w.iter().all(|w| w.id != doomed_id)).await;
    assert!(steady.terminate().await);
    let left: Vec<WorkerInfo> = app.get("/workers").await.json().await.unwrap();
    assert!(left.is_empty(), "a worker that stops gracefully unregisters at once: {left:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_listed_newest_first_with_filters_and_pages() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.upload_ok(sample_image(ImageFormat::Png, 16 + i, 16), "").await);
    }
    app.assert_all_finished(&ids).await;

    let page: TaskPage = app.get("/tasks?limit=2").await.json().await.unwrap();
    assert_eq!(page.tasks.iter().map(|r| r.id).collect::<Vec<_>>(), [ids[4].id, ids[3].id]);
    // The next page by the body's cursor, as `curl -s` users follow it, and by the `Link` header: the same page.
    let cursor = page.next_cursor.expect("more tasks follow");
    let next: TaskPage = app.get(&format!("/tasks?limit=2&cursor={cursor}")).await.json().await.unwrap();
    assert_eq!(next.tasks.iter().map(|r| r.id).collect::<Vec<_>>(), [ids[2].id, ids[1].id]);
    let linked: TaskPage =
        app.get(&next_page_of(&app.get("/tasks?limit=2").await).unwrap()).await.json().await.unwrap();
    assert_eq!(linked.tasks.iter().map(|r| r.id).collect::<Vec<_>>(), [ids[2].id, ids[1].id]);
    let succeeded: TaskPage = app.get("/tasks?status=SUCCESS&limit=100").await.json().await.unwrap();
    assert_eq!((succeeded.tasks.len(), succeeded.next_cursor), (5, None));
    let pending = app.get("/tasks?status=PENDING").await.text().await.unwrap();
    assert_eq!(pending, r#"{"tasks":[]}"#, "an empty page, with no cursor");
    for bad in ["limit=0", "limit=101", "status=DONE", "cursor=yesterday", "page=2", "before=2026-01-01T00:00:00Z"] {
        assert_eq!(app.get(&format!("/tasks?{bad}")).await.status(), 400, "{bad}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_index_is_trimmed_as_records_expire() {
    let app = spawn_api_configured(|s| s.redis.result_ttl = Duration::from_secs(1)).await;
    let old = app.upload_ok(sample_image(ImageFormat::Png, 8, 8), "").await;
    let path = format!("/tasks/{}", old.id);
    eventually("the record expires", async || app.get(&path).await.status() == 404).await;
    let new = app.upload_ok(sample_image(ImageFormat::Png, 8, 8), "").await;
    let mut conn = app.redis().await;
    let index = app.states.keys().index_all(app.states.keys().shard_of(new.id));
    let indexed: Vec<String> = redis::cmd("ZRANGE").arg(&index).arg(0).arg(-1).query_async(&mut conn).await.unwrap();
    assert!(indexed.iter().all(|entry| entry.ends_with(&new.id.to_string())), "{index} kept {indexed:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_show_queues_workers_and_recent_outcomes() {
    let app = spawn_app().await;
    let good = app.upload_batch((0..3).map(|i| sample_image(ImageFormat::Png, 10 + i, 10)).collect(), 2).await;
    let broken = app.upload_ok(truncated_jpeg(100, 100), "").await;
    app.assert_all_finished(&good).await;
    assert_eq!(app.wait_for_thumbnail(&broken.name).await.status(), 422);

    // The worker adds its counts about once a second.
    let counted = async || {
        let stats: serde_json::Value = app.get("/stats").await.json().await.unwrap();
        stats["last_minute"]["success"].as_u64().unwrap() + stats["last_minute"]["failure"].as_u64().unwrap() == 4
    };
    crate::support::eventually("the four tasks are counted", counted).await;
    let stats: serde_json::Value = app.get("/stats").await.json().await.unwrap();
    assert_eq!(stats["last_minute"]["success"], 3, "{stats}");
    assert_eq!(stats["last_minute"]["failure"], 1, "{stats}");
    assert_eq!(stats["last_hour"]["success"], 3);
    assert!(stats["last_minute"]["per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(stats["workers_online"], 1);
    assert_eq!(stats["queues"][&app.settings.amqp.queue], 0);
    assert_eq!(stats["queues"][format!("{}.dead", app.settings.amqp.queue)], 0);
    app.stop().await;
}

/// The path of the next page named by a `GET /tasks` answer's `Link: <…>; rel="next"` header.
fn next_page_of(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().unwrap();
    let path = link.strip_prefix('<').and_then(|l| l.split_once(">; rel=\"next\"")).map(|(path, _)| path.to_owned());
    Some(path.unwrap_or_else(|| panic!("malformed Link header {link}")))
}

/// Follows `Link` headers from `first` to the last page; returns every task id in the order served.
async fn walk(app: &TestApp, first: &str) -> Vec<TaskId> {
    let (mut ids, mut next) = (Vec::new(), Some(first.to_owned()));
    while let Some(path) = next {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        next = next_page_of(&response);
        let page: TaskPage = response.json().await.unwrap();
        let linked = next.as_deref().map(|n| n.rsplit_once("cursor=").unwrap().1.to_owned());
        assert_eq!(page.next_cursor, linked, "the body's cursor is the Link header's");
        let page = page.tasks;
        assert!(page.len() <= 7 && (next.is_none() || page.len() == 7), "{path}: a short page before the end");
        ids.extend(page.iter().map(|r| r.id));
        assert!(ids.len() <= 400, "the walk does not end");
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walking_the_task_list_returns_every_task_exactly_once_even_within_one_millisecond() {
    let app = spawn_api().await;
    // 200 tasks created in a burst: 20 per millisecond, every third one finished.
    let args = ResizeArgs::new(10, 10, Fit::Cover, OutputFormat::Png);
    let start = chrono::Utc::now();
    let mut created = Vec::new();
    for i in 0..200 {
        let envelope = TaskEnvelope::new(TaskId::new(), args, start + chrono::Duration::milliseconds(i / 20));
        app.states.create(&TaskRecord::pending(&envelope, None)).await.unwrap();
        if i % 3 == 0 {
            app.states.start(envelope.id, 1, "w").await.unwrap();
            let result =
                ImageInfo { format: "png".into(), width: 10, height: 10, bytes: 1, thumbhash: None, frames: None };
            app.states.succeed(envelope.id, 1, &result, &[], None).await.unwrap();
        }
        created.push((envelope.created_at, envelope.id, i % 3 == 0));
    }
    let all = walk(&app, "/tasks?limit=7").await;
    assert_eq!(all.len(), 200, "every task once");
    assert_eq!(all.iter().collect::<std::collections::HashSet<_>>().len(), 200, "no task twice");
    let mut newest_first = created.clone();
    newest_first.sort_by_key(|t| std::cmp::Reverse((t.0, t.1.to_string())));
    assert_eq!(all, newest_first.iter().map(|t| t.1).collect::<Vec<_>>(), "newest first");

    let finished = walk(&app, "/tasks?limit=7&status=SUCCESS").await;
    let expected: Vec<TaskId> = newest_first.iter().filter(|t| t.2).map(|t| t.1).collect();
    assert_eq!(finished, expected, "the status filter returns each matching task once");
    let pending = walk(&app, "/tasks?limit=7&status=PENDING").await;
    assert_eq!(pending.len(), 200 - expected.len());
    app.stop().await;
}

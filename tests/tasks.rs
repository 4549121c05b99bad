//! Task records: the states a task goes through, what `GET /tasks/{id}` and `GET /tasks` report, and how long a
//! record is kept.

use std::time::Duration;

use image::ImageFormat;
use thumbq_api::routes::tasks::TaskPage;
use thumbq_common::{TaskId, TaskStatus, fixtures::sample_image};

use crate::support::{TestApp, spawn_api_configured, spawn_app, watcher::statuses};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_go_pending_started_success_and_the_record_agrees() {
    let app = spawn_app().await;
    let mut watcher = app.watch().await;
    let source = sample_image(ImageFormat::Jpeg, 640, 480);
    let accepted = app.upload_ok(source.clone(), "width=100&height=100").await;

    // Only a task's end is announced; the record's history has every step.
    assert_eq!(watcher.until(accepted.id, TaskStatus::Success).await, [TaskStatus::Success]);
    let history = statuses(&app.task(accepted.id).await.history);
    assert_eq!(history, [TaskStatus::Pending, TaskStatus::Started, TaskStatus::Success]);

    let response = app.wait_for_thumbnail(&accepted.name).await;
    let thumbnail_bytes = response.bytes().await.unwrap().len() as u64;
    let record = app.task(accepted.id).await;
    assert_eq!(record.id, accepted.id);
    assert_eq!(record.name, accepted.name);
    assert_eq!(record.task, "thumbq.resize");
    assert_eq!(record.status, TaskStatus::Success);
    assert_eq!(record.attempts, 1);
    assert_eq!(record.worker.as_deref(), Some(app.settings.worker.id.as_str()));
    assert_eq!(record.error, None);
    let (started, finished) = (record.started_at.unwrap(), record.finished_at.unwrap());
    assert!(record.created_at <= started && started <= finished, "{record:?}");
    let source_info = record.source.unwrap();
    assert_eq!((source_info.format.as_str(), source_info.width, source_info.height), ("jpeg", 640, 480));
    assert_eq!(source_info.bytes, source.len() as u64);
    let result = record.result.unwrap();
    assert_eq!(
        (result.format.as_str(), result.width, result.height, result.bytes),
        ("jpeg", 100, 100, thumbnail_bytes)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_is_json_with_rfc3339_timestamps() {
    let app = spawn_app().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "").await;
    app.wait_for_thumbnail(&accepted.name).await;
    let json: serde_json::Value = app.get(&format!("/tasks/{}", accepted.id)).await.json().await.unwrap();
    for field in ["created_at", "started_at", "finished_at"] {
        let text = json[field].as_str().unwrap_or_else(|| panic!("{field} missing in {json}"));
        chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{field}={text}: {e}"));
    }
    assert_eq!(json["status"], "SUCCESS");
    assert_eq!(json["args"], serde_json::json!({"width": 100, "height": 100, "fit": "cover", "format": "png"}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_walks_from_pending_to_success_is_listed_and_is_kept_for_the_result_ttl() {
    let ttl = Duration::from_secs(60);
    let app = spawn_api_configured(|s| s.redis.result_ttl = ttl).await;
    // No worker yet: the task waits in PENDING, as a user sees it right after the upload.
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 16, 16), "").await;
    let pending = app.task(accepted.id).await;
    assert_eq!((pending.status, pending.attempts, pending.started_at), (TaskStatus::Pending, 0, None));
    assert_eq!(statuses(&pending.history), [TaskStatus::Pending]);
    assert_ttl_is(&app, accepted.id, ttl).await;

    let mut watcher = app.watch().await;
    app.start_worker().await;
    watcher.until(accepted.id, TaskStatus::Success).await;
    let record = app.task(accepted.id).await;
    assert_eq!(record.status, TaskStatus::Success);
    assert_eq!(statuses(&record.history), [TaskStatus::Pending, TaskStatus::Started, TaskStatus::Success]);
    let started = &record.history[1];
    assert_eq!((started.attempt, started.worker.as_deref()), (1, Some(app.settings.worker.id.as_str())));
    assert!(record.history.is_sorted_by_key(|change| change.at), "{:?}", record.history);

    // Listed, with the record `GET /tasks/{id}` answers, under its status and no other.
    let listed = async |query: &str| {
        let page: TaskPage = app.get(&format!("/tasks{query}")).await.json().await.unwrap();
        page.tasks.into_iter().find(|task| task.id == accepted.id)
    };
    assert_eq!(listed("").await.map(|task| task.status), Some(TaskStatus::Success));
    assert!(listed("?status=SUCCESS").await.is_some());
    assert!(listed("?status=PENDING").await.is_none());
    // Every change restarts the record's TTL: it is kept `result_ttl` after it finished.
    assert_ttl_is(&app, accepted.id, ttl).await;
    app.stop().await;
}

/// Asserts that task `id`'s record expires `ttl` from now, give or take the few seconds a test takes.
async fn assert_ttl_is(app: &TestApp, id: TaskId, ttl: Duration) {
    // -1 (no TTL) and -2 (no record) fail the range as well.
    let seconds: i64 =
        redis::cmd("TTL").arg(app.states.keys().task(id)).query_async(&mut app.redis().await).await.unwrap();
    let configured = ttl.as_secs() as i64;
    assert!((configured - 10..=configured).contains(&seconds), "record TTL {seconds} s, configured {ttl:?}");
}

//! Task records: the states a task goes through and what `GET /tasks/{id}` reports.

use image::ImageFormat;
use thumbq_common::{TaskStatus, fixtures::sample_image};

use crate::support::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_go_pending_started_success_and_the_record_agrees() {
    let app = spawn_app().await;
    let mut watcher = app.watch().await;
    let source = sample_image(ImageFormat::Jpeg, 640, 480);
    let accepted = app.upload_ok(source.clone(), "width=100&height=100").await;

    let history = watcher.until(accepted.id, TaskStatus::Success).await;
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
async fn task_records_expire_after_the_result_ttl() {
    let app = crate::support::spawn_api_with(|s| s.redis.result_ttl = std::time::Duration::from_secs(60)).await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 16, 16), "").await;
    let client = redis::Client::open(app.settings.redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL").arg(app.states.keys().task(accepted.id)).query_async(&mut conn).await.unwrap();
    assert!((1..=60).contains(&ttl), "ttl {ttl}");
}

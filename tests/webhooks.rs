//! Completion webhooks: a receiver on loopback gets each ended task's record, signed; failures are retried, then
//! dead-lettered; with private targets refused, a loopback target never sees a connection.

use image::ImageFormat;
use thumbq_common::{
    Settings,
    fixtures::{SPECIAL_PURPOSE_WEBHOOK_URLS, sample_image, truncated_jpeg},
    settings::Secret,
    task::{TaskId, TaskRecord, TaskStatus, WebhookState},
    webhook::signature,
};

use crate::support::{TestApp, eventually, receiver::Receiver, spawn_api, spawn_api_configured};

const SECRET: &str = "whsec_test_0123456789abcdef0123456789";

/// Webhooks on, signed with [`SECRET`]; `allow_private` lets them reach a receiver on loopback.
pub(crate) fn webhooks_on(settings: &mut Settings, allow_private: bool) {
    settings.webhook.secret = Some(Secret::new(SECRET.into()));
    settings.webhook.allow_private = allow_private;
}

/// Waits until the task's webhook log is no longer pending, and returns the record.
pub(crate) async fn webhook_settled(app: &TestApp, id: TaskId) -> TaskRecord {
    eventually("the webhook is settled", async || {
        app.task(id).await.webhook.is_some_and(|w| w.state != WebhookState::Pending)
    })
    .await;
    app.task(id).await
}

pub(crate) fn verified(body: &[u8], header: &str) -> bool {
    let now = chrono::Utc::now().timestamp();
    signature::verify(SECRET.as_bytes(), header, body, now, 300).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_task_posts_its_signed_record_and_a_500_is_retried_until_delivered() {
    let receiver = Receiver::start(&[500, 503, 200]).await;
    let app = spawn_api_configured(|s| webhooks_on(s, true)).await;
    app.start_worker().await;
    let query = format!("width=50&height=40&callback_url={}", receiver.url);
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 200, 160), &query).await;
    let record = webhook_settled(&app, accepted.id).await;

    let log = record.webhook.expect("a webhook log");
    assert_eq!(log.state, WebhookState::Delivered);
    let statuses: Vec<Option<u16>> = log.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)], "two failures, then delivered: {log:?}");
    assert!(log.attempts[0].error.as_deref().unwrap_or_default().contains("500"));
    let received = receiver.received();
    assert_eq!(received.len(), 3, "one request per attempt");
    for request in &received {
        assert!(verified(&request.body, request.header("thumbq-signature")), "the signature verifies");
        assert!(!verified(b"{}", request.header("thumbq-signature")), "and holds for that body only");
        assert_eq!(request.header("idempotency-key"), format!("{}:task.succeeded:0", accepted.id), "one per event");
        assert_eq!(request.header("thumbq-event"), "task.succeeded");
        assert_eq!(request.header("content-type"), "application/json");
        let body = request.json();
        assert_eq!(body["id"], accepted.id.to_string());
        assert_eq!(body["status"], "SUCCESS");
        assert_eq!((body["result"]["width"].as_u64(), body["result"]["height"].as_u64()), (Some(50), Some(40)));
        assert_eq!(body["url"], accepted.url, "the record carries the thumbnail's URL");
        assert!(body.get("webhook").is_none(), "the delivery log is not part of what is sent");
    }
    // The URL the webhook names serves the thumbnail.
    assert_eq!(app.download_image(&accepted.name).await.width(), 50);
    assert_eq!(app.queue_depth(&format!("{}.webhooks.dead", app.topology.work)).await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gives_up_after_its_attempts_and_is_dead_lettered_without_holding_up_thumbnails() {
    let receiver = Receiver::start(&[500]).await;
    let app = spawn_api_configured(|s| {
        webhooks_on(s, true);
        s.webhook.max_attempts = 3;
    })
    .await;
    app.start_worker().await;
    let query = format!("callback_url={}", receiver.url);
    let hooked = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), &query).await;
    let record = webhook_settled(&app, hooked.id).await;
    let log = record.webhook.unwrap();
    assert_eq!(log.state, WebhookState::Failed);
    assert_eq!(log.attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2, 3], "three attempts, no more");
    assert_eq!(receiver.received().len(), 3);
    let dead = format!("{}.webhooks.dead", app.topology.work);
    assert_eq!(app.queue_depth(&dead).await, 1, "the webhook waits in its own dead letters");
    assert_eq!(app.queue_depth(&format!("{}.dead", app.topology.work)).await, 0, "the task is not dead-lettered");
    // Thumbnails went on all along.
    let plain = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "").await;
    assert_eq!(app.wait_for_thumbnail(&plain.name).await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_cancelled_tasks_send_their_webhook_too() {
    let receiver = Receiver::start(&[200]).await;
    let app = spawn_api_configured(|s| webhooks_on(s, true)).await;
    let query = format!("callback_url={}", receiver.url);
    // Cancelled before any worker ran: the worker that meets the REVOKED task sends its webhook.
    let cancelled = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), &query).await;
    let response = app.client.delete(format!("{}/tasks/{}", app.base, cancelled.id)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let failed = app.upload_ok(truncated_jpeg(300, 200), &query).await;
    app.start_worker().await;
    assert_eq!(webhook_settled(&app, failed.id).await.status, TaskStatus::Failure);
    assert_eq!(webhook_settled(&app, cancelled.id).await.status, TaskStatus::Revoked);
    let events: Vec<(String, String, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            let body = r.json();
            (r.header("thumbq-event").to_owned(), body["id"].as_str().unwrap().to_owned(), body["status"].to_string())
        })
        .collect();
    assert!(events.contains(&("task.failed".into(), failed.id.to_string(), "\"FAILURE\"".into())), "{events:?}");
    assert!(events.contains(&("task.revoked".into(), cancelled.id.to_string(), "\"REVOKED\"".into())), "{events:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_private_targets_refused_a_loopback_callback_never_gets_a_connection() {
    // A listener that only counts: nothing may ever connect to it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = spawn_api_configured(|s| webhooks_on(s, false)).await;
    app.start_worker().await;

    // A literal internal address is refused at upload, in any spelling.
    for target in
        [format!("http://127.0.0.1:{port}/hook"), format!("http://2130706433:{port}/"), format!("http://[::1]:{port}/")]
    {
        let response = app.upload(sample_image(ImageFormat::Png, 32, 32), &format!("callback_url={target}")).await;
        assert_eq!(response.status(), 400, "{target}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("internal address"), "{target}: {body}");
    }
    // A name that resolves to loopback passes the upload and is refused when resolved, before connecting.
    let query = format!("callback_url=http://localhost:{port}/hook");
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 32, 32), &query).await;
    let record = webhook_settled(&app, accepted.id).await;
    assert_eq!(record.status, TaskStatus::Success, "the thumbnail itself is made");
    let log = record.webhook.unwrap();
    assert_eq!((log.state, log.attempts.len()), (WebhookState::Failed, 1), "refused once, never retried");
    assert!(log.attempts[0].error.as_deref().unwrap().contains("refused"), "{log:?}");
    assert_eq!(app.queue_depth(&format!("{}.webhooks.dead", app.topology.work)).await, 1);
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no connection reached the loopback target"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_url_is_refused_when_webhooks_are_off_or_it_is_not_http() {
    let app = spawn_api().await;
    let response = app.upload(sample_image(ImageFormat::Png, 32, 32), "callback_url=https://hooks.example.com/x").await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("THUMBQ_WEBHOOK_SECRET"));
    app.stop().await;
    let app = spawn_api_configured(|s| webhooks_on(s, true)).await;
    for target in ["ftp://example.com/", "file:///etc/passwd", "https://user:pw@example.com/", "nonsense"] {
        let response = app.upload(sample_image(ImageFormat::Png, 32, 32), &format!("callback_url={target}")).await;
        assert_eq!(response.status(), 400, "{target}");
    }
    assert!(app.stored_originals().await.is_empty(), "nothing was kept");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_purpose_addresses_are_refused_at_upload_in_every_translation_form() {
    let app = spawn_api_configured(|s| webhooks_on(s, false)).await;
    for target in SPECIAL_PURPOSE_WEBHOOK_URLS {
        let response = app.upload(sample_image(ImageFormat::Png, 32, 32), &format!("callback_url={target}")).await;
        assert_eq!(response.status(), 400, "{target}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("internal address"), "{target}: {body}");
    }
    assert!(app.stored_originals().await.is_empty(), "nothing was kept");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_url_too_long_once_percent_encoded_is_refused_at_upload_not_at_delivery() {
    let app = spawn_api_configured(|s| webhooks_on(s, true)).await;
    // 1,029 characters with 1,000 spaces: 3,029 once each space is stored as `%20`.
    let target = format!("https://hooks.example.com/{}end", "%20".repeat(1000));
    let response = app.upload(sample_image(ImageFormat::Png, 32, 32), &format!("callback_url={target}")).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("longer than 2048 characters once normalised"), "{body}");
    assert!(app.stored_originals().await.is_empty(), "nothing was kept");
    assert!(app.redis_keys().await.iter().all(|k| !k.contains(":task:")), "nothing was recorded");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_replay_the_success_has_its_own_idempotency_key_and_retries_of_one_event_share_theirs() {
    let receiver = Receiver::start(&[500, 200, 503, 200]).await;
    let app = spawn_api_configured(|s| webhooks_on(s, true)).await;
    app.start_worker().await;
    crate::support::break_folder(&app.thumbnails_dir(), true);
    let query = format!("callback_url={}", receiver.url);
    let task = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), &query).await;
    eventually("the task is dead-lettered", async || app.peek_dead_letters().await.len() == 1).await;
    assert_eq!(webhook_settled(&app, task.id).await.status, TaskStatus::Failure);
    crate::support::break_folder(&app.thumbnails_dir(), false);

    let replay = app.client.post(format!("{}/tasks/{}/replay", app.base, task.id)).send().await.unwrap();
    assert_eq!(replay.status(), 200);
    eventually("the success's webhook is delivered", async || {
        let record = app.task(task.id).await;
        record.status == TaskStatus::Success && record.webhook.is_some_and(|w| w.state == WebhookState::Delivered)
    })
    .await;
    let sent: Vec<(String, String)> = receiver
        .received()
        .iter()
        .map(|r| (r.header("thumbq-event").to_owned(), r.header("idempotency-key").to_owned()))
        .collect();
    let (failed, succeeded) = (format!("{}:task.failed:0", task.id), format!("{}:task.succeeded:1", task.id));
    let expected = [
        ("task.failed", &failed),
        ("task.failed", &failed),
        ("task.succeeded", &succeeded),
        ("task.succeeded", &succeeded),
    ]
    .map(|(event, key)| (event.to_owned(), key.clone()));
    assert_eq!(sent, expected.to_vec(), "each event retried under its own key");
    app.stop().await;
}

//! Breaking things on purpose. Each test runs a batch of at least 50 tasks through a fault and then checks the promise
//! of `docs/architecture.md`: every accepted task reached SUCCESS or FAILURE, every SUCCESS has its thumbnail on disk.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use image::ImageFormat;
use lapin::options::{BasicGetOptions, BasicNackOptions};
use thumbq_common::{TaskStatus, broker, fixtures::sample_image};

use crate::support::{
    Backend, broker_node::BrokerNode, on_each_store, process::WorkerProcess, proxy::Proxy, queues::header_text,
    services::address_of, spawn_api, spawn_api_configured, spawn_api_with_store,
};

/// Tasks in every fault test.
const BATCH: usize = 50;

/// `count` JPEG photos-to-be of slightly different sizes, large enough that a worker is busy when the fault hits.
fn batch(count: usize, width: u32) -> Vec<Vec<u8>> {
    (0..count).map(|i| sample_image(ImageFormat::Jpeg, width + i as u32, width * 3 / 4)).collect()
}

/// Writes a measured figure past the test harness's output capture, so it shows in `make test`'s output.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "[figure] {line}");
}

on_each_store!(a_worker_killed_mid_batch_loses_nothing_and_duplicates_leave_one_thumbnail);
async fn a_worker_killed_mid_batch_loses_nothing_and_duplicates_leave_one_thumbnail(backend: Backend) {
    let app = spawn_api_with_store(backend, |_| {}).await;
    let mut watcher = app.watch().await;
    let mut victim = WorkerProcess::spawn(&app.settings, "victim");
    let accepted = app.upload_batch(batch(BATCH, 1600), 4).await;

    watcher.until_count(TaskStatus::Success, 5).await;
    victim.kill().await; // SIGKILL: no ack, no cleanup, tasks in flight
    app.start_worker().await;

    assert_eq!(app.assert_all_finished(&accepted).await, BATCH);
    assert_eq!(app.stored_thumbnails().await.len(), BATCH, "exactly one thumbnail per task");
    // Kept for renditions later (`THUMBQ_KEEP_ORIGINALS`): one per task, whatever the kills and duplicates did.
    assert_eq!(app.stored_originals().await.len(), BATCH, "one original per task");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_dropping_every_connection_mid_batch_loses_nothing() {
    let proxy = Proxy::start(address_of(&crate::support::test_settings().amqp.url)).await;
    let app = spawn_api_configured(|s| s.amqp.url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port)).await;
    app.start_worker().await;
    let mut watcher = app.watch().await;

    let uploads = app.upload_batch(batch(BATCH, 1200), 4);
    let finished = app.upload_ok(sample_image(ImageFormat::Png, 32, 32), "").await;
    assert_eq!(app.wait_for_thumbnail(&finished.name).await.status(), 200);
    let fault = async {
        watcher.until_count(TaskStatus::Success, 5).await;
        proxy.cut(); // both API and worker lose their connections; new ones are refused for a while
        // While RabbitMQ is unreachable: uploads are refused with Retry-After, /ready names RabbitMQ but keeps the
        // API in its load balancer (degraded), and finished thumbnails are still served.
        let refused = app.upload(sample_image(ImageFormat::Png, 8, 8), "").await;
        assert_eq!((refused.status().as_u16(), refused.headers()["retry-after"].to_str().unwrap()), (503, "5"));
        let ready = app.get("/ready").await;
        assert_eq!(ready.status(), 200);
        let ready: serde_json::Value = ready.json().await.unwrap();
        assert_eq!((ready["status"].as_str(), ready["checks"]["redis"].as_str()), (Some("degraded"), Some("ok")));
        assert_ne!(ready["checks"]["rabbitmq"], "ok");
        assert_eq!(app.get(&format!("/thumbnails/{}", finished.name)).await.status(), 200);
        tokio::time::sleep(Duration::from_secs(1)).await;
        proxy.restore();
    };
    let (accepted, ()) = tokio::join!(uploads, fault);
    assert_eq!(accepted.len(), BATCH);
    assert_eq!(app.assert_all_finished(&accepted).await, BATCH);
    let ready: serde_json::Value = app.get("/ready").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready", "the API reconnected: {ready}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_restart_mid_batch_keeps_the_queued_tasks() {
    let broker = BrokerNode::start().await; // restarting the shared broker would break every other test
    let app = spawn_api_configured(|s| {
        s.amqp.url = broker.url();
        s.worker.concurrency = 1; // with large PNGs (no shrink-on-load) the batch outlasts a restart
    })
    .await;

    // Queued with no worker: the persistent messages must survive the restart in the durable queue.
    let large = sample_image(ImageFormat::Png, 1600, 1200);
    let accepted = app.upload_batch(vec![large; BATCH], 4).await;
    broker.restart().await;
    assert_eq!(app.queue_depth(&app.topology.work).await, BATCH as u32, "every queued task survived the restart");

    // Restarted again while a worker is busy: API and worker reconnect, what was in flight is redelivered.
    app.start_worker().await;
    let mut watcher = app.watch().await;
    watcher.until_count(TaskStatus::Success, 5).await;
    let restarted_at = chrono::Utc::now();
    broker.restart().await;
    let after = app.upload_batch(batch(5, 800), 1).await;

    assert_eq!(app.assert_all_finished(&accepted).await, BATCH, "persistent messages survived the restart");
    assert_eq!(app.assert_all_finished(&after).await, 5, "the API reconnected and publishes again");
    let mut finished_after_restart = 0;
    for task in &accepted {
        finished_after_restart += usize::from(app.task(task.id).await.finished_at > Some(restarted_at));
    }
    assert!(finished_after_restart > 0, "the restart came after the batch had finished: it proved nothing");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_for_seconds_mid_batch_delays_but_loses_nothing() {
    let proxy = Proxy::start(address_of(&crate::support::test_settings().redis.url)).await;
    let app = spawn_api_configured(|s| {
        s.redis.url = format!("redis://127.0.0.1:{}", proxy.port);
        s.redis.timeout = Duration::from_millis(500);
    })
    .await;
    app.start_worker().await;
    let mut watcher = app.watch().await;

    let uploads = app.upload_batch(batch(BATCH, 1200), 4);
    let fault = async {
        watcher.until_count(TaskStatus::Success, 5).await;
        proxy.cut();
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.restore();
    };
    let (accepted, ()) = tokio::join!(uploads, fault);
    assert_eq!(accepted.len(), BATCH);
    assert_eq!(app.assert_all_finished(&accepted).await, BATCH);
    for task in &accepted {
        let record = app.task(task.id).await;
        assert!(record.finished_at >= record.started_at && record.result.is_some(), "{record:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_batch_finishes_in_flight_tasks_and_leaves_the_rest_queued() {
    let app = spawn_api().await;
    let mut worker = WorkerProcess::spawn(&app.settings, "stopping");
    let accepted = app.upload_batch(batch(BATCH, 2000), 4).await;

    // Only ends are announced: five tasks begun or done is read from their records.
    let begun = async || {
        let mut begun = 0;
        for task in &accepted {
            begun += usize::from(app.task(task.id).await.status != TaskStatus::Pending);
        }
        begun >= 5
    };
    crate::support::eventually("five tasks have started", begun).await;
    assert!(worker.terminate().await, "the worker exits cleanly on SIGTERM");
    let mut done = 0;
    for task in &accepted {
        let status = app.task(task.id).await.status;
        assert!(matches!(status, TaskStatus::Pending | TaskStatus::Success), "{} was left {status}", task.id);
        done += usize::from(status == TaskStatus::Success);
    }
    assert!(done >= 1, "tasks in flight at SIGTERM were finished");
    assert!(done < BATCH, "the batch was still running at SIGTERM");

    app.start_worker().await;
    assert_eq!(app.assert_all_finished(&accepted).await, BATCH, "the next worker took the rest");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_coming_back_is_dead_lettered_at_the_delivery_limit() {
    let app = spawn_api_configured(|s| s.amqp.delivery_limit = 3).await;
    app.publish_raw(b"{\"crashes\": \"every worker\"}", Some("crasher")).await;
    // Play a worker that crashes on it every time: take it and hand it back, until RabbitMQ stops delivering.
    let connection = broker::connect(&app.settings.amqp, "thumbq-test crasher").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut deliveries = 0;
    while let Some(message) =
        channel.basic_get(app.topology.work.as_str().into(), BasicGetOptions::default()).await.unwrap()
    {
        deliveries += 1;
        message.delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.unwrap();
        assert!(deliveries < 20, "the redelivery loop was not cut");
    }
    assert_eq!(deliveries, 4, "delivered once, then redelivered up to the limit of 3");
    let letters = app.drain_dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(header_text(&letters[0].1, "x-first-death-reason"), "delivery_limit");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_1000_uploads_from_16_clients_against_2_workers_all_succeed() {
    const UPLOADS: usize = 1000;
    let app = spawn_api().await;
    app.start_worker().await;
    app.start_worker().await;
    let images = (0..UPLOADS).map(|i| sample_image(ImageFormat::Jpeg, 320 + (i % 64) as u32, 240)).collect();

    let started = Instant::now();
    let accepted = app.upload_batch(images, 16).await;
    let uploaded = started.elapsed();
    assert_eq!(app.assert_all_finished(&accepted).await, UPLOADS);
    let wall = started.elapsed();
    report(&format!(
        "load: {UPLOADS} uploads (320x240 JPEG) from 16 clients, 2 in-process workers: all accepted in {:.1} s, \
         all SUCCESS in {:.1} s ({:.0} tasks/s)",
        uploaded.as_secs_f64(),
        wall.as_secs_f64(),
        UPLOADS as f64 / wall.as_secs_f64()
    ));
    app.stop().await;
}

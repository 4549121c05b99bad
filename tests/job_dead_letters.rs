//! A job's item that RabbitMQ dead-letters (it crashed its worker `THUMBQ_DELIVERY_LIMIT` times) lands in the bulk
//! lane's dead-letter queue. Its job cannot end without it, so `GET /dead-letters` lists it beside the tasks' and a
//! replay puts it back in the bulk lane.

use image::ImageFormat;
use lapin::options::{BasicGetOptions, BasicNackOptions};
use serde_json::{Value, json};
use thumbq_common::{TaskId, broker, fixtures::sample_image, job::JobStatus, settings::StoreLocation};

use crate::{
    jobs::{job, start_job},
    support::{eventually, spawn_api_configured},
};

/// Items in the job: enough that some are still queued when the worker stops.
const ITEMS: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_item_dead_lettered_at_the_delivery_limit_is_listed_and_replayed_into_the_bulk_lane() {
    let library = tempfile::tempdir().unwrap();
    let app = spawn_api_configured(|s| {
        s.import.location = Some(StoreLocation::Local(library.path().to_path_buf()));
        s.jobs.window = ITEMS as u32;
        s.amqp.delivery_limit = 2;
    })
    .await;
    // Large enough that a worker making them one at a time is still busy when it is stopped.
    let photo = sample_image(ImageFormat::Jpeg, 3000, 2000);
    for i in 0..ITEMS {
        app.put_in_library(&format!("photos/{i:02}.jpg"), photo.clone()).await;
    }
    app.start_worker().await;
    let id = start_job(&app, json!({"prefix": "photos"}), "").await.id;
    eventually("every item is queued", async || job(&app, id).await.queued == ITEMS).await;
    app.stop_workers().await;
    let bulk = app.topology.bulk.clone().unwrap();
    assert!(app.queue_depth(&bulk.work).await > 0, "items were still waiting when the worker stopped");

    // Play a worker that crashes on the next item every time, until RabbitMQ dead-letters it.
    let connection = broker::connect(&app.settings.amqp, "thumbq-test crasher").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut crashed = None;
    for delivery in 0.. {
        assert!(delivery < 10, "the redelivery loop was not cut");
        let get = channel.basic_get(bulk.work.as_str().into(), BasicGetOptions::default()).await.unwrap();
        let message = get.expect("the item comes back until the limit").delivery;
        let item = thumbq_common::TaskEnvelope::from_json(&message.data).unwrap().id;
        if crashed.is_some_and(|crashed| crashed != item) {
            // RabbitMQ took the crasher out of the queue: this is the next item, which goes back untouched.
            message.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.unwrap();
            break;
        }
        crashed = Some(item);
        message.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.unwrap();
        if app.queue_depth(&bulk.dead).await == 1 {
            break;
        }
    }
    connection.close(200, "done".into()).await.unwrap();
    let crashed: TaskId = crashed.unwrap();
    assert_eq!(app.queue_depth(&bulk.dead).await, 1, "RabbitMQ dead-lettered the item in the bulk lane");
    assert_eq!(app.queue_depth(&app.topology.dead).await, 0);

    let listed: Value = app.get("/dead-letters").await.json().await.unwrap();
    let letters = listed["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{listed}");
    assert_eq!(letters[0]["task_id"], crashed.to_string(), "{listed}");
    assert_eq!(letters[0]["reason"], "delivery_limit", "{listed}");

    // Every other item is made; the job waits for the one in the dead letters.
    app.start_worker().await;
    eventually("every other item is made", async || job(&app, id).await.done == ITEMS - 1).await;
    assert_eq!(job(&app, id).await.status, JobStatus::Running, "the job waits for its dead-lettered item");

    let replay = app.client.post(format!("{}/dead-letters/replay", app.base)).send().await.unwrap();
    assert_eq!(replay.status(), 200);
    let replayed: Value = replay.json().await.unwrap();
    assert_eq!(replayed["tasks"], 1, "{replayed}");
    eventually("the job ends", async || job(&app, id).await.status == JobStatus::Done).await;
    let ended = job(&app, id).await;
    assert_eq!((ended.total, ended.done, ended.failed), (ITEMS, ITEMS, 0), "each item made once: {ended:?}");
    assert_eq!(app.task(crashed).await.status, thumbq_common::TaskStatus::Success);
    assert_eq!(app.queue_depth(&app.topology.work).await, 0, "the replay went to the bulk lane, not the tasks'");
    assert_eq!(app.queue_depth(&bulk.dead).await, 0);
    app.stop().await;
}

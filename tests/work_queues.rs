//! Several work queues (`THUMBQ_WORK_QUEUES`): the tasks are spread over them by id, each task's message in the
//! queue its id names; every worker consumes them all; a smaller number later loses nothing (the workers drain the
//! queues it no longer uses); dead letters of every queue are replayed.

use image::ImageFormat;
use lapin::options::BasicGetOptions;
use thumbq_api::routes::thumbnails::Accepted;
use thumbq_common::{broker, fixtures::sample_image, task::TaskId};

use crate::support::{TestApp, spawn_api_configured};

/// Uploads of the tests.
const TASKS: usize = 32;

async fn upload_all(app: &TestApp) -> Vec<Accepted> {
    let mut accepted = Vec::new();
    for i in 0..TASKS {
        accepted.push(app.upload_ok(sample_image(ImageFormat::Png, 40 + i as u32, 30), "width=20&height=15").await);
    }
    accepted
}

/// Each work queue's tasks, read and left in place.
async fn tasks_by_queue(app: &TestApp) -> Vec<(String, Vec<TaskId>)> {
    let connection = broker::connect(&app.settings.amqp, "thumbq-test").await.expect("RabbitMQ");
    let channel = connection.create_channel().await.expect("a channel");
    let mut queues = Vec::new();
    for lane in app.topology.work_lanes() {
        let mut ids = Vec::new();
        // Unacked, the messages go back to their queue when the channel closes.
        while let Some(message) =
            channel.basic_get(lane.work.as_str().into(), BasicGetOptions { no_ack: false }).await.expect("basic.get")
        {
            let id = message.delivery.properties.message_id().as_ref().expect("a message id").to_string();
            ids.push(id.parse().expect("a task id"));
        }
        queues.push((lane.work.clone(), ids));
    }
    let _ = connection.close(200, "done".into()).await;
    queues
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_spread_over_four_work_queues_by_id_and_one_worker_makes_them_all() {
    let app = spawn_api_configured(|s| s.amqp.work_queues = 4).await;
    let accepted = upload_all(&app).await;

    let queues = tasks_by_queue(&app).await;
    assert_eq!(queues.len(), 4);
    assert_eq!(queues.iter().map(|(_, ids)| ids.len()).sum::<usize>(), TASKS, "every task queued once");
    for (queue, queued) in &queues {
        assert!(!queued.is_empty(), "{queue} got no task of {TASKS}: {queues:?}");
        for id in queued {
            assert_eq!(&app.topology.lane_of(*id).work, queue, "task {id} is in the queue its id names");
        }
    }

    app.start_worker().await;
    assert_eq!(app.assert_all_finished(&accepted).await, TASKS, "every task succeeded");
    assert_eq!(app.stored_thumbnails().await.len(), TASKS);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_work_queues_later_lose_nothing_the_workers_drain_the_rest() {
    // The API uploads with four queues; the worker then runs with two, as after a change of the setting.
    let app = spawn_api_configured(|s| s.amqp.work_queues = 4).await;
    let accepted = upload_all(&app).await;
    let queues = tasks_by_queue(&app).await;
    assert!(queues[2..].iter().any(|(_, queued)| !queued.is_empty()), "tasks wait in the queues no longer used");

    let mut fewer = app.settings.clone();
    fewer.amqp.work_queues = 2;
    app.start_worker_with(fewer, app.store.clone()).await;
    assert_eq!(app.assert_all_finished(&accepted).await, TASKS, "every task succeeded");
    for (queue, _) in queues {
        assert_eq!(app.queue_depth(&queue).await, 0, "{queue} is drained");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_of_every_work_queue_are_replayed() {
    let app = spawn_api_configured(|s| s.amqp.work_queues = 4).await;
    let accepted = upload_all(&app).await;
    // Each task's message into its own queue's dead letters, as RabbitMQ does at the delivery limit.
    assert_eq!(app.dead_letter_work_queue().await, TASKS);
    for lane in app.topology.work_lanes() {
        assert!(app.queue_depth(&lane.dead).await > 0, "{} holds dead letters", lane.dead);
    }
    app.start_worker().await;

    let replay = app.client.post(format!("{}/dead-letters/replay", app.base)).send().await.unwrap();
    let done: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(done["tasks"], TASKS, "{done}");
    assert_eq!(app.assert_all_finished(&accepted).await, TASKS, "every task succeeded");
    for lane in app.topology.work_lanes() {
        assert_eq!(app.queue_depth(&lane.dead).await, 0, "{} is empty", lane.dead);
    }
    app.stop().await;
}

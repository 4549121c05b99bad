//! A three-node RabbitMQ cluster of the test's own: the node that leads the work queue and a worker are killed
//! with SIGKILL mid-batch, and nothing is lost; with one work queue, and with four (`THUMBQ_WORK_QUEUES`), whose
//! leaders RabbitMQ spreads over the nodes.

use image::ImageFormat;
use thumbq_common::{TaskStatus, fixtures::sample_image};

use crate::support::{broker_node::BrokerCluster, process::WorkerProcess, spawn_api_configured};

/// Uploads around the kill.
const BEFORE: usize = 120;
/// Uploads after it: these must go through a survivor.
const AFTER: usize = 20;

fn photos(count: usize) -> Vec<Vec<u8>> {
    (0..count).map(|i| sample_image(ImageFormat::Jpeg, 800 + i as u32, 600)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_work_queues_leader_node_and_a_worker_mid_batch_loses_nothing() {
    leader_node_and_worker_killed_mid_batch(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_four_work_queues_killing_a_leader_node_and_a_worker_mid_batch_loses_nothing() {
    leader_node_and_worker_killed_mid_batch(4).await;
}

async fn leader_node_and_worker_killed_mid_batch(work_queues: u32) {
    let cluster = BrokerCluster::start().await;
    let app = spawn_api_configured(|s| {
        s.amqp.url = cluster.url();
        s.amqp.quorum_group_size = 3;
        s.amqp.work_queues = work_queues;
    })
    .await;
    let mut watcher = app.watch().await;
    let mut victim = WorkerProcess::spawn(&app.settings, "victim");
    app.start_worker().await;
    let work = app.topology.work.clone();
    assert_eq!(cluster.members_of(&work, 0).await, 3, "the work queue has a member on every node");
    let queues: Vec<String> = app.topology.work_lanes().map(|lane| lane.work.clone()).collect();
    let mut leaders = std::collections::HashSet::new();
    for queue in &queues {
        leaders.insert(cluster.leader_of(queue, 0).await);
    }
    if work_queues > 1 {
        assert!(leaders.len() > 1, "the work queues' leaders are spread over the nodes: {leaders:?}");
    }

    let fault = async {
        watcher.until_count(TaskStatus::Success, 20).await;
        let leader = cluster.leader_of(&work, 0).await;
        cluster.nodes[leader].kill();
        victim.kill().await;
        leader
    };
    let (mut accepted, killed) = tokio::join!(app.upload_batch(photos(BEFORE), 4), fault);
    accepted.extend(app.upload_batch(photos(AFTER), 2).await);
    assert_eq!(accepted.len(), BEFORE + AFTER, "every upload was accepted in the end");

    assert_eq!(app.assert_all_finished(&accepted).await, BEFORE + AFTER, "every accepted task succeeded");
    assert_eq!(app.stored_thumbnails().await.len(), BEFORE + AFTER, "exactly one thumbnail per task");
    // Kept for renditions later (`THUMBQ_KEEP_ORIGINALS`): one per task, none left over from a retry.
    assert_eq!(app.stored_originals().await.len(), BEFORE + AFTER, "one original per task");

    let survivor = (killed + 1) % 3;
    for queue in &queues {
        assert_ne!(cluster.leader_of(queue, survivor).await, killed, "a survivor leads {queue}");
    }
    let mut connections = String::new();
    for node in (0..3).filter(|n| *n != killed) {
        connections.push_str(&cluster.connections_on(node).await);
    }
    assert!(connections.contains("thumbq-api"), "the API reconnected to a survivor: {connections}");
    assert!(connections.contains("thumbq-worker"), "the worker reconnected to a survivor: {connections}");
    app.stop().await;
}

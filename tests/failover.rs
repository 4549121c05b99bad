//! Redis with Sentinel: the primary is killed with SIGKILL mid-batch, the replica takes over, and no accepted task
//! is lost. And a thumbnail whose record was lost anyway is still served, and its record repaired.

use image::{GenericImageView, ImageFormat};
use thumbq_common::{TaskStatus, fixtures::sample_image};

use crate::support::{eventually, redis_failover::RedisFailover, spawn_api_configured, spawn_app};

/// Uploads in the batch.
const BATCH: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_redis_primary_mid_batch_loses_no_task() {
    let redis = RedisFailover::start().await;
    let app = spawn_api_configured(|s| {
        s.redis.url = format!("redis://127.0.0.1:{}", redis.primary_port); // only its database and password count
        s.redis.sentinels = redis.sentinels.clone();
        s.redis.master_name = redis.master_name.clone();
    })
    .await;
    app.start_worker().await;
    let photos = (0..BATCH).map(|i| sample_image(ImageFormat::Jpeg, 800 + i as u32, 600)).collect();

    let fault = async {
        eventually("20 thumbnails are stored", async || app.stored_thumbnails().await.len() >= 20).await;
        redis.kill_primary();
    };
    let (accepted, ()) = tokio::join!(app.upload_batch(photos, 4), fault);
    assert_eq!(accepted.len(), BATCH);
    eventually("the sentinels promoted the replica", async || {
        redis.primary_now().await.is_some_and(|port| port != redis.primary_port)
    })
    .await;

    assert_eq!(app.assert_all_finished(&accepted).await, BATCH, "every accepted task succeeded");
    assert_eq!(app.stored_thumbnails().await.len(), BATCH, "one thumbnail each");
    // Kept for renditions later (`THUMBQ_KEEP_ORIGINALS`): one per task.
    assert_eq!(app.stored_originals().await.len(), BATCH, "one original per task");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_thumbnail_whose_record_was_lost_is_served_and_its_record_repaired() {
    let app = spawn_app().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 300, 200), "width=60&height=40").await;
    app.download_image(&accepted.name).await;
    // What a failover without a replica's copy would do: the record is gone, the thumbnail is not.
    let mut redis = app.redis().await;
    let _: () = redis::cmd("DEL").arg(app.states.keys().task(accepted.id)).query_async(&mut redis).await.unwrap();
    assert_eq!(app.get(&format!("/tasks/{}", accepted.id)).await.status(), 404);

    assert_eq!(app.download_image(&accepted.name).await.dimensions(), (60, 40), "still served");
    eventually("the record is repaired", async || app.get(&format!("/tasks/{}", accepted.id)).await.status() == 200)
        .await;
    let record = app.task(accepted.id).await;
    assert_eq!(record.status, TaskStatus::Success);
    assert_eq!(record.name, accepted.name);
    assert_eq!(record.result.map(|r| (r.width, r.height)), Some((60, 40)));
    app.stop().await;
}

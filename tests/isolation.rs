//! The promise of `helpers`: a test leaves nothing behind on the shared RabbitMQ and Redis once its app is dropped.

use image::ImageFormat;
use thumbq_common::fixtures::sample_image;

use crate::support::{queues::passive_declare, services::keys_under, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_app_leaves_no_queue_and_no_key() {
    let app = spawn_app().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 40, 30), "").await;
    assert_eq!(app.wait_for_thumbnail(&accepted.name).await.status(), 200);
    assert!(!app.redis_keys().await.is_empty(), "the task is recorded under the app's prefix");
    let (settings, work_queue) = (app.settings.clone(), app.topology.work.clone());
    drop(app);

    assert_eq!(keys_under(&settings.redis).await.expect("KEYS"), Vec::<String>::new());
    let declared = passive_declare(&settings.amqp, &work_queue).await;
    assert!(declared.is_none(), "the work queue {work_queue} is deleted");
}

//! The promise of `helpers`: a test leaves nothing behind on the shared RabbitMQ and Redis once its app is dropped.

use image::ImageFormat;
use thumbq_common::fixtures::sample_image;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_app_leaves_no_queue_and_no_key() {
    let app = spawn_app().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 40, 30), "").await;
    assert_eq!(app.wait_for_thumbnail(&accepted.name).await.status(), 200);
    assert!(!app.redis_keys().await.is_empty(), "the task is recorded under the app's prefix");
    let (settings, work_queue) = (app.settings.clone(), app.topology.work.clone());
    drop(app);

    let client = redis::Client::open(settings.redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}*", settings.redis.key_prefix)).query_async(&mut conn).await.unwrap();
    assert_eq!(keys, Vec::<String>::new());
    let connection = thumbq_common::broker::connect(&settings.amqp, "thumbq-test").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
    let declared = channel.queue_declare(work_queue.as_str().into(), passive, Default::default()).await;
    assert!(declared.is_err(), "the work queue {work_queue} is deleted");
}

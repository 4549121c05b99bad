//! The promise of `support`: a test leaves nothing behind on the shared RabbitMQ and Redis, whether it stops its app
//! (the normal end) or drops it (a test that panicked).

use image::ImageFormat;
use thumbq_common::{Settings, fixtures::sample_image};

use crate::support::{TestApp, queues::passive_declare, services::keys_under, spawn_app};

/// Runs one task on `app`; returns what is needed to look for its leftovers.
async fn used(app: &TestApp) -> (Settings, String) {
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 40, 30), "").await;
    assert_eq!(app.wait_for_thumbnail(&accepted.name).await.status(), 200);
    assert!(!app.redis_keys().await.is_empty(), "the task is recorded under the app's prefix");
    (app.settings.clone(), app.topology.work.clone())
}

async fn assert_nothing_left(settings: &Settings, work_queue: &str) {
    assert_eq!(keys_under(&settings.redis).await.expect("KEYS"), Vec::<String>::new());
    let declared = passive_declare(&settings.amqp, work_queue).await;
    assert!(declared.is_none(), "the work queue {work_queue} is deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_or_dropped_app_leaves_no_queue_and_no_key() {
    let app = spawn_app().await;
    let (settings, work_queue) = used(&app).await;
    app.stop().await;
    assert_nothing_left(&settings, &work_queue).await;

    let app = spawn_app().await;
    let (settings, work_queue) = used(&app).await;
    drop(app);
    assert_nothing_left(&settings, &work_queue).await;
}

//! The store's garbage: what a permanently failed task and an interrupted write leave behind is removed, and nothing
//! a task may still need.

use std::time::{Duration, SystemTime};

use image::ImageFormat;
use thumbq_common::{
    TaskId,
    file_store::{FileStore, LocalFileStore, whole},
    fixtures::{sample_image, truncated_jpeg},
};
use thumbq_worker::sweeper::{Ages, Swept, sweep};

use crate::support::{TestApp, eventually, spawn_api, spawn_app};

/// Backdates a file's modification time by `age`.
fn age(path: &std::path::Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanently_failed_task_leaves_no_original() {
    let app = spawn_app().await;
    let broken = app.upload_ok(truncated_jpeg(64, 64), "").await;
    assert_eq!(app.wait_for_thumbnail(&broken.name).await.status(), 422);
    let originals = app.originals_dir();
    eventually("the failed task's original is deleted", async || TestApp::files_in(&originals).is_empty()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_removes_expired_originals_and_interrupted_writes_and_nothing_else() {
    let app = spawn_api().await;
    let store = LocalFileStore::open(&app.store_dir()).unwrap();
    let (hour, two_hours) = (Duration::from_secs(3600), Duration::from_secs(7200));

    let expired = TaskId::new(); // no record: it expired
    store.put_original(expired, whole(b"old".to_vec())).await.unwrap();
    age(&app.originals_dir().join(expired.to_string()), two_hours);
    let queued = app.upload_ok(sample_image(ImageFormat::Png, 8, 8), "").await; // a record, and no worker yet
    age(&app.originals_dir().join(queued.id.to_string()), two_hours);
    let fresh = TaskId::new(); // no record yet: the API is between storing it and recording the task
    store.put_original(fresh, whole(b"new".to_vec())).await.unwrap();
    let (stale_tmp, fresh_tmp) = (app.thumbnails_dir().join(".tmp-crashed"), app.originals_dir().join(".tmp-writing"));
    std::fs::write(&stale_tmp, b"half").unwrap();
    age(&stale_tmp, two_hours);
    std::fs::write(&fresh_tmp, b"half").unwrap();

    let swept =
        sweep(&store, &app.states, Ages { record_ttl: hour, temporary: hour, thumbnail_ttl: None }).await.unwrap();
    assert_eq!(swept, Swept { originals: 1, temporary: 1, thumbnails: 0 });
    let mut left: Vec<String> = TestApp::files_in(&app.originals_dir())
        .into_iter()
        .chain(TestApp::files_in(&app.thumbnails_dir()))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected = vec![queued.id.to_string(), fresh.to_string(), ".tmp-writing".to_owned()];
    expected.sort();
    assert_eq!(left, expected);
    app.stop().await;
}

//! What a failed task's record says (issue 23, item 17): a fault of the machinery shows as a safe message naming
//! what failed, never a server path; the cause goes to the worker's log.

use image::ImageFormat;
use thumbq_common::{
    TaskStatus,
    broker::ERROR_HEADER,
    fixtures::sample_image,
    task::{FailureKind, TaskErrorCode},
};

use crate::support::{break_folder, eventually, queues::header_text, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_fault_leaves_a_clear_message_without_server_paths_in_the_record() {
    let app = spawn_app().await;
    let thumbnails = app.thumbnails_dir();
    break_folder(&thumbnails, true);
    let task = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "").await;

    let failed = async || app.task(task.id).await.status == TaskStatus::Failure;
    eventually("the task fails once its attempts run out", failed).await;
    let record = app.task(task.id).await;
    assert_eq!(record.error_kind, Some(FailureKind::Internal));
    assert_eq!(record.error_code, Some(TaskErrorCode::StoreFailed), "the code of the last attempt's error");
    let errors: Vec<String> =
        record.error.iter().chain(record.history.iter().filter_map(|h| h.error.as_ref())).cloned().collect();
    assert!(errors.len() >= 2, "FAILURE and the RETRY before it: {errors:?}");
    for error in &errors {
        assert!(error.contains("internal error") && error.contains("file store"), "{error}");
        assert!(!error.contains('/') && !error.contains(".tmp"), "a server path in the record: {error}");
    }
    // The download and the dead letter say no more than the record.
    let body = app.get(&format!("/thumbnails/{}", task.name)).await.text().await.unwrap();
    assert!(!body.contains(".tmp") && !body.contains(&thumbnails.display().to_string()), "{body}");
    // FAILURE is recorded just before the message is dead-lettered.
    eventually("the task is dead-lettered", async || !app.peek_dead_letters().await.is_empty()).await;
    let letters = app.drain_dead_letters().await;
    assert_eq!(letters.len(), 1);
    let letter_error = header_text(&letters[0].1, ERROR_HEADER);
    assert!(letter_error.contains("file store") && !letter_error.contains('/'), "{letter_error}");

    break_folder(&thumbnails, false);
    app.stop().await;
}

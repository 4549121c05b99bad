//! The operator console in a real browser: headless Chromium (installed by `deploy/native/test-tools.sh`) loads
//! `/dashboard`, runs its scripts against the live API, and the rendered page shows the tasks and the worker; driven
//! through playwright-core, a search finds a task by id and a dead-lettered task is replayed from its detail view
//! until it succeeds, with no console error and no request beyond the API. `UPDATE_SNAPSHOTS=1` also writes the
//! README's screenshot, `docs/dashboard.png`.

use std::time::Duration;

use image::ImageFormat;
use thumbq_common::fixtures::{sample_image, truncated_jpeg};

use crate::support::{
    browser::{chromium, console},
    spawn_api_configured,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_finished_tasks_and_the_live_worker_in_a_browser() {
    // The README's screenshot shows the names a deployment has, not a test's.
    let snapshot = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let app = spawn_api_configured(|s| {
        s.worker.heartbeat = Duration::from_secs(1);
        if snapshot {
            s.amqp.queue = "thumbq.resize".into();
            s.worker.id = "host-a:worker-1".into();
        }
    })
    .await;
    app.start_worker().await;
    let accepted = app.upload_batch((0..3).map(|i| sample_image(ImageFormat::Jpeg, 300 + i, 200)).collect(), 2).await;
    assert_eq!(app.assert_all_finished(&accepted).await, 3);

    let url = format!("{}/dashboard", app.base);
    let page = app.get("/dashboard").await.text().await.unwrap();
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"), "no external requests");
    let dom = String::from_utf8(chromium(&url, &["--dump-dom".into()]).await.stdout).unwrap();
    assert_eq!(dom.matches("class=\"status SUCCESS\"").count(), 3, "three SUCCESS rows in:\n{dom}");
    for task in &accepted {
        assert!(dom.contains(&task.name), "task {} is listed", task.name);
    }
    assert!(dom.contains(&app.settings.worker.id), "the live worker is listed");
    assert!(dom.contains("No dead letters"));
    assert!(dom.contains("<span id=\"updated\">updated "), "every JSON route answered (the header says when)");

    if snapshot {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/dashboard.png");
        let report = console(&url, serde_json::json!({"search": accepted[0].name, "screenshot": path})).await;
        assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_on_the_dashboard_asks_for_an_admin_key_and_shows_no_data() {
    let app = spawn_api_configured(|s| s.access.auth = thumbq_common::settings::AuthMode::Keys).await;
    let dom =
        String::from_utf8(chromium(&format!("{}/dashboard", app.base), &["--dump-dom".into()]).await.stdout).unwrap();
    assert!(dom.contains("<form id=\"login\">"), "the key form is shown:\n{dom}");
    assert!(dom.contains("an admin API key is needed"), "{dom}");
    assert!(dom.contains("<table id=\"workers\"></table>"), "no data without a key");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_console_a_search_finds_a_task_and_a_dead_letter_is_replayed_to_success() {
    let app = spawn_api_configured(|s| s.worker.heartbeat = Duration::from_secs(1)).await;
    app.start_worker().await;
    crate::support::break_folder(&app.thumbnails_dir(), true);
    let failed = app.upload_ok(sample_image(ImageFormat::Png, 50, 40), "").await;
    crate::support::eventually("the task is dead-lettered", async || app.peek_dead_letters().await.len() == 1).await;
    crate::support::break_folder(&app.thumbnails_dir(), false);
    let done = app.upload_ok(sample_image(ImageFormat::Png, 60, 40), "").await;
    assert_eq!(app.wait_for_thumbnail(&done.name).await.status(), 200);
    let url = format!("{}/dashboard", app.base);

    // A search by thumbnail name opens that task, on a narrow screen too; nothing is fetched from elsewhere.
    let report = console(&url, serde_json::json!({"search": done.name, "width": 420})).await;
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["external"], serde_json::json!([]), "{report}");
    assert_eq!(report["too_wide"], false, "a 420-pixel screen needs no sideways scrolling: {report}");
    assert!(report["steps"][0].as_str().unwrap().ends_with(&done.id.to_string()), "{report}");
    assert!(report["detail"].as_str().unwrap().contains("SUCCESS"), "{report}");
    let rows = report["rows"].as_array().unwrap();
    assert!(rows.contains(&done.id.to_string().into()) && rows.contains(&failed.id.to_string().into()), "{report}");
    let axes: Vec<&str> = report["axes"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
    assert!(axes.contains(&"-60 min") && axes.contains(&"now") && axes.iter().any(|a| a.ends_with("/s")), "{axes:?}");
    assert_eq!(report["clipped"], serde_json::json!([]), "every axis label inside its chart: {report}");
    // One row per lane, its delay tiers folded into "Retrying": the work queue with its one dead letter, the bulk
    // jobs' lane and the webhooks' lane.
    let queue = &app.settings.amqp.queue;
    let lanes = serde_json::json!([
        [queue, "0", "0", "1"],
        [format!("{queue}.bulk"), "0", "0", "0"],
        [format!("{queue}.webhooks"), "0", "0", "0"]
    ]);
    assert_eq!(report["queues"], lanes, "{report}");

    // A task whose image cannot be made has no dead letter: no Replay is offered for it.
    let broken = app.upload_ok(truncated_jpeg(80, 60), "").await;
    assert_eq!(app.wait_for_thumbnail(&broken.name).await.status(), 422);
    let report = console(&url, serde_json::json!({"search": broken.id.to_string()})).await;
    let buttons = report["buttons"].as_array().unwrap();
    assert!(buttons.contains(&"delete".into()) && !buttons.contains(&"replay-one".into()), "{report}");

    // The failed task, found by id, replayed through its Replay button (confirmed), reaches SUCCESS.
    let report = console(&url, serde_json::json!({"search": failed.id.to_string(), "replay": true})).await;
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert!(report["steps"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().starts_with("confirmed: Replay")));
    let record = app.task(failed.id).await;
    assert_eq!(record.status, thumbq_common::TaskStatus::Success);
    assert_eq!(record.actions.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["replayed"]);
    assert!(app.peek_dead_letters().await.is_empty());
    assert_eq!(app.wait_for_thumbnail(&failed.name).await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_console_a_job_shows_its_progress_and_is_paused_with_its_button() {
    use thumbq_common::{job::JobStatus, settings::StoreLocation};
    let library = tempfile::tempdir().unwrap();
    let app = spawn_api_configured(|s| {
        s.import.location = Some(StoreLocation::Local(library.path().to_path_buf()));
        s.jobs.window = 1;
    })
    .await;
    let photo = sample_image(ImageFormat::Jpeg, 800, 600);
    for i in 0..40 {
        app.put_in_library(&format!("photos/{i:02}.jpg"), photo.clone()).await;
    }
    app.start_worker().await;
    let response = app.client.post(format!("{}/jobs", app.base)).json(&serde_json::json!({"prefix": "photos"})).send();
    let job: serde_json::Value = response.await.unwrap().json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let progress = async || app.get(&format!("/jobs/{id}")).await.json::<serde_json::Value>().await.unwrap();
    crate::support::eventually("an item is done", async || progress().await["done"].as_u64() >= Some(1)).await;
    // The job pump runs in the worker: stopping it leaves the job RUNNING part-way, however fast the items go, so the
    // button is pressed on a job that is still running (with the worker on, 40 items could all end before Chromium
    // has opened the page).
    app.stop_workers().await;

    let report = console(&format!("{}/dashboard", app.base), serde_json::json!({"job": "pause"})).await;
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["external"], serde_json::json!([]), "{report}");
    let row = &report["jobs"][0];
    assert_eq!((row["id"].as_str(), row["status"].as_str()), (Some(id.as_str()), Some("PAUSED")), "{report}");
    let [ended, total] = [row["progress"][0].as_u64().unwrap(), row["progress"][1].as_u64().unwrap()];
    assert!((1..40).contains(&ended) && total >= ended, "a bar of the items ended: {report}");
    assert!(row["actions"].as_array().unwrap().contains(&"resume".into()), "{report}");
    assert!(!report["rows"].as_array().unwrap().is_empty(), "its items are listed: {report}");
    let job: thumbq_common::job::Job = serde_json::from_value(progress().await).unwrap();
    assert_eq!(job.status, JobStatus::Paused, "the button paused it");
    app.stop().await;
}

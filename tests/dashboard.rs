//! The dashboard in a real browser: headless Chromium (installed by `deploy/native/test-tools.sh`) loads
//! `/dashboard`, runs its scripts against the live API, and the rendered page shows the tasks and the worker.
//! `UPDATE_SNAPSHOTS=1` also writes the README's screenshot, `docs/dashboard.png`.

use std::time::Duration;

use image::ImageFormat;
use thumbq_common::fixtures::sample_image;

use crate::support::{browser::chromium, spawn_api_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_finished_tasks_and_the_live_worker_in_a_browser() {
    let app = spawn_api_with(|s| s.worker.heartbeat = Duration::from_secs(1)).await;
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

    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/dashboard.png");
        chromium(&url, &[format!("--screenshot={path}"), "--window-size=1100,760".into(), "--hide-scrollbars".into()])
            .await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_on_the_dashboard_asks_for_an_admin_key_and_shows_no_data() {
    let app = spawn_api_with(|s| s.access.auth = thumbq_common::settings::AuthMode::Keys).await;
    let dom =
        String::from_utf8(chromium(&format!("{}/dashboard", app.base), &["--dump-dom".into()]).await.stdout).unwrap();
    assert!(dom.contains("<form id=\"login\">"), "the key form is shown:\n{dom}");
    assert!(dom.contains("an admin API key is needed"), "{dom}");
    assert!(dom.contains("<table id=\"workers\"></table>"), "no data without a key");
    app.stop().await;
}

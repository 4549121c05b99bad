//! Prometheus metrics on the API and on a worker: the counters move by the right amounts after a small batch.

use image::ImageFormat;
use thumbq_common::fixtures::{sample_image, truncated_jpeg};

use crate::support::{spawn_api, spawn_api_configured};

/// The value of the sample `name{labels}` in a Prometheus text exposition (0 when absent).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
        .find(|line| labels.iter().all(|(k, v)| line.contains(&format!("{k}=\"{v}\""))))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_worker_metrics_count_a_small_batch() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = spawn_api_configured(|s| s.worker.metrics = Some(([127, 0, 0, 1], port).into())).await;
    app.start_worker().await;
    let queue = app.settings.amqp.queue.clone();

    let good = app.upload_batch((0..3).map(|i| sample_image(ImageFormat::Png, 30 + i, 30)).collect(), 2).await;
    let broken = app.upload_ok(truncated_jpeg(200, 100), "").await;
    assert_eq!(app.assert_all_finished(&good).await, 3);
    assert_eq!(app.wait_for_thumbnail(&broken.name).await.status(), 422);

    let api = app.get("/metrics").await;
    assert_eq!(api.status(), 200);
    assert!(api.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let api = api.text().await.unwrap();
    assert_eq!(sample(&api, "thumbq_tasks_published_total", &[("queue", &queue)]), 4.0);
    let uploads = [("route", "/thumbnails"), ("method", "POST"), ("status", "202")];
    assert!(sample(&api, "thumbq_http_requests_total", &uploads) >= 4.0, "{api}");
    assert!(api.contains("thumbq_http_request_duration_seconds_bucket"), "latency histogram exported");
    assert_eq!(sample(&api, "thumbq_queue_depth", &[("queue", &queue)]), 0.0);
    assert!(api.contains(&format!("thumbq_queue_depth{{queue=\"{queue}.dead\"}}")), "dead-letter depth exported");
    assert_eq!(sample(&api, "thumbq_workers_online", &[("queue", &queue)]), 1.0, "{api}");

    let worker = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    assert_eq!(sample(&worker, "thumbq_tasks_finished_total", &[("queue", &queue), ("status", "success")]), 3.0);
    assert_eq!(sample(&worker, "thumbq_tasks_finished_total", &[("queue", &queue), ("status", "failure")]), 1.0);
    assert_eq!(sample(&worker, "thumbq_task_processing_seconds_count", &[("queue", &queue)]), 4.0);
    assert_eq!(sample(&worker, "thumbq_task_queue_seconds_count", &[("queue", &queue)]), 4.0);
    assert_eq!(sample(&worker, "thumbq_tasks_in_flight", &[("queue", &queue)]), 0.0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_has_help_failure_counters_start_at_zero_and_methods_are_bounded() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = spawn_api_configured(|s| s.worker.metrics = Some(([127, 0, 0, 1], port).into())).await;
    app.start_worker().await;
    let queue = app.settings.amqp.queue.clone();
    let invented = reqwest::Method::from_bytes(b"BREW").unwrap();
    app.client.request(invented, format!("{}/health", app.base)).send().await.unwrap();
    // The recorder is the process's: run alone, this test must make the request it looks for itself.
    assert_eq!(app.get("/health").await.status(), 200);

    let api = app.get("/metrics").await.text().await.unwrap();
    let worker = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    for text in [&api, &worker] {
        for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap()) {
            assert!(text.contains(&format!("# HELP {family} ")), "{family} has no HELP text");
        }
        assert!(text.contains("thumbq_build_info{version=\""), "build info");
        assert!(text.contains("process_resident_memory_bytes "), "process metrics");
    }
    // Before any task failed, the series exist at 0, so the first failure shows in rate() and increase().
    for series in [
        format!("thumbq_tasks_finished_total{{queue=\"{queue}\",status=\"failure\"}} 0"),
        format!("thumbq_dead_letters_total{{queue=\"{queue}\",reason=\"retries_exhausted\"}} 0"),
        format!("thumbq_task_retries_total{{queue=\"{queue}\"}} 0"),
    ] {
        assert!(worker.contains(&series), "missing {series}");
    }
    assert!(!api.contains("method=\"BREW\""), "an invented method became a label value");
    assert!(api.contains("method=\"other\""), "an invented method is counted as other");
    assert!(
        api.contains("thumbq_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\",status=\"200\"")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_process_exports_only_what_it_counts() {
    // A process of its own: in this test binary the in-process API and workers share one recorder.
    let app = spawn_api().await;
    let api = crate::support::process::ApiProcess::spawn(&app.settings).await;
    let text = reqwest::get(format!("{}/metrics", api.base)).await.unwrap().text().await.unwrap();
    let queue = &app.settings.amqp.queue;
    assert!(text.contains(&format!("thumbq_tasks_published_total{{queue=\"{queue}\"}} 0")), "{text}");
    for worker_only in ["thumbq_tasks_finished_total", "thumbq_task_retries_total", "thumbq_dead_letters_total"] {
        assert!(!text.contains(worker_only), "the API exports the worker's {worker_only} at 0:\n{text}");
    }
    drop(api);
    app.stop().await;
}

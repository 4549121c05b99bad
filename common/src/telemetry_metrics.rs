//! Prometheus metrics: the names thumbq exports, in one place, and the process-wide recorder. Task metrics carry a
//! `queue` label (so several deployments, or tests, in one process stay apart).

use std::{sync::OnceLock, time::Duration};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Buckets of every duration histogram, in seconds: from a fast HTTP answer to a long queue wait.
const SECONDS_BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Installs the process's Prometheus recorder (once; later calls return the same handle).
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder =
                PrometheusBuilder::new().set_buckets(SECONDS_BUCKETS).expect("buckets are valid").build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a host application's): then ours only renders its own.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// An HTTP request answered: `thumbq_http_requests_total` and `thumbq_http_request_duration_seconds`.
pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let labels = [("route", route.to_owned()), ("method", method.to_owned())];
    counter!("thumbq_http_requests_total", "route" => route.to_owned(), "method" => method.to_owned(), "status" => status.to_string())
        .increment(1);
    histogram!("thumbq_http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

/// A task published by the API: `thumbq_tasks_published_total`.
pub fn task_published(queue: &str) {
    counter!("thumbq_tasks_published_total", "queue" => queue.to_owned()).increment(1);
}

/// A worker took a task: time it waited since the upload (`thumbq_task_queue_seconds`), one more in flight.
pub fn task_started(queue: &str, worker: &str, waited: Duration) {
    histogram!("thumbq_task_queue_seconds", "queue" => queue.to_owned()).record(waited.as_secs_f64());
    gauge!("thumbq_tasks_in_flight", "queue" => queue.to_owned(), "worker" => worker.to_owned()).increment(1.0);
}

/// A worker is done with a delivery: one fewer in flight, and how long it took (`thumbq_task_processing_seconds`).
pub fn task_done(queue: &str, worker: &str, took: Duration) {
    gauge!("thumbq_tasks_in_flight", "queue" => queue.to_owned(), "worker" => worker.to_owned()).decrement(1.0);
    histogram!("thumbq_task_processing_seconds", "queue" => queue.to_owned()).record(took.as_secs_f64());
}

/// A task reached SUCCESS or FAILURE (`status`: `success`, `failure`): `thumbq_tasks_finished_total`.
pub fn task_finished(queue: &str, status: &'static str) {
    counter!("thumbq_tasks_finished_total", "queue" => queue.to_owned(), "status" => status).increment(1);
}

/// Attempt `attempt` failed and another was scheduled: `thumbq_task_retries_total`.
pub fn task_retried(queue: &str, attempt: u32) {
    counter!("thumbq_task_retries_total", "queue" => queue.to_owned(), "attempt" => attempt.to_string()).increment(1);
}

/// A message went to the dead-letter queue (`reason`: `poison`, `retries_exhausted`): `thumbq_dead_letters_total`.
pub fn dead_lettered(queue: &str, reason: &'static str) {
    counter!("thumbq_dead_letters_total", "queue" => queue.to_owned(), "reason" => reason).increment(1);
}

/// A dependency (`redis`, `rabbitmq`) came back after an outage: `thumbq_reconnects_total`.
pub fn reconnected(dependency: &'static str) {
    counter!("thumbq_reconnects_total", "dependency" => dependency).increment(1);
}

/// Messages waiting in a queue, read by a passive declare at scrape time: `thumbq_queue_depth`.
pub fn queue_depth(queue: &str, messages: u32) {
    gauge!("thumbq_queue_depth", "queue" => queue.to_owned()).set(f64::from(messages));
}

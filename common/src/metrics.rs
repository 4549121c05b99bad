//! Prometheus metrics: the names thumbq exports, in one place, with their HELP text, and the process-wide recorder.
//! Task metrics carry a `queue` label (so several deployments, or tests, in one process stay apart). Every counter's
//! label sets are created at 0 when a process starts ([`zero_task_counters`]): a counter that appears only at its
//! first event hides that event from `rate()` and `increase()`. Label values are bounded: HTTP methods outside the
//! standard set are counted as `other`, routes are templates.

use std::{sync::OnceLock, time::Duration};

use metrics::{Unit, counter, gauge, histogram};
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
            describe();
            handle
        })
        .clone()
}

/// HELP text of every metric, and the build info and process collectors.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("thumbq_http_requests_total", "HTTP requests answered, by route template, method and status.");
    describe_histogram!("thumbq_http_request_duration_seconds", Unit::Seconds, "HTTP request latency.");
    describe_counter!("thumbq_tasks_published_total", "Tasks the API published to the work queue.");
    describe_histogram!("thumbq_task_queue_seconds", Unit::Seconds, "Time from upload to a worker taking the task.");
    describe_gauge!("thumbq_tasks_in_flight", "Deliveries a worker is handling now.");
    describe_histogram!("thumbq_task_processing_seconds", Unit::Seconds, "Time a worker spent on one delivery.");
    describe_counter!("thumbq_tasks_finished_total", "Tasks that reached SUCCESS or FAILURE.");
    describe_counter!("thumbq_task_retries_total", "Failed attempts after which another was scheduled.");
    describe_counter!("thumbq_dead_letters_total", "Messages moved to the dead-letter queue, by reason.");
    describe_counter!("thumbq_reconnects_total", "Recoveries of a dependency after an outage.");
    describe_counter!(
        "thumbq_webhook_deliveries_total",
        "Webhook delivery attempts, by outcome: delivered, retried, refused (address guard), gave_up."
    );
    describe_gauge!("thumbq_queue_depth", "Messages ready in each queue, read at scrape time.");
    describe_gauge!("thumbq_workers_online", "Workers with a live heartbeat in Redis, read at scrape time.");
    describe_gauge!("thumbq_build_info", "Always 1; the labels name the running build.");
    gauge!("thumbq_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    process_collector().describe();
}

fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Renders the exposition, refreshing the `process_*` metrics first.
pub fn render(handle: &PrometheusHandle) -> String {
    process_collector().collect();
    handle.render()
}

/// Creates the API's counters' label sets at 0: what the API itself counts, and nothing a worker counts (an API
/// exporting `thumbq_tasks_finished_total` at 0 would add a flat series beside the workers' real ones).
pub fn zero_api_counters(queue: &str) {
    counter!("thumbq_tasks_published_total", "queue" => queue.to_owned()).absolute(0);
    zero_reconnects();
}

/// Creates a worker's counters' label sets at 0: tasks finished, retried and dead-lettered, webhook deliveries.
pub fn zero_worker_counters(queue: &str) {
    for status in ["success", "failure"] {
        counter!("thumbq_tasks_finished_total", "queue" => queue.to_owned(), "status" => status).absolute(0);
    }
    for reason in ["poison", "retries_exhausted"] {
        counter!("thumbq_dead_letters_total", "queue" => queue.to_owned(), "reason" => reason).absolute(0);
    }
    counter!("thumbq_task_retries_total", "queue" => queue.to_owned()).absolute(0);
    for outcome in WEBHOOK_OUTCOMES {
        counter!("thumbq_webhook_deliveries_total", "queue" => queue.to_owned(), "outcome" => outcome).absolute(0);
    }
    zero_reconnects();
}

fn zero_reconnects() {
    for dependency in ["redis", "rabbitmq"] {
        counter!("thumbq_reconnects_total", "dependency" => dependency).absolute(0);
    }
}

/// How a webhook delivery attempt ended.
pub const WEBHOOK_OUTCOMES: [&str; 4] = ["delivered", "retried", "refused", "gave_up"];

/// A webhook delivery attempt ended (`outcome`, one of [`WEBHOOK_OUTCOMES`]): `thumbq_webhook_deliveries_total`.
pub fn webhook_attempted(queue: &str, outcome: &'static str) {
    counter!("thumbq_webhook_deliveries_total", "queue" => queue.to_owned(), "outcome" => outcome).increment(1);
}

/// The standard HTTP methods; any other is counted as `other`, so a client cannot invent label values.
const METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];

/// An HTTP request answered: `thumbq_http_requests_total` and `thumbq_http_request_duration_seconds`.
pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let method = METHODS.iter().find(|m| **m == method).copied().unwrap_or("other");
    let labels = [("route", route.to_owned()), ("method", method.to_owned()), ("status", status.to_string())];
    counter!("thumbq_http_requests_total", &labels).increment(1);
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

/// An attempt failed and another was scheduled: `thumbq_task_retries_total`.
pub fn task_retried(queue: &str) {
    counter!("thumbq_task_retries_total", "queue" => queue.to_owned()).increment(1);
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

/// Workers with a live heartbeat, read by the API at scrape time: `thumbq_workers_online`, labelled with the work
/// queue like the task metrics.
pub fn workers_online(queue: &str, workers: usize) {
    gauge!("thumbq_workers_online", "queue" => queue.to_owned()).set(workers as f64);
}

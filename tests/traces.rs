//! OpenTelemetry traces: an API process and a worker process export to an OTLP receiver of the test's own, and one
//! upload, sent with a client's `traceparent`, is one trace holding both processes' spans, each step a child of
//! the span it ran in; the worker's log lines carry the trace id.

use image::{GenericImageView, ImageFormat};
use thumbq_common::fixtures::sample_image;

use crate::support::{
    eventually,
    otlp::{OtlpReceiver, ReceivedSpan},
    process::{ApiProcess, WorkerProcess},
    spawn_api,
};

/// The client's trace and span, as a `traceparent` names them.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_upload_is_one_trace_across_the_api_and_the_worker() {
    let receiver = OtlpReceiver::start().await;
    // The in-process app is not called: it owns the queues, keys and store the processes use, and removes them.
    let app = spawn_api().await;
    let mut settings = app.settings.clone();
    settings.telemetry.endpoint = Some(receiver.url.clone());
    let api = ApiProcess::spawn(&settings).await;
    let worker = WorkerProcess::spawn_logging_json(&settings, "traced");

    // An orchestrator's probes, every few seconds, would fill a backend with traces of their own: they make none.
    for probe in ["/health", "/ready"] {
        assert_eq!(app.client.get(format!("{}{probe}", api.base)).send().await.unwrap().status(), 200);
    }
    let part = reqwest::multipart::Part::bytes(sample_image(ImageFormat::Jpeg, 640, 480)).file_name("a.jpg");
    let response = app
        .client
        .post(format!("{}/thumbnails?width=64&height=48&fit=fill", api.base))
        .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
        .multipart(reqwest::multipart::Form::new().part("image", part))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: serde_json::Value = response.json().await.unwrap();
    let name = accepted["name"].as_str().unwrap().to_owned();
    let thumbnail = app.client.get(format!("{}/thumbnails/{name}?wait=30", api.base)).send().await.unwrap();
    assert_eq!(thumbnail.status(), 200);
    let image = image::load_from_memory(&thumbnail.bytes().await.unwrap()).unwrap();
    assert_eq!(image.dimensions(), (64, 48));

    // The batch processors send every few seconds; the worker's last spans come with its shutdown.
    let log = worker.log().await;
    let worker_steps = ["task", "fetch_original", "decode", "resize", "encode", "store", "record", "webhook"];
    eventually("the API's and the worker's spans arrive", async || {
        let spans = receiver.spans();
        let has = |service: &str, name: &str| spans.iter().any(|s| s.service == service && s.name == name);
        has("thumbq-api", "request") && worker_steps.iter().all(|step| has("thumbq-worker", step))
    })
    .await;

    let probes: Vec<ReceivedSpan> =
        receiver.spans().into_iter().filter(|s| matches!(s.attribute("path"), Some("/health" | "/ready"))).collect();
    assert!(probes.is_empty(), "no spans of probes: {probes:#?}");
    let spans: Vec<ReceivedSpan> = receiver.spans().into_iter().filter(|s| s.trace_id == TRACE).collect();
    let one = |service: &str, name: &str| {
        let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.service == service && s.name == name).collect();
        assert_eq!(found.len(), 1, "one {service} {name} span in the trace: {spans:#?}");
        found[0].clone()
    };
    // The upload's request is the client's span's child; the API's task span is the request's.
    let request = one("thumbq-api", "request");
    assert_eq!(request.parent_span_id, CLIENT_SPAN);
    assert_eq!(request.attribute("path"), Some("/thumbnails"));
    let api_task = one("thumbq-api", "task");
    assert_eq!(api_task.parent_span_id, request.span_id);
    // The worker's attempt continues the API's task span, where the message was published; each step is its child.
    let worker_task = one("thumbq-worker", "task");
    assert_eq!(worker_task.parent_span_id, api_task.span_id, "the worker's span is a child of the upload's");
    assert_eq!(worker_task.attribute("task_id"), accepted["id"].as_str());
    for step in &worker_steps[1..] {
        assert_eq!(one("thumbq-worker", step).parent_span_id, worker_task.span_id, "{step}");
    }
    assert!(log.contains(&format!("\"trace_id\":\"{TRACE}\"")), "the worker's log lines carry the trace id: {log}");
    drop(api);
    app.stop().await;
}

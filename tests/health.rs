//! Liveness and readiness probes.

use crate::support::spawn_api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_and_ready_checks_every_service() {
    let app = spawn_api().await;
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "ready", "checks": {"rabbitmq": "ok", "redis": "ok", "store": "ok"}})
    );
    app.stop().await;
}

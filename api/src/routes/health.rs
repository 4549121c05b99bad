//! `GET /health` (liveness: the process answers) and `GET /ready` (readiness: Redis and the file store answer, so
//! task records and thumbnails can be served; RabbitMQ is reported but does not decide it).

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health)).route("/ready", get(ready))
}

/// Whether `path` is one of the probes an orchestrator calls every few seconds.
pub fn is_probe(path: &str) -> bool {
    matches!(path, "/health" | "/ready")
}

/// The answer of `/health` and `/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (`/health`); `ready`, `degraded` (RabbitMQ is down: uploads are refused with `503`, everything else is
    /// served) or `unavailable` (`/ready`).
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Each dependency's state, `ok` or why it is down (`/ready` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = json!({"rabbitmq": "ok", "redis": "ok", "store": "ok"}))]
    pub checks: Option<Checks>,
}

/// Per-dependency readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    /// `ok`, or the error reaching RabbitMQ.
    pub rabbitmq: String,
    /// `ok`, or the error reaching Redis.
    pub redis: String,
    /// `ok`, or the error reaching the file store (its folder, or the object store's bucket).
    pub store: String,
}

/// Liveness: answers 200 whenever the process runs; checks no dependency.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, description = "Alive", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok", checks: None })
}

/// Readiness: 200 when Redis and the file store answer, else 503 naming the one that is down.
///
/// RabbitMQ does not decide it: every API process shares the same broker, so an outage that took them all out of a
/// load balancer would also stop the downloads of finished thumbnails and the task records, which need only Redis
/// and the store. While RabbitMQ is down the answer is `200` with `"status": "degraded"` and uploads get `503`
/// with `Retry-After`.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    responses(
        (status = 200, description = "Ready (`ready`), or serving everything but uploads (`degraded`: RabbitMQ is down)",
            body = Health,
            example = json!({"status": "degraded", "checks": {"rabbitmq": "rabbitmq is unavailable: connection refused", "redis": "ok", "store": "ok"}})),
        (status = 503, description = "Redis or the file store is down", body = Health,
            example = json!({"status": "unavailable", "checks": {"rabbitmq": "ok", "redis": "redis is unavailable: connection refused", "store": "ok"}})),
    )
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (rabbitmq, redis, store) = tokio::join!(state.publisher.get(), state.states.ping(), state.store.check());
    let describe = |result: Result<(), String>| result.map_or_else(|e| e, |()| "ok".to_owned());
    let (serving, publishing) = (redis.is_ok() && store.is_ok(), rabbitmq.is_ok());
    let checks = Checks {
        rabbitmq: describe(rabbitmq.map(drop).map_err(|e| e.to_string())),
        redis: describe(redis.map_err(|e| e.to_string())),
        store: describe(store.map_err(|e| format!("the file store is unavailable: {e}"))),
    };
    let (status, word) = match (serving, publishing) {
        (true, true) => (StatusCode::OK, "ready"),
        (true, false) => (StatusCode::OK, "degraded"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    (status, Json(Health { status: word, checks: Some(checks) }))
}

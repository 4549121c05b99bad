//! `GET /metrics`: Prometheus text exposition of the process's metrics, with queue depths read at scrape time.

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use thumbq_common::{api_key::Scope, metrics};

use crate::{caller::Caller, error::ApiError, state::AppState};

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(get_metrics))
}

/// Prometheus metrics: HTTP requests, tasks published, queue depths (work, delay, dead-letter) and workers online
/// (the same in every API process: aggregate with `max`), reconnects, `process_*` and build info.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    security(("api_key" = ["admin"])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4",
        body = String, example = "thumbq_queue_depth{queue=\"thumbq.resize\"} 0")),
)]
pub async fn get_metrics(State(state): State<AppState>, caller: Caller) -> Result<impl IntoResponse, ApiError> {
    if !state.settings.access.metrics_open {
        caller.require(Scope::Admin)?;
    }
    // Cluster-wide views, refreshed on each scrape (every API process reports the same values: aggregate them with
    // `max`, deploy/monitoring/alerts.yml does); while RabbitMQ or Redis is down the last known values stay.
    let depths = async {
        let Ok(publisher) = state.publisher.get().await else { return };
        if let Ok(depths) = publisher.queue_depths().await {
            depths.iter().for_each(|(queue, messages)| metrics::queue_depth(queue, *messages));
        }
    };
    let workers = async {
        if let Ok(workers) = state.states.workers().await {
            metrics::workers_online(&state.settings.amqp.queue, workers.len());
        }
    };
    tokio::join!(depths, workers);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics::render(&state.metrics)))
}

/// Middleware recording every request by route template (never the raw path: names are unbounded), method, status.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics::http_request(&route, &method, response.status().as_u16(), started.elapsed());
    response
}

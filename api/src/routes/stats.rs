//! `GET /stats`: the system at a glance: queue depths, workers online, recent throughput and outcomes;
//! `GET /stats/history`: the last hour per 10-second bucket, for the dashboard's charts.

use std::collections::BTreeMap;

use axum::{Json, Router, extract::State, routing::get};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use thumbq_common::{
    api_key::Scope,
    state_store::history::{BUCKET_SECONDS, HistoryBucket},
};
use utoipa::ToSchema;

use crate::{
    caller::Caller,
    error::{ApiError, ErrorBody},
    state::AppState,
};

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/stats", get(get_stats)).route("/stats/history", get(get_history))
}

/// Outcomes over a window.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Window {
    /// Tasks that reached SUCCESS.
    pub success: u64,
    /// Tasks that reached FAILURE.
    pub failure: u64,
    /// Finished tasks per second, averaged over the window.
    pub per_second: f64,
}

/// The answer of `GET /stats`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    /// Messages waiting per queue (work, delay tiers, dead letters); empty while RabbitMQ is unreachable.
    #[schema(example = json!({"thumbq.resize": 3, "thumbq.resize.dead": 0}))]
    pub queues: BTreeMap<String, u32>,
    /// Workers with a live heartbeat.
    pub workers_online: usize,
    /// The last 60 seconds.
    pub last_minute: Window,
    /// The last hour.
    pub last_hour: Window,
}

/// Queue depths, workers online, and tasks finished over the last minute and hour.
#[utoipa::path(
    get,
    path = "/stats",
    tag = "workers",
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, description = "The system at a glance", body = Stats),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn get_stats(State(state): State<AppState>, caller: Caller) -> Result<Json<Stats>, ApiError> {
    caller.require(Scope::Admin)?;
    let queues = match state.publisher.get().await {
        Ok(publisher) => publisher.queue_depths().await.map(|d| d.into_iter().collect()).unwrap_or_default(),
        Err(_) => BTreeMap::new(),
    };
    let now = Utc::now();
    let window = async |seconds: i64| -> Result<Window, ApiError> {
        let (success, failure) = state.states.finished_since(now - Duration::seconds(seconds)).await?;
        Ok(Window { success, failure, per_second: (success + failure) as f64 / seconds as f64 })
    };
    Ok(Json(Stats {
        queues,
        workers_online: state.states.workers().await?.len(),
        last_minute: window(60).await?,
        last_hour: window(3600).await?,
    }))
}

/// The answer of `GET /stats/history`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct History {
    /// Width of each bucket, seconds.
    #[schema(example = 10)]
    pub bucket_seconds: u64,
    /// The last hour, oldest first; the last bucket is the current one, still filling.
    pub buckets: Vec<HistoryBucket>,
}

/// Tasks finished per 10 seconds over the last hour, by outcome, with their latency from upload.
///
/// Kept in Redis by the workers' state changes, so every API process answers the same and the history survives
/// restarts of the API and reloads of the dashboard.
#[utoipa::path(
    get,
    path = "/stats/history",
    tag = "workers",
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, description = "360 buckets, oldest first", body = History),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn get_history(State(state): State<AppState>, caller: Caller) -> Result<Json<History>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(History { bucket_seconds: BUCKET_SECONDS, buckets: state.states.history().await? }))
}

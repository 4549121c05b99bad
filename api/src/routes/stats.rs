//! `GET /stats`: the system at a glance: queue depths, workers online, recent throughput and outcomes;
//! `GET /stats/history`: the last hour per 10-second bucket, for the dashboard's charts.

use std::collections::BTreeMap;

use axum::{Json, Router, extract::State, routing::get};
use chrono::Utc;
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
    /// Finished tasks per second, averaged over the window (from its oldest bucket's start to now).
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
    /// The last minute: the current 10-second bucket of `/stats/history` and the five before it.
    pub last_minute: Window,
    /// The last hour: every bucket of `/stats/history`.
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
    // Counted from the history's buckets: what each process adds about once a second, so a window ends up to a
    // second back. (A set of every finished task, read by score, cost a Redis command and 140 bytes per task.)
    let buckets = state.states.history().await?;
    let now = Utc::now();
    let window = |seconds: u64| {
        let kept = &buckets[buckets.len().saturating_sub((seconds / BUCKET_SECONDS) as usize)..];
        let (success, failure) = kept.iter().fold((0, 0), |(s, f), b| (s + b.success, f + b.failure));
        // From the oldest bucket's start: a minute is the current bucket and the five before it, 50 to 60 seconds.
        let covered = kept.first().map_or(1, |b| (now - b.start).num_milliseconds().max(1)) as f64 / 1000.0;
        Window { success, failure, per_second: (success + failure) as f64 / covered }
    };
    Ok(Json(Stats {
        queues,
        workers_online: state.states.workers().await?.len(),
        last_minute: window(60),
        last_hour: window(3600),
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

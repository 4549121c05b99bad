//! `GET /workers`: the live workers, from their heartbeats in Redis.

use axum::{Json, Router, extract::State, routing::get};
use thumbq_common::{api_key::Scope, state_store::workers::WorkerInfo};

use crate::{
    caller::Caller,
    error::{ApiError, ErrorBody},
    state::AppState,
};

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/workers", get(list_workers))
}

/// List live workers with their counters, most recent heartbeat first. A worker that stops heartbeating
/// disappears after three heartbeat periods.
#[utoipa::path(
    get,
    path = "/workers",
    tag = "workers",
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, description = "Live workers", body = Vec<WorkerInfo>),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn list_workers(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<WorkerInfo>>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(state.states.workers().await?))
}

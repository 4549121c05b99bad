//! `GET /tasks/{id}`: a task's record, like Celery's `AsyncResult`.

use axum::{
    Json, Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use thumbq_common::{TaskId, TaskRecord, TaskStatus};
use utoipa::IntoParams;

use crate::{
    error::{ApiError, ErrorBody, in_range},
    state::AppState,
};

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/tasks", get(list_tasks)).route("/tasks/{id}", get(get_task))
}

/// Get a task's record: status, attempts, timestamps, worker, error, source and result.
#[utoipa::path(
    get,
    path = "/tasks/{id}",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id", example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")),
    responses(
        (status = 200, description = "The task's record", body = TaskRecord),
        (status = 400, description = "Not a task id", body = ErrorBody),
        (status = 404, description = "No such task (never existed, or expired)", body = ErrorBody,
            example = json!({"error": "no task 6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11"})),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn get_task(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<TaskRecord>, ApiError> {
    let id: TaskId = id.parse().map_err(|e: thumbq_common::task::InvalidTaskId| ApiError::BadRequest(e.to_string()))?;
    let record = state.states.get(id).await?.ok_or_else(|| ApiError::NotFound(format!("no task {id}")))?;
    Ok(Json(record))
}

/// Largest page of `GET /tasks`.
pub const MAX_LIMIT: usize = 100;

/// Query parameters of `GET /tasks`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only tasks in this state.
    #[param(inline)]
    pub status: Option<TaskStatus>,
    /// How many, 1..=100; default 20.
    #[param(minimum = 1, maximum = 100, example = 20)]
    pub limit: Option<usize>,
    /// Only tasks created before this instant (RFC 3339): pass the last `created_at` of a page to get the next.
    #[param(value_type = Option<String>, example = "2026-11-23T09:53:04.028209334Z")]
    pub before: Option<DateTime<Utc>>,
}

/// List recent tasks, newest first. The index behind it expires with the task records.
#[utoipa::path(
    get,
    path = "/tasks",
    tag = "tasks",
    params(ListParams),
    responses(
        (status = 200, description = "Task records, newest first", body = Vec<TaskRecord>),
        (status = 400, description = "Bad status, limit or before", body = ErrorBody,
            example = json!({"error": "limit must be between 1 and 100, got 0"})),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Vec<TaskRecord>>, ApiError> {
    let Query(params) = params?;
    let limit = in_range("limit", params.limit.unwrap_or(20), 1..=MAX_LIMIT)?;
    Ok(Json(state.states.list(params.status, limit, params.before).await?))
}

//! The operator's actions on dead letters: replay every one, or one task's, back to the work queue; purge them.
//! Each is recorded in the affected tasks' records; the dashboard uses these routes and nothing else.

use axum::{
    Json, Router,
    extract::State,
    routing::{get, post},
};
use serde::Deserialize;
use thumbq_common::{
    TaskId, TaskRecord, TaskStatus,
    api_key::Scope,
    dead_letters::{DeadLetterPage, DeadLetters, Handled, Selection, Treatment},
};
use utoipa::IntoParams;

use crate::{
    caller::Caller,
    error::{ApiError, ErrorBody, ErrorCode, in_range},
    extract::{Path, Query},
    state::AppState,
};

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dead-letters/replay", post(replay_dead_letters))
        .route("/dead-letters", get(list_dead_letters).delete(purge_dead_letters))
        .route("/tasks/{id}/replay", post(replay_task))
}

/// Query parameters of `POST /dead-letters/replay`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReplayParams {
    /// At most this many tasks (1..=100000); default: every one.
    #[param(minimum = 1, maximum = 100_000, example = 100)]
    pub limit: Option<usize>,
}

/// Query parameters of `GET /dead-letters`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many, 1..=100; default 20.
    #[param(minimum = 1, maximum = 100, example = 20)]
    pub limit: Option<usize>,
    /// How many to pass over first, 0..=10000 (a previous page's `next_offset`); default 0.
    #[param(minimum = 0, maximum = 10_000, example = 0)]
    pub offset: Option<usize>,
}

/// Largest `offset` of `GET /dead-letters`: a page is read from the queue's head, so each costs its offset.
pub const MAX_OFFSET: usize = 10_000;

/// List dead letters, oldest first, without taking them: each one's task, why it is there and its last error.
/// Replay them with `POST /tasks/{id}/replay` or `POST /dead-letters/replay`.
#[utoipa::path(
    get,
    path = "/dead-letters",
    tag = "tasks",
    security(("api_key" = ["admin"])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of dead letters", body = DeadLetterPage,
            example = json!({"dead_letters": [{"task_id": "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11",
                "reason": "retries_exhausted", "error": "internal error: the file store could not be read or written; the worker's log has the cause"}],
                "next_offset": 20})),
        (status = 400, description = "Bad limit or offset, or an unknown parameter", body = ErrorBody),
        (status = 503, description = "RabbitMQ is unavailable", body = ErrorBody),
    )
)]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    caller.require(Scope::Admin)?;
    let limit = in_range("limit", params.limit.unwrap_or(20), 1..=100)?;
    let offset = in_range("offset", params.offset.unwrap_or(0), 0..=MAX_OFFSET)?;
    let dead = DeadLetters::open(&state.settings, "thumbq-api dead letters").await?;
    let page = dead.peek(offset, limit).await;
    // Closing returns every message read to the queue, in its order.
    dead.close().await;
    Ok(Json(page?))
}

/// Query parameters of `DELETE /dead-letters`: none, and an unknown one is a `400` as on every other route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeParams {}

/// Runs one action on a connection of its own, closed afterwards whatever happened; `by` is the caller's key.
async fn run(
    state: &AppState,
    treatment: Treatment,
    selection: Selection,
    by: Option<&str>,
) -> Result<Handled, ApiError> {
    let dead = DeadLetters::open(&state.settings, "thumbq-api dead letters").await?;
    let done = dead.handle(&state.states, treatment, selection, by).await;
    dead.close().await;
    Ok(done?)
}

/// Replay dead letters: every dead-lettered task goes back to the work queue as a fresh first attempt, its record
/// back to PENDING with `replayed` in its `actions`. A task erased or cancelled since is not brought back: its dead
/// letter is dropped and counted in `skipped`. Messages that are not tasks stay in the dead-letter queue.
#[utoipa::path(
    post,
    path = "/dead-letters/replay",
    tag = "tasks",
    security(("api_key" = ["admin"])),
    params(ReplayParams),
    responses(
        (status = 200, description = "What was replayed", body = Handled,
            example = json!({"tasks": 3, "kept": 1, "discarded": 0, "skipped": 1})),
        (status = 400, description = "Bad limit, or an unknown parameter", body = ErrorBody),
        (status = 503, description = "RabbitMQ or Redis is unavailable; what was replayed stays replayed", body = ErrorBody),
    )
)]
pub async fn replay_dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ReplayParams>,
) -> Result<Json<Handled>, ApiError> {
    caller.require(Scope::Admin)?;
    let limit = params.limit.map(|l| crate::error::in_range("limit", l, 1..=100_000)).transpose()?;
    let done = run(&state, Treatment::Replay, Selection::All { limit }, caller.key.as_deref()).await?;
    tracing::info!(tasks = done.tasks, kept = done.kept, skipped = done.skipped, "dead letters replayed");
    Ok(Json(done))
}

/// Purge dead letters: every dead letter is discarded (the messages that are not tasks too); each task's record
/// stays FAILURE, with `purged` in its `actions`.
#[utoipa::path(
    delete,
    path = "/dead-letters",
    tag = "tasks",
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, description = "What was discarded", body = Handled,
            example = json!({"tasks": 3, "kept": 0, "discarded": 1, "skipped": 0})),
        (status = 400, description = "An unknown parameter (this route takes none)", body = ErrorBody),
        (status = 503, description = "RabbitMQ or Redis is unavailable; what was purged stays purged", body = ErrorBody),
    )
)]
pub async fn purge_dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    Query(PurgeParams {}): Query<PurgeParams>,
) -> Result<Json<Handled>, ApiError> {
    caller.require(Scope::Admin)?;
    let done = run(&state, Treatment::Purge, Selection::All { limit: None }, caller.key.as_deref()).await?;
    tracing::info!(tasks = done.tasks, discarded = done.discarded, "dead letters purged");
    Ok(Json(done))
}

/// Replay one task's dead letter: the task goes back to the work queue as a fresh first attempt; its record (now
/// PENDING, with `replayed` in its `actions`) is the answer. A task cancelled since (`409`) or erased (`404`) is
/// not brought back; its dead letter is dropped.
#[utoipa::path(
    post,
    path = "/tasks/{id}/replay",
    tag = "tasks",
    security(("api_key" = ["admin"])),
    params(("id" = uuid::Uuid, Path, description = "The task's id (a lower-case hyphenated UUID)",
        example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")),
    responses(
        (status = 200, description = "Replayed: the record, now PENDING", body = TaskRecord),
        (status = 400, description = "Not a task id", body = ErrorBody),
        (status = 404, description = "The task has no dead letter, or was erased (its dead letter is dropped)",
            body = ErrorBody,
            example = json!({"error": "task 6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11 has no dead letter", "code": "no_dead_letter"})),
        (status = 409, description = "The task was cancelled (REVOKED): it stays so, its dead letter is dropped",
            body = ErrorBody,
            example = json!({"error": "task 6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11 was cancelled; its dead letter was dropped", "code": "task_cancelled"})),
        (status = 503, description = "RabbitMQ or Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn replay_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TaskRecord>, ApiError> {
    caller.require(Scope::Admin)?;
    let id: TaskId = id.parse()?;
    let done = run(&state, Treatment::Replay, Selection::Task(id), caller.key.as_deref()).await?;
    let record = state.states.get(id).await?;
    match record {
        Some(record) if done.tasks > 0 => Ok(Json(state.with_urls(record))),
        Some(record) if done.skipped > 0 && record.status == TaskStatus::Revoked => Err(ApiError::Conflict(
            ErrorCode::TaskCancelled,
            format!("task {id} was cancelled; its dead letter was dropped"),
        )),
        None if done.skipped > 0 => {
            Err(ApiError::NotFound(ErrorCode::TaskErased, format!("task {id} was erased; its dead letter was dropped")))
        }
        _ => Err(ApiError::NotFound(ErrorCode::NoDeadLetter, format!("task {id} has no dead letter"))),
    }
}

//! `GET /tasks/{id}` (a task's record, like Celery's `AsyncResult`) and `GET /tasks` (the list, paged by cursor).

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};
use thumbq_common::{
    TaskId, TaskRecord, TaskStatus,
    api_key::Scope,
    state_store::{Among, IndexEntry, Update},
};
use utoipa::{IntoParams, ToSchema};

use crate::{
    caller::Caller,
    error::{ApiError, ErrorBody, ErrorCode, in_range},
    extract::{Path, Query},
    state::AppState,
};

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/tasks", get(list_tasks)).route("/tasks/{id}", get(get_task).delete(cancel_task))
}

/// Get a task's record: status, attempts, timestamps, worker, error, source and result.
#[utoipa::path(
    get,
    path = "/tasks/{id}",
    tag = "tasks",
    security(("api_key" = ["read"])),
    params(("id" = uuid::Uuid, Path, description = "The task's id (a lower-case hyphenated UUID)",
        example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")),
    responses(
        (status = 200, description = "The task's record", body = TaskRecord),
        (status = 400, description = "Not a task id", body = ErrorBody),
        (status = 401, description = "Keys are on and the request has no valid key", body = ErrorBody),
        (status = 403, description = "The key lacks the `read` scope", body = ErrorBody),
        (status = 404, description = "No such task (never existed, expired, or another key's)", body = ErrorBody,
            example = json!({"error": "no task 6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11", "code": "task_not_found"})),
        (status = 429, description = "Over the rate limit", body = ErrorBody),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn get_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TaskRecord>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(state.with_urls(caller.owned(record_of(&state, &id).await?)?)))
}

/// The record of the task whose id is `id`: `400` for a bad id, `404` for none.
pub(crate) async fn record_of(state: &AppState, id: &str) -> Result<TaskRecord, ApiError> {
    let id: TaskId = id.parse()?;
    state.states.get(id).await?.ok_or_else(|| ApiError::NotFound(ErrorCode::TaskNotFound, format!("no task {id}")))
}

/// Cancel a task that has not finished: it becomes REVOKED (Celery's name), no thumbnail is made, its original is
/// deleted. A worker that receives it afterwards acknowledges it without work; one already working on it removes
/// what it wrote. Cancelling a REVOKED task again answers its record; a finished one, `409`.
#[utoipa::path(
    delete,
    path = "/tasks/{id}",
    tag = "tasks",
    security(("api_key" = ["upload"])),
    params(("id" = uuid::Uuid, Path, description = "The task's id (a lower-case hyphenated UUID)",
        example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")),
    responses(
        (status = 200, description = "Cancelled: the record, now REVOKED", body = TaskRecord),
        (status = 400, description = "Not a task id", body = ErrorBody),
        (status = 404, description = "No such task (never existed, expired, or another key's)", body = ErrorBody),
        (status = 409, description = "The task has finished (SUCCESS or FAILURE); delete its thumbnail instead",
            body = ErrorBody,
            example = json!({"error": "task 6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11 has finished (SUCCESS); to erase it, DELETE /thumbnails/6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg", "code": "already_finished"})),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn cancel_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TaskRecord>, ApiError> {
    caller.require(Scope::Upload)?;
    let record = caller.owned(record_of(&state, &id).await?)?;
    match state.states.revoke(record.id).await? {
        Update::Applied => {
            state.states.record_action(record.id, "cancelled", caller.key.as_deref()).await?;
        }
        Update::Refused(TaskStatus::Revoked) => {}
        Update::Refused(status) => {
            return Err(ApiError::Conflict(
                ErrorCode::AlreadyFinished,
                format!("task {} has finished ({status}); to erase it, DELETE /thumbnails/{}", record.id, record.name),
            ));
        }
        Update::Missing => return Err(ApiError::NotFound(ErrorCode::TaskNotFound, format!("no task {}", record.id))),
    }
    // A worker that meets the REVOKED record deletes the original too: a failure here is not the client's.
    if let Err(e) = state.store.delete_original(record.id).await {
        tracing::warn!(task_id = %record.id, error = %e, "could not delete a cancelled task's original");
    }
    tracing::info!(task_id = %record.id, "task cancelled");
    Ok(Json(state.with_urls(record_of(&state, &id).await?)))
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
    /// Only this bulk job's items (`GET /jobs/{id}`).
    #[param(value_type = Option<uuid::Uuid>)]
    pub job: Option<String>,
    /// How many, 1..=100; default 20.
    #[param(minimum = 1, maximum = 100, example = 20)]
    pub limit: Option<usize>,
    /// Where to continue: the previous page's `next_cursor` (also in its `Link: <…>; rel="next"` header). Opaque.
    #[param(value_type = Option<String>, pattern = r"^[0-9]{13}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        example = "1763891584028:6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")]
    pub cursor: Option<String>,
}

/// A page of `GET /tasks`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskPage {
    /// Task records, newest first.
    pub tasks: Vec<TaskRecord>,
    /// When more tasks follow: pass it as `cursor` for the next page (the `Link` header has the whole path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1763891584028:6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")]
    pub next_cursor: Option<String>,
}

/// List tasks, newest first, one page at a time.
///
/// When more tasks follow, the answer's `next_cursor` is set, and its `Link: </tasks?…&cursor=…>; rel="next"`
/// header names the next page's path: follow either. Walking the pages returns every task exactly once, with or without a status filter, however many tasks
/// were created in the same millisecond. The index behind it expires with the task records. With keys on, a key
/// without `admin` lists only the tasks it uploaded; filtered by status, such a page may come up short (at most
/// 1,000 tasks are looked at per page) and still have a next page.
#[utoipa::path(
    get,
    path = "/tasks",
    tag = "tasks",
    security(("api_key" = ["read"])),
    params(ListParams),
    responses(
        (status = 200, description = "Task records, newest first, and where to continue", body = TaskPage,
            headers(("Link" = String, description = "`<path of the next page>; rel=\"next\"`, when there is one"))),
        (status = 400, description = "Bad status, limit, cursor or job id", body = ErrorBody,
            example = json!({"error": "limit must be between 1 and 100, got 0", "code": "invalid_parameter"})),
        (status = 404, description = "`job` names no job (or another key's)", body = ErrorBody),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let limit = in_range("limit", params.limit.unwrap_or(20), 1..=MAX_LIMIT)?;
    let cursor = params
        .cursor
        .map(|c| {
            c.parse::<IndexEntry>().map_err(|e| ApiError::BadRequest(ErrorCode::InvalidCursor, format!("cursor: {e}")))
        })
        .transpose()?;
    // A job's items: the job must be the caller's (as `GET /jobs/{id}` checks), and its index holds only them.
    let among = match &params.job {
        Some(job) => Among::Job(super::jobs::job_of(&state, &caller, job).await?.id),
        None => caller.listing_owner().map_or(Among::All, Among::Owner),
    };
    let page = state.states.list(params.status, among, limit, cursor.as_ref()).await?;
    let tasks = page.records.into_iter().map(|r| state.with_urls(r)).collect();
    let next_cursor = page.next.map(|next| next.to_string());
    let link = next_cursor.as_ref().map(|next| {
        let status = params.status.map(|s| format!("&status={s}")).unwrap_or_default();
        let job = params.job.as_ref().map(|j| format!("&job={j}")).unwrap_or_default();
        // The cursor is `<digits>:<uuid>` and a job a UUID: nothing in them needs escaping in a query string.
        format!("</tasks?limit={limit}{status}{job}&cursor={next}>; rel=\"next\"")
    });
    let mut response = Json(TaskPage { tasks, next_cursor }).into_response();
    if let Some(link) = link {
        let value = HeaderValue::from_str(&link).map_err(|e| ApiError::Internal(e.to_string()))?;
        response.headers_mut().insert(header::LINK, value);
    }
    Ok(response)
}

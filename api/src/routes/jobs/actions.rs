//! What can be done to a job: pause it, resume it, cancel it (`DELETE /jobs/{id}`), and make its failed items again.

use axum::{Json, extract::State};
use thumbq_common::{
    api_key::Scope,
    job::{Job, JobStatus},
};

use super::job_of;
use crate::{
    caller::Caller,
    error::{ApiError, ErrorBody, ErrorCode},
    extract::Path,
    state::AppState,
};

/// Pause a running job: no new item starts until it is resumed (those already queued, a window at most, finish).
#[utoipa::path(
    post,
    path = "/jobs/{id}/pause",
    tag = "jobs",
    security(("api_key" = ["upload"])),
    params(("id" = uuid::Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "PAUSED (also when it already was)", body = Job),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job (or another key's)", body = ErrorBody),
        (status = 409, description = "The job has ended", body = ErrorBody),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn pause_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    change(&state, &caller, &id, &[JobStatus::Running, JobStatus::Paused], JobStatus::Paused).await
}

/// Resume a paused job.
#[utoipa::path(
    post,
    path = "/jobs/{id}/resume",
    tag = "jobs",
    security(("api_key" = ["upload"])),
    params(("id" = uuid::Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "RUNNING again (also when it already was)", body = Job),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job (or another key's)", body = ErrorBody),
        (status = 409, description = "The job has ended", body = ErrorBody),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn resume_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    change(&state, &caller, &id, &[JobStatus::Paused, JobStatus::Running], JobStatus::Running).await
}

/// Cancel a job: CANCELLED at once, no new item starts, and the items already queued are REVOKED as workers meet
/// them (counted in `cancelled`); items that ended stay, thumbnails and all.
#[utoipa::path(
    delete,
    path = "/jobs/{id}",
    tag = "jobs",
    security(("api_key" = ["upload"])),
    params(("id" = uuid::Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "CANCELLED (also when it already was)", body = Job),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job (or another key's)", body = ErrorBody),
        (status = 409, description = "The job is DONE", body = ErrorBody),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let from = [JobStatus::Running, JobStatus::Paused, JobStatus::Cancelled];
    change(&state, &caller, &id, &from, JobStatus::Cancelled).await
}

/// Make a job's failed items again: each goes back to PENDING (its record keeps its history, with a `replayed`
/// action) and is queued again before any new item, within the window; a DONE job runs again until they end.
#[utoipa::path(
    post,
    path = "/jobs/{id}/retry-failed",
    tag = "jobs",
    security(("api_key" = ["upload"])),
    params(("id" = uuid::Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, its failed items counted out of `failed` and `queued` until they are \
            queued again", body = Job),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job (or another key's)", body = ErrorBody),
        (status = 409, description = "The job was cancelled", body = ErrorBody),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn retry_failed(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    caller.require(Scope::Upload)?;
    let job = job_of(&state, &caller, &id).await?;
    match state.states.retry_failed(job.id).await? {
        Some(Ok(count)) => {
            tracing::info!(job = %job.id, count, "failed job items to make again");
            Ok(Json(job_of(&state, &caller, &id).await?))
        }
        Some(Err(status)) => Err(ApiError::Conflict(
            ErrorCode::JobEnded,
            format!("job {} is {status}: its failures cannot be retried", job.id),
        )),
        None => Err(ApiError::NotFound(ErrorCode::JobNotFound, format!("no job {id}"))),
    }
}

/// Moves the caller's job `id` to `to` from one of `from`; `409` from any other status.
async fn change(
    state: &AppState,
    caller: &Caller,
    id: &str,
    from: &[JobStatus],
    to: JobStatus,
) -> Result<Json<Job>, ApiError> {
    caller.require(Scope::Upload)?;
    let job = job_of(state, caller, id).await?;
    match state.states.change_job_status(job.id, from, to).await? {
        Some(before) if from.contains(&before) => {
            if before != to {
                tracing::info!(job = %job.id, %before, %to, "job status changed");
            }
            Ok(Json(job_of(state, caller, id).await?))
        }
        Some(before) => Err(ApiError::Conflict(
            ErrorCode::JobEnded,
            format!("job {} has ended ({before}): it cannot become {to}", job.id),
        )),
        None => Err(ApiError::NotFound(ErrorCode::JobNotFound, format!("no job {id}"))),
    }
}

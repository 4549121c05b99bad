//! `POST /jobs` (a bulk job: every object under a prefix of the import store, or a list of URLs, made with one set
//! of upload parameters), `GET /jobs/{id}` (its progress) and `GET /jobs` (the list); what can be done to a job is
//! in `actions`. The API only records the job: the workers' job pump (`worker/src/job_pump.rs`) makes its items, a
//! window at a time, in a lane of their own.

pub mod actions;

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, Uri},
    response::Response,
    routing::{get, post},
};
use serde::Deserialize;
use thumbq_common::{
    api_key::Scope,
    job::{InvalidJobId, Job, JobId, JobSpec, MAX_SOURCES, RerenderFilter},
    state_store::jobs::NewJob,
    task::{Import, RenditionName, TaskEnvelope, check_key},
};
use utoipa::IntoParams;

use super::thumbnails::{
    import::{UNSEEN, check, require_import_store},
    params::UploadParams,
};
use crate::{
    caller::Caller,
    error::{ApiError, ErrorBody, ErrorCode, in_range},
    extract::{Path, Query, read_json},
    idempotency,
    state::AppState,
};

/// Largest body of `POST /jobs`: 10,000 URLs of some 400 characters.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Largest page of `GET /jobs`.
pub const MAX_LIMIT: usize = 100;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(list_jobs).post(create_job))
        .route("/jobs/{id}", get(get_job).delete(actions::cancel_job))
        .route("/jobs/{id}/pause", post(actions::pause_job))
        .route("/jobs/{id}/resume", post(actions::resume_job))
        .route("/jobs/{id}/retry-failed", post(actions::retry_failed))
}

/// Start a bulk job.
///
/// With `callback_url`, the job (as `GET /jobs/{id}` answers it) is POSTed there, signed like a task's webhook,
/// when it ends: `Thumbq-Event: job.done` or `job.cancelled`.
///
/// The body is `{"prefix": "photos/2024"}` (every object under that folder of the import store, `THUMBQ_IMPORT_URL`,
/// listed page by page as the job runs), `{"sources": ["https://…", …]}` (at most 10,000 URLs, each fetched as an
/// import's `source`), or `{"rerender": {"preset": "card"}}` (the kept originals of tasks that succeeded before the
/// job was made, made again with this job's parameters: all of them with `{}`, or those made with a preset, or
/// uploaded with a key, `"owner"`, which a key without `admin` may set to itself only; tasks whose original was not
/// kept are passed by). The query parameters are an upload's and apply to every item; without `format`, an item
/// is WebP, as an import is. Items are tasks whose records carry `job` (and `import` or `rendition_of`), made by
/// the workers a window at a time (`THUMBQ_JOB_WINDOW`) in a lane of their own, so they never wait in front of an
/// upload; each item is done once, however often workers or the API restart.
#[utoipa::path(
    post,
    path = "/jobs",
    tag = "jobs",
    security(("api_key" = ["upload"])),
    params(UploadParams,
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters: a retry with \
            the same key and the same request (query and body) gets the first one's `202` and makes no second job; \
            kept 24 h per API key")),
    request_body(content = JobSpec, content_type = "application/json",
        description = "Exactly one of `prefix`, `sources` and `rerender`"),
    responses(
        (status = 202, description = "Recorded; the workers start its items", body = Job,
            headers(("Location" = String, description = "Path of the job, `/jobs/{id}`"))),
        (status = 400, description = "A bad body or parameter, a refused URL, a prefix outside the store, or no \
            import store", body = ErrorBody),
        (status = 401, description = "Keys are on and the request has no valid key", body = ErrorBody),
        (status = 403, description = "The key lacks the `upload` scope, or names another key's tasks to rerender \
            without `admin`", body = ErrorBody),
        (status = 409, description = "The first request with this `Idempotency-Key` is still being recorded after 30 s",
            body = ErrorBody),
        (status = 413, description = "The body is over 4 MiB", body = ErrorBody),
        (status = 422, description = "An `Idempotency-Key` used for another request (`idempotency_mismatch`)",
            body = ErrorBody),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn create_job(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UploadParams>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::Upload)?;
    let key = idempotency::Key::of(&headers, &caller)?;
    let shape = "{\"prefix\": \"folder/in/the/store\"}, {\"sources\": [\"https://…\", …]} or {\"rerender\": {}}";
    let (spec, raw): (JobSpec, _) = read_json(body, MAX_BODY_BYTES, shape).await?;
    let query = uri.query().unwrap_or_default();
    let Some(key) = key else {
        let (job, location) = record_job(&state, &caller, &params, query, &spec).await?;
        return idempotency::answer(job, &location);
    };
    // The route is part of the request: the same key on an upload is another request.
    let request = format!("POST /jobs?{query}");
    let digest = idempotency::digest_of_bytes(&raw);
    if let Some(stored) = key.first_or_stored(&state).await? {
        return stored.replay(&request, &digest);
    }
    let made = record_job(&state, &caller, &params, query, &spec).await;
    let (job, location) = key.settle(&state, &request, &digest, made).await?;
    idempotency::answer(job, &location)
}

/// Checks and records a job: the `202`'s body and `Location`.
async fn record_job(
    state: &AppState,
    caller: &Caller,
    params: &UploadParams,
    query: &str,
    spec: &JobSpec,
) -> Result<(Job, String), ApiError> {
    let spec = &checked_spec(state, caller, spec)?;
    if params.dedupe == Some(true) {
        return Err(ApiError::BadRequest(
            ErrorCode::InvalidParameter,
            "dedupe compares an upload's bytes, which a job's items do not send: it applies to uploads only".into(),
        ));
    }
    // The job's own webhook, when it ends; its items send none.
    let callback_url = params.callback_url(&state.settings.webhook)?;
    let template = TaskEnvelope {
        keep_original: params.keep_original.unwrap_or(state.settings.store.keep_originals),
        ..params.envelope(UNSEEN, &state.settings.presets, state.settings.limits.max_task_work_ms)?
    };
    let id = JobId::new();
    let owner = caller.key.as_deref();
    let (callback_url, ttl) = (callback_url.as_deref(), state.settings.jobs.ttl);
    let new = NewJob { id, spec, query, owner, template: &template, callback_url, ttl };
    state.states.create_job(&new).await?;
    tracing::info!(job = %id, "job created");
    Ok((job_of(state, caller, &id.to_string()).await?, format!("/jobs/{id}")))
}

/// What the API can check of a job before it runs: a prefix under the import store, URLs the fetch guard allows,
/// a rerender's preset and owner (a key without `admin` makes its own tasks again, and may name no other key).
fn checked_spec(state: &AppState, caller: &Caller, spec: &JobSpec) -> Result<JobSpec, ApiError> {
    if let JobSpec::Rerender(filter) = spec {
        if let Some(preset) = &filter.preset {
            preset
                .parse::<RenditionName>()
                .map_err(|e| ApiError::BadRequest(ErrorCode::InvalidParameter, format!("rerender.preset: {e}")))?;
        }
        let owner = match (caller.listing_owner(), &filter.owner) {
            (Some(own), Some(named)) if own != named => {
                return Err(ApiError::Forbidden(
                    ErrorCode::MissingScope,
                    format!("rerendering another key's tasks (rerender.owner {named:?}) needs the `admin` scope"),
                ));
            }
            (Some(own), _) => Some(own.to_owned()),
            (None, named) => named.clone(),
        };
        return Ok(JobSpec::Rerender(RerenderFilter { owner, ..filter.clone() }));
    }
    check_spec(state, spec)?;
    Ok(spec.clone())
}

/// The checks of an import job's spec.
fn check_spec(state: &AppState, spec: &JobSpec) -> Result<(), ApiError> {
    match spec {
        JobSpec::Rerender(_) => Ok(()),
        JobSpec::Prefix(prefix) => {
            require_import_store(state)?;
            let folder = prefix.trim_matches('/');
            if !folder.is_empty() {
                check_key(folder).map_err(|reason| ApiError::BadRequest(ErrorCode::InvalidImportKey, reason))?;
            }
            Ok(())
        }
        JobSpec::Sources(urls) => {
            if urls.is_empty() || urls.len() > MAX_SOURCES {
                return Err(ApiError::BadRequest(
                    ErrorCode::InvalidParameter,
                    format!("sources holds 1 to {MAX_SOURCES} URLs; more make more jobs"),
                ));
            }
            for (i, url) in urls.iter().enumerate() {
                check(state, &Import::Source(url.clone())).map_err(|e| match e {
                    ApiError::BadRequest(code, reason) => ApiError::BadRequest(code, format!("sources[{i}]: {reason}")),
                    other => other,
                })?;
            }
            Ok(())
        }
    }
}

/// Get a job's progress: its status, counts, rate and ETA, and its first failures.
#[utoipa::path(
    get,
    path = "/jobs/{id}",
    tag = "jobs",
    security(("api_key" = ["read"])),
    params(("id" = uuid::Uuid, Path, description = "The job's id", example = "0b5e8a9c-4a61-4d2f-8f0e-1f5b3d8c2a77")),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 401, description = "Keys are on and the request has no valid key", body = ErrorBody),
        (status = 403, description = "The key lacks the `read` scope", body = ErrorBody),
        (status = 404, description = "No such job (or another key's)", body = ErrorBody),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(job_of(&state, &caller, &id).await?))
}

/// Query parameters of `GET /jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Jobs per answer, newest first (1..=100, default 20).
    #[param(minimum = 1, maximum = 100, example = 20)]
    limit: Option<usize>,
}

/// List jobs, newest first: the caller's own (every job with `admin`).
#[utoipa::path(
    get,
    path = "/jobs",
    tag = "jobs",
    security(("api_key" = ["read"])),
    params(ListParams),
    responses(
        (status = 200, description = "The jobs, newest first", body = Vec<Job>),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = "Keys are on and the request has no valid key", body = ErrorBody),
        (status = 403, description = "The key lacks the `read` scope", body = ErrorBody),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<Vec<Job>>, ApiError> {
    caller.require(Scope::Read)?;
    let limit = in_range("limit", params.limit.unwrap_or(20), 1..=MAX_LIMIT)?;
    let jobs = state.states.jobs(caller.listing_owner(), limit).await?;
    Ok(Json(jobs.into_iter().map(|job| with_url(&state, job)).collect()))
}

/// The job whose id is `id`, if the caller may see it: `400` for a bad id, `404` for none (or another key's).
pub(crate) async fn job_of(state: &AppState, caller: &Caller, id: &str) -> Result<Job, ApiError> {
    let not_found = || ApiError::NotFound(ErrorCode::JobNotFound, format!("no job {id}"));
    let parsed: JobId =
        id.parse().map_err(|e: InvalidJobId| ApiError::BadRequest(ErrorCode::InvalidJobId, e.to_string()))?;
    let job = state.states.job(parsed).await?.ok_or_else(not_found)?;
    if !caller.owns(job.owner.as_deref()) {
        return Err(not_found());
    }
    Ok(with_url(state, job))
}

/// The job with its absolute URL.
fn with_url(state: &AppState, job: Job) -> Job {
    let status_url = Some(format!("{}/jobs/{}", state.settings.http.public_url, job.id));
    Job { status_url, ..job }
}

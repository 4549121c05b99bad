//! `POST /thumbnails` (upload and queue) and `GET /thumbnails/{name}` (download, status, long poll).

use std::time::Duration;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use thumbq_common::{
    access::Scope,
    image_probe,
    task::{FailureKind, Fit, OutputFormat, ResizeArgs, TaskEnvelope, TaskId, TaskRecord, TaskStatus, ThumbnailName},
};
use tracing::{Instrument, info, info_span, warn};
use utoipa::{IntoParams, ToSchema};

use crate::{
    access::Caller,
    error::{ApiError, ErrorBody, in_range, store_unavailable},
    extract::{Path, Query},
    state::AppState,
    upload::Upload,
};

/// Largest thumbnail side in pixels.
pub const MAX_SIDE: u32 = 2048;
/// Longest long poll in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// Thumbnails never change once made: caches may keep them for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/thumbnails", post(create_thumbnail)).route("/thumbnails/{name}", get(get_thumbnail))
}

/// Optional query parameters of an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// Thumbnail width in pixels, 1..=2048; default 100.
    #[param(minimum = 1, maximum = 2048, example = 100)]
    pub width: Option<u32>,
    /// Thumbnail height in pixels, 1..=2048; default 100.
    #[param(minimum = 1, maximum = 2048, example = 100)]
    pub height: Option<u32>,
    /// `cover` (default: scale and centre-crop to exactly width×height), `contain` (fit inside, keep the aspect
    /// ratio) or `fill` (stretch to exactly width×height).
    #[param(inline)]
    pub fit: Option<Fit>,
    /// `png`, `jpeg` or `webp`; default: the source's format when it is one of those, else `png`.
    #[param(inline)]
    pub format: Option<OutputFormat>,
}

/// The multipart form of an upload (documentation only; the extractor is [`Upload`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The image file: JPEG, PNG, WebP, GIF (first frame), BMP or TIFF. The format is read from the bytes.
    #[schema(format = Binary, value_type = String, min_length = 1)]
    image: Vec<u8>,
}

/// Image bytes in a request or response body (documentation only).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct ImageBytes(Vec<u8>);

/// The answer to an accepted upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The task's id.
    pub id: TaskId,
    /// The thumbnail's name, `<uuid>.<ext>`.
    #[schema(example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")]
    pub name: String,
    /// Always `PENDING`.
    pub status: TaskStatus,
    /// Absolute URL of the thumbnail: poll it, or long-poll it with `?wait=30`.
    #[schema(example = "http://127.0.0.1:8000/thumbnails/6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")]
    pub url: String,
    /// Absolute URL of the task's record.
    #[schema(example = "http://127.0.0.1:8000/tasks/6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")]
    pub status_url: String,
}

/// Upload an image and queue its thumbnail.
///
/// Answers `202` once the original is stored, the task is recorded as PENDING and RabbitMQ has confirmed the
/// persistent task message; if any of those fails, `503` with nothing left behind.
#[utoipa::path(
    post,
    path = "/thumbnails",
    tag = "thumbnails",
    security(("api_key" = ["upload"])),
    params(UploadParams),
    request_body(
        description = "The image, as multipart field `image` or as the raw body with an image/* content type.",
        content(
            (UploadForm = "multipart/form-data"),
            (ImageBytes = "image/*"),
        ),
    ),
    responses(
        (status = 202, description = "Accepted and queued", body = Accepted,
            headers(("Location" = String, description = "Path of the thumbnail, `/thumbnails/{name}`"))),
        (status = 400, description = "Missing `image` field, empty upload or bad parameter", body = ErrorBody,
            example = json!({"error": "missing multipart field `image` (found field(s) file)"})),
        (status = 413, description = "Upload over the size limit (answered from `Content-Length` alone when it says so)",
            body = ErrorBody, example = json!({"error": "the upload is larger than the limit of 26214400 bytes"})),
        (status = 415, description = "Not an image, or an unsupported format", body = ErrorBody,
            example = json!({"error": "the upload is not an image (its first bytes match no known image format)"})),
        (status = 422, description = "Unreadable header, or more pixels than the limit", body = ErrorBody,
            example = json!({"error": "the image is 100000x100000 pixels, over the limit of 50000000 pixels"})),
        (status = 503, description = "RabbitMQ, Redis or the file store is unavailable; retry after `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait")),
            example = json!({"error": "rabbitmq is unavailable; try again shortly"})),
    )
)]
pub async fn create_thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UploadParams>,
    Upload(bytes): Upload,
) -> Result<Response, ApiError> {
    caller.require(Scope::Upload)?;
    // Header parsing inflates compressed metadata: CPU work, kept off the async executor.
    let (header, max_pixels) = (bytes.clone(), state.settings.limits.max_pixels);
    let probe = tokio::task::spawn_blocking(move || image_probe::probe(&header, max_pixels))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let args = ResizeArgs {
        width: in_range("width", params.width.unwrap_or(100), 1..=MAX_SIDE)?,
        height: in_range("height", params.height.unwrap_or(100), 1..=MAX_SIDE)?,
        fit: params.fit.unwrap_or_default(),
        format: params.format.unwrap_or_else(|| OutputFormat::default_for(probe.format)),
    };
    let envelope = TaskEnvelope::new(TaskId::new(), args, Utc::now());
    let record = TaskRecord { owner: caller.key, ..TaskRecord::pending(&envelope, Some(probe.info(bytes.len()))) };
    let span = info_span!("task", task_id = %envelope.id);
    // Run the accept sequence as its own task: a client that hangs up half-way must not leave half a task behind.
    let accepted = tokio::spawn(accept(state.clone(), envelope.clone(), record, bytes.to_vec()).instrument(span))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    accepted?;

    let name = envelope.thumbnail_name().to_string();
    let base = &state.settings.http.public_url;
    let body = Accepted {
        id: envelope.id,
        status: TaskStatus::Pending,
        url: format!("{base}/thumbnails/{name}"),
        status_url: format!("{base}/tasks/{}", envelope.id),
        name,
    };
    let location =
        HeaderValue::from_str(&format!("/thumbnails/{}", body.name)).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response())
}

/// Stores the original, records PENDING and publishes the task, undoing the earlier steps if a later one fails.
async fn accept(state: AppState, envelope: TaskEnvelope, record: TaskRecord, bytes: Vec<u8>) -> Result<(), ApiError> {
    let id = envelope.id;
    state.store.put_original(id, bytes).await.map_err(|e| store_unavailable(&e))?;
    let queued = async {
        state.states.create(&record).await?;
        state.publisher.get().await?.publish_task(&envelope).await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = queued.await {
        // Withdraw: the client is told 503 and must find nothing half-done. A worker that still receives the
        // message (confirm lost, message kept) finds no record and drops it.
        if let Err(cleanup) = state.states.delete(&record).await {
            warn!(error = %cleanup, "could not withdraw the task record");
        }
        if let Err(cleanup) = state.store.delete_original(id).await {
            warn!(error = %cleanup, "could not withdraw the original");
        }
        return Err(e);
    }
    thumbq_common::telemetry_metrics::task_published(&state.settings.amqp.queue);
    info!(width = envelope.args.width, height = envelope.args.height, "task queued");
    Ok(())
}

/// Query parameters of a thumbnail download.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WaitParams {
    /// Long poll: wait up to this many seconds (0..=30) for the task to finish before answering; default 0.
    #[param(minimum = 0, maximum = 30, example = 30)]
    pub wait: Option<u64>,
}

/// Download a thumbnail, or see why it is not ready.
///
/// `200` with the image once the task succeeded; `202` with the task's record while it is PENDING, STARTED or
/// RETRY; `422` or `500` with the record (and its error) when it failed. With `?wait=N` the answer comes as soon
/// as the task finishes, or after N seconds.
#[utoipa::path(
    get,
    path = "/thumbnails/{name}",
    tag = "thumbnails",
    params(
        ("name" = String, Path, description = "The thumbnail's name, `<uuid>.<ext>`",
            pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(png|jpg|webp)$",
            example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg"),
        WaitParams,
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier download"),
    ),
    responses(
        (status = 200, description = "The thumbnail (`image/png`, `image/jpeg` or `image/webp`)", content_type = "image/*",
            body = ImageBytes,
            headers(
                ("ETag" = String, description = "Strong validator; send it back in If-None-Match"),
                ("Cache-Control" = String, description = "`public, max-age=31536000, immutable`: a thumbnail never changes"),
            )),
        (status = 202, description = "Not ready yet: the task's record", body = TaskRecord,
            headers(("Retry-After" = u32, description = "Seconds until it is worth asking again"))),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 400, description = "Not a thumbnail name, or a bad `wait`", body = ErrorBody,
            example = json!({"error": "not a thumbnail name: expected <uuid>.<png|jpg|webp>"})),
        (status = 404, description = "No such thumbnail", body = ErrorBody),
        (status = 422, description = "The task failed: the image could not be processed", body = TaskRecord),
        (status = 500, description = "The task failed: retries ran out on an internal fault", body = TaskRecord),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn get_thumbnail(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<WaitParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name: ThumbnailName = name
        .parse()
        .map_err(|()| ApiError::BadRequest("not a thumbnail name: expected <uuid>.<png|jpg|webp>".into()))?;
    let wait = Duration::from_secs(in_range("wait (seconds)", params.wait.unwrap_or(0), 0..=MAX_WAIT_SECS)?);
    // A stored thumbnail is final (written atomically, never changed), so it is served without asking Redis. A
    // store error here is not the answer yet: the record may say the task failed, or is still running.
    match stored_thumbnail(&state, name, &headers).await {
        Ok(Some(response)) => return Ok(response),
        Ok(None) => {}
        Err(e) => warn!(error = %e, "file store unreadable; answering from the task record"),
    }
    let not_found = || ApiError::NotFound(format!("no thumbnail named {name}"));
    let record =
        state.events.wait_until_finished(&state.states, name.id, wait, &state.shutdown).await?.ok_or_else(not_found)?;
    if record.name != name.to_string() {
        return Err(not_found());
    }
    match record.status {
        TaskStatus::Success => stored_thumbnail(&state, name, &headers)
            .await?
            .ok_or_else(|| ApiError::Internal(format!("task {} succeeded but {name} is not in the store", record.id))),
        TaskStatus::Failure => {
            let status = match record.error_kind {
                Some(FailureKind::InvalidImage) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Ok((status, Json(record)).into_response())
        }
        TaskStatus::Pending | TaskStatus::Started | TaskStatus::Retry => {
            Ok((StatusCode::ACCEPTED, [(header::RETRY_AFTER, HeaderValue::from_static("1"))], Json(record))
                .into_response())
        }
    }
}

/// The stored thumbnail as a `200` (or `304` when the client has it), or `None` when it is not stored.
async fn stored_thumbnail(
    state: &AppState,
    name: ThumbnailName,
    headers: &HeaderMap,
) -> Result<Option<Response>, ApiError> {
    let Some(bytes) = state.store.get_thumbnail(name).await.map_err(|e| store_unavailable(&e))? else {
        return Ok(None);
    };
    // Names are never reused and a thumbnail never changes, so its name and length identify its bytes.
    let etag = format!("\"{name}-{}\"", bytes.len());
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?;
    let cache = [(header::ETAG, etag_value), (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE))];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    if matches {
        return Ok(Some((StatusCode::NOT_MODIFIED, cache).into_response()));
    }
    let content_type = HeaderValue::from_static(name.format.content_type());
    Ok(Some((StatusCode::OK, cache, [(header::CONTENT_TYPE, content_type)], bytes).into_response()))
}

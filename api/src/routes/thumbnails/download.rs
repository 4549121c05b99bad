//! `GET /thumbnails/{name}`: the thumbnail once made, else the task's state; long-polls with `?wait=N`.

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use thumbq_common::task::{
    FailureKind, NegotiatedName, OutputFormat, TaskErrorCode, TaskRecord, TaskStatus, ThumbnailName,
};
use tracing::{info, warn};
use utoipa::{IntoParams, ToSchema};

use super::{IMMUTABLE, ImageBytes, MAX_WAIT_SECS, negotiate};
use crate::{
    error::{ApiError, ErrorBody, ErrorCode, in_range, store_unavailable},
    extract::{Path, Query},
    state::AppState,
};

/// Query parameters of a thumbnail download.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WaitParams {
    /// Long poll: wait up to this many seconds (0..=30) for the task to finish before answering; default 0.
    #[param(minimum = 0, maximum = 30, example = 30)]
    pub wait: Option<u64>,
    /// With signed URLs on (`THUMBQ_SIGNED_URLS=1`): when the URL stops working, in Unix seconds.
    pub expires: Option<i64>,
    /// With signed URLs on: the URL's signature, as the API handed it out.
    pub sig: Option<String>,
}

/// What a download answers while there is no thumbnail: the task's state and, for a failure, its error code. The
/// task's record (its owner, its webhook, its URLs) is at `GET /tasks/{id}`, behind the `read` scope: a thumbnail's
/// name is all a download needs, so it is all a download tells.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DownloadStatus {
    /// The task's state.
    pub status: TaskStatus,
    /// Why it failed (FAILURE only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DownloadError>,
}

/// The error of a failed task, as a download tells it: the record's `error_code` and `error_kind`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DownloadError {
    /// Why the task failed, stable for programs to branch on (the task record's `error_code`, see docs/api.md);
    /// absent for a task that failed before codes were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "corrupt_image")]
    pub code: Option<TaskErrorCode>,
    /// The code's class, which decides the status: `invalid_image` (the upload could not be made into a thumbnail)
    /// and `time_limit` (not within `THUMBQ_TASK_TIME_LIMIT_SECS`) answer 422, `internal` (a fault of the service;
    /// its log has the cause) 500.
    pub kind: FailureKind,
}

/// Download a thumbnail, or see why it is not ready.
///
/// `200` with the image once the task succeeded; `202` with the task's state while it is PENDING, STARTED or
/// RETRY; `422` (kind `invalid_image` or `time_limit`) or `500` (kind `internal`) with the state and the task's error
/// code and kind when it failed; `410` when it was cancelled. With
/// `?wait=N` the answer comes as soon as the task finishes, or after N seconds. A file is served only while its
/// task's record says SUCCESS (or, for a thumbnail whose record expired, when it was not erased).
#[utoipa::path(
    get,
    path = "/thumbnails/{name}",
    tag = "thumbnails",
    params(
        ("name" = String, Path, description = "The thumbnail's name, `<uuid>.<ext>`, or a rendition's, `<uuid>-<rendition>.<ext>`; \
            without `.<ext>`, a `format=auto` thumbnail in the best format the `Accept` header names (AVIF, WebP, else the fallback), with `Vary: Accept`",
            pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(-[a-z0-9_]{1,32})?(\.(png|jpg|webp|avif|gif))?$",
            example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg"),
        WaitParams,
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier download"),
        ("Accept" = Option<String>, Header, description = "For a name without `.<ext>`: `image/avif` and `image/webp` choose those variants"),
    ),
    responses(
        (status = 200, description = "The thumbnail, in the format its name's extension gives",
            content(
                (ImageBytes = "image/png"),
                (ImageBytes = "image/jpeg"),
                (ImageBytes = "image/webp"),
                (ImageBytes = "image/avif"),
                (ImageBytes = "image/gif"),
            ),
            headers(
                ("Vary" = String, description = "`Accept`, for a name without `.<ext>`"),
                ("Content-Location" = String, description = "For a name without `.<ext>`: the URL of the variant served"),
                ("ETag" = String, description = "Strong validator; send it back in If-None-Match"),
                ("Cache-Control" = String, description = "`public, max-age=31536000, immutable`: a thumbnail never changes"),
            )),
        (status = 302, description = "With `THUMBQ_DOWNLOAD_REDIRECT=1`: the thumbnail is at the presigned object-store URL in `Location`",
            headers(("Location" = String, description = "A presigned URL of the object store, valid for `THUMBQ_DOWNLOAD_REDIRECT_TTL_SECS`"))),
        (status = 202, description = "Not ready yet: the task's state", body = DownloadStatus,
            headers(("Retry-After" = u32, description = "Seconds until it is worth asking again")),
            example = json!({"status": "STARTED"})),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 400, description = "Not a thumbnail name, or a bad `wait`", body = ErrorBody,
            example = json!({"error": "not a thumbnail name: expected <uuid>.<png|jpg|webp|avif|gif>", "code": "invalid_name"})),
        (status = 401, description = "Keys are on and the request carries an unknown or malformed key", body = ErrorBody),
        (status = 403, description = "Signed URLs are on and this one is unsigned, wrongly signed or expired", body = ErrorBody,
            example = json!({"error": "the URL has expired: ask the API for a fresh one", "code": "url_expired"})),
        (status = 404, description = "No such thumbnail (never made, deleted, or expired)", body = ErrorBody),
        (status = 410, description = "The task was cancelled (REVOKED): there will be no thumbnail", body = DownloadStatus,
            example = json!({"status": "REVOKED"})),
        (status = 422, description = "The task failed: the image could not be processed (kind `invalid_image`), or not within the time limit (kind `time_limit`)", body = DownloadStatus,
            example = json!({"status": "FAILURE", "error": {"code": "corrupt_image", "kind": "invalid_image"}})),
        (status = 429, description = "Over the anonymous rate limit of the client's address", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 500, description = "The task failed on a fault of the service (kind `internal`), such as retries running out", body = DownloadStatus,
            example = json!({"status": "FAILURE", "error": {"code": "store_failed", "kind": "internal"}})),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
pub async fn get_thumbnail(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<WaitParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // A name without a format is a `format=auto` thumbnail's: the client's `Accept` picks the file. (`Err` holds
    // that name, `Ok` a file's.)
    let asked = match name.parse::<NegotiatedName>() {
        Ok(negotiated) => Err(negotiated),
        Err(()) => Ok(super::parse_name(&name)?),
    };
    if let Some(signer) = state.links.signer() {
        let signed = asked.as_ref().map_or_else(ToString::to_string, ToString::to_string);
        signer.verify(&signed, params.expires, params.sig.as_deref(), chrono::Utc::now())?;
    }
    let wait = Duration::from_secs(in_range("wait (seconds)", params.wait.unwrap_or(0), 0..=MAX_WAIT_SECS)?);
    let negotiated = match asked {
        Ok(file) => return answer(&state, file, wait, &headers).await,
        Err(negotiated) => negotiated,
    };
    let name = negotiate::resolve(&state, &negotiated, &headers).await?;
    let location =
        HeaderValue::from_str(&format!("/thumbnails/{name}")).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = answer(&state, name, wait, &headers).await?;
    // Caches keep one answer per `Accept`; the file served has a URL of its own.
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
    response.headers_mut().insert(header::CONTENT_LOCATION, location);
    Ok(response)
}

/// The answer for the file `name`: the thumbnail, or its task's state, after waiting up to `wait` for it.
async fn answer(
    state: &AppState,
    name: ThumbnailName,
    wait: Duration,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(ErrorCode::ThumbnailNotFound, format!("no thumbnail named {name}"));
    // Subscribed before the record is read: a change in between wakes the wait below.
    let events = (!wait.is_zero()).then(|| state.events.subscribe());
    let record = match state.states.get(name.id).await {
        Ok(record) => record,
        // Without Redis the store answers alone: a stored thumbnail is final (written atomically, never changed),
        // and an erasure cannot finish while Redis is down.
        Err(e) => {
            warn!(error = %e, "redis unreadable; answering from the file store alone");
            return stored_thumbnail(state, &name, headers).await?.ok_or_else(|| e.into());
        }
    };
    let record = match record {
        None => return unrecorded(state, &name, headers).await,
        Some(record) if !record.has_file(&name) => return Err(not_found()),
        Some(record)
            if !record.status.is_terminal()
                && let Some(events) = events =>
        {
            let waited = state.events.wait_until_finished(events, &state.states, record, wait, &state.shutdown);
            waited.await?.ok_or_else(not_found)?
        }
        Some(record) => record,
    };
    let (status, error) = match record.status {
        // The record decides, not the store: the thumbnail of a task erased while it ran may be in the store for a
        // moment (its worker removes it on finding the task gone).
        TaskStatus::Success => {
            return match stored_thumbnail(state, &name, headers).await? {
                Some(response) => Ok(response),
                // Erased since the record was read (`DELETE /thumbnails` removes the files, then the record), or
                // lost: either way there is no thumbnail to give; the operator sees the warning if it recurs.
                None => {
                    warn!(task_id = %record.id, "the record says SUCCESS but the thumbnail is not in the store (erased?)");
                    Err(not_found())
                }
            };
        }
        TaskStatus::Failure => {
            let (code, kind) = (record.error_code, record.error_kind.unwrap_or(FailureKind::Internal));
            // The client gets the code; the message stays here, with the task it belongs to.
            info!(task_id = %record.id, error = record.error.as_deref().unwrap_or(""), code = code.map(TaskErrorCode::as_str), "download of a failed task");
            let status = match kind {
                // The upload itself could not be made into a thumbnail, or not within the task time limit.
                FailureKind::InvalidImage | FailureKind::TimeLimit | FailureKind::Source => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                FailureKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, Some(DownloadError { code, kind }))
        }
        TaskStatus::Revoked => (StatusCode::GONE, None),
        TaskStatus::Pending | TaskStatus::Started | TaskStatus::Retry => {
            let body = DownloadStatus { status: record.status, error: None };
            let retry = [(header::RETRY_AFTER, HeaderValue::from_static("1"))];
            return Ok((StatusCode::ACCEPTED, retry, Json(body)).into_response());
        }
    };
    Ok((status, Json(DownloadStatus { status: record.status, error })).into_response())
}

/// A thumbnail without a record: its record expired (thumbnails outlive records), was lost in a Redis failover,
/// or the task was erased. The first two are served (and the record rebuilt), an erased one is not.
async fn unrecorded(state: &AppState, name: &ThumbnailName, headers: &HeaderMap) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(ErrorCode::ThumbnailNotFound, format!("no thumbnail named {name}"));
    if state.states.erased(name.id).await? {
        return Err(not_found());
    }
    let response = stored_thumbnail(state, name, headers).await?.ok_or_else(not_found)?;
    restore_record_of(state, name.clone());
    Ok(response)
}

/// The stored thumbnail as a `200` (or `304` when the client has it), or as a `302` to the object store with
/// `THUMBQ_DOWNLOAD_REDIRECT`; `None` when it is not stored.
async fn stored_thumbnail(
    state: &AppState,
    name: &ThumbnailName,
    headers: &HeaderMap,
) -> Result<Option<Response>, ApiError> {
    if let Some(ttl) = state.settings.store.download_redirect {
        let Some(url) = state.store.signed_thumbnail_url(name, ttl).await.map_err(|e| store_unavailable(&e))? else {
            return Ok(None);
        };
        let location = HeaderValue::from_str(&url).map_err(|e| ApiError::Internal(e.to_string()))?;
        // The signed URL stops working after `ttl`: clients may reuse the redirect for half of that.
        let cache = HeaderValue::from_str(&format!("private, max-age={}", ttl.as_secs() / 2))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let headers = [(header::LOCATION, location), (header::CACHE_CONTROL, cache)];
        return Ok(Some((StatusCode::FOUND, headers).into_response()));
    }
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
    // The name is `<uuid>[-<rendition>].<ext>`, checked on parsing: safe inside the quotes.
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"{name}\""))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let headers = [(header::CONTENT_TYPE, content_type), (header::CONTENT_DISPOSITION, disposition)];
    Ok(Some((StatusCode::OK, cache, headers, bytes).into_response()))
}

/// Rebuilds, in the background, the record of a thumbnail that is stored but has no record (lost in a Redis
/// failover, or expired before the thumbnail): `GET /tasks/{id}` and the listing then find it again. The store is read again before writing, so an erasure that raced this
/// download is not undone (a narrow window remains; such a record expires with the result TTL).
fn restore_record_of(state: &AppState, name: ThumbnailName) {
    let (states, store, max_pixels) = (state.states.clone(), state.store.clone(), state.settings.limits.max_pixels);
    state.background.spawn(async move {
        let restore = async {
            if states.exists(name.id).await? || states.erased(name.id).await? {
                return Ok(false);
            }
            let Some(bytes) = store.get_thumbnail(&name).await.ok().flatten() else { return Ok(false) };
            // A `format=auto` task's variants: a record rebuilt from one of them would disown the others.
            for format in OutputFormat::ALL.into_iter().filter(|f| *f != name.format) {
                if store.get_thumbnail(&name.negotiated().in_format(format)).await.ok().flatten().is_some() {
                    return Ok(false);
                }
            }
            let Ok(probe) = thumbq_common::image_probe::probe(&bytes, max_pixels) else { return Ok(false) };
            states.create(&TaskRecord::recovered(&name, probe.info(bytes.len()))).await.map(|()| true)
        };
        match restore.await {
            Ok(true) => warn!(task_id = %name.id, "rebuilt the lost record of a stored thumbnail"),
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "could not check the record of a downloaded thumbnail"),
        }
    });
}

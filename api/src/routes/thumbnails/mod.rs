//! `POST /thumbnails` (upload and queue, here), `GET /thumbnails/{name}` (download, status, long poll: `download`)
//! and `DELETE /thumbnails/{name}` (erasure: `delete`).

mod dedupe;
pub mod delete;
pub mod download;
mod idempotency;
mod negotiate;
pub mod params;
pub mod renditions;

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, Uri},
    response::Response,
    routing::{get, post},
};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use thumbq_common::task::{Rendition, TaskEnvelope, TaskId, TaskRecord, TaskStatus, ThumbnailName, Variant};
use tracing::{Instrument, info, info_span, warn};
use utoipa::ToSchema;

use self::params::{Source, UploadParams};
use crate::{
    caller::Caller,
    error::{ApiError, ErrorBody, ErrorCode, store_unavailable},
    extract::Query,
    state::AppState,
    upload::{self, Upload},
};

/// Longest long poll in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// Thumbnails never change once made: caches may keep them for a year.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/thumbnails", post(create_thumbnail))
        .route("/thumbnails/{name}", get(download::get_thumbnail).delete(delete::delete_thumbnail))
        .route("/tasks/{id}/renditions", post(renditions::create_renditions))
}

/// A thumbnail name from a path, or the `400` that says what one looks like.
pub fn parse_name(name: &str) -> Result<ThumbnailName, ApiError> {
    name.parse().map_err(|()| {
        ApiError::BadRequest(
            ErrorCode::InvalidName,
            "not a thumbnail name: expected <uuid>.<png|jpg|webp|avif|gif> or <uuid>-<rendition>.<ext>".into(),
        )
    })
}

/// The multipart form of an upload (documentation only; the extractor is [`Upload`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The image file: JPEG, PNG, WebP, GIF (first frame), BMP, TIFF (any layout, BigTIFF too), ICO, PNM, QOI,
    /// HEIC, AVIF, JPEG XL, SVG, PDF (first page) or video (MP4, MOV, WebM, MKV: a poster frame). The format is read
    /// from the bytes.
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
    /// The thumbnail's name, `<uuid>.<ext>`; with `format=auto`, `<uuid>` (its URL serves the best format the
    /// client accepts).
    #[schema(example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")]
    pub name: String,
    /// `PENDING`; `SUCCESS` for a `dedupe=true` upload whose thumbnails were copied from an earlier task.
    pub status: TaskStatus,
    /// Absolute URL of the thumbnail: poll it, or long-poll it with `&wait=30` (`?wait=30` when it is not signed).
    /// With signed URLs on it carries `expires` and `sig`.
    #[schema(example = "http://127.0.0.1:8000/thumbnails/6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")]
    pub url: String,
    /// Absolute URL of the task's record.
    #[schema(example = "http://127.0.0.1:8000/tasks/6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")]
    pub status_url: String,
    /// With `format=auto`: each format the thumbnail is made in (the fallback first), with its own URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    /// With `preset` or `sizes`: each rendition with its file's name and URL (`name` and `url` above are the
    /// first rendition's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renditions: Vec<Rendition>,
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
    params(UploadParams,
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters: a retry with \
            the same key and the same request (query and bytes) gets the first one's `202` and makes no second task, \
            also while the first is being stored; kept 24 h per API key")),
    request_body(
        description = "The image, as multipart field `image` or as the raw body with the image's content type (any \
            image/*, video/* or application/pdf type is read the same: the format comes from the bytes).",
        content(
            (UploadForm = "multipart/form-data"),
            (ImageBytes = "image/jpeg"),
            (ImageBytes = "image/png"),
            (ImageBytes = "image/webp"),
            (ImageBytes = "image/gif"),
            (ImageBytes = "image/bmp"),
            (ImageBytes = "image/tiff"),
            (ImageBytes = "image/heic"),
            (ImageBytes = "image/avif"),
            (ImageBytes = "image/jxl"),
            (ImageBytes = "image/svg+xml"),
            (ImageBytes = "application/pdf"),
            (ImageBytes = "video/mp4"),
            (ImageBytes = "video/webm"),
            (ImageBytes = "application/octet-stream"),
        ),
    ),
    responses(
        (status = 202, description = "Accepted and queued", body = Accepted,
            headers(("Location" = String, description = "Path of the thumbnail, `/thumbnails/{name}`"))),
        (status = 400, description = "Missing `image` field, empty upload or bad parameter", body = ErrorBody,
            example = json!({"error": "missing multipart field `image` (found field(s) file)", "code": "missing_image"})),
        (status = 401, description = "Keys are on and the request has no valid key (answered before the body is read)", body = ErrorBody),
        (status = 403, description = "The key lacks the `upload` scope (answered before the body is read)", body = ErrorBody),
        (status = 429, description = "Over the rate limit, or the key's storage quota is taken by unfinished tasks", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 413, description = "Upload over the size limit (answered from `Content-Length` alone when it says so)",
            body = ErrorBody, example = json!({"error": "the upload is larger than the limit of 26214400 bytes", "code": "too_large"})),
        (status = 414, description = "The request's URI (with its query) is over 8 KiB", body = ErrorBody),
        (status = 415, description = "Not an image, or an unsupported format", body = ErrorBody,
            example = json!({"error": "the upload is not an image (its first bytes match no known image format)", "code": "not_an_image"})),
        (status = 409, description = "The first request with this `Idempotency-Key` is still being stored after 30 s",
            body = ErrorBody),
        (status = 422, description = "Unreadable header, more pixels than the limit, or an `Idempotency-Key` used for \
            another request (`idempotency_mismatch`)", body = ErrorBody,
            example = json!({"error": "the image is 100000x100000 pixels, over the limit of 50000000 pixels", "code": "too_many_pixels"})),
        (status = 503, description = "RabbitMQ, Redis or the file store is unavailable, the work queue is full \
            (`THUMBQ_MAX_QUEUE_DEPTH`), or too many uploads are being read (`THUMBQ_UPLOAD_MEMORY_MB`); nothing is kept; \
            retry after `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait")),
            example = json!({"error": "rabbitmq is unavailable; try again shortly", "code": "service_unavailable"})),
    )
)]
pub async fn create_thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UploadParams>,
    uri: Uri,
    headers: HeaderMap,
    // Extracting the upload checks the `upload` scope before reading or reserving anything.
    mut upload: Upload,
) -> Result<Response, ApiError> {
    let query = uri.query().unwrap_or_default();
    let key = match idempotency::Key::of(&headers, &caller) {
        Ok(key) => key,
        Err(e) => return Err(upload.refuse(e).await),
    };
    let Some(key) = key else {
        let (body, location) = queue_upload(&state, &caller, &params, upload, None).await?;
        return idempotency::answer(body, &location);
    };
    let upload = match key.first_or_replay(&state, query, upload).await? {
        Ok(upload) => upload,
        Err(replayed) => return Ok(replayed),
    };
    let digest = idempotency::BodyDigest::default();
    let made = queue_upload(&state, &caller, &params, upload, Some(&digest)).await;
    let (body, location) = key.settle(&state, query, &digest, made).await?;
    idempotency::answer(body, &location)
}

/// Stores the upload's original (feeding `digest` with its bytes, when given), records and publishes its task: the
/// `202`'s body and `Location`.
async fn queue_upload(
    state: &AppState,
    caller: &Caller,
    params: &UploadParams,
    mut upload: Upload,
    digest: Option<&idempotency::BodyDigest>,
) -> Result<(Accepted, String), ApiError> {
    let head = upload.head(state.settings.limits.max_pixels).await?;
    let source = Source {
        format: head.probe.format,
        may_have_alpha: thumbq_common::image_probe::may_have_alpha(&head.bytes, head.probe.format),
    };
    let envelope = match params.callback_url(&state.settings.webhook).and_then(|callback_url| {
        Ok(TaskEnvelope {
            callback_url,
            keep_original: params.keep_original.unwrap_or(state.settings.store.keep_originals),
            ..params.envelope(source, &state.settings.presets, state.settings.limits.max_task_work_ms)?
        })
    }) {
        Ok(envelope) => envelope,
        Err(e) => return Err(upload.refuse(e).await),
    };
    if state.store.buffers_originals() {
        upload.reserve_whole().await?;
    }
    let span = info_span!("task", task_id = %envelope.id);
    // The original is written as it arrives: if the client hangs up half-way, the write stops and its temporary
    // file goes with it.
    let (chunks, reservation) = upload.into_chunks(head.bytes);
    // `dedupe=true` compares the original's SHA-256: hashed as it streams, as for an idempotency key.
    let dedupe = params.dedupe.unwrap_or(state.settings.store.dedupe) && envelope.callback_url.is_none();
    let own_digest = idempotency::BodyDigest::default();
    let digest = digest.or(dedupe.then_some(&own_digest));
    let chunks = match digest {
        Some(digest) => {
            let digest = digest.clone();
            chunks.inspect_ok(move |chunk| digest.lock().expect("not poisoned").update(chunk)).boxed()
        }
        None => chunks,
    };
    let length = state
        .store
        .put_original(envelope.id, chunks)
        .instrument(span.clone())
        .await
        .map_err(|e| upload::refusal(e).unwrap_or_else(|e| store_unavailable(&e)))?;
    drop(reservation);
    let record = TaskRecord {
        owner: caller.key.clone(),
        ..TaskRecord::pending(&envelope, Some(head.probe.info(usize::try_from(length).unwrap_or(usize::MAX))))
    };
    let fingerprint = digest.filter(|_| dedupe).map(|digest| dedupe::fingerprint(digest, &envelope));
    if let Some(fingerprint) = &fingerprint
        && let Some(made) = dedupe::copy(state, &envelope, &record, fingerprint).instrument(span.clone()).await?
    {
        let (mut body, location) = accepted(state, &envelope);
        body.status = made.status;
        return Ok((body, location));
    }
    // The rest of the accept sequence runs as its own task: from here on a client that hangs up must not leave
    // half a task behind.
    let owner = record.owner.clone().unwrap_or_default();
    let queued =
        tokio::spawn(accept(state.clone(), envelope.clone(), record, length, caller.quota_bytes).instrument(span))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    queued?;
    if let Some(fingerprint) = &fingerprint
        && let Err(e) = state.states.remember_for_dedupe(&owner, fingerprint, envelope.id).await
    {
        warn!(error = %e, "could not remember the upload for dedupe; later copies will be made again");
    }
    Ok(accepted(state, &envelope))
}

/// The `202` of a queued task: its name, URLs and renditions, and the thumbnail's path for `Location`.
fn accepted(state: &AppState, envelope: &TaskEnvelope) -> (Accepted, String) {
    let base = &state.settings.http.public_url;
    let answered = state.with_urls(TaskRecord::pending(envelope, None));
    // With `format=auto` the thumbnail is named without a format: its URL serves the best the client accepts.
    let name = envelope.thumbnail_name();
    let name = if envelope.args.auto { name.negotiated().to_string() } else { name.to_string() };
    let body = Accepted {
        id: envelope.id,
        status: TaskStatus::Pending,
        url: answered.url.unwrap_or_else(|| state.thumbnail_url(&name)),
        status_url: format!("{base}/tasks/{}", envelope.id),
        name,
        variants: answered.variants,
        renditions: answered.renditions,
    };
    // The path (and signature) of the thumbnail's URL.
    let location = body.url.strip_prefix(base.as_str()).unwrap_or(&body.url).to_owned();
    (body, location)
}

/// Records PENDING and publishes the task of a stored original of `length` bytes, undoing the earlier steps (the
/// original included) if a later one fails. With a `quota`, the original's bytes count against the uploading key's
/// storage quota until the task finishes or is deleted.
async fn accept(
    state: AppState,
    envelope: TaskEnvelope,
    record: TaskRecord,
    length: u64,
    quota: Option<u64>,
) -> Result<(), ApiError> {
    let id = envelope.id;
    let queued = async {
        if let (Some(owner), Some(quota)) = (record.owner.as_deref(), quota)
            && length > quota
        {
            // Waiting would never help: this one upload is larger than the whole quota.
            return Err(ApiError::TooLarge(format!(
                "the upload is {length} bytes, larger than the whole storage quota of the key {owner:?} ({quota} bytes)"
            )));
        }
        if let (Some(owner), Some(quota)) = (record.owner.as_deref(), quota)
            && let Err(used) = state.states.reserve_quota(owner, id, length, quota).await?
        {
            return Err(ApiError::OverQuota(format!(
                "the key {owner:?} has {used} bytes of originals in tasks not yet finished; {length} more would \
                 pass its quota of {quota} bytes: retry when some have finished"
            )));
        }
        state.states.create(&record).await?;
        state.publisher.get().await?.publish_task(&envelope).await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = queued.await {
        // Withdraw: the client is told why and must find nothing half-done (the quota's share is released with the
        // record). A worker that still receives the message (confirm lost, message kept) finds no record and drops
        // it.
        if let Err(cleanup) = state.states.delete(&record).await {
            warn!(error = %cleanup, "could not withdraw the task record");
        }
        if let Err(cleanup) = state.store.delete_original(id).await {
            warn!(error = %cleanup, "could not withdraw the original");
        }
        return Err(e);
    }
    thumbq_common::metrics::task_published(&state.settings.amqp.queue);
    info!(width = envelope.args.width, height = envelope.args.height, "task queued");
    Ok(())
}

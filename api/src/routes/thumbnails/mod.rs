//! `POST /thumbnails` (upload or import, here, and queue: `admission`), `GET /thumbnails/{name}` (download, status, long poll: `download`)
//! and `DELETE /thumbnails/{name}` (erasure: `delete`).

mod admission;
mod dedupe;
pub mod delete;
pub mod download;
pub mod import;
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
use sha2::Digest;
use thumbq_common::task::{Import, ThumbnailName};
use utoipa::ToSchema;

use self::{import::Submission, params::UploadParams};
use crate::{
    caller::Caller,
    error::{ApiError, ErrorBody, ErrorCode},
    extract::Query,
    idempotency,
    state::AppState,
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

/// The multipart form of an upload (documentation only; the extractor is [`Upload`](crate::upload::Upload)).
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

pub use thumbq_common::task::Accepted;

/// Upload an image, or import one, and queue its thumbnail.
///
/// Answers `202` once the original is stored, the task is recorded as PENDING and RabbitMQ has confirmed the
/// persistent task message; if any of those fails, `503` with nothing left behind.
///
/// With `Content-Type: application/json` the body names the image instead: `{"source": "https://…"}` (a worker
/// fetches it through the address guard: no internal address unless `THUMBQ_FETCH_ALLOW_PRIVATE=1`, at most 3
/// redirects, the upload size limit, `THUMBQ_FETCH_TIMEOUT_MS`) or `{"key": "photos/a.jpg"}` (an object under
/// `THUMBQ_IMPORT_URL`). No bytes pass through the API; a source that cannot be read makes the task FAILURE with
/// an `error_code` (`fetch_refused`, `source_not_found`, `source_too_large`, `fetch_failed`, or an image's own).
/// Without `format` an import's thumbnail is WebP, and `format=auto` falls back to PNG: the API does not see the
/// image to choose as it does for an upload.
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
            image/*, video/* or application/pdf type is read the same: the format comes from the bytes); or, as \
            JSON, an import: the URL or import-store key a worker reads the image from.",
        content(
            (Import = "application/json"),
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
        (status = 400, description = "Missing `image` field, empty upload, bad parameter, or an import whose body, \
            `source` (`source_refused`) or `key` (`invalid_import_key`, `imports_disabled`) cannot be used", body = ErrorBody,
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
    // Extracting it checks the `upload` scope before reading or reserving anything.
    submission: Submission,
) -> Result<Response, ApiError> {
    let query = uri.query().unwrap_or_default();
    let (key, submission) = match (idempotency::Key::of(&headers, &caller), submission) {
        (Ok(key), submission) => (key, submission),
        (Err(e), Submission::Upload(mut upload)) => return Err(upload.refuse(e).await),
        (Err(e), Submission::Import(..)) => return Err(e),
    };
    let Some(key) = key else {
        let (body, location) = queue(&state, &caller, &params, submission, None).await?;
        return idempotency::answer(body, &location);
    };
    if let Some(stored) = key.first_or_stored(&state).await? {
        let digest = match submission {
            Submission::Upload(upload) => idempotency::digest_of(upload).await?,
            Submission::Import(_, body) => idempotency::digest_of_bytes(&body),
        };
        // An upload's request is its query: the route is implied (keys kept before jobs had them read the same).
        return stored.replay(query, &digest);
    }
    let digest = idempotency::BodyDigest::default();
    let made = queue(&state, &caller, &params, submission, Some(&digest)).await;
    let (body, location) = key.settle(&state, query, &digest, made).await?;
    idempotency::answer(body, &location)
}

/// Queues an upload or an import, feeding `digest` (when given) with the body.
async fn queue(
    state: &AppState,
    caller: &Caller,
    params: &UploadParams,
    submission: Submission,
    digest: Option<&idempotency::BodyDigest>,
) -> Result<(Accepted, String), ApiError> {
    match submission {
        Submission::Upload(upload) => admission::queue_upload(state, caller, params, upload, digest).await,
        Submission::Import(import, body) => {
            if let Some(digest) = digest {
                digest.lock().expect("not poisoned").update(&body);
            }
            import::queue_import(state, caller, params, import).await
        }
    }
}
